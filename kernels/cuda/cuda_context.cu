// Per-device CUDA state (stream, memory pool, cuBLAS handle) and the error reporting that
// every CUDA call site goes through.
#include <cstdint>
#include <cstdio>

#include "kernels/cuda/cuda_context.cuh"

namespace ember::kernels::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  // Clears the error where it is not sticky, so one failed call does not poison the next.
  (void)cudaGetLastError();
  throw CudaError(detail::concat("CUDA error ", cudaGetErrorName(err), " (",
                                 cudaGetErrorString(err), ") in ", expr, " (", file, ":", line,
                                 ")"));
}

void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line) {
  throw CudaError(detail::concat("cuBLAS error ", cublasGetStatusName(status), " (",
                                 cublasGetStatusString(status), ") in ", expr, " (", file, ":",
                                 line, ")"));
}

void DeviceContext::init() {
  const DeviceGuard guard(device_);
  cudaMemPool_t pool = nullptr;
  EMBER_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
  // Keep freed memory in the pool for reuse rather than handing it back to the driver at
  // each stream synchronization: a training loop allocates the same sizes every step.
  std::uint64_t threshold = UINT64_MAX;
  EMBER_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  // Non-blocking: Ember's work never serializes with the legacy default stream that other
  // libraries in the process may use.
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  EMBER_CUBLAS_CHECK(cublasCreate(&cublas_));
  EMBER_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
}

void* DeviceContext::allocate(std::size_t nbytes) {
  ensure_init();
  const DeviceGuard guard(device_);
  void* ptr = nullptr;
  // Never a null pointer for a live allocation: the launchers read null as "a scalar".
  EMBER_CUDA_CHECK(cudaMallocAsync(&ptr, std::max<std::size_t>(nbytes, 1), stream_));
  return ptr;
}

void DeviceContext::deallocate(void* ptr) noexcept {
  if (ptr == nullptr) return;
  int previous = -1;
  const bool switch_device = cudaGetDevice(&previous) == cudaSuccess && previous != device_;
  if (switch_device) (void)cudaSetDevice(device_);
  const cudaError_t err = cudaFreeAsync(ptr, stream_);
  if (switch_device) (void)cudaSetDevice(previous);
  // Storage outliving the runtime (a static tensor freed at exit) is not an error.
  if (err != cudaSuccess && err != cudaErrorCudartUnloading) {
    (void)cudaGetLastError();
    std::fprintf(stderr, "ember: cudaFreeAsync failed on cuda:%d: %s\n", device_,
                 cudaGetErrorString(err));
  }
}

DeviceGuard::DeviceGuard(int device) {
  EMBER_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) {
    EMBER_CUDA_CHECK(cudaSetDevice(device));
    switched_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (switched_) (void)cudaSetDevice(previous_);
}

}  // namespace ember::kernels::cuda
