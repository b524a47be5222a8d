// cholesky, triangular_solve, tril/triu, diagonal and eye (engine/ops/linalg_decomp.cpp over
// the launchers' batched factorizations): values by reconstruction, broadcasting of batch
// dims, float64 finite-difference gradients, and the errors.
#include <gtest/gtest.h>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

// Well-conditioned symmetric positive definite matrices M M^T + n I.
Tensor random_spd(const Shape& batch, std::int64_t n, DType dtype = kFloat64) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  const Tensor m = random_normal(s);
  return (matmul(m, m.transpose(-2, -1)) + static_cast<double>(n) * eye(n, f64())).to(dtype);
}

// Triangular matrices with diagonals in [1, 2], so that the solves are well conditioned.
Tensor random_triangular(const Shape& batch, std::int64_t n, bool lower) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  const Tensor off = 0.5 * random_normal(s);
  const Tensor diag = uniform(s, 1.0, 2.0) * eye(n, f64());
  return (lower ? tril(off, -1) : triu(off, 1)) + diag;
}

Tensor sym(const Tensor& a) { return 0.5 * (a + a.transpose(-2, -1)); }

}  // namespace

TEST(Cholesky, ReconstructsBatchedMatrices) {
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor a = random_spd({2, 3}, 4, dtype);
    const Tensor l = cholesky(a);
    EXPECT_EQ(l.shape(), (Shape{2, 3, 4, 4}));
    EXPECT_EQ(l.dtype(), dtype);
    const double tol = dtype == kFloat64 ? 1e-12 : 1e-5;
    expect_close(matmul(l, l.transpose(-2, -1)), a, tol, tol);
    // Lower triangular with a positive diagonal: the unique factor.
    expect_close(triu(l, 1), zeros(l.shape(), TensorOptions{}.with_dtype(dtype)), 0, 0);
    EXPECT_TRUE(all(gt(diagonal(l), 0.0)));
  }
  // Only the lower triangle is read.
  const Tensor a = random_spd({}, 3);
  expect_close(cholesky(tril(a) + 100.0 * triu(ones({3, 3}, f64()), 1)), cholesky(a), 1e-12, 1e-12);
  // A strided (transposed) input and an empty batch.
  expect_close(cholesky(a.t()), cholesky(a), 1e-12, 1e-12);
  EXPECT_EQ(cholesky(zeros({0, 2, 2}, f64())).shape(), (Shape{0, 2, 2}));
  expect_values(cholesky(full({1, 1}, 4.0, f64())), {2.0});
}

TEST(Cholesky, GradientMatchesFiniteDifferences) {
  // Symmetrized in f, so that a perturbation of one entry moves both mirrored entries.
  const Tensor a = random_spd({2}, 3).requires_grad_();
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& x) { return cholesky(sym(x[0])); }, {a});
  const Tensor b = random_spd({}, 4).requires_grad_();
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& x) { return cholesky(sym(x[0])); }, {b});
}

TEST(Cholesky, NotPositiveDefiniteNamesTheBatchIndex) {
  Tensor a = random_spd({3}, 2);
  const Tensor bad = tensor({{1.0, 2.0}, {2.0, 1.0}}, f64()).unsqueeze(0);
  a = cat({a.narrow(0, 0, 1), bad, a.narrow(0, 2, 1)}, 0);
  EMBER_EXPECT_THROW_WITH(cholesky(a), ValueError, "cholesky", "batch index [1]",
                          "not positive definite");
  EMBER_EXPECT_THROW_WITH(cholesky(bad.squeeze(0)), ValueError, "cholesky",
                          "not positive definite");
  EMBER_EXPECT_THROW_WITH(cholesky(ones({2, 3}, f64())), ShapeError, "cholesky", "(2, 3)");
  EMBER_EXPECT_THROW_WITH(cholesky(ones({2, 2}, TensorOptions{}.with_dtype(kInt64))), DTypeError,
                          "cholesky");
}

TEST(TriangularSolve, AllFourFormsSolveTheSystem) {
  // Sizes on both sides of the CPU's switch from substitution to Eigen's blocked solver (8).
  for (std::int64_t n : {1, 2, 5, 8, 9, 12}) {
    for (bool lower : {true, false}) {
      for (bool transpose : {false, true}) {
        SCOPED_TRACE(std::string(lower ? "lower" : "upper") + (transpose ? ", transposed" : "") +
                     ", n = " + std::to_string(n));
        const Tensor l = random_triangular({2}, n, lower);
        const Tensor b = random_normal({2, n, 3});
        const Tensor x = triangular_solve(b, l, lower, transpose);
        EXPECT_EQ(x.shape(), (Shape{2, n, 3}));
        const Tensor op = transpose ? l.transpose(-2, -1) : l;
        expect_close(matmul(op, x), b, 1e-10, 1e-12);
        // The other triangle is never read.
        const Tensor junk = lower ? triu(ones({n, n}, f64()), 1) : tril(ones({n, n}, f64()), -1);
        expect_close(triangular_solve(b, l + 7.0 * junk, lower, transpose), x, 1e-12, 1e-12);
      }
    }
  }
  // float32
  const Tensor l = random_triangular({}, 3, true).to(kFloat32);
  const Tensor b = random_normal({3, 2}, false, kFloat32);
  const Tensor x = triangular_solve(b, l);
  EXPECT_EQ(x.dtype(), kFloat32);
  expect_close(matmul(l, x), b, 1e-5, 1e-5);
}

TEST(TriangularSolve, BroadcastsBatchDims) {
  // One L for a batch of right-hand sides, a batch of L for one B, and both broadcasting.
  const Tensor l1 = random_triangular({}, 3, true);
  const Tensor b1 = random_normal({2, 5, 3, 2});
  const Tensor x1 = triangular_solve(b1, l1);
  EXPECT_EQ(x1.shape(), (Shape{2, 5, 3, 2}));
  expect_close(matmul(l1, x1), b1, 1e-10, 1e-12);

  // One L for a batch of vectors (a MultivariateNormal's scale_tril against a batch of
  // values; one solve with the batch as its right-hand sides), every form: each vector as it
  // would be alone, up to rounding.
  for (std::int64_t n : {4, 12}) {
    for (bool lower : {true, false}) {
      for (bool transpose : {false, true}) {
        const Tensor l = random_triangular({}, n, lower);
        const Tensor b = random_normal({7, n, 1});
        const Tensor x = triangular_solve(b, l, lower, transpose);
        EXPECT_EQ(x.shape(), (Shape{7, n, 1}));
        const Tensor op = transpose ? l.transpose(-2, -1) : l;
        expect_close(matmul(op, x), b, 1e-10, 1e-12);
        for (std::int64_t i = 0; i < 7; ++i) {
          expect_close(x.narrow(0, i, 1), triangular_solve(b.narrow(0, i, 1), l, lower, transpose),
                       1e-14, 1e-15);
        }
      }
    }
  }

  const Tensor l2 = random_triangular({4}, 3, true);
  const Tensor b2 = random_normal({3, 1});
  const Tensor x2 = triangular_solve(b2, l2);
  EXPECT_EQ(x2.shape(), (Shape{4, 3, 1}));
  expect_close(matmul(l2, x2), b2.expand({4, 3, 1}), 1e-10, 1e-12);

  const Tensor l3 = random_triangular({2, 1}, 3, false);
  const Tensor b3 = random_normal({4, 3, 2});
  const Tensor x3 = triangular_solve(b3, l3, false, true);
  EXPECT_EQ(x3.shape(), (Shape{2, 4, 3, 2}));
  expect_close(matmul(l3.transpose(-2, -1), x3), b3.expand({2, 4, 3, 2}), 1e-10, 1e-12);

  EMBER_EXPECT_THROW_WITH(
      triangular_solve(random_normal({2, 3, 1}), random_triangular({3}, 3, true)), ShapeError,
      "triangular_solve", "do not broadcast");
  EMBER_EXPECT_THROW_WITH(triangular_solve(random_normal({4, 1}), random_triangular({}, 3, true)),
                          ShapeError, "triangular_solve", "(4, 1)", "(3, 3)");
}

TEST(TriangularSolve, GradientsMatchFiniteDifferences) {
  for (bool lower : {true, false}) {
    for (bool transpose : {false, true}) {
      SCOPED_TRACE(std::string(lower ? "lower" : "upper") + (transpose ? ", transposed" : ""));
      const auto f = [lower, transpose](const std::vector<Tensor>& x) {
        // Perturb only the triangle that is read.
        const Tensor l = lower ? tril(x[1]) : triu(x[1]);
        return triangular_solve(x[0], l, lower, transpose);
      };
      // A shared L (batch stride 0) and a batch of L broadcast against B.
      EMBER_EXPECT_GRAD(
          f, {random_normal({2, 3, 2}, true), random_triangular({}, 3, lower).requires_grad_()});
      EMBER_EXPECT_GRAD(
          f, {random_normal({3, 2}, true), random_triangular({2}, 3, lower).requires_grad_()});
    }
  }
}

TEST(Triangles, TrilTriuDiagonalEye) {
  const Tensor x = arange(1.0, 13.0, 1.0, f64()).reshape({3, 4});
  expect_values(tril(x), {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  expect_values(tril(x, -1), {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  expect_values(triu(x, 1), {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12});
  expect_values(diagonal(x), {1, 6, 11});
  expect_values(diagonal(x.t()), {1, 6, 11});
  expect_values(eye(2, f64()), {1, 0, 0, 1});
  EXPECT_EQ(diagonal(zeros({5, 2, 3})).shape(), (Shape{5, 2}));
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& v) { return tril(v[0], 1); },
                    {random_normal({2, 3, 3}, true)});
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& v) { return diagonal(v[0]); },
                    {random_normal({2, 4, 3}, true)});
  EMBER_EXPECT_THROW_WITH(tril(ones({3})), ShapeError, "tril", "(3)");
}
