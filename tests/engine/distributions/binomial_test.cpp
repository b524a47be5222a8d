// Binomial: reference log-pmfs (SciPy) in probs and logits, the fused partials against
// finite differences, the inversion and BTRS samplers by chi-square at fixed seeds,
// enumerate_support, moments and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "discrete_checks.hpp"
#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

double binomial_pmf(std::int64_t k, double n, double p) {
  if (k > n) return 0.0;
  return std::exp(std::lgamma(n + 1) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1) +
                  k * std::log(p) + (n - k) * std::log1p(-p));
}

}  // namespace

TEST(Binomial, LogProbMatchesSciPy) {
  for (const auto& c : reference_cases("Binomial")) {
    const double p = c.scalar("probs");
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      const double tol = (dtype == kFloat64 ? 1e-11 : 1e-5) * (1 + std::abs(c.log_prob));
      const Tensor n = scalar_tensor(c.scalar("total_count"), o);
      const Tensor x = scalar_tensor(c.value[0], o);
      EXPECT_NEAR(dist::Binomial(n, scalar_tensor(p, o)).log_prob(x).item(), c.log_prob, tol)
          << "reference line " << c.line << " in " << dtype;
      const Tensor logits = scalar_tensor(std::log(p) - std::log1p(-p), o);
      EXPECT_NEAR(dist::Binomial::from_logits(n, logits).log_prob(x).item(), c.log_prob,
                  dtype == kFloat64 ? tol : 1e-4 * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " (logits) in " << dtype;
    }
  }
}

TEST(Binomial, LogProbAtTheEdgesIsExactNotNan) {
  const Tensor value = tensor({0.0, 3.0}, f64());
  expect_values(dist::Binomial(3, tensor({0.0, 0.0}, f64())).log_prob(value), {0.0, -INFINITY});
  expect_values(dist::Binomial(3, tensor({1.0, 1.0}, f64())).log_prob(value), {-INFINITY, 0.0});
  expect_values(dist::Binomial(0, 0.3).log_prob(zeros({1})), {0.0}, 1e-6);
  // Large logits: n * log sigmoid(-l) without overflow or cancellation.
  const auto big = dist::Binomial::from_logits(tensor({10.0}, f64()), tensor({-200.0}, f64()));
  expect_values(big.log_prob(tensor({0.0}, f64())), {-10 * std::exp(-200.0)}, 1e-12);
  expect_values(big.log_prob(tensor({1.0}, f64())), {std::log(10.0) - 200.0}, 1e-12);
}

TEST(Binomial, LogProbGradientsMatchFiniteDifferences) {
  // Values (4, 3) in 0..5 against total_count 5 and probs (3) / logits (4, 1).
  const Tensor value = randint({4, 3}, 0, 5).to(kFloat64);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Binomial(5, x[1]).log_prob(x[0]); },
      {value, uniform({3}, 0.1, 0.9, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::Binomial::from_logits(5, x[1]).log_prob(x[0]);
      },
      {value, random_normal({4, 1}, true)});
  // The partial in total_count (the lgamma continuation; validation off so that the
  // perturbed, non-integer counts are accepted). Values stay below the counts.
  set_validation_enabled(false);
  const Tensor counts = tensor({6.0, 8.0, 7.0}, f64(true));
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Binomial(x[1], x[2]).log_prob(x[0]); },
      {value, counts, uniform({3}, 0.1, 0.9, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::Binomial::from_logits(x[1], x[2]).log_prob(x[0]);
      },
      {value, counts, random_normal({3}, true)});
  set_validation_enabled(true);
}

TEST(Binomial, DrawsFitThePmf) {
  // (10, 0.3) and (5, 0.95) take the inversion path; (1000, 0.02) and (200, 0.6) BTRS;
  // probs above 0.5 draw the complement.
  Generator gen(77);
  const std::vector<std::pair<double, double>> cases{
      {10, 0.3}, {1000, 0.02}, {200, 0.6}, {5, 0.95}, {100000, 0.45}};
  for (const auto& [n, p] : cases) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      const dist::Binomial d(scalar_tensor(n, o), scalar_tensor(p, o));
      const Tensor draws = d.sample({20000}, gen);
      EXPECT_EQ(draws.dtype(), dtype);
      const auto xs = draws.to_vector<double>();
      SCOPED_TRACE(testing::Message() << "Binomial(" << n << ", " << p << ") in " << dtype);
      expect_fits_pmf(
          xs, [&](std::int64_t k) { return binomial_pmf(k, n, p); }, static_cast<std::int64_t>(n));
      EXPECT_NEAR(mean_of(xs), n * p, 5 * std::sqrt(n * p * (1 - p) / xs.size()));
    }
  }
  // Draws from logits match draws from the equal probs.
  const auto from_logits =
      dist::Binomial::from_logits(20, std::log(0.3 / 0.7)).sample({20000}, gen).to_vector<double>();
  expect_fits_pmf(
      from_logits, [](std::int64_t k) { return binomial_pmf(k, 20, 0.3); }, 20);
  // Degenerate probs and counts.
  const dist::Binomial edge(tensor({0.0, 4.0, 4.0}), tensor({0.5, 0.0, 1.0}));
  const auto xs = edge.sample({100}, gen).to_vector<double>();
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(xs[i], (i % 3 == 2) ? 4.0 : 0.0);
}

TEST(Binomial, EnumerateSupportIsShapedAsPyro) {
  const dist::Binomial d(full({2, 3}, 3.0, f64()), full({3}, 0.4, f64()));
  EXPECT_TRUE(d.has_enumerate_support());
  const Tensor flat = d.enumerate_support(false);
  EXPECT_EQ(flat.shape(), (Shape{4, 1, 1}));
  expect_values(flat, {0, 1, 2, 3});
  const Tensor all = d.enumerate_support();
  EXPECT_EQ(all.shape(), (Shape{4, 2, 3}));
  expect_close(sum(exp(d.log_prob(all)), {0}), ones({2, 3}, f64()));
  EMBER_EXPECT_THROW_WITH(dist::Binomial(tensor({2.0, 3.0}), 0.5).enumerate_support(), ValueError,
                          "Binomial.enumerate_support", "total_count", "2", "3");
}

TEST(Binomial, ProbsLogitsAndMoments) {
  const dist::Binomial d(tensor({10.0, 4.0}, f64()), tensor({0.2, 0.5}, f64()));
  expect_values(d.total_count(), {10, 4});
  expect_values(d.probs(), {0.2, 0.5});
  expect_values(d.logits(), {std::log(0.25), 0.0});
  expect_values(d.mean(), {2.0, 2.0});
  expect_values(d.variance(), {1.6, 1.0});
  const auto l =
      dist::Binomial::from_logits(tensor({10.0, 4.0}, f64()), tensor({std::log(0.25), 0.0}, f64()));
  expect_values(l.probs(), {0.2, 0.5});
  expect_values(l.mean(), {2.0, 2.0});
  expect_values(l.variance(), {1.6, 1.0});
  const dist::Distribution e = dist::Binomial(5, full({3, 1}, 0.5)).expand({3, 4});
  EXPECT_EQ(e.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(e.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.mean().shape(), (Shape{3, 4}));
}

TEST(Binomial, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Binomial(2.5, 0.5), ValueError, "Binomial", "total_count", "2.5");
  EMBER_EXPECT_THROW_WITH(dist::Binomial(-1, 0.5), ValueError, "Binomial", "total_count", "-1");
  EMBER_EXPECT_THROW_WITH(dist::Binomial(10, tensor({0.5, 1.2})), ValueError, "Binomial", "probs",
                          "1.2", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Binomial::from_logits(10, NAN), ValueError, "logits", "nan");
  EMBER_EXPECT_THROW_WITH(dist::Binomial(ones({2}), ones({3})), ShapeError, "Binomial", "(2)",
                          "(3)");
  const dist::Binomial d(tensor({4.0, 6.0}), 0.5);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({5.0, 5.0})), ValueError, "Binomial.log_prob",
                          "support", "5", "[0]");
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({1.5, 0.0})), ValueError, "Binomial.log_prob", "1.5");
  EMBER_EXPECT_THROW_WITH(d.entropy(), ValueError, "Binomial", "entropy");
  set_validation_enabled(false);
  expect_values(d.log_prob(tensor({5.0, -1.0})), {-INFINITY, -INFINITY});
  set_validation_enabled(true);
}
