// Reductions (sum, prod, max, min) on the device, in three shapes of work:
//  - one output (a full reduction): cub::DeviceReduce, straight from memory when the input
//    is contiguous, through a strided-load iterator otherwise;
//  - a long reduced extent per output: one block per output, combined with cub::BlockReduce;
//  - a short reduced extent: one thread per output (neighbouring threads read neighbouring
//    outputs' data, which is what a reduction over an outer dim needs to coalesce).
// Accumulation is in the element type: float sums accumulate in float on the device (the
// CPU accumulates them in double), so long float32 sums differ in the last digits. The
// order of combination is fixed for a given shape, so results are deterministic.
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_reduce.cuh>

#include "kernels/common/dispatch.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {
namespace {

// Reduced extents at least this long get a whole block per output.
inline constexpr std::int64_t kBlockPerOutputMin = 256;
inline constexpr int kReduceBlock = 256;

// Offset of element j of a one-operand walk; the 0-d and 1-d cases skip the div/mod.
__device__ __forceinline__ std::int64_t offset_of(const OffsetCalc<1>& calc, std::int64_t j) {
  if (calc.ndim == 0) return 0;
  if (calc.ndim == 1) return j * calc.strides[0][0];
  std::int64_t off[1];
  calc.get(j, off);
  return off[0];
}

template <typename T, typename Combine>
__global__ void reduce_thread_per_output_kernel(ReduceGeometry geo, T* out, const T* in) {
  const Combine combine{};
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       o < geo.n_out; o += step) {
    std::int64_t off[2];
    geo.kept.get(o, off);
    const T* base = in + off[1];
    T acc = Combine::identity();
    for (std::int64_t j = 0; j < geo.n_red; ++j)
      acc = combine(acc, base[offset_of(geo.reduced, j)]);
    out[off[0]] = acc;
  }
}

template <typename T, typename Combine>
__global__ void __launch_bounds__(kReduceBlock)
    reduce_block_per_output_kernel(ReduceGeometry geo, T* out, const T* in) {
  using BlockReduce = cub::BlockReduce<T, kReduceBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  const Combine combine{};
  for (std::int64_t o = blockIdx.x; o < geo.n_out; o += gridDim.x) {
    std::int64_t off[2];
    geo.kept.get(o, off);
    const T* base = in + off[1];
    T acc = Combine::identity();
    for (std::int64_t j = threadIdx.x; j < geo.n_red; j += kReduceBlock)
      acc = combine(acc, base[offset_of(geo.reduced, j)]);
    const T total = BlockReduce(temp).Reduce(acc, combine);
    if (threadIdx.x == 0) out[off[0]] = total;
    __syncthreads();  // temp is reused by the next output
  }
}

// Element j of a strided input, for CUB's iterator-based algorithms.
template <typename T>
struct StridedLoad {
  const T* in;
  OffsetCalc<1> calc;
  __device__ T operator()(std::int64_t j) const { return in[offset_of(calc, j)]; }
};

template <typename T, typename Combine, typename InputIt>
void launch_device_reduce(DeviceContext& ctx, InputIt d_in, T* d_out, std::int64_t n) {
  const cudaStream_t stream = ctx.stream();
  std::size_t temp_bytes = 0;
  EMBER_CUDA_CHECK(cub::DeviceReduce::Reduce(nullptr, temp_bytes, d_in, d_out, n, Combine{},
                                             Combine::identity(), stream));
  const DeviceBuffer temp(ctx, temp_bytes);
  EMBER_CUDA_CHECK(cub::DeviceReduce::Reduce(temp.get(), temp_bytes, d_in, d_out, n, Combine{},
                                             Combine::identity(), stream));
}

template <typename T, typename Combine>
void launch_reduce(DeviceContext& ctx, const TensorArg& out, const TensorArg& in) {
  const ReduceGeometry geo = reduce_geometry(out, in);
  T* d_out = out.ptr<T>();
  const T* d_in = in.ptr<const T>();
  if (geo.n_out == 1) {
    const OffsetCalc<1>& red = geo.reduced;
    if (red.ndim == 0 || (red.ndim == 1 && red.strides[0][0] == 1)) {
      launch_device_reduce<T, Combine>(ctx, d_in, d_out, geo.n_red);
    } else {
      const auto d_strided = thrust::make_transform_iterator(
          thrust::counting_iterator<std::int64_t>(0), StridedLoad<T>{d_in, red});
      launch_device_reduce<T, Combine>(ctx, d_strided, d_out, geo.n_red);
    }
    return;
  }
  if (geo.n_red >= kBlockPerOutputMin) {
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(geo.n_out, kMaxGridBlocks));
    reduce_block_per_output_kernel<T, Combine>
        <<<blocks, kReduceBlock, 0, ctx.stream()>>>(geo, d_out, d_in);
  } else {
    reduce_thread_per_output_kernel<T, Combine>
        <<<grid_for(geo.n_out), kBlockSize, 0, ctx.stream()>>>(geo, d_out, d_in);
  }
  EMBER_CUDA_LAUNCH_CHECK();
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const TensorArg& out, const TensorArg& in) {
  // The engine fills the identity itself for an empty input, so in is non-empty here.
  if (out.numel() == 0 || in.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_arith(out.dtype, "reduce", [&]<typename T>() {
    switch (op) {
      case ReduceOp::Sum:
        launch_reduce<T, SumReduce<T>>(ctx_, out, in);
        break;
      case ReduceOp::Prod:
        launch_reduce<T, ProdReduce<T>>(ctx_, out, in);
        break;
      case ReduceOp::Max:
        launch_reduce<T, MaxReduce<T>>(ctx_, out, in);
        break;
      case ReduceOp::Min:
        launch_reduce<T, MinReduce<T>>(ctx_, out, in);
        break;
    }
  });
}

}  // namespace ember::kernels::cuda
