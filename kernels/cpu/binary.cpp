// Binary arithmetic, comparisons and their gradients on the CPU: the shared area of
// kernels/common/areas/ over the CPU Loop.
#include "kernels/common/areas/binary.hpp"

#include "kernels/cpu/cpu_backend.hpp"

template class ember::kernels::BinaryArea<ember::kernels::cpu::CpuBackend>;
