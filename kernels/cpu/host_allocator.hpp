// The CPU backend's allocator: 64-byte aligned host blocks, with large blocks kept for reuse.
// Without the cache every large result is fresh memory from the kernel, zero-filled page by
// page on first touch, which made ops on 64 MiB tensors several times slower than the copy
// bandwidth allows.
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

  HostAllocator() = default;
  ~HostAllocator();
  HostAllocator(const HostAllocator&) = delete;
  HostAllocator& operator=(const HostAllocator&) = delete;

  void* allocate(std::size_t nbytes);
  void deallocate(void* ptr);
  // Returns every idle block to the system.
  void release_idle();
  std::size_t idle_bytes() const;

 private:
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> idle_;  // by size class
  std::size_t idle_bytes_ = 0;
};

}  // namespace ember::kernels::cpu
