// Indexing on the device: index_select and gather read, index_add and scatter_add
// accumulate with atomicAdd (repeated indices add up; the order of float additions is not
// fixed, so those two are not bitwise deterministic), and the bounds check that reports the
// first offending index to the host.
#include <cstdint>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {
namespace {

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
// Two's complement: unsigned wrap-around addition is signed addition.
__device__ __forceinline__ void atomic_add(std::int64_t* p, std::int64_t v) {
  static_assert(sizeof(std::int64_t) == sizeof(unsigned long long));
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

// Operand offsets are those of out (or src) with the indexed dim at 0; the index's entry
// for element i is at (i / inner) % len along the indexed dim.
struct IndexedDim {
  const std::int64_t* index;
  std::int64_t index_stride;  // of the 1-d index tensor
  std::int64_t inner, len;    // elements after the dim, and its length, in the walk
  std::int64_t dim_stride;    // of the indexed tensor along the dim

  __device__ std::int64_t offset(std::int64_t i) const {
    return index[((i / inner) % len) * index_stride] * dim_stride;
  }
};

template <typename T>
struct IndexSelectFn {
  T* out;
  const T* in;
  IndexedDim dim;
  __device__ void operator()(std::int64_t i, const std::int64_t (&off)[2]) const {
    out[off[0]] = in[off[1] + dim.offset(i)];
  }
};

template <typename T>
struct IndexAddFn {
  T* out;
  const T* src;
  IndexedDim dim;
  __device__ void operator()(std::int64_t i, const std::int64_t (&off)[2]) const {
    atomic_add(out + off[0] + dim.offset(i), src[off[1]]);
  }
};

template <typename T>
struct GatherFn {
  T* out;
  const std::int64_t* index;
  const T* in;
  std::int64_t dim_stride;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    out[off[0]] = in[off[2] + index[off[1]] * dim_stride];
  }
};

template <typename T>
struct ScatterAddFn {
  T* out;
  const std::int64_t* index;
  const T* src;
  std::int64_t dim_stride;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    atomic_add(out + off[0] + index[off[1]] * dim_stride, src[off[2]]);
  }
};

// Records the smallest linear position whose index is out of [0, bound).
struct FindOutOfRangeFn {
  const std::int64_t* index;
  std::int64_t bound;
  unsigned long long* first;
  __device__ void operator()(std::int64_t i, const std::int64_t (&off)[1]) const {
    const std::int64_t v = index[off[0]];
    if (v < 0 || v >= bound) atomicMin(first, static_cast<unsigned long long>(i));
  }
};

// result[0]: the first offending position (all ones when none); result[1]: its value.
__global__ void read_first_out_of_range_kernel(const std::int64_t* index, OffsetCalc<1> calc,
                                               unsigned long long* result) {
  if (result[0] == ~0ULL) return;
  std::int64_t off[1];
  calc.get(static_cast<std::int64_t>(result[0]), off);
  result[1] = static_cast<unsigned long long>(index[off[0]]);
}

}  // namespace

void CudaBackend::index_select(const TensorArg& out, const TensorArg& in, int dim,
                               const TensorArg& index) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_all(out.dtype, [&]<typename T>() {
    const TensorArg in0 = without_dim(in, dim, out.sizes[dim]);
    const TensorArg* args[2] = {&out, &in0};
    const IndexedDim indexed{index.ptr<const std::int64_t>(), index.strides[0],
                             inner_size(out, dim), out.sizes[dim], in.strides[dim]};
    launch_elementwise(ctx_.stream(), args,
                       IndexSelectFn<T>{out.ptr<T>(), in.ptr<const T>(), indexed});
  });
}

void CudaBackend::index_add(const TensorArg& out, int dim, const TensorArg& index,
                            const TensorArg& src) {
  if (src.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_arith(out.dtype, "index_add", [&]<typename T>() {
    const TensorArg out0 = without_dim(out, dim, src.sizes[dim]);
    const TensorArg* args[2] = {&out0, &src};
    const IndexedDim indexed{index.ptr<const std::int64_t>(), index.strides[0],
                             inner_size(src, dim), src.sizes[dim], out.strides[dim]};
    launch_elementwise(ctx_.stream(), args,
                       IndexAddFn<T>{out.ptr<T>(), src.ptr<const T>(), indexed});
  });
}

void CudaBackend::gather(const TensorArg& out, const TensorArg& in, int dim,
                         const TensorArg& index) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_all(out.dtype, [&]<typename T>() {
    TensorArg in0 = without_dim(in, dim, index.sizes[dim]);
    for (int d = 0; d < in.ndim; ++d) in0.sizes[d] = index.sizes[d];
    const TensorArg* args[3] = {&out, &index, &in0};
    launch_elementwise(ctx_.stream(), args,
                       GatherFn<T>{out.ptr<T>(), index.ptr<const std::int64_t>(), in.ptr<const T>(),
                                   in.strides[dim]});
  });
}

void CudaBackend::scatter_add(const TensorArg& out, int dim, const TensorArg& index,
                              const TensorArg& src) {
  if (index.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_arith(out.dtype, "scatter_add", [&]<typename T>() {
    TensorArg out0 = without_dim(out, dim, index.sizes[dim]);
    for (int d = 0; d < out.ndim; ++d) out0.sizes[d] = index.sizes[d];
    const TensorArg* args[3] = {&out0, &index, &src};
    launch_elementwise(ctx_.stream(), args,
                       ScatterAddFn<T>{out.ptr<T>(), index.ptr<const std::int64_t>(),
                                       src.ptr<const T>(), out.strides[dim]});
  });
}

bool CudaBackend::find_index_out_of_range(const TensorArg& index, std::int64_t bound,
                                          std::int64_t* bad) {
  if (index.numel() == 0) return false;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  const DeviceBuffer result(ctx_, 2 * sizeof(unsigned long long));
  auto* d_result = result.as<unsigned long long>();
  EMBER_CUDA_CHECK(cudaMemsetAsync(d_result, 0xff, 2 * sizeof(unsigned long long), stream));
  const TensorArg* args[1] = {&index};
  const OffsetCalc<1> calc = make_offset_calc<1>(args);
  const auto* d_index = index.ptr<const std::int64_t>();
  launch_elementwise(stream, index.numel(), calc, FindOutOfRangeFn{d_index, bound, d_result});
  read_first_out_of_range_kernel<<<1, 1, 0, stream>>>(d_index, calc, d_result);
  EMBER_CUDA_LAUNCH_CHECK();
  unsigned long long host[2] = {};
  EMBER_CUDA_CHECK(cudaMemcpyAsync(host, d_result, sizeof(host), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (host[0] == ~0ULL) return false;
  *bad = static_cast<std::int64_t>(host[1]);
  return true;
}

}  // namespace ember::kernels::cuda
