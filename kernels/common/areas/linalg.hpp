// The definitions of LinalgArea, which forwards to the launcher's launch_matmul,
// launch_cholesky and launch_triangular_solve (kernels/common/launcher.hpp), included only by the
// launcher source file that instantiates it.
#pragma once

#include "kernels/common/launcher.hpp"

namespace ember::kernels {

template <typename Impl>
void LinalgArea<Impl>::matmul(const TensorArg& out, const TensorArg& a, const TensorArg& b,
                              bool accumulate) {
  launch_matmul(static_cast<Impl&>(*this), out, a, b, accumulate);
}

template <typename Impl>
void LinalgArea<Impl>::cholesky(const TensorArg& out, const TensorArg& in,
                                std::int64_t* first_failed) {
  launch_cholesky(static_cast<Impl&>(*this), out, in, first_failed);
}

template <typename Impl>
void LinalgArea<Impl>::triangular_solve(const TensorArg& out, const TensorArg& l,
                                        const TensorArg& b, bool lower, bool transpose) {
  launch_triangular_solve(static_cast<Impl&>(*this), out, l, b, lower, transpose);
}

}  // namespace ember::kernels
