// Laplace: reference log-densities (SciPy), fused partials against finite differences,
// inverse-CDF draws by moments and a KS test, closed-form moments, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double laplace_cdf(double x, double loc, double scale) {
  const double z = (x - loc) / scale;
  return z < 0 ? 0.5 * std::exp(z) : 1.0 - 0.5 * std::exp(-z);
}

}  // namespace

TEST(Laplace, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference("Laplace", [](const ReferenceCase& c,
                                                        const TensorOptions& o) {
    return dist::Laplace(scalar_tensor(c.scalar("loc"), o), scalar_tensor(c.scalar("scale"), o));
  });
}

TEST(Laplace, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against loc (3) and scale (4, 1); values stay off the kink.
  const Tensor value = random_normal({4, 3}, true);
  const Tensor loc = random_normal({3}, true);
  const Tensor scale = uniform({4, 1}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Laplace(x[1], x[2]).log_prob(x[0]); },
      {value, loc, scale});
}

TEST(Laplace, RsampleGradientsMatchFiniteDifferences) {
  const Tensor loc = random_normal({5}, true);
  const Tensor scale = uniform({5}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::Laplace(x[0], x[1]).rsample({3}, gen);
      },
      {loc, scale});
}

TEST(Laplace, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double loc = 1.5, scale = 0.7;
  const dist::Laplace d(scalar_tensor(loc, f64()), scalar_tensor(scale, f64()));
  const auto xs = d.sample({20000}, gen).to_vector<double>();
  double m = 0, v = 0;
  for (double x : xs) m += x;
  m /= xs.size();
  for (double x : xs) v += (x - m) * (x - m);
  v /= xs.size() - 1;
  const double var = 2 * scale * scale;
  EXPECT_NEAR(m, loc, 4 * std::sqrt(var / xs.size()));
  EXPECT_NEAR(v, var, 0.08 * var);
  EXPECT_LT(ks_statistic(xs, [&](double x) { return laplace_cdf(x, loc, scale); }),
            ks_critical_001(xs.size()));
  // float32 draws pass the same test.
  const dist::Laplace f(loc, scale);
  EXPECT_EQ(f.dtype(), kFloat32);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return laplace_cdf(x, loc, scale); }),
            ks_critical_001(ys.size()));
}

TEST(Laplace, MomentsAndEntropyAreClosedForm) {
  // SciPy's laplace(loc, scale) mean, var and entropy.
  const dist::Laplace d(tensor({1.0, -2.0}, f64()), tensor({0.5, 3.0}, f64()));
  expect_values(d.mean(), {1.0, -2.0});
  expect_values(d.variance(), {0.5, 18.0});
  expect_values(d.entropy(), {1.0, 2.7917594692280554});
}

TEST(Laplace, ShapesAndExpand) {
  const dist::Laplace d(zeros({3, 1}), ones({4}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.log_prob(zeros({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.mean().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.loc().shape(), (Shape{3, 1}));
  const dist::Distribution x = dist::Laplace(0.0, 1.0).expand({2, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{2, 5}));
  EXPECT_EQ(x.rsample({7}).shape(), (Shape{7, 2, 5}));
}

TEST(Laplace, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Laplace(0.0, -2.0), ValueError, "Laplace", "scale", "positive",
                          "-2");
  EMBER_EXPECT_THROW_WITH(dist::Laplace(zeros({2}), tensor({1.0, 0.0})), ValueError, "scale",
                          "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Laplace(zeros({2}), ones({3})), ShapeError, "Laplace", "(2)",
                          "(3)");
  const dist::Laplace d(0.0, 1.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({NAN})), ValueError, "Laplace.log_prob", "support");
}
