// What the family table (families_test.cpp) leaves out of the continuous families: the
// generator's streams seen through Normal, the Cauchy quantiles that stand in for its
// missing moments, and Uniform's support, which depends on its parameters.
#include <algorithm>
#include <cmath>

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

}  // namespace
}  // namespace ember::test
