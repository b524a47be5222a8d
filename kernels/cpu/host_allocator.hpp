// The CPU backend's allocator: 64-byte aligned host blocks, with large blocks kept for reuse.
// Without the cache every large result is fresh memory from the kernel, zero-filled page by
// page on first touch, which made ops on 64 MiB tensors several times slower than the copy
// bandwidth allows. Small blocks (tensor data, and the engine's tensor and autograd objects
// through small_block_allocate) are kept on per-thread free lists: a small model's step makes
// hundreds of them, more of one size than glibc's per-thread cache holds (7), and the rest went
// through malloc's slow paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ember::kernels::cpu {

class HostAllocator {
 public:
  // Blocks of at least this many bytes are cached; smaller ones go straight to malloc,
  // whose own free lists serve them well. It is glibc's initial mmap threshold: above it
  // malloc hands out fresh pages (or trims its heap back to the kernel), and every first
  // touch is a page fault. A VAE step's 256 x 784 activations (784 KiB) faulted on every
  // step while the cache began at 1 MiB.
  static constexpr std::size_t kMinCachedBytes = std::size_t{128} << 10;
  // At most this many bytes sit idle in the cache; beyond it blocks are returned.
  static constexpr std::size_t kMaxIdleBytes = std::size_t{1} << 30;
  // Blocks of at most this many bytes are kept on the freeing thread's lists, at most
  // kSmallBlocksPerClass of each 64-byte class (256 KiB of the largest class a thread).
  // Not more: an eager step that frees tens of thousands of them at its end (an enumerated
  // HMM of 1000 time steps: 49,000 blocks, 11.5 MiB) ran a fifth slower with lists that took
  // them all, though it ran a fifth fewer instructions: malloc hands the next step's blocks
  // out in address order, the lists in the scattered order they were freed in, and such a
  // step is bound by the latency of its reads of them.
  static constexpr std::size_t kMaxSmallBytes = 1024;
  static constexpr std::size_t kSmallBlocksPerClass = 256;

  HostAllocator() = default;
  ~HostAllocator();
  HostAllocator(const HostAllocator&) = delete;
  HostAllocator& operator=(const HostAllocator&) = delete;

  void* allocate(std::size_t nbytes);
  void deallocate(void* ptr);
  // Returns every idle block to the system.
  void release_idle();
  std::size_t idle_bytes() const;

  // The number of small blocks idle on the calling thread's lists.
  static std::size_t small_blocks_idle_on_this_thread();

 private:
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> idle_;  // by size class
  std::size_t idle_bytes_ = 0;
};

// What small_block_allocate and small_block_free need inline: a small model's step takes and
// gives back some 160 blocks, and with their size known where they are made (allocate_shared
// of one type) the common case is a few instructions. Every block is carved from a malloc'd
// region: the pointer handed out is 64-byte aligned, and the 16 bytes before it record the
// size class and the region, so a free needs only the pointer.
namespace small_blocks {
inline constexpr std::size_t kAlign = 64;
inline constexpr std::size_t kHeader = 16;
// Sanitizer builds keep no lists: a block reused by another thread without malloc in between
// would hide use-after-free from AddressSanitizer and look like a race to ThreadSanitizer.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kLists = false;
#else
inline constexpr bool kLists = true;
#endif
inline constexpr std::size_t kClasses = HostAllocator::kMaxSmallBytes / kAlign;

struct Header {
  std::size_t cls;
  void* region;
};
inline Header& header_of(void* ptr) {
  return *reinterpret_cast<Header*>(static_cast<char*>(ptr) - kHeader);
}

// kOff until the thread keeps its first block; kGone once its lists were given back (thread
// exit): blocks freed after that by other thread-local objects go back to malloc.
enum class ListsState : unsigned char { kOff, kOn, kGone };
// The calling thread's idle blocks, one list per 64-byte class: each idle block holds the
// next one in its first bytes. Constant-initialized and trivially destructible, so that
// every allocation and free reads them without a thread-local initialization check.
struct Lists {
  void* head[kClasses];
  std::uint32_t count[kClasses];
  ListsState state;
};
extern constinit thread_local Lists t_lists;

inline void keep(Lists& lists, std::size_t c, void* ptr) {
  *static_cast<void**>(ptr) = lists.head[c];
  lists.head[c] = ptr;
  ++lists.count[c];
}
}  // namespace small_blocks

// The cases the inline paths below leave out: a fresh block, and a block the thread's lists
// do not take (its first, a full list, lists gone at thread exit, a block that is not small).
void* small_block_allocate_slowly(std::size_t nbytes);
void small_block_free_slowly(void* ptr);

// 64-byte aligned host memory of at most kMaxSmallBytes (more goes to malloc) from the calling
// thread's lists, for the engine's small objects; freed on any thread.
inline void* small_block_allocate(std::size_t nbytes) {
  if constexpr (small_blocks::kLists) {
    // The class of a block of at most kMaxSmallBytes: one per 64 bytes, the first for 0 too.
    const std::size_t c = nbytes == 0 ? 0 : (nbytes - 1) / small_blocks::kAlign;
    if (c < small_blocks::kClasses) {
      small_blocks::Lists& lists = small_blocks::t_lists;
      if (void* ptr = lists.head[c]; ptr != nullptr) {
        lists.head[c] = *static_cast<void**>(ptr);
        --lists.count[c];
        return ptr;
      }
    }
  }
  return small_block_allocate_slowly(nbytes);
}
inline void small_block_free(void* ptr) {
  if constexpr (small_blocks::kLists) {
    if (ptr != nullptr) {
      const std::size_t cls = small_blocks::header_of(ptr).cls;
      if (cls <= HostAllocator::kMaxSmallBytes) {
        small_blocks::Lists& lists = small_blocks::t_lists;
        const std::size_t c = cls / small_blocks::kAlign - 1;
        if (lists.state == small_blocks::ListsState::kOn &&
            lists.count[c] < HostAllocator::kSmallBlocksPerClass) {
          small_blocks::keep(lists, c, ptr);
          return;
        }
      }
    }
  }
  small_block_free_slowly(ptr);
}

// A standard allocator over small_block_allocate, for std::allocate_shared.
template <typename T>
struct SmallBlockAllocator {
  using value_type = T;
  SmallBlockAllocator() = default;
  template <typename U>
  SmallBlockAllocator(const SmallBlockAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(small_block_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) { small_block_free(p); }
  template <typename U>
  bool operator==(const SmallBlockAllocator<U>&) const {
    return true;
  }
};

}  // namespace ember::kernels::cpu
