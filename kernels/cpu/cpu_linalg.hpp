// The CPU backend's factorizations and triangular solves (Eigen), kept out of
// cpu_backend.cpp so that the elementwise launchers and the linear algebra compile apart.
#pragma once

#include <cstdint>

#include "kernels/common/tensor_arg.hpp"

namespace ember::kernels::cpu {

// As Backend::cholesky: out (batch, n, n) contiguous gets the lower factors of in's
// contiguous matrices (only their lower triangles are read); *first_failed is the first
// batch index that is not positive definite, or -1.
void cholesky(const TensorArg& out, const TensorArg& in, std::int64_t* first_failed);

// As Backend::triangular_solve: out[i] = op(l[i])^-1 b[i] over contiguous 3-d arguments; l's
// batch stride may be 0.
void triangular_solve(const TensorArg& out, const TensorArg& l, const TensorArg& b, bool lower,
                      bool transpose);

}  // namespace ember::kernels::cpu
