// Exponential: reference log-densities (SciPy), fused partials against finite differences,
// pathwise draws by moments and a KS test, closed-form moments, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double exponential_cdf(double x, double rate) { return x <= 0 ? 0.0 : -std::expm1(-rate * x); }

}  // namespace

TEST(Exponential, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "Exponential", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::Exponential(scalar_tensor(c.scalar("rate"), o));
      });
}

TEST(Exponential, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against rate (4, 1), then against rate (3).
  const Tensor value = uniform({4, 3}, 0.05, 3.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Exponential(x[1]).log_prob(x[0]); },
      {value, uniform({4, 1}, 0.5, 2.0, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Exponential(x[1]).log_prob(x[0]); },
      {value, uniform({3}, 0.5, 2.0, true)});
}

TEST(Exponential, RsampleGradientsMatchFiniteDifferences) {
  const Tensor rate = uniform({5}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::Exponential(x[0]).rsample({3}, gen);
      },
      {rate});
}

TEST(Exponential, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double rate = 2.5;
  const dist::Exponential d(scalar_tensor(rate, f64()));
  const auto xs = d.sample({20000}, gen).to_vector<double>();
  double m = 0, v = 0;
  for (double x : xs) {
    EXPECT_GT(x, 0.0);
    m += x;
  }
  m /= xs.size();
  for (double x : xs) v += (x - m) * (x - m);
  v /= xs.size() - 1;
  const double var = 1 / (rate * rate);
  EXPECT_NEAR(m, 1 / rate, 4 * std::sqrt(var / xs.size()));
  EXPECT_NEAR(v, var, 0.1 * var);
  EXPECT_LT(ks_statistic(xs, [&](double x) { return exponential_cdf(x, rate); }),
            ks_critical_001(xs.size()));
  // float32 draws pass the same test.
  const dist::Exponential f(rate);
  EXPECT_EQ(f.dtype(), kFloat32);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return exponential_cdf(x, rate); }),
            ks_critical_001(ys.size()));
}

TEST(Exponential, MomentsAndEntropyAreClosedForm) {
  // SciPy's expon(scale=1/rate) mean, var and entropy.
  const dist::Exponential d(tensor({0.5, 4.0}, f64()));
  expect_values(d.mean(), {2.0, 0.25});
  expect_values(d.variance(), {4.0, 0.0625});
  expect_values(d.entropy(), {1.6931471805599454, -0.3862943611198906});
}

TEST(Exponential, ShapesAndExpand) {
  const dist::Exponential d(ones({3, 1}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 1}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(d.log_prob(ones({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.rate().shape(), (Shape{3, 1}));
  const dist::Distribution x = d.expand({3, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{3, 5}));
  EXPECT_EQ(x.rsample({7}).shape(), (Shape{7, 3, 5}));
  EXPECT_EQ(x.variance().shape(), (Shape{3, 5}));
}

TEST(Exponential, InvalidArgumentsAndValuesOutsideTheSupport) {
  EMBER_EXPECT_THROW_WITH(dist::Exponential(-1.0), ValueError, "Exponential", "rate", "positive",
                          "-1");
  EMBER_EXPECT_THROW_WITH(dist::Exponential(tensor({1.0, 0.0})), ValueError, "rate", "[1]");
  const dist::Exponential d(1.0);
  EXPECT_NO_THROW(d.log_prob(tensor({0.0})));
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({2.0, -1.5})), ValueError, "Exponential.log_prob",
                          "nonnegative", "-1.5", "[1]");
  // Without validation the kernel gives -inf there, with zero partials.
  set_validation_enabled(false);
  const Tensor rate = scalar_tensor(1.0, f64(true));
  const Tensor lp = dist::Exponential(rate).log_prob(tensor({-1.0}, f64()));
  set_validation_enabled(true);
  EXPECT_EQ(lp.item(), -INFINITY);
  sum(lp).backward();
  EXPECT_EQ(rate.grad().item(), 0.0);
}
