// Inclusive scans along one dim (cumsum, cumprod, optionally from the end) and the exact
// cumprod gradient, on the device. A scan runs in one of three shapes of work:
//  - a single long line: cub::DeviceScan over the whole line;
//  - long lines: one block per line, tile by tile, with cub::BlockScan and a running prefix;
//  - short lines: one thread per line.
// Float sums accumulate in the element type, as on the CPU.
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/reverse_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <cstdint>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_scan.cuh>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {
namespace {

// A single line at least this long is scanned by the whole device.
inline constexpr std::int64_t kDeviceScanMin = 1 << 14;
// Lines at least this long get a block each.
inline constexpr std::int64_t kBlockPerLineMin = 256;
inline constexpr int kScanBlock = 256;

// The lines along `dim` of N operands: `lines` gives the first element of each line, the
// strides step along it.
template <int N>
struct LineGeometry {
  OffsetCalc<N> lines;
  std::int64_t n_lines = 0;
  std::int64_t len = 0;
  std::int64_t strides[N] = {};
};

template <int N>
LineGeometry<N> line_geometry(const TensorArg* const (&args)[N], int dim) {
  TensorArg heads[N];
  const TensorArg* head_args[N];
  LineGeometry<N> geo;
  for (int k = 0; k < N; ++k) {
    heads[k] = *args[k];
    heads[k].sizes[dim] = 1;
    head_args[k] = &heads[k];
    geo.strides[k] = args[k]->strides[dim];
  }
  geo.lines = make_offset_calc<N>(head_args);
  geo.n_lines = heads[0].numel();
  geo.len = args[0]->sizes[dim];
  return geo;
}

template <typename T, typename Combine>
__global__ void scan_thread_per_line_kernel(LineGeometry<2> geo, bool reverse, T* out,
                                            const T* in) {
  const Combine combine{};
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t line = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       line < geo.n_lines; line += step) {
    std::int64_t off[2];
    geo.lines.get(line, off);
    T acc = Combine::identity();
    for (std::int64_t j = 0; j < geo.len; ++j) {
      const std::int64_t p = reverse ? geo.len - 1 - j : j;
      acc = combine(acc, in[off[1] + p * geo.strides[1]]);
      out[off[0] + p * geo.strides[0]] = acc;
    }
  }
}

// Hands each tile the combination of all tiles before it (called by the block's first warp).
template <typename T, typename Combine>
struct RunningPrefix {
  T running;
  __device__ T operator()(T tile_total) {
    const T before = running;
    running = Combine{}(running, tile_total);
    return before;
  }
};

template <typename T, typename Combine>
__global__ void __launch_bounds__(kScanBlock)
    scan_block_per_line_kernel(LineGeometry<2> geo, bool reverse, T* out, const T* in) {
  using BlockScan = cub::BlockScan<T, kScanBlock>;
  __shared__ typename BlockScan::TempStorage temp;
  for (std::int64_t line = blockIdx.x; line < geo.n_lines; line += gridDim.x) {
    std::int64_t off[2];
    geo.lines.get(line, off);
    RunningPrefix<T, Combine> prefix{Combine::identity()};
    for (std::int64_t start = 0; start < geo.len; start += kScanBlock) {
      const std::int64_t j = start + threadIdx.x;
      const std::int64_t p = reverse ? geo.len - 1 - j : j;
      T v = j < geo.len ? in[off[1] + p * geo.strides[1]] : Combine::identity();
      BlockScan(temp).InclusiveScan(v, v, Combine{}, prefix);
      if (j < geo.len) out[off[0] + p * geo.strides[0]] = v;
      __syncthreads();  // temp is reused by the next tile
    }
  }
}

// Element j of a line in scan order.
template <typename T>
struct LineLoad {
  const T* in;
  std::int64_t stride, len;
  bool reverse;
  __device__ T operator()(std::int64_t j) const { return in[(reverse ? len - 1 - j : j) * stride]; }
};

template <typename T, typename Combine, typename OutputIt>
void launch_device_scan(DeviceContext& ctx, const LineLoad<T>& load, OutputIt d_out) {
  const cudaStream_t stream = ctx.stream();
  const auto d_in =
      thrust::make_transform_iterator(thrust::counting_iterator<std::int64_t>(0), load);
  std::size_t temp_bytes = 0;
  EMBER_CUDA_CHECK(cub::DeviceScan::InclusiveScan(nullptr, temp_bytes, d_in, d_out, Combine{},
                                                  load.len, stream));
  const DeviceBuffer temp(ctx, temp_bytes);
  EMBER_CUDA_CHECK(cub::DeviceScan::InclusiveScan(temp.get(), temp_bytes, d_in, d_out, Combine{},
                                                  load.len, stream));
}

template <typename T, typename Combine>
void launch_scan(DeviceContext& ctx, const TensorArg& out, const TensorArg& in, int dim,
                 bool reverse) {
  const TensorArg* args[2] = {&out, &in};
  const LineGeometry<2> geo = line_geometry(args, dim);
  T* d_out = out.ptr<T>();
  const T* d_in = in.ptr<const T>();
  if (geo.n_lines == 1 && geo.len >= kDeviceScanMin) {
    // out is contiguous, so its only line has stride 1; a reverse scan writes backwards.
    std::int64_t head[2];
    geo.lines.get(0, head);
    const LineLoad<T> load{d_in + head[1], geo.strides[1], geo.len, reverse};
    T* line_out = d_out + head[0];
    if (reverse) {
      launch_device_scan<T, Combine>(ctx, load, thrust::make_reverse_iterator(line_out + geo.len));
    } else {
      launch_device_scan<T, Combine>(ctx, load, line_out);
    }
    return;
  }
  if (geo.len >= kBlockPerLineMin) {
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(geo.n_lines, kMaxGridBlocks));
    scan_block_per_line_kernel<T, Combine>
        <<<blocks, kScanBlock, 0, ctx.stream()>>>(geo, reverse, d_out, d_in);
  } else {
    scan_thread_per_line_kernel<T, Combine>
        <<<grid_for(geo.n_lines), kBlockSize, 0, ctx.stream()>>>(geo, reverse, d_out, d_in);
  }
  EMBER_CUDA_LAUNCH_CHECK();
}

// gx_k = (prod_{i<k} x_i) * S_k with S_k = g_k + x_{k+1} S_{k+1}: the exact gradient of
// cumprod, with no division (so zeros in x are fine). One thread per line.
template <typename T>
__global__ void cumprod_backward_kernel(LineGeometry<3> geo, T* gx, const T* g, const T* x) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t so = geo.strides[0], sg = geo.strides[1], sx = geo.strides[2];
  for (std::int64_t line = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       line < geo.n_lines; line += step) {
    std::int64_t off[3];
    geo.lines.get(line, off);
    T s = T(0);
    for (std::int64_t k = geo.len - 1; k >= 0; --k) {
      const T next_x = k + 1 < geo.len ? x[off[2] + (k + 1) * sx] : T(0);
      s = g[off[1] + k * sg] + next_x * s;
      gx[off[0] + k * so] = s;
    }
    T prefix = T(1);
    for (std::int64_t k = 0; k < geo.len; ++k) {
      gx[off[0] + k * so] *= prefix;
      prefix *= x[off[2] + k * sx];
    }
  }
}

}  // namespace

void CudaBackend::scan(ScanOp op, const TensorArg& out, const TensorArg& in, int dim,
                       bool reverse) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_arith(out.dtype, op == ScanOp::Sum ? "cumsum" : "cumprod", [&]<typename T>() {
    if (op == ScanOp::Sum) {
      launch_scan<T, SumReduce<T>>(ctx_, out, in, dim, reverse);
    } else {
      launch_scan<T, ProdReduce<T>>(ctx_, out, in, dim, reverse);
    }
  });
}

void CudaBackend::cumprod_backward(const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                                   int dim) {
  if (gx.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_floating(gx.dtype, "cumprod backward", [&]<typename T>() {
    const TensorArg* args[3] = {&gx, &g, &x};
    const LineGeometry<3> geo = line_geometry(args, dim);
    cumprod_backward_kernel<T><<<grid_for(geo.n_lines), kBlockSize, 0, ctx_.stream()>>>(
        geo, gx.ptr<T>(), g.ptr<const T>(), x.ptr<const T>());
    EMBER_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ember::kernels::cuda
