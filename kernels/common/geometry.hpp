// Iteration geometry the CPU and CUDA launchers share: how a reduction splits into kept and
// reduced dims, how a scan walks its lines, how index ops address the dim they index, and
// how a convolution's input unfolds into columns.
#pragma once

#include <cstdint>

#include "kernels/common/tensor_arg.hpp"

namespace ember::kernels {

// The split of a reduction over N inputs of one (broadcast) shape: `kept` walks out and the
// inputs together over the outputs, `reduced` walks the inputs alone over one output's
// range. Dims where out has size 1 and the inputs do not are reduced.
template <int N>
struct ReduceGeometryN {
  OffsetCalc<N + 1> kept;
  OffsetCalc<N> reduced;
  std::int64_t n_out = 0;
  std::int64_t n_red = 0;
};
using ReduceGeometry = ReduceGeometryN<1>;

template <int N>
ReduceGeometryN<N> reduce_geometry(const TensorArg& out, const TensorArg* const (&ins)[N]) {
  TensorArg kept_in[N], reduced[N];
  const TensorArg* kept_args[N + 1] = {&out};
  const TensorArg* red_args[N];
  for (int k = 0; k < N; ++k) {
    kept_in[k] = *ins[k];
    reduced[k] = *ins[k];
    for (int d = 0; d < ins[k]->ndim; ++d) {
      const bool is_reduced = out.sizes[d] == 1 && ins[k]->sizes[d] != 1;
      kept_in[k].sizes[d] = out.sizes[d];
      if (!is_reduced) reduced[k].sizes[d] = 1;
    }
    kept_args[k + 1] = &kept_in[k];
    red_args[k] = &reduced[k];
  }
  return {make_offset_calc<N + 1>(kept_args), make_offset_calc<N>(red_args), out.numel(),
          reduced[0].numel()};
}

inline ReduceGeometry reduce_geometry(const TensorArg& out, const TensorArg& in) {
  const TensorArg* ins[1] = {&in};
  return reduce_geometry<1>(out, ins);
}

// The lines along `dim` of N operands of one shape: `lines` gives the first element of each
// line, `strides` step along it.
template <int N>
struct LineGeometry {
  OffsetCalc<N> lines;
  std::int64_t n_lines = 0;
  std::int64_t len = 0;
  std::int64_t strides[N] = {};
};

template <int N>
LineGeometry<N> line_geometry(const TensorArg* const (&args)[N], int dim) {
  TensorArg heads[N];
  const TensorArg* head_args[N];
  LineGeometry<N> geo;
  for (int k = 0; k < N; ++k) {
    heads[k] = *args[k];
    heads[k].sizes[dim] = 1;
    head_args[k] = &heads[k];
    geo.strides[k] = args[k]->strides[dim];
  }
  geo.lines = make_offset_calc<N>(head_args);
  geo.n_lines = heads[0].numel();
  geo.len = args[0]->sizes[dim];
  return geo;
}

// The arg with dim `dim` given `size` and stride 0: its coordinate along dim is supplied
// separately (by an index).
inline TensorArg without_dim(const TensorArg& a, int dim, std::int64_t size) {
  TensorArg r = a;
  r.sizes[dim] = size;
  r.strides[dim] = 0;
  return r;
}

// A 1-d index seen with the sizes of `shape`: its elements along `dim`, the same index at
// every position of the other dims (stride 0 there).
inline TensorArg index_along(const TensorArg& index, const TensorArg& shape, int dim) {
  TensorArg r = index;
  r.ndim = shape.ndim;
  for (int d = 0; d < shape.ndim; ++d) {
    r.sizes[d] = shape.sizes[d];
    r.strides[d] = d == dim ? index.strides[0] : 0;
  }
  return r;
}

// Division of an index by a divisor fixed for a whole loop, as a multiply and a shift
// (Granlund and Montgomery, "Division by invariant integers using multiplication", 1994). With
// l = ceil(log2 d) and m = ceil(2^(32+l) / d), floor(n / d) = (n m) >> (32 + l) for every
// 0 <= n < 2^31: the error of m, at most d - 1 < 2^l, times n stays under 2^(32+l); and m <=
// 2^33, so n m fits in 64 bits. A 64-bit division takes tens of cycles on a CPU and is a
// software routine on a GPU; this is a multiply. Where the loop's indexes or the divisor
// reach 2^31 it divides.
class IndexDivider {
 public:
  IndexDivider() = default;
  // For dividends in [0, limit).
  IndexDivider(std::int64_t divisor, std::int64_t limit) : divisor_(divisor) {
    constexpr std::int64_t k31 = std::int64_t{1} << 31;
    if (divisor < 1 || divisor >= k31 || limit > k31) return;  // magic_ 0: plain division
    int l = 0;
    while ((std::int64_t{1} << l) < divisor) ++l;
    shift_ = 32 + l;
    const std::uint64_t d = static_cast<std::uint64_t>(divisor);
    magic_ = ((std::uint64_t{1} << shift_) + d - 1) / d;
  }
  EMBER_HD std::int64_t div(std::int64_t n) const {
    if (magic_ == 0) return n / divisor_;
    return static_cast<std::int64_t>((static_cast<std::uint64_t>(n) * magic_) >> shift_);
  }
  // n / d, leaving n % d in rem.
  EMBER_HD std::int64_t div_rem(std::int64_t n, std::int64_t& rem) const {
    const std::int64_t q = div(n);
    rem = n - q * divisor_;
    return q;
  }

 private:
  std::int64_t divisor_ = 1;
  std::uint64_t magic_ = 0;
  int shift_ = 0;
};

// A 2-d convolution's input (N, C, H, W) unfolded into columns laid out (C, KH, KW, N, OH, OW):
// one GEMM row per (channel, kernel tap), one column per output pixel of the whole batch, so
// a convolution of any batch is one GEMM per group. Column element i reads the input under
// tap (kh, kw) at output pixel (oh, ow) of image n, or the zero padding.
struct Im2colGeometry {
  std::int64_t batch, channels, height, width;
  std::int64_t kernel_h, kernel_w, out_h, out_w;
  std::int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  std::int64_t in_strides[4];  // of the (N, C, H, W) input, in elements

  EMBER_HD std::int64_t numel() const {
    return channels * kernel_h * kernel_w * batch * out_h * out_w;
  }
};

// Where each column element of an im2col reads: the geometry with its five divisions per
// element by sizes fixed for the call done by IndexDividers, made once per call. A column
// row (tap (c, kh, kw), image n, output row oh: out_w elements) is located once (row), then
// each of its elements by a multiply-add (at); a launcher may walk either way.
class Im2colSource {
 public:
  struct Row {
    std::int64_t in_row;  // the input offset of (n, c, h), h the row's input row
    std::int64_t w0;      // the input column that output column 0 reads (may be < 0)
    bool inside;          // whether h is inside the input (else the row is all padding)
  };

  explicit Im2colSource(const Im2colGeometry& g)
      : geo_(g),
        out_w_(g.out_w, g.numel()),
        out_h_(g.out_h, g.numel()),
        batch_(g.batch, g.numel()),
        kernel_w_(g.kernel_w, g.numel()),
        kernel_h_(g.kernel_h, g.numel()) {}

  EMBER_HD std::int64_t out_w() const { return geo_.out_w; }
  EMBER_HD std::int64_t rows() const { return geo_.numel() / geo_.out_w; }

  // Column row r, in the layout (C, KH, KW, N, OH).
  EMBER_HD Row row(std::int64_t r) const {
    std::int64_t oh, n, kw, kh;
    r = out_h_.div_rem(r, oh);
    r = batch_.div_rem(r, n);
    r = kernel_w_.div_rem(r, kw);
    const std::int64_t c = kernel_h_.div_rem(r, kh);
    const Im2colGeometry& g = geo_;
    const std::int64_t h = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
    return {n * g.in_strides[0] + c * g.in_strides[1] + h * g.in_strides[2],
            kw * g.dilation_w - g.pad_w, h >= 0 && h < g.height};
  }
  // The input offset that element ow of the row reads; -1 in the padding.
  EMBER_HD std::int64_t at(const Row& row, std::int64_t ow) const {
    const std::int64_t w = ow * geo_.stride_w + row.w0;
    return row.inside && w >= 0 && w < geo_.width ? row.in_row + w * geo_.in_strides[3] : -1;
  }
  // The input offset that column element i reads; -1 in the padding.
  EMBER_HD std::int64_t operator()(std::int64_t i) const {
    std::int64_t ow;
    const std::int64_t r = out_w_.div_rem(i, ow);
    return at(row(r), ow);
  }

 private:
  Im2colGeometry geo_;
  IndexDivider out_w_, out_h_, batch_, kernel_w_, kernel_h_;
};

}  // namespace ember::kernels
