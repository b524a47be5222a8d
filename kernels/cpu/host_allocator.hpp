// The CPU backend's allocator: 64-byte aligned host blocks, with large blocks kept for reuse.
// Without the cache every large result is fresh memory from the kernel, zero-filled page by
// page on first touch, which made ops on 64 MiB tensors several times slower than the copy
// bandwidth allows. Small blocks (tensor data, and the engine's tensor and autograd objects
// through small_block_allocate) are kept on per-thread free lists: a small model's step makes
// hundreds of them, more of one size than glibc's per-thread cache holds (7), and the rest went
// through malloc's slow paths.
#pragma once

#include <cstddef>
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

// 64-byte aligned host memory of at most kMaxSmallBytes (more goes to malloc) from the calling
// thread's lists, for the engine's small objects; freed on any thread.
void* small_block_allocate(std::size_t nbytes);
void small_block_free(void* ptr);

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
