// Poisson: reference log-pmfs (SciPy), the fused partial in rate against finite differences,
// the inversion and PTRS samplers by chi-square at fixed seeds, moments and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "discrete_checks.hpp"
#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double poisson_pmf(std::int64_t k, double rate) {
  return std::exp(k * std::log(rate) - rate - std::lgamma(k + 1.0));
}

}  // namespace

TEST(Poisson, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "Poisson", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::Poisson(scalar_tensor(c.scalar("rate"), o));
      });
}

TEST(Poisson, LogProbEdgeCases) {
  // rate 0: all mass at 0.
  const dist::Poisson zero(scalar_tensor(0.0, f64()));
  EXPECT_EQ(zero.log_prob(scalar_tensor(0.0, f64())).item(), 0.0);
  EXPECT_EQ(zero.log_prob(scalar_tensor(3.0, f64())).item(), -INFINITY);
  // Integer-typed values are accepted.
  const dist::Poisson d(tensor({2.0}, f64()));
  EXPECT_NEAR(d.log_prob(index_tensor({3})).item(), 3 * std::log(2.0) - 2 - std::log(6.0), 1e-12);
}

TEST(Poisson, LogProbGradientsMatchFiniteDifferences) {
  // Counts (4, 3) against rate (3) and rate (4, 1).
  const Tensor value = randint({4, 3}, 0, 6).to(kFloat64);
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& x) { return dist::Poisson(x[1]).log_prob(x[0]); },
                    {value, uniform({3}, 0.5, 5.0, true)});
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& x) { return dist::Poisson(x[1]).log_prob(x[0]); },
                    {value, uniform({4, 1}, 0.5, 5.0, true)});
}

TEST(Poisson, DrawsFitThePmf) {
  // 0.5 and 4 take the inversion path, 30 and 500 PTRS.
  Generator gen(2024);
  for (double rate : {0.5, 4.0, 30.0, 500.0}) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const dist::Poisson d(scalar_tensor(rate, TensorOptions{}.with_dtype(dtype)));
      const Tensor draws = d.sample({20000}, gen);
      EXPECT_EQ(draws.dtype(), dtype);
      const auto xs = draws.to_vector<double>();
      SCOPED_TRACE(testing::Message() << "rate " << rate << " in " << dtype);
      expect_fits_pmf(
          xs, [&](std::int64_t k) { return poisson_pmf(k, rate); },
          static_cast<std::int64_t>(rate + 20 * std::sqrt(rate) + 20));
      EXPECT_NEAR(mean_of(xs), rate, 5 * std::sqrt(rate / xs.size()));
    }
  }
}

TEST(Poisson, DrawsAreReproducibleAndBroadcast) {
  const dist::Poisson d(tensor({0.0, 2.0, 50.0}, f64()));
  Generator a(3), b(3);
  const Tensor xa = d.sample({4}, a);
  EXPECT_EQ(xa.shape(), (Shape{4, 3}));
  EXPECT_EQ(xa.to_vector<double>(), d.sample({4}, b).to_vector<double>());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(xa.to_vector<double>()[i * 3], 0.0);  // rate 0
  EXPECT_FALSE(d.has_rsample());
  EXPECT_FALSE(d.has_enumerate_support());
}

TEST(Poisson, MomentsAreClosedForm) {
  const dist::Poisson d(tensor({0.5, 7.0}, f64()));
  expect_values(d.mean(), {0.5, 7.0});
  expect_values(d.variance(), {0.5, 7.0});
  expect_values(d.rate(), {0.5, 7.0});
  EXPECT_EQ(dist::Poisson(ones({2, 1})).expand({2, 3}).mean().shape(), (Shape{2, 3}));
}

TEST(Poisson, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Poisson(-1.0), ValueError, "Poisson", "rate", "-1");
  EMBER_EXPECT_THROW_WITH(dist::Poisson(tensor({1.0, -0.5})), ValueError, "rate", "-0.5", "[1]");
  const dist::Poisson d(2.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({1.5})), ValueError, "Poisson.log_prob", "support",
                          "1.5");
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({-1.0})), ValueError, "Poisson.log_prob", "-1");
  EMBER_EXPECT_THROW_WITH(d.enumerate_support(), ValueError, "Poisson", "enumerate_support");
  EMBER_EXPECT_THROW_WITH(d.entropy(), ValueError, "Poisson", "entropy");
  // With validation off, values outside the support have probability zero.
  set_validation_enabled(false);
  EXPECT_EQ(d.log_prob(tensor({1.5})).item(), -INFINITY);
  set_validation_enabled(true);
}
