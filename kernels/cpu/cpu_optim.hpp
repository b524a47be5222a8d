// The CPU backend's fused optimizer step, kept out of cpu_backend.cpp so that the update
// functors compile apart from the elementwise launchers.
#pragma once

#include <span>

#include "ember/dtype.hpp"
#include "kernels/math/optim.hpp"

namespace ember::kernels::cpu {

// As Backend::optimizer_step: every element of every slot, split across cores as one range.
void optimizer_step(OptimKind kind, DType dtype, std::span<const OptimSlot> slots);

}  // namespace ember::kernels::cpu
