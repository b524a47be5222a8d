// What the family table (families_test.cpp) leaves out of the continuous families: the
// generator's streams seen through Normal, the Cauchy quantiles that stand in for its
// missing moments, and Uniform's support, which depends on its parameters.
#include <algorithm>
#include <cmath>

#include "reference.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

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

// The draws of the table's KS test (the same seed), sorted.
std::vector<double> sorted_draws(const dist::Distribution& d) {
  Generator gen(1234);
  auto xs = d.sample({20000}, gen).to_vector<double>();
  std::sort(xs.begin(), xs.end());
  return xs;
}

TEST(Cauchy, DrawsHaveTheQuantilesOfTheMissingMoments) {
  // The median and quartiles are loc and loc -+ scale.
  const double loc = -1.0, scale = 2.5;
  const auto xs =
      sorted_draws(dist::Cauchy(scalar_tensor(loc, f64()), scalar_tensor(scale, f64())));
  const std::size_t n = xs.size();
  EXPECT_NEAR(xs[n / 2], loc, 0.1);
  EXPECT_NEAR(xs[n / 4], loc - scale, 0.15);
  EXPECT_NEAR(xs[3 * n / 4], loc + scale, 0.15);
}

TEST(HalfCauchy, DrawsHaveTheScaleForMedian) {
  const double scale = 0.8;
  const auto xs = sorted_draws(dist::HalfCauchy(scalar_tensor(scale, f64())));
  EXPECT_NEAR(xs[xs.size() / 2], scale, 0.05);
}

// Far in the tails z^2 overflows (float32 from |z| = 1.8e19, float64 from 1.3e154), which made
// the log-density -inf and the scale's partial -1 / scale. The values and partials by mpmath
// (60 digits) at the float32 value of 1e20 and at -+1e200 (loc 0, scale 1):
// -log(pi) - log(1 + z^2), plus log 2 for HalfCauchy; d/dx = -2z / (1 + z^2), d/dloc its
// negative, d/dscale = 2z^2 / (1 + z^2) - 1.
TEST(Cauchy, LogProbAndPartialsFarInTheTails) {
  const auto cauchy = [](const auto& p) { return dist::Cauchy(p[0], p[1]); };
  expect_log_prob_at(cauchy, kFloat32, {0.0, 1.0}, 1e20, -93.248133645692982,
                     {-1.9999999599182461e-20, 1.9999999599182461e-20, 1.0}, 1e-6, 1e-6);
  expect_log_prob_at(cauchy, kFloat64, {0.0, 1.0}, 1e200, -922.17876708346767,
                     {-2.0000000000000001e-200, 2.0000000000000001e-200, 1.0}, 1e-15, 1e-15);
  expect_log_prob_at(cauchy, kFloat64, {0.0, 1.0}, -1e200, -922.17876708346767,
                     {2.0000000000000001e-200, -2.0000000000000001e-200, 1.0}, 1e-15, 1e-15);
}

TEST(HalfCauchy, LogProbAndPartialsFarInTheTail) {
  const auto half_cauchy = [](const auto& p) { return dist::HalfCauchy(p[0]); };
  expect_log_prob_at(half_cauchy, kFloat32, {1.0}, 1e20, -92.554986465133037,
                     {-1.9999999599182461e-20, 1.0}, 1e-6, 1e-6);
  expect_log_prob_at(half_cauchy, kFloat64, {1.0}, 1e200, -921.48561990290773,
                     {-2.0000000000000001e-200, 1.0}, 1e-15, 1e-15);
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
}

// Near logits 0 the inverse CDF switches from its exact form to its series at |l| = 1e-6;
// the same uniform draws must give draws that move by no more than x'(l) allows across the
// cut (|dx/dl| <= 1/8), and at l = 0 the uniform draws themselves.
TEST(ContinuousBernoulli, DrawsAreContinuousAcrossTheSeriesCut) {
  const auto draws = [](double l) {
    Generator gen(41);
    return dist::ContinuousBernoulli::from_logits(scalar_tensor(l, f64()))
        .rsample({4096}, gen)
        .to_vector<double>();
  };
  Generator gen(41);
  const auto u = rand({4096}, f64(), &gen).to_vector<double>();
  const auto at0 = draws(0.0), below = draws(0.9e-6), above = draws(1.1e-6), neg = draws(-1.1e-6);
  for (std::size_t i = 0; i < u.size(); ++i) {
    ASSERT_EQ(at0[i], u[i]) << i;
    ASSERT_NEAR(below[i], u[i], 0.9e-6 / 8 + 1e-15) << i;
    ASSERT_NEAR(above[i], below[i], 0.2e-6 / 8 + 1e-15) << i;
    ASSERT_NEAR(neg[i], 2 * u[i] - above[i], 1e-12) << i;  // x(-l) - u = u - x(l) + O(l^2)
  }
}

// Large logits neither overflow nor leave [0, 1]: the draws crowd the end the logits favour,
// at a mean distance of 1 / |l|.
TEST(ContinuousBernoulli, LargeLogitsDrawFiniteValuesAtTheFavouredEnd) {
  for (double l : {-800.0, 800.0}) {
    const dist::Distribution d = dist::ContinuousBernoulli::from_logits(scalar_tensor(l, f64()));
    Generator gen(5);
    const auto xs = d.rsample({4096}, gen).to_vector<double>();
    double gap = 0;
    for (double x : xs) {
      ASSERT_TRUE(x >= 0.0 && x <= 1.0) << x;
      gap += (l > 0 ? 1 - x : x) / xs.size();
    }
    EXPECT_NEAR(gap, 1 / std::abs(l), 0.1 / std::abs(l)) << l;
    EXPECT_NEAR(d.mean().item(), l > 0 ? 1 - 1 / l : -1 / l, 1e-15);
    EXPECT_NEAR(d.variance().item(), 1 / (l * l), 1e-15);
    EXPECT_TRUE(std::isfinite(d.log_prob(tensor({0.5}, f64())).item()));
  }
}

}  // namespace
}  // namespace ember::test
