// What the shared areas use to hand a per-element body to a launcher's loop.
#pragma once

#include <cstdint>

#include "kernels/common/geometry.hpp"
#include "kernels/common/tensor_arg.hpp"

namespace ember::kernels {

// Runs body over args[0]'s sizes with the operands' strides.
template <typename Loop, int N, typename Body>
void run_over(Loop& loop, const TensorArg* const (&args)[N], const Body& body) {
  static_assert(Body::kOperands == N, "a body's operand count and its arguments differ");
  loop.run(args[0]->numel(), make_offset_calc<N>(args), body);
}

// A distribution body's parameters: args[k] (the operands) and body_params[k] (their data) for
// each of the count params.
template <typename T>
void bind_params(int count, const TensorArg* params, const TensorArg** args,
                 const T** body_params) {
  for (int k = 0; k < count; ++k) {
    args[k] = &params[k];
    body_params[k] = params[k].ptr<const T>();
  }
}

}  // namespace ember::kernels
