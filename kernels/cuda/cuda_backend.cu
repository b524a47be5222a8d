// The CUDA launcher's registry: one backend per device, the device count. This file sees only
// the declarations of the launcher's areas (each is instantiated in the file that defines its
// functions).
#include <memory>
#include <vector>

#include "kernels/cuda/cuda_backend.cuh"

namespace ember::kernels {

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
