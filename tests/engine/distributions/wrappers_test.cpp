// The shape wrappers shared by every family: to_event (Independent), mask (Masked) and
// their expand, checked on Normal and on a family with event dims of its own.
#include <gtest/gtest.h>

#include <ember/ember.hpp>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(Independent, ExpandKeepsTheBaseEventDimsLast) {
  // MVN with batch (2, 3) and event (4); to_event(1) makes batch (2) and event (3, 4).
  const Tensor loc = zeros({2, 3, 4}, f64());
  const Tensor scale_tril = eye(4, f64());
  const dist::Distribution d = dist::MultivariateNormal(loc, scale_tril).to_event(1);
  EXPECT_EQ(d.batch_shape(), (Shape{2}));
  EXPECT_EQ(d.event_shape(), (Shape{3, 4}));
  const dist::Distribution e = d.expand({5, 2});
  EXPECT_EQ(e.batch_shape(), (Shape{5, 2}));
  EXPECT_EQ(e.event_shape(), (Shape{3, 4}));
  EXPECT_EQ(e.sample({7}).shape(), (Shape{7, 5, 2, 3, 4}));
  EXPECT_EQ(e.log_prob(zeros({5, 2, 3, 4}, f64())).shape(), (Shape{5, 2}));
  // Each of the 3 * 4 standard-normal coordinates contributes -log(2 pi) / 2.
  expect_values(e.log_prob(zeros({3, 4}, f64())).reshape({-1}),
                std::vector<double>(10, -12 * 0.5 * std::log(2 * M_PI)), 1e-12);
}

TEST(Independent, LogProbSumsTheReinterpretedDims) {
  const dist::Normal base(random_normal({2, 3}), uniform({2, 3}, 0.5, 2.0));
  const Tensor x = random_normal({4, 2, 3});
  expect_close(base.to_event(2).log_prob(x), sum(base.log_prob(x), {-1, -2}));
  expect_close(base.to_event(1).to_event(1).log_prob(x), base.to_event(2).log_prob(x));
  EXPECT_EQ(base.to_event(1).support().event_dim(), 1);
}

TEST(Independent, ToEventMovesBatchDimsIntoTheEvent) {
  const dist::Normal d(zeros({3, 1}), ones({4}));
  const dist::Distribution e = d.to_event(1);
  EXPECT_EQ(e.batch_shape(), (Shape{3}));
  EXPECT_EQ(e.event_shape(), (Shape{4}));
  EXPECT_EQ(e.log_prob(zeros({3, 4})).shape(), (Shape{3}));
  expect_close(e.log_prob(zeros({3, 4})), sum(d.log_prob(zeros({3, 4})), {-1}));
  EXPECT_EQ(d.to_event().event_shape(), (Shape{3, 4}));
  EMBER_EXPECT_THROW_WITH(d.to_event(3), ShapeError, "to_event(3)", "(3, 4)");
}

TEST(Masked, ByATensorOrAConstant) {
  const dist::Normal d(zeros({3}), ones({3}));
  const Tensor mask =
      from_vector(std::vector<std::uint8_t>{1, 0, 1}, {3}, TensorOptions{}.with_dtype(kBool));
  const auto lp = d.mask(mask).log_prob(ones({3})).to_vector<double>();
  EXPECT_NEAR(lp[0], -0.5 - 0.5 * std::log(2 * M_PI), 1e-6);
  EXPECT_EQ(lp[1], 0.0);
  EXPECT_EQ(d.mask(false).log_prob(ones({3})).to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

TEST(Masked, ZeroesLogProbAndKeepsShapes) {
  const dist::Normal base(zeros({2, 3}, f64()), ones({2, 3}, f64()));
  const Tensor keep =
      from_vector(std::vector<std::uint8_t>{1, 0, 1}, {3}, TensorOptions{}.with_dtype(kBool));
  const dist::Distribution m = base.mask(keep);
  const Tensor lp = m.log_prob(zeros({2, 3}, f64()));
  const double c = -0.5 * std::log(2 * M_PI);
  expect_values(lp, {c, 0, c, c, 0, c}, 1e-12);
  EXPECT_EQ(m.expand({4, 2, 3}).log_prob(zeros({2, 3}, f64())).shape(), (Shape{4, 2, 3}));
  EMBER_EXPECT_THROW_WITH(base.mask(ones({4}, TensorOptions{}.with_dtype(kBool))), ShapeError,
                          "mask", "(4)", "(2, 3)");
}

// validate_args on one distribution overrides the thread's setting for the values it scores,
// and carries over to its wrappers; other distributions keep following the thread.
TEST(ValidateArgs, OneDistributionsOwnSettingOverridesTheThreads) {
  const double half = 0.3 * std::log(0.4) + 0.7 * std::log(0.6);
  dist::Distribution lax = dist::Bernoulli(0.4);
  lax.validate_args(false);
  EXPECT_FALSE(lax.validates_args());
  EXPECT_NEAR(lax.log_prob(tensor({0.3})).item(), half, 1e-6);
  EXPECT_NEAR(sum(lax.expand({2}).to_event(1).log_prob(tensor({0.3, 0.3}))).item(), 2 * half,
              1e-6);
  EXPECT_NEAR(lax.mask(true).without_rsample().log_prob(tensor({0.3})).item(), half, 1e-6);
  EMBER_EXPECT_THROW_WITH(dist::Bernoulli(0.4).log_prob(tensor({0.3})), ValueError,
                          "Bernoulli.log_prob", "0.3");
  // Strict while the thread's validation is off.
  const ValidationScope off(false);
  EXPECT_NO_THROW(dist::Bernoulli(0.4).log_prob(tensor({0.3})));
  EMBER_EXPECT_THROW_WITH(dist::Bernoulli(0.4).validate_args(true).to_event(0).log_prob(
                              tensor({0.3})),
                          ValueError, "Bernoulli.log_prob", "0.3");
}

// A site given a Bernoulli with validate_args(false) scores intensities in [0, 1] inside a
// model while validation stays on for everything else.
TEST(ValidateArgs, AnObservedSiteScoresIntensities) {
  const Tensor pixels = tensor({0.0, 0.25, 1.0});
  auto model = [&] {
    const Tensor p = full({3}, 0.5);
    sample("x", dist::Bernoulli(p).validate_args(false).to_event(1), pixels);
  };
  const Trace tr = handlers::trace(model).get_trace();
  EXPECT_NEAR(tr.log_prob_sum().item(), 3 * std::log(0.5), 1e-6);
}
