// Indexing on the device: index_select, gather, index_add, scatter_add, im2col and col2im are
// the shared area of kernels/common/launcher.hpp (the accumulating ones, index_add,
// scatter_add and col2im, add with atomicAdd: repeated indices add up, in no fixed order, so
// their float results are not bitwise repeatable), and the bounds check that reports the
// first offending index to the host.
#include <cstdint>

#include "kernels/common/areas/index.hpp"
#include "kernels/cuda/cuda_backend.cuh"

namespace ember::kernels {
namespace cuda {
namespace {

// Records the smallest linear position whose index is out of [0, bound).
struct FindOutOfRangeBody {
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

bool launch_find_index_out_of_range(CudaBackend& cuda, const TensorArg& index, std::int64_t bound,
                                    std::int64_t* bad) {
  if (index.numel() == 0) return false;
  DeviceContext& ctx = cuda.context();
  const DeviceGuard guard(ctx.device());
  const cudaStream_t stream = ctx.stream();
  const DeviceBuffer result(ctx, 2 * sizeof(unsigned long long));
  auto* d_result = result.as<unsigned long long>();
  EMBER_CUDA_CHECK(cudaMemsetAsync(d_result, 0xff, 2 * sizeof(unsigned long long), stream));
  const TensorArg* args[1] = {&index};
  const OffsetCalc<1> calc = make_offset_calc<1>(args);
  const auto* d_index = index.ptr<const std::int64_t>();
  launch_elementwise(stream, index.numel(), calc, FindOutOfRangeBody{d_index, bound, d_result});
  read_first_out_of_range_kernel<<<1, 1, 0, stream>>>(d_index, calc, d_result);
  EMBER_CUDA_LAUNCH_CHECK();
  unsigned long long host[2] = {};
  EMBER_CUDA_CHECK(cudaMemcpyAsync(host, d_result, sizeof(host), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_SYNC(stream);
  if (host[0] == ~0ULL) return false;
  *bad = static_cast<std::int64_t>(host[1]);
  return true;
}

}  // namespace cuda

template class IndexArea<cuda::CudaBackend>;

}  // namespace ember::kernels
