// Cauchy: reference log-densities (SciPy), fused partials against finite differences,
// pathwise draws by quantiles and a KS test, entropy, the missing moments, shapes and
// validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double cauchy_cdf(double x, double loc, double scale) {
  return 0.5 + std::atan((x - loc) / scale) / M_PI;
}

}  // namespace

TEST(Cauchy, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "Cauchy", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::Cauchy(scalar_tensor(c.scalar("loc"), o), scalar_tensor(c.scalar("scale"), o));
      });
}

TEST(Cauchy, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against loc (3) and scale (4, 1).
  const Tensor value = random_normal({4, 3}, true);
  const Tensor loc = random_normal({3}, true);
  const Tensor scale = uniform({4, 1}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Cauchy(x[1], x[2]).log_prob(x[0]); },
      {value, loc, scale});
}

TEST(Cauchy, RsampleGradientsMatchFiniteDifferences) {
  const Tensor loc = random_normal({5}, true);
  const Tensor scale = uniform({5}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::Cauchy(x[0], x[1]).rsample({3}, gen);
      },
      {loc, scale});
}

TEST(Cauchy, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double loc = -1.0, scale = 2.5;
  const dist::Cauchy d(scalar_tensor(loc, f64()), scalar_tensor(scale, f64()));
  auto xs = d.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(xs, [&](double x) { return cauchy_cdf(x, loc, scale); }),
            ks_critical_001(xs.size()));
  // No moments: the median and quartiles are loc and loc -+ scale.
  std::sort(xs.begin(), xs.end());
  const std::size_t n = xs.size();
  EXPECT_NEAR(xs[n / 2], loc, 0.1);
  EXPECT_NEAR(xs[n / 4], loc - scale, 0.15);
  EXPECT_NEAR(xs[3 * n / 4], loc + scale, 0.15);
  // float32 draws pass the same test.
  const dist::Cauchy f(loc, scale);
  EXPECT_EQ(f.dtype(), kFloat32);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return cauchy_cdf(x, loc, scale); }),
            ks_critical_001(ys.size()));
}

TEST(Cauchy, EntropyIsClosedFormAndMomentsAreUndefined) {
  // SciPy's cauchy(loc, scale).entropy().
  const dist::Cauchy d(tensor({1.0, -2.0}, f64()), tensor({0.5, 3.0}, f64()));
  expect_values(d.entropy(), {1.8378770664093453, 3.6296365356374007});
  EMBER_EXPECT_THROW_WITH(d.mean(), ValueError, "Cauchy", "mean", "undefined");
  EMBER_EXPECT_THROW_WITH(d.variance(), ValueError, "Cauchy", "variance", "undefined");
  EMBER_EXPECT_THROW_WITH(d.stddev(), ValueError, "Cauchy", "variance");
}

TEST(Cauchy, ShapesAndExpand) {
  const dist::Cauchy d(zeros({3, 1}), ones({4}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.log_prob(zeros({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.scale().shape(), (Shape{4}));
  const dist::Distribution x = dist::Cauchy(0.0, 1.0).expand({2, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{2, 5}));
  EXPECT_EQ(x.rsample({7}).shape(), (Shape{7, 2, 5}));
  EXPECT_EQ(x.to_event(1).log_prob(zeros({2, 5})).shape(), (Shape{2}));
}

TEST(Cauchy, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Cauchy(0.0, -1.0), ValueError, "Cauchy", "scale", "positive", "-1");
  EMBER_EXPECT_THROW_WITH(dist::Cauchy(zeros({2}), tensor({1.0, 0.0})), ValueError, "scale", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Cauchy(zeros({2}), ones({3})), ShapeError, "Cauchy", "(2)", "(3)");
  const dist::Cauchy d(0.0, 1.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({NAN})), ValueError, "Cauchy.log_prob", "support");
}
