// The per-element bodies of every elementwise-shaped op, once, for host and device. A body
// is plain data (pointers, scalars, an op functor) with
//   EMBER_HD void operator()(std::int64_t i, const std::int64_t (&off)[kOperands]) const
// called for element i of the iteration space with each operand's element offset; the CPU
// launcher calls it from OpenMP loops, the CUDA launcher from grid-stride kernels, so the CPU
// tests execute the very code the GPU runs. Bodies that add into positions chosen by an
// index (repeated indices collide) say so with kAccumulates: the CPU runs them on one thread,
// and on the GPU they add atomically.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/common/geometry.hpp"
#include "kernels/common/macros.hpp"
#include "kernels/common/tensor_arg.hpp"
#include "kernels/math/distributions/samplers.hpp"

namespace ember::kernels {

// A read-only operand: a pointer into the tensor's memory, or, for a scalar TensorArg (null
// data), one value broadcast to every element. The launcher's loop decides how a scalar is
// read: the CPU Loop keeps it in a slot of its own and hands out a pointer to it (its walks
// give scalars stride 0), so host code reads every operand through a pointer, without a
// branch in the element loop; the CUDA Loop hands out none, and device code reads `value`.
template <typename T>
struct Operand {
  const T* ptr = nullptr;
  T value{};

  Operand() = default;
  template <typename Loop>
  Operand(const TensorArg& a, Loop& loop)
      : ptr(a.is_scalar() ? loop.template scalar_slot<T>(a) : a.ptr<const T>()),
        value(a.is_scalar() ? static_cast<T>(a.scalar) : T{}) {}
  EMBER_HD T operator[](std::int64_t offset) const {
#if defined(__CUDA_ARCH__)
    return ptr != nullptr ? ptr[offset] : value;
#else
    return ptr[offset];
#endif
  }
};

// A floating value as int64, defined everywhere and the same on both backends: truncation
// toward zero, NaN to 0, values beyond the int64 range to its nearest end (what the GPU's
// conversion instruction does; in C++ such a cast would be undefined).
template <typename From>
EMBER_HD std::int64_t saturating_int64(From v) {
  if (v != v) return 0;
  if (v >= From(9223372036854775807.0)) return INT64_MAX;
  if (v <= From(-9223372036854775808.0)) return INT64_MIN;
  return static_cast<std::int64_t>(v);
}

// How a value of one element type becomes another (copies, fills): bool is "not zero",
// floating to int64 saturates, everything else is a plain conversion.
template <typename To, typename From>
EMBER_HD To convert(From v) {
  if constexpr (std::is_same_v<To, std::uint8_t>) {
    return v != From(0) ? To(1) : To(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    return static_cast<To>(saturating_int64(v));
  } else {
    return static_cast<To>(v);
  }
}

// *p += v: atomically on the device (repeated indices in one launch), plainly on the host,
// where accumulating bodies run on one thread.
template <typename T>
EMBER_HD void accumulate(T* p, T v) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, std::int64_t>) {
    // Two's complement: unsigned wrap-around addition is signed addition.
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  } else {
    atomicAdd(p, v);
  }
#else
  *p += v;
#endif
}

// ---------------------------------------------------------------- creation ----

template <typename T>
struct FillBody {
  static constexpr int kOperands = 1;
  T* out;
  T value;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[1]) const {
    out[off[0]] = value;
  }
};

// out[i] = start + step * i over a contiguous out, computed in double with one rounding per
// operation on both backends (never fused into a multiply-add, which nvcc would otherwise do:
// 0.1 + 0.3 * 3 is 0.9999999999999999 and truncates to 0 as int64, its fused form 1.0 to 1).
template <typename T>
struct FillLinearBody {
  static constexpr int kOperands = 1;
  T* out;
  double start, step;
  EMBER_HD void operator()(std::int64_t i, const std::int64_t (&)[1]) const {
#if defined(__CUDA_ARCH__)
    const double v = __dadd_rn(start, __dmul_rn(step, static_cast<double>(i)));
#else
    const double v = start + step * static_cast<double>(i);  // this file: -ffp-contract=off
#endif
    out[i] = convert<T>(v);
  }
};

template <typename To, typename From>
struct CopyBody {
  static constexpr int kOperands = 2;
  To* out;
  const From* in;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[2]) const {
    out[off[0]] = convert<To>(in[off[1]]);
  }
};

template <typename T>
struct WhereBody {
  static constexpr int kOperands = 4;
  T* out;
  const std::uint8_t* cond;
  Operand<T> a, b;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[4]) const {
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
};

// ---------------------------------------------------- unary and binary math ----

template <typename Op, typename T>
struct UnaryBody {
  static constexpr int kOperands = 2;
  Op op;
  T* out;
  const T* x;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[2]) const {
    out[off[0]] = op.fwd(x[off[1]]);
  }
};

template <typename Op, typename T>
struct UnaryBackwardBody {
  static constexpr int kOperands = 4;
  Op op;
  T* gx;
  const T *g, *x, *y;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[4]) const {
    gx[off[0]] = op.bwd(g[off[1]], x[off[2]], y[off[3]]);
  }
};

template <typename Op, typename T, typename Out>
struct BinaryBody {
  static constexpr int kOperands = 3;
  Out* out;
  Operand<T> a, b;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    out[off[0]] = static_cast<Out>(Op{}.fwd(a[off[1]], b[off[2]]));
  }
};

// ga or gb is null when that gradient is not wanted; it is then never written (its operand
// walks with g's strides).
template <typename Op, typename T>
struct BinaryBackwardBody {
  static constexpr int kOperands = 6;
  T *ga, *gb;
  const T* g;
  Operand<T> a, b, y;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[6]) const {
    const T gv = g[off[2]], av = a[off[3]], bv = b[off[4]], yv = y[off[5]];
    if (ga != nullptr) ga[off[0]] = Op{}.da(gv, av, bv, yv);
    if (gb != nullptr) gb[off[1]] = Op{}.db(gv, av, bv, yv);
  }
};

// ---------------------------------------------------------------- indexing ----

// Operands: out, index, in (in walks with the indexed dim's stride replaced by the index).
// Also index_select's body, its 1-d index spread over out's shape (index_along).
template <typename T>
struct GatherBody {
  static constexpr int kOperands = 3;
  T* out;
  const std::int64_t* index;
  const T* in;
  std::int64_t dim_stride;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    out[off[0]] = in[off[2] + index[off[1]] * dim_stride];
  }
};

// Operands: out (the indexed dim's stride replaced by the index), index, src. Also
// index_add's body, its 1-d index spread over src's shape.
template <typename T>
struct ScatterAddBody {
  static constexpr int kOperands = 3;
  static constexpr bool kAccumulates = true;
  // Two elements that add into one place differ in the index dim alone (kernels/cpu's
  // AnyDimOrderBody).
  static constexpr bool kAnyDimOrder = true;
  T* out;
  const std::int64_t* index;
  const T* src;
  std::int64_t dim_stride;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    accumulate(out + off[0] + index[off[1]] * dim_stride, src[off[2]]);
  }
};

// ------------------------------------------------------------ convolution ----

// One element of a convolution's unfolded input (geometry.hpp). Operand: the contiguous
// columns (the walk's offset is i). im2col (kScatter false) is a gather with zero padding,
// col = the input under the element's tap or 0; col2im (true), its adjoint, is an
// accumulating scatter, input += col, where overlapping taps collide.
template <typename T, bool kScatter>
struct ColumnBody {
  static constexpr int kOperands = 1;
  static constexpr bool kAccumulates = kScatter;
  using Col = std::conditional_t<kScatter, const T*, T*>;
  using In = std::conditional_t<kScatter, T*, const T*>;
  Col col;
  In in;
  Im2colSource source;
  // Column element c, which reads input offset `at` (-1: padding).
  EMBER_HD static void move(Col col, In in, std::int64_t c, std::int64_t at) {
    if constexpr (kScatter) {
      if (at >= 0) accumulate(in + at, col[c]);
    } else {
      col[c] = at < 0 ? T(0) : in[at];
    }
  }
  EMBER_HD void operator()(std::int64_t i, const std::int64_t (&off)[1]) const {
    move(col, in, off[0], source(i));
  }
};

// The same a column row at a time (Im2colSource::row: out_w elements, located once), for a
// loop over rows whose operand offset is the row's first column element: the CPU's, where a
// thread walks many elements and the divisions per element would dominate.
template <typename T, bool kScatter>
struct ColumnRowBody {
  static constexpr int kOperands = 1;
  static constexpr bool kAccumulates = kScatter;
  typename ColumnBody<T, kScatter>::Col col;
  typename ColumnBody<T, kScatter>::In in;
  Im2colSource source;
  EMBER_HD void operator()(std::int64_t r, const std::int64_t (&off)[1]) const {
    const Im2colSource::Row row = source.row(r);
    const std::int64_t width = source.out_w();
    for (std::int64_t ow = 0; ow < width; ++ow)
      ColumnBody<T, kScatter>::move(col, in, off[0] + ow, source.at(row, ow));
  }
};

// ----------------------------------------------------------- distributions ----

// Operands: out, value, the family's params, then the optional partials (value's first; an
// absent one walks with out's strides and is never written).
template <typename Family, typename T>
struct LogProbBody {
  static constexpr int P = Family::kParams;
  static constexpr int kOperands = 3 + 2 * P;
  T* out;
  const T* value;
  const T* params[P];
  T* grads[P + 1];
  Family family{};  // stateless, or holding what the launcher computed once (a fixed scale's)
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[kOperands]) const {
    T p[P];
    T g[P + 1];
    for (int k = 0; k < P; ++k) p[k] = params[k][off[2 + k]];
    out[off[0]] = family(value[off[1]], p, g);
    for (int k = 0; k <= P; ++k)
      if (grads[k] != nullptr) grads[k][off[2 + P + k]] = g[k];
  }
};

// Operands: out (contiguous: its offset is the element's Philox counter index), then params.
template <typename Sampler, typename T>
struct SampleBody {
  static constexpr int P = Sampler::kParams;
  static constexpr int kOperands = 1 + P;
  T* out;
  const T* params[P + 1];
  RngState rng;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[kOperands]) const {
    T p[P + 1];
    for (int k = 0; k < P; ++k) p[k] = params[k][off[1 + k]];
    out[off[0]] = Sampler{}(p, rng, off[0]);
  }
};

// Operands: out, the draws, then params.
template <typename Grad, typename T>
struct SampleGradBody {
  static constexpr int P = Grad::kParams;
  static constexpr int kOperands = 2 + P;
  T* out;
  const T* sample;
  const T* params[P + 1];
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[kOperands]) const {
    T p[P + 1];
    for (int k = 0; k < P; ++k) p[k] = params[k][off[2 + k]];
    out[off[0]] = Grad{}(sample[off[1]], p);
  }
};

}  // namespace ember::kernels
