// Size-classed caching of large host blocks; see host_allocator.hpp.
#include "kernels/cpu/host_allocator.hpp"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace ember::kernels::cpu {

// The thread's lists of idle small blocks (host_allocator.hpp).
constinit thread_local small_blocks::Lists small_blocks::t_lists{};

namespace {

using namespace small_blocks;

// Rounds up to one of 8 classes per power of two (at most 12.5% slack), so a block freed by
// one op fits the next op of a similar size.
std::size_t size_class(std::size_t nbytes) {
  nbytes = (std::max<std::size_t>(nbytes, 1) + 63) / 64 * 64;
  if (nbytes < HostAllocator::kMinCachedBytes) return nbytes;
  const int top = std::bit_width(nbytes) - 1;
  const std::size_t step = std::size_t{1} << (top - 3);
  return (nbytes + step - 1) / step * step;
}

void* fresh_block(std::size_t cls) {
  void* region = std::malloc(cls + kHeader + kAlign - 1);
  if (region == nullptr) return nullptr;
  const auto at = reinterpret_cast<std::uintptr_t>(region) + kHeader;
  void* ptr = reinterpret_cast<void*>((at + kAlign - 1) / kAlign * kAlign);
  header_of(ptr) = {cls, region};
  return ptr;
}

// Gives the thread's idle blocks back to malloc when the thread ends; made (and its
// destructor registered) when the thread keeps its first block.
struct SmallListsOwner {
  bool made = false;
  ~SmallListsOwner() {
    Lists& lists = t_lists;
    lists.state = ListsState::kGone;
    for (std::size_t c = 0; c < kClasses; ++c) {
      for (void* ptr = lists.head[c]; ptr != nullptr;) {
        void* const next = *static_cast<void**>(ptr);
        std::free(header_of(ptr).region);
        ptr = next;
      }
      lists.head[c] = nullptr;
      lists.count[c] = 0;
    }
  }
};
thread_local SmallListsOwner t_small_lists_owner;

// small_block_free's rare cases, out of its way: the thread's first kept block (which makes
// the owner), a full list, a thread whose lists are gone, a block that is not small.
[[gnu::noinline]] void free_block_slowly(void* ptr, std::size_t cls, void* region) {
  Lists& lists = t_lists;
  if (kLists && cls <= HostAllocator::kMaxSmallBytes && lists.state == ListsState::kOff) {
    t_small_lists_owner.made = true;  // registers its destructor for this thread
    lists.state = ListsState::kOn;
    keep(lists, cls / kAlign - 1, ptr);
    return;
  }
  std::free(region);
}
}  // namespace

HostAllocator::~HostAllocator() { release_idle(); }

std::size_t HostAllocator::small_blocks_idle_on_this_thread() {
  std::size_t n = 0;
  for (const std::uint32_t count : t_lists.count) n += count;
  return n;
}

void* small_block_allocate_slowly(std::size_t nbytes) {
  void* ptr = fresh_block(size_class(nbytes));
  if (ptr == nullptr) throw std::bad_alloc();
  return ptr;
}

void small_block_free_slowly(void* ptr) {
  if (ptr == nullptr) return;
  const Header h = header_of(ptr);
  free_block_slowly(ptr, h.cls, h.region);
}

void* HostAllocator::allocate(std::size_t nbytes) {
  const std::size_t cls = size_class(nbytes);
  if (cls <= kMaxSmallBytes) return small_block_allocate(nbytes);
  if (cls >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = idle_.find(cls);
    if (it != idle_.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      idle_bytes_ -= cls;
      return ptr;
    }
  }
  void* ptr = fresh_block(cls);
  if (ptr == nullptr) {
    release_idle();  // give the cache back and try once more before failing
    ptr = fresh_block(cls);
    if (ptr == nullptr) throw std::bad_alloc();
  }
  return ptr;
}

void HostAllocator::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  const Header h = header_of(ptr);
  if (h.cls <= kMaxSmallBytes) return small_block_free(ptr);
  if (h.cls >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_bytes_ + h.cls <= kMaxIdleBytes) {
      idle_[h.cls].push_back(ptr);
      idle_bytes_ += h.cls;
      return;
    }
  }
  std::free(h.region);
}

void HostAllocator::release_idle() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [cls, blocks] : idle_)
    for (void* ptr : blocks) std::free(header_of(ptr).region);
  idle_.clear();
  idle_bytes_ = 0;
}

std::size_t HostAllocator::idle_bytes() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mutex_));
  return idle_bytes_;
}

}  // namespace ember::kernels::cpu
