// Reductions (sum, prod, max, min, and the sum of a product) on the device, in three shapes
// of work:
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

// Offsets of element j of an N-operand walk; the 0-d and 1-d cases skip the div/mod.
template <int N>
__device__ __forceinline__ void offsets_of(const OffsetCalc<N>& calc, std::int64_t j,
                                           std::int64_t (&off)[N]) {
  if (calc.ndim == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
  } else if (calc.ndim == 1) {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = j * calc.strides[k][0];
  } else {
    calc.get(j, off);
  }
}

// What a reduction combines: element j of one input, or the product of two inputs' elements
// (reduce_product). `base` holds each input's offset for the current output.
template <typename T>
struct LoadOne {
  const T* in[1];
  __device__ __forceinline__ T operator()(const std::int64_t* base,
                                          const std::int64_t (&r)[1]) const {
    return in[0][base[0] + r[0]];
  }
};
template <typename T>
struct LoadProduct {
  const T* in[2];
  __device__ __forceinline__ T operator()(const std::int64_t* base,
                                          const std::int64_t (&r)[2]) const {
    return in[0][base[0] + r[0]] * in[1][base[1] + r[1]];
  }
};

template <typename T, typename Combine, int N, typename Load>
__global__ void reduce_thread_per_output_kernel(ReduceGeometryN<N> geo, T* out, Load load) {
  const Combine combine{};
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       o < geo.n_out; o += step) {
    std::int64_t off[N + 1];
    geo.kept.get(o, off);
    T acc = Combine::identity();
    for (std::int64_t j = 0; j < geo.n_red; ++j) {
      std::int64_t r[N];
      offsets_of(geo.reduced, j, r);
      acc = combine(acc, load(off + 1, r));
    }
    out[off[0]] = acc;
  }
}

template <typename T, typename Combine, int N, typename Load>
__global__ void __launch_bounds__(kReduceBlock)
    reduce_block_per_output_kernel(ReduceGeometryN<N> geo, T* out, Load load) {
  using BlockReduce = cub::BlockReduce<T, kReduceBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  const Combine combine{};
  for (std::int64_t o = blockIdx.x; o < geo.n_out; o += gridDim.x) {
    std::int64_t off[N + 1];
    geo.kept.get(o, off);
    T acc = Combine::identity();
    for (std::int64_t j = threadIdx.x; j < geo.n_red; j += kReduceBlock) {
      std::int64_t r[N];
      offsets_of(geo.reduced, j, r);
      acc = combine(acc, load(off + 1, r));
    }
    const T total = BlockReduce(temp).Reduce(acc, combine);
    if (threadIdx.x == 0) out[off[0]] = total;
    __syncthreads();  // temp is reused by the next output
  }
}

// Element j of a full reduction's (strided, or product) input, for CUB's iterator-based
// algorithms.
template <typename T, int N, typename Load>
struct ReducedElement {
  Load load;
  OffsetCalc<N> calc;
  __device__ T operator()(std::int64_t j) const {
    std::int64_t r[N];
    offsets_of(calc, j, r);
    const std::int64_t base[N] = {};
    return load(base, r);
  }
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
  ++t_event_counters.kernel_launches;  // CUB's kernels, counted as one
}

// One of the three shapes of work (see the top of the file) for N inputs read by `load`.
template <typename T, typename Combine, int N, typename Load>
void launch_reduce_n(DeviceContext& ctx, T* d_out, const ReduceGeometryN<N>& geo, const Load& load,
                     const T* contiguous_in) {
  if (geo.n_out == 1) {
    const OffsetCalc<N>& red = geo.reduced;
    if (contiguous_in != nullptr && (red.ndim == 0 || (red.ndim == 1 && red.strides[0][0] == 1))) {
      launch_device_reduce<T, Combine>(ctx, contiguous_in, d_out, geo.n_red);
    } else {
      const auto d_elements = thrust::make_transform_iterator(
          thrust::counting_iterator<std::int64_t>(0), ReducedElement<T, N, Load>{load, red});
      launch_device_reduce<T, Combine>(ctx, d_elements, d_out, geo.n_red);
    }
    return;
  }
  if (geo.n_red >= kBlockPerOutputMin) {
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(geo.n_out, kMaxGridBlocks));
    reduce_block_per_output_kernel<T, Combine, N>
        <<<blocks, kReduceBlock, 0, ctx.stream()>>>(geo, d_out, load);
  } else {
    reduce_thread_per_output_kernel<T, Combine, N>
        <<<grid_for(geo.n_out), kBlockSize, 0, ctx.stream()>>>(geo, d_out, load);
  }
  EMBER_CUDA_LAUNCH_CHECK();
}

template <typename T, typename Combine>
void launch_reduce(DeviceContext& ctx, const TensorArg& out, const TensorArg& in) {
  const ReduceGeometry geo = reduce_geometry(out, in);
  const T* d_in = in.ptr<const T>();
  launch_reduce_n<T, Combine, 1>(ctx, out.ptr<T>(), geo, LoadOne<T>{{d_in}}, d_in);
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

void CudaBackend::reduce_product(const TensorArg& out, const TensorArg& a, const TensorArg& b) {
  if (out.numel() == 0 || a.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_floating(out.dtype, "reduce_product", [&]<typename T>() {
    const TensorArg* ins[2] = {&a, &b};
    const ReduceGeometryN<2> geo = reduce_geometry<2>(out, ins);
    launch_reduce_n<T, SumReduce<T>, 2>(
        ctx_, out.ptr<T>(), geo, LoadProduct<T>{{a.ptr<const T>(), b.ptr<const T>()}}, nullptr);
  });
}

}  // namespace ember::kernels::cuda
