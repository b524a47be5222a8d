// The definitions of IndexArea: indexed reads and accumulations (convolution's im2col and
// col2im among them) over the launcher's loop, and its bounds check
// (kernels/common/launcher.hpp), included only by the launcher source file that instantiates
// it.
#pragma once

#include <cstdint>

#include "kernels/common/areas/run.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/elementwise_bodies.hpp"
#include "kernels/common/launcher.hpp"
#include "kernels/common/op_lists.hpp"

namespace ember::kernels {

template <typename Impl>
void IndexArea<Impl>::index_select(const TensorArg& out, const TensorArg& in, int dim,
                                   const TensorArg& index) {
  // A gather whose index is the 1-d index spread along `dim` of out's shape: the walk steps
  // through it like any operand, with no division per element.
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_all(out.dtype, [&]<typename T>() {
    const TensorArg in0 = without_dim(in, dim, out.sizes[dim]);
    const TensorArg spread = index_along(index, out, dim);
    const TensorArg* args[3] = {&out, &spread, &in0};
    run_over(loop, args,
             GatherBody<T>{out.ptr<T>(), index.ptr<const std::int64_t>(), in.ptr<const T>(),
                           in.strides[dim]});
  });
}

template <typename Impl>
void IndexArea<Impl>::index_add(const TensorArg& out, int dim, const TensorArg& index,
                                const TensorArg& src) {
  // A scatter-add whose index is the 1-d index spread along `dim` of src's shape.
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_arith(out.dtype, "index_add", [&]<typename T>() {
    const TensorArg out0 = without_dim(out, dim, src.sizes[dim]);
    const TensorArg spread = index_along(index, src, dim);
    const TensorArg* args[3] = {&out0, &spread, &src};
    run_over(loop, args,
             ScatterAddBody<T>{out.ptr<T>(), index.ptr<const std::int64_t>(), src.ptr<const T>(),
                               out.strides[dim]});
  });
}

template <typename Impl>
void IndexArea<Impl>::gather(const TensorArg& out, const TensorArg& in, int dim,
                             const TensorArg& index) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_all(out.dtype, [&]<typename T>() {
    TensorArg in0 = without_dim(in, dim, index.sizes[dim]);
    for (int d = 0; d < in.ndim; ++d) in0.sizes[d] = index.sizes[d];
    const TensorArg* args[3] = {&out, &index, &in0};
    run_over(loop, args,
             GatherBody<T>{out.ptr<T>(), index.ptr<const std::int64_t>(), in.ptr<const T>(),
                           in.strides[dim]});
  });
}

template <typename Impl>
void IndexArea<Impl>::scatter_add(const TensorArg& out, int dim, const TensorArg& index,
                                  const TensorArg& src) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_arith(out.dtype, "scatter_add", [&]<typename T>() {
    TensorArg out0 = without_dim(out, dim, index.sizes[dim]);
    for (int d = 0; d < out.ndim; ++d) out0.sizes[d] = index.sizes[d];
    const TensorArg* args[3] = {&out0, &index, &src};
    run_over(loop, args,
             ScatterAddBody<T>{out.ptr<T>(), index.ptr<const std::int64_t>(), src.ptr<const T>(),
                               out.strides[dim]});
  });
}

// im2col (kScatter false) or col2im (true) over the columns: element by element where the
// loop runs a thread per element (Loop::kThreadPerElement, the GPU's), else row by row.
template <bool kScatter, typename Loop>
void run_columns(Loop& loop, const TensorArg& col, const TensorArg& in, const Im2colGeometry& geo) {
  dispatch_floating(col.dtype, kScatter ? "col2im" : "im2col", [&]<typename T>() {
    const Im2colSource source(geo);
    if constexpr (Loop::kThreadPerElement) {
      const TensorArg* args[1] = {&col};
      run_over(loop, args, ColumnBody<T, kScatter>{col.ptr<T>(), in.ptr<T>(), source});
    } else {
      // One walk position per column row; its offset steps by a row of out_w elements.
      TensorArg rows = col;
      rows.ndim = 1;
      rows.sizes[0] = source.rows();
      rows.strides[0] = geo.out_w;
      const TensorArg* args[1] = {&rows};
      run_over(loop, args, ColumnRowBody<T, kScatter>{col.ptr<T>(), in.ptr<T>(), source});
    }
  });
}

template <typename Impl>
void IndexArea<Impl>::im2col(const TensorArg& col, const TensorArg& in, const Im2colGeometry& geo) {
  auto loop = static_cast<Impl*>(this)->loop();
  run_columns<false>(loop, col, in, geo);
}

template <typename Impl>
void IndexArea<Impl>::col2im(const TensorArg& in, const TensorArg& col, const Im2colGeometry& geo) {
  auto loop = static_cast<Impl*>(this)->loop();
  run_columns<true>(loop, col, in, geo);
}

template <typename Impl>
bool IndexArea<Impl>::find_index_out_of_range(const TensorArg& index, std::int64_t bound,
                                              std::int64_t* bad) {
  return launch_find_index_out_of_range(static_cast<Impl&>(*this), index, bound, bad);
}

}  // namespace ember::kernels
