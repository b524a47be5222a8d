// Categorical: reference log-pmfs (SciPy table) in probs and logits, gradients through the
// composed gather against finite differences, inverse-CDF draws by chi-square,
// enumerate_support, moments and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

Tensor row(const std::vector<double>& v, DType dtype = kFloat64) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, TensorOptions{}.with_dtype(dtype));
}

// Chi-square of category draws against probs (every category with expected count >= 5).
void expect_fits(const std::vector<double>& xs, const std::vector<double>& probs) {
  std::vector<double> counts(probs.size(), 0.0);
  for (double x : xs) {
    ASSERT_TRUE(x >= 0 && x < probs.size() && std::floor(x) == x) << "draw " << x;
    counts[static_cast<std::size_t>(x)] += 1;
  }
  std::vector<double> kept_counts, kept_probs;
  for (std::size_t k = 0; k < probs.size(); ++k) {
    if (probs[k] == 0.0) {
      EXPECT_EQ(counts[k], 0.0) << "category " << k << " has probability 0";
      continue;
    }
    kept_counts.push_back(counts[k]);
    kept_probs.push_back(probs[k]);
  }
  EXPECT_LT(chi_square(kept_counts, kept_probs),
            chi_square_critical_001(static_cast<int>(kept_probs.size()) - 1));
}

}  // namespace

TEST(Categorical, LogProbMatchesSciPy) {
  for (DType dtype : {kFloat64, kFloat32}) {
    const double tol = dtype == kFloat64 ? 1e-12 : 1e-5;
    for (const auto& c : reference_cases("Categorical")) {
      const dist::Categorical d(row(c.param("probs"), dtype));
      EXPECT_NEAR(d.log_prob(scalar_tensor(c.value[0])).item(), c.log_prob,
                  tol * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
    for (const auto& c : reference_cases("CategoricalLogits")) {
      const auto d = dist::Categorical::from_logits(row(c.param("logits"), dtype));
      EXPECT_NEAR(d.log_prob(scalar_tensor(c.value[0])).item(), c.log_prob,
                  tol * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

TEST(Categorical, LogProbBroadcastsValuesAgainstTheBatch) {
  // batch (2), K = 3; values (4, 1) broadcast to (4, 2); int64 and float values agree.
  const Tensor probs = tensor({{0.2, 0.3, 0.5}, {0.6, 0.0, 0.4}}, f64());
  const dist::Categorical d(probs);
  EXPECT_EQ(d.batch_shape(), (Shape{2}));
  EXPECT_EQ(d.num_categories(), 3);
  const Tensor v = from_vector(std::vector<std::int64_t>{0, 1, 2, 1}, {4, 1},
                               TensorOptions{}.with_dtype(kInt64));
  const Tensor lp = d.log_prob(v);
  EXPECT_EQ(lp.shape(), (Shape{4, 2}));
  expect_values(lp, {std::log(0.2), std::log(0.6), std::log(0.3), -INFINITY, std::log(0.5),
                     std::log(0.4), std::log(0.3), -INFINITY});
  expect_close(d.log_prob(v.to(kFloat64)), lp);
  // A zero-probability category does not make the gradient nan.
  Tensor p = probs.clone().requires_grad_();
  sum(dist::Categorical(p).log_prob(tensor({2.0, 0.0}, f64()))).backward();
  EXPECT_TRUE(all(isfinite(p.grad())));
}

TEST(Categorical, LogProbGradientsMatchFiniteDifferences) {
  // Values (2, 4) against a batch of 4 with K = 3.
  const Tensor value = randint({2, 4}, 0, 2);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::Categorical::from_logits(x[1]).log_prob(x[0]);
      },
      {value, random_normal({4, 3}, true)});
  // Probs are normalized inside, so perturbations off the simplex are well defined
  // (validation off: the perturbed rows do not sum to one).
  set_validation_enabled(false);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Categorical(x[1]).log_prob(x[0]); },
      {value, uniform({4, 3}, 0.2, 1.0, true)});
  EMBER_EXPECT_GRAD([](const std::vector<Tensor>& x) { return dist::Categorical(x[0]).entropy(); },
                    {uniform({4, 3}, 0.2, 1.0, true)});
  set_validation_enabled(true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Categorical::from_logits(x[0]).entropy(); },
      {random_normal({4, 3}, true)});
}

TEST(Categorical, DrawsFitTheProbs) {
  Generator gen(31337);
  const std::vector<double> probs{0.1, 0.2, 0.0, 0.3, 0.4};
  for (DType dtype : {kFloat64, kFloat32}) {
    for (const dist::Categorical& d :
         {dist::Categorical(row(probs, dtype)),
          dist::Categorical::from_logits(log(row(probs, dtype)) + 2.0)}) {
      const Tensor draws = d.sample({40000}, gen);
      EXPECT_EQ(draws.dtype(), kInt64);
      EXPECT_EQ(draws.shape(), (Shape{40000}));
      expect_fits(draws.to_vector<double>(), probs);
    }
  }
  // Each batch row draws from its own probs: batch (2, 3), sample shape (10000).
  const Tensor table = tensor({{0.7, 0.2, 0.1}, {0.1, 0.1, 0.8}}, f64());
  const dist::Distribution d = dist::Categorical(table.unsqueeze(1)).expand({2, 3});
  const Tensor draws = d.sample({10000}, gen);
  EXPECT_EQ(draws.shape(), (Shape{10000, 2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      const auto xs = draws.select(2, j).select(1, i).contiguous().to_vector<double>();
      expect_fits(xs, values(table.select(0, i)));
    }
}

TEST(Categorical, EnumerateSupportIsShapedAsPyro) {
  const dist::Categorical d(full({2, 3, 4}, 0.25, f64()));
  EXPECT_TRUE(d.has_enumerate_support());
  const Tensor flat = d.enumerate_support(false);
  EXPECT_EQ(flat.shape(), (Shape{4, 1, 1}));
  EXPECT_EQ(flat.dtype(), kInt64);
  expect_values(flat, {0, 1, 2, 3});
  const Tensor all_values = d.enumerate_support();
  EXPECT_EQ(all_values.shape(), (Shape{4, 2, 3}));
  expect_close(sum(exp(d.log_prob(all_values)), {0}), ones({2, 3}, f64()));
  EXPECT_EQ(dist::Categorical(tensor({0.5, 0.5})).enumerate_support().shape(), (Shape{2}));
}

TEST(Categorical, ProbsLogitsMomentsAndEntropy) {
  const dist::Categorical d(tensor({{0.2, 0.3, 0.5}, {1.0, 0.0, 0.0}}, f64()));
  expect_values(d.probs(), {0.2, 0.3, 0.5, 1.0, 0.0, 0.0});
  expect_values(d.logits(),
                {std::log(0.2), std::log(0.3), std::log(0.5), 0.0, -INFINITY, -INFINITY});
  expect_values(d.mean(), {1.3, 0.0});
  expect_values(d.variance(), {0.3 + 4 * 0.5 - 1.3 * 1.3, 0.0});
  const double h = -(0.2 * std::log(0.2) + 0.3 * std::log(0.3) + 0.5 * std::log(0.5));
  expect_values(d.entropy(), {h, 0.0});
  // Logits are normalized: logsumexp 0 over the last dim.
  const auto l =
      dist::Categorical::from_logits(tensor({{1.0, 2.0, 3.0}, {0.0, -INFINITY, 5.0}}, f64()));
  expect_close(logsumexp(l.logits(), {-1}), zeros({2}, f64()));
  expect_close(sum(l.probs(), {-1}), ones({2}, f64()));
  EXPECT_TRUE(all(isfinite(l.entropy())));
  const auto ref = dist::Categorical(l.probs().select(0, 0));
  expect_close(l.entropy().select(0, 0), ref.entropy());
  EXPECT_EQ(dist::Categorical(full({3, 1, 2}, 0.5)).expand({3, 4}).batch_shape(), (Shape{3, 4}));
}

TEST(Categorical, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Categorical(tensor({0.5, 0.6})), ValueError, "Categorical", "probs",
                          "simplex");
  EMBER_EXPECT_THROW_WITH(dist::Categorical(tensor({1.5, -0.5})), ValueError, "Categorical",
                          "probs", "simplex");
  EMBER_EXPECT_THROW_WITH(dist::Categorical(0.5), ShapeError, "Categorical", "probs", "shape");
  EMBER_EXPECT_THROW_WITH(dist::Categorical::from_logits(tensor({0.0, NAN})), ValueError,
                          "Categorical", "logits");
  const dist::Categorical d(tensor({0.2, 0.3, 0.5}));
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({3.0})), ValueError, "Categorical.log_prob", "support",
                          "3");
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({1.5})), ValueError, "Categorical.log_prob", "1.5");
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({-1.0})), ValueError, "Categorical.log_prob", "-1");
  // With validation off, values outside 0..K-1 have probability zero (and read no memory).
  set_validation_enabled(false);
  expect_values(d.log_prob(tensor({3.0, -1.0, 1.5, 1.0})),
                {-INFINITY, -INFINITY, -INFINITY, std::log(0.3)}, 1e-6);
  set_validation_enabled(true);
}
