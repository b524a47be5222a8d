// Beta: reference log-densities (SciPy), fused partials against finite differences, draws
// X / (X + Y) of two Gamma draws by a KS test, pathwise gradients against derivatives of
// known expectations, moments, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "gamma_reference.hpp"
#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

std::pair<double, double> mean_and_error(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / (v.size() - 1) / v.size())};
}

}  // namespace

TEST(Beta, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "Beta", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::Beta(scalar_tensor(c.scalar("concentration1"), o),
                          scalar_tensor(c.scalar("concentration0"), o));
      });
}

TEST(Beta, LogProbAtTheBoundary) {
  // Beta(1, b) has density b at 0; Beta(a, 1) density a at 1; a < 1 makes 0 infinite.
  EXPECT_NEAR(dist::Beta(1.0, 3.0).log_prob(scalar_tensor(0.0, f64())).item(), std::log(3.0),
              1e-12);
  EXPECT_NEAR(dist::Beta(2.0, 1.0).log_prob(scalar_tensor(1.0, f64())).item(), std::log(2.0),
              1e-12);
  EXPECT_EQ(dist::Beta(0.5, 1.0).log_prob(scalar_tensor(0.0, f64())).item(), INFINITY);
  EXPECT_EQ(dist::Beta(2.0, 2.0).log_prob(scalar_tensor(1.0, f64())).item(), -INFINITY);
}

TEST(Beta, LogProbGradientsMatchFiniteDifferences) {
  const Tensor value = uniform({4, 3}, 0.05, 0.95, true);
  const Tensor c1 = uniform({3}, 0.3, 4.0, true);
  const Tensor c0 = uniform({4, 1}, 0.3, 4.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Beta(x[1], x[2]).log_prob(x[0]); },
      {value, c1, c0});
}

TEST(Beta, PathwiseGradientsMatchDerivativesOfExpectations) {
  // E[X] = a / (a + b): d/da = b / (a + b)^2, d/db = -a / (a + b)^2, from per-draw gradients
  // (each draw has its own parameter leaves) within 4 standard errors.
  for (auto [a, b] : {std::pair{0.2, 0.7}, std::pair{2.0, 5.0}, std::pair{30.0, 3.0}}) {
    const std::int64_t n = 50000;
    Tensor ta = full({n}, a, f64(true)), tb = full({n}, b, f64(true));
    Generator gen(31);
    sum(dist::Beta(ta, tb).rsample({}, gen)).backward();
    const auto [ma, ea] = mean_and_error(ta.grad().to_vector<double>());
    const auto [mb, eb] = mean_and_error(tb.grad().to_vector<double>());
    EXPECT_NEAR(ma, b / ((a + b) * (a + b)), 4 * ea) << "a " << a << ", b " << b;
    EXPECT_NEAR(mb, -a / ((a + b) * (a + b)), 4 * eb) << "a " << a << ", b " << b;
  }
}

TEST(Beta, DrawsHaveTheRightDistribution) {
  for (auto [a, b] :
       {std::pair{0.5, 0.5}, std::pair{2.0, 5.0}, std::pair{0.1, 3.0}, std::pair{40.0, 60.0}}) {
    Generator gen(77);
    const auto cdf = [&](double x) { return incomplete_beta(a, b, x); };
    const auto xs = dist::Beta(scalar_tensor(a, f64()), scalar_tensor(b, f64()))
                        .sample({20000}, gen)
                        .to_vector<double>();
    EXPECT_LT(ks_statistic(xs, cdf), ks_critical_001(xs.size())) << "a " << a << ", b " << b;
    const auto ys = dist::Beta(a, b).sample({20000}, gen).to_vector<double>();
    EXPECT_LT(ks_statistic(ys, cdf), ks_critical_001(ys.size())) << "float32, a " << a;
  }
}

TEST(Beta, ShapesFollowSampleBatchEvent) {
  const dist::Beta d(ones({3, 1}), ones({4}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.event_shape(), Shape{});
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.log_prob(full({4}, 0.5)).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.variance().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.expand({2, 3, 4}).rsample().shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.concentration1().shape(), (Shape{3, 1}));
  EXPECT_EQ(d.concentration0().shape(), (Shape{4}));
}

TEST(Beta, MomentsAndEntropyAreClosedForm) {
  const dist::Beta d(tensor({2.0, 0.5}, f64()), tensor({5.0, 0.7}, f64()));
  expect_values(d.mean(), {2.0 / 7.0, 0.5 / 1.2});
  expect_values(d.variance(), {10.0 / (49.0 * 8.0), 0.35 / (1.44 * 2.2)});
  expect_values(d.entropy(), {-0.48453071499548805, -0.19792388238665887});  // SciPy
}

TEST(Beta, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Beta(-1.0, 1.0), ValueError, "Beta", "concentration1", "positive",
                          "-1");
  EMBER_EXPECT_THROW_WITH(dist::Beta(1.0, tensor({1.0, 0.0})), ValueError, "concentration0", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Beta(ones({2}), ones({3})), ShapeError, "Beta", "(2)", "(3)");
  const dist::Beta d(2.0, 2.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({1.5})), ValueError, "Beta.log_prob", "support");
  set_validation_enabled(false);
  EXPECT_EQ(d.log_prob(tensor({1.5})).item(), -INFINITY);
  set_validation_enabled(true);
}
