// HalfCauchy: reference log-densities (SciPy), fused partials against finite differences,
// pathwise draws by a KS test, entropy and the infinite moments, shapes and validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double half_cauchy_cdf(double x, double scale) {
  return x <= 0 ? 0.0 : 2.0 * std::atan(x / scale) / M_PI;
}

}  // namespace

TEST(HalfCauchy, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "HalfCauchy", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::HalfCauchy(scalar_tensor(c.scalar("scale"), o));
      });
}

TEST(HalfCauchy, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against scale (4, 1), then against scale (3).
  const Tensor value = uniform({4, 3}, 0.1, 3.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::HalfCauchy(x[1]).log_prob(x[0]); },
      {value, uniform({4, 1}, 0.5, 2.0, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::HalfCauchy(x[1]).log_prob(x[0]); },
      {value, uniform({3}, 0.5, 2.0, true)});
}

TEST(HalfCauchy, RsampleGradientsMatchFiniteDifferences) {
  const Tensor scale = uniform({5}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::HalfCauchy(x[0]).rsample({3}, gen);
      },
      {scale});
}

TEST(HalfCauchy, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double scale = 0.8;
  const dist::HalfCauchy d(scalar_tensor(scale, f64()));
  auto xs = d.sample({20000}, gen).to_vector<double>();
  for (double x : xs) EXPECT_GE(x, 0.0);
  EXPECT_LT(ks_statistic(xs, [&](double x) { return half_cauchy_cdf(x, scale); }),
            ks_critical_001(xs.size()));
  std::sort(xs.begin(), xs.end());
  EXPECT_NEAR(xs[xs.size() / 2], scale, 0.05);  // the median is the scale
  // float32 draws pass the same test.
  const dist::HalfCauchy f(scale);
  EXPECT_EQ(f.dtype(), kFloat32);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return half_cauchy_cdf(x, scale); }),
            ks_critical_001(ys.size()));
}

TEST(HalfCauchy, EntropyIsClosedFormAndMomentsAreInfinite) {
  // SciPy's halfcauchy(scale=scale).entropy().
  const dist::HalfCauchy d(tensor({0.5, 3.0}, f64()));
  expect_values(d.entropy(), {1.1447298858494, 2.9364893550774553});
  expect_values(d.mean(), {INFINITY, INFINITY});
  expect_values(d.variance(), {INFINITY, INFINITY});
}

TEST(HalfCauchy, ShapesAndExpand) {
  const dist::HalfCauchy d(ones({3, 1}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 1}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(d.log_prob(ones({4})).shape(), (Shape{3, 4}));
  const dist::Distribution x = d.expand({3, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{3, 5}));
  EXPECT_EQ(x.rsample({7}).shape(), (Shape{7, 3, 5}));
  EXPECT_EQ(x.mean().shape(), (Shape{3, 5}));
  EXPECT_EQ(x.entropy().shape(), (Shape{3, 5}));
}

TEST(HalfCauchy, InvalidArgumentsAndValuesOutsideTheSupport) {
  EMBER_EXPECT_THROW_WITH(dist::HalfCauchy(0.0), ValueError, "HalfCauchy", "scale", "positive",
                          "0");
  EMBER_EXPECT_THROW_WITH(dist::HalfCauchy(tensor({1.0, -3.0})), ValueError, "scale", "-3", "[1]");
  const dist::HalfCauchy d(1.0);
  EXPECT_NO_THROW(d.log_prob(tensor({0.0})));
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({-0.25})), ValueError, "HalfCauchy.log_prob",
                          "nonnegative", "-0.25");
  // Without validation the kernel gives -inf there, with zero partials.
  set_validation_enabled(false);
  const Tensor scale = scalar_tensor(1.0, f64(true));
  const Tensor lp = dist::HalfCauchy(scale).log_prob(tensor({-1.0}, f64()));
  set_validation_enabled(true);
  EXPECT_EQ(lp.item(), -INFINITY);
  sum(lp).backward();
  EXPECT_EQ(scale.grad().item(), 0.0);
}
