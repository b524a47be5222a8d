// The CUDA backend's registry (one backend per device, the device count) and its memory
// operations: allocation from the stream-ordered pool and host transfers.
#include <memory>
#include <vector>

#include "kernels/cuda/cuda_backend.cuh"

namespace ember::kernels {
namespace cuda {

void* CudaBackend::allocate(std::size_t nbytes) { return ctx_.allocate(nbytes); }

void CudaBackend::deallocate(void* ptr) { ctx_.deallocate(ptr); }

void CudaBackend::copy_from_host(void* dst, const void* src, std::size_t nbytes) {
  if (nbytes == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream));
  // The caller may free or reuse src as soon as this returns. From pageable memory the copy
  // already waits for the stream; the sync makes the same true for pinned memory.
  ++t_event_counters.host_syncs;
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudaBackend::copy_to_host(void* dst, const void* src, std::size_t nbytes) {
  if (nbytes == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream));
  ++t_event_counters.host_syncs;
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudaBackend::synchronize() {
  const DeviceGuard guard(ctx_.device());
  ++t_event_counters.host_syncs;
  EMBER_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream()));
}

}  // namespace cuda

int cuda_backend_device_count() {
  // Asked once: without a driver or a GPU cudaGetDeviceCount fails, which means "none".
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

Backend& cuda_backend(int device_index) {
  // Made once and never destroyed: tensors freed during static destruction may still
  // reach their backend.
  static const auto* backends = [] {
    auto* v = new std::vector<std::unique_ptr<cuda::CudaBackend>>();
    for (int d = 0; d < cuda_backend_device_count(); ++d)
      v->push_back(std::make_unique<cuda::CudaBackend>(d));
    return v;
  }();
  EMBER_CHECK_DEVICE(device_index >= 0 && device_index < static_cast<int>(backends->size()),
                     "cuda:", device_index, " requested, but ", backends->size(),
                     " CUDA device(s) are available");
  return *(*backends)[device_index];
}

}  // namespace ember::kernels
