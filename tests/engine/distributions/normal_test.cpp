// Normal: reference log-densities (SciPy), fused partials against finite differences,
// pathwise draws by moments and a KS test, shapes, validation, and the shared wrappers
// (to_event, expand, mask) and generator behaviour exercised through it.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double normal_cdf(double x, double loc, double scale) {
  return 0.5 * std::erfc(-(x - loc) / (scale * std::sqrt(2.0)));
}

}  // namespace

TEST(Normal, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "Normal", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::Normal(scalar_tensor(c.scalar("loc"), o), scalar_tensor(c.scalar("scale"), o));
      });
}

TEST(Normal, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against loc (3) and scale (4, 1).
  const Tensor value = random_normal({4, 3}, true);
  const Tensor loc = random_normal({3}, true);
  const Tensor scale = uniform({4, 1}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Normal(x[1], x[2]).log_prob(x[0]); },
      {value, loc, scale});
}

TEST(Normal, RsampleGradientsMatchFiniteDifferences) {
  const Tensor loc = random_normal({5}, true);
  const Tensor scale = uniform({5}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(7);  // the same noise on every evaluation
        return dist::Normal(x[0], x[1]).rsample({3}, gen);
      },
      {loc, scale});
}

TEST(Normal, DrawsHaveTheRightDistribution) {
  Generator gen(1234);
  const double loc = 1.5, scale = 0.7;
  const dist::Normal d(scalar_tensor(loc, f64()), scalar_tensor(scale, f64()));
  const auto xs = d.sample({20000}, gen).to_vector<double>();
  double m = 0, v = 0;
  for (double x : xs) m += x;
  m /= xs.size();
  for (double x : xs) v += (x - m) * (x - m);
  v /= xs.size() - 1;
  EXPECT_NEAR(m, loc, 4 * scale / std::sqrt(xs.size()));
  EXPECT_NEAR(v, scale * scale, 0.05 * scale * scale);
  EXPECT_LT(ks_statistic(xs, [&](double x) { return normal_cdf(x, loc, scale); }),
            ks_critical_001(xs.size()));
  // float32 draws pass the same test.
  const dist::Normal f(loc, scale);
  const auto ys = f.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(ys, [&](double x) { return normal_cdf(x, loc, scale); }),
            ks_critical_001(ys.size()));
}

TEST(Normal, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  Generator a(42), b(42), c(43);
  const dist::Normal d(0.0, 1.0);
  const auto xa = d.sample({100}, a).to_vector<double>();
  const auto xb = d.sample({100}, b).to_vector<double>();
  const auto xc = d.sample({100}, c).to_vector<double>();
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa, xc);
  // Successive draws from one generator differ (the offset advances).
  EXPECT_NE(d.sample({100}, a).to_vector<double>(), xa);
  // set_rng_seed makes the thread's default stream reproducible.
  set_rng_seed(5);
  const auto s1 = d.sample({10}).to_vector<double>();
  set_rng_seed(5);
  EXPECT_EQ(d.sample({10}).to_vector<double>(), s1);
  // A fork is reproducible and differs from its parent's draws.
  Generator p1(9), p2(9);
  Generator f1 = p1.fork(), f2 = p2.fork();
  EXPECT_EQ(d.sample({10}, f1).to_vector<double>(), d.sample({10}, f2).to_vector<double>());
  EXPECT_NE(d.sample({10}, p1).to_vector<double>(), d.sample({10}, f1).to_vector<double>());
}

TEST(Normal, ShapesFollowSampleBatchEvent) {
  const dist::Normal d(zeros({3, 1}), ones({4}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.event_shape(), Shape{});
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.rsample().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.log_prob(zeros({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.mean().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3, 4}));

  const dist::Distribution e = d.to_event(1);
  EXPECT_EQ(e.batch_shape(), (Shape{3}));
  EXPECT_EQ(e.event_shape(), (Shape{4}));
  EXPECT_EQ(e.log_prob(zeros({3, 4})).shape(), (Shape{3}));
  expect_close(e.log_prob(zeros({3, 4})), sum(d.log_prob(zeros({3, 4})), {-1}));
  EXPECT_EQ(d.to_event().event_shape(), (Shape{3, 4}));

  const dist::Distribution x = dist::Normal(0.0, 1.0).expand({2, 5});
  EXPECT_EQ(x.batch_shape(), (Shape{2, 5}));
  const Tensor draws = x.sample({1000});
  EXPECT_EQ(draws.shape(), (Shape{1000, 2, 5}));
  // Expanded elements are independent draws, not copies.
  EXPECT_NE(draws.select(2, 0).to_vector<double>(), draws.select(2, 1).to_vector<double>());
  EMBER_EXPECT_THROW_WITH(d.to_event(3), ShapeError, "to_event(3)", "(3, 4)");
}

TEST(Normal, MaskZeroesLogProb) {
  const dist::Normal d(zeros({3}), ones({3}));
  const Tensor mask =
      from_vector(std::vector<std::uint8_t>{1, 0, 1}, {3}, TensorOptions{}.with_dtype(kBool));
  const auto lp = d.mask(mask).log_prob(ones({3})).to_vector<double>();
  EXPECT_NEAR(lp[0], -0.5 - 0.5 * std::log(2 * M_PI), 1e-6);
  EXPECT_EQ(lp[1], 0.0);
  EXPECT_EQ(d.mask(false).log_prob(ones({3})).to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

TEST(Normal, MomentsAndEntropyAreClosedForm) {
  const dist::Normal d(tensor({1.0, -2.0}, f64()), tensor({0.5, 3.0}, f64()));
  expect_values(d.mean(), {1.0, -2.0});
  expect_values(d.variance(), {0.25, 9.0});
  expect_values(d.stddev(), {0.5, 3.0});
  expect_values(d.entropy(),
                {0.5 * std::log(2 * M_PI * M_E * 0.25), 0.5 * std::log(2 * M_PI * M_E * 9.0)});
}

TEST(Normal, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Normal(0.0, -1.0), ValueError, "Normal", "scale", "positive", "-1");
  EMBER_EXPECT_THROW_WITH(dist::Normal(zeros({2}), tensor({1.0, 0.0})), ValueError, "scale", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Normal(zeros({2}), ones({3})), ShapeError, "Normal", "(2)", "(3)");
  const dist::Normal d(0.0, 1.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({NAN})), ValueError, "Normal.log_prob", "support");
  // With validation off, no checks run (and no device sync is paid).
  set_validation_enabled(false);
  EXPECT_NO_THROW(dist::Normal(0.0, -1.0));
  set_validation_enabled(true);
  EMBER_EXPECT_THROW_WITH(d.enumerate_support(), ValueError, "Normal", "enumerate_support");
}
