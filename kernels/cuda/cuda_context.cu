// Per-device CUDA state (stream, memory pool, library handles) and the error reporting that
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
  const CublasApi& api = cublas_api();
  throw CudaError(detail::concat("cuBLAS error ", api.status_name(status), " (",
                                 api.status_string(status), ") in ", expr, " (", file, ":", line,
                                 ")"));
}

void throw_cusolver_error(cusolverStatus_t status, const char* expr, const char* file, int line) {
  throw CudaError(detail::concat("cuSOLVER error ", static_cast<int>(status), " in ", expr, " (",
                                 file, ":", line, ")"));
}

void DeviceContext::init() {
  const DeviceGuard guard(device_);
  // A pool of Ember's own: its release threshold and reuse are Ember's business, and the
  // device's default pool, which PyTorch, cuDNN or a service's own code may use and tune,
  // is left alone. Freed memory stays in the pool for reuse rather than going back to the
  // driver at each synchronization: a training loop allocates the same sizes every step.
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device_;
  EMBER_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
  std::uint64_t threshold = UINT64_MAX;
  EMBER_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold));
  // Non-blocking: Ember's work never serializes with the legacy default stream that other
  // libraries in the process may use.
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

void DeviceContext::bind_cublas() {
  const CublasApi& api = cublas_api();
  if (cublas_ == nullptr) EMBER_CUBLAS_CHECK(api.create(&cublas_));
  EMBER_CUBLAS_CHECK(api.set_stream(cublas_, stream()));
}

void DeviceContext::bind_cusolver() {
  const CusolverApi& api = cusolver_api();
  if (cusolver_ == nullptr) EMBER_CUSOLVER_CHECK(api.create(&cusolver_));
  EMBER_CUSOLVER_CHECK(api.set_stream(cusolver_, stream()));
}

void* DeviceContext::allocate(std::size_t nbytes) {
  ensure_init();
  const DeviceGuard guard(device_);
  void* ptr = nullptr;
  // Never a null pointer for a live allocation: the launchers read null as "a scalar".
  EMBER_CUDA_CHECK(cudaMallocFromPoolAsync(&ptr, std::max<std::size_t>(nbytes, 1), pool_, stream_));
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

void DeviceContext::synchronize() {
  const DeviceGuard guard(device_);
  EMBER_CUDA_SYNC(stream());
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
