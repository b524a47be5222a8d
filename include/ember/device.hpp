// Where a tensor lives: the CPU, or one CUDA device. Querying CUDA never fails on a
// machine without a GPU or without the CUDA backend; it reports zero devices.
#pragma once

#include <ostream>
#include <string>

namespace ember {

enum class DeviceType : unsigned char { CPU = 0, CUDA = 1 };

class Device {
 public:
  constexpr Device() = default;
  constexpr Device(DeviceType type, int index) : type_(type), index_(index) {}

  static constexpr Device cpu() { return {DeviceType::CPU, 0}; }
  // Throws DeviceError when the backend was not built or no such device exists.
  static Device cuda(int index = 0);
  // The first CUDA device when there is one, else the CPU.
  static Device best();

  constexpr DeviceType type() const { return type_; }
  constexpr int index() const { return index_; }
  constexpr bool is_cpu() const { return type_ == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type_ == DeviceType::CUDA; }
  std::string str() const;

  friend constexpr bool operator==(Device a, Device b) {
    return a.type_ == b.type_ && a.index_ == b.index_;
  }

 private:
  DeviceType type_ = DeviceType::CPU;
  int index_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }

// True when Ember was compiled with its CUDA backend.
bool cuda_built();
// Number of usable CUDA devices; 0 without a GPU, a driver or the CUDA backend.
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }
// What runs the CPU's matrix products. OpenBLAS picks its kernels for the CPU when the
// process loads it; a release older than the CPU may not know it and fall back to kernels far
// older than the CPU can run (OpenBLAS 0.3.21 runs its SSE3 "Prescott" kernels on Intel's
// 5th-generation Xeons, where a 1000 x 16 matrix-vector product then takes 2 to 4 times as
// long). `advice` then names the OPENBLAS_CORETYPE to set in the process's environment before
// it starts; it is empty when the kernels use the CPU's vector width, and in a build without
// OpenBLAS (Eigen, compiled for the build's instruction set).
struct CpuMatmulInfo {
  // "OpenBLAS 0.3.21 ..." (its build configuration), or "Eigen 3.4.0".
  std::string library;
  // OpenBLAS's kernels for this CPU ("Haswell"), or the SIMD Eigen was compiled for.
  std::string kernels;
  // Empty, or what to set and why.
  std::string advice;
};
CpuMatmulInfo cpu_matmul_info();

// Waits until all of Ember's queued work on the device, on every stream, is done (no-op on
// the CPU).
void synchronize(Device device);

}  // namespace ember
