// Device selection and queries; a machine without a GPU or driver just reports none.
#include "ember/device.hpp"

#include "ember/error.hpp"
#include "kernels/backend.hpp"

namespace ember {

Device Device::cuda(int index) {
  EMBER_CHECK_DEVICE(cuda_built(), "Device::cuda(", index,
                     "): Ember was built without its CUDA backend (EMBER_CUDA=OFF)");
  const int n = cuda_device_count();
  EMBER_CHECK_DEVICE(index >= 0 && index < n, "Device::cuda(", index, "): ", n,
                     " CUDA device(s) available");
  return {DeviceType::CUDA, index};
}

Device Device::best() { return cuda_device_count() > 0 ? Device{DeviceType::CUDA, 0} : cpu(); }

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index_);
}

bool cuda_built() { return EMBER_WITH_CUDA != 0; }

int cuda_device_count() { return kernels::cuda_backend_device_count(); }

void synchronize(Device device) {
  kernels::Backend& backend = kernels::backend_for(device);
  if (kernels::StreamControl* streams = backend.streams()) {
    streams->synchronize_all();
  } else {
    backend.synchronize();
  }
}

}  // namespace ember
