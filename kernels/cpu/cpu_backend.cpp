// The CPU launcher: iterates the shared math of kernels/math over strided host memory,
// in parallel across cores for large tensors. Matrix products go to Eigen.
#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/backend.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/cpu/cpu_linalg.hpp"
#include "kernels/cpu/cpu_loops.hpp"
#include "kernels/cpu/cpu_optim.hpp"
#include "kernels/cpu/host_allocator.hpp"

namespace ember::kernels::cpu {
namespace {

// A scalar operand becomes a pointer to a local copy with stride 0, so the loops read it
// like any broadcast tensor.
template <typename T>
struct Operand {
  T value{};
  const T* ptr;
  explicit Operand(const TensorArg& a) {
    if (a.is_scalar()) {
      value = static_cast<T>(a.scalar);
      ptr = &value;
    } else {
      ptr = a.ptr<const T>();
    }
  }
  Operand(const Operand&) = delete;
};

template <int N>
OffsetCalc<N> calc_of(const TensorArg* const (&args)[N]) {
  return make_offset_calc<N>(args);
}

template <typename Op, typename T>
void unary_impl(const TensorArg& out, const TensorArg& x, double p0, double p1) {
  const Op op{static_cast<T>(p0), static_cast<T>(p1)};
  T* o = out.ptr<T>();
  const T* in = x.ptr<const T>();
  const TensorArg* args[2] = {&out, &x};
  const auto calc = calc_of(args);
  const std::int64_t n = out.numel();
  if (all_flat(calc)) {
    parallel_for(n, kParallelGrain, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) o[i] = op.fwd(in[i]);
    });
    return;
  }
  walk(calc, n, [&](const std::int64_t(&off)[2]) { o[off[0]] = op.fwd(in[off[1]]); });
}

template <typename Op, typename T>
void unary_backward_impl(const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                         const TensorArg& y, double p0, double p1) {
  const Op op{static_cast<T>(p0), static_cast<T>(p1)};
  T* o = gx.ptr<T>();
  const T* gp = g.ptr<const T>();
  const T* xp = x.ptr<const T>();
  const T* yp = y.ptr<const T>();
  const TensorArg* args[4] = {&gx, &g, &x, &y};
  const auto calc = calc_of(args);
  walk(calc, gx.numel(), [&](const std::int64_t(&off)[4]) {
    o[off[0]] = op.bwd(gp[off[1]], xp[off[2]], yp[off[3]]);
  });
}

template <typename Op, typename T, typename Out>
void binary_impl(const TensorArg& out, const TensorArg& a, const TensorArg& b) {
  const Op op{};
  Out* o = out.ptr<Out>();
  const Operand<T> ao(a), bo(b);
  const T* ap = ao.ptr;
  const T* bp = bo.ptr;
  const TensorArg* args[3] = {&out, &a, &b};
  const auto calc = calc_of(args);
  const std::int64_t n = out.numel();
  if (calc.ndim <= 1) {
    // The common shapes: contiguous, or one operand a scalar/broadcast along the only dim.
    const std::int64_t sa = calc.ndim ? calc.strides[1][0] : 0;
    const std::int64_t sb = calc.ndim ? calc.strides[2][0] : 0;
    const std::int64_t so = calc.ndim ? calc.strides[0][0] : 0;
    parallel_for(n, kParallelGrain, [&](std::int64_t begin, std::int64_t end) {
      if (so == 1 && sa == 1 && sb == 1) {
        for (std::int64_t i = begin; i < end; ++i) o[i] = op.fwd(ap[i], bp[i]);
      } else if (so == 1 && sa == 1 && sb == 0) {
        const T bv = bp[0];
        for (std::int64_t i = begin; i < end; ++i) o[i] = op.fwd(ap[i], bv);
      } else if (so == 1 && sa == 0 && sb == 1) {
        const T av = ap[0];
        for (std::int64_t i = begin; i < end; ++i) o[i] = op.fwd(av, bp[i]);
      } else {
        for (std::int64_t i = begin; i < end; ++i) o[i * so] = op.fwd(ap[i * sa], bp[i * sb]);
      }
    });
    return;
  }
  walk(calc, n, [&](const std::int64_t(&off)[3]) { o[off[0]] = op.fwd(ap[off[1]], bp[off[2]]); });
}

template <typename Op, typename T>
void binary_backward_impl(const TensorArg* ga, const TensorArg* gb, const TensorArg& g,
                          const TensorArg& a, const TensorArg& b, const TensorArg& y) {
  const Op op{};
  T* gap = ga ? ga->ptr<T>() : nullptr;
  T* gbp = gb ? gb->ptr<T>() : nullptr;
  const Operand<T> ao(a), bo(b), yo(y);
  const T* gp = g.ptr<const T>();
  const T* ap = ao.ptr;
  const T* bp = bo.ptr;
  const T* yp = yo.ptr;
  // Unwanted outputs walk with g's strides and are never written.
  const TensorArg& ga_arg = ga ? *ga : g;
  const TensorArg& gb_arg = gb ? *gb : g;
  const TensorArg* args[6] = {&ga_arg, &gb_arg, &g, &a, &b, &y};
  const auto calc = calc_of(args);
  walk(calc, g.numel(), [&](const std::int64_t(&off)[6]) {
    const T gv = gp[off[2]], av = ap[off[3]], bv = bp[off[4]], yv = yp[off[5]];
    if (gap) gap[off[0]] = op.da(gv, av, bv, yv);
    if (gbp) gbp[off[1]] = op.db(gv, av, bv, yv);
  });
}

// A full reduction of [0, n): range(begin, end) reduces one slice; long ranges are split
// across threads (up to 256 slices) and the slices' results combined in order.
template <typename Acc, typename Range, typename Combine>
Acc split_reduce(std::int64_t n, Acc identity, Range&& range, Combine&& combine) {
#if defined(_OPENMP)
  const int nt = std::min(256, omp_get_max_threads());
#else
  const int nt = 1;
#endif
  if (n <= kParallelGrain || nt <= 1) return combine(identity, range(0, n));
  Acc partial[256];
  const std::int64_t chunk = (n + nt - 1) / nt;
  const int used = static_cast<int>((n + chunk - 1) / chunk);
  parallel_for(used, 0, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t)
      partial[t] = range(t * chunk, std::min(n, (t + 1) * chunk));
  });
  Acc acc = identity;
  for (int t = 0; t < used; ++t) acc = combine(acc, partial[t]);
  return acc;
}

template <typename T, typename Combine>
void reduce_impl(const TensorArg& out, const TensorArg& in) {
  using Acc = typename HostAcc<T>::type;
  const ReduceGeometry geo = reduce_geometry(out, in);
  const auto& kept = geo.kept;
  const auto& red = geo.reduced;
  const std::int64_t n_out = geo.n_out;
  const std::int64_t n_red = geo.n_red;
  T* o = out.ptr<T>();
  const T* ip = in.ptr<const T>();
  const bool flat_inner = red.ndim == 1 && red.strides[0][0] == 1;

  // Accumulate in Acc with Combine's own rule (max/min/sum/prod all apply to Acc too).
  using AccCombine = decltype([] {
    if constexpr (std::is_same_v<Combine, SumReduce<T>>)
      return SumReduce<Acc>{};
    else if constexpr (std::is_same_v<Combine, ProdReduce<T>>)
      return ProdReduce<Acc>{};
    else if constexpr (std::is_same_v<Combine, MaxReduce<T>>)
      return MaxReduce<Acc>{};
    else
      return MinReduce<Acc>{};
  }());
  const AccCombine acc_combine{};
  auto reduce_range = [&](const T* base, std::int64_t begin, std::int64_t end) {
    Acc acc = AccCombine::identity();
    if (flat_inner) {
      // Eight independent accumulators: the adds no longer wait on each other, so the loop
      // runs at memory speed instead of one add latency per element (and sums pairwise-ish).
      constexpr int kLanes = 8;
      Acc lanes[kLanes];
      for (Acc& l : lanes) l = AccCombine::identity();
      std::int64_t j = begin;
      for (; j + kLanes <= end; j += kLanes)
        for (int k = 0; k < kLanes; ++k)
          lanes[k] = acc_combine(lanes[k], static_cast<Acc>(base[j + k]));
      for (; j < end; ++j) acc = acc_combine(acc, static_cast<Acc>(base[j]));
      for (const Acc& l : lanes) acc = acc_combine(acc, l);
    } else {
      walk_range(red, begin, end, [&](const std::int64_t(&off)[1]) {
        acc = acc_combine(acc, static_cast<Acc>(base[off[0]]));
      });
    }
    return acc;
  };

  if (n_out == 1) {
    // One output: split the reduced range across threads, then combine the partials.
    o[0] = static_cast<T>(split_reduce<Acc>(
        n_red, AccCombine::identity(),
        [&](std::int64_t b, std::int64_t e) { return reduce_range(ip, b, e); }, acc_combine));
    return;
  }
  parallel_for(n_out, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(1, n_red)),
               [&](std::int64_t b, std::int64_t e) {
                 walk_range(kept, b, e, [&](const std::int64_t(&off)[2]) {
                   o[off[0]] = static_cast<T>(reduce_range(ip + off[1], 0, n_red));
                 });
               });
}

template <typename T>
void reduce_product_impl(const TensorArg& out, const TensorArg& a, const TensorArg& b) {
  using Acc = typename HostAcc<T>::type;
  const TensorArg* ins[2] = {&a, &b};
  const ReduceGeometryN<2> geo = reduce_geometry<2>(out, ins);
  T* o = out.ptr<T>();
  const T* ap = a.ptr<const T>();
  const T* bp = b.ptr<const T>();
  const auto& red = geo.reduced;
  const bool flat = red.ndim == 1 && red.strides[0][0] == 1 && red.strides[1][0] == 1;
  auto dot = [&](std::int64_t oa, std::int64_t ob, std::int64_t begin, std::int64_t end) {
    Acc acc = 0;
    if (flat) {
      constexpr int kLanes = 8;  // independent accumulators, as in reduce_impl
      Acc lanes[kLanes] = {};
      std::int64_t j = begin;
      for (; j + kLanes <= end; j += kLanes)
        for (int k = 0; k < kLanes; ++k)
          lanes[k] += static_cast<Acc>(ap[oa + j + k]) * static_cast<Acc>(bp[ob + j + k]);
      for (; j < end; ++j) acc += static_cast<Acc>(ap[oa + j]) * static_cast<Acc>(bp[ob + j]);
      for (const Acc& l : lanes) acc += l;
    } else {
      walk_range(red, begin, end, [&](const std::int64_t(&off)[2]) {
        acc += static_cast<Acc>(ap[oa + off[0]]) * static_cast<Acc>(bp[ob + off[1]]);
      });
    }
    return acc;
  };
  if (geo.n_out == 1) {
    o[0] = static_cast<T>(split_reduce<Acc>(
        geo.n_red, Acc{0}, [&](std::int64_t lo, std::int64_t hi) { return dot(0, 0, lo, hi); },
        [](Acc x, Acc y) { return x + y; }));
    return;
  }
  parallel_for(geo.n_out,
               std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(1, geo.n_red)),
               [&](std::int64_t lo, std::int64_t hi) {
                 walk_range(geo.kept, lo, hi, [&](const std::int64_t(&off)[3]) {
                   o[off[0]] = static_cast<T>(dot(off[1], off[2], 0, geo.n_red));
                 });
               });
}

// Iterates over the lines of `a` along `dim`: body(line_offsets...) for each line.
template <int N, typename Body>
void for_each_line(const TensorArg* const (&args)[N], int dim, Body&& body) {
  TensorArg lines[N];
  const TensorArg* line_args[N];
  for (int k = 0; k < N; ++k) {
    lines[k] = *args[k];
    lines[k].sizes[dim] = 1;
    line_args[k] = &lines[k];
  }
  const auto calc = make_offset_calc<N>(line_args);
  const std::int64_t n_lines = lines[0].numel();
  const std::int64_t len = args[0]->sizes[dim];
  parallel_for(n_lines, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(1, len)),
               [&](std::int64_t b, std::int64_t e) { walk_range(calc, b, e, body); });
}

template <typename T>
void matmul_impl(const TensorArg& out, const TensorArg& a, const TensorArg& b) {
  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using OuterStride = Eigen::OuterStride<Eigen::Dynamic>;
  const std::int64_t batch = out.sizes[0], m = out.sizes[1], n = out.sizes[2], k = a.sizes[2];
  auto run = [&](std::int64_t bi, const auto& am, const auto& bm) {
    Eigen::Map<RowMat> om(out.ptr<T>() + bi * m * n, m, n);
    om.noalias() = am * bm;
  };
  auto with_b = [&](std::int64_t bi, const auto& am) {
    const T* bp = b.ptr<const T>() + bi * b.strides[0];
    if (b.strides[2] == 1) {
      run(bi, am, Eigen::Map<const RowMat, 0, OuterStride>(bp, k, n, OuterStride(b.strides[1])));
    } else {
      run(bi, am, Eigen::Map<const ColMat, 0, OuterStride>(bp, k, n, OuterStride(b.strides[2])));
    }
  };
  // Split the batch across cores only when each share is worth a fork/join: many tiny
  // matrices (a batched 2x2 factor times a vector) run faster on one core.
  const std::int64_t flops = std::max<std::int64_t>(1, m * n * k);
  parallel_for(batch, std::max<std::int64_t>(1, kParallelGrain / flops),
               [&](std::int64_t begin, std::int64_t end) {
                 for (std::int64_t bi = begin; bi < end; ++bi) {
                   const T* ap = a.ptr<const T>() + bi * a.strides[0];
                   if (a.strides[2] == 1) {
                     with_b(bi, Eigen::Map<const RowMat, 0, OuterStride>(
                                    ap, m, k, OuterStride(a.strides[1])));
                   } else {
                     with_b(bi, Eigen::Map<const ColMat, 0, OuterStride>(
                                    ap, m, k, OuterStride(a.strides[2])));
                   }
                 }
               });
}

// The operands of a fused distribution kernel: out, then the inputs, then the optional
// partials (an absent one walks with out's strides and is never written).
template <typename T, int P>
struct DistOperands {
  static constexpr int N = 3 + 2 * P;
  const TensorArg* args[N];
  T* grads[P + 1] = {};
  DistOperands(const TensorArg& out, const TensorArg& value, const TensorArg* params,
               const TensorArg* const* grad_args) {
    args[0] = &out;
    args[1] = &value;
    for (int k = 0; k < P; ++k) args[2 + k] = &params[k];
    for (int k = 0; k <= P; ++k) {
      args[2 + P + k] = grad_args[k] ? grad_args[k] : &out;
      grads[k] = grad_args[k] ? grad_args[k]->ptr<T>() : nullptr;
    }
  }
};

template <typename Family, typename T>
void log_prob_impl(const TensorArg& out, const TensorArg& value, const TensorArg* params,
                   const TensorArg* const* grad_args) {
  constexpr int P = Family::kParams;
  const DistOperands<T, P> ops(out, value, params, grad_args);
  const auto calc = make_offset_calc(ops.args);
  T* o = out.ptr<T>();
  const T* v = value.ptr<const T>();
  const T* pp[P];
  for (int k = 0; k < P; ++k) pp[k] = params[k].ptr<const T>();
  const Family family{};
  walk(calc, out.numel(), [&](const std::int64_t(&off)[DistOperands<T, P>::N]) {
    T p[P];
    T g[P + 1];
    for (int k = 0; k < P; ++k) p[k] = pp[k][off[2 + k]];
    o[off[0]] = family(v[off[1]], p, g);
    for (int k = 0; k <= P; ++k)
      if (ops.grads[k]) ops.grads[k][off[2 + P + k]] = g[k];
  });
}

template <typename Sampler, typename T>
void sample_impl(const TensorArg& out, const TensorArg* params, RngState rng) {
  constexpr int P = Sampler::kParams;
  const TensorArg* args[P + 1];
  args[0] = &out;
  for (int k = 0; k < P; ++k) args[1 + k] = &params[k];
  const auto calc = make_offset_calc(args);
  T* o = out.ptr<T>();
  const T* pp[P + 1] = {};
  for (int k = 0; k < P; ++k) pp[k] = params[k].ptr<const T>();
  const Sampler sampler{};
  // out is contiguous, so its offset is the element's counter index.
  walk(calc, out.numel(), [&](const std::int64_t(&off)[P + 1]) {
    T p[P + 1];
    for (int k = 0; k < P; ++k) p[k] = pp[k][off[1 + k]];
    o[off[0]] = sampler(p, rng, off[0]);
  });
}

template <typename Grad, typename T>
void sample_grad_impl(const TensorArg& out, const TensorArg& sample, const TensorArg* params) {
  constexpr int P = Grad::kParams;
  const TensorArg* args[P + 2];
  args[0] = &out;
  args[1] = &sample;
  for (int k = 0; k < P; ++k) args[2 + k] = &params[k];
  const auto calc = make_offset_calc(args);
  T* o = out.ptr<T>();
  const T* x = sample.ptr<const T>();
  const T* pp[P + 1] = {};
  for (int k = 0; k < P; ++k) pp[k] = params[k].ptr<const T>();
  const Grad grad{};
  walk(calc, out.numel(), [&](const std::int64_t(&off)[P + 2]) {
    T p[P + 1];
    for (int k = 0; k < P; ++k) p[k] = pp[k][off[2 + k]];
    o[off[0]] = grad(x[off[1]], p);
  });
}

class CpuBackend final : public Backend {
 public:
  void* allocate(std::size_t nbytes) override { return allocator_.allocate(nbytes); }
  void deallocate(void* ptr) override { allocator_.deallocate(ptr); }
  void copy_from_host(void* dst, const void* src, std::size_t nbytes) override {
    if (nbytes) std::memcpy(dst, src, nbytes);
  }
  void copy_to_host(void* dst, const void* src, std::size_t nbytes) override {
    if (nbytes) std::memcpy(dst, src, nbytes);
  }
  void synchronize() override {}

  void fill(const TensorArg& out, double value) override {
    dispatch_all(out.dtype, [&]<typename T>() {
      const T v = static_cast<T>(value);
      const TensorArg* args[1] = {&out};
      T* o = out.ptr<T>();
      walk(calc_of(args), out.numel(), [&](const std::int64_t(&off)[1]) { o[off[0]] = v; });
    });
  }

  void fill_linear(const TensorArg& out, double start, double step) override {
    dispatch_arith(out.dtype, "fill_linear", [&]<typename T>() {
      T* o = out.ptr<T>();
      parallel_for(out.numel(), kParallelGrain, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) o[i] = static_cast<T>(start + step * double(i));
      });
    });
  }

  void copy(const TensorArg& out, const TensorArg& in) override {
    dispatch_all(out.dtype, [&]<typename To>() {
      dispatch_all(in.dtype, [&]<typename From>() {
        To* o = out.ptr<To>();
        const From* ip = in.ptr<const From>();
        const TensorArg* args[2] = {&out, &in};
        const auto calc = calc_of(args);
        auto convert = [](From v) -> To {
          if constexpr (std::is_same_v<To, std::uint8_t>) {
            return v != From(0) ? 1 : 0;
          } else {
            return static_cast<To>(v);
          }
        };
        if (all_flat(calc)) {
          parallel_for(out.numel(), kParallelGrain, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t i = b; i < e; ++i) o[i] = convert(ip[i]);
          });
          return;
        }
        walk(calc, out.numel(),
             [&](const std::int64_t(&off)[2]) { o[off[0]] = convert(ip[off[1]]); });
      });
    });
  }

  void unary(UnaryOp op, const TensorArg& out, const TensorArg& x, double p0, double p1) override {
    dispatch_floating(out.dtype, unary_op_name(op), [&]<typename T>() {
      switch (op) {
#define EMBER_CASE(name)                        \
  case UnaryOp::name:                           \
    unary_impl<name##Op<T>, T>(out, x, p0, p1); \
    break;
        EMBER_UNARY_OPS(EMBER_CASE)
#undef EMBER_CASE
      }
    });
  }

  void unary_backward(UnaryOp op, const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                      const TensorArg& y, double p0, double p1) override {
    dispatch_floating(gx.dtype, unary_op_name(op), [&]<typename T>() {
      switch (op) {
#define EMBER_CASE(name)                                      \
  case UnaryOp::name:                                         \
    unary_backward_impl<name##Op<T>, T>(gx, g, x, y, p0, p1); \
    break;
        EMBER_UNARY_OPS(EMBER_CASE)
#undef EMBER_CASE
      }
    });
  }

  void binary(BinaryOp op, const TensorArg& out, const TensorArg& a, const TensorArg& b) override {
    if (is_comparison(op)) {
      dispatch_all(a.dtype, [&]<typename T>() {
        switch (op) {
#define EMBER_CASE(name)                                  \
  case BinaryOp::name:                                    \
    binary_impl<name##Op<T>, T, std::uint8_t>(out, a, b); \
    break;
          EMBER_BINARY_COMPARE_OPS(EMBER_CASE)
#undef EMBER_CASE
          default:
            break;
        }
      });
      return;
    }
    dispatch_arith(out.dtype, binary_op_name(op), [&]<typename T>() {
      switch (op) {
#define EMBER_CASE(name)                       \
  case BinaryOp::name:                         \
    binary_impl<name##Op<T>, T, T>(out, a, b); \
    break;
        EMBER_BINARY_ARITH_OPS(EMBER_CASE)
#undef EMBER_CASE
        default:
          break;
      }
    });
  }

  void binary_backward(BinaryOp op, const TensorArg* ga, const TensorArg* gb, const TensorArg& g,
                       const TensorArg& a, const TensorArg& b, const TensorArg& y) override {
    dispatch_floating(g.dtype, binary_op_name(op), [&]<typename T>() {
      switch (op) {
#define EMBER_CASE(name)                                      \
  case BinaryOp::name:                                        \
    binary_backward_impl<name##Op<T>, T>(ga, gb, g, a, b, y); \
    break;
        EMBER_BINARY_ARITH_OPS(EMBER_CASE)
#undef EMBER_CASE
        default:
          break;
      }
    });
  }

  void where(const TensorArg& out, const TensorArg& cond, const TensorArg& a,
             const TensorArg& b) override {
    dispatch_all(out.dtype, [&]<typename T>() {
      const Operand<T> ao(a), bo(b);
      const T* ap = ao.ptr;
      const T* bp = bo.ptr;
      const std::uint8_t* cp = cond.ptr<const std::uint8_t>();
      T* o = out.ptr<T>();
      const TensorArg* args[4] = {&out, &cond, &a, &b};
      walk(calc_of(args), out.numel(),
           [&](const std::int64_t(&off)[4]) { o[off[0]] = cp[off[1]] ? ap[off[2]] : bp[off[3]]; });
    });
  }

  void reduce(ReduceOp op, const TensorArg& out, const TensorArg& in) override {
    dispatch_arith(out.dtype, "reduce", [&]<typename T>() {
      switch (op) {
        case ReduceOp::Sum:
          reduce_impl<T, SumReduce<T>>(out, in);
          break;
        case ReduceOp::Prod:
          reduce_impl<T, ProdReduce<T>>(out, in);
          break;
        case ReduceOp::Max:
          reduce_impl<T, MaxReduce<T>>(out, in);
          break;
        case ReduceOp::Min:
          reduce_impl<T, MinReduce<T>>(out, in);
          break;
      }
    });
  }

  void reduce_product(const TensorArg& out, const TensorArg& a, const TensorArg& b) override {
    dispatch_floating(out.dtype, "reduce_product",
                      [&]<typename T>() { reduce_product_impl<T>(out, a, b); });
  }

  void scan(ScanOp op, const TensorArg& out, const TensorArg& in, int dim, bool reverse) override {
    dispatch_arith(out.dtype, op == ScanOp::Sum ? "cumsum" : "cumprod", [&]<typename T>() {
      T* o = out.ptr<T>();
      const T* ip = in.ptr<const T>();
      const std::int64_t len = out.sizes[dim], so = out.strides[dim], si = in.strides[dim];
      const TensorArg* args[2] = {&out, &in};
      for_each_line(args, dim, [&](const std::int64_t(&off)[2]) {
        T acc = op == ScanOp::Sum ? T(0) : T(1);
        for (std::int64_t j = 0; j < len; ++j) {
          const std::int64_t p = reverse ? len - 1 - j : j;
          const T v = ip[off[1] + p * si];
          acc = op == ScanOp::Sum ? acc + v : acc * v;
          o[off[0] + p * so] = acc;
        }
      });
    });
  }

  void cumprod_backward(const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                        int dim) override {
    dispatch_floating(gx.dtype, "cumprod backward", [&]<typename T>() {
      T* o = gx.ptr<T>();
      const T* gp = g.ptr<const T>();
      const T* xp = x.ptr<const T>();
      const std::int64_t len = gx.sizes[dim];
      const std::int64_t so = gx.strides[dim], sg = g.strides[dim], sx = x.strides[dim];
      const TensorArg* args[3] = {&gx, &g, &x};
      for_each_line(args, dim, [&](const std::int64_t(&off)[3]) {
        // S_k = g_k + x_{k+1} S_{k+1} (from the end); gx_k = (prod_{i<k} x_i) * S_k.
        T s = T(0);
        for (std::int64_t k = len - 1; k >= 0; --k) {
          const T next_x = k + 1 < len ? xp[off[2] + (k + 1) * sx] : T(0);
          s = gp[off[1] + k * sg] + next_x * s;
          o[off[0] + k * so] = s;
        }
        T prefix = T(1);
        for (std::int64_t k = 0; k < len; ++k) {
          o[off[0] + k * so] *= prefix;
          prefix *= xp[off[2] + k * sx];
        }
      });
    });
  }

  void index_select(const TensorArg& out, const TensorArg& in, int dim,
                    const TensorArg& index) override {
    dispatch_all(out.dtype, [&]<typename T>() {
      const TensorArg in0 = without_dim(in, dim, out.sizes[dim]);
      const TensorArg* args[2] = {&out, &in0};
      const auto calc = calc_of(args);
      const std::int64_t inner = inner_size(out, dim), len = out.sizes[dim];
      const std::int64_t* idx = index.ptr<const std::int64_t>();
      T* o = out.ptr<T>();
      const T* ip = in.ptr<const T>();
      parallel_for(out.numel(), kParallelGrain, [&](std::int64_t b, std::int64_t e) {
        std::int64_t off[2];
        for (std::int64_t i = b; i < e; ++i) {
          calc.get(i, off);
          const std::int64_t j = (i / inner) % len;
          o[off[0]] = ip[off[1] + idx[j * index.strides[0]] * in.strides[dim]];
        }
      });
    });
  }

  void index_add(const TensorArg& out, int dim, const TensorArg& index,
                 const TensorArg& src) override {
    dispatch_arith(out.dtype, "index_add", [&]<typename T>() {
      const TensorArg out0 = without_dim(out, dim, src.sizes[dim]);
      const TensorArg* args[2] = {&out0, &src};
      const auto calc = calc_of(args);
      const std::int64_t inner = inner_size(src, dim), len = src.sizes[dim];
      const std::int64_t* idx = index.ptr<const std::int64_t>();
      T* o = out.ptr<T>();
      const T* sp = src.ptr<const T>();
      // Serial: repeated indices would race.
      std::int64_t off[2];
      for (std::int64_t i = 0, n = src.numel(); i < n; ++i) {
        calc.get(i, off);
        const std::int64_t j = (i / inner) % len;
        o[off[0] + idx[j * index.strides[0]] * out.strides[dim]] += sp[off[1]];
      }
    });
  }

  void gather(const TensorArg& out, const TensorArg& in, int dim, const TensorArg& index) override {
    dispatch_all(out.dtype, [&]<typename T>() {
      TensorArg in0 = without_dim(in, dim, index.sizes[dim]);
      for (int d = 0; d < in.ndim; ++d) in0.sizes[d] = index.sizes[d];
      const TensorArg* args[3] = {&out, &index, &in0};
      const std::int64_t* idx = index.ptr<const std::int64_t>();
      T* o = out.ptr<T>();
      const T* ip = in.ptr<const T>();
      const std::int64_t sd = in.strides[dim];
      walk(calc_of(args), out.numel(),
           [&](const std::int64_t(&off)[3]) { o[off[0]] = ip[off[2] + idx[off[1]] * sd]; });
    });
  }

  void scatter_add(const TensorArg& out, int dim, const TensorArg& index,
                   const TensorArg& src) override {
    dispatch_arith(out.dtype, "scatter_add", [&]<typename T>() {
      TensorArg out0 = without_dim(out, dim, index.sizes[dim]);
      for (int d = 0; d < out.ndim; ++d) out0.sizes[d] = index.sizes[d];
      const TensorArg* args[3] = {&out0, &index, &src};
      const std::int64_t* idx = index.ptr<const std::int64_t>();
      T* o = out.ptr<T>();
      const T* sp = src.ptr<const T>();
      const std::int64_t sd = out.strides[dim];
      // Serial: repeated indices would race.
      walk_range(calc_of(args), 0, index.numel(),
                 [&](const std::int64_t(&off)[3]) { o[off[0] + idx[off[1]] * sd] += sp[off[2]]; });
    });
  }

  bool find_index_out_of_range(const TensorArg& index, std::int64_t bound,
                               std::int64_t* bad) override {
    const std::int64_t* idx = index.ptr<const std::int64_t>();
    const TensorArg* args[1] = {&index};
    const auto calc = calc_of(args);
    std::int64_t off[1];
    for (std::int64_t i = 0, n = index.numel(); i < n; ++i) {
      calc.get(i, off);
      const std::int64_t v = idx[off[0]];
      if (v < 0 || v >= bound) {
        *bad = v;
        return true;
      }
    }
    return false;
  }

  void matmul(const TensorArg& out, const TensorArg& a, const TensorArg& b) override {
    dispatch_floating(out.dtype, "matmul", [&]<typename T>() { matmul_impl<T>(out, a, b); });
  }

  void log_prob(LogProbFamily family, const TensorArg& out, const TensorArg& value,
                const TensorArg* params, const TensorArg* const* grads) override {
    dispatch_floating(out.dtype, log_prob_family_name(family), [&]<typename T>() {
      switch (family) {
#define EMBER_CASE(name)                                           \
  case LogProbFamily::name:                                        \
    log_prob_impl<name##LogProb<T>, T>(out, value, params, grads); \
    break;
        EMBER_LOG_PROB_FAMILIES(EMBER_CASE)
#undef EMBER_CASE
      }
    });
  }

  void sample(SampleOp op, const TensorArg& out, const TensorArg* params, RngState rng) override {
    dispatch_floating(out.dtype, sample_op_name(op), [&]<typename T>() {
      switch (op) {
#define EMBER_CASE(name)                                \
  case SampleOp::name:                                  \
    sample_impl<name##Sampler<T>, T>(out, params, rng); \
    break;
        EMBER_SAMPLERS(EMBER_CASE)
#undef EMBER_CASE
      }
    });
  }

  void sample_grad(SampleGradOp op, const TensorArg& out, const TensorArg& sample,
                   const TensorArg* params) override {
    dispatch_floating(out.dtype, "sample_grad", [&]<typename T>() {
      switch (op) {
#define EMBER_CASE(name)                                           \
  case SampleGradOp::name:                                         \
    sample_grad_impl<name##SampleGrad<T>, T>(out, sample, params); \
    break;
        EMBER_SAMPLE_GRADS(EMBER_CASE)
#undef EMBER_CASE
        default:
          break;
      }
    });
  }

  // Factorizations and solves live in cpu_linalg.cpp.
  void cholesky(const TensorArg& out, const TensorArg& in, std::int64_t* first_failed) override {
    cpu::cholesky(out, in, first_failed);
  }
  void triangular_solve(const TensorArg& out, const TensorArg& l, const TensorArg& b, bool lower,
                        bool transpose) override {
    cpu::triangular_solve(out, l, b, lower, transpose);
  }

  // The fused optimizer step lives in cpu_optim.cpp.
  void optimizer_step(OptimKind kind, DType dtype, std::span<const OptimSlot> slots) override {
    cpu::optimizer_step(kind, dtype, slots);
  }

 private:
  HostAllocator allocator_;
};

}  // namespace
}  // namespace ember::kernels::cpu

namespace ember::kernels {

Backend& cpu_backend() {
  // Never destroyed: tensors held in static objects may free memory after main returns.
  static cpu::CpuBackend* backend = new cpu::CpuBackend();
  return *backend;
}

}  // namespace ember::kernels
