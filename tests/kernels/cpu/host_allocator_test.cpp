// The CPU backend's caching allocator: alignment, reuse of large blocks across similar
// sizes, the idle cap, release, and the per-thread lists of small blocks.
#include "kernels/cpu/host_allocator.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

using ember::kernels::cpu::HostAllocator;

TEST(HostAllocator, BlocksAre64ByteAlignedAndWritable) {
  HostAllocator a;
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{5} << 20}) {
    void* p = a.allocate(n);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u) << n;
    std::memset(p, 0xAB, n);
    a.deallocate(p);
  }
}

TEST(HostAllocator, ReusesAFreedLargeBlockForASimilarSize) {
  HostAllocator a;
  const std::size_t n = 3u << 20;
  void* p = a.allocate(n);
  a.deallocate(p);
  EXPECT_GE(a.idle_bytes(), n);
  // Within the same size class (1/8 of a power of two): the very same block comes back.
  void* q = a.allocate(n - 1000);
  EXPECT_EQ(p, q);
  EXPECT_EQ(a.idle_bytes(), 0u);
  a.deallocate(q);
}

TEST(HostAllocator, IdleBytesAreCapped) {
  HostAllocator a;
  // More idle memory than the cap: the excess goes back to the system.
  const std::size_t big = HostAllocator::kMaxIdleBytes / 2 + (1u << 20);
  void* p1 = a.allocate(big);
  void* p2 = a.allocate(big);
  a.deallocate(p1);
  a.deallocate(p2);
  EXPECT_LE(a.idle_bytes(), HostAllocator::kMaxIdleBytes);
  EXPECT_GT(a.idle_bytes(), 0u);
  a.release_idle();
  EXPECT_EQ(a.idle_bytes(), 0u);
}

// Small blocks go to the freeing thread's own lists, not the shared cache: the same block
// comes back for the next request of its 64-byte class, each list keeps at most
// kSmallBlocksPerClass, and a block freed on another thread stays with that thread (whose
// exit returns its lists to the system). Sanitizer builds keep no lists.
TEST(HostAllocator, SmallBlocksStayOnTheFreeingThreadsListsUpToACap) {
  HostAllocator a;
  void* p = a.allocate(100);
  const std::size_t before = HostAllocator::small_blocks_idle_on_this_thread();
  a.deallocate(p);
  EXPECT_EQ(a.idle_bytes(), 0u);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  EXPECT_EQ(HostAllocator::small_blocks_idle_on_this_thread(), before);
#else
  EXPECT_EQ(HostAllocator::small_blocks_idle_on_this_thread(), before + 1);
  void* q = a.allocate(90);  // the same class (65 to 128 bytes): the block just freed
  EXPECT_EQ(q, p);
  a.deallocate(q);
  std::vector<void*> many;
  for (std::size_t i = 0; i < 2 * HostAllocator::kSmallBlocksPerClass; ++i)
    many.push_back(a.allocate(1000));
  const std::size_t holding = HostAllocator::small_blocks_idle_on_this_thread();
  for (void* m : many) a.deallocate(m);
  EXPECT_LE(HostAllocator::small_blocks_idle_on_this_thread(),
            holding + HostAllocator::kSmallBlocksPerClass);
  std::size_t on_other = 0;
  void* r = a.allocate(500);
  std::thread([&] {
    a.deallocate(r);
    on_other = HostAllocator::small_blocks_idle_on_this_thread();
  }).join();
  EXPECT_EQ(on_other, 1u);
#endif
  // Blocks are writable whichever list they came from.
  for (std::size_t n : {std::size_t{1}, std::size_t{64}, std::size_t{65}, std::size_t{1024}}) {
    void* b = a.allocate(n);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 64, 0u) << n;
    std::memset(b, 0xCD, n);
    a.deallocate(b);
  }
}
