// Binary arithmetic, comparisons and their gradients on the device: the functors of
// kernels/math/elementwise_ops.hpp (fwd, da, db) applied per element of the broadcast shape.
#include <cstdint>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {
namespace {

template <typename Op, typename T, typename Out>
struct BinaryFn {
  Out* out;
  DeviceOperand<T> a, b;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    out[off[0]] = static_cast<Out>(Op{}.fwd(a[off[1]], b[off[2]]));
  }
};

// ga or gb is null when that gradient is not wanted; it is then never written.
template <typename Op, typename T>
struct BinaryBackwardFn {
  T *ga, *gb;
  const T* g;
  DeviceOperand<T> a, b, y;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[6]) const {
    const T gv = g[off[2]], av = a[off[3]], bv = b[off[4]], yv = y[off[5]];
    if (ga != nullptr) ga[off[0]] = Op{}.da(gv, av, bv, yv);
    if (gb != nullptr) gb[off[1]] = Op{}.db(gv, av, bv, yv);
  }
};

template <typename Op, typename T, typename Out>
void launch_binary(cudaStream_t stream, const TensorArg& out, const TensorArg& a,
                   const TensorArg& b) {
  const TensorArg* args[3] = {&out, &a, &b};
  launch_elementwise(
      stream, args, BinaryFn<Op, T, Out>{out.ptr<Out>(), DeviceOperand<T>(a), DeviceOperand<T>(b)});
}

template <typename Op, typename T>
void launch_binary_backward(cudaStream_t stream, const TensorArg* ga, const TensorArg* gb,
                            const TensorArg& g, const TensorArg& a, const TensorArg& b,
                            const TensorArg& y) {
  // An unwanted gradient walks with g's strides, so the offset calculation stays shared.
  const TensorArg& ga_arg = ga ? *ga : g;
  const TensorArg& gb_arg = gb ? *gb : g;
  const TensorArg* args[6] = {&ga_arg, &gb_arg, &g, &a, &b, &y};
  launch_elementwise(stream, args,
                     BinaryBackwardFn<Op, T>{
                         ga ? ga->ptr<T>() : nullptr, gb ? gb->ptr<T>() : nullptr, g.ptr<const T>(),
                         DeviceOperand<T>(a), DeviceOperand<T>(b), DeviceOperand<T>(y)});
}

}  // namespace

void CudaBackend::binary(BinaryOp op, const TensorArg& out, const TensorArg& a,
                         const TensorArg& b) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  if (is_comparison(op)) {
    dispatch_all(a.dtype, [&]<typename T>() {
      switch (op) {
#define EMBER_CASE(name)                                            \
  case BinaryOp::name:                                              \
    launch_binary<name##Op<T>, T, std::uint8_t>(stream, out, a, b); \
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
#define EMBER_CASE(name)                                 \
  case BinaryOp::name:                                   \
    launch_binary<name##Op<T>, T, T>(stream, out, a, b); \
    break;
      EMBER_BINARY_ARITH_OPS(EMBER_CASE)
#undef EMBER_CASE
      default:
        break;
    }
  });
}

void CudaBackend::binary_backward(BinaryOp op, const TensorArg* ga, const TensorArg* gb,
                                  const TensorArg& g, const TensorArg& a, const TensorArg& b,
                                  const TensorArg& y) {
  if (g.numel() == 0 || (ga == nullptr && gb == nullptr)) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  dispatch_floating(g.dtype, binary_op_name(op), [&]<typename T>() {
    switch (op) {
#define EMBER_CASE(name)                                                \
  case BinaryOp::name:                                                  \
    launch_binary_backward<name##Op<T>, T>(stream, ga, gb, g, a, b, y); \
    break;
      EMBER_BINARY_ARITH_OPS(EMBER_CASE)
#undef EMBER_CASE
      default:
        break;
    }
  });
}

}  // namespace ember::kernels::cuda
