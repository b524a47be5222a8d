// The CPU launcher's one instance. This file sees only the declarations of the launcher's
// areas (each is instantiated in the file that defines its functions).
#include "kernels/cpu/cpu_backend.hpp"

namespace ember::kernels {

Backend& cpu_backend() {
  // Never destroyed: tensors held in static objects may free memory after main returns.
  static cpu::CpuBackend* backend = new cpu::CpuBackend();
  return *backend;
}

}  // namespace ember::kernels
