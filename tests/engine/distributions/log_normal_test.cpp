// LogNormal: reference log-densities (SciPy), fused partials against finite differences,
// pathwise draws by moments and a KS test, closed-form moments, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double log_normal_cdf(double x, double loc, double scale) {
  return x <= 0 ? 0.0 : 0.5 * std::erfc(-(std::log(x) - loc) / (scale * std::sqrt(2.0)));
}

}  // namespace

TEST(LogNormal, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference("LogNormal", [](const ReferenceCase& c,
                                                          const TensorOptions& o) {
    return dist::LogNormal(scalar_tensor(c.scalar("loc"), o), scalar_tensor(c.scalar("scale"), o));
  });
}

TEST(LogNormal, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against loc (3) and scale (4, 1).
  const Tensor value = uniform({4, 3}, 0.2, 3.0, true);
  const Tensor loc = random_normal({3}, true);
  const Tensor scale = uniform({4, 1}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::LogNormal(x[1], x[2]).log_prob(x[0]); },
      {value, loc, scale});
}

TEST(LogNormal, RsampleGradientsMatchFiniteDifferences) {
  const Tensor loc = random_normal({5}, true);
  const Tensor scale = uniform({5}, 0.5, 1.5, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::LogNormal(x[0], x[1]).rsample({3}, gen);
      },
      {loc, scale});
}

TEST(LogNormal, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double loc = 0.3, scale = 0.4;
  const dist::LogNormal d(scalar_tensor(loc, f64()), scalar_tensor(scale, f64()));
  const auto xs = d.sample({20000}, gen).to_vector<double>();
  double m = 0, v = 0;
  for (double x : xs) {
    EXPECT_GT(x, 0.0);
    m += x;
  }
  m /= xs.size();
  for (double x : xs) v += (x - m) * (x - m);
  v /= xs.size() - 1;
  const double mean = std::exp(loc + 0.5 * scale * scale);
  const double var = std::expm1(scale * scale) * mean * mean;
  EXPECT_NEAR(m, mean, 4 * std::sqrt(var / xs.size()));
  EXPECT_NEAR(v, var, 0.08 * var);
  EXPECT_LT(ks_statistic(xs, [&](double x) { return log_normal_cdf(x, loc, scale); }),
            ks_critical_001(xs.size()));
  // float32 draws pass the same test.
  const dist::LogNormal f(loc, scale);
  EXPECT_EQ(f.dtype(), kFloat32);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return log_normal_cdf(x, loc, scale); }),
            ks_critical_001(ys.size()));
}

TEST(LogNormal, MomentsAndEntropyAreClosedForm) {
  // SciPy's lognorm(s=scale, scale=exp(loc)) mean, var and entropy.
  const dist::LogNormal d(tensor({0.5, -1.0}, f64()), tensor({0.3, 1.2}, f64()));
  expect_values(d.mean(), {1.7246083823764355, 0.7557837414557255});
  expect_values(d.variance(), {0.2801001303266057, 1.8396906425683945});
  expect_values(d.entropy(), {0.7149657288787366, 0.6012600899986273});
}

TEST(LogNormal, ShapesAndExpand) {
  const dist::LogNormal d(zeros({3, 1}), ones({4}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.log_prob(ones({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.mean().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.loc().shape(), (Shape{3, 1}));
  const dist::Distribution x = dist::LogNormal(0.0, 1.0).expand({2, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{2, 5}));
  EXPECT_EQ(x.rsample({7}).shape(), (Shape{7, 2, 5}));
  EXPECT_EQ(x.name(), "LogNormal");
}

TEST(LogNormal, InvalidArgumentsAndValuesOutsideTheSupport) {
  EMBER_EXPECT_THROW_WITH(dist::LogNormal(0.0, -1.0), ValueError, "LogNormal", "scale", "positive",
                          "-1");
  EMBER_EXPECT_THROW_WITH(dist::LogNormal(zeros({2}), tensor({1.0, 0.0})), ValueError, "scale",
                          "[1]");
  const dist::LogNormal d(0.0, 1.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({1.0, 0.0})), ValueError, "LogNormal.log_prob",
                          "positive", "[1]");
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({-2.0})), ValueError, "LogNormal.log_prob", "-2");
  // Without validation the kernel gives -inf there, with zero partials.
  set_validation_enabled(false);
  const Tensor loc = scalar_tensor(0.0, f64(true));
  const Tensor lp = dist::LogNormal(loc, 1.0).log_prob(tensor({-1.0, 0.0}, f64()));
  set_validation_enabled(true);
  EXPECT_EQ(values(lp), (std::vector<double>{-INFINITY, -INFINITY}));
  sum(lp).backward();
  EXPECT_EQ(loc.grad().item(), 0.0);
}
