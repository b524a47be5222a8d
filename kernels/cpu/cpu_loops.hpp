// How the CPU backend iterates: a parallel-for over the pool's threads (thread_pool.hpp), a
// strided N-operand walk whose innermost dim is a plain loop the compiler can vectorize, and
// the Loop that runs the shared per-element bodies (kernels/common/elementwise_bodies.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <new>
#include <type_traits>

#include "kernels/common/tensor_arg.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace ember::kernels::cpu {

// Below this many elements the work stays on the calling thread: a fork/join costs a few
// microseconds, more than a small op itself.
inline constexpr std::int64_t kParallelGrain = 32768;

// The hot element loops are compiled three times, for x86-64-v4 (AVX-512), for x86-64-v3
// (AVX2: 8 floats a step) and for the baseline the library is built for, and the loader
// picks the best copy the CPU can run (GCC's function multiversioning, an ifunc). A default
// build thus reaches the machine's vector width without a -march that would exclude others. Clang
// and other targets get the one baseline copy, and so do sanitizer builds: the copy is chosen by a
// resolver that runs while the program is being loaded, before ThreadSanitizer's runtime
// is up, and its instrumented code crashes there.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(EMBER_CPU_ARCH_SET) && !defined(__SANITIZE_THREAD__) &&   \
    !defined(__SANITIZE_ADDRESS__)
#define EMBER_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMBER_CPU_CLONES
#endif

// body(i, offsets) for i in [begin, end) of contiguous operands: every offset is i.
template <int N, typename Body>
EMBER_CPU_CLONES void flat_range(const Body& body, std::int64_t begin, std::int64_t end) {
  const Body local = body;  // a local copy: stores cannot alias its pointers
  for (std::int64_t i = begin; i < end; ++i) {
    std::int64_t off[N];
    for (int k = 0; k < N; ++k) off[k] = i;
    local(i, off);
  }
}

template <typename F>
struct ChunkedRange {
  F* f;
  std::int64_t n, chunk;
  static void run(void* self, int t) {
    const auto& r = *static_cast<const ChunkedRange*>(self);
    const std::int64_t begin = std::min<std::int64_t>(r.n, t * r.chunk);
    const std::int64_t end = std::min<std::int64_t>(r.n, begin + r.chunk);
    if (begin < end) (*r.f)(begin, end);
  }
};

// f(begin, end) over [0, n), split into one chunk per thread when n is large enough (a grain
// below 1 means "one item per thread is worth it"); a loop inside another stays serial.
template <typename F>
void parallel_for(std::int64_t n, std::int64_t grain, F&& f) {
  if (n <= 0) return;
  const std::int64_t g = std::max<std::int64_t>(grain, 1);
  if (n > grain && !in_parallel_region()) {
    const int threads = static_cast<int>(std::min<std::int64_t>(max_threads(), (n + g - 1) / g));
    if (threads > 1) {
      using Range = ChunkedRange<std::remove_reference_t<F>>;
      Range range{&f, n, (n + threads - 1) / threads};
      run_tasks(threads, &Range::run, &range);
      return;
    }
  }
  f(std::int64_t{0}, n);
}

// body(i + j, base + j) for j in [0, run): a stretch of the innermost dim in which every
// operand is contiguous (a row of a broadcast bias add, say), run as a flat loop that vectorizes.
template <int N, typename Body>
EMBER_CPU_CLONES void contiguous_run(const Body& body, const std::int64_t (&base)[N],
                                     std::int64_t i, std::int64_t run) {
  const Body local = body;
  std::int64_t b[N];
  for (int k = 0; k < N; ++k) b[k] = base[k];
  for (std::int64_t j = 0; j < run; ++j) {
    std::int64_t off[N];
    for (int k = 0; k < N; ++k) off[k] = b[k] + j;
    local(i + j, off);
  }
}

// Calls body(i, offsets) for linear indices i in [begin, end) of the iteration space of
// `calc`, where offsets[k] is operand k's element offset. The innermost dim runs as a tight
// loop, a flat one where every operand is contiguous along it.
template <int N, typename Body>
void walk_range(const OffsetCalc<N>& calc, std::int64_t begin, std::int64_t end, Body&& body) {
  if (calc.ndim <= 1) {
    std::int64_t stride[N];
    for (int k = 0; k < N; ++k) stride[k] = calc.ndim == 0 ? 0 : calc.strides[k][0];
    std::int64_t off[N];
    for (std::int64_t i = begin; i < end; ++i) {
      for (int k = 0; k < N; ++k) off[k] = i * stride[k];
      body(i, off);
    }
    return;
  }
  // Coordinates of `begin`, then an odometer over the outer dims.
  std::int64_t coord[kMaxRank];
  std::int64_t rest = begin;
  for (int d = 0; d < calc.ndim; ++d) {
    coord[d] = rest % calc.sizes[d];
    rest /= calc.sizes[d];
  }
  std::int64_t base[N];
  calc.get(begin, base);
  std::int64_t i = begin;
  const std::int64_t inner = calc.sizes[0];
  bool unit_inner = true;
  for (int k = 0; k < N; ++k) unit_inner = unit_inner && calc.strides[k][0] == 1;
  while (i < end) {
    const std::int64_t run = std::min<std::int64_t>(inner - coord[0], end - i);
    if (unit_inner) {
      contiguous_run<N>(body, base, i, run);
    } else {
      std::int64_t off[N];
      for (std::int64_t j = 0; j < run; ++j) {
        for (int k = 0; k < N; ++k) off[k] = base[k] + j * calc.strides[k][0];
        body(i + j, off);
      }
    }
    i += run;
    if (i >= end) break;
    // Carry into the outer dims.
    for (int k = 0; k < N; ++k) base[k] += run * calc.strides[k][0];
    coord[0] += run;
    for (int d = 0; d < calc.ndim && coord[d] == calc.sizes[d]; ++d) {
      for (int k = 0; k < N; ++k) base[k] -= calc.sizes[d] * calc.strides[k][d];
      coord[d] = 0;
      if (d + 1 < calc.ndim) {
        ++coord[d + 1];
        for (int k = 0; k < N; ++k) base[k] += calc.strides[k][d + 1];
      }
    }
  }
}

// Parallel walk over the whole iteration space.
template <int N, typename Body>
void walk(const OffsetCalc<N>& calc, std::int64_t n, Body&& body) {
  parallel_for(n, kParallelGrain,
               [&](std::int64_t begin, std::int64_t end) { walk_range(calc, begin, end, body); });
}

// True when every operand of the walk is contiguous and unbroadcast: a flat loop suffices.
template <int N>
bool all_flat(const OffsetCalc<N>& calc) {
  if (calc.ndim > 1) return false;
  if (calc.ndim == 0) return true;
  for (int k = 0; k < N; ++k)
    if (calc.strides[k][0] != 1) return false;
  return true;
}

template <typename Body>
concept AccumulatingBody = Body::kAccumulates;

// The CPU launcher's loop for the shared elementwise bodies. Contiguous operands take a flat
// loop in which every offset is the index itself (it vectorizes); bodies that accumulate
// into indexed positions run on one thread, since repeated indices would race. A scalar
// operand is read through a pointer to a slot of the loop (its walk gives it stride 0), so
// element loops carry no branch on whether an operand is a scalar.
class Loop {
 public:
  template <typename T>
  const T* scalar_slot(T value) {
    static_assert(sizeof(T) <= sizeof(Slot));
    return new (&slots_[used_++ % kSlots]) T(value);
  }

  template <int N, typename Body>
  void run(std::int64_t n, const OffsetCalc<N>& calc, const Body& body) const {
    if constexpr (AccumulatingBody<Body>) {
      walk_range(calc, 0, n, body);
    } else {
      if (all_flat(calc)) {
        parallel_for(n, kParallelGrain, [&](std::int64_t begin, std::int64_t end) {
          flat_range<N>(body, begin, end);
        });
        return;
      }
      walk(calc, n, body);
    }
  }

 private:
  // Enough for the scalar operands of one body (at most three).
  static constexpr int kSlots = 4;
  struct alignas(8) Slot {
    unsigned char bytes[8];
  };
  Slot slots_[kSlots] = {};
  int used_ = 0;
};

}  // namespace ember::kernels::cpu
