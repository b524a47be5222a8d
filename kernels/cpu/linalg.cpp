// Linear algebra on the CPU: batched matrix products in bands of rows across the pool, each
// band through OpenBLAS (its kernels picked at run time for the CPU) or, in a build without
// it, Eigen; Cholesky factors (Eigen's LLT) and triangular solves (triangularView), one
// matrix per task across cores.
#include "kernels/common/areas/linalg.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <climits>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kernels/math/log_matmul.hpp"
#if EMBER_WITH_BLAS
#include <cblas.h>
#endif

#include "ember/device.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/narrow_gemv.hpp"

namespace ember::kernels {
namespace cpu {
namespace {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Matrices per thread so that each thread gets about kParallelGrain flops.
std::int64_t grain_for(std::int64_t flops_per_matrix) {
  return std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(1, flops_per_matrix));
}

// One operand of a product as stored: row-major (strides[2] == 1) or column-major
// (strides[1] == 1), with its leading dimension.
template <typename T>
struct GemmOperand {
  const T* data;
  bool row_major;
  std::int64_t ld;
  std::int64_t batch_stride;
  explicit GemmOperand(const TensorArg& x)
      : data(x.ptr<const T>()),
        row_major(x.strides[2] == 1),
        ld(std::max<std::int64_t>(row_major ? x.strides[1] : x.strides[2], 1)),
        batch_stride(x.strides[0]) {}
  // Row r of matrix bi.
  const T* row(std::int64_t bi, std::int64_t r) const {
    return data + bi * batch_stride + (row_major ? r * ld : r);
  }
};

#if EMBER_WITH_BLAS
// Whether two products may run at once. Debian's threaded OpenBLAS (pthreads) guards its
// buffer pool with a lock, so products on several threads are safe; it is kept to one
// thread a call (a process-wide setting, made once) so that a product's bands run on
// Ember's own pool, as every other op does, instead of a second pool of spinning threads.
// The serial build has no such lock (built without USE_LOCKING): concurrent products were
// seen to return wrong values now and then (a few in a thousand for a 64 x 400 x 784
// product on two threads), so with it products run one at a time, on one core each, under
// blas_mutex.
bool blas_reentrant() {
  static const bool reentrant = [] {
    if (openblas_get_parallel() == 0) return false;
    openblas_set_num_threads(1);
    return true;
  }();
  return reentrant;
}
std::mutex& blas_mutex() {
  static std::mutex m;
  return m;
}
// OpenBLAS's entry points for one precision.
struct Sblas {
  static constexpr auto gemm = cblas_sgemm;
  static constexpr auto gemv = cblas_sgemv;
};
struct Dblas {
  static constexpr auto gemm = cblas_dgemm;
  static constexpr auto gemv = cblas_dgemv;
};
template <typename T>
using Blas = std::conditional_t<std::is_same_v<T, float>, Sblas, Dblas>;

blasint blas_int(std::int64_t v) { return static_cast<blasint>(v); }

// c (rows x n, row-major, contiguous) = a_rows (rows x k) @ b (k x n), or c += that product
// with beta = 1, through OpenBLAS. A matrix-vector product (n or rows is 1) goes to gemv,
// which streams the matrix once where gemm would first copy it into packed panels (a
// regression's X @ w and X^T @ r).
template <typename T>
void gemm(const T* a, bool a_row_major, std::int64_t lda, const T* b, bool b_row_major,
          std::int64_t ldb, T* c, std::int64_t rows, std::int64_t n, std::int64_t k, T beta) {
  if (n == 1) {
    // c = A b; a column-major A is the row-major (k x rows) A^T, transposed.
    Blas<T>::gemv(CblasRowMajor, a_row_major ? CblasNoTrans : CblasTrans,
                  blas_int(a_row_major ? rows : k), blas_int(a_row_major ? k : rows), T(1), a,
                  blas_int(lda), b, blas_int(b_row_major ? ldb : 1), beta, c, 1);
  } else if (rows == 1) {
    // c^T = B^T a^T.
    Blas<T>::gemv(CblasRowMajor, b_row_major ? CblasTrans : CblasNoTrans,
                  blas_int(b_row_major ? k : n), blas_int(b_row_major ? n : k), T(1), b,
                  blas_int(ldb), a, blas_int(a_row_major ? 1 : lda), beta, c, 1);
  } else {
    Blas<T>::gemm(CblasRowMajor, a_row_major ? CblasNoTrans : CblasTrans,
                  b_row_major ? CblasNoTrans : CblasTrans, blas_int(rows), blas_int(n), blas_int(k),
                  T(1), a, blas_int(lda), b, blas_int(ldb), beta, c, blas_int(n));
  }
}
#else
// The same through Eigen's product (its kernels are compiled for the build's -march); beta is
// 0 or 1.
template <typename T>
void gemm(const T* a, bool a_row_major, std::int64_t lda, const T* b, bool b_row_major,
          std::int64_t ldb, T* c, std::int64_t rows, std::int64_t n, std::int64_t k, T beta) {
  using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using OuterStride = Eigen::OuterStride<Eigen::Dynamic>;
  Eigen::Map<RowMat<T>> cm(c, rows, n);
  auto into_c = [&](const auto& product) {
    if (beta == T(0)) {
      cm.noalias() = product;
    } else {
      cm.noalias() += product;
    }
  };
  auto with_b = [&](const auto& am) {
    if (b_row_major) {
      into_c(am * Eigen::Map<const RowMat<T>, 0, OuterStride>(b, k, n, OuterStride(ldb)));
    } else {
      into_c(am * Eigen::Map<const ColMat, 0, OuterStride>(b, k, n, OuterStride(ldb)));
    }
  };
  if (a_row_major) {
    with_b(Eigen::Map<const RowMat<T>, 0, OuterStride>(a, rows, k, OuterStride(lda)));
  } else {
    with_b(Eigen::Map<const ColMat, 0, OuterStride>(a, rows, k, OuterStride(lda)));
  }
}
#endif

// A matrix-vector product y = M v whose summed side (row dots: M row-major, element (i, j) at
// mat[i * ld + j], len <= L) or kept side (column sums: M column-major, at mat[i + j * ld],
// m <= L) fits one vector of narrow_gemv.hpp; M is m x len.
template <typename T>
struct NarrowMatVec {
  const T* mat;
  bool row_dots;
  std::int64_t ld, m, len;
  const T* v;
  std::int64_t inc;

  // Rows [begin, end) of a row-dots product into y_begin[0, end - begin) (beta 0 or 1); a
  // row's sum is the same wherever the row is.
  void dot_rows(T* y_begin, T beta, std::int64_t begin, std::int64_t end) const {
    cpu::row_dots(mat + begin * ld, ld, v, inc, y_begin, end - begin, static_cast<int>(len), beta);
  }
};

// c = a_rows @ b as gemm() takes it, as such a product where it is one.
template <typename T>
std::optional<NarrowMatVec<T>> narrow_matvec(const T* a, bool a_row_major, std::int64_t lda,
                                             const T* b, bool b_row_major, std::int64_t ldb,
                                             std::int64_t rows, std::int64_t n, std::int64_t k) {
  constexpr std::int64_t L = Lanes<T>::kCount;
  auto matvec = [&](const T* mat, bool row_major, std::int64_t ld, std::int64_t m, std::int64_t len,
                    const T* v, std::int64_t inc) -> std::optional<NarrowMatVec<T>> {
    if ((row_major && len <= L) || (!row_major && m <= L))
      return NarrowMatVec<T>{mat, row_major, ld, m, len, v, inc};
    return std::nullopt;
  };
  if (rows == 0 || n == 0 || k == 0) return std::nullopt;
  if (n == 1) return matvec(a, a_row_major, lda, rows, k, b, b_row_major ? ldb : 1);
  // c^T = B^T a^T: B^T's element (i, j) is B's (j, i).
  if (rows == 1) return matvec(b, !b_row_major, ldb, n, k, a, a_row_major ? 1 : lda);
  return std::nullopt;
}

// c = a_rows @ b through narrow_gemv.hpp's kernels where it is a narrow matrix-vector
// product; false otherwise.
template <typename T>
bool narrow_gemv(const T* a, bool a_row_major, std::int64_t lda, const T* b, bool b_row_major,
                 std::int64_t ldb, T* c, std::int64_t rows, std::int64_t n, std::int64_t k,
                 T beta) {
  const auto p = narrow_matvec(a, a_row_major, lda, b, b_row_major, ldb, rows, n, k);
  if (!p) return false;
  if (p->row_dots) {
    // Long products split across threads.
    parallel_for(
        p->m, std::max<std::int64_t>(1, kParallelGrain / p->len),
        [&](std::int64_t begin, std::int64_t end) { p->dot_rows(c + begin, beta, begin, end); });
  } else {
    column_sums(p->mat, p->ld, p->v, p->inc, c, static_cast<int>(p->m), p->len, beta);
  }
  return true;
}

template <typename T>
void product(const T* a, bool a_row_major, std::int64_t lda, const T* b, bool b_row_major,
             std::int64_t ldb, T* c, std::int64_t rows, std::int64_t n, std::int64_t k, T beta) {
  if (!narrow_gemv(a, a_row_major, lda, b, b_row_major, ldb, c, rows, n, k, beta))
    gemm(a, a_row_major, lda, b, b_row_major, ldb, c, rows, n, k, beta);
}

// out[b] = a[b] @ b[b] (+= with accumulate). Work items are (matrix, band of rows): a batch of
// small matrices spreads over the pool's threads by matrix, one large product by bands of its
// output's rows, each band one single-threaded product (Eigen's, or a reentrant OpenBLAS's; a
// serial OpenBLAS takes the products one at a time, see blas_reentrant).
template <typename T>
void matmul_impl(const TensorArg& out, const TensorArg& a_arg, const TensorArg& b_arg,
                 bool accumulate) {
  const T beta = accumulate ? T(1) : T(0);
  const std::int64_t batch = out.sizes[0], m = out.sizes[1], n = out.sizes[2], k = a_arg.sizes[2];
  const GemmOperand<T> a(a_arg), b(b_arg);
  EMBER_CHECK(std::max({m, n, k, a.ld, b.ld}) <= INT_MAX, "matmul: sizes (", m, ", ", n, ", ", k,
              ") exceed the int range of the CPU's matrix product");
#if EMBER_WITH_BLAS
  if (!blas_reentrant()) {
    const std::lock_guard<std::mutex> lock(blas_mutex());
    for (std::int64_t bi = 0; bi < batch; ++bi)
      product(a.row(bi, 0), a.row_major, a.ld, b.row(bi, 0), b.row_major, b.ld,
              out.ptr<T>() + bi * m * n, m, n, k, beta);
    return;
  }
#endif
  const std::int64_t flops = std::max<std::int64_t>(1, m * n * k);
  // Bands per matrix: enough to give every thread work, none thinner than 16 rows or
  // lighter than the parallel grain.
  const std::int64_t bands =
      batch >= max_threads()
          ? 1
          : std::clamp<std::int64_t>(std::min(flops / kParallelGrain, m / 16), 1, max_threads());
  // The split is fixed by the thread count, so a product's bits are the same run after run at
  // one thread count (as a reduction's are); another count may change the last bits.
  const std::int64_t band_rows = (m + bands - 1) / bands;
  // Many tiny matrices (a batched 2x2 factor times a vector) run faster on one core: the
  // grain keeps a fork/join from costing more than the work.
  const std::int64_t item_flops = std::max<std::int64_t>(1, flops / bands);
  parallel_for(batch * bands, std::max<std::int64_t>(1, kParallelGrain / item_flops),
               [&](std::int64_t begin, std::int64_t end) {
                 for (std::int64_t item = begin; item < end; ++item) {
                   const std::int64_t bi = item / bands;
                   const std::int64_t r0 = (item % bands) * band_rows;
                   const std::int64_t rows = std::min(band_rows, m - r0);
                   if (rows <= 0) continue;
                   product(a.row(bi, r0), a.row_major, a.ld, b.row(bi, 0), b.row_major, b.ld,
                           out.ptr<T>() + bi * m * n + r0 * n, rows, n, k, beta);
                 }
               });
}

template <typename T>
void cholesky_impl(const TensorArg& out, const TensorArg& in, std::int64_t* first_failed) {
  const std::int64_t batch = out.sizes[0], n = out.sizes[1];
  std::atomic<std::int64_t> failed{batch};
  parallel_for(batch, grain_for(n * n * n), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t b = begin; b < end; ++b) {
      const Eigen::Map<const RowMat<T>> a(in.ptr<const T>() + b * in.strides[0], n, n);
      Eigen::Map<RowMat<T>> l(out.ptr<T>() + b * out.strides[0], n, n);
      const Eigen::LLT<RowMat<T>, Eigen::Lower> llt(a);
      if (llt.info() != Eigen::Success) {
        // Keep the smallest failing index whichever thread finds it first.
        std::int64_t seen = failed.load();
        while (b < seen && !failed.compare_exchange_weak(seen, b)) {
        }
        l.setZero();
        continue;
      }
      l = llt.matrixL();
    }
  });
  *first_failed = failed.load() == batch ? -1 : failed.load();
}

// x = op(l)^-1 x for a triangular l (op: l or l^T).
template <typename L, typename X>
void solve_in_place(const L& lm, X& x, bool lower, bool transpose) {
  // The transpose of a lower factor is upper triangular, and vice versa.
  if (lower && !transpose) lm.template triangularView<Eigen::Lower>().solveInPlace(x);
  if (lower && transpose) lm.transpose().template triangularView<Eigen::Upper>().solveInPlace(x);
  if (!lower && !transpose) lm.template triangularView<Eigen::Upper>().solveInPlace(x);
  if (!lower && transpose) lm.transpose().template triangularView<Eigen::Lower>().solveInPlace(x);
}

// Factors up to this size are solved by plain substitution, a row of every right-hand side at
// a time: Eigen's blocked solver packs its operands first, which costs more than the
// arithmetic of a small factor (a MultivariateNormal over a few dims). For one factor against
// 2^16 vectors (tensor_ops_bench BM_TriangularSolve/cpu/<n>) substitution takes 0.07, 0.25 and
// 1.0 ms at n = 2, 4, 8 against Eigen's 0.47, 0.63 and 1.3; at n = 16 they are even.
inline constexpr std::int64_t kSubstitutionMaxSize = 8;

// x_i = op(l)^-1 x_i for `count` n x k row-major blocks x_i laid one after another and one
// row-major n x n factor l, in place: the blocks are swept a row at a time, so a factor shared
// by a batch of vectors is read once per row. Each element sees the same operations in the
// same order whatever count is.
template <typename T>
void substitute(const T* l, std::int64_t n, T* x, std::int64_t count, std::int64_t k, bool lower,
                bool transpose) {
  // op(l) is lower triangular (solved from its first row) when exactly one of lower and
  // transpose holds; upper triangular (from its last row) otherwise.
  const bool forward = lower != transpose;
  auto op = [&](std::int64_t r, std::int64_t c) { return transpose ? l[c * n + r] : l[r * n + c]; };
  const std::int64_t block = n * k;
  // f(offset) for the offset of every element of row `r` of every block (vectors, k = 1, in
  // one strided loop).
  auto each_of_row = [&](std::int64_t r, auto&& f) {
    if (k == 1) {
      for (std::int64_t i = 0; i < count; ++i) f(i * block + r);
      return;
    }
    for (std::int64_t i = 0; i < count; ++i)
      for (std::int64_t col = 0; col < k; ++col) f(i * block + r * k + col);
  };
  for (std::int64_t s = 0; s < n; ++s) {
    const std::int64_t r = forward ? s : n - 1 - s;
    // Row r of every block: minus each solved row's term in turn, then over the diagonal.
    for (std::int64_t t = 0; t < s; ++t) {
      const std::int64_t j = forward ? t : n - 1 - t;  // a row solved already
      const T c = op(r, j);
      const std::int64_t shift = (j - r) * k;  // from row r's element to row j's
      each_of_row(r, [&](std::int64_t e) { x[e] -= c * x[e + shift]; });
    }
    const T diagonal = op(r, r);
    each_of_row(r, [&](std::int64_t e) { x[e] /= diagonal; });
  }
}

template <typename T>
void triangular_solve_impl(const TensorArg& out, const TensorArg& l, const TensorArg& b, bool lower,
                           bool transpose) {
  const std::int64_t batch = out.sizes[0], n = out.sizes[1], k = out.sizes[2];
  if (n <= kSubstitutionMaxSize) {
    // out and b are contiguous batches of n x k blocks.
    parallel_for(batch, grain_for(n * n * k), [&](std::int64_t begin, std::int64_t end) {
      T* x = out.ptr<T>() + begin * n * k;
      std::memmove(x, b.ptr<const T>() + begin * n * k,
                   static_cast<std::size_t>((end - begin) * n * k) * sizeof(T));
      if (l.strides[0] == 0) {
        // Swept in slices that stay in the L1 cache.
        const std::int64_t slice = std::max<std::int64_t>(1, 2048 / (n * k));
        for (std::int64_t i = begin; i < end; i += slice)
          substitute(l.ptr<const T>(), n, x + (i - begin) * n * k, std::min(slice, end - i), k,
                     lower, transpose);
        return;
      }
      for (std::int64_t i = begin; i < end; ++i)
        substitute(l.ptr<const T>() + i * l.strides[0], n, x + (i - begin) * n * k, 1, k, lower,
                   transpose);
    });
    return;
  }
  if (l.strides[0] == 0 && k == 1 && batch > 1) {
    // One factor for a batch of vectors (a MultivariateNormal's scale_tril against a batch of
    // values): one solve whose right-hand sides are the batch, the (batch, n) vectors seen as
    // the columns of an n x batch matrix (Eigen's blocked kernel: a column's result may differ
    // in the last bit from solving it alone).
    using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
    using Stride = Eigen::OuterStride<Eigen::Dynamic>;
    const Eigen::Map<const RowMat<T>> lm(l.ptr<const T>(), n, n);
    Eigen::Map<ColMat, 0, Stride> x(out.ptr<T>(), n, batch, Stride(out.strides[0]));
    x = Eigen::Map<const ColMat, 0, Stride>(b.ptr<const T>(), n, batch, Stride(b.strides[0]));
    solve_in_place(lm, x, lower, transpose);
    return;
  }
  parallel_for(batch, grain_for(n * n * k), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      const Eigen::Map<const RowMat<T>> lm(l.ptr<const T>() + i * l.strides[0], n, n);
      Eigen::Map<RowMat<T>> x(out.ptr<T>() + i * out.strides[0], n, k);
      x = Eigen::Map<const RowMat<T>>(b.ptr<const T>() + i * b.strides[0], n, k);
      solve_in_place(lm, x, lower, transpose);
    }
  });
}

// While a compiled step binds a product (Backend::run_bound), one narrow matrix-vector product
// offers itself in parts too (RangedLoop), so that a fused run reads its matrix tile by tile
// with the calls beside it (a regression's X w, its log-density and X^T r read X once): row
// dots over parts of the rows, each row's sum the same wherever the row is; column sums as a
// reduction over parts of the columns, in the slices column_sums adds them in.
template <typename T>
void offer_matvec_parts(const TensorArg& out, const TensorArg& a_arg, const TensorArg& b_arg,
                        bool accumulate) {
  BindSink* const sink = parts_sink();
  if (sink == nullptr || out.sizes[0] != 1) return;
  const GemmOperand<T> a(a_arg), b(b_arg);
  const auto p = narrow_matvec(a.row(0, 0), a.row_major, a.ld, b.row(0, 0), b.row_major, b.ld,
                               out.sizes[1], out.sizes[2], a_arg.sizes[2]);
  if (!p) return;
  const T beta = accumulate ? T(1) : T(0);
  T* const c = out.ptr<T>();
  const NarrowMatVec<T> m = *p;
  if (m.row_dots) {
    // The product's rows are its elements; the result may be local to a fused run (its rows
    // written, not added to: beta 0), the matrix never is.
    sink->ranged.n = m.m;
    sink->ranged.run = [m, c, beta](std::int64_t begin, std::int64_t end, void*, std::int64_t shift,
                                    unsigned local) {
      m.dot_rows(c + ((local & 1u) != 0 ? begin - shift : begin), beta, begin, end);
    };
    if (!accumulate) sink->ranged.add_operand(c, sizeof(T));
    return;
  }
  using Carry = ColumnSumsCarry<T>;
  static_assert(sizeof(Carry) <= kFuseCarryBytes && alignof(Carry) <= 64);
  static_assert(kFuseAlign % kColumnAccumulators == 0);
  sink->ranged.n = m.len;
  sink->ranged.reduces = true;
  sink->ranged.start = [](void* carry) { *static_cast<Carry*>(carry) = Carry{}; };
  // The vector's elements (rows of the matrix) may be local to a fused run where they are
  // dense.
  sink->ranged.run = [m](std::int64_t begin, std::int64_t end, void* carry, std::int64_t shift,
                         unsigned local) {
    column_sums_part(m.mat, m.ld, m.v + ((local & 1u) != 0 ? begin - shift : begin) * m.inc, m.inc,
                     static_cast<int>(m.m), begin, end, (m.len - 1) * m.ld + m.m,
                     static_cast<Carry*>(carry));
  };
  if (m.inc == 1) sink->ranged.add_operand(m.v, sizeof(T));
  sink->ranged.finish = [m, c, beta](const unsigned char* carries, std::size_t stride, int slices) {
    column_sums_finish<T>(
        [&](int s, typename Lanes<T>::V& v) {
          column_sums_fold(*reinterpret_cast<const Carry*>(carries + s * stride), v);
        },
        slices, c, static_cast<int>(m.m), beta);
  };
}

}  // namespace

void launch_matmul(CpuBackend&, const TensorArg& out, const TensorArg& a, const TensorArg& b,
                   bool accumulate) {
  dispatch_floating(out.dtype, "matmul", [&]<typename T>() {
    // Bound into a compiled step: later replays skip the dispatch.
    offer_binding([out, a, b, accumulate] { matmul_impl<T>(out, a, b, accumulate); });
    offer_matvec_parts<T>(out, a, b, accumulate);
    if (capturing()) return;
    matmul_impl<T>(out, a, b, accumulate);
  });
}

void launch_cholesky(CpuBackend&, const TensorArg& out, const TensorArg& in,
                     std::int64_t* first_failed) {
  dispatch_floating(out.dtype, "cholesky",
                    [&]<typename T>() { cholesky_impl<T>(out, in, first_failed); });
}

void launch_triangular_solve(CpuBackend&, const TensorArg& out, const TensorArg& l,
                             const TensorArg& b, bool lower, bool transpose) {
  dispatch_floating(out.dtype, "triangular_solve",
                    [&]<typename T>() { triangular_solve_impl<T>(out, l, b, lower, transpose); });
}

// One batch's rows of log_matmul_exp (a: m x k, b: k x n, out: m x n, all contiguous), kCols
// outputs of a row side by side: b's rows are contiguous across them, so the terms' max, their
// exps and the sums run in vector lanes, one output per lane, where one output at a time is a
// chain of dependent steps with a scalar exp in each. Every output takes
// log_matmul_exp_entry's steps in its order (its terms k = 0, 1, ...; the first NaN term as
// the result): the same bits as the GPU's one output per thread.
template <typename T>
EMBER_CPU_CLONES [[gnu::flatten]] void log_matmul_exp_rows(T* out, const T* a, const T* b,
                                                           std::int64_t m, std::int64_t n,
                                                           std::int64_t k, bool max_plus) {
  constexpr std::int64_t kCols = 64;
  T mx[kCols], sum[kCols], bad[kCols];
  for (std::int64_t row = 0; row < m; ++row) {
    const T* a_row = a + row * k;
    for (std::int64_t j0 = 0; j0 < n; j0 += kCols) {
      const std::int64_t w = std::min(kCols, n - j0);
      for (std::int64_t j = 0; j < w; ++j) {
        mx[j] = T(-INFINITY);
        sum[j] = T(0);
        bad[j] = T(0);
      }
      for (std::int64_t i = 0; i < k; ++i) {
        const T av = a_row[i];
        const T* b_row = b + i * n + j0;
        for (std::int64_t j = 0; j < w; ++j) {
          const T v = av + b_row[j];
          bad[j] = v != v && bad[j] == bad[j] ? v : bad[j];
          mx[j] = log_matmul_exp_max_step(mx[j], v);
        }
      }
      if (!max_plus) {
        for (std::int64_t i = 0; i < k; ++i) {
          const T av = a_row[i];
          const T* b_row = b + i * n + j0;
          for (std::int64_t j = 0; j < w; ++j)
            sum[j] += log_matmul_exp_shifted(av + b_row[j], mx[j]);
        }
      }
      T* o_row = out + row * n + j0;
      for (std::int64_t j = 0; j < w; ++j) {
        o_row[j] = bad[j] != bad[j]                         ? bad[j]
                   : log_matmul_exp_is_max(mx[j], max_plus) ? mx[j]
                                                            : log_matmul_exp_result(mx[j], sum[j]);
      }
    }
  }
}

// The product's batches split across the pool. Bound for a compiled step's replays (a
// replayed HMM step makes this call once per time step): the dispatch and setup done once.
void launch_log_matmul_exp(CpuBackend&, const TensorArg& out, const TensorArg& a,
                           const TensorArg& b, bool max_plus) {
  dispatch_floating(out.dtype, "log_matmul_exp", [&]<typename T>() {
    const std::int64_t batch = out.sizes[0], m = out.sizes[1], n = out.sizes[2], k = a.sizes[2];
    const T* ap = a.ptr<const T>();
    const T* bp = b.ptr<const T>();
    T* op = out.ptr<T>();
    auto run = [=] {
      parallel_for(batch, grain_for(m * n * k), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i)
          log_matmul_exp_rows(op + i * m * n, ap + i * m * k, bp + i * k * n, m, n, k, max_plus);
      });
    };
    offer_binding(run);
    if (capturing()) return;
    run();
  });
}

// One batch's gradients. Each term's weight g[r, j] exp(a[r, c] + b[c, j] - out[r, j]) is
// taken once and added to both gradients: to gb[c, j] over the rows in order, and to ga[r, c]
// over j = 0, 1, ... (log_matmul_exp_grad_a's order). A row's weights are taken along b's
// contiguous rows in vector lanes into w (k rows of n), then ga's k sums run side by side, each
// in its order: k independent chains, where one sum after another waits on each add.
template <typename T>
EMBER_CPU_CLONES [[gnu::flatten]] void log_matmul_exp_backward_rows(T* ga, T* gb, const T* g,
                                                                    const T* a, const T* b,
                                                                    const T* out, std::int64_t m,
                                                                    std::int64_t n, std::int64_t k,
                                                                    T* __restrict w) {
  std::fill(gb, gb + k * n, T(0));
  for (std::int64_t r = 0; r < m; ++r) {
    const T* g_row = g + r * n;
    const T* o_row = out + r * n;
    for (std::int64_t c = 0; c < k; ++c) {
      const T a_rc = a[r * k + c];
      const T* b_row = b + c * n;
      T* __restrict gb_row = gb + c * n;
      T* __restrict w_row = w + c * n;
      EMBER_IVDEP
      for (std::int64_t j = 0; j < n; ++j) {
        const T x = g_row[j] * log_matmul_exp_weight(a_rc + b_row[j], o_row[j]);
        w_row[j] = x;
        gb_row[j] += x;
      }
    }
    T* __restrict ga_row = ga + r * k;
    std::fill(ga_row, ga_row + k, T(0));
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t c = 0; c < k; ++c) ga_row[c] += w[c * n + j];
  }
}

// The batches split across the pool; each thread's scratch (k n) kept for its next call: a
// replayed HMM step makes this call once per time step, bound as the forward is.
void launch_log_matmul_exp_backward(CpuBackend&, const TensorArg& ga, const TensorArg& gb,
                                    const TensorArg& g, const TensorArg& a, const TensorArg& b,
                                    const TensorArg& out) {
  dispatch_floating(out.dtype, "log_matmul_exp backward", [&]<typename T>() {
    const std::int64_t batch = out.sizes[0], m = out.sizes[1], n = out.sizes[2], k = a.sizes[2];
    const T* ap = a.ptr<const T>();
    const T* bp = b.ptr<const T>();
    const T* gp = g.ptr<const T>();
    const T* op = out.ptr<const T>();
    T* gap = ga.ptr<T>();
    T* gbp = gb.ptr<T>();
    auto run = [=] {
      parallel_for(batch, grain_for(m * n * k), [&](std::int64_t begin, std::int64_t end) {
        thread_local std::vector<T> scratch;
        if (scratch.size() < static_cast<std::size_t>(n * k))
          scratch.resize(static_cast<std::size_t>(n * k));
        for (std::int64_t i = begin; i < end; ++i) {
          log_matmul_exp_backward_rows(gap + i * m * k, gbp + i * k * n, gp + i * m * n,
                                       ap + i * m * k, bp + i * k * n, op + i * m * n, m, n, k,
                                       scratch.data());
        }
      });
    };
    offer_binding(run);
    if (capturing()) return;
    run();
  });
}

}  // namespace cpu

template class LinalgArea<cpu::CpuBackend>;

}  // namespace ember::kernels

namespace ember {
namespace {

#if EMBER_WITH_BLAS && defined(__x86_64__)
// The widest of OpenBLAS's x86 kernel sets that this CPU can run, named as OPENBLAS_CORETYPE
// names them, or "" for a CPU without AVX2 (where every choice OpenBLAS makes fits).
std::string_view widest_coretype() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bf16")) return "Cooperlake";
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

// Whether OpenBLAS's kernels `core` use AVX2 or wider (Zen's are Haswell's).
bool wide_coretype(std::string_view core) {
  static constexpr std::string_view kWide[] = {"haswell", "zen", "skylakex", "cooperlake",
                                               "sapphirerapids"};
  std::string lower(core);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(std::begin(kWide), std::end(kWide), lower) != std::end(kWide);
}
#endif

}  // namespace

CpuMatmulInfo cpu_matmul_info() {
  CpuMatmulInfo info;
#if EMBER_WITH_BLAS
  info.library = openblas_get_config();
  info.kernels = openblas_get_corename();
#if defined(__x86_64__)
  const std::string_view widest = widest_coretype();
  if (!widest.empty() && !wide_coretype(info.kernels)) {
    info.advice = detail::concat(
        "OpenBLAS runs its ", info.kernels,
        " kernels, older than this CPU can run: set OPENBLAS_CORETYPE=", widest,
        " in the environment before the process starts for kernels of the CPU's vector width");
  }
#endif
#else
  info.library = detail::concat("Eigen ", EIGEN_WORLD_VERSION, ".", EIGEN_MAJOR_VERSION, ".",
                                EIGEN_MINOR_VERSION);
  info.kernels = Eigen::SimdInstructionSetsInUse();
#endif
  return info;
}

}  // namespace ember
