// Batched matrix products through cuBLAS. cuBLAS is column-major and Ember's out is
// row-major, so we compute out^T = b^T a^T: a row-major buffer read column-major is the
// transpose, so row-major operands go in untransposed and column-major ones transposed.
// cuBLAS's default math mode is kept, so float32 products do not use TF32 and match the
// CPU to float32 rounding.
#include <climits>
#include <cstdint>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"

namespace ember::kernels::cuda {
namespace {

// How cuBLAS reads one (batch, rows, cols) operand as the transpose of the matrix we mean.
struct GemmOperand {
  cublasOperation_t op;
  int ld;
  long long batch_stride;
};

GemmOperand gemm_operand(const TensorArg& x) {
  const bool row_major = x.strides[2] == 1;
  const std::int64_t ld = row_major ? x.strides[1] : x.strides[2];
  EMBER_CHECK(ld <= INT_MAX, "matmul: leading dimension ", ld, " exceeds cuBLAS's int range");
  return {row_major ? CUBLAS_OP_N : CUBLAS_OP_T, static_cast<int>(std::max<std::int64_t>(ld, 1)),
          static_cast<long long>(x.strides[0])};
}

cublasStatus_t gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                    int m, int n, int k, const float* alpha, const float* a,
                                    int lda, long long sa, const float* b, int ldb, long long sb,
                                    const float* beta, float* c, int ldc, long long sc, int batch) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc,
                                   sc, batch);
}

cublasStatus_t gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                    int m, int n, int k, const double* alpha, const double* a,
                                    int lda, long long sa, const double* b, int ldb, long long sb,
                                    const double* beta, double* c, int ldc, long long sc,
                                    int batch) {
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc,
                                   sc, batch);
}

template <typename T>
void launch_matmul(DeviceContext& ctx, const TensorArg& out, const TensorArg& a,
                   const TensorArg& b) {
  const std::int64_t batch = out.sizes[0], m = out.sizes[1], n = out.sizes[2], k = a.sizes[2];
  EMBER_CHECK(batch <= INT_MAX && m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "matmul: sizes (",
              batch, ", ", m, ", ", n, ", ", k, ") exceed cuBLAS's int range");
  const GemmOperand ga = gemm_operand(a), gb = gemm_operand(b);
  const T alpha = 1, beta = 0;
  ctx.with_cublas([&](cublasHandle_t handle) {
    // Column-major view: out^T (n x m) = b^T (n x k) * a^T (k x m).
    EMBER_CUBLAS_CHECK(gemm_strided_batched(
        handle, gb.op, ga.op, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha,
        b.ptr<const T>(), gb.ld, gb.batch_stride, a.ptr<const T>(), ga.ld, ga.batch_stride, &beta,
        out.ptr<T>(), static_cast<int>(n), m * n, static_cast<int>(batch)));
  });
}

}  // namespace

void CudaBackend::matmul(const TensorArg& out, const TensorArg& a, const TensorArg& b) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_floating(out.dtype, "matmul", [&]<typename T>() { launch_matmul<T>(ctx_, out, a, b); });
}

}  // namespace ember::kernels::cuda
