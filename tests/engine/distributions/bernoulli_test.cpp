// Bernoulli: reference log-pmfs (SciPy) in probs and logits, the fused partials against
// finite differences, draws by chi-square, enumerate_support, moments and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "discrete_checks.hpp"
#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(Bernoulli, LogProbMatchesSciPy) {
  for (DType dtype : {kFloat64, kFloat32}) {
    const auto o = TensorOptions{}.with_dtype(dtype);
    const double tol = dtype == kFloat64 ? 1e-12 : 1e-5;
    for (const auto& c : reference_cases("Bernoulli")) {
      const dist::Bernoulli d(scalar_tensor(c.scalar("probs"), o));
      EXPECT_NEAR(d.log_prob(scalar_tensor(c.value[0], o)).item(), c.log_prob,
                  tol * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
    for (const auto& c : reference_cases("BernoulliLogits")) {
      const auto d = dist::Bernoulli::from_logits(scalar_tensor(c.scalar("logits"), o));
      EXPECT_NEAR(d.log_prob(scalar_tensor(c.value[0], o)).item(), c.log_prob,
                  tol * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

TEST(Bernoulli, LogProbAtTheEdgesIsExactNotNan) {
  const Tensor value = tensor({0.0, 1.0}, f64());
  // probs 0 and 1: the certain outcome has log-probability 0, the impossible one -inf.
  expect_values(dist::Bernoulli(tensor({0.0, 0.0}, f64())).log_prob(value), {0.0, -INFINITY});
  expect_values(dist::Bernoulli(tensor({1.0, 1.0}, f64())).log_prob(value), {-INFINITY, 0.0});
  // Large logits neither overflow nor round to log(0).
  const auto big = dist::Bernoulli::from_logits(tensor({-100.0, 100.0}, f64()));
  expect_values(big.log_prob(tensor({1.0, 0.0}, f64())), {-100.0, -100.0}, 1e-12);
  expect_values(big.log_prob(tensor({0.0, 1.0}, f64())), {-std::exp(-100.0), -std::exp(-100.0)},
                1e-12);
  // Boolean values are accepted.
  const Tensor b =
      from_vector(std::vector<std::uint8_t>{1, 0}, {2}, TensorOptions{}.with_dtype(kBool));
  expect_values(dist::Bernoulli(0.25).log_prob(b), {std::log(0.25), std::log(0.75)}, 1e-6);
}

TEST(Bernoulli, LogProbGradientsMatchFiniteDifferences) {
  // Values (4, 3) against probs (3) and logits (4, 1).
  const Tensor value = randint({4, 3}, 0, 1).to(kFloat64);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Bernoulli(x[1]).log_prob(x[0]); },
      {value, uniform({3}, 0.1, 0.9, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::Bernoulli::from_logits(x[1]).log_prob(x[0]);
      },
      {value, random_normal({4, 1}, true)});
  // The entropy's gradient, through the composed ops.
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& x) { return dist::Bernoulli(x[0]).entropy(); },
                    {uniform({3}, 0.1, 0.9, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Bernoulli::from_logits(x[0]).entropy(); },
      {random_normal({3}, true)});
}

TEST(Bernoulli, DrawsFitThePmf) {
  Generator gen(99);
  for (DType dtype : {kFloat64, kFloat32}) {
    const auto o = TensorOptions{}.with_dtype(dtype);
    for (const dist::Bernoulli& d :
         {dist::Bernoulli(scalar_tensor(0.3, o)),
          dist::Bernoulli::from_logits(scalar_tensor(std::log(0.3 / 0.7), o))}) {
      const Tensor draws = d.sample({20000}, gen);
      EXPECT_EQ(draws.dtype(), dtype);
      expect_fits_pmf(
          draws.to_vector<double>(),
          [](std::int64_t k) { return k == 0 ? 0.7 : (k == 1 ? 0.3 : 0.0); }, 1);
    }
  }
  // probs 0 and 1 draw 0 and 1 always.
  const auto xs = dist::Bernoulli(tensor({0.0, 1.0})).sample({1000}, gen).to_vector<double>();
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(xs[i], i % 2 == 0 ? 0.0 : 1.0);
}

TEST(Bernoulli, EnumerateSupportIsShapedAsPyro) {
  const dist::Bernoulli d(full({3, 2}, 0.4, f64()));
  EXPECT_TRUE(d.has_enumerate_support());
  const Tensor flat = d.enumerate_support(false);
  EXPECT_EQ(flat.shape(), (Shape{2, 1, 1}));
  expect_values(flat, {0.0, 1.0});
  const Tensor full_support = d.enumerate_support();
  EXPECT_EQ(full_support.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(full_support.dtype(), kFloat64);
  expect_values(full_support, {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1});
  // log_prob over the enumerated support sums to one per batch element.
  expect_close(sum(exp(d.log_prob(full_support)), {0}), ones({3, 2}, f64()));
  EXPECT_EQ(dist::Bernoulli(0.5).enumerate_support().shape(), (Shape{2}));
}

TEST(Bernoulli, ProbsAndLogitsAreBothAvailable) {
  const dist::Bernoulli d(tensor({0.2, 0.5}, f64()));
  expect_values(d.probs(), {0.2, 0.5});
  expect_values(d.logits(), {std::log(0.25), 0.0});
  const auto l = dist::Bernoulli::from_logits(tensor({0.0, std::log(3.0)}, f64()));
  expect_values(l.logits(), {0.0, std::log(3.0)});
  expect_values(l.probs(), {0.5, 0.75});
}

TEST(Bernoulli, MomentsAndEntropyAreClosedForm) {
  const auto h = [](double p) { return -(p * std::log(p) + (1 - p) * std::log(1 - p)); };
  const dist::Bernoulli d(tensor({0.2, 0.5, 0.0}, f64()));
  expect_values(d.mean(), {0.2, 0.5, 0.0});
  expect_values(d.variance(), {0.16, 0.25, 0.0});
  expect_values(d.entropy(), {h(0.2), h(0.5), 0.0});
  const auto l = dist::Bernoulli::from_logits(tensor({std::log(0.25), 0.0}, f64()));
  expect_values(l.mean(), {0.2, 0.5});
  expect_values(l.variance(), {0.16, 0.25});
  expect_values(l.entropy(), {h(0.2), h(0.5)});
  const dist::Distribution e = dist::Bernoulli(full({3, 1}, 0.5)).expand({3, 4});
  EXPECT_EQ(e.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(e.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.entropy().shape(), (Shape{3, 4}));
}

TEST(Bernoulli, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Bernoulli(1.5), ValueError, "Bernoulli", "probs", "1.5");
  EMBER_EXPECT_THROW_WITH(dist::Bernoulli(tensor({0.5, -0.1})), ValueError, "probs", "-0.1", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Bernoulli::from_logits(tensor({0.0, NAN})), ValueError, "Bernoulli",
                          "logits", "nan");
  const dist::Bernoulli d(0.5);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({0.5})), ValueError, "Bernoulli.log_prob", "support",
                          "0.5");
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({2.0})), ValueError, "Bernoulli.log_prob", "2");
  EMBER_EXPECT_THROW_WITH(d.rsample(), ValueError, "Bernoulli", "rsample");
  set_validation_enabled(false);
  EXPECT_EQ(d.log_prob(tensor({0.5})).item(), -INFINITY);
  set_validation_enabled(true);
}
