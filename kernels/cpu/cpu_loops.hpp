// How the CPU backend iterates: a parallel-for over the pool's threads (thread_pool.hpp), a
// strided N-operand walk whose innermost dim is a plain loop the compiler can vectorize, and
// the Loop that runs the shared per-element bodies (kernels/common/elementwise_bodies.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "ember/error.hpp"
#include "kernels/backend.hpp"
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

// GCC's "no loop-carried dependence" hint for the loops below; clang does not know the pragma
// (and warns), so it gets none.
#if defined(__GNUC__) && !defined(__clang__)
#define EMBER_IVDEP _Pragma("GCC ivdep")
#else
#define EMBER_IVDEP
#endif

template <typename Body>
concept AccumulatingBody = Body::kAccumulates;
// A shared per-element body (kernels/common/elementwise_bodies.hpp) that reads and writes its
// element alone; the lambdas of the reductions' walks are not.
template <typename Body>
concept HasOperands = requires {
  Body::kOperands;
};
template <typename Body>
concept IndependentBody = HasOperands<Body> && !AccumulatingBody<Body>;
// A body that accumulates, but whose elements adding into one place differ in one coordinate
// of the walk alone (a scatter-add's, along its index dim): every walk visits those in the
// same order, whatever order it takes the dims in, so the sums are the same bits.
template <typename Body>
concept AnyDimOrderBody = AccumulatingBody<Body> && Body::kAnyDimOrder;

// The flat loops below tell the compiler that no element depends on another (`ivdep`): an
// elementwise body reads and writes element i alone (an output may be one of its inputs, at
// the same offset), so stores through one operand need no run-time check against loads
// through the others, which the vectorizer gives up on past a few operands (a log-density
// with its partials has seven). Only such bodies run here: not those that accumulate into
// indexed positions, nor the reductions' lambdas.

// body(i, offsets) for i in [begin, end) of contiguous operands: every offset is i.
template <int N, typename Body>
EMBER_CPU_CLONES void flat_range(const Body& body, std::int64_t begin, std::int64_t end) {
  static_assert(IndependentBody<Body>);
  const Body local = body;  // a local copy: stores cannot alias its pointers
  EMBER_IVDEP
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

// How a reduction over n elements splits across threads: `count` slices of `chunk` elements
// (the last shorter), each added alone, their results combined in order. One slice where n is
// at most kParallelGrain or the pool has one thread. The slices depend on n and the thread
// count alone, and are multiples of kFuseAlign long, so that a compiled step's fused run
// (Backend::run_fused) can add in the very same slices.
struct ReduceSlices {
  std::int64_t chunk;
  int count;
};
inline ReduceSlices reduce_slices(std::int64_t n) {
  const int threads = std::min(kMaxReduceSlices, max_threads());
  if (n <= kParallelGrain || threads <= 1) return {n, 1};
  const std::int64_t per_thread = (n + threads - 1) / threads;
  const std::int64_t chunk = (per_thread + kFuseAlign - 1) / kFuseAlign * kFuseAlign;
  return {chunk, static_cast<int>((n + chunk - 1) / chunk)};
}

// body(i + j, base + j) for j in [0, run): a stretch of the innermost dim in which every
// operand is contiguous (a row of a broadcast bias add, say), run as a flat loop that vectorizes.
// Inlined into the cloned loops below, which pick the instruction set.
template <int N, typename Body>
[[gnu::always_inline]] inline void contiguous_stretch(const Body& local,
                                                      const std::int64_t (&base)[N], std::int64_t i,
                                                      std::int64_t run) {
  std::int64_t b[N];
  for (int k = 0; k < N; ++k) b[k] = base[k];
  EMBER_IVDEP
  for (std::int64_t j = 0; j < run; ++j) {
    std::int64_t off[N];
    for (int k = 0; k < N; ++k) off[k] = b[k] + j;
    local(i + j, off);
  }
}

template <int N, typename Body>
EMBER_CPU_CLONES void contiguous_run(const Body& body, const std::int64_t (&base)[N],
                                     std::int64_t i, std::int64_t run) {
  static_assert(IndependentBody<Body>);
  const Body local = body;
  contiguous_stretch<N>(local, base, i, run);
}

// The shortest stretch worth a call into the cloned contiguous loop: shorter rows (a (200, 5)
// table's) run the plain loop inline, which gives the same bits.
inline constexpr std::int64_t kMinClonedRun = 16;

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
  bool unit_inner = IndependentBody<std::remove_cvref_t<Body>>;
  for (int k = 0; k < N; ++k) unit_inner = unit_inner && calc.strides[k][0] == 1;
  while (i < end) {
    const std::int64_t run = std::min<std::int64_t>(inner - coord[0], end - i);
    bool flat = false;
    if constexpr (IndependentBody<std::remove_cvref_t<Body>>) {
      flat = unit_inner && run >= kMinClonedRun;
      if (flat) contiguous_run<N>(body, base, i, run);
    }
    if (!flat) {
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

// `calc` with its two innermost dims swapped, and the walk's linear index (in calc's order)
// as one more operand, so that a walk of the result still knows each element's own index.
template <int N>
OffsetCalc<N + 1> swap_inner_dims(const OffsetCalc<N>& calc) {
  OffsetCalc<N + 1> swapped;
  swapped.ndim = calc.ndim;
  swapped.scalars = calc.scalars;
  std::int64_t index_stride = 1;
  for (int d = 0; d < calc.ndim; ++d) {
    const int to = d == 0 ? 1 : d == 1 ? 0 : d;
    swapped.sizes[to] = calc.sizes[d];
    for (int k = 0; k < N; ++k) swapped.strides[k][to] = calc.strides[k][d];
    swapped.strides[N][to] = index_stride;
    index_stride *= calc.sizes[d];
  }
  return swapped;
}

// Whether a walk's innermost dim is short and the next one long (a (200, 2) op against a
// (200, 1) operand, which keeps the dims from merging): walking the long dim innermost saves
// per-row bookkeeping that would cost more than the row's few elements.
template <int N>
bool short_inner_dim(const OffsetCalc<N>& calc) {
  return calc.ndim >= 2 && calc.sizes[0] < kMinClonedRun && calc.sizes[1] >= 2 * calc.sizes[0];
}

// `run(swapped, body')`: a walk of calc with its two innermost dims swapped, body' passing
// each element's own index and offsets on to body.
template <int N, typename Body, typename Run>
void swapped_walk(const OffsetCalc<N>& calc, Body&& body, Run&& run) {
  const OffsetCalc<N + 1> swapped = swap_inner_dims(calc);
  auto by_own_index = [&body](std::int64_t, const std::int64_t(&off)[N + 1]) {
    std::int64_t own[N];
    for (int k = 0; k < N; ++k) own[k] = off[k];
    body(off[N], own);
  };
  run(swapped, by_own_index);
}

// Parallel walk over the whole iteration space; an elementwise one with a short innermost
// dim walks the next dim innermost (short_inner_dim). Each element is still computed once,
// from its own index.
template <int N, typename Body>
void walk(const OffsetCalc<N>& calc, std::int64_t n, Body&& body) {
  if constexpr (IndependentBody<std::remove_cvref_t<Body>>) {
    if (short_inner_dim(calc)) {
      swapped_walk(calc, body, [n](const auto& swapped, const auto& by_own_index) {
        parallel_for(n, kParallelGrain, [&](std::int64_t begin, std::int64_t end) {
          walk_range(swapped, begin, end, by_own_index);
        });
      });
      return;
    }
  }
  parallel_for(n, kParallelGrain,
               [&](std::int64_t begin, std::int64_t end) { walk_range(calc, begin, end, body); });
}

// True when every operand of the walk is contiguous and unbroadcast, or (with `scalars`) a
// scalar argument: a flat loop suffices.
template <int N>
bool all_flat(const OffsetCalc<N>& calc, bool scalars = false) {
  if (calc.ndim > 1) return false;
  if (calc.ndim == 0) return true;
  for (int k = 0; k < N; ++k)
    if (calc.strides[k][0] != 1 && !(scalars && (calc.scalars >> k & 1u) != 0)) return false;
  return true;
}

// Elements per block of a flat loop with scalar operands: each scalar's slot holds this many
// copies of its value, so within a block it is read with stride 1 like a tensor operand.
inline constexpr std::int64_t kSplat = 64;

// body(i, offsets) for i in [begin, end) of contiguous operands and scalar ones (the bits of
// `scalars`), block by block: a tensor operand's offset is i (i - shift for the bits of
// `shifted`: RangedLoop's local operands), a scalar's its place in the block, so every block
// is a flat loop that vectorizes.
template <int N, typename Body>
EMBER_CPU_CLONES void flat_range_with_scalars(const Body& body, unsigned scalars,
                                              std::int64_t begin, std::int64_t end,
                                              std::int64_t shift = 0, unsigned shifted = 0) {
  static_assert(IndependentBody<Body>);
  const Body local = body;
  for (std::int64_t lo = begin; lo < end; lo += kSplat) {
    std::int64_t base[N];
    for (int k = 0; k < N; ++k) {
      base[k] = (scalars >> k & 1u) != 0 ? 0 : (shifted >> k & 1u) != 0 ? lo - shift : lo;
    }
    contiguous_stretch<N>(local, base, lo, std::min(kSplat, end - lo));
  }
}

// The scalar operands of one loop: kSplat copies of each value (see Loop).
inline constexpr int kScalarSlots = 4;
struct alignas(64) ScalarSlot {
  unsigned char bytes[8 * kSplat];
};
// Fills a slot with kSplat copies of `value` as a T.
template <typename T>
void set_slot(void* slot, double value) {
  T* s = static_cast<T*>(slot);
  for (std::int64_t j = 0; j < kSplat; ++j) new (s + j) T(static_cast<T>(value));
}
struct ScalarSlots {
  ScalarSlot at[kScalarSlots];
};

// A loop that a run of the CPU launcher offers to bind (Backend::run_bound): the first run
// of the call, with the loop, its geometry and its body copied into `bound`, and the slots
// of its scalar operands, which a loop takes from the heap while a call is being bound, kept
// alive with it. A call binds when it ran exactly one loop and that loop reads no densified
// copy (memory of the thread, which later calls reuse). `scalars`: every scalar operand the
// call read, with the slot the bound loop reads it from, so that a value that changes
// between runs can be put there (engine/compile/plan.cpp).
struct BindSink {
  std::function<void()> bound;
  std::vector<BoundScalar> scalars;
  RangedLoop ranged;  // the loop in parts, where it can run so (RangedLoop)
  int runs = 0;
  bool bindable = true;
  bool capture = false;  // bind only: the launcher runs none of what it offers
};
// The calling thread's sink while a call is being bound; null otherwise.
extern constinit thread_local BindSink* t_bind_sink;

// Offers `run` (the work a launcher is about to do, with everything it needs copied in) to the
// call being bound on this thread, if one is: it binds when this is the only work the call
// does and `bindable` (its memory is not the thread's scratch, say). No sink: nothing is made.
template <typename F>
void offer_binding(F&& run, bool bindable = true) {
  BindSink* const sink = t_bind_sink;
  if (sink == nullptr) return;
  if (++sink->runs == 1 && bindable) {
    sink->bound = std::forward<F>(run);
  } else {
    sink->bindable = false;
  }
}

// Whether the call being bound on this thread only binds (Backend::run_bound's `capture`): a
// launcher returns after offering its work, without running it.
inline bool capturing() {
  const BindSink* const sink = t_bind_sink;
  return sink != nullptr && sink->capture;
}

// The sink of the call being bound on this thread when it has bound one loop, whose parts
// (BindSink::ranged) the launcher may offer too; null otherwise (nothing need be made).
inline BindSink* parts_sink() {
  BindSink* const sink = t_bind_sink;
  return sink != nullptr && sink->runs == 1 && sink->bindable ? sink : nullptr;
}

// [begin, end) of a flat loop (all_flat(calc, true)) whose scalar operands are the bits of
// `scalars`; the operands of the bits of `shifted` at element i - shift (RangedLoop::run).
template <int N, typename Body>
void flat_part(const Body& body, unsigned scalars, std::int64_t begin, std::int64_t end,
               std::int64_t shift = 0, unsigned shifted = 0) {
  if (scalars == 0 && shifted == 0) {
    flat_range<N>(body, begin, end);
  } else {
    flat_range_with_scalars<N>(body, scalars, begin, end, shift, shifted);
  }
}

// A flat loop over n elements (all_flat(calc, true)), split across threads.
template <int N, typename Body>
void run_flat(std::int64_t n, const Body& body, unsigned scalars) {
  parallel_for(n, kParallelGrain, [&](std::int64_t begin, std::int64_t end) {
    flat_part<N>(body, scalars, begin, end);
  });
}

template <int N, typename Body>
void run_loop(std::int64_t n, const OffsetCalc<N>& calc, const Body& body) {
  if constexpr (AccumulatingBody<Body>) {
    if constexpr (AnyDimOrderBody<Body>) {
      if (short_inner_dim(calc)) {
        swapped_walk(calc, body, [n](const auto& swapped, const auto& by_own_index) {
          walk_range(swapped, 0, n, by_own_index);
        });
        return;
      }
    }
    walk_range(calc, 0, n, body);
  } else {
    if (all_flat(calc, true)) {
      run_flat<N>(n, body, calc.scalars);
      return;
    }
    walk(calc, n, body);
  }
}

// The CPU launcher's loop for the shared elementwise bodies. Contiguous operands take a flat
// loop in which every offset is the index itself (it vectorizes); bodies that accumulate
// into indexed positions run on one thread, since repeated indices would race. A scalar
// operand is read through a pointer to a slot of the loop, kSplat copies of its value, so
// element loops carry no branch on whether an operand is a scalar: beside contiguous
// operands it is read block by block with stride 1 (flat_range_with_scalars), in a strided
// walk with stride 0.
class Loop {
 public:
  // Enough for the scalar operands of one body: a distribution's value and its parameters
  // (kernels/cpu/distributions.cpp checks kMaxDistParams against it).
  static constexpr int kSlots = kScalarSlots;
  // A thread walks a range of elements: bodies that can walk a row each take the row form.
  static constexpr bool kThreadPerElement = false;

  // The slot scalar operand `a` is read from, as a T.
  template <typename T>
  const T* scalar_slot(const TensorArg& a) {
    static_assert(sizeof(T) <= sizeof(ScalarSlot) / kSplat);
    EMBER_CHECK(used_ < kSlots, "a CPU kernel was given more than ", kSlots, " scalar operands");
    // While a call is being bound its slots outlive the call: the bound loop reads them.
    BindSink* const sink = t_bind_sink;
    if (sink != nullptr && !bound_slots_) bound_slots_ = std::make_shared<ScalarSlots>();
    ScalarSlot& s = bound_slots_ ? bound_slots_->at[used_++] : slots_[used_++];
    set_slot<T>(s.bytes, a.scalar);
    if (sink != nullptr) sink->scalars.push_back({a.scalar, s.bytes, &set_slot<T>});
    return reinterpret_cast<const T*>(s.bytes);
  }
  // Scalar operand `a` taken by value into a loop's body (a log-density's fixed scale).
  template <typename T>
  T scalar_value(const TensorArg& a) const {
    if (BindSink* const sink = t_bind_sink) sink->scalars.push_back({a.scalar, nullptr, nullptr});
    return static_cast<T>(a.scalar);
  }

  // An operand broadcast along the innermost dim of `out` (stride 0 there where out's
  // innermost size is above 1), of at most kDenseMax elements, as a contiguous copy in a
  // buffer of the calling thread: the op then runs as a flat loop that vectorizes instead of
  // a walk element by element (a row's value against the row, as in x / x.sum(-1, true)).
  // Any other operand is returned as it is. The values, and so the results, are the same.
  TensorArg densify(const TensorArg& a, const TensorArg& out);

  // A value-initialized Loop would zero its slots on every call; they are written before use.
  Loop() noexcept {}  // NOLINT(modernize-use-equals-default)

  // `args`: the operands of the body, in its order (null: not known, as for a body that
  // indexes memory by the element's own index).
  template <int N, typename Body>
  void run(std::int64_t n, const OffsetCalc<N>& calc, const Body& body,
           const TensorArg* const* args = nullptr) const {
    if constexpr (IndependentBody<Body>) {
      if (all_flat(calc, true)) {
        // Bound without the geometry, which a flat loop does not read: a replay of many
        // small calls then reads one or two cache lines of each call's closure, not six.
        const unsigned scalars = calc.scalars;
        offer_binding([n, body, scalars, slots = bound_slots_] { run_flat<N>(n, body, scalars); },
                      dense_used_ == 0);
        // It also runs in parts, for fusing with its neighbours; its operands in memory are
        // read and written at the element's own offset.
        if (BindSink* const sink = parts_sink()) {
          sink->ranged.n = n;
          sink->ranged.run = [body, scalars, slots = bound_slots_](std::int64_t b, std::int64_t e,
                                                                   void*, std::int64_t shift,
                                                                   unsigned local) {
            flat_part<N>(body, scalars, b, e, shift, local);
          };
          for (int k = 0; k < N && args != nullptr; ++k) {
            const bool scalar = (scalars >> k & 1u) != 0;
            sink->ranged.add_operand(scalar ? nullptr : args[k]->data,
                                     scalar ? 0 : element_size(args[k]->dtype));
          }
        }
        if (capturing()) return;
        run_flat<N>(n, body, scalars);
        return;
      }
    }
    offer_binding([n, calc, body, slots = bound_slots_] { run_loop(n, calc, body); },
                  dense_used_ == 0);
    if (capturing()) return;
    run_loop(n, calc, body);
  }

 private:
  ScalarSlot slots_[kSlots];
  std::shared_ptr<ScalarSlots> bound_slots_;
  int used_ = 0;
  int dense_used_ = 0;
};

}  // namespace ember::kernels::cpu
