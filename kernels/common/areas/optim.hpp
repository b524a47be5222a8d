// The definitions of OptimArea, which forwards to the launcher's launch_optimizer_step
// (kernels/common/launcher.hpp), included only by the launcher source file that instantiates it.
#pragma once

#include "kernels/common/launcher.hpp"

namespace ember::kernels {

template <typename Impl>
void OptimArea<Impl>::optimizer_step(OptimKind kind, DType dtype,
                                     std::span<const OptimSlot> slots) {
  launch_optimizer_step(static_cast<Impl&>(*this), kind, dtype, slots);
}

template <typename Impl>
bool OptimArea<Impl>::all_finite(std::span<const TensorArg> tensors) {
  return launch_all_finite(static_cast<Impl&>(*this), tensors);
}

}  // namespace ember::kernels
