// Transforms: forward/inverse round trips, log-dets against float64 finite-difference
// Jacobians (full determinants for the vector and matrix transforms), gradients through
// autodiff, and biject_to landing inside each constraint.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>
#include <ember/transforms.hpp>
#include <functional>
#include <limits>
#include <vector>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;
using namespace ember::transforms;

namespace {

using VecFn = std::function<std::vector<double>(const std::vector<double>&)>;

// log|det J| of f: R^m -> R^m at x, J by central differences, det by LU with pivoting.
double fd_log_abs_det(const VecFn& f, const std::vector<double>& x, double h = 1e-6) {
  const std::size_t m = x.size();
  std::vector<std::vector<double>> j(m, std::vector<double>(m));
  for (std::size_t c = 0; c < m; ++c) {
    std::vector<double> up = x, down = x;
    up[c] += h;
    down[c] -= h;
    const auto fu = f(up), fd = f(down);
    for (std::size_t r = 0; r < m; ++r) j[r][c] = (fu[r] - fd[r]) / (2 * h);
  }
  double log_det = 0.0;
  for (std::size_t k = 0; k < m; ++k) {
    std::size_t piv = k;
    for (std::size_t r = k + 1; r < m; ++r)
      if (std::abs(j[r][k]) > std::abs(j[piv][k])) piv = r;
    std::swap(j[k], j[piv]);
    log_det += std::log(std::abs(j[k][k]));
    for (std::size_t r = k + 1; r < m; ++r) {
      const double factor = j[r][k] / j[k][k];
      for (std::size_t c = k; c < m; ++c) j[r][c] -= factor * j[k][c];
    }
  }
  return log_det;
}

std::vector<Transform> elementwise_transforms() {
  return {ExpTransform(),
          SoftplusTransform(),
          SigmoidTransform(),
          AffineTransform(1.5, -2.0),
          AffineTransform(tensor({0.5, -1.0, 2.0}, f64()), tensor({3.0, 0.25, -1.5}, f64())),
          ComposeTransform({ExpTransform(), AffineTransform(2.0, 3.0)}),
          ComposeTransform({SigmoidTransform(), AffineTransform(-2.0, 7.0)})};
}

}  // namespace

TEST(Transforms, ElementwiseRoundTripAndShape) {
  const Tensor x = random_normal({4, 3});
  for (const Transform& t : elementwise_transforms()) {
    const Tensor y = t(x);
    EXPECT_EQ(y.shape(), x.shape()) << t.name();
    expect_close(t.inverse(y), x, 1e-8, 1e-8);
    EXPECT_TRUE(all(t.codomain().check(y))) << t.name();
    EXPECT_EQ(t.log_abs_det_jacobian(x, y).shape(), x.shape()) << t.name();
    EXPECT_EQ(t.event_dim(), 0) << t.name();
    EXPECT_TRUE(t.bijective()) << t.name();
  }
}

TEST(Transforms, ElementwiseLogDetMatchesFiniteDifferences) {
  const Tensor x = random_normal({4, 3});
  const auto xs = values(x);
  const double h = 1e-6;
  for (const Transform& t : elementwise_transforms()) {
    const auto ladj = values(t.log_abs_det_jacobian(x, t(x)));
    const auto up = values(t(x + h)), down = values(t(x - h));
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double numeric = std::log(std::abs((up[i] - down[i]) / (2 * h)));
      EXPECT_NEAR(ladj[i], numeric, 1e-6 * (1 + std::abs(numeric))) << t.name() << " at " << i;
    }
  }
}

TEST(Transforms, AffineWithEventDimSumsTheLogDet) {
  const Tensor scale = tensor({2.0, -0.5, 3.0}, f64());
  const AffineTransform t(tensor({1.0, 2.0, 3.0}, f64()), scale, 1);
  const Tensor x = random_normal({5, 3});
  const Tensor ladj = t.log_abs_det_jacobian(x, t(x));
  EXPECT_EQ(ladj.shape(), Shape{5});
  const double expected = std::log(2.0) + std::log(0.5) + std::log(3.0);
  for (double v : values(ladj)) EXPECT_NEAR(v, expected, 1e-12);
  EXPECT_EQ(t.event_dim(), 1);
  EXPECT_EQ(t.domain().event_dim(), 1);
  // The full Jacobian of one event agrees.
  const auto row = values(x.select(0, 0));
  const VecFn f = [&](const std::vector<double>& v) {
    return values(t(from_vector(v, {3}, f64())));
  };
  EXPECT_NEAR(fd_log_abs_det(f, row), expected, 1e-7);
  expect_values(t.loc(), {1.0, 2.0, 3.0});
  // Parameters broadcast into the output shape.
  EXPECT_EQ(AffineTransform(zeros({2, 1}), 1.0).forward_shape({3}), (Shape{2, 3}));
}

TEST(Transforms, StickBreakingMapsOntoTheSimplex) {
  const StickBreakingTransform t;
  const Tensor x = random_normal({6, 4}) * 2.0;
  const Tensor y = t(x);
  EXPECT_EQ(y.shape(), (Shape{6, 5}));
  EXPECT_TRUE(all(constraints::simplex.check(y)));
  expect_close(t.inverse(y), x, 1e-7, 1e-7);
  EXPECT_EQ(t.forward_shape({6, 4}), (Shape{6, 5}));
  EXPECT_EQ(t.inverse_shape({6, 5}), (Shape{6, 4}));
  // x = 0 is the uniform point of the simplex.
  expect_values(t(zeros({3}, f64())), {0.25, 0.25, 0.25, 0.25});
  EXPECT_EQ(t.event_dim(), 1);
  EXPECT_EQ(t.codomain().kind(), constraints::Kind::Simplex);
}

// The forward (its pieces cut by one line kernel, with its own backward) against the
// composition that kernel replaces, written here with public ops: values and gradients in
// float32 and float64, lines of 0, 1 and 7, a batch of lines read through a transpose, and
// entries far enough out that the clamp holds a fraction at an end.
TEST(Transforms, StickBreakingMatchesItsComposition) {
  const auto composed = [](const Tensor& x) {
    const std::int64_t n = x.size(-1);
    const auto opts = TensorOptions{}.with_dtype(x.dtype());
    const Tensor shift = log(static_cast<double>(n + 1) - arange(1.0, n + 1.0, 1.0, opts));
    const bool f64 = x.dtype() == kFloat64;
    const double tiny =
        f64 ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
    const double top = f64 ? 1.0 - std::numeric_limits<double>::epsilon()
                           : 1.0 - std::numeric_limits<float>::epsilon();
    const Tensor z = clamp(sigmoid(x - shift), tiny, top);
    return pad(z, {0, 1}, 1.0) * pad(cumprod(1.0 - z, -1), {1, 0}, 1.0);
  };
  const StickBreakingTransform t;
  for (DType dtype : {kFloat32, kFloat64}) {
    for (std::int64_t n : {0, 1, 7}) {
      SCOPED_TRACE(::testing::Message() << dtype << ", n = " << n);
      // (n, 5) transposed: 5 lines of n with stride 5. With n = 7, lines 1 to 3 each have one
      // entry pushed past the clamp (the first, a middle and the last); lines 0 and 4 none.
      std::vector<double> v = values(random_normal({n, 5}));
      if (n == 7) {
        v[0 * 5 + 1] = 200.0;
        v[3 * 5 + 2] = -200.0;
        v[6 * 5 + 3] = 60.0;
      }
      const Tensor x = from_vector(v, {n, 5}, f64()).to(dtype).t();
      const Tensor xa = x.detach().requires_grad_(), xb = x.detach().requires_grad_();
      const Tensor ya = t(xa), yb = composed(xb);
      ASSERT_EQ(ya.shape(), (Shape{5, n + 1}));
      const double tol = dtype == kFloat64 ? 1e-14 : 2e-6;
      const double gtol = dtype == kFloat64 ? 1e-10 : 1e-4;
      expect_close(ya, yb, tol, tol);
      const Tensor w = random_normal({5, n + 1}).to(dtype);
      sum(ya * w).backward();
      sum(yb * w).backward();
      if (n == 0) {
        EXPECT_EQ(xa.grad().numel(), 0);
        continue;
      }
      expect_close(xa.grad(), xb.grad(), gtol, gtol * 1e-3);
    }
  }
  // A clamped entry passes no gradient; a line at the uniform point gives the simplex's.
  const Tensor far = tensor({300.0, 0.0}, f64()).requires_grad_();
  sum(t(far) * tensor({1.0, 2.0, 3.0}, f64())).backward();
  EXPECT_EQ(far.grad().to_vector<double>()[0], 0.0);
}

TEST(Transforms, StickBreakingLogDetIsTheFullJacobianDeterminant) {
  const StickBreakingTransform t;
  const Tensor x = random_normal({3, 4});
  const auto ladj = values(t.log_abs_det_jacobian(x, t(x)));
  ASSERT_EQ(ladj.size(), 3u);
  for (int b = 0; b < 3; ++b) {
    // x (K-1) -> y[:K-1]: the last entry is fixed by the others.
    const VecFn f = [&](const std::vector<double>& v) {
      auto y = values(t(from_vector(v, {4}, f64())));
      y.pop_back();
      return y;
    };
    EXPECT_NEAR(ladj[b], fd_log_abs_det(f, values(x.select(0, b))), 1e-6) << "row " << b;
  }
}

TEST(Transforms, LowerCholeskyMapsOntoLowerCholeskyFactors) {
  const LowerCholeskyTransform t;
  const Tensor x = random_normal({2, 3, 3});
  const Tensor y = t(x);
  EXPECT_TRUE(all(constraints::lower_cholesky.check(y)));
  // The inverse recovers the lower triangle (the strictly upper part is dropped).
  expect_close(t.inverse(y), tril(x), 1e-10, 1e-12);
  expect_close(t(t.inverse(y)), y, 1e-10, 1e-12);
  EXPECT_FALSE(t.bijective());
  EXPECT_EQ(t.event_dim(), 2);
  EMBER_EXPECT_THROW_WITH(t(zeros({2, 3})), ShapeError, "LowerCholeskyTransform", "(2, 3)");
}

TEST(Transforms, LowerCholeskyLogDetIsTheFullJacobianDeterminant) {
  const LowerCholeskyTransform t;
  const int n = 3;
  const Tensor x = random_normal({2, n, n});
  const auto ladj = values(t.log_abs_det_jacobian(x, t(x)));
  ASSERT_EQ(ladj.size(), 2u);
  for (int b = 0; b < 2; ++b) {
    // The map between the n (n + 1) / 2 lower entries of x and of y.
    const auto full = values(x.select(0, b));
    std::vector<double> lower;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j <= i; ++j) lower.push_back(full[i * n + j]);
    const VecFn f = [&](const std::vector<double>& v) {
      std::vector<double> m = full;
      std::size_t k = 0;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j <= i; ++j) m[i * n + j] = v[k++];
      const auto y = values(t(from_vector(m, {n, n}, f64())));
      std::vector<double> out;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j <= i; ++j) out.push_back(y[i * n + j]);
      return out;
    };
    EXPECT_NEAR(ladj[b], fd_log_abs_det(f, lower), 1e-6) << "matrix " << b;
  }
}

TEST(Transforms, ComposeSumsLogDetsUpToItsEventDim) {
  // affine (event_dim 0) then stick-breaking (event_dim 1): the affine log-det is summed over
  // the vector.
  const ComposeTransform t({AffineTransform(0.5, 2.0), StickBreakingTransform()});
  EXPECT_EQ(t.event_dim(), 1);
  EXPECT_EQ(t.parts().size(), 2u);
  const Tensor x = random_normal({2, 3});
  const Tensor y = t(x);
  EXPECT_EQ(y.shape(), (Shape{2, 4}));
  expect_close(t.inverse(y), x, 1e-7, 1e-7);
  const Tensor inner = AffineTransform(0.5, 2.0)(x);
  expect_close(t.log_abs_det_jacobian(x, y),
               3 * std::log(2.0) + StickBreakingTransform().log_abs_det_jacobian(inner, y));
  EXPECT_EQ(t.codomain().kind(), constraints::Kind::Simplex);
  EXPECT_EQ(t.domain().event_dim(), 1);
  // The empty composition is the identity.
  const ComposeTransform identity(std::vector<Transform>{});
  expect_close(identity(x), x);
  expect_values(identity.log_abs_det_jacobian(x, x), {0, 0, 0, 0, 0, 0});
}

TEST(Transforms, IndependentSumsOverReinterpretedDims) {
  const IndependentTransform t(ExpTransform(), 1);
  const Tensor x = random_normal({2, 3});
  EXPECT_EQ(t.event_dim(), 1);
  expect_close(t(x), exp(x));
  expect_close(t.log_abs_det_jacobian(x, t(x)), sum(x, {-1}));
  EXPECT_EQ(t.codomain().event_dim(), 1);
}

TEST(Transforms, GradientsFlowThroughForwardInverseAndLogDet) {
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& v) {
        const StickBreakingTransform t;
        const Tensor y = t(v[0]);
        return cat({y, t.log_abs_det_jacobian(v[0], y).unsqueeze(-1)}, -1);
      },
      {random_normal({2, 3}, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& v) {
        const AffineTransform t(v[1], v[2]);
        return t.inverse(t(v[0])) + t.log_abs_det_jacobian(v[0], t(v[0]));
      },
      {random_normal({4, 3}, true), random_normal({3}, true), uniform({4, 1}, 0.5, 2.0, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& v) {
        const LowerCholeskyTransform t;
        return t(v[0]) + t.log_abs_det_jacobian(v[0], t(v[0])).unsqueeze(-1).unsqueeze(-1);
      },
      {random_normal({2, 3, 3}, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& v) {
        const SoftplusTransform t;
        return t.inverse(v[0]);
      },
      {uniform({5}, 0.1, 3.0, true)});
}

TEST(Transforms, BijectToLandsInsideEachConstraint) {
  const Tensor lo = tensor({-1.0, 0.0, 2.0}, f64());
  const Tensor hi = tensor({1.0, 0.5, 10.0}, f64());
  const std::vector<constraints::Constraint> cs = {
      constraints::real,
      constraints::real_vector,
      constraints::positive,
      constraints::nonnegative,
      constraints::greater_than(2.0),
      constraints::greater_than_eq(-1.0),
      constraints::unit_interval,
      constraints::interval(-2.0, 5.0),
      constraints::interval(lo, hi),
      constraints::positive.independent(1),
      constraints::simplex,
      constraints::lower_cholesky,
  };
  for (const auto& c : cs) {
    const Transform t = transforms::biject_to(c);
    EXPECT_EQ(t.event_dim(), c.event_dim()) << c.name();
    EXPECT_EQ(t.codomain().kind(), c.kind()) << c.name();
    // An unconstrained input of a shape that fits the constraint's event dims.
    Shape shape = {50, 3};
    if (c.kind() == constraints::Kind::LowerCholesky) shape = {50, 3, 3};
    const Tensor x = random_normal(shape) * 3.0;
    const Tensor y = t(x);
    EXPECT_TRUE(all(c.check(y))) << c.name() << " via " << t.name();
    if (t.bijective()) expect_close(t(t.inverse(y)), y, 1e-7, 1e-9);
  }
  // Tensor bounds are used as tensors: the output follows them per element.
  const Tensor y = transforms::biject_to(constraints::interval(lo, hi))(zeros({3}, f64()));
  expect_values(y, {0.0, 0.25, 6.0});
}

TEST(Transforms, BijectToNamesConstraintsWithoutOne) {
  EMBER_EXPECT_THROW_WITH(transforms::biject_to(constraints::boolean), ValueError, "biject_to",
                          "boolean");
  EMBER_EXPECT_THROW_WITH(transforms::biject_to(constraints::nonnegative_integer), ValueError,
                          "nonnegative_integer", "discrete");
  EMBER_EXPECT_THROW_WITH(transforms::biject_to(constraints::integer_interval(0, 3)), ValueError,
                          "integer_interval");
  EMBER_EXPECT_THROW_WITH(transforms::biject_to(constraints::positive_definite), ValueError,
                          "positive_definite");
  EMBER_EXPECT_THROW_WITH(Transform().forward(zeros({1})), ValueError, "undefined");
}
