// Uniform: reference log-densities (SciPy), fused partials against finite differences,
// pathwise draws by moments and a KS test, closed-form moments, the parameter-dependent
// support, shapes and validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double uniform_cdf(double x, double low, double high) {
  return std::clamp((x - low) / (high - low), 0.0, 1.0);
}

}  // namespace

TEST(Uniform, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "Uniform", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::Uniform(scalar_tensor(c.scalar("low"), o), scalar_tensor(c.scalar("high"), o));
      });
}

TEST(Uniform, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against low (3) and high (4, 1), values inside every interval.
  const Tensor value = uniform({4, 3}, -0.9, 0.9, true);
  const Tensor low = uniform({3}, -2.0, -1.0, true);
  const Tensor high = uniform({4, 1}, 1.0, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Uniform(x[1], x[2]).log_prob(x[0]); },
      {value, low, high});
}

TEST(Uniform, RsampleGradientsMatchFiniteDifferences) {
  const Tensor low = uniform({5}, -2.0, -1.0, true);
  const Tensor high = uniform({5}, 0.0, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::Uniform(x[0], x[1]).rsample({3}, gen);
      },
      {low, high});
}

TEST(Uniform, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double low = -1.5, high = 4.0;
  const dist::Uniform d(scalar_tensor(low, f64()), scalar_tensor(high, f64()));
  const auto xs = d.sample({20000}, gen).to_vector<double>();
  double m = 0, v = 0;
  for (double x : xs) {
    EXPECT_GT(x, low);
    EXPECT_LT(x, high);
    m += x;
  }
  m /= xs.size();
  for (double x : xs) v += (x - m) * (x - m);
  v /= xs.size() - 1;
  const double var = (high - low) * (high - low) / 12;
  EXPECT_NEAR(m, 0.5 * (low + high), 4 * std::sqrt(var / xs.size()));
  EXPECT_NEAR(v, var, 0.05 * var);
  EXPECT_LT(ks_statistic(xs, [&](double x) { return uniform_cdf(x, low, high); }),
            ks_critical_001(xs.size()));
  // float32 draws pass the same test.
  const dist::Uniform f(low, high);
  EXPECT_EQ(f.dtype(), kFloat32);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return uniform_cdf(x, low, high); }),
            ks_critical_001(ys.size()));
}

TEST(Uniform, MomentsAndEntropyAreClosedForm) {
  // SciPy's uniform(low, high - low) mean, var and entropy.
  const dist::Uniform d(tensor({0.0, -2.0}, f64()), tensor({1.0, 3.0}, f64()));
  expect_values(d.mean(), {0.5, 0.5});
  expect_values(d.variance(), {0.08333333333333333, 2.083333333333333});
  expect_values(d.entropy(), {0.0, 1.6094379124341003});
}

TEST(Uniform, SupportIsTheIntervalOfEachBatchElement) {
  const dist::Uniform d(tensor({0.0, 10.0}, f64()), tensor({1.0, 20.0}, f64()));
  EXPECT_EQ(d.support().kind(), constraints::Kind::Interval);
  EXPECT_EQ(values(d.support().check(tensor({0.5, 15.0}, f64()))), (std::vector<double>{1, 1}));
  EXPECT_EQ(values(d.support().check(tensor({5.0, 5.0}, f64()))), (std::vector<double>{0, 0}));
  // The bounds themselves are in the support.
  expect_values(d.log_prob(tensor({0.0, 20.0}, f64())), {0.0, -std::log(10.0)});
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({0.5, 5.0}, f64())), ValueError, "Uniform.log_prob",
                          "interval", "5", "[1]");
  // Without validation the kernel gives -inf outside, with zero partials.
  set_validation_enabled(false);
  const Tensor low = scalar_tensor(0.0, f64(true));
  const Tensor lp = dist::Uniform(low, 1.0).log_prob(tensor({-0.5, 2.0}, f64()));
  set_validation_enabled(true);
  EXPECT_EQ(values(lp), (std::vector<double>{-INFINITY, -INFINITY}));
  sum(lp).backward();
  EXPECT_EQ(low.grad().item(), 0.0);
}

TEST(Uniform, ShapesAndExpand) {
  const dist::Uniform d(zeros({3, 1}), ones({4}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.log_prob(full({4}, 0.5)).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.low().shape(), (Shape{3, 1}));
  EXPECT_EQ(d.high().shape(), (Shape{4}));
  const dist::Distribution x = dist::Uniform(0.0, 1.0).expand({2, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{2, 5}));
  EXPECT_EQ(x.rsample({7}).shape(), (Shape{7, 2, 5}));
  EXPECT_EQ(x.log_prob(full({7, 2, 5}, 0.25)).shape(), (Shape{7, 2, 5}));
}

TEST(Uniform, InvalidArgumentsNameTheDistributionAndValues) {
  EMBER_EXPECT_THROW_WITH(dist::Uniform(1.0, 1.0), ValueError, "Uniform", "low", "less than high",
                          "low 1", "high 1");
  EMBER_EXPECT_THROW_WITH(dist::Uniform(zeros({2}), tensor({1.0, -1.0})), ValueError, "Uniform",
                          "low 0", "high -1", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Uniform(tensor({0.0, 3.0}).reshape({2, 1}), tensor({1.0, 2.0})),
                          ValueError, "low 3", "high 1", "[1, 0]");
  EMBER_EXPECT_THROW_WITH(dist::Uniform(zeros({2}), ones({3})), ShapeError, "Uniform", "(2)",
                          "(3)");
  set_validation_enabled(false);
  EXPECT_NO_THROW(dist::Uniform(1.0, 0.0));
  set_validation_enabled(true);
}
