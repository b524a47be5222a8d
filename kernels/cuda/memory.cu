// The CUDA launcher's memory: allocation from the device's stream-ordered pool, page-locked
// host blocks, and host transfers (each waits for the stream, so the host buffer is free to
// reuse on return, except the asynchronous upload from page-locked memory).
#include "kernels/common/areas/memory.hpp"
#include "kernels/cuda/cuda_backend.cuh"

namespace ember::kernels {
namespace cuda {

void* memory_allocate(CudaBackend& cuda, std::size_t nbytes) {
  return cuda.context().allocate(nbytes);
}

void memory_deallocate(CudaBackend& cuda, void* ptr, void* stream, bool shared) {
  cuda.context().deallocate(ptr, static_cast<cudaStream_t>(stream), shared);
}

namespace {

// A copy between host and device memory on the stream, waited for: the caller may free or
// reuse the host buffer as soon as this returns (from pageable memory the copy already
// waits for the stream; the sync makes the same true for pinned memory).
void copy_and_wait(DeviceContext& ctx, void* dst, const void* src, std::size_t nbytes,
                   cudaMemcpyKind kind) {
  if (nbytes == 0) return;
  const DeviceGuard guard(ctx.device());
  const cudaStream_t stream = ctx.stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, stream));
  EMBER_CUDA_SYNC(stream);
}

}  // namespace

void memory_copy_from_host(CudaBackend& cuda, void* dst, const void* src, std::size_t nbytes) {
  copy_and_wait(cuda.context(), dst, src, nbytes, cudaMemcpyHostToDevice);
}

void memory_copy_to_host(CudaBackend& cuda, void* dst, const void* src, std::size_t nbytes) {
  copy_and_wait(cuda.context(), dst, src, nbytes, cudaMemcpyDeviceToHost);
}

void* memory_allocate_pinned(CudaBackend& cuda, std::size_t nbytes) {
  return cuda.context().allocate_pinned(nbytes);
}

void memory_deallocate_pinned(CudaBackend& cuda, void* ptr, void* stream, bool shared) {
  cuda.context().deallocate_pinned(ptr, static_cast<cudaStream_t>(stream), shared);
}

void memory_copy_from_host_async(CudaBackend& cuda, void* dst, const void* src,
                                 std::size_t nbytes) {
  if (nbytes == 0) return;
  DeviceContext& ctx = cuda.context();
  const cudaStream_t stream = ctx.stream();
  const DeviceGuard guard(ctx.device());
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream));
}

void memory_synchronize(CudaBackend& cuda) { cuda.context().synchronize(); }

}  // namespace cuda

template class MemoryArea<cuda::CudaBackend>;

}  // namespace ember::kernels
