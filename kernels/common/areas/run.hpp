// What the shared areas use to hand a per-element body to a launcher's loop.
#pragma once

#include <cstdint>

#include "ember/error.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/common/tensor_arg.hpp"

namespace ember::kernels {

// Runs body over args[0]'s sizes with the operands' strides.
template <typename Loop, int N, typename Body>
void run_over(Loop& loop, const TensorArg* const (&args)[N], const Body& body) {
  static_assert(Body::kOperands == N, "a body's operand count and its arguments differ");
  loop.run(args[0]->numel(), make_offset_calc<N>(args), body, args);
}

// Where a body that reads an operand through a plain pointer finds it: the tensor's memory,
// or for a scalar argument the loop's slot. Only the CPU loop has slots; the engine passes
// scalars for such operands (distribution values and parameters) on the CPU alone.
template <typename T, typename Loop>
const T* operand_ptr(const TensorArg& a, Loop& loop) {
  if (!a.is_scalar()) return a.ptr<const T>();
  const T* slot = loop.template scalar_slot<T>(a);
  EMBER_CHECK(slot != nullptr, "a scalar operand reached a launcher that reads it from memory");
  return slot;
}

// A distribution body's parameters: args[k] (the operands) and body_params[k] (their data) for
// each of the count params.
template <typename T, typename Loop>
void bind_params(int count, const TensorArg* params, Loop& loop, const TensorArg** args,
                 const T** body_params) {
  for (int k = 0; k < count; ++k) {
    args[k] = &params[k];
    body_params[k] = operand_ptr<T>(params[k], loop);
  }
}

}  // namespace ember::kernels
