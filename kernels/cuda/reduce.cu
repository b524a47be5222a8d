// Reductions (sum, prod, max, min, and the sum of a product) on the device, in three shapes
// of work:
//  - one output (a full reduction): two passes, each block combining a fixed share of the
//    elements into a partial, then one block combining the partials;
//  - a long reduced extent per output: one block per output, combined with cub::BlockReduce;
//  - a short reduced extent: one thread per output (neighbouring threads read neighbouring
//    outputs' data, which is what a reduction over an outer dim needs to coalesce).
// Accumulation is in the element type: float sums accumulate in float on the device (the
// CPU accumulates them in double), so long float32 sums differ in the last digits. How the
// elements are split and combined depends only on the shape, never on timing, so results
// are bitwise repeatable run to run.
#include <algorithm>
#include <cstdint>
#include <cub/block/block_reduce.cuh>

#include "kernels/common/areas/reduce.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/common/op_lists.hpp"
#include "kernels/common/reduce_bodies.hpp"
#include "kernels/cuda/cuda_backend.cuh"

namespace ember::kernels {
namespace cuda {
namespace {

// Reduced extents at least this long get a whole block per output.
inline constexpr std::int64_t kBlockPerOutputMin = 256;
inline constexpr int kReduceBlock = 256;
// A full reduction gives each block of its first pass at least this many elements per
// thread, and uses at most kMaxPartials blocks.
inline constexpr std::int64_t kElementsPerThread = 8;
inline constexpr std::int64_t kMaxPartials = 1024;

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

// This thread's combination of elements [first, n) of one output's reduced range, stepping by
// `step` (base: the inputs' offsets for that output).
template <typename T, typename Combine, int N, typename Load>
__device__ __forceinline__ T combine_strided(const OffsetCalc<N>& reduced, const std::int64_t* base,
                                             const Load& load, std::int64_t first, std::int64_t n,
                                             std::int64_t step) {
  const Combine combine{};
  T acc = Combine::identity();
  for (std::int64_t j = first; j < n; j += step) {
    std::int64_t r[N];
    offsets_of(reduced, j, r);
    acc = combine(acc, load(base, r));
  }
  return acc;
}

template <typename T, typename Combine, int N, typename Load>
__global__ void reduce_thread_per_output_kernel(ReduceGeometryN<N> geo, T* out, Load load) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       o < geo.n_out; o += step) {
    std::int64_t off[N + 1];
    geo.kept.get(o, off);
    out[off[0]] = combine_strided<T, Combine>(geo.reduced, off + 1, load, 0, geo.n_red, 1);
  }
}

template <typename T, typename Combine, int N, typename Load>
__global__ void __launch_bounds__(kReduceBlock)
    reduce_block_per_output_kernel(ReduceGeometryN<N> geo, T* out, Load load) {
  using BlockReduce = cub::BlockReduce<T, kReduceBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  for (std::int64_t o = blockIdx.x; o < geo.n_out; o += gridDim.x) {
    std::int64_t off[N + 1];
    geo.kept.get(o, off);
    const T acc = combine_strided<T, Combine>(geo.reduced, off + 1, load, threadIdx.x, geo.n_red,
                                              kReduceBlock);
    const T total = BlockReduce(temp).Reduce(acc, Combine{});
    if (threadIdx.x == 0) out[off[0]] = total;
    __syncthreads();  // temp is reused by the next output
  }
}

// First pass of a full reduction: block b combines elements b*blockDim + t, stepping by the
// grid, into partial[b].
template <typename T, typename Combine, int N, typename Load>
__global__ void __launch_bounds__(kReduceBlock)
    reduce_partials_kernel(OffsetCalc<N> reduced, std::int64_t n, T* partial, Load load) {
  using BlockReduce = cub::BlockReduce<T, kReduceBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  const std::int64_t base[N] = {};
  const T acc = combine_strided<T, Combine>(
      reduced, base, load, static_cast<std::int64_t>(blockIdx.x) * kReduceBlock + threadIdx.x, n,
      static_cast<std::int64_t>(gridDim.x) * kReduceBlock);
  const T total = BlockReduce(temp).Reduce(acc, Combine{});
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// One of the three shapes of work (see the top of the file) for N inputs read by `load`.
template <typename T, typename Combine, int N, typename Load>
void run_reduce(DeviceContext& ctx, T* d_out, const ReduceGeometryN<N>& geo, const Load& load) {
  const cudaStream_t stream = ctx.stream();
  if (geo.n_out == 1) {
    const std::int64_t blocks =
        std::clamp<std::int64_t>(geo.n_red / (kReduceBlock * kElementsPerThread), 1, kMaxPartials);
    if (blocks == 1) {
      reduce_partials_kernel<T, Combine, N>
          <<<1, kReduceBlock, 0, stream>>>(geo.reduced, geo.n_red, d_out, load);
      EMBER_CUDA_LAUNCH_CHECK();
      return;
    }
    const DeviceBuffer partials(ctx, static_cast<std::size_t>(blocks) * sizeof(T));
    reduce_partials_kernel<T, Combine, N>
        <<<static_cast<unsigned>(blocks), kReduceBlock, 0, stream>>>(geo.reduced, geo.n_red,
                                                                     partials.as<T>(), load);
    EMBER_CUDA_LAUNCH_CHECK();
    OffsetCalc<1> flat;
    flat.ndim = 1;
    flat.sizes[0] = blocks;
    flat.strides[0][0] = 1;
    reduce_partials_kernel<T, Combine, 1>
        <<<1, kReduceBlock, 0, stream>>>(flat, blocks, d_out, LoadOne<T>{{partials.as<T>()}});
    EMBER_CUDA_LAUNCH_CHECK();
    return;
  }
  if (geo.n_red >= kBlockPerOutputMin) {
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(geo.n_out, kMaxGridBlocks));
    reduce_block_per_output_kernel<T, Combine, N>
        <<<blocks, kReduceBlock, 0, stream>>>(geo, d_out, load);
  } else {
    reduce_thread_per_output_kernel<T, Combine, N>
        <<<grid_for(geo.n_out), kBlockSize, 0, stream>>>(geo, d_out, load);
  }
  EMBER_CUDA_LAUNCH_CHECK();
}

}  // namespace

void launch_reduce(CudaBackend& cuda, ReduceOp op, const TensorArg& out, const TensorArg& in) {
  DeviceContext& ctx = cuda.context();
  // The engine fills the identity itself for an empty input, so in is non-empty here.
  if (out.numel() == 0 || in.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_arith(out.dtype, "reduce", [&]<typename T>() {
    visit_op<T>(ReduceOps{}, static_cast<int>(op), [&]<typename Combine>() {
      run_reduce<T, Combine, 1>(ctx, out.ptr<T>(), reduce_geometry(out, in),
                                LoadOne<T>{{in.ptr<const T>()}});
    });
  });
}

void launch_reduce_product(CudaBackend& cuda, const TensorArg& out, const TensorArg& a,
                           const TensorArg& b) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0 || a.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(out.dtype, "reduce_product", [&]<typename T>() {
    const TensorArg* ins[2] = {&a, &b};
    run_reduce<T, SumReduce<T>, 2>(ctx, out.ptr<T>(), reduce_geometry<2>(out, ins),
                                   LoadProduct<T>{{a.ptr<const T>(), b.ptr<const T>()}});
  });
}

}  // namespace cuda

template class ReduceArea<cuda::CudaBackend>;

}  // namespace ember::kernels
