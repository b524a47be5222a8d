// Cholesky factors and triangular solves over the launchers' batched cuSOLVER / cuBLAS /
// Eigen routines, with their backward formulas written in the same ops:
//   cholesky:          gA = L^-T Phi(L^T gL) L^-1, Phi = lower triangle with the diagonal and
//                      the mirrored off-diagonal halved (Murray 2016; PyTorch's formula)
//   triangular_solve:  gB = op(L)^-T g,  g op(L) = -gB X^T, kept on L's triangle
#include <sstream>
#include <vector>

#include "ember/linalg.hpp"
#include "engine/internal.hpp"

namespace ember {
namespace {

using detail::arg;

// A contiguous tensor seen as (batch, rows, cols); batch stride 0 when `shared`.
kernels::TensorArg as_batched(const Tensor& t, std::int64_t batch, std::int64_t rows,
                              std::int64_t cols, bool shared = false) {
  kernels::TensorArg a = arg(t);
  a.ndim = 3;
  a.sizes[0] = batch;
  a.sizes[1] = rows;
  a.sizes[2] = cols;
  a.strides[0] = shared ? 0 : rows * cols;
  a.strides[1] = cols;
  a.strides[2] = 1;
  return a;
}

// All but the last two dims.
Shape batch_dims(const Tensor& t) {
  Shape s = t.shape();
  s.resize(t.dim() - 2);
  return s;
}

Shape with_matrix(Shape s, std::int64_t rows, std::int64_t cols) {
  s.push_back(rows);
  s.push_back(cols);
  return s;
}

std::string multi_index(const Shape& shape, std::int64_t flat) {
  std::vector<std::int64_t> idx(shape.size());
  for (int d = shape.size() - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < idx.size(); ++i) os << (i ? ", " : "") << idx[i];
  os << ']';
  return os.str();
}

// (r, c) bool mask of entries with j - i <= diagonal (lower) or >= diagonal (upper).
Tensor triangle_mask(std::int64_t r, std::int64_t c, std::int64_t diagonal, bool lower,
                     Device device) {
  std::vector<std::uint8_t> m(static_cast<std::size_t>(r * c));
  for (std::int64_t i = 0; i < r; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      m[i * c + j] = lower ? (j - i <= diagonal) : (j - i >= diagonal);
  return from_vector(m, {r, c}, TensorOptions{}.with_dtype(kBool)).to(device);
}

Tensor triangle(const Tensor& x, std::int64_t diagonal, bool lower, const char* op) {
  EMBER_CHECK_SHAPE(x.dim() >= 2, op, ": expected matrices (..., r, c), got shape ", x.shape());
  return where(triangle_mask(x.size(-2), x.size(-1), diagonal, lower, x.device()), x, 0.0);
}

}  // namespace

Tensor tril(const Tensor& x, std::int64_t diagonal) { return triangle(x, diagonal, true, "tril"); }
Tensor triu(const Tensor& x, std::int64_t diagonal) { return triangle(x, diagonal, false, "triu"); }

Tensor diagonal(const Tensor& x) {
  EMBER_CHECK_SHAPE(x.dim() >= 2, "diagonal: expected matrices (..., r, c), got shape ", x.shape());
  const std::int64_t r = x.size(-2), c = x.size(-1);
  const Tensor on_diagonal = logical_and(triangle_mask(r, c, 0, true, x.device()),
                                         triangle_mask(r, c, 0, false, x.device()));
  // Summing the masked rows keeps the gradient a plain masked copy of the incoming one.
  const Tensor rows = sum(where(on_diagonal, x, 0.0), {-1});
  return r <= c ? rows : rows.narrow(rows.dim() - 1, 0, c);
}

Tensor eye(std::int64_t n, const TensorOptions& opts) {
  EMBER_CHECK(n >= 0, "eye: negative size ", n);
  std::vector<double> v(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  return from_vector(v, {n, n}, opts);
}

Tensor cholesky(const Tensor& a) {
  EMBER_CHECK_SHAPE(a.dim() >= 2 && a.size(-1) == a.size(-2),
                    "cholesky: expected square matrices (..., n, n), got shape ", a.shape());
  EMBER_CHECK_DTYPE(is_floating(a.dtype()), "cholesky: expected a floating dtype, got ", a.dtype());
  const std::int64_t n = a.size(-1);
  const Shape batch = batch_dims(a);
  const Tensor in = a.detach().contiguous();
  Tensor out = detail::make_tensor(a.shape(), a.dtype(), a.device());
  if (out.numel() > 0) {
    std::int64_t failed = -1;
    detail::backend(out).cholesky(as_batched(out, batch.numel(), n, n),
                                  as_batched(in, batch.numel(), n, n), &failed);
    EMBER_CHECK(failed < 0, "cholesky: the matrix",
                batch.size() ? " at batch index " + multi_index(batch, failed) : std::string(),
                " of shape ", a.shape(), " is not positive definite");
  }
  if (detail::needs_grad({&a})) {
    detail::record("cholesky", {a}, out, [l = detail::saved(out)](const Tensor& g) {
      Tensor p = tril(matmul(l.transpose(-2, -1), g));
      p = 0.5 * (p + tril(p, -1).transpose(-2, -1));
      const Tensor left = triangular_solve(p, l, true, true);  // L^-T P
      return detail::Grads{
          triangular_solve(left.transpose(-2, -1), l, true, true).transpose(-2, -1)};
    });
  }
  return out;
}

Tensor triangular_solve(const Tensor& b_in, const Tensor& l_in, bool lower, bool transpose) {
  detail::check_same_device("triangular_solve", b_in, l_in);
  EMBER_CHECK_SHAPE(l_in.dim() >= 2 && l_in.size(-1) == l_in.size(-2),
                    "triangular_solve: expected square matrices L (..., n, n), got shape ",
                    l_in.shape());
  EMBER_CHECK_SHAPE(b_in.dim() >= 2 && b_in.size(-2) == l_in.size(-1),
                    "triangular_solve: B of shape ", b_in.shape(),
                    " does not have the rows of L of shape ", l_in.shape());
  DType t = promote(b_in.dtype(), l_in.dtype());
  if (!is_floating(t)) t = kFloat32;
  const Tensor b = b_in.to(t), l = l_in.to(t);
  const std::int64_t n = l.size(-1), k = b.size(-1);
  Shape batch;
  try {
    batch = broadcast_shapes(batch_dims(b), batch_dims(l), "triangular_solve");
  } catch (const ShapeError&) {
    EMBER_CHECK_SHAPE(false, "triangular_solve: the batch dims of B of shape ", b.shape(),
                      " and L of shape ", l.shape(), " do not broadcast");
  }
  Tensor out = detail::make_tensor(with_matrix(batch, n, k), t, b.device());
  if (out.numel() > 0) {
    const std::int64_t nbatch = batch.numel();
    const Tensor bc = b.detach().expand(out.shape()).contiguous();
    // One L shared by the whole batch is read in place (batch stride 0), not copied.
    const bool shared = batch_dims(l).numel() == 1;
    const Tensor lc =
        shared ? l.detach().contiguous() : l.detach().expand(with_matrix(batch, n, n)).contiguous();
    detail::backend(out).triangular_solve(as_batched(out, nbatch, n, k),
                                          as_batched(lc, nbatch, n, n, shared),
                                          as_batched(bc, nbatch, n, k), lower, transpose);
  }
  if (detail::needs_grad({&b, &l})) {
    detail::record("triangular_solve", {b, l}, out,
                   [b, l, x = detail::saved(out), lower, transpose](const Tensor& g) {
                     detail::Grads grads(2);
                     const Tensor lv = l.detach();
                     const Tensor gb = triangular_solve(g, lv, lower, !transpose);
                     if (b.requires_grad()) grads[0] = sum_to(gb, b.shape());
                     if (l.requires_grad()) {
                       const Tensor gop = transpose ? -matmul(x, gb.transpose(-2, -1))
                                                    : -matmul(gb, x.transpose(-2, -1));
                       grads[1] = sum_to(lower ? tril(gop) : triu(gop), l.shape());
                     }
                     return grads;
                   });
  }
  return out;
}

}  // namespace ember
