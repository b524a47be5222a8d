// Reductions (sum, mean, max, min, logsumexp, sum_to) and scans (cumsum, cumprod) of
// engine/ops/reduce.cpp: values, gradients, dims handling, and the parallel CPU paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/internal.hpp"
#include "kernels/common/reduce_bodies.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {
// 0..23 as (2, 3, 4).
Tensor cube() { return arange(24.0, f64()).reshape({2, 3, 4}); }
}  // namespace

// ------------------------------------------------------------------------- values ----
TEST(Reduce, SumOverDims) {
  Tensor x = cube();
  Tensor all_sum = sum(x);
  EXPECT_EQ(all_sum.dim(), 0);
  EXPECT_EQ(all_sum.item(), 276.0);  // 23 * 24 / 2
  Tensor s0 = sum(x, {0});
  EXPECT_EQ(s0.shape(), (Shape{3, 4}));
  expect_values(s0, {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
  Tensor s2 = sum(x, {-1});
  EXPECT_EQ(s2.shape(), (Shape{2, 3}));
  expect_values(s2, {6, 22, 38, 54, 70, 86});
  Tensor s02 = sum(x, {0, 2}, true);
  EXPECT_EQ(s02.shape(), (Shape{1, 3, 1}));
  expect_values(s02, {6 + 54, 22 + 70, 38 + 86});
  EXPECT_EQ(sum(x, {}, true).shape(), (Shape{1, 1, 1}));
  EXPECT_EQ(sum(x, {2, 0, 1}).item(), 276.0);
  // Sum over a transposed (non-contiguous) view.
  expect_values(sum(x.transpose(0, 2), {0}), {6, 54, 22, 70, 38, 86});
}

TEST(Reduce, SumDtypes) {
  Tensor b = tensor({1, 0, 1, 1}, TensorOptions{}.with_dtype(kBool));
  Tensor c = sum(b);
  EXPECT_EQ(c.dtype(), kInt64);
  EXPECT_EQ(c.item(), 3.0);
  Tensor i = tensor({5, -2, 9}, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(sum(i).dtype(), kInt64);
  EXPECT_EQ(sum(i).item(), 12.0);
  EXPECT_EQ(sum(ones({4})).dtype(), kFloat32);
}

TEST(Reduce, MeanValuesAndDtypes) {
  Tensor x = cube();
  EXPECT_DOUBLE_EQ(mean(x).item(), 11.5);
  expect_values(mean(x, {1}), {4, 5, 6, 7, 16, 17, 18, 19});
  expect_values(mean(x, {-1, -2}, true), {5.5, 17.5});
  EXPECT_EQ(mean(x, {-1, -2}, true).shape(), (Shape{2, 1, 1}));
  Tensor i = tensor({1, 2}, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(mean(i).dtype(), kFloat32);
  EXPECT_EQ(mean(i).item(), 1.5);
}

TEST(Reduce, MaxMinValues) {
  Tensor x = tensor({{3, -1, 7}, {2, 9, -4}}, f64());
  EXPECT_EQ(max(x).item(), 9.0);
  EXPECT_EQ(min(x).item(), -4.0);
  expect_values(max(x, {0}), {3, 9, 7});
  expect_values(min(x, {1}), {-1, -4});
  Tensor k = max(x, {-1}, true);
  EXPECT_EQ(k.shape(), (Shape{2, 1}));
  expect_values(k, {7, 9});
  expect_values(min(x.t(), {1}), {2, -1, -4});
  Tensor i = tensor({4, -8, 6}, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(max(i).item(), 6.0);
  EXPECT_EQ(min(i).item(), -8.0);
  EXPECT_EQ(max(i).dtype(), kInt64);
  EXPECT_TRUE(std::isnan(max(tensor({1.0, NAN, 3.0}, f64())).item()));
}

TEST(Reduce, LogsumexpValuesAndStability) {
  Tensor x = tensor({{0.0, 1.0, 2.0}, {-1.0, 5.0, 0.5}}, f64());
  const double r0 = std::log(1 + std::exp(1.0) + std::exp(2.0));
  const double r1 = std::log(std::exp(-1.0) + std::exp(5.0) + std::exp(0.5));
  expect_values(logsumexp(x, {1}), {r0, r1}, 1e-12);
  expect_values(logsumexp(x, {-1}, true), {r0, r1}, 1e-12);
  EXPECT_EQ(logsumexp(x, {-1}, true).shape(), (Shape{2, 1}));
  EXPECT_NEAR(logsumexp(x).item(), std::log(std::exp(r0) + std::exp(r1)), 1e-12);
  // Large values do not overflow; -inf rows stay -inf, not NaN.
  Tensor big = tensor({1000.0, 1000.0, -INFINITY}, f64());
  EXPECT_NEAR(logsumexp(big).item(), 1000 + std::log(2.0), 1e-12);
  Tensor neg = tensor({-INFINITY, -INFINITY}, f64());
  EXPECT_EQ(logsumexp(neg).item(), -INFINITY);
  Tensor small = tensor({-1000.0, -1000.0}, f64());
  EXPECT_NEAR(logsumexp(small).item(), -1000 + std::log(2.0), 1e-12);
}

// log_normalize(p, dim) = log(p / sum(p, dim)), one kernel and one for its gradient.
TEST(Reduce, LogNormalizeIsTheLogOfTheNormalizedTable) {
  const Tensor p = uniform({3, 4, 5}, 0.1, 2.0);
  for (int dim : {0, 1, 2, -1}) {
    SCOPED_TRACE(dim);
    expect_close(log_normalize(p, dim), log(div(p, sum(p, {dim}, true))), 1e-14, 1e-14);
    const auto f = [dim](const std::vector<Tensor>& v) { return log_normalize(v[0], dim); };
    EMBER_EXPECT_GRAD(f, {uniform({3, 4, 5}, 0.5, 2.0, true)});
  }
  // Strided input: a transposed, expanded table.
  const auto strided = [](const std::vector<Tensor>& v) {
    return log_normalize(v[0].expand({6, 4}).t(), 0);
  };
  EMBER_EXPECT_GRAD(strided, {uniform({1, 4}, 0.5, 2.0, true)});
  // A zero probability is -inf; float32 agrees with float64.
  const Tensor z = log_normalize(tensor({0.0, 1.0, 3.0}, f64()), 0);
  expect_values(z, {-INFINITY, std::log(0.25), std::log(0.75)});
  expect_close(log_normalize(p.to(kFloat32), -1).to(kFloat64), log_normalize(p, -1), 1e-6, 1e-6);
  EXPECT_THROW(log_normalize(scalar_tensor(1.0, f64()), 0), ShapeError);
  EXPECT_THROW(log_normalize(tensor({1.0, 2.0}, TensorOptions{kInt64}), 0), DTypeError);
}

// The CPU sums up to eight lines at once, in lockstep, forward and backward; each line still
// takes the one-line body's steps in its order (kernels/common/reduce_bodies.hpp, what the GPU runs
// per line): the same bits, line by line, for lines along either dim and a partial block of lines,
// in float32 tables whose sums depend on the order of their adds (a large entry among many below
// its half ulp: added first, it absorbs them; added last, they count).
TEST(Reduce, LogNormalizeHasTheOneLineBodysBits) {
  constexpr std::int64_t kRows = 13, kCols = 37;  // a block of 8 lines and 5 more
  std::vector<double> v(kRows * kCols);
  for (std::int64_t r = 0; r < kRows; ++r)
    for (std::int64_t c = 0; c < kCols; ++c)
      v[r * kCols + c] = (r + c) % 11 == 0 ? 1.0 + static_cast<double>(r) : 3e-8 * (1 + c % 5);
  const Tensor t = from_vector(v, {kRows, kCols}, TensorOptions{}.with_dtype(kFloat32));
  const std::vector<float> x = t.to_vector<float>();
  for (int dim : {1, 0}) {
    SCOPED_TRACE(dim);
    const std::vector<float> got = log_normalize(t, dim).contiguous().to_vector<float>();
    const std::int64_t lines = dim == 1 ? kRows : kCols, len = dim == 1 ? kCols : kRows;
    const std::int64_t step = dim == 1 ? 1 : kCols, line_step = dim == 1 ? kCols : 1;
    std::vector<float> want(x.size());
    for (std::int64_t l = 0; l < lines; ++l)
      kernels::log_normalize_line(&want[l * line_step], step, &x[l * line_step], step, len);
    EXPECT_EQ(got, want);
    // The gradient, from incoming gradients that also sum by order: the one-line body's too.
    const Tensor leaf = t.clone().requires_grad_();
    std::vector<double> gd(v.size());
    for (std::int64_t r = 0; r < kRows; ++r)
      for (std::int64_t c = 0; c < kCols; ++c)
        gd[r * kCols + c] =
            (r + 2 * c) % 7 == 0 ? 2.0 + static_cast<double>(c) : 5e-8 * (1 + r % 3);
    const Tensor g = from_vector(gd, {kRows, kCols}, TensorOptions{}.with_dtype(kFloat32));
    log_normalize(leaf, dim).backward(g);
    const std::vector<float> gv = g.to_vector<float>();
    std::vector<float> want_grad(x.size());
    for (std::int64_t l = 0; l < lines; ++l) {
      kernels::log_normalize_backward_line(&want_grad[l * line_step], step, &gv[l * line_step],
                                           step, &x[l * line_step], step, len);
    }
    EXPECT_EQ(leaf.grad().contiguous().to_vector<float>(), want_grad);
  }
}

TEST(Reduce, LogsumexpGradientIsSoftmax) {
  Tensor x = tensor({1000.0, 1001.0, -INFINITY}, f64(true));
  logsumexp(x).backward();
  const double e = std::exp(1.0);
  expect_values(x.grad(), {1 / (1 + e), e / (1 + e), 0}, 1e-12, 1e-15);
}

TEST(Reduce, ZeroDimAndEmptyInputs) {
  Tensor s = scalar_tensor(3.0, f64());
  EXPECT_EQ(sum(s).item(), 3.0);
  EXPECT_EQ(sum(s, {0}).item(), 3.0);
  EXPECT_EQ(max(s, {-1}).item(), 3.0);
  EXPECT_EQ(mean(s).item(), 3.0);
  Tensor e = zeros({0, 3}, f64());
  Tensor se = sum(e, {0});
  EXPECT_EQ(se.shape(), (Shape{3}));
  expect_values(se, {0, 0, 0});
  EXPECT_EQ(sum(e).item(), 0.0);
  EXPECT_EQ(sum(e, {1}).shape(), (Shape{0}));
  EXPECT_EQ(max(e, {1}).shape(), (Shape{0}));
  EXPECT_TRUE(std::isnan(mean(e).item()));
  EMBER_EXPECT_THROW_WITH(max(e), ShapeError, "empty", "(0, 3)");
  EMBER_EXPECT_THROW_WITH(min(e, {0}), ShapeError, "(0, 3)");
  // The log of an empty sum is -inf, slice by slice.
  Tensor lse = logsumexp(e, {0});
  EXPECT_EQ(lse.shape(), (Shape{3}));
  for (double v : lse.to_vector<double>()) EXPECT_EQ(v, -INFINITY);
  EXPECT_EQ(logsumexp(e, {0}, true).shape(), (Shape{1, 3}));
}

TEST(Reduce, BadDims) {
  Tensor x = zeros({2, 3});
  EMBER_EXPECT_THROW_WITH(sum(x, {2}), ShapeError, "sum", "dim 2");
  EMBER_EXPECT_THROW_WITH(mean(x, {-3}), ShapeError, "mean", "dim -3");
  EMBER_EXPECT_THROW_WITH(max(x, {0, -2}), ShapeError, "max", "more than once");
  EXPECT_THROW(logsumexp(x, {5}), ShapeError);
  EXPECT_THROW(min(x, {1, 1}), ShapeError);
}

// ---------------------------------------------------------------------- gradients ----
namespace {
using ReduceFn = std::function<Tensor(const Tensor&, const std::vector<int>&, bool)>;
struct ReduceCase {
  const char* name;
  ReduceFn op;
};
const std::vector<ReduceCase>& reduce_cases() {
  static const std::vector<ReduceCase> cases = {
      {"sum", [](const Tensor& x, const std::vector<int>& d, bool k) { return sum(x, d, k); }},
      {"mean", [](const Tensor& x, const std::vector<int>& d, bool k) { return mean(x, d, k); }},
      {"max", [](const Tensor& x, const std::vector<int>& d, bool k) { return max(x, d, k); }},
      {"min", [](const Tensor& x, const std::vector<int>& d, bool k) { return min(x, d, k); }},
      {"logsumexp",
       [](const Tensor& x, const std::vector<int>& d, bool k) { return logsumexp(x, d, k); }},
  };
  return cases;
}
}  // namespace

TEST(Reduce, GradientsOverDimsKeepdimAndNegativeDims) {
  const std::vector<std::vector<int>> dim_sets = {{}, {0}, {1}, {-1}, {0, 2}, {-3, -2}, {2, 1, 0}};
  for (const auto& c : reduce_cases()) {
    for (const auto& dims : dim_sets) {
      for (bool keepdim : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << c.name << " dims size " << dims.size() << (dims.empty() ? 0 : dims[0])
                     << " keepdim " << keepdim);
        const auto f = [&](const std::vector<Tensor>& v) { return c.op(v[0], dims, keepdim); };
        EMBER_EXPECT_GRAD(f, {random_normal({2, 3, 4}, true)});
      }
    }
  }
}

TEST(Reduce, GradientsOfNonContiguousInputs) {
  for (const auto& c : reduce_cases()) {
    SCOPED_TRACE(c.name);
    const auto t = [&](const std::vector<Tensor>& v) { return c.op(v[0].t(), {1}, false); };
    EMBER_EXPECT_GRAD(t, {random_normal({4, 3}, true)});
    const auto s = [&](const std::vector<Tensor>& v) {
      return c.op(v[0].slice(1, 0, 7, 3), {0}, true);
    };
    EMBER_EXPECT_GRAD(s, {random_normal({3, 7}, true)});
    const auto e = [&](const std::vector<Tensor>& v) {
      return c.op(v[0].unsqueeze(1).expand({3, 4, 2}), {1}, false);
    };
    EMBER_EXPECT_GRAD(e, {random_normal({3, 2}, true)});
  }
}

TEST(Reduce, GradientsOfZeroSizeInputs) {
  const auto s = [](const std::vector<Tensor>& v) { return sum(v[0], {0}); };
  EMBER_EXPECT_GRAD(s, {random_normal({0, 3}, true)});
  const auto s1 = [](const std::vector<Tensor>& v) { return sum(v[0], {1}) * 2.0; };
  EMBER_EXPECT_GRAD(s1, {random_normal({0, 3}, true)});
  const auto m = [](const std::vector<Tensor>& v) { return max(v[0], {1}, true); };
  EMBER_EXPECT_GRAD(m, {random_normal({0, 3}, true)});
  Tensor x = zeros({0, 3}, f64(true));
  sum(x).backward();
  EXPECT_EQ(x.grad().shape(), (Shape{0, 3}));
}

TEST(Reduce, MaxMinTiesShareTheGradient) {
  Tensor x = tensor({{1, 3, 3, 2}, {5, 5, 5, 0}}, f64(true));
  sum(max(x, {1})).backward();
  expect_values(x.grad(), {0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
  Tensor y = tensor({2.0, -1.0, -1.0, 4.0}, f64(true));
  (min(y) * 3.0).backward();
  expect_values(y.grad(), {0, 1.5, 1.5, 0});
  Tensor z = tensor({{7, 7}, {1, 7}}, f64(true));
  max(z).backward();  // three-way tie over all dims
  expect_values(z.grad(), {1.0 / 3, 1.0 / 3, 0, 1.0 / 3});
}

TEST(Reduce, ReductionOfZeroDimGradients) {
  const auto f = [](const std::vector<Tensor>& v) {
    return sum(v[0], {0}) + max(v[0]) + logsumexp(v[0], {-1}, true);
  };
  EMBER_EXPECT_GRAD(f, {random_normal({}, true)});
}

// ------------------------------------------------------------------------- sum_to ----
TEST(SumTo, ValuesGradientsAndErrors) {
  Tensor x = cube();
  expect_values(sum_to(x, {4}), {60, 66, 72, 78});
  expect_values(sum_to(x, {3, 1}), {6 + 54, 22 + 70, 38 + 86});
  EXPECT_EQ(sum_to(x, {1, 1, 1}).item(), 276.0);
  EXPECT_EQ(sum_to(x, {}).item(), 276.0);
  EXPECT_EQ(sum_to(x, {2, 3, 4}).data_ptr(), x.data_ptr());
  const auto f = [](const std::vector<Tensor>& v) { return sum_to(v[0], {3, 1}); };
  EMBER_EXPECT_GRAD(f, {random_normal({2, 3, 4}, true)});
  const auto g = [](const std::vector<Tensor>& v) { return sum_to(v[0].t(), {1, 2}); };
  EMBER_EXPECT_GRAD(g, {random_normal({2, 3}, true)});
  EMBER_EXPECT_THROW_WITH(sum_to(x, {3}), ShapeError, "(2, 3, 4)", "(3)");
  EMBER_EXPECT_THROW_WITH(sum_to(zeros({3}), {2, 3}), ShapeError, "(3)", "(2, 3)");
}

// -------------------------------------------------------------------------- scans ----
TEST(Scan, CumsumCumprodValues) {
  Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, f64());
  expect_values(cumsum(x, 1), {1, 3, 6, 4, 9, 15});
  expect_values(cumsum(x, 0), {1, 2, 3, 5, 7, 9});
  expect_values(cumsum(x, -1), {1, 3, 6, 4, 9, 15});
  expect_values(cumprod(x, 1), {1, 2, 6, 4, 20, 120});
  expect_values(cumprod(x, -2), {1, 2, 3, 4, 10, 18});
  expect_values(cumsum(x.t(), 1), {1, 5, 2, 7, 3, 9});
  expect_values(cumprod(x.slice(1, 0, 3, 2), 1), {1, 3, 4, 24});
  Tensor i = tensor({1, 2, 3}, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(cumsum(i, 0).dtype(), kInt64);
  EXPECT_EQ(cumprod(i, 0).to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 2, 6}));
  Tensor b = tensor({1, 0, 1}, TensorOptions{}.with_dtype(kBool));
  EXPECT_EQ(cumsum(b, 0).to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 1, 2}));
  EXPECT_EQ(cumsum(scalar_tensor(4.0), 0).item(), 4.0);
  EXPECT_EQ(cumsum(zeros({0, 2}), 0).shape(), (Shape{0, 2}));
  EMBER_EXPECT_THROW_WITH(cumsum(x, 2), ShapeError, "cumsum", "dim 2");
  EMBER_EXPECT_THROW_WITH(cumprod(x, -3), ShapeError, "cumprod", "dim -3");
}

TEST(Scan, Gradients) {
  for (int dim : {0, 1, -1, 2}) {
    SCOPED_TRACE(dim);
    const auto cs = [&](const std::vector<Tensor>& v) { return cumsum(v[0], dim); };
    EMBER_EXPECT_GRAD(cs, {random_normal({2, 3, 4}, true)});
    const auto cp = [&](const std::vector<Tensor>& v) { return cumprod(v[0], dim); };
    EMBER_EXPECT_GRAD(cp, {random_normal({2, 3, 4}, true)});
  }
  // Non-contiguous inputs: a transpose and a strided slice.
  const auto tr = [](const std::vector<Tensor>& v) { return cumprod(v[0].t(), 1); };
  EMBER_EXPECT_GRAD(tr, {random_normal({4, 3}, true)});
  const auto st = [](const std::vector<Tensor>& v) { return cumsum(v[0].slice(1, 0, 5, 2), 1); };
  EMBER_EXPECT_GRAD(st, {random_normal({3, 5}, true)});
  const auto e = [](const std::vector<Tensor>& v) { return cumprod(v[0], 1); };
  EMBER_EXPECT_GRAD(e, {random_normal({0, 3}, true)});
  EMBER_EXPECT_GRAD(e, {random_normal({2, 0}, true)});
}

TEST(Scan, CumprodGradientWithZerosIsExact) {
  // x = (2, 0, 3, 0, 5): y = (2, 0, 0, 0, 0). dy_j/dx_k = prod_{i<=j, i!=k} x_i for j >= k.
  // With unit seed: g_0 = 1 + 0 + ... = 1 (only y_0 depends on x_0 without a zero factor),
  // g_1 = x_0 + x_0 x_2 = 2 + 6 = 8, g_2 = 0 (every later product keeps x_1 = 0),
  // g_3 = x_0 x_1 x_2 (...) = 0, g_4 = 0.
  Tensor x = tensor({2.0, 0.0, 3.0, 0.0, 5.0}, f64(true));
  sum(cumprod(x, 0)).backward();
  expect_values(x.grad(), {1, 8, 0, 0, 0}, 0, 0);
  // A single zero: x = (2, 3, 0, 4), y = (2, 6, 0, 0); g_2 = x0 x1 + x0 x1 x3 = 6 + 24 = 30.
  Tensor y = tensor({2.0, 3.0, 0.0, 4.0}, f64(true));
  sum(cumprod(y, 0)).backward();
  expect_values(y.grad(), {1 + 3, 2, 30, 0}, 0, 0);
  const auto f = [](const std::vector<Tensor>& v) { return cumprod(v[0], -1); };
  EMBER_EXPECT_GRAD(f, {tensor({{1.5, 0.0, -2.0, 0.5}, {0.0, 0.0, 3.0, 1.0}}, f64(true))});
}

// ---------------------------------------------------------- large: parallel paths ----
TEST(Large, FullReductions) {
  const std::int64_t n = 100003;
  Tensor x = uniform({n}, -1, 1);
  const auto xv = values(x);
  double s = 0, mx = -INFINITY, mn = INFINITY;
  for (double v : xv) {
    s += v;
    mx = std::max(mx, v);
    mn = std::min(mn, v);
  }
  EXPECT_NEAR(sum(x).item(), s, 1e-9);
  EXPECT_NEAR(mean(x).item(), s / n, 1e-13);
  EXPECT_EQ(max(x).item(), mx);
  EXPECT_EQ(min(x).item(), mn);
  // float32 sums accumulate in double.
  EXPECT_NEAR(sum(ones({n})).item(), static_cast<double>(n), 0);
  EXPECT_NEAR(sum(x.to(kFloat32)).item(), s, 1e-2);
  // A non-contiguous full reduction.
  Tensor m = x.slice(0, 0, 100000).reshape({400, 250}).t();
  EXPECT_NEAR(sum(m).item(), s - xv[100000] - xv[100001] - xv[100002], 1e-9);
  // Integer and bool counts.
  EXPECT_EQ(sum(x > 0.0).item(), static_cast<double>(std::count_if(
                                     xv.begin(), xv.end(), [](double v) { return v > 0; })));
}

TEST(Large, PartialReductionsAndBackward) {
  Tensor x = uniform({400, 300}, -1, 1, true);
  const auto xv = values(x);
  const auto rows = values(sum(x, {1}));
  const auto cols = values(max(x, {0}));
  const auto lse = values(logsumexp(x, {1}, true));
  for (int i = 0; i < 400; ++i) {
    double s = 0, e = 0;
    for (int j = 0; j < 300; ++j) {
      s += xv[i * 300 + j];
      e += std::exp(xv[i * 300 + j]);
    }
    ASSERT_NEAR(rows[i], s, 1e-11) << i;
    ASSERT_NEAR(lse[i], std::log(e), 1e-11) << i;
  }
  for (int j = 0; j < 300; ++j) {
    double m = -INFINITY;
    for (int i = 0; i < 400; ++i) m = std::max(m, xv[i * 300 + j]);
    ASSERT_EQ(cols[j], m) << j;
  }
  // Transposed partial reduction.
  const auto tcols = values(sum(x.t(), {1}));
  for (int j = 0; j < 300; ++j) {
    double s = 0;
    for (int i = 0; i < 400; ++i) s += xv[i * 300 + j];
    ASSERT_NEAR(tcols[j], s, 1e-11) << j;
  }
  // d/dx mean(x, 0) summed = 1/400 everywhere.
  sum(mean(x, {0})).backward();
  const auto g = values(x.grad());
  for (double v : g) ASSERT_DOUBLE_EQ(v, 1.0 / 400);
}

TEST(Large, Scans) {
  Tensor x = uniform({3, 20000}, 0.99, 1.01, true);  // 60000 elements
  const auto xv = values(x);
  const auto cs = values(cumsum(x, 1));
  const auto cp = values(cumprod(x, 1));
  for (int r = 0; r < 3; ++r) {
    double s = 0, p = 1;
    for (int j = 0; j < 20000; ++j) {
      s += xv[r * 20000 + j];
      p *= xv[r * 20000 + j];
      ASSERT_NEAR(cs[r * 20000 + j], s, 1e-9) << r << "," << j;
      ASSERT_NEAR(cp[r * 20000 + j], p, 1e-9 * p) << r << "," << j;
    }
  }
  // Many short lines (the parallel-over-lines path) along dim 0.
  Tensor y = uniform({4, 20000}, -1, 1, true);
  const auto yv = values(y);
  const auto ys = values(cumsum(y, 0));
  for (int j = 0; j < 20000; ++j) {
    double s = 0;
    for (int r = 0; r < 4; ++r) {
      s += yv[r * 20000 + j];
      ASSERT_NEAR(ys[r * 20000 + j], s, 1e-12);
    }
  }
  // d/dx_k sum_j cumsum(x)_j = (number of j >= k) along the scanned dim.
  sum(cumsum(y, 0)).backward();
  const auto g = values(y.grad());
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 20000; j += 997) ASSERT_EQ(g[r * 20000 + j], 4 - r);
  sum(cumprod(x, 1)).backward();
  const auto gx = values(x.grad());
  // Last element: d/dx_last sum_j y_j = y_last / x_last.
  for (int r = 0; r < 3; ++r)
    ASSERT_NEAR(gx[r * 20000 + 19999], cp[r * 20000 + 19999] / xv[r * 20000 + 19999], 1e-9);
}

TEST(Large, ReduceOverAMiddleDimWithStridedKeptDims) {
  Tensor x = uniform({60, 50, 40}, -1, 1);
  const auto xv = values(x);
  const auto s = values(sum(x, {1}));
  const auto m = values(min(x.transpose(0, 2), {1}, true));  // (40, 1, 60)
  for (int i = 0; i < 60; ++i)
    for (int k = 0; k < 40; ++k) {
      double acc = 0, lo = INFINITY;
      for (int j = 0; j < 50; ++j) {
        acc += xv[(i * 50 + j) * 40 + k];
        lo = std::min(lo, xv[(i * 50 + j) * 40 + k]);
      }
      ASSERT_NEAR(s[i * 40 + k], acc, 1e-12) << i << "," << k;
      ASSERT_EQ(m[k * 60 + i], lo) << i << "," << k;
    }
}

// ------------------------------------------------------------------ mul_sum_to ----
// sum_to(a * b, shape) in one pass: every shape of reduction (none, full, inner, outer,
// leading dims, broadcast operands, strided views) against the two-op composition, and
// the parallel path of a long full reduction.
TEST(Reduce, MulSumToMatchesTheComposition) {
  struct Case {
    Shape a, b, to;
  };
  const std::vector<Case> cases = {
      {{5}, {5}, {}},
      {{4, 6}, {4, 6}, {4, 1}},
      {{4, 6}, {4, 6}, {6}},
      {{4, 6}, {6}, {1, 6}},
      {{4, 6}, {}, {}},
      {{2, 3, 4}, {2, 1, 4}, {3, 1}},
      {{2, 3, 4}, {4}, {2, 1, 1}},
      {{3, 1}, {1, 5}, {5}},
      {{4, 6}, {4, 6}, {4, 6}},
  };
  for (DType t : {kFloat64, kFloat32}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(testing::Message()
                   << dtype_name(t) << " " << c.a << " * " << c.b << " -> " << c.to);
      const Tensor a = random_normal(c.a).to(t), b = random_normal(c.b).to(t);
      const Tensor got = detail::mul_sum_to(a, b, c.to);
      EXPECT_EQ(got.shape(), c.to);
      EXPECT_EQ(got.dtype(), t);
      expect_close(got.to(kFloat64), sum_to(a * b, c.to).to(kFloat64), t == kFloat64 ? 1e-12 : 1e-5,
                   1e-6);
    }
  }
  // Strided operands (a transposed view) and a reduction long enough to split across cores.
  const Tensor m = random_normal({300, 400});
  expect_close(detail::mul_sum_to(m.t(), m.t(), {400, 1}), sum_to(m.t() * m.t(), {400, 1}), 1e-12,
               1e-10);
  const Tensor v = random_normal({1 << 17}), w = random_normal({1 << 17});
  expect_close(detail::mul_sum_to(v, w, {}), sum(v * w), 1e-11, 1e-9);
  EMBER_EXPECT_THROW_WITH(detail::mul_sum_to(random_normal({4, 6}), random_normal({4, 6}), {5}),
                          ShapeError, "mul_sum_to", "(4, 6)");
}
