// Batched Cholesky factors through cuSOLVER (potrfBatched) and triangular solves through
// cuBLAS (trsmBatched). Both libraries are column-major and Ember's matrices row-major: a
// row-major buffer read column-major is the transpose, which the solve folds into its side
// and fill mode, and the factorization into two small transposing copies.
#include <cusolverDn.h>

#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"

#define EMBER_CUSOLVER_CHECK(expr)                                                             \
  do {                                                                                         \
    const cusolverStatus_t ember_cusolver_status_ = (expr);                                    \
    if (ember_cusolver_status_ != CUSOLVER_STATUS_SUCCESS) [[unlikely]] {                      \
      throw ::ember::CudaError(                                                                \
          ::ember::detail::concat("cuSOLVER error ", static_cast<int>(ember_cusolver_status_), \
                                  " in ", #expr, " (", __FILE__, ":", __LINE__, ")"));         \
    }                                                                                          \
  } while (0)

namespace ember::kernels::cuda {
namespace {

// Calls f(handle) with the device's cuSOLVER handle, bound to its stream. Handles are made
// on first use and, like the device contexts, never destroyed; the lock serializes their use
// (cuSOLVER handles are not thread-safe).
template <typename F>
void with_cusolver(DeviceContext& ctx, F&& f) {
  static std::mutex mutex;
  static std::map<int, cusolverDnHandle_t> handles;
  const std::lock_guard<std::mutex> lock(mutex);
  cusolverDnHandle_t& handle = handles[ctx.device()];
  if (handle == nullptr) {
    EMBER_CUSOLVER_CHECK(cusolverDnCreate(&handle));
    EMBER_CUSOLVER_CHECK(cusolverDnSetStream(handle, ctx.stream()));
  }
  f(handle);
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

cusolverStatus_t potrf_batched(cusolverDnHandle_t h, int n, float** a, int* info, int batch) {
  return cusolverDnSpotrfBatched(h, CUBLAS_FILL_MODE_LOWER, n, a, n, info, batch);
}
cusolverStatus_t potrf_batched(cusolverDnHandle_t h, int n, double** a, int* info, int batch) {
  return cusolverDnDpotrfBatched(h, CUBLAS_FILL_MODE_LOWER, n, a, n, info, batch);
}

cublasStatus_t trsm_batched(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t op, int m,
                            int n, const float* alpha, float** a, int lda, float** b, int ldb,
                            int batch) {
  return cublasStrsmBatched(h, CUBLAS_SIDE_RIGHT, uplo, op, CUBLAS_DIAG_NON_UNIT, m, n, alpha, a,
                            lda, b, ldb, batch);
}
cublasStatus_t trsm_batched(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t op, int m,
                            int n, const double* alpha, double** a, int lda, double** b, int ldb,
                            int batch) {
  return cublasDtrsmBatched(h, CUBLAS_SIDE_RIGHT, uplo, op, CUBLAS_DIAG_NON_UNIT, m, n, alpha, a,
                            lda, b, ldb, batch);
}

template <typename T>
void launch_cholesky(DeviceContext& ctx, const TensorArg& out, const TensorArg& in,
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
  with_cusolver(ctx, [&](cusolverDnHandle_t handle) {
    EMBER_CUSOLVER_CHECK(potrf_batched(handle, ni, ptrs, info.as<int>(), nb));
  });
  lower_to_row_major_kernel<T>
      <<<grid_for(total), kBlockSize, 0, stream>>>(out.ptr<T>(), work.as<T>(), n, total);
  EMBER_CUDA_LAUNCH_CHECK();
  std::vector<int> host_info(static_cast<std::size_t>(batch));
  EMBER_CUDA_CHECK(cudaMemcpyAsync(host_info.data(), info.get(), batch * sizeof(int),
                                   cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  *first_failed = -1;
  for (std::int64_t b = 0; b < batch; ++b) {
    if (host_info[b] != 0) {
      *first_failed = b;
      break;
    }
  }
}

template <typename T>
void launch_triangular_solve(DeviceContext& ctx, const TensorArg& out, const TensorArg& l,
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

}  // namespace

void CudaBackend::cholesky(const TensorArg& out, const TensorArg& in, std::int64_t* first_failed) {
  *first_failed = -1;
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_floating(out.dtype, "cholesky",
                    [&]<typename T>() { launch_cholesky<T>(ctx_, out, in, first_failed); });
}

void CudaBackend::triangular_solve(const TensorArg& out, const TensorArg& l, const TensorArg& b,
                                   bool lower, bool transpose) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_floating(out.dtype, "triangular_solve", [&]<typename T>() {
    launch_triangular_solve<T>(ctx_, out, l, b, lower, transpose);
  });
}

}  // namespace ember::kernels::cuda
