// The CPU backend's caching allocator: alignment, reuse of large blocks across similar
// sizes, the idle cap, and release.
#include "kernels/cpu/host_allocator.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

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

TEST(HostAllocator, SmallBlocksAreNotCachedAndIdleBytesAreCapped) {
  HostAllocator a;
  a.deallocate(a.allocate(1000));
  EXPECT_EQ(a.idle_bytes(), 0u);
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
