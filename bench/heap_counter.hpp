// Counts the heap blocks a program takes: replaces the global operator new and delete with
// counting ones over malloc and free. Include it in one source file of a program only (the
// replacements are definitions); svi_bench's `heap_allocs` and the replay tests read it.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace ember::heap_counter {
inline std::atomic<std::uint64_t> g_blocks{0};
// Plain `new`s so far, on every thread (arrays and containers included).
inline std::uint64_t blocks() { return g_blocks.load(std::memory_order_relaxed); }
}  // namespace ember::heap_counter

void* operator new(std::size_t n) {
  ember::heap_counter::g_blocks.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// GCC cannot tell that these free what the operator new above took from malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
