// The definitions of ElementwiseArea: creation, copies, selection and unary math over the
// launcher's loop (kernels/common/launcher.hpp), included only by the
// launcher source file that instantiates it.
#pragma once

#include <cstdint>

#include "kernels/common/areas/run.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/elementwise_bodies.hpp"
#include "kernels/common/launcher.hpp"
#include "kernels/common/op_lists.hpp"

namespace ember::kernels {

template <typename Impl>
void ElementwiseArea<Impl>::fill(const TensorArg& out, double value) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_all(out.dtype, [&]<typename T>() {
    const TensorArg* args[1] = {&out};
    run_over(loop, args, FillBody<T>{out.ptr<T>(), convert<T>(value)});
  });
}

template <typename Impl>
void ElementwiseArea<Impl>::fill_linear(const TensorArg& out, double start, double step) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_arith(out.dtype, "fill_linear", [&]<typename T>() {
    OffsetCalc<1> flat;  // out is contiguous
    flat.ndim = 1;
    flat.sizes[0] = out.numel();
    flat.strides[0][0] = 1;
    loop.run(out.numel(), flat, FillLinearBody<T>{out.ptr<T>(), start, step});
  });
}

template <typename Impl>
void ElementwiseArea<Impl>::copy(const TensorArg& out, const TensorArg& in) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_all(out.dtype, [&]<typename To>() {
    dispatch_all(in.dtype, [&]<typename From>() {
      const TensorArg* args[2] = {&out, &in};
      run_over(loop, args, CopyBody<To, From>{out.ptr<To>(), in.ptr<const From>()});
    });
  });
}

template <typename Impl>
void ElementwiseArea<Impl>::where(const TensorArg& out, const TensorArg& cond, const TensorArg& a,
                                  const TensorArg& b) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_all(out.dtype, [&]<typename T>() {
    const TensorArg* args[4] = {&out, &cond, &a, &b};
    run_over(loop, args,
             WhereBody<T>{out.ptr<T>(), cond.ptr<const std::uint8_t>(), Operand<T>(a, loop),
                          Operand<T>(b, loop)});
  });
}

template <typename Impl>
void ElementwiseArea<Impl>::unary(UnaryOp op, const TensorArg& out, const TensorArg& x, double p0,
                                  double p1) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_floating(out.dtype, unary_op_name(op), [&]<typename T>() {
    visit_op<T>(UnaryOps{}, static_cast<int>(op), [&]<typename Op>() {
      const TensorArg* args[2] = {&out, &x};
      run_over(loop, args,
               UnaryBody<Op, T>{Op{static_cast<T>(p0), static_cast<T>(p1)}, out.ptr<T>(),
                                x.ptr<const T>()});
    });
  });
}

template <typename Impl>
void ElementwiseArea<Impl>::unary_backward(UnaryOp op, const TensorArg& gx, const TensorArg& g,
                                           const TensorArg& x, const TensorArg& y, double p0,
                                           double p1) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_floating(gx.dtype, unary_op_name(op), [&]<typename T>() {
    visit_op<T>(UnaryOps{}, static_cast<int>(op), [&]<typename Op>() {
      const TensorArg* args[4] = {&gx, &g, &x, &y};
      run_over(loop, args,
               UnaryBackwardBody<Op, T>{Op{static_cast<T>(p0), static_cast<T>(p1)}, gx.ptr<T>(),
                                        g.ptr<const T>(), x.ptr<const T>(), y.ptr<const T>()});
    });
  });
}

}  // namespace ember::kernels
