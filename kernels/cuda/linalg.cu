// Linear algebra on the device: batched matrix products through cuBLAS
// (gemmStridedBatched), Cholesky factors through cuSOLVER (potrfBatched) and triangular
// solves through cuBLAS (trsmBatched). The libraries are column-major and Ember's matrices
// row-major: a row-major buffer read column-major is the transpose. A product computes
// out^T = b^T a^T, so row-major operands go in untransposed and column-major ones
// transposed; the solve folds the transpose into its side and fill mode, the factorization
// into two small transposing copies. cuBLAS's default math mode is kept, so float32
// products do not use TF32 and match the CPU to float32 rounding.
#include <climits>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/common/areas/linalg.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/math/log_matmul.hpp"

namespace ember::kernels {
namespace cuda {
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

template <typename T>
cublasStatus_t gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                    int m, int n, int k, const T* alpha, const T* a, int lda,
                                    long long sa, const T* b, int ldb, long long sb, const T* beta,
                                    T* c, int ldc, long long sc, int batch) {
  const CublasApi& api = cublas_api();
  if constexpr (std::is_same_v<T, float>) {
    return api.sgemm_strided_batched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                     ldc, sc, batch);
  } else {
    return api.dgemm_strided_batched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                     ldc, sc, batch);
  }
}

template <typename T>
void run_matmul(DeviceContext& ctx, const TensorArg& out, const TensorArg& a, const TensorArg& b,
                bool accumulate) {
  const std::int64_t batch = out.sizes[0], m = out.sizes[1], n = out.sizes[2], k = a.sizes[2];
  EMBER_CHECK(batch <= INT_MAX && m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "matmul: sizes (",
              batch, ", ", m, ", ", n, ", ", k, ") exceed cuBLAS's int range");
  const GemmOperand ga = gemm_operand(a), gb = gemm_operand(b);
  const T alpha = 1, beta = accumulate ? 1 : 0;
  ctx.with_cublas([&](cublasHandle_t handle) {
    // Column-major view: out^T (n x m) = b^T (n x k) * a^T (k x m).
    EMBER_CUBLAS_CHECK(gemm_strided_batched(
        handle, gb.op, ga.op, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha,
        b.ptr<const T>(), gb.ld, gb.batch_stride, a.ptr<const T>(), ga.ld, ga.batch_stride, &beta,
        out.ptr<T>(), static_cast<int>(n), m * n, static_cast<int>(batch)));
  });
}

int as_int(std::int64_t v, const char* op) {
  EMBER_CHECK(v <= INT_MAX, op, ": size ", v, " exceeds the int range of cuSOLVER and cuBLAS");
  return static_cast<int>(v);
}

// ptrs[i] = base + i * stride: the pointer arrays of the batched library calls.
template <typename T>
__global__ void batch_pointers_kernel(T** ptrs, T* base, std::int64_t stride, std::int64_t batch) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < batch;
       i += std::int64_t{blockDim.x} * gridDim.x) {
    ptrs[i] = base + i * stride;
  }
}

// dst (column-major, batch stride n*n) = src (row-major): the same matrices in the other order.
template <typename T>
__global__ void to_column_major_kernel(T* dst, const T* src, std::int64_t src_stride,
                                       std::int64_t n, std::int64_t total) {
  for (std::int64_t e = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; e < total;
       e += std::int64_t{blockDim.x} * gridDim.x) {
    const std::int64_t b = e / (n * n), ij = e % (n * n), i = ij / n, j = ij % n;
    dst[b * n * n + j * n + i] = src[b * src_stride + ij];
  }
}

// out (row-major) = the lower triangle of src (column-major), zeros above the diagonal, where
// potrf leaves its workspace.
template <typename T>
__global__ void lower_to_row_major_kernel(T* out, const T* src, std::int64_t n,
                                          std::int64_t total) {
  for (std::int64_t e = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; e < total;
       e += std::int64_t{blockDim.x} * gridDim.x) {
    const std::int64_t b = e / (n * n), ij = e % (n * n), i = ij / n, j = ij % n;
    out[e] = j <= i ? src[b * n * n + j * n + i] : T(0);
  }
}

template <typename T>
T** batch_pointers(DeviceBuffer& buf, cudaStream_t stream, T* base, std::int64_t stride,
                   std::int64_t batch) {
  T** ptrs = buf.as<T*>();
  batch_pointers_kernel<T><<<grid_for(batch), kBlockSize, 0, stream>>>(ptrs, base, stride, batch);
  EMBER_CUDA_LAUNCH_CHECK();
  return ptrs;
}

template <typename T>
cusolverStatus_t potrf_batched(cusolverDnHandle_t h, int n, T** a, int* info, int batch) {
  const CusolverApi& api = cusolver_api();
  if constexpr (std::is_same_v<T, float>) {
    return api.spotrf_batched(h, CUBLAS_FILL_MODE_LOWER, n, a, n, info, batch);
  } else {
    return api.dpotrf_batched(h, CUBLAS_FILL_MODE_LOWER, n, a, n, info, batch);
  }
}

template <typename T>
cublasStatus_t trsm_batched(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t op, int m,
                            int n, const T* alpha, T** a, int lda, T** b, int ldb, int batch) {
  const CublasApi& api = cublas_api();
  if constexpr (std::is_same_v<T, float>) {
    return api.strsm_batched(h, CUBLAS_SIDE_RIGHT, uplo, op, CUBLAS_DIAG_NON_UNIT, m, n, alpha, a,
                             lda, b, ldb, batch);
  } else {
    return api.dtrsm_batched(h, CUBLAS_SIDE_RIGHT, uplo, op, CUBLAS_DIAG_NON_UNIT, m, n, alpha, a,
                             lda, b, ldb, batch);
  }
}

template <typename T>
void run_cholesky(DeviceContext& ctx, const TensorArg& out, const TensorArg& in,
                  std::int64_t* first_failed) {
  const std::int64_t batch = out.sizes[0], n = out.sizes[1], total = batch * n * n;
  const int nb = as_int(batch, "cholesky"), ni = as_int(n, "cholesky");
  const cudaStream_t stream = ctx.stream();
  DeviceBuffer work(ctx, total * sizeof(T));
  DeviceBuffer ptr_buf(ctx, batch * sizeof(T*));
  DeviceBuffer info(ctx, batch * sizeof(int));
  to_column_major_kernel<T><<<grid_for(total), kBlockSize, 0, stream>>>(
      work.as<T>(), in.ptr<const T>(), in.strides[0], n, total);
  EMBER_CUDA_LAUNCH_CHECK();
  T** ptrs = batch_pointers(ptr_buf, stream, work.as<T>(), n * n, batch);
  ctx.with_cusolver([&](cusolverDnHandle_t handle) {
    EMBER_CUSOLVER_CHECK(potrf_batched(handle, ni, ptrs, info.as<int>(), nb));
  });
  lower_to_row_major_kernel<T>
      <<<grid_for(total), kBlockSize, 0, stream>>>(out.ptr<T>(), work.as<T>(), n, total);
  EMBER_CUDA_LAUNCH_CHECK();
  std::vector<int> host_info(static_cast<std::size_t>(batch));
  EMBER_CUDA_CHECK(cudaMemcpyAsync(host_info.data(), info.get(), batch * sizeof(int),
                                   cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_SYNC(stream);
  *first_failed = -1;
  for (std::int64_t b = 0; b < batch; ++b) {
    if (host_info[b] != 0) {
      *first_failed = b;
      break;
    }
  }
}

template <typename T>
void run_triangular_solve(DeviceContext& ctx, const TensorArg& out, const TensorArg& l,
                          const TensorArg& b, bool lower, bool transpose) {
  const std::int64_t batch = out.sizes[0], n = out.sizes[1], k = out.sizes[2];
  const int nb = as_int(batch, "triangular_solve"), ni = as_int(n, "triangular_solve"),
            ki = as_int(k, "triangular_solve");
  const cudaStream_t stream = ctx.stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(out.ptr<T>(), b.ptr<const T>(), batch * n * k * sizeof(T),
                                   cudaMemcpyDeviceToDevice, stream));
  DeviceBuffer l_ptrs(ctx, batch * sizeof(T*)), x_ptrs(ctx, batch * sizeof(T*));
  T** lp = batch_pointers(l_ptrs, stream, const_cast<T*>(l.ptr<const T>()), l.strides[0], batch);
  T** xp = batch_pointers(x_ptrs, stream, out.ptr<T>(), n * k, batch);
  // Column-major, X^T op(L)^T = B^T with L read as L^T: a right-side solve in which a lower
  // L is an upper matrix and `transpose` is an explicit transpose.
  const cublasFillMode_t uplo = lower ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
  const cublasOperation_t op = transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  const T alpha = 1;
  ctx.with_cublas([&](cublasHandle_t handle) {
    EMBER_CUBLAS_CHECK(trsm_batched(handle, uplo, op, ki, ni, &alpha, lp, ni, xp, ki, nb));
  });
}

// One thread per output element of the log-space product (the body the CPU runs).
template <typename T>
__global__ void log_matmul_exp_kernel(std::int64_t batch, std::int64_t m, std::int64_t n,
                                      std::int64_t k, const T* a, const T* b, T* out,
                                      bool max_plus) {
  const std::int64_t total = batch * m * n;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += step) {
    const std::int64_t row = e / n, j = e % n, i = row / m;
    out[e] = log_matmul_exp_entry(a + row * k, std::int64_t{1}, b + i * k * n + j, n, k, max_plus);
  }
}

// One thread per element (i, r, c) of a gradient: the term x[i, r, c] against a line of y
// and a line of g and out, each line's start set by (r, c) through its strides.
struct GradLines {
  std::int64_t x_batch, x_row;                 // x[i, r, c] = x[i * x_batch + r * x_row + c]
  std::int64_t y_batch, y_r, y_c, y_step;      // the line of y
  std::int64_t go_batch, go_r, go_c, go_step;  // the lines of g and out
};

template <typename T>
__global__ void log_matmul_exp_grad_kernel(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                                           std::int64_t len, GradLines l, const T* x, const T* y,
                                           const T* g, const T* out, T* grad) {
  const std::int64_t total = batch * rows * cols;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += step) {
    const std::int64_t i = e / (rows * cols), r = (e / cols) % rows, c = e % cols;
    const std::int64_t go = i * l.go_batch + r * l.go_r + c * l.go_c;
    grad[e] = log_matmul_exp_grad_a(x[i * l.x_batch + r * l.x_row + c],
                                    y + i * l.y_batch + r * l.y_r + c * l.y_c, l.y_step, g + go,
                                    l.go_step, out + go, l.go_step, len);
  }
}

}  // namespace

void launch_log_matmul_exp(CudaBackend& cuda, const TensorArg& out, const TensorArg& a,
                           const TensorArg& b, bool max_plus) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(out.dtype, "log_matmul_exp", [&]<typename T>() {
    log_matmul_exp_kernel<T><<<grid_for(out.numel()), kBlockSize, 0, ctx.stream()>>>(
        out.sizes[0], out.sizes[1], out.sizes[2], a.sizes[2], a.ptr<const T>(), b.ptr<const T>(),
        out.ptr<T>(), max_plus);
    EMBER_CUDA_LAUNCH_CHECK();
  });
}

void launch_log_matmul_exp_backward(CudaBackend& cuda, const TensorArg& ga, const TensorArg& gb,
                                    const TensorArg& g, const TensorArg& a, const TensorArg& b,
                                    const TensorArg& out) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  const std::int64_t batch = out.sizes[0], m = out.sizes[1], n = out.sizes[2], k = a.sizes[2];
  dispatch_floating(out.dtype, "log_matmul_exp backward", [&]<typename T>() {
    // ga[i, r, c] (r < m, c < k) runs over b's row c and g's (out's) row r.
    const GradLines lines_a{m * k, k, k * n, 0, n, 1, m * n, n, 0, 1};
    log_matmul_exp_grad_kernel<T><<<grid_for(ga.numel()), kBlockSize, 0, ctx.stream()>>>(
        batch, m, k, n, lines_a, a.ptr<const T>(), b.ptr<const T>(), g.ptr<const T>(),
        out.ptr<const T>(), ga.ptr<T>());
    EMBER_CUDA_LAUNCH_CHECK();
    // gb[i, r, c] (r < k, c < n) runs over a's column r and g's (out's) column c.
    const GradLines lines_b{k * n, n, m * k, 1, 0, k, m * n, 0, 1, n};
    log_matmul_exp_grad_kernel<T><<<grid_for(gb.numel()), kBlockSize, 0, ctx.stream()>>>(
        batch, k, n, m, lines_b, b.ptr<const T>(), a.ptr<const T>(), g.ptr<const T>(),
        out.ptr<const T>(), gb.ptr<T>());
    EMBER_CUDA_LAUNCH_CHECK();
  });
}

void launch_matmul(CudaBackend& cuda, const TensorArg& out, const TensorArg& a, const TensorArg& b,
                   bool accumulate) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(out.dtype, "matmul",
                    [&]<typename T>() { run_matmul<T>(ctx, out, a, b, accumulate); });
}

void launch_cholesky(CudaBackend& cuda, const TensorArg& out, const TensorArg& in,
                     std::int64_t* first_failed) {
  DeviceContext& ctx = cuda.context();
  *first_failed = -1;
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(out.dtype, "cholesky",
                    [&]<typename T>() { run_cholesky<T>(ctx, out, in, first_failed); });
}

void launch_triangular_solve(CudaBackend& cuda, const TensorArg& out, const TensorArg& l,
                             const TensorArg& b, bool lower, bool transpose) {
  DeviceContext& ctx = cuda.context();
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx.device());
  dispatch_floating(out.dtype, "triangular_solve", [&]<typename T>() {
    run_triangular_solve<T>(ctx, out, l, b, lower, transpose);
  });
}

}  // namespace cuda

template class LinalgArea<cuda::CudaBackend>;

}  // namespace ember::kernels
