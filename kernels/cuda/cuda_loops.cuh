// How the CUDA backend iterates: grid-stride kernels over N strided operands that call a
// per-element body with the linear index and each operand's element offset (the bodies of
// kernels/common/elementwise_bodies.hpp, the same the CPU runs).
#pragma once

#include <cstdint>

#include "kernels/common/geometry.hpp"
#include "kernels/common/tensor_arg.hpp"
#include "kernels/cuda/cuda_context.cuh"

namespace ember::kernels::cuda {

// Calls f(i, offsets) for every i in [0, n) of calc's iteration space, grid-striding. A walk
// of at most one (merged) dim, the common case of contiguous and simply broadcast operands,
// computes offsets without div/mod; the branch is uniform across the grid, and one kernel
// per body (rather than one per path) halves what nvcc compiles.
template <int N, typename F>
__global__ void elementwise_kernel(std::int64_t n, OffsetCalc<N> calc, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (calc.ndim <= 1) {
    std::int64_t stride[N];
#pragma unroll
    for (int k = 0; k < N; ++k) stride[k] = calc.ndim == 0 ? 0 : calc.strides[k][0];
    for (std::int64_t i = first; i < n; i += step) {
      std::int64_t off[N];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i * stride[k];
      f(i, off);
    }
    return;
  }
  for (std::int64_t i = first; i < n; i += step) {
    std::int64_t off[N];
    calc.get(i, off);
    f(i, off);
  }
}

template <int N, typename F>
void launch_elementwise(cudaStream_t stream, std::int64_t n, const OffsetCalc<N>& calc,
                        const F& f) {
  if (n <= 0) return;
  elementwise_kernel<N><<<grid_for(n), kBlockSize, 0, stream>>>(n, calc, f);
  EMBER_CUDA_LAUNCH_CHECK();
}

// The CUDA launcher's loop for the shared elementwise bodies: one launch on the device's
// current stream, the device made current for it. Scalar operands travel by value in the
// body (no slot: device code reads Operand::value).
class Loop {
 public:
  // A thread per element: bodies that could walk a row each take the element form.
  static constexpr bool kThreadPerElement = true;

  explicit Loop(DeviceContext& ctx) : ctx_(&ctx) {}

  template <typename T>
  const T* scalar_slot(const TensorArg&) const {
    return nullptr;
  }
  template <typename T>
  T scalar_value(const TensorArg& a) const {
    return static_cast<T>(a.scalar);
  }
  // The CPU loop copies operands broadcast along the innermost dim; a GPU thread per element
  // reads them where they are.
  const TensorArg& densify(const TensorArg& a, const TensorArg&) const { return a; }

  // `args` (the body's operands) matter to the CPU's bound loops alone.
  template <int N, typename Body>
  void run(std::int64_t n, const OffsetCalc<N>& calc, const Body& body,
           const TensorArg* const* args = nullptr) const {
    (void)args;
    if (n <= 0) return;
    const DeviceGuard guard(ctx_->device());
    launch_elementwise<N>(ctx_->stream(), n, calc, body);
  }

 private:
  DeviceContext* ctx_;
};

}  // namespace ember::kernels::cuda
