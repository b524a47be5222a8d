// Creation, copies, selection, and unary math with its gradients on the CPU: the shared
// area of kernels/common/areas/ instantiated over the CPU Loop. This
// file is compiled with -ffp-contract=off (CMakeLists.txt), so fill_linear rounds its
// multiply and add separately, as the GPU's does.
#include "kernels/common/areas/elementwise.hpp"

#include "kernels/cpu/cpu_backend.hpp"

template class ember::kernels::ElementwiseArea<ember::kernels::cpu::CpuBackend>;
