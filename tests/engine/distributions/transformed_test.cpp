// TransformedDistribution: log_prob by change of variables against SciPy's LogNormal (through
// exp of a Normal, not the LogNormal family), draws by KS, gradients, and Pyro's event-dim
// semantics (transforms acting on more dims than the base's events).
#include <gtest/gtest.h>

#include <cmath>
#include <ember/distributions/transformed.hpp>
#include <ember/ember.hpp>
#include <ember/transforms.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;
using transforms::AffineTransform;
using transforms::ExpTransform;
using transforms::StickBreakingTransform;

namespace {

dist::TransformedDistribution log_normal(const Tensor& loc, const Tensor& scale) {
  return dist::TransformedDistribution(dist::Normal(loc, scale), {ExpTransform()});
}

double log_normal_cdf(double x, double loc, double scale) {
  return x <= 0 ? 0.0 : 0.5 * std::erfc(-(std::log(x) - loc) / (scale * std::sqrt(2.0)));
}

}  // namespace

TEST(TransformedDistribution, ExpOfNormalMatchesSciPyLogNormal) {
  for (const auto& c : reference_cases("LogNormal")) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      const auto d =
          log_normal(scalar_tensor(c.scalar("loc"), o), scalar_tensor(c.scalar("scale"), o));
      const double lp = d.log_prob(scalar_tensor(c.value[0], o)).item();
      EXPECT_NEAR(lp, c.log_prob, (dtype == kFloat64 ? 1e-12 : 1e-5) * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

TEST(TransformedDistribution, DrawsPassAKsTest) {
  Generator gen(2024);
  const double loc = 0.3, scale = 0.8;
  const auto d = log_normal(scalar_tensor(loc, f64()), scalar_tensor(scale, f64()));
  const auto xs = d.sample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(xs, [&](double x) { return log_normal_cdf(x, loc, scale); }),
            ks_critical_001(xs.size()));
  const auto rs = d.rsample({20000}, gen).to_vector<double>();
  EXPECT_LT(ks_statistic(rs, [&](double x) { return log_normal_cdf(x, loc, scale); }),
            ks_critical_001(rs.size()));
}

TEST(TransformedDistribution, GradientsMatchFiniteDifferences) {
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return log_normal(x[1], x[2]).log_prob(x[0]); },
      {uniform({4, 3}, 0.2, 3.0, true), random_normal({3}, true), uniform({4, 1}, 0.5, 2.0, true)});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(11);
        return log_normal(x[0], x[1]).rsample({3}, gen);
      },
      {random_normal({4}, true), uniform({4}, 0.5, 1.5, true)});
}

TEST(TransformedDistribution, PropertiesFollowBaseAndLastTransform) {
  const auto d = log_normal(zeros({2, 3}), ones({3}));
  EXPECT_EQ(d.name(), "TransformedDistribution");
  EXPECT_TRUE(d.has_rsample());
  EXPECT_EQ(d.batch_shape(), (Shape{2, 3}));
  EXPECT_EQ(d.event_shape(), Shape{});
  EXPECT_EQ(d.support().kind(), constraints::Kind::Positive);
  EXPECT_EQ(d.sample({5}).shape(), (Shape{5, 2, 3}));
  EXPECT_EQ(d.transforms().size(), 1u);
  EXPECT_EQ(d.base_dist().name(), "Normal");
  EXPECT_FALSE(d.sample({2}).requires_grad());
  const dist::Distribution e = d.expand({4, 2, 3});
  EXPECT_EQ(e.batch_shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(e.sample().shape(), (Shape{4, 2, 3}));
  // A discrete base has no reparameterized draws.
  const dist::TransformedDistribution b(dist::Bernoulli(0.3), {AffineTransform(1.0, 2.0)});
  EXPECT_FALSE(b.has_rsample());
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({-1.0})), ValueError, "TransformedDistribution",
                          "support");
}

TEST(TransformedDistribution, AffineWithEventDimReinterpretsBatchDims) {
  // An affine map acting on vectors of a Normal with batch (3): the result is a Normal with
  // loc and scale over one event of 3.
  const Tensor loc = tensor({1.0, -2.0, 0.5}, f64()), scale = tensor({2.0, 0.5, 3.0}, f64());
  const dist::TransformedDistribution d(dist::Normal(zeros({3}, f64()), ones({3}, f64())),
                                        {AffineTransform(loc, scale, 1)});
  EXPECT_EQ(d.batch_shape(), Shape{});
  EXPECT_EQ(d.event_shape(), Shape{3});
  EXPECT_EQ(d.base_dist().event_shape(), Shape{3});
  const Tensor x = random_normal({5, 3});
  expect_close(d.log_prob(x), dist::Normal(loc, scale).to_event(1).log_prob(x), 1e-12, 1e-12);
  EXPECT_EQ(d.log_prob(x).shape(), Shape{5});
}

TEST(TransformedDistribution, AffineParametersBroadcastTheBase) {
  // A scalar base pushed through an affine map with loc of shape (3) has batch shape (3).
  const Tensor loc = tensor({1.0, 2.0, 3.0}, f64());
  const dist::TransformedDistribution d(dist::Normal(0.0, 1.0), {AffineTransform(loc, 2.0)});
  EXPECT_EQ(d.batch_shape(), Shape{3});
  EXPECT_EQ(d.sample({4}).shape(), (Shape{4, 3}));
  const Tensor x = random_normal({3});
  expect_close(d.log_prob(x), dist::Normal(loc, 2.0).log_prob(x), 1e-6, 1e-6);
}

TEST(TransformedDistribution, StickBreakingGivesASimplexDistribution) {
  const dist::Normal base(zeros({2, 3}, f64()), ones({2, 3}, f64()));
  const dist::TransformedDistribution d(base, {StickBreakingTransform()});
  EXPECT_EQ(d.batch_shape(), Shape{2});
  EXPECT_EQ(d.event_shape(), Shape{4});
  EXPECT_EQ(d.support().kind(), constraints::Kind::Simplex);
  Generator gen(3);
  const Tensor y = d.sample({7}, gen);
  EXPECT_EQ(y.shape(), (Shape{7, 2, 4}));
  EXPECT_TRUE(all(constraints::simplex.check(y)));
  const StickBreakingTransform t;
  const Tensor x = t.inverse(y);
  expect_close(d.log_prob(y), base.to_event(1).log_prob(x) - t.log_abs_det_jacobian(x, y), 1e-10,
               1e-10);
  EXPECT_EQ(d.log_prob(y).shape(), (Shape{7, 2}));
}

TEST(TransformedDistribution, ShapeErrorsNameTheBase) {
  EMBER_EXPECT_THROW_WITH(
      dist::TransformedDistribution(dist::Normal(0.0, 1.0), {StickBreakingTransform()}), ShapeError,
      "TransformedDistribution", "Normal");
}
