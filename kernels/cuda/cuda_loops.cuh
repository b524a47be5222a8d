// How the CUDA backend iterates: grid-stride kernels over N strided operands that call a
// per-element functor with the linear index and each operand's element offset. Operands
// that are contiguous (or broadcast along one merged dim) take a 1-d path with no div/mod.
#pragma once

#include <cstdint>

#include "kernels/common/geometry.hpp"
#include "kernels/common/tensor_arg.hpp"
#include "kernels/cuda/cuda_context.cuh"

namespace ember::kernels::cuda {

// A read-only operand as a kernel sees it: a pointer, or (for a scalar TensorArg, whose
// data is null) a value broadcast to every element.
template <typename T>
struct DeviceOperand {
  const T* ptr;
  T value;

  explicit DeviceOperand(const TensorArg& a)
      : ptr(a.ptr<const T>()), value(a.is_scalar() ? static_cast<T>(a.scalar) : T{}) {}
  __device__ __forceinline__ T operator[](std::int64_t offset) const {
    return ptr != nullptr ? ptr[offset] : value;
  }
};

// Per-operand strides of the single merged dim of a 1-d walk.
template <int N>
struct LinearStrides {
  std::int64_t s[N];
};

template <int N, typename F>
__global__ void elementwise_1d_kernel(std::int64_t n, LinearStrides<N> strides, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step) {
    std::int64_t off[N];
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = i * strides.s[k];
    f(i, off);
  }
}

template <int N, typename F>
__global__ void elementwise_nd_kernel(std::int64_t n, OffsetCalc<N> calc, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step) {
    std::int64_t off[N];
    calc.get(i, off);
    f(i, off);
  }
}

// Calls f(i, offsets) on the device for every i in [0, n) of calc's iteration space.
template <int N, typename F>
void launch_elementwise(cudaStream_t stream, std::int64_t n, const OffsetCalc<N>& calc,
                        const F& f) {
  if (n <= 0) return;
  if (calc.ndim <= 1) {
    LinearStrides<N> strides{};
    for (int k = 0; k < N; ++k) strides.s[k] = calc.ndim == 0 ? 0 : calc.strides[k][0];
    elementwise_1d_kernel<N><<<grid_for(n), kBlockSize, 0, stream>>>(n, strides, f);
  } else {
    elementwise_nd_kernel<N><<<grid_for(n), kBlockSize, 0, stream>>>(n, calc, f);
  }
  EMBER_CUDA_LAUNCH_CHECK();
}

// The common form: operands given as TensorArgs that share args[0]'s sizes.
template <int N, typename F>
void launch_elementwise(cudaStream_t stream, const TensorArg* const (&args)[N], const F& f) {
  launch_elementwise<N>(stream, args[0]->numel(), make_offset_calc<N>(args), f);
}

}  // namespace ember::kernels::cuda
