// matmul with NumPy semantics, and linear (x W^T + b as one GEMM), over the launchers' batched
// GEMM (cuBLAS / OpenBLAS or Eigen).
#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "engine/internal.hpp"

namespace ember {
namespace {

using detail::arg;

// Row-major (sc == 1, sr >= c) or column-major (sr == 1, sc >= r) strides for an r x c
// matrix with strides (sr, sc), normalizing the free strides of size-1 dims; nullopt when
// neither fits (overlapping or general strides).
std::optional<std::pair<std::int64_t, std::int64_t>> matrix_strides(std::int64_t r, std::int64_t c,
                                                                    std::int64_t sr,
                                                                    std::int64_t sc) {
  if (sc == 1 || c == 1) {
    if (r == 1) sr = std::max<std::int64_t>(c, 1);
    if (sr >= std::max<std::int64_t>(c, 1)) return std::make_pair(sr, std::int64_t{1});
  }
  if (sr == 1 || r == 1) {
    if (c == 1) sc = std::max<std::int64_t>(r, 1);
    if (sc >= std::max<std::int64_t>(r, 1)) return std::make_pair(std::int64_t{1}, sc);
  }
  return std::nullopt;
}

// The single stride that walks x's batch dims (all but the last two), if there is one.
std::optional<std::int64_t> batch_stride(const Tensor& x) {
  std::int64_t stride = 0, expect = -1;
  for (int d = x.dim() - 3; d >= 0; --d) {
    if (x.shape()[d] == 1) continue;
    if (expect >= 0 && x.strides()[d] != expect) return std::nullopt;
    if (expect < 0) stride = x.strides()[d];
    expect = x.strides()[d] * x.shape()[d];
  }
  return stride;
}

// Describes x (..., R, C), already expanded to the batch shape, as a 3-d argument
// (batch, R, C) for the launcher; copies x to a contiguous tensor when its layout does not
// allow that. `keep` holds the tensor the argument points into.
kernels::TensorArg as_batched(const Tensor& x, std::int64_t batch, Tensor& keep) {
  const int n = x.dim();
  const std::int64_t r = x.shape()[n - 2], c = x.shape()[n - 1];
  auto mat = matrix_strides(r, c, x.strides()[n - 2], x.strides()[n - 1]);
  auto bstride = batch_stride(x);
  keep = x;
  if (!mat || !bstride) {
    keep = x.contiguous();
    mat = matrix_strides(r, c, keep.strides()[n - 2], keep.strides()[n - 1]);
    bstride = batch_stride(keep);
  }
  detail::order_use(keep);
  kernels::TensorArg a;
  a.data = keep.data_ptr();
  a.dtype = keep.dtype();
  a.ndim = 3;
  a.sizes[0] = batch;
  a.sizes[1] = r;
  a.sizes[2] = c;
  // A contiguous tensor always has both; value() throws rather than read garbage.
  a.strides[0] = batch == 1 ? 0 : bstride.value();
  a.strides[1] = mat.value().first;
  a.strides[2] = mat.value().second;
  return a;
}

// out (contiguous: the batch dims, then rows x cols) = a @ b, or += a @ b with `accumulate`;
// a and b already expanded to the batch shape. No autograd.
void gemm_into(Tensor& out, const Tensor& a, const Tensor& b, std::int64_t nbatch,
               bool accumulate) {
  Tensor keep_a, keep_b;
  const auto aa = as_batched(a, nbatch, keep_a);
  const auto bb = as_batched(b, nbatch, keep_b);
  kernels::TensorArg oa = arg(out);
  oa.ndim = 3;
  oa.sizes[0] = nbatch;
  oa.sizes[1] = aa.sizes[1];
  oa.sizes[2] = bb.sizes[2];
  oa.strides[0] = oa.sizes[1] * oa.sizes[2];
  oa.strides[1] = oa.sizes[2];
  oa.strides[2] = 1;
  detail::backend(out).matmul(oa, aa, bb, accumulate);
}

// The shapes of a batched product of a (..., m, k) and b (..., k, n): the broadcast batch, and
// batch + (m, k), batch + (k, n), batch + (m, n).
struct BatchedShapes {
  Shape batch, a, b, out;
};
BatchedShapes batched_product_shapes(const Tensor& a, const Tensor& b, const char* op) {
  Shape batch_a, batch_b;
  for (int d = 0; d < a.dim() - 2; ++d) batch_a.push_back(a.size(d));
  for (int d = 0; d < b.dim() - 2; ++d) batch_b.push_back(b.size(d));
  BatchedShapes s;
  s.batch = broadcast_shapes(batch_a, batch_b, op);
  s.a = s.b = s.out = s.batch;
  const std::int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  s.a.push_back(m);
  s.a.push_back(k);
  s.b.push_back(k);
  s.b.push_back(n);
  s.out.push_back(m);
  s.out.push_back(n);
  return s;
}

Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const std::int64_t k = a.size(-1), k2 = b.size(-2);
  EMBER_CHECK_SHAPE(k == k2, "matmul: shapes ", a.shape(), " and ", b.shape(), " are not aligned (",
                    k, " != ", k2, ")");
  const auto [batch, sa, sb, so] = batched_product_shapes(a, b, "matmul");
  Tensor out = detail::make_tensor(so, a.dtype(), a.device());
  if (out.numel() > 0) {
    if (k == 0) {
      detail::backend(out).fill(arg(out), 0.0);
    } else {
      gemm_into(out, a.detach().expand(sa), b.detach().expand(sb), batch.numel(), false);
    }
  }
  if (detail::needs_grad({&a, &b})) {
    detail::record("matmul", {a, b}, out, [a, b](const Tensor& g) {
      detail::Grads grads(2);
      if (a.requires_grad())
        grads[0] = sum_to(matmul_nd(g, b.detach().transpose(-2, -1)), a.shape());
      if (b.requires_grad()) {
        // A transposed matrix (Linear's weight.t()) gets its gradient in its own layout,
        // (g^T a)^T rather than a^T g: the transpose's backward then hands the weight a
        // contiguous gradient instead of a strided one that would be copied.
        const bool transposed = a.dim() == 2 && b.dim() == 2 && b.size(1) > 1 &&
                                b.strides()[0] == 1 && b.strides()[1] == b.size(0);
        grads[1] = transposed ? matmul_nd(g.transpose(-2, -1), a.detach()).transpose(-2, -1)
                              : sum_to(matmul_nd(a.detach().transpose(-2, -1), g), b.shape());
      }
      return grads;
    });
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  detail::check_same_device("matmul", a_in, b_in);
  EMBER_CHECK_SHAPE(a_in.dim() >= 1 && b_in.dim() >= 1,
                    "matmul: operands need at least one dim, got ", a_in.shape(), " and ",
                    b_in.shape());
  DType t = promote(a_in.dtype(), b_in.dtype());
  if (!is_floating(t)) t = kFloat32;
  // 1-d operands: a vector on the left is a row, on the right a column; the added dim is
  // removed from the result.
  Tensor a = a_in.to(t), b = b_in.to(t);
  const bool vec_a = a.dim() == 1, vec_b = b.dim() == 1;
  if (vec_a) a = a.unsqueeze(0);
  if (vec_b) b = b.unsqueeze(1);
  // Checked here so that errors name the shapes the caller passed, not the promoted ones.
  const std::int64_t k = a.size(-1), k2 = b.size(-2);
  EMBER_CHECK_SHAPE(k == k2, "matmul: shapes ", a_in.shape(), " and ", b_in.shape(),
                    " are not aligned (", k, " != ", k2, ")");
  for (int i = 3; i <= std::min(a.dim(), b.dim()); ++i) {
    const std::int64_t da = a.size(-i), db = b.size(-i);
    EMBER_CHECK_SHAPE(da == db || da == 1 || db == 1, "matmul: the batch dims of shapes ",
                      a_in.shape(), " and ", b_in.shape(), " do not broadcast");
  }
  Tensor out = matmul_nd(a, b);
  if (vec_b) out = out.squeeze(-1);
  if (vec_a) out = out.squeeze(vec_b ? -1 : -2);
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  EMBER_CHECK_SHAPE(weight.dim() == 2, "linear: weight must be 2-d (out_features, in_features), ",
                    "got shape ", weight.shape());
  EMBER_CHECK_SHAPE(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input of shape ",
                    x.shape(), " does not end in in_features = ", weight.size(1));
  if (!bias.defined()) return matmul(x, weight.t());
  EMBER_CHECK_SHAPE(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias of shape ",
                    bias.shape(), " does not match out_features = ", weight.size(0));
  detail::check_same_device("linear", x, weight);
  detail::check_same_device("linear", x, bias);
  if (x.dim() != 2) {
    // Every leading dim is a row: (..., in) -> (rows, in) -> (..., out).
    Shape shape = x.shape();
    shape[shape.size() - 1] = weight.size(0);
    return linear(x.reshape({-1, x.size(-1)}), weight, bias).reshape(shape);
  }
  DType t = promote(promote(x.dtype(), weight.dtype()), bias.dtype());
  if (!is_floating(t)) t = kFloat32;
  const Tensor a = x.to(t), w = weight.to(t), b = bias.to(t);
  const std::int64_t rows = a.size(0), n = w.size(0);
  // The bias broadcast into the output, then the product added to it by the GEMM (beta = 1):
  // no pass of its own over the output for the bias, as PyTorch's addmm.
  Tensor out = detail::make_tensor({rows, n}, t, a.device());
  if (out.numel() > 0) {
    detail::backend(out).copy(arg(out), detail::broadcast_arg(b.detach(), {rows, n}));
    if (a.size(1) > 0) gemm_into(out, a.detach(), w.detach().t(), 1, true);
  }
  if (detail::needs_grad({&a, &w, &b})) {
    detail::record("linear", {a, w, b}, out, [a, w, b](const Tensor& g) {
      detail::Grads grads(3);
      if (a.requires_grad()) grads[0] = matmul(g, w.detach());
      // g^T a is (out, in): the weight's own layout, contiguous.
      if (w.requires_grad()) grads[1] = matmul(g.t(), a.detach());
      if (b.requires_grad()) grads[2] = sum(g, {0});
      return grads;
    });
  }
  return out;
}

namespace {

// The log-space product of a (..., m, k) and b (..., k, n), batch dims broadcast; max_plus:
// the max-product one, unrecorded.
Tensor log_matmul(const Tensor& a_in, const Tensor& b_in, bool max_plus, const char* name) {
  detail::check_same_device(name, a_in, b_in);
  EMBER_CHECK_SHAPE(a_in.dim() >= 2 && b_in.dim() >= 2, name,
                    ": operands need at least two dims, got ", a_in.shape(), " and ", b_in.shape());
  EMBER_CHECK_SHAPE(a_in.size(-1) == b_in.size(-2), name, ": shapes ", a_in.shape(), " and ",
                    b_in.shape(), " are not aligned (", a_in.size(-1), " != ", b_in.size(-2), ")");
  DType t = promote(a_in.dtype(), b_in.dtype());
  if (!is_floating(t)) t = kFloat32;
  const Tensor a = a_in.to(t), b = b_in.to(t);
  const std::int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  // Named, not bound: the gradient's closure keeps the operands' shapes (clang before 16 does
  // not capture structured bindings).
  const BatchedShapes shapes = batched_product_shapes(a, b, name);
  const Shape& sa = shapes.a;
  const Shape& sb = shapes.b;
  const std::int64_t nb = shapes.batch.numel();
  const Tensor a3 = a.detach().expand(sa).contiguous().reshape({nb, m, k});
  const Tensor b3 = b.detach().expand(sb).contiguous().reshape({nb, k, n});
  Tensor out3 = detail::make_tensor({nb, m, n}, t, a.device());
  if (out3.numel() > 0) {
    if (k == 0) {
      detail::backend(out3).fill(arg(out3), -INFINITY);  // an empty sum or max
    } else {
      detail::backend(out3).log_matmul_exp(arg(out3), arg(a3), arg(b3), max_plus);
    }
  }
  Tensor out = out3.reshape(shapes.out);
  if (!max_plus && detail::needs_grad({&a, &b})) {
    detail::record(name, {a, b}, out,
                   [a, b, a3, b3, out3, sa = shapes.a, sb = shapes.b](const Tensor& g) {
                     const Tensor g3 = g.contiguous().reshape(out3.shape());
                     Tensor ga3 = detail::make_tensor(a3.shape(), a3.dtype(), a3.device());
                     Tensor gb3 = detail::make_tensor(b3.shape(), b3.dtype(), b3.device());
                     if (a3.numel() > 0 && b3.numel() > 0) {
                       detail::backend(out3).log_matmul_exp_backward(arg(ga3), arg(gb3), arg(g3),
                                                                     arg(a3), arg(b3), arg(out3));
                     } else {
                       if (ga3.numel() > 0) detail::backend(ga3).fill(arg(ga3), 0.0);
                       if (gb3.numel() > 0) detail::backend(gb3).fill(arg(gb3), 0.0);
                     }
                     detail::Grads grads(2);
                     if (a.requires_grad()) grads[0] = sum_to(ga3.reshape(sa), a.shape());
                     if (b.requires_grad()) grads[1] = sum_to(gb3.reshape(sb), b.shape());
                     return grads;
                   });
  }
  return out;
}

}  // namespace

Tensor log_matmul_exp(const Tensor& a, const Tensor& b) {
  return log_matmul(a, b, false, "log_matmul_exp");
}

Tensor max_plus_matmul(const Tensor& a, const Tensor& b) {
  return log_matmul(a, b, true, "max_plus_matmul");
}

}  // namespace ember
