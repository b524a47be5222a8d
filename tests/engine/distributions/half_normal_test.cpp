// HalfNormal: reference log-densities (SciPy), fused partials against finite differences,
// pathwise draws by moments and a KS test, closed-form moments, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double half_normal_cdf(double x, double scale) {
  return x <= 0 ? 0.0 : std::erf(x / (scale * std::sqrt(2.0)));
}

}  // namespace

TEST(HalfNormal, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "HalfNormal", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::HalfNormal(scalar_tensor(c.scalar("scale"), o));
      });
}

TEST(HalfNormal, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against scale (4, 1), then against scale (3).
  const Tensor value = uniform({4, 3}, 0.1, 3.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::HalfNormal(x[1]).log_prob(x[0]); },
      {value, uniform({4, 1}, 0.5, 2.0, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::HalfNormal(x[1]).log_prob(x[0]); },
      {value, uniform({3}, 0.5, 2.0, true)});
}

TEST(HalfNormal, RsampleGradientsMatchFiniteDifferences) {
  const Tensor scale = uniform({5}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::HalfNormal(x[0]).rsample({3}, gen);
      },
      {scale});
}

TEST(HalfNormal, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double scale = 1.7;
  const dist::HalfNormal d(scalar_tensor(scale, f64()));
  const auto xs = d.sample({20000}, gen).to_vector<double>();
  double m = 0, v = 0;
  for (double x : xs) {
    EXPECT_GE(x, 0.0);
    m += x;
  }
  m /= xs.size();
  for (double x : xs) v += (x - m) * (x - m);
  v /= xs.size() - 1;
  const double var = scale * scale * (1 - 2 / M_PI);
  EXPECT_NEAR(m, scale * std::sqrt(2 / M_PI), 4 * std::sqrt(var / xs.size()));
  EXPECT_NEAR(v, var, 0.05 * var);
  EXPECT_LT(ks_statistic(xs, [&](double x) { return half_normal_cdf(x, scale); }),
            ks_critical_001(xs.size()));
  // float32 draws pass the same test.
  const dist::HalfNormal f(scale);
  EXPECT_EQ(f.dtype(), kFloat32);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return half_normal_cdf(x, scale); }),
            ks_critical_001(ys.size()));
}

TEST(HalfNormal, MomentsAndEntropyAreClosedForm) {
  // SciPy's halfnorm(scale=scale) mean, var and entropy.
  const dist::HalfNormal d(tensor({0.5, 3.0}, f64()));
  expect_values(d.mean(), {0.3989422804014327, 2.3936536824085963});
  expect_values(d.variance(), {0.09084505690810465, 3.270422048691768});
  expect_values(d.entropy(), {0.0326441720847821, 1.8244036413128373});
}

TEST(HalfNormal, ShapesAndExpand) {
  const dist::HalfNormal d(ones({3, 1}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 1}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(d.log_prob(ones({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.scale().shape(), (Shape{3, 1}));
  const dist::Distribution x = d.expand({3, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{3, 5}));
  EXPECT_EQ(x.rsample({7}).shape(), (Shape{7, 3, 5}));
  EXPECT_EQ(x.mean().shape(), (Shape{3, 5}));
}

TEST(HalfNormal, InvalidArgumentsAndValuesOutsideTheSupport) {
  EMBER_EXPECT_THROW_WITH(dist::HalfNormal(-1.0), ValueError, "HalfNormal", "scale", "positive",
                          "-1");
  EMBER_EXPECT_THROW_WITH(dist::HalfNormal(tensor({1.0, 0.0})), ValueError, "scale", "[1]");
  const dist::HalfNormal d(1.0);
  EXPECT_NO_THROW(d.log_prob(tensor({0.0})));  // 0 is in the support
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({1.0, -0.5})), ValueError, "HalfNormal.log_prob",
                          "nonnegative", "-0.5", "[1]");
  // Without validation the kernel gives -inf there, with zero partials.
  set_validation_enabled(false);
  const Tensor scale = scalar_tensor(1.0, f64(true));
  const Tensor lp = dist::HalfNormal(scale).log_prob(tensor({-1.0}, f64()));
  set_validation_enabled(true);
  EXPECT_EQ(lp.item(), -INFINITY);
  sum(lp).backward();
  EXPECT_EQ(scale.grad().item(), 0.0);
}
