// Size-classed caching of large host blocks; see host_allocator.hpp.
#include "kernels/cpu/host_allocator.hpp"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace ember::kernels::cpu {
namespace {

// A header before each block records its size class, so deallocate needs only the pointer.
constexpr std::size_t kHeader = 64;

// Rounds up to one of 8 classes per power of two (at most 12.5% slack), so a block freed by
// one op fits the next op of a similar size.
std::size_t size_class(std::size_t nbytes) {
  nbytes = (std::max<std::size_t>(nbytes, 1) + 63) / 64 * 64;
  if (nbytes < HostAllocator::kMinCachedBytes) return nbytes;
  const int top = std::bit_width(nbytes) - 1;
  const std::size_t step = std::size_t{1} << (top - 3);
  return (nbytes + step - 1) / step * step;
}

std::size_t& header_of(void* base) { return *static_cast<std::size_t*>(base); }

}  // namespace

HostAllocator::~HostAllocator() { release_idle(); }

void* HostAllocator::allocate(std::size_t nbytes) {
  const std::size_t cls = size_class(nbytes);
  if (cls >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = idle_.find(cls);
    if (it != idle_.end() && !it->second.empty()) {
      void* base = it->second.back();
      it->second.pop_back();
      idle_bytes_ -= cls;
      return static_cast<char*>(base) + kHeader;
    }
  }
  void* base = std::aligned_alloc(64, kHeader + cls);
  if (base == nullptr) {
    release_idle();  // give the cache back and try once more before failing
    base = std::aligned_alloc(64, kHeader + cls);
    if (base == nullptr) throw std::bad_alloc();
  }
  header_of(base) = cls;
  return static_cast<char*>(base) + kHeader;
}

void HostAllocator::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  void* base = static_cast<char*>(ptr) - kHeader;
  const std::size_t cls = header_of(base);
  if (cls >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_bytes_ + cls <= kMaxIdleBytes) {
      idle_[cls].push_back(base);
      idle_bytes_ += cls;
      return;
    }
  }
  std::free(base);
}

void HostAllocator::release_idle() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [cls, blocks] : idle_)
    for (void* base : blocks) std::free(base);
  idle_.clear();
  idle_bytes_ = 0;
}

std::size_t HostAllocator::idle_bytes() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mutex_));
  return idle_bytes_;
}

}  // namespace ember::kernels::cpu
