// Delta: the point mass's log_prob (with log_density and event dims), reparameterized draws
// and their gradient, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(Delta, LogProbIsZeroAtVAndMinusInfinityElsewhere) {
  const dist::Delta d(tensor({1.0, 2.0, 3.0}, f64()));
  EXPECT_EQ(d.batch_shape(), (Shape{3}));
  EXPECT_EQ(d.event_shape(), Shape{});
  expect_values(d.log_prob(tensor({1.0, 0.0, 3.0}, f64())), {0.0, -INFINITY, 0.0});
  // Values broadcast against the batch.
  EXPECT_EQ(d.log_prob(zeros({4, 1}, f64())).shape(), (Shape{4, 3}));
  // log_density is added.
  const dist::Delta w(tensor({1.0, 2.0}, f64()), tensor({-0.5, 2.0}, f64()));
  expect_values(w.log_prob(tensor({1.0, 5.0}, f64())), {-0.5, -INFINITY});
  expect_values(dist::Delta(2.0, 1.5).log_prob(scalar_tensor(2.0)), {1.5});
}

TEST(Delta, EventDimsFormOneEvent) {
  // v (2, 3) with event_dim 1: batch (2), event (3); one mismatch in a row makes it -inf.
  const Tensor v = tensor({{0.0, 1.0, 2.0}, {3.0, 4.0, 5.0}}, f64());
  const dist::Delta d(v, tensor({0.25, 0.5}, f64()), 1);
  EXPECT_EQ(d.batch_shape(), (Shape{2}));
  EXPECT_EQ(d.event_shape(), (Shape{3}));
  expect_values(d.log_prob(tensor({{0.0, 1.0, 2.0}, {3.0, 4.0, 6.0}}, f64())), {0.25, -INFINITY});
  const Tensor draws = d.sample({5});
  EXPECT_EQ(draws.shape(), (Shape{5, 2, 3}));
  expect_close(draws.select(0, 4), v);
  expect_values(d.log_prob(draws).select(0, 0), {0.25, 0.5});
  const dist::Delta all(v, 0.0, 2);
  EXPECT_EQ(all.batch_shape(), Shape{});
  EXPECT_EQ(all.event_shape(), (Shape{2, 3}));
  EXPECT_EQ(all.log_prob(v).item(), 0.0);
  const dist::Distribution e = dist::Delta(tensor({1.0, 2.0}), 0.0, 1).expand({4});
  EXPECT_EQ(e.batch_shape(), (Shape{4}));
  EXPECT_EQ(e.sample({3}).shape(), (Shape{3, 4, 2}));
}

TEST(Delta, RsampleIsVAndCarriesItsGradient) {
  EXPECT_TRUE(dist::Delta(1.0).has_rsample());
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(1);
        return dist::Delta(x[0]).rsample({3}, gen);
      },
      {random_normal({2}, true)});
  // log_prob is differentiable in log_density (v gets no gradient, as in Pyro).
  const Tensor v = tensor({1.0, 2.0}, f64());
  EMBER_EXPECT_GRAD([v](const std::vector<Tensor>& x) { return dist::Delta(v, x[0]).log_prob(v); },
                    {random_normal({2}, true)});
}

TEST(Delta, MomentsAndAccessors) {
  const dist::Delta d(tensor({1.0, -2.0}, f64()), 0.5);
  expect_values(d.mean(), {1.0, -2.0});
  expect_values(d.variance(), {0.0, 0.0});
  expect_values(d.v(), {1.0, -2.0});
  expect_values(d.log_density(), {0.5, 0.5});
  EXPECT_FALSE(d.has_enumerate_support());
}

TEST(Delta, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Delta(zeros({2}), 0.0, 2), ValueError, "Delta", "event_dim", "2");
  EMBER_EXPECT_THROW_WITH(dist::Delta(zeros({2}), 0.0, -1), ValueError, "Delta", "event_dim");
  EMBER_EXPECT_THROW_WITH(dist::Delta(zeros({2, 3}), zeros({3}), 1), ShapeError, "Delta",
                          "log_density", "(3)", "(2)");
  const dist::Delta d(tensor({1.0}));
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({NAN})), ValueError, "Delta.log_prob", "support");
}
