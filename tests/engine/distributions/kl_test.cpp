// KL registry: each closed form against a Monte-Carlo estimate at a fixed seed and known
// special cases, the wrappers (Independent, masks), gradients, and unknown pairs.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>
#include <ember/kl.hpp>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

// mean(log p(x) - log q(x)) over n draws x ~ p, elementwise over the batch, within five
// standard errors of the closed form.
void expect_matches_monte_carlo(const dist::Distribution& p, const dist::Distribution& q,
                                std::uint64_t seed, std::int64_t n = 100000) {
  Generator gen(seed);
  const Tensor kl = dist::kl_divergence(p, q);
  const Tensor x = p.sample({n}, gen);
  const Tensor d = (p.log_prob(x) - q.log_prob(x)).to(kFloat64);
  const auto mc = values(mean(d, {0}));
  const auto var = values(mean(square(d - mean(d, {0}, true)), {0}));
  const auto closed = values(kl);
  ASSERT_EQ(closed.size(), mc.size()) << "kl shape " << kl.shape();
  for (std::size_t i = 0; i < mc.size(); ++i) {
    const double se = std::sqrt(var[i] / n);
    EXPECT_NEAR(closed[i], mc[i], 5 * se + 1e-9) << p.name() << " || " << q.name() << " at " << i;
  }
}

}  // namespace

TEST(Kl, NormalClosedForm) {
  const dist::Normal p(tensor({0.0, 1.0, -2.0}, f64()), tensor({1.0, 0.5, 2.0}, f64()));
  const dist::Normal q(tensor({1.0, 0.0, -1.0}, f64()), tensor({2.0, 1.5, 1.0}, f64()));
  // KL(N(0, 1) || N(1, 2)) = log 2 + (1 + 1) / 8 - 1/2.
  EXPECT_NEAR(values(dist::kl_divergence(p, q))[0], std::log(2.0) + 0.25 - 0.5, 1e-12);
  expect_values(dist::kl_divergence(p, p), {0, 0, 0}, 0, 1e-12);
  expect_matches_monte_carlo(p, q, 1);
  // Batch shapes broadcast.
  EXPECT_EQ(
      dist::kl_divergence(dist::Normal(zeros({2, 1}), 1.0), dist::Normal(zeros({3}), 2.0)).shape(),
      (Shape{2, 3}));
}

TEST(Kl, NormalGradientsMatchFiniteDifferences) {
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::kl_divergence(dist::Normal(x[0], x[1]), dist::Normal(x[2], x[3]));
      },
      {random_normal({3}, true), uniform({3}, 0.5, 2.0, true), random_normal({2, 1}, true),
       uniform({3}, 0.5, 2.0, true)});
}

TEST(Kl, LogNormalClosedForm) {
  const dist::LogNormal p(tensor({0.0, 0.5}, f64()), tensor({0.5, 1.0}, f64()));
  const dist::LogNormal q(tensor({0.3, -0.5}, f64()), tensor({0.8, 0.7}, f64()));
  // The same as for the normals of log x.
  expect_close(dist::kl_divergence(p, q), dist::kl_divergence(dist::Normal(p.loc(), p.scale()),
                                                              dist::Normal(q.loc(), q.scale())));
  expect_values(dist::kl_divergence(p, p), {0, 0}, 0, 1e-12);
  expect_matches_monte_carlo(p, q, 2);
}

TEST(Kl, SlowGammaClosedForm) {
  const dist::Gamma p(tensor({2.0, 0.7, 5.0}, f64()), tensor({1.0, 2.0, 0.5}, f64()));
  const dist::Gamma q(tensor({1.5, 1.2, 4.0}, f64()), tensor({0.5, 1.0, 0.8}, f64()));
  // Exponentials (concentration 1): log(rp / rq) + rq / rp - 1.
  EXPECT_NEAR(dist::kl_divergence(dist::Gamma(1.0, 2.0), dist::Gamma(1.0, 0.5)).item(),
              std::log(4.0) + 0.25 - 1.0, 1e-6);
  expect_values(dist::kl_divergence(p, p), {0, 0, 0}, 0, 1e-12);
  expect_matches_monte_carlo(p, q, 7);
}

TEST(Kl, SlowBetaClosedForm) {
  const dist::Beta p(tensor({2.0, 0.8, 5.0}, f64()), tensor({3.0, 1.5, 1.0}, f64()));
  const dist::Beta q(tensor({1.0, 2.0, 3.0}, f64()), tensor({1.0, 0.7, 2.0}, f64()));
  // Against the uniform Beta(1, 1), KL = -entropy.
  EXPECT_NEAR(values(dist::kl_divergence(p, q))[0], -values(p.entropy())[0], 1e-10);
  expect_values(dist::kl_divergence(p, p), {0, 0, 0}, 0, 1e-12);
  expect_matches_monte_carlo(p, q, 8);
}

TEST(Kl, SlowDirichletClosedForm) {
  const dist::Dirichlet p(tensor({{2.0, 0.8, 5.0}, {1.0, 1.0, 1.0}}, f64()));
  const dist::Dirichlet q(tensor({{1.0, 2.0, 3.0}, {0.5, 2.0, 1.5}}, f64()));
  expect_values(dist::kl_divergence(p, p), {0, 0}, 0, 1e-12);
  // Two categories: the Beta of the first one.
  EXPECT_NEAR(dist::kl_divergence(dist::Dirichlet(tensor({2.0, 3.0}, f64())),
                                  dist::Dirichlet(tensor({0.5, 1.5}, f64())))
                  .item(),
              dist::kl_divergence(dist::Beta(2.0, 3.0), dist::Beta(0.5, 1.5)).item(), 1e-6);
  expect_matches_monte_carlo(p, q, 9);
}

TEST(Kl, BernoulliClosedFormAndEdges) {
  const dist::Bernoulli p(tensor({0.3, 0.9, 0.0, 0.5}, f64()));
  const dist::Bernoulli q(tensor({0.6, 0.2, 0.4, 0.0}, f64()));
  const auto kl = values(dist::kl_divergence(p, q));
  EXPECT_NEAR(kl[0], 0.3 * std::log(0.3 / 0.6) + 0.7 * std::log(0.7 / 0.4), 1e-12);
  EXPECT_NEAR(kl[1], 0.9 * std::log(0.9 / 0.2) + 0.1 * std::log(0.1 / 0.8), 1e-12);
  EXPECT_NEAR(kl[2], -std::log(0.6), 1e-12);  // p = 0: only the x = 0 term
  EXPECT_EQ(kl[3], INFINITY);                 // q = 0 where p puts mass on 1
  expect_values(dist::kl_divergence(p, p), {0, 0, 0, 0}, 0, 1e-12);
  const auto pl = dist::Bernoulli::from_logits(tensor({-1.0, 2.0}, f64()));
  const auto ql = dist::Bernoulli::from_logits(tensor({0.5, -0.5}, f64()));
  expect_matches_monte_carlo(pl, ql, 3);
}

TEST(Kl, CategoricalClosedFormAndEdges) {
  const dist::Categorical p(tensor({{0.2, 0.3, 0.5}, {0.0, 0.5, 0.5}}, f64()));
  const dist::Categorical q(tensor({{0.4, 0.4, 0.2}, {0.6, 0.4, 0.0}}, f64()));
  const auto kl = values(dist::kl_divergence(p, q));
  EXPECT_NEAR(kl[0], 0.2 * std::log(0.5) + 0.3 * std::log(0.75) + 0.5 * std::log(2.5), 1e-12);
  EXPECT_EQ(kl[1], INFINITY);
  expect_values(dist::kl_divergence(p, p), {0, 0}, 0, 1e-12);
  // The 0 * log 0 term of p vanishes.
  const dist::Categorical r(tensor({0.0, 0.5, 0.5}, f64()));
  const dist::Categorical s(tensor({0.2, 0.4, 0.4}, f64()));
  EXPECT_NEAR(dist::kl_divergence(r, s).item(), std::log(1.25), 1e-12);
  const auto pl = dist::Categorical::from_logits(tensor({{1.0, -0.5, 0.2, 0.0}}, f64()));
  const auto ql = dist::Categorical::from_logits(tensor({{0.0, 0.5, -1.0, 0.3}}, f64()));
  expect_matches_monte_carlo(pl, ql, 4);
}

TEST(Kl, MultivariateNormalClosedForm) {
  const Tensor lp = tensor({{1.0, 0.0, 0.0}, {0.5, 1.2, 0.0}, {-0.3, 0.2, 0.8}}, f64());
  const Tensor lq = tensor({{1.5, 0.0, 0.0}, {-0.2, 0.9, 0.0}, {0.4, 0.1, 1.1}}, f64());
  const dist::MultivariateNormal p(tensor({0.0, 1.0, -1.0}, f64()), lp);
  const dist::MultivariateNormal q(tensor({0.5, 0.0, -0.5}, f64()), lq);
  EXPECT_NEAR(dist::kl_divergence(p, p).item(), 0.0, 1e-12);
  expect_matches_monte_carlo(p, q, 5);
  // Diagonal factors: the sum of the normals' KLs.
  const Tensor sp = tensor({1.0, 0.5, 2.0}, f64()), sq = tensor({2.0, 1.5, 1.0}, f64());
  const Tensor mp = tensor({0.0, 1.0, -2.0}, f64()), mq = tensor({1.0, 0.0, -1.0}, f64());
  const Tensor eye3 = eye(3, f64());
  EXPECT_NEAR(dist::kl_divergence(dist::MultivariateNormal(mp, eye3 * sp),
                                  dist::MultivariateNormal(mq, eye3 * sq))
                  .item(),
              sum(dist::kl_divergence(dist::Normal(mp, sp), dist::Normal(mq, sq))).item(), 1e-12);
}

TEST(Kl, IndependentSumsTheBaseKl) {
  const dist::Normal p(random_normal({2, 3}), uniform({2, 3}, 0.5, 2.0));
  const dist::Normal q(random_normal({2, 3}), uniform({2, 3}, 0.5, 2.0));
  const Tensor kl = dist::kl_divergence(p.to_event(1), q.to_event(1));
  EXPECT_EQ(kl.shape(), Shape{2});
  expect_close(kl, sum(dist::kl_divergence(p, q), {-1}));
  EXPECT_EQ(dist::kl_divergence(p.to_event(2), q.to_event(2)).shape(), Shape{});
  expect_matches_monte_carlo(p.to_event(1), q.to_event(1), 6, 50000);
  EMBER_EXPECT_THROW_WITH(dist::kl_divergence(p.to_event(1), q.to_event(2)), ValueError,
                          "Independent(Normal, 1)", "Independent(Normal, 2)");
  EXPECT_FALSE(dist::has_kl(p.to_event(1), q));
  EXPECT_TRUE(dist::has_kl(p.to_event(1), q.to_event(1)));
}

TEST(Kl, MasksZeroTheKl) {
  const dist::Normal p(zeros({3}), ones({3}));
  const dist::Normal q(ones({3}), ones({3}));
  const Tensor mask =
      from_vector(std::vector<std::uint8_t>{1, 0, 1}, {3}, TensorOptions{}.with_dtype(kBool));
  expect_values(dist::kl_divergence(p.mask(mask), q), {0.5, 0.0, 0.5});
  expect_values(dist::kl_divergence(p, q.mask(false)), {0.0, 0.0, 0.0});
  expect_values(dist::kl_divergence(p.mask(true), q), {0.5, 0.5, 0.5});
}

TEST(Kl, UnknownPairsNameBothAndRegisterKlAddsOne) {
  const dist::Normal p(0.0, 1.0);
  const dist::Cauchy q(0.0, 1.0);
  EMBER_EXPECT_THROW_WITH(dist::kl_divergence(p, q), ValueError, "kl_divergence", "Normal",
                          "Cauchy");
  EXPECT_FALSE(dist::has_kl(q, q));
  dist::register_kl("Cauchy", "Cauchy", [](const dist::Distribution& a, const dist::Distribution&) {
    return zeros(a.batch_shape());
  });
  EXPECT_TRUE(dist::has_kl(q, q));
  EXPECT_EQ(dist::kl_divergence(q, q).item(), 0.0);
}
