// Differentiable tensor operations. Binary operations broadcast as NumPy does and promote
// dtypes (bool < int64 < float32 < float64); a double operand takes the tensor's dtype.
// Operands must live on one device; errors name the operation and the shapes at fault.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ember/tensor.hpp"

namespace ember {

// ---- elementwise arithmetic ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor pow(double base, const Tensor& exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor sub(double a, const Tensor& b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor div(double a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);

// ---- elementwise math (floating dtypes) ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor log_sigmoid(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);
// x for x > 0, negative_slope * x otherwise (as torch's; the gradient at 0 is the slope).
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// x for x > 0, alpha * (exp(x) - 1) otherwise.
Tensor elu(const Tensor& x, double alpha = 1.0);
// x * Phi(x), Phi the standard normal CDF through erf (exact), or torch's tanh approximation
// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
enum class GeluApproximation { None, Tanh };
Tensor gelu(const Tensor& x, GeluApproximation approximate = GeluApproximation::None);
Tensor lgamma(const Tensor& x);
Tensor digamma(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
// Rounds down; the gradient is zero.
Tensor floor(const Tensor& x);
// Limits values to [lo, hi]; the gradient passes where lo <= x <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_min(const Tensor& x, double lo);
Tensor clamp_max(const Tensor& x, double hi);

// cond ? a : b, elementwise with broadcasting; cond is converted to bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);

// ---- comparisons and logic (bool results, no gradient) ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
// Elementwise tests (bool results).
Tensor isnan(const Tensor& x);
Tensor isfinite(const Tensor& x);
// True when every element is true (synchronizes with the device).
bool all(const Tensor& cond);
bool any(const Tensor& cond);

// ---- reductions: over the given dims (negative allowed), or all dims when none ----
Tensor sum(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
// The gradient of max/min is shared equally among tied maxima (minima).
Tensor max(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
// exp(x) / sum(exp(x)) and its logarithm along one dim, computed from x - max(x), so large
// inputs neither overflow nor lose log_softmax's precision (log_softmax({1000, 0}) is
// {0, -1000} exactly). Each is one recorded node with its analytic backward.
Tensor softmax(const Tensor& x, int dim);
Tensor log_softmax(const Tensor& x, int dim);
// log(p / sum(p, dim)): log-probabilities from unnormalized probabilities (a Categorical's
// table), each line along dim in one kernel and its gradient, g / p - sum(g) / sum(p), in one
// more. A zero in p gives -inf.
Tensor log_normalize(const Tensor& p, int dim);
// Sums x down to `shape` (the inverse of broadcasting x from shape).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- scans along one dim ----
Tensor cumsum(const Tensor& x, int dim);
Tensor cumprod(const Tensor& x, int dim);

// ---- indexing (index tensors are int64) ----
// Picks entries index[i] of x along dim.
Tensor index_select(const Tensor& x, int dim, const Tensor& index);
// x's entries along dim 0 at `index` (any shape): shaped index.shape + x.shape[1:] (NumPy's
// x[index]; an embedding lookup; Pyro's Vindex for one leading index, as a model reads a table
// at an enumerated value: Normal(index_rows(locs, z), 1) for z of shape (K, 1)).
Tensor index_rows(const Tensor& x, const Tensor& index);
// out[i][j] = x[index[i][j]][j] for dim 0 (as torch.gather); out has index's shape.
Tensor gather(const Tensor& x, int dim, const Tensor& index);
// A copy of x with src added at index along dim (as torch.scatter_add).
Tensor scatter_add(const Tensor& x, int dim, const Tensor& index, const Tensor& src);
// A copy of x with src's slices added at the positions index along dim.
Tensor index_add(const Tensor& x, int dim, const Tensor& index, const Tensor& src);

// ---- joining and padding ----
Tensor cat(const std::vector<Tensor>& tensors, int dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int dim = 0);
// Constant padding as torch.nn.functional.pad: pads = {last_left, last_right,
// second_last_left, second_last_right, ...}; negative pads crop.
Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, double value = 0.0);

// ---- linear algebra ----
// NumPy matmul semantics: 1-d operands are promoted and the added dim removed, batch dims
// broadcast. cuBLAS on the GPU, Eigen on the CPU.
Tensor matmul(const Tensor& a, const Tensor& b);
// PyTorch's torch.nn.functional.linear: x W^T + b for x (..., in_features), weight
// (out_features, in_features) and an optional bias (out_features), as one GEMM that adds the
// product to the broadcast bias (addmm); with no bias, matmul(x, weight.t()).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- convolution ----
struct Conv2dOptions {
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> padding{0, 0};  // zeros on both sides of each spatial dim
  std::array<std::int64_t, 2> dilation{1, 1};
  std::int64_t groups = 1;
};
// 2-d cross-correlation as torch.nn.functional.conv2d: input (N, C, H, W) or (C, H, W),
// weight (O, C / groups, KH, KW), bias (O) or undefined; the result is (N, O, OH, OW) with
// OH = (H + 2 padding - dilation (KH - 1) - 1) / stride + 1. The input is unfolded into
// columns (im2col) and each group is one matrix product.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& opts = {});

}  // namespace ember
