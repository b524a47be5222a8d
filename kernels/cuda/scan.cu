// Inclusive scans along one dim (cumsum, cumprod, optionally from the end) and the exact
// cumprod gradient, on the device. A scan runs in one of three shapes of work:
//  - a single long line: three passes over fixed tiles (each tile's total; the scan of the
//    totals; each tile scanned from its prefix), so the whole device works on it;
//  - long lines: one block per line, tile by tile, with cub::BlockScan and a running prefix;
//  - short lines: one thread per line (the line body the CPU runs, kernels/common).
// Sums combine in the element type, as on the CPU. Tiles are fixed by the length alone, so
// every shape combines in an order that depends only on the shape: results are bitwise
// repeatable run to run.
#include <algorithm>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "kernels/common/areas/scan.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/common/op_lists.hpp"
#include "kernels/common/reduce_bodies.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels {
namespace cuda {
namespace {

// A single line at least this long is scanned by the whole device.
inline constexpr std::int64_t kDeviceScanMin = 1 << 14;
// Lines at least this long get a block each.
inline constexpr std::int64_t kBlockPerLineMin = 256;
inline constexpr int kScanBlock = 256;
// A tile of the single-line scan: kScanItems consecutive elements per thread.
inline constexpr int kScanItems = 8;
inline constexpr std::int64_t kScanTile = std::int64_t{kScanBlock} * kScanItems;

template <typename T, typename Combine>
__global__ void scan_thread_per_line_kernel(LineGeometry<2> geo, bool reverse, T* out,
                                            const T* in) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t line = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       line < geo.n_lines; line += step) {
    std::int64_t off[2];
    geo.lines.get(line, off);
    scan_line<Combine>(out + off[0], geo.strides[0], in + off[1], geo.strides[1], geo.len, reverse);
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

// One long line in scan order: element j sits at position (reverse ? len - 1 - j : j).
template <typename T>
struct ScanLine {
  T* out;
  const T* in;
  std::int64_t out_stride, in_stride, len;
  bool reverse;
  __device__ std::int64_t position(std::int64_t j) const { return reverse ? len - 1 - j : j; }
};

// This thread's kScanItems elements of tile `tile` (identity past the end).
template <typename T, typename Combine>
__device__ void load_tile_items(const ScanLine<T>& line, std::int64_t tile,
                                T (&items)[kScanItems]) {
  const std::int64_t first = tile * kScanTile + std::int64_t{threadIdx.x} * kScanItems;
#pragma unroll
  for (int i = 0; i < kScanItems; ++i) {
    const std::int64_t j = first + i;
    items[i] = j < line.len ? line.in[line.position(j) * line.in_stride] : Combine::identity();
  }
}

// Pass 1: totals[t] = the combination of tile t.
template <typename T, typename Combine>
__global__ void __launch_bounds__(kScanBlock)
    scan_tile_totals_kernel(ScanLine<T> line, std::int64_t tiles, T* totals) {
  using BlockReduce = cub::BlockReduce<T, kScanBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    T items[kScanItems];
    load_tile_items<T, Combine>(line, tile, items);
    const T total = BlockReduce(temp).Reduce(items, Combine{});
    if (threadIdx.x == 0) totals[tile] = total;
    __syncthreads();
  }
}

// Pass 2 (one block): totals become exclusive prefixes (tile t's: tiles 0..t-1 combined).
template <typename T, typename Combine>
__global__ void __launch_bounds__(kScanBlock)
    scan_tile_prefixes_kernel(T* totals, std::int64_t tiles) {
  using BlockScan = cub::BlockScan<T, kScanBlock>;
  __shared__ typename BlockScan::TempStorage temp;
  RunningPrefix<T, Combine> prefix{Combine::identity()};
  for (std::int64_t start = 0; start < tiles; start += kScanBlock) {
    const std::int64_t t = start + threadIdx.x;
    T v = t < tiles ? totals[t] : Combine::identity();
    BlockScan(temp).ExclusiveScan(v, v, Combine{}, prefix);
    if (t < tiles) totals[t] = v;
    __syncthreads();
  }
}

// Pass 3: each tile scanned and combined with its prefix.
template <typename T, typename Combine>
__global__ void __launch_bounds__(kScanBlock)
    scan_tiles_kernel(ScanLine<T> line, std::int64_t tiles, const T* prefixes) {
  using BlockScan = cub::BlockScan<T, kScanBlock>;
  __shared__ typename BlockScan::TempStorage temp;
  const Combine combine{};
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    T items[kScanItems];
    load_tile_items<T, Combine>(line, tile, items);
    BlockScan(temp).InclusiveScan(items, items, combine);
    const T prefix = prefixes[tile];
    const std::int64_t first = tile * kScanTile + std::int64_t{threadIdx.x} * kScanItems;
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      const std::int64_t j = first + i;
      if (j < line.len) line.out[line.position(j) * line.out_stride] = combine(prefix, items[i]);
    }
    __syncthreads();
  }
}

template <typename T, typename Combine>
void run_long_line_scan(DeviceContext& ctx, const ScanLine<T>& line) {
  const cudaStream_t stream = ctx.stream();
  const std::int64_t tiles = (line.len + kScanTile - 1) / kScanTile;
  const auto grid = static_cast<unsigned>(std::min<std::int64_t>(tiles, kMaxGridBlocks));
  const DeviceBuffer totals(ctx, static_cast<std::size_t>(tiles) * sizeof(T));
  scan_tile_totals_kernel<T, Combine><<<grid, kScanBlock, 0, stream>>>(line, tiles, totals.as<T>());
  EMBER_CUDA_LAUNCH_CHECK();
  scan_tile_prefixes_kernel<T, Combine><<<1, kScanBlock, 0, stream>>>(totals.as<T>(), tiles);
  EMBER_CUDA_LAUNCH_CHECK();
  scan_tiles_kernel<T, Combine><<<grid, kScanBlock, 0, stream>>>(line, tiles, totals.as<T>());
  EMBER_CUDA_LAUNCH_CHECK();
}

template <typename T, typename Combine>
void run_scan(DeviceContext& ctx, const TensorArg& out, const TensorArg& in, int dim,
              bool reverse) {
  const TensorArg* args[2] = {&out, &in};
  const LineGeometry<2> geo = line_geometry(args, dim);
  T* d_out = out.ptr<T>();
  const T* d_in = in.ptr<const T>();
  if (geo.n_lines == 1 && geo.len >= kDeviceScanMin) {
    std::int64_t head[2];
    geo.lines.get(0, head);
    run_long_line_scan<T, Combine>(ctx, ScanLine<T>{d_out + head[0], d_in + head[1], geo.strides[0],
                                                    geo.strides[1], geo.len, reverse});
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

}  // namespace

void launch_categorical_log_prob(CudaBackend& cuda, const TensorArg& out, const TensorArg& table,
                                 const TensorArg& value, bool logits) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(out.dtype, "Categorical.log_prob", [&]<typename T>() {
    dispatch_index_or<T>(value.dtype, "Categorical.log_prob value", [&]<typename V>() {
      const TensorArg* args[3] = {&out, &table, &value};
      const LineGeometry<3> geo = line_geometry(args, out.ndim - 1);
      launch_elementwise(
          ctx.stream(), geo.n_lines, geo.lines,
          CategoricalLogProbLines<T, V>{out.ptr<T>(), table.ptr<const T>(), value.ptr<const V>(),
                                        geo.strides[1], geo.len, logits});
    });
  });
}

void launch_categorical_sample(CudaBackend& cuda, const TensorArg& out, const TensorArg& table,
                               const TensorArg& u, bool logits) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(table.dtype, "Categorical.sample", [&]<typename T>() {
    const TensorArg* args[3] = {&out, &table, &u};
    const LineGeometry<3> geo = line_geometry(args, out.ndim - 1);
    launch_elementwise(
        ctx.stream(), geo.n_lines, geo.lines,
        CategoricalSampleLines<T>{out.ptr<std::int64_t>(), table.ptr<const T>(), u.ptr<const T>(),
                                  geo.strides[1], geo.len, logits});
  });
}

void launch_categorical_log_prob_backward(CudaBackend& cuda, const TensorArg& gtable,
                                          const TensorArg& g, const TensorArg& table,
                                          const TensorArg& value, bool logits) {
  DeviceContext& ctx = cuda.context();
  if (gtable.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(gtable.dtype, "Categorical.log_prob backward", [&]<typename T>() {
    dispatch_index_or<T>(value.dtype, "Categorical.log_prob value", [&]<typename V>() {
      const TensorArg* args[4] = {&gtable, &g, &table, &value};
      const LineGeometry<4> geo = line_geometry(args, gtable.ndim - 1);
      launch_elementwise(
          ctx.stream(), geo.n_lines, geo.lines,
          CategoricalLogProbBackwardLines<T, V>{gtable.ptr<T>(), g.ptr<const T>(),
                                                table.ptr<const T>(), value.ptr<const V>(),
                                                geo.strides[0], geo.strides[2], geo.len, logits});
    });
  });
}

void launch_line_map(CudaBackend& cuda, LineMap op, const TensorArg& out, const TensorArg& in,
                     int dim) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(out.dtype, line_map_name(op), [&]<typename T>() {
    const TensorArg* args[2] = {&in, &out};  // in first: the line's length is in's
    const LineGeometry<2> geo = line_geometry(args, dim);
    // One thread per line, with the line body the CPU runs.
    launch_elementwise(ctx.stream(), geo.n_lines, geo.lines,
                       LineMapLines<T>{op, out.ptr<T>(), in.ptr<const T>(), geo.strides[1],
                                       geo.strides[0], geo.len});
  });
}

void launch_scan(CudaBackend& cuda, ScanOp op, const TensorArg& out, const TensorArg& in, int dim,
                 bool reverse) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_arith(out.dtype, op == ScanOp::Sum ? "cumsum" : "cumprod", [&]<typename T>() {
    visit_op<T>(ScanOps{}, static_cast<int>(op),
                [&]<typename Combine>() { run_scan<T, Combine>(ctx, out, in, dim, reverse); });
  });
}

void launch_line_backward(CudaBackend& cuda, LineGrad op, const TensorArg& gx, const TensorArg& g,
                          const TensorArg& x, int dim) {
  DeviceContext& ctx = cuda.context();
  if (gx.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(gx.dtype, line_grad_name(op), [&]<typename T>() {
    const TensorArg* args[3] = {&gx, &g, &x};
    const LineGeometry<3> geo = line_geometry(args, dim);
    launch_elementwise(
        ctx.stream(), geo.n_lines, geo.lines,
        LineBackwardLines<T>{op, gx.ptr<T>(), g.ptr<const T>(), x.ptr<const T>(), geo.strides[0],
                             geo.strides[1], geo.strides[2], geo.len});
  });
}

}  // namespace cuda

template class ScanArea<cuda::CudaBackend>;

}  // namespace ember::kernels
