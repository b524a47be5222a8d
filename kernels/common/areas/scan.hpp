// The definitions of ScanArea, which forwards to the launcher's launch_scan and
// launch_cumprod_backward (kernels/common/launcher.hpp), included only by the
// launcher source file that instantiates it.
#pragma once

#include "kernels/common/launcher.hpp"

namespace ember::kernels {

template <typename Impl>
void ScanArea<Impl>::scan(ScanOp op, const TensorArg& out, const TensorArg& in, int dim,
                          bool reverse) {
  launch_scan(static_cast<Impl&>(*this), op, out, in, dim, reverse);
}

template <typename Impl>
void ScanArea<Impl>::cumprod_backward(const TensorArg& gx, const TensorArg& g, const TensorArg& x,
                                      int dim) {
  launch_cumprod_backward(static_cast<Impl&>(*this), gx, g, x, dim);
}

}  // namespace ember::kernels
