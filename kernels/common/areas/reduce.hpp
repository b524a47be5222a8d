// The definitions of ReduceArea, which forwards to the launcher's launch_reduce and
// launch_reduce_product (kernels/common/launcher.hpp), included only by the
// launcher source file that instantiates it.
#pragma once

#include "kernels/common/launcher.hpp"

namespace ember::kernels {

template <typename Impl>
void ReduceArea<Impl>::reduce(ReduceOp op, const TensorArg& out, const TensorArg& in) {
  launch_reduce(static_cast<Impl&>(*this), op, out, in);
}

template <typename Impl>
void ReduceArea<Impl>::reduce_product(const TensorArg& out, const TensorArg& a,
                                      const TensorArg& b) {
  launch_reduce_product(static_cast<Impl&>(*this), out, a, b);
}

}  // namespace ember::kernels
