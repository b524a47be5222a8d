// Unary math on the device: the functors of kernels/math/elementwise_ops.hpp (fwd, bwd)
// applied per element.
#include <cstdint>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {
namespace {

template <typename Op, typename T>
struct UnaryFn {
  Op op;
  T* out;
  const T* x;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[2]) const {
    out[off[0]] = op.fwd(x[off[1]]);
  }
};

template <typename Op, typename T>
struct UnaryBackwardFn {
  Op op;
  T* gx;
  const T *g, *x, *y;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[4]) const {
    gx[off[0]] = op.bwd(g[off[1]], x[off[2]], y[off[3]]);
  }
};

template <typename Op, typename T>
void launch_unary(cudaStream_t stream, const TensorArg& out, const TensorArg& x, double p0,
                  double p1) {
  const TensorArg* args[2] = {&out, &x};
  const Op op{static_cast<T>(p0), static_cast<T>(p1)};
  launch_elementwise(stream, args, UnaryFn<Op, T>{op, out.ptr<T>(), x.ptr<const T>()});
}

template <typename Op, typename T>
void launch_unary_backward(cudaStream_t stream, const TensorArg& gx, const TensorArg& g,
                           const TensorArg& x, const TensorArg& y, double p0, double p1) {
  const TensorArg* args[4] = {&gx, &g, &x, &y};
  const Op op{static_cast<T>(p0), static_cast<T>(p1)};
  launch_elementwise(stream, args,
                     UnaryBackwardFn<Op, T>{op, gx.ptr<T>(), g.ptr<const T>(), x.ptr<const T>(),
                                            y.ptr<const T>()});
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const TensorArg& out, const TensorArg& x, double p0,
                        double p1) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  dispatch_floating(out.dtype, unary_op_name(op), [&]<typename T>() {
    switch (op) {
#define EMBER_CASE(name)                                  \
  case UnaryOp::name:                                     \
    launch_unary<name##Op<T>, T>(stream, out, x, p0, p1); \
    break;
      EMBER_UNARY_OPS(EMBER_CASE)
#undef EMBER_CASE
    }
  });
}

void CudaBackend::unary_backward(UnaryOp op, const TensorArg& gx, const TensorArg& g,
                                 const TensorArg& x, const TensorArg& y, double p0, double p1) {
  if (gx.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  dispatch_floating(gx.dtype, unary_op_name(op), [&]<typename T>() {
    switch (op) {
#define EMBER_CASE(name)                                                \
  case UnaryOp::name:                                                   \
    launch_unary_backward<name##Op<T>, T>(stream, gx, g, x, y, p0, p1); \
    break;
      EMBER_UNARY_OPS(EMBER_CASE)
#undef EMBER_CASE
    }
  });
}

}  // namespace ember::kernels::cuda
