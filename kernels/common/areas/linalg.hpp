// The definitions of LinalgArea, which forwards to the launcher's launch_matmul,
// launch_cholesky, launch_triangular_solve and launch_log_matmul_exp(_backward)
// (kernels/common/launcher.hpp), included only by the launcher source file that instantiates it.
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

template <typename Impl>
void LinalgArea<Impl>::log_matmul_exp(const TensorArg& out, const TensorArg& a, const TensorArg& b,
                                      bool max_plus) {
  launch_log_matmul_exp(static_cast<Impl&>(*this), out, a, b, max_plus);
}

template <typename Impl>
void LinalgArea<Impl>::log_matmul_exp_backward(const TensorArg& ga, const TensorArg& gb,
                                               const TensorArg& g, const TensorArg& a,
                                               const TensorArg& b, const TensorArg& out) {
  launch_log_matmul_exp_backward(static_cast<Impl&>(*this), ga, gb, g, a, b, out);
}

}  // namespace ember::kernels
