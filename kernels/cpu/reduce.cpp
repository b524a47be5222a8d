// Reductions and scans on the CPU. A reduction to one value splits its range across threads
// (up to 256 slices, combined in order); one to many values gives each thread a share of
// the outputs. Contiguous ranges use 32 independent accumulators, so the adds do not wait
// on each other and the loop runs at memory speed. float32 accumulates in double.
#include "kernels/common/areas/reduce.hpp"

#include <algorithm>

#include "kernels/common/areas/scan.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/common/op_lists.hpp"
#include "kernels/common/reduce_bodies.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace ember::kernels {
namespace cpu {
namespace {

// A full reduction of [0, n): range(begin, end) reduces one slice; long ranges are split
// across threads (reduce_slices) and the slices' results combined in order.
template <typename Acc, typename Range, typename Combine>
Acc split_reduce(std::int64_t n, Acc identity, Range&& range, Combine&& combine) {
  const ReduceSlices slices = reduce_slices(n);
  if (slices.count == 1) return combine(identity, range(0, n));
  Acc partial[kMaxReduceSlices];
  parallel_for(slices.count, 0, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t)
      partial[t] = range(t * slices.chunk, std::min(n, (t + 1) * slices.chunk));
  });
  Acc acc = identity;
  for (int t = 0; t < slices.count; ++t) acc = combine(acc, partial[t]);
  return acc;
}

// Running accumulators of a contiguous reduction: four vectors of double (float32
// accumulates in double) with AVX-512, so that the adds of one step do not wait on the last
// step's (one vector's chain of adds would hold the loop to the add's latency).
inline constexpr int kReduceLanes = 32;

// Element j of [begin, end) into accumulator (j - begin) % kReduceLanes, a block of
// kReduceLanes elements at a time, for the blocks that fit before `end`; j is left at the
// first element past them.
template <int N, typename Acc, typename AccCombine, typename Load>
[[gnu::always_inline]] inline void reduce_blocks(const Load& load, const std::int64_t* base,
                                                 Acc (&lanes)[kReduceLanes], std::int64_t& j,
                                                 std::int64_t end) {
  const AccCombine combine{};
  for (; j + kReduceLanes <= end; j += kReduceLanes) {
    for (int k = 0; k < kReduceLanes; ++k) {
      std::int64_t r[N];
      for (int q = 0; q < N; ++q) r[q] = j + k;
      lanes[k] = combine(lanes[k], static_cast<Acc>(load(base, r)));
    }
  }
}

// acc combined with element after element of [j, end).
template <int N, typename Acc, typename AccCombine, typename Load>
[[gnu::always_inline]] inline Acc combine_from(const Load& load, const std::int64_t* base, Acc acc,
                                               std::int64_t j, std::int64_t end) {
  const AccCombine combine{};
  for (; j < end; ++j) {
    std::int64_t r[N];
    for (int q = 0; q < N; ++q) r[q] = j;
    acc = combine(acc, static_cast<Acc>(load(base, r)));
  }
  return acc;
}

// acc combined with each accumulator in order: how a flat reduction ends.
template <typename Acc, typename AccCombine>
[[gnu::always_inline]] inline Acc combine_lanes(Acc acc, const Acc (&lanes)[kReduceLanes]) {
  const AccCombine combine{};
  for (const Acc& l : lanes) acc = combine(acc, l);
  return acc;
}

// The combination of load(base, {j, ...}) for j in [begin, end), every input contiguous:
// blocks of kReduceLanes elements into as many accumulators (reduce_blocks), the rest (end -
// begin not a multiple) into one more, and the accumulators combined into it in order.
// Inlined into flat_reduce below and, for short ranges, into the caller: the same operations
// in the same order either way (and over parts, in flat_reduce_part and offer_parts).
template <int N, typename Acc, typename AccCombine, typename Load>
[[gnu::always_inline]] inline Acc flat_reduce_range(const Load& load, const std::int64_t* base,
                                                    std::int64_t begin, std::int64_t end) {
  const AccCombine combine{};
  if (end - begin < kReduceLanes) {
    // Every accumulator would stay at the identity, which changes acc once at most (a
    // sum's -0 to +0): combined once.
    return combine(combine_from<N, Acc, AccCombine>(load, base, AccCombine::identity(), begin, end),
                   AccCombine::identity());
  }
  Acc lanes[kReduceLanes];
  for (Acc& l : lanes) l = AccCombine::identity();
  std::int64_t j = begin;
  reduce_blocks<N, Acc, AccCombine>(load, base, lanes, j, end);
  return combine_lanes<Acc, AccCombine>(
      combine_from<N, Acc, AccCombine>(load, base, AccCombine::identity(), j, end), lanes);
}

// flat_reduce_range compiled for each instruction set (EMBER_CPU_CLONES), so that the
// accumulators are vectors of the machine's width.
template <int N, typename Acc, typename AccCombine, typename Load>
EMBER_CPU_CLONES Acc flat_reduce(const Load& load, const std::int64_t* base, std::int64_t begin,
                                 std::int64_t end) {
  const Load local = load;
  return flat_reduce_range<N, Acc, AccCombine>(local, base, begin, end);
}

// What a full flat reduction run in parts carries from part to part (RangedLoop).
template <typename Acc>
struct ReduceCarry {
  Acc lanes[kReduceLanes];
  Acc rest;
};

// One part [begin, end) of a full flat reduction of at least kReduceLanes elements whose
// parts, but for the last, are multiples of kReduceLanes long: its blocks into the carried
// accumulators, a last part's rest into `rest`, as flat_reduce_range would over the whole.
// The inputs of the bits of `shifted` are read at element j - shift (RangedLoop::run).
template <int N, typename Acc, typename AccCombine, typename Load>
EMBER_CPU_CLONES void flat_reduce_part(const Load& load, ReduceCarry<Acc>* carry,
                                       std::int64_t begin, std::int64_t end, std::int64_t shift,
                                       unsigned shifted) {
  const Load local = load;
  std::int64_t base[N];
  for (int k = 0; k < N; ++k) base[k] = (shifted >> k & 1u) != 0 ? -shift : 0;
  Acc lanes[kReduceLanes];
  for (int k = 0; k < kReduceLanes; ++k) lanes[k] = carry->lanes[k];
  std::int64_t j = begin;
  reduce_blocks<N, Acc, AccCombine>(local, base, lanes, j, end);
  for (int k = 0; k < kReduceLanes; ++k) carry->lanes[k] = lanes[k];
  carry->rest = combine_from<N, Acc, AccCombine>(local, base, carry->rest, j, end);
}

// Shorter ranges (a row of a small table) run inline: a call through the clones' dispatch
// would cost more than the row.
inline constexpr std::int64_t kMinClonedReduce = 4 * kReduceLanes;

// out = the combination (Combine, accumulated in HostAcc<T>) over the reduced dims of
// load's inputs, for every output.
template <typename T, typename Combine, typename Load>
void reduce_run(const ReduceGeometryN<Load::kInputs>& geo, T* o, const Load& load) {
  constexpr int N = Load::kInputs;
  using Acc = typename HostAcc<T>::type;
  using AccCombine = typename Combine::template As<Acc>;
  const AccCombine combine{};
  bool flat = geo.reduced.ndim == 1;
  for (int k = 0; k < N; ++k) flat = flat && geo.reduced.strides[k][0] == 1;
  auto reduce_range = [&](const std::int64_t* base, std::int64_t begin, std::int64_t end) {
    if (flat && end - begin >= kMinClonedReduce)
      return flat_reduce<N, Acc, AccCombine>(load, base, begin, end);
    if (flat) return flat_reduce_range<N, Acc, AccCombine>(load, base, begin, end);
    Acc acc = AccCombine::identity();
    walk_range(geo.reduced, begin, end, [&](std::int64_t, const std::int64_t(&r)[N]) {
      acc = combine(acc, static_cast<Acc>(load(base, r)));
    });
    return acc;
  };
  if (geo.n_out == 1) {
    const std::int64_t zero[N] = {};
    o[0] = static_cast<T>(split_reduce<Acc>(
        geo.n_red, AccCombine::identity(),
        [&](std::int64_t b, std::int64_t e) { return reduce_range(zero, b, e); }, combine));
    return;
  }
  const std::int64_t grain =
      std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(1, geo.n_red));
  // Outputs along one contiguous kept dim, one reduced dim (a sum over a batch's rows): a
  // band of outputs accumulates row after row, so the inner loop runs over contiguous
  // elements and vectorizes. Each output still adds its inputs in order, as below.
  bool columns = geo.kept.ndim == 1 && geo.reduced.ndim == 1;
  for (int k = 0; k <= N; ++k) columns = columns && geo.kept.strides[k][0] == 1;
  if (columns) {
    parallel_for(geo.n_out, grain, [&](std::int64_t b, std::int64_t e) {
      constexpr std::int64_t kBand = 512;
      Acc acc[kBand];
      const std::int64_t zero[N] = {};
      for (std::int64_t j0 = b; j0 < e; j0 += kBand) {
        const std::int64_t w = std::min(kBand, e - j0);
        for (std::int64_t j = 0; j < w; ++j) acc[j] = AccCombine::identity();
        for (std::int64_t i = 0; i < geo.n_red; ++i) {
          std::int64_t row[N];
          for (int q = 0; q < N; ++q) row[q] = i * geo.reduced.strides[q][0] + j0;
          for (std::int64_t j = 0; j < w; ++j) {
            std::int64_t r[N];
            for (int q = 0; q < N; ++q) r[q] = row[q] + j;
            acc[j] = combine(acc[j], static_cast<Acc>(load(zero, r)));
          }
        }
        for (std::int64_t j = 0; j < w; ++j) o[j0 + j] = static_cast<T>(acc[j]);
      }
    });
    return;
  }
  parallel_for(geo.n_out, grain, [&](std::int64_t b, std::int64_t e) {
    walk_range(geo.kept, b, e, [&](std::int64_t, const std::int64_t(&off)[N + 1]) {
      o[off[0]] = static_cast<T>(reduce_range(off + 1, 0, geo.n_red));
    });
  });
}

// While a call is being bound, a full reduction of flat operands (one output) that
// reduce_run adds in one slice offers itself in parts too (RangedLoop), with the same
// operations in the same order: blocks into the carried accumulators part by part, the rest
// and the accumulators combined at the end as flat_reduce_range does.
template <typename T, typename Combine, typename Load>
void offer_parts(const ReduceGeometryN<Load::kInputs>& geo, T* o, const Load& load) {
  constexpr int N = Load::kInputs;
  using Acc = typename HostAcc<T>::type;
  using AccCombine = typename Combine::template As<Acc>;
  using Carry = ReduceCarry<Acc>;
  static_assert(sizeof(Carry) <= kFuseCarryBytes && alignof(Carry) <= 64);
  static_assert(kFuseAlign % kReduceLanes == 0);
  BindSink* const sink = parts_sink();
  if (sink == nullptr) return;
  bool flat = geo.n_out == 1 && geo.reduced.ndim == 1 && geo.n_red >= kReduceLanes;
  for (int k = 0; k < N && flat; ++k) flat = geo.reduced.strides[k][0] == 1;
  if (!flat) return;
  sink->ranged.n = geo.n_red;
  sink->ranged.reduces = true;
  sink->ranged.start = [](void* c) {
    auto* carry = static_cast<Carry*>(c);
    for (Acc& l : carry->lanes) l = AccCombine::identity();
    carry->rest = AccCombine::identity();
  };
  sink->ranged.run = [load](std::int64_t b, std::int64_t e, void* c, std::int64_t shift,
                            unsigned local) {
    flat_reduce_part<N, Acc, AccCombine>(load, static_cast<Carry*>(c), b, e, shift, local);
  };
  for (int k = 0; k < N; ++k) sink->ranged.add_operand(load.in[k], sizeof(T));
  sink->ranged.finish = [o](const unsigned char* carries, std::size_t stride, int slices) {
    // Each slice's accumulators combined as flat_reduce_range does, the slices as
    // split_reduce does.
    const AccCombine combine{};
    Acc acc = AccCombine::identity();
    for (int s = 0; s < slices; ++s) {
      const auto* carry = reinterpret_cast<const Carry*>(carries + s * stride);
      acc = combine(acc, combine_lanes<Acc, AccCombine>(carry->rest, carry->lanes));
    }
    o[0] = static_cast<T>(acc);
  };
}

// reduce_run with the geometry of these operands; while a compiled step binds its calls
// (Backend::run_bound), the reduction offers itself bound: later replays skip the geometry.
template <typename T, typename Combine, typename Load>
void reduce_impl(const TensorArg& out, const TensorArg* const (&ins)[Load::kInputs],
                 const Load& load) {
  const ReduceGeometryN<Load::kInputs> geo = reduce_geometry<Load::kInputs>(out, ins);
  T* const o = out.ptr<T>();
  offer_binding([geo, o, load] { reduce_run<T, Combine>(geo, o, load); });
  offer_parts<T, Combine>(geo, o, load);
  if (capturing()) return;
  reduce_run<T, Combine>(geo, o, load);
}

// walk_range over lines [begin, end), compiled for each instruction set (EMBER_CPU_CLONES) with
// the walk and the line's body inlined: a line's own loops are short and strided, and gain
// from the wider set more than from a call.
template <int N, typename Body>
EMBER_CPU_CLONES [[gnu::flatten]] void walk_lines(const OffsetCalc<N>& lines, std::int64_t begin,
                                                  std::int64_t end, const Body& body) {
  walk_range(lines, begin, end, body);
}

// Whether every line reads operand k's same elements (a mixture's weights broadcast over a data
// plate), so that what depends on that operand alone can be computed once for all the lines.
template <int N>
bool shared_by_every_line(const OffsetCalc<N>& lines, int k) {
  for (int d = 0; d < lines.ndim; ++d)
    if (lines.strides[k][d] != 0) return false;
  return true;
}

// A Categorical's log-densities of lines [begin, end) in blocks: each line's ratio (or its
// result) first, one line after another, then the block's logs in one loop that vectorizes,
// where a log per line would be a call to the C library's scalar log (or a polynomial's long
// chain of dependent steps) for every few elements read. A table of probabilities shared by
// every line is summed once (line_sum, as each line would).
template <typename T, typename V>
EMBER_CPU_CLONES [[gnu::flatten]] void categorical_log_prob_lines(
    const OffsetCalc<3>& lines, std::int64_t begin, std::int64_t end,
    const CategoricalLogProbLines<T, V>& body) {
  const bool shared = !body.logits && shared_by_every_line(lines, body.kTable);
  const T sum = shared ? line_sum(body.table, body.s_table, body.len) : T(0);
  constexpr std::int64_t kBlock = 64;
  T pre[kBlock];
  std::int64_t at[kBlock];
  for (std::int64_t lo = begin; lo < end; lo += kBlock) {
    const std::int64_t count = std::min(kBlock, end - lo);
    walk_range(lines, lo, lo + count, [&](std::int64_t i, const std::int64_t(&off)[3]) {
      pre[i - lo] = shared ? body.pre_given_sum(off, sum) : body.pre(off);
      at[i - lo] = off[0];
    });
    for (std::int64_t j = 0; j < count; ++j) pre[j] = categorical_log_prob_finish(pre[j]);
    for (std::int64_t j = 0; j < count; ++j) body.out[at[j]] = pre[j];
  }
}

// The gradient's and the draws' lines, a shared table of probabilities summed once.
template <typename T, int N, typename Body>
EMBER_CPU_CLONES [[gnu::flatten]] void categorical_lines(const OffsetCalc<N>& lines,
                                                         std::int64_t begin, std::int64_t end,
                                                         const Body& body) {
  if (body.logits || !shared_by_every_line(lines, Body::kTable))
    return walk_range(lines, begin, end, body);
  const T sum = line_sum(body.table, body.s_table, body.len);
  walk_range(lines, begin, end,
             [&](std::int64_t, const std::int64_t(&off)[N]) { body.given_sum(off, sum); });
}

// A log-normalization and its gradient take kLanes lines at a time, their sums in lockstep
// (element j of each line, then j + 1): independent chains of adds, where one line after
// another waits on each add of a long line. Each sum still adds in line_sum's order, and each
// line finishes with the one-line body's last step: the same bits. offs[l] gets line l's
// operand offsets; lines past `count` repeat the first line's, so that every lane reads.
constexpr int kLanes = 8;

template <int N>
[[gnu::always_inline]] inline int lane_offsets(const OffsetCalc<N>& lines, std::int64_t lo,
                                               std::int64_t end, std::int64_t (&offs)[kLanes][N]) {
  const int count = static_cast<int>(std::min<std::int64_t>(kLanes, end - lo));
  walk_range(lines, lo, lo + count, [&](std::int64_t i, const std::int64_t(&off)[N]) {
    for (int k = 0; k < N; ++k) offs[i - lo][k] = off[k];
  });
  for (int l = count; l < kLanes; ++l)
    for (int k = 0; k < N; ++k) offs[l][k] = offs[0][k];
  return count;
}

template <typename T, int N>
[[gnu::always_inline]] inline void lane_sums(const T* base, const std::int64_t (&offs)[kLanes][N],
                                             int k, std::int64_t stride, std::int64_t len,
                                             T (&sums)[kLanes]) {
  for (int l = 0; l < kLanes; ++l) sums[l] = T(0);
  for (std::int64_t j = 0; j < len; ++j)
    for (int l = 0; l < kLanes; ++l) sums[l] += base[offs[l][k] + j * stride];
}

template <typename T>
EMBER_CPU_CLONES [[gnu::flatten]] void line_map_lines(const OffsetCalc<2>& lines,
                                                      std::int64_t begin, std::int64_t end,
                                                      const LineMapLines<T>& body) {
  if (body.op != LineMap::LogNormalize) return walk_range(lines, begin, end, body);
  std::int64_t offs[kLanes][2];  // in's, out's
  T sums[kLanes];
  for (std::int64_t lo = begin; lo < end; lo += kLanes) {
    const int count = lane_offsets(lines, lo, end, offs);
    lane_sums(body.in, offs, 0, body.s_in, body.len, sums);
    for (int l = 0; l < count; ++l) {
      log_normalize_given_sum(body.out + offs[l][1], body.s_out, body.in + offs[l][0], body.s_in,
                              body.len, sums[l]);
    }
  }
}

template <typename T>
EMBER_CPU_CLONES [[gnu::flatten]] void line_backward_lines(const OffsetCalc<3>& lines,
                                                           std::int64_t begin, std::int64_t end,
                                                           const LineBackwardLines<T>& body) {
  if (body.op != LineGrad::LogNormalize) return walk_range(lines, begin, end, body);
  std::int64_t offs[kLanes][3];  // gx's, g's, x's
  T sum_g[kLanes], sum_x[kLanes];
  for (std::int64_t lo = begin; lo < end; lo += kLanes) {
    const int count = lane_offsets(lines, lo, end, offs);
    lane_sums(body.g, offs, 1, body.s_g, body.len, sum_g);
    lane_sums(body.x, offs, 2, body.s_x, body.len, sum_x);
    for (int l = 0; l < count; ++l) {
      log_normalize_backward_given_sums(body.gx + offs[l][0], body.s_gx, body.g + offs[l][1],
                                        body.s_g, body.x + offs[l][2], body.s_x, body.len, sum_g[l],
                                        sum_x[l]);
    }
  }
}

// walk_lines as for_each_line's default walk.
struct WalkLines {
  template <int N, typename Body>
  void operator()(const OffsetCalc<N>& lines, std::int64_t begin, std::int64_t end,
                  const Body& body) const {
    walk_lines(lines, begin, end, body);
  }
};

// Calls body(line offsets) for each line of args along dim, lines split across threads, each
// thread's range through walk(lines, begin, end, body) (an op whose lines run better together
// passes its own walk). The body holds what it reads by value (pointers, strides): the walk is
// offered bound (Backend::run_bound), so a replay of the call skips its dispatch and geometry.
template <int N, typename Body, typename Walk = WalkLines>
void for_each_line(const LineGeometry<N>& geo, const Body& body, Walk walk = {}) {
  const auto run = [geo, body, walk] {
    parallel_for(geo.n_lines,
                 std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(1, geo.len)),
                 [&](std::int64_t b, std::int64_t e) { walk(geo.lines, b, e, body); });
  };
  offer_binding(run);
  if (capturing()) return;
  run();
}

}  // namespace

void launch_reduce(CpuBackend&, ReduceOp op, const TensorArg& out, const TensorArg& in) {
  dispatch_arith(out.dtype, "reduce", [&]<typename T>() {
    visit_op<T>(ReduceOps{}, static_cast<int>(op), [&]<typename Combine>() {
      const TensorArg* ins[1] = {&in};
      reduce_impl<T, Combine>(out, ins, LoadOne<T>{{in.ptr<const T>()}});
    });
  });
}

void launch_reduce_product(CpuBackend&, const TensorArg& out, const TensorArg& a,
                           const TensorArg& b) {
  dispatch_floating(out.dtype, "reduce_product", [&]<typename T>() {
    const TensorArg* ins[2] = {&a, &b};
    reduce_impl<T, SumReduce<T>>(out, ins, LoadProduct<T>{{a.ptr<const T>(), b.ptr<const T>()}});
  });
}

void launch_scan(CpuBackend&, ScanOp op, const TensorArg& out, const TensorArg& in, int dim,
                 bool reverse) {
  dispatch_arith(out.dtype, op == ScanOp::Sum ? "cumsum" : "cumprod", [&]<typename T>() {
    visit_op<T>(ScanOps{}, static_cast<int>(op), [&]<typename Combine>() {
      const TensorArg* args[2] = {&out, &in};
      const LineGeometry<2> geo = line_geometry(args, dim);
      for_each_line(
          geo, [o = out.ptr<T>(), i = in.ptr<const T>(), so = geo.strides[0], si = geo.strides[1],
                len = geo.len, reverse](std::int64_t, const std::int64_t(&off)[2]) {
            scan_line<Combine>(o + off[0], so, i + off[1], si, len, reverse);
          });
    });
  });
}

void launch_line_map(CpuBackend&, LineMap op, const TensorArg& out, const TensorArg& in, int dim) {
  dispatch_floating(out.dtype, line_map_name(op), [&]<typename T>() {
    const TensorArg* args[2] = {&in, &out};  // in first: the line's length is in's
    const LineGeometry<2> geo = line_geometry(args, dim);
    for_each_line(geo,
                  LineMapLines<T>{op, out.ptr<T>(), in.ptr<const T>(), geo.strides[1],
                                  geo.strides[0], geo.len},
                  &line_map_lines<T>);
  });
}

void launch_line_backward(CpuBackend&, LineGrad op, const TensorArg& gx, const TensorArg& g,
                          const TensorArg& x, int dim) {
  dispatch_floating(gx.dtype, line_grad_name(op), [&]<typename T>() {
    const TensorArg* args[3] = {&gx, &g, &x};
    const LineGeometry<3> geo = line_geometry(args, dim);
    for_each_line(geo,
                  LineBackwardLines<T>{op, gx.ptr<T>(), g.ptr<const T>(), x.ptr<const T>(),
                                       geo.strides[0], geo.strides[1], geo.strides[2], geo.len},
                  &line_backward_lines<T>);
  });
}

void launch_categorical_log_prob(CpuBackend&, const TensorArg& out, const TensorArg& table,
                                 const TensorArg& value, bool logits) {
  dispatch_floating(out.dtype, "Categorical.log_prob", [&]<typename T>() {
    dispatch_index_or<T>(value.dtype, "Categorical.log_prob value", [&]<typename V>() {
      const TensorArg* args[3] = {&out, &table, &value};
      const LineGeometry<3> geo = line_geometry(args, out.ndim - 1);
      for_each_line(
          geo,
          CategoricalLogProbLines<T, V>{out.ptr<T>(), table.ptr<const T>(), value.ptr<const V>(),
                                        geo.strides[1], geo.len, logits},
          &categorical_log_prob_lines<T, V>);
    });
  });
}

void launch_categorical_log_prob_backward(CpuBackend&, const TensorArg& gtable, const TensorArg& g,
                                          const TensorArg& table, const TensorArg& value,
                                          bool logits) {
  dispatch_floating(gtable.dtype, "Categorical.log_prob backward", [&]<typename T>() {
    dispatch_index_or<T>(value.dtype, "Categorical.log_prob value", [&]<typename V>() {
      const TensorArg* args[4] = {&gtable, &g, &table, &value};
      const LineGeometry<4> geo = line_geometry(args, gtable.ndim - 1);
      for_each_line(geo,
                    CategoricalLogProbBackwardLines<T, V>{
                        gtable.ptr<T>(), g.ptr<const T>(), table.ptr<const T>(),
                        value.ptr<const V>(), geo.strides[0], geo.strides[2], geo.len, logits},
                    &categorical_lines<T, 4, CategoricalLogProbBackwardLines<T, V>>);
    });
  });
}

void launch_categorical_sample(CpuBackend&, const TensorArg& out, const TensorArg& table,
                               const TensorArg& u, bool logits) {
  dispatch_floating(table.dtype, "Categorical.sample", [&]<typename T>() {
    const TensorArg* args[3] = {&out, &table, &u};
    const LineGeometry<3> geo = line_geometry(args, out.ndim - 1);
    for_each_line(geo,
                  CategoricalSampleLines<T>{out.ptr<std::int64_t>(), table.ptr<const T>(),
                                            u.ptr<const T>(), geo.strides[1], geo.len, logits},
                  &categorical_lines<T, 3, CategoricalSampleLines<T>>);
  });
}

}  // namespace cpu

template class ReduceArea<cpu::CpuBackend>;
template class ScanArea<cpu::CpuBackend>;

}  // namespace ember::kernels
