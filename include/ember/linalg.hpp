// Differentiable matrix decompositions and triangular solves over batched (..., n, n)
// matrices: Cholesky factors, triangular solves and the triangle masks they need (cuSOLVER
// and cuBLAS on the GPU, Eigen on the CPU); and the log-space and max-plus matrix products.
#pragma once

#include <cstdint>

#include "ember/tensor.hpp"

namespace ember {

// The lower Cholesky factor L of each symmetric positive definite matrix of a (..., n, n),
// with a = L L^T. Only the lower triangle of a is read. A matrix that is not positive
// definite raises ValueError naming its batch index. The gradient is symmetric (as if a's
// upper triangle mirrored its lower one).
Tensor cholesky(const Tensor& a);

// X solving op(L) X = B for each matrix: op(L) = L, or L^T when `transpose`. L (..., n, n) is
// lower (or upper, when !lower) triangular; only that triangle is read. B is (..., n, k);
// the batch dims of L and B broadcast.
Tensor triangular_solve(const Tensor& b, const Tensor& l, bool lower = true,
                        bool transpose = false);

// The lower (upper) triangle of each matrix of x (..., r, c), zeros elsewhere: entries (i, j)
// with j - i <= diagonal (j - i >= diagonal) are kept.
Tensor tril(const Tensor& x, std::int64_t diagonal = 0);
Tensor triu(const Tensor& x, std::int64_t diagonal = 0);

// The main diagonal of each matrix of x (..., r, c), shaped (..., min(r, c)).
Tensor diagonal(const Tensor& x);

// The n x n identity matrix.
Tensor eye(std::int64_t n, const TensorOptions& opts = {});

// The log-space matrix product: out[..., i, j] = log sum_k exp(a[..., i, k] + b[..., k, j])
// for a (..., m, k) and b (..., k, n), batch dims broadcast; each element's terms are shifted
// by their max, so float32 neither overflows nor underflows, and -inf entries are zeros of the
// product. Differentiable. One kernel (and one for its gradient) on the CPU and the GPU: how
// an enumerated chain's forward algorithm takes a step.
Tensor log_matmul_exp(const Tensor& a, const Tensor& b);
// The max-plus product: out[..., i, j] = max_k (a[..., i, k] + b[..., k, j]) (Viterbi's step).
// Not recorded for gradients.
Tensor max_plus_matmul(const Tensor& a, const Tensor& b);

}  // namespace ember
