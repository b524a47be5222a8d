// Iteration geometry the CPU and CUDA launchers share: how a reduction splits into kept and
// reduced dims, and how index ops address the dim they index.
#pragma once

#include <cstdint>

#include "kernels/common/tensor_arg.hpp"

namespace ember::kernels {

// The split of a reduction: `kept` walks out and in together over the outputs, `reduced`
// walks in alone over one output's inputs. Dims where out has size 1 and in does not are
// reduced.
struct ReduceGeometry {
  OffsetCalc<2> kept;
  OffsetCalc<1> reduced;
  std::int64_t n_out = 0;
  std::int64_t n_red = 0;
};

inline ReduceGeometry reduce_geometry(const TensorArg& out, const TensorArg& in) {
  TensorArg kept_in = in;
  TensorArg reduced = in;
  for (int d = 0; d < in.ndim; ++d) {
    const bool is_reduced = out.sizes[d] == 1 && in.sizes[d] != 1;
    kept_in.sizes[d] = out.sizes[d];
    if (!is_reduced) reduced.sizes[d] = 1;
  }
  const TensorArg* kept_args[2] = {&out, &kept_in};
  const TensorArg* red_args[1] = {&reduced};
  return {make_offset_calc<2>(kept_args), make_offset_calc<1>(red_args), out.numel(),
          reduced.numel()};
}

// The arg with dim `dim` given `size` and stride 0: its coordinate along dim is supplied
// separately (by an index).
inline TensorArg without_dim(const TensorArg& a, int dim, std::int64_t size) {
  TensorArg r = a;
  r.sizes[dim] = size;
  r.strides[dim] = 0;
  return r;
}

// Elements after dim: the linear index's stride along dim in a row-major walk.
inline std::int64_t inner_size(const TensorArg& a, int dim) {
  std::int64_t n = 1;
  for (int d = dim + 1; d < a.ndim; ++d) n *= a.sizes[d];
  return n;
}

}  // namespace ember::kernels
