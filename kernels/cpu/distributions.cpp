// Fused log-densities with their partials, Philox samplers and sample gradients on the CPU:
// the shared area of kernels/common/areas/ over the CPU Loop, with the math of
// kernels/math/distributions.
#include "kernels/common/areas/distributions.hpp"

#include "kernels/cpu/cpu_backend.hpp"

template class ember::kernels::DistributionArea<ember::kernels::cpu::CpuBackend>;

// A log-density's value and every parameter may be scalars, each in a slot of the loop.
static_assert(1 + ember::kernels::kMaxDistParams <= ember::kernels::cpu::Loop::kSlots);
