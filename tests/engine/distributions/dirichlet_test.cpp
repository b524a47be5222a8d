// Dirichlet: reference log-densities (SciPy), gradients of the composed log-density against
// finite differences, normalized Gamma draws by their moments, pathwise gradients against
// derivatives of the known mean, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(Dirichlet, LogProbMatchesSciPy) {
  for (const auto& c : reference_cases("Dirichlet")) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      const auto k = static_cast<std::int64_t>(c.value.size());
      const dist::Dirichlet d(from_vector(c.param("concentration"), {k}, o));
      const double lp = d.log_prob(from_vector(c.value, {k}, o)).item();
      EXPECT_NEAR(lp, c.log_prob, (dtype == kFloat64 ? 1e-12 : 1e-5) * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

TEST(Dirichlet, LogProbGradientsMatchFiniteDifferences) {
  // Value (2, 3) against concentration (4, 1, 3): batch (4, 2). Finite differences leave the
  // simplex by 1e-6, so validation is off for the check.
  Tensor raw = uniform({2, 3}, 0.2, 1.0);
  const Tensor value = (raw / sum(raw, {-1}, true)).detach().requires_grad_();
  const Tensor concentration = uniform({4, 1, 3}, 0.3, 4.0, true);
  set_validation_enabled(false);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Dirichlet(x[1]).log_prob(x[0]); },
      {value, concentration});
  set_validation_enabled(true);
}

TEST(Dirichlet, DrawsMatchTheMoments) {
  Generator gen(99);
  const std::vector<double> alpha{0.3, 2.0, 5.0};
  const double total = 7.3;
  const std::int64_t n = 40000;
  const Tensor draws = dist::Dirichlet(from_vector(alpha, {3}, f64())).sample({n}, gen);
  EXPECT_EQ(draws.shape(), (Shape{n, 3}));
  expect_close(sum(draws, {-1}), ones({n}, f64()), 1e-12, 1e-12);
  const auto m = mean(draws, {0}).to_vector<double>();
  const auto centered = draws - mean(draws, {0}, true);
  const auto v = (sum(centered * centered, {0}) / static_cast<double>(n - 1)).to_vector<double>();
  const auto cov01 =
      (sum(centered.select(1, 0) * centered.select(1, 1)) / static_cast<double>(n - 1)).item();
  for (int k = 0; k < 3; ++k) {
    const double mk = alpha[k] / total;
    const double vk = mk * (1 - mk) / (total + 1);
    EXPECT_NEAR(m[k], mk, 4 * std::sqrt(vk / n)) << "component " << k;
    EXPECT_NEAR(v[k], vk, 0.05 * vk) << "component " << k;
  }
  const double c01 = -alpha[0] * alpha[1] / (total * total * (total + 1));
  EXPECT_NEAR(cov01, c01, 0.08 * std::abs(c01));
  // float32 draws lie on the simplex as well.
  const Tensor f = dist::Dirichlet(from_vector(alpha, {3})).sample({100}, gen);
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_TRUE(all(constraints::simplex.check(f)));
}

TEST(Dirichlet, PathwiseGradientsMatchDerivativesOfTheMean) {
  // d E[X_j] / d a_k = (delta_jk a0 - a_j) / a0^2, from per-draw gradients of X_0.
  const std::vector<double> alpha{0.4, 1.5, 3.0};
  const double a0 = 4.9;
  const std::int64_t n = 50000;
  Tensor a = from_vector(alpha, {1, 3}, f64()).expand({n, 3}).clone().requires_grad_();
  Generator gen(5);
  sum(dist::Dirichlet(a).rsample({}, gen).select(1, 0)).backward();
  const Tensor g = a.grad();
  for (int k = 0; k < 3; ++k) {
    const auto gk = g.select(1, k).to_vector<double>();
    double m = 0, s = 0;
    for (double x : gk) m += x;
    m /= n;
    for (double x : gk) s += (x - m) * (x - m);
    const double err = std::sqrt(s / (n - 1) / n);
    const double expected = ((k == 0 ? a0 : 0.0) - alpha[0]) / (a0 * a0);
    EXPECT_NEAR(m, expected, 4 * err) << "d/da_" << k;
  }
}

TEST(Dirichlet, ShapesFollowSampleBatchEvent) {
  const dist::Dirichlet d(ones({2, 4}));
  EXPECT_EQ(d.batch_shape(), (Shape{2}));
  EXPECT_EQ(d.event_shape(), (Shape{4}));
  EXPECT_EQ(d.sample({3}).shape(), (Shape{3, 2, 4}));
  EXPECT_EQ(d.log_prob(full({4}, 0.25)).shape(), (Shape{2}));
  EXPECT_EQ(d.mean().shape(), (Shape{2, 4}));
  EXPECT_EQ(d.variance().shape(), (Shape{2, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{2}));
  const dist::Distribution e = d.expand({5, 2});
  EXPECT_EQ(e.batch_shape(), (Shape{5, 2}));
  EXPECT_EQ(e.sample().shape(), (Shape{5, 2, 4}));
  EXPECT_EQ(d.concentration().shape(), (Shape{2, 4}));
}

TEST(Dirichlet, MomentsAndEntropyAreClosedForm) {
  const dist::Dirichlet d(tensor({0.5, 2.0, 4.0}, f64()));
  expect_values(d.mean(), {0.5 / 6.5, 2.0 / 6.5, 4.0 / 6.5});
  const auto var = [](double a) { return a * (6.5 - a) / (6.5 * 6.5 * 7.5); };
  expect_values(d.variance(), {var(0.5), var(2.0), var(4.0)});
  expect_values(d.entropy(), {-2.1961403447092005});  // SciPy
  expect_values(dist::Dirichlet(tensor({1.0, 1.0}, f64())).entropy(), {0.0}, 1e-6, 1e-12);
}

TEST(Dirichlet, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Dirichlet(tensor({1.0, -0.5})), ValueError, "Dirichlet",
                          "concentration", "positive", "-0.5");
  EMBER_EXPECT_THROW_WITH(dist::Dirichlet(1.0), ShapeError, "Dirichlet", "concentration");
  const dist::Dirichlet d(ones({3}));
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({0.5, 0.5, 0.5})), ValueError, "Dirichlet.log_prob",
                          "simplex");
}
