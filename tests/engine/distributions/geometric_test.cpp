// Geometric (failures before the first success): reference log-pmfs (SciPy) in probs and
// logits, the fused partials against finite differences, draws by chi-square, moments,
// entropy and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "discrete_checks.hpp"
#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(Geometric, LogProbMatchesSciPy) {
  for (const auto& c : reference_cases("Geometric")) {
    const double p = c.scalar("probs");
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      const double tol = (dtype == kFloat64 ? 1e-12 : 1e-5) * (1 + std::abs(c.log_prob));
      const Tensor x = scalar_tensor(c.value[0], o);
      EXPECT_NEAR(dist::Geometric(scalar_tensor(p, o)).log_prob(x).item(), c.log_prob, tol)
          << "reference line " << c.line << " in " << dtype;
      const Tensor logits = scalar_tensor(std::log(p) - std::log1p(-p), o);
      EXPECT_NEAR(dist::Geometric::from_logits(logits).log_prob(x).item(), c.log_prob,
                  dtype == kFloat64 ? tol : 1e-4 * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " (logits) in " << dtype;
    }
  }
}

TEST(Geometric, LogProbAtTheEdgesIsExactNotNan) {
  const dist::Geometric one(tensor({1.0, 1.0}, f64()));
  expect_values(one.log_prob(tensor({0.0, 2.0}, f64())), {0.0, -INFINITY});
  const auto big = dist::Geometric::from_logits(tensor({-100.0, 100.0}, f64()));
  expect_values(big.log_prob(tensor({0.0, 1.0}, f64())), {-100.0, -100.0}, 1e-12);
}

TEST(Geometric, LogProbGradientsMatchFiniteDifferences) {
  const Tensor value = randint({4, 3}, 0, 8).to(kFloat64);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Geometric(x[1]).log_prob(x[0]); },
      {value, uniform({3}, 0.1, 0.9, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::Geometric::from_logits(x[1]).log_prob(x[0]);
      },
      {value, random_normal({4, 1}, true)});
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& x) { return dist::Geometric(x[0]).entropy(); },
                    {uniform({3}, 0.1, 0.9, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Geometric::from_logits(x[0]).entropy(); },
      {random_normal({3}, true)});
}

TEST(Geometric, DrawsFitThePmf) {
  Generator gen(5150);
  for (double p : {0.3, 0.05, 0.9}) {
    const auto pmf = [p](std::int64_t k) { return p * std::pow(1 - p, static_cast<double>(k)); };
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      for (const dist::Geometric& d :
           {dist::Geometric(scalar_tensor(p, o)),
            dist::Geometric::from_logits(scalar_tensor(std::log(p / (1 - p)), o))}) {
        const Tensor draws = d.sample({20000}, gen);
        EXPECT_EQ(draws.dtype(), dtype);
        const auto xs = draws.to_vector<double>();
        SCOPED_TRACE(testing::Message() << "probs " << p << " in " << dtype);
        expect_fits_pmf(xs, pmf, static_cast<std::int64_t>(40 / p));
        EXPECT_NEAR(mean_of(xs), (1 - p) / p, 5 * std::sqrt((1 - p) / (p * p) / xs.size()));
      }
    }
  }
  const auto certain = dist::Geometric(1.0).sample({100}, gen).to_vector<double>();
  for (double x : certain) EXPECT_EQ(x, 0.0);
}

TEST(Geometric, ProbsLogitsMomentsAndEntropy) {
  const auto h = [](double p) { return -(p * std::log(p) + (1 - p) * std::log(1 - p)) / p; };
  const dist::Geometric d(tensor({0.2, 0.5}, f64()));
  expect_values(d.probs(), {0.2, 0.5});
  expect_values(d.logits(), {std::log(0.25), 0.0});
  expect_values(d.mean(), {4.0, 1.0});
  expect_values(d.variance(), {20.0, 2.0});
  expect_values(d.entropy(), {h(0.2), h(0.5)});
  const auto l = dist::Geometric::from_logits(tensor({std::log(0.25), 0.0}, f64()));
  expect_values(l.probs(), {0.2, 0.5});
  expect_values(l.mean(), {4.0, 1.0});
  expect_values(l.variance(), {20.0, 2.0});
  expect_values(l.entropy(), {h(0.2), h(0.5)});
  expect_values(dist::Geometric(tensor({1.0}, f64())).entropy(), {0.0});
  const dist::Distribution e = dist::Geometric(full({3, 1}, 0.5)).expand({3, 4});
  EXPECT_EQ(e.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(e.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_FALSE(e.has_enumerate_support());
}

TEST(Geometric, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Geometric(1.5), ValueError, "Geometric", "probs", "1.5");
  EMBER_EXPECT_THROW_WITH(dist::Geometric(tensor({0.5, 0.0})), ValueError, "Geometric", "probs",
                          "positive", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Geometric::from_logits(NAN), ValueError, "logits", "nan");
  const dist::Geometric d(0.5);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({-1.0})), ValueError, "Geometric.log_prob", "support",
                          "-1");
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({0.5})), ValueError, "Geometric.log_prob", "0.5");
  set_validation_enabled(false);
  EXPECT_EQ(d.log_prob(tensor({0.5})).item(), -INFINITY);
  set_validation_enabled(true);
}
