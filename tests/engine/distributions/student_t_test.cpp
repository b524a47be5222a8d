// StudentT: reference log-densities (SciPy), fused partials (df included) against finite
// differences, draws by a KS test, pathwise gradients in loc and scale by finite differences
// and in df against the derivative of the known second moment, shapes and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "gamma_reference.hpp"
#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(StudentT, LogProbMatchesSciPy) {
  expect_scalar_log_probs_match_reference(
      "StudentT", [](const ReferenceCase& c, const TensorOptions& o) {
        return dist::StudentT(scalar_tensor(c.scalar("df"), o), scalar_tensor(c.scalar("loc"), o),
                              scalar_tensor(c.scalar("scale"), o));
      });
}

TEST(StudentT, LogProbGradientsMatchFiniteDifferences) {
  const Tensor value = random_normal({4, 3}, true);
  const Tensor df = uniform({3}, 0.5, 20.0, true);
  const Tensor loc = random_normal({4, 1}, true);
  const Tensor scale = uniform({3}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::StudentT(x[1], x[2], x[3]).log_prob(x[0]); },
      {value, df, loc, scale});
}

TEST(StudentT, RsampleGradientsInLocAndScaleMatchFiniteDifferences) {
  // df held fixed keeps the Gamma draws fixed, so finite differences are valid.
  const Tensor df = uniform({4}, 1.0, 10.0);
  const Tensor loc = random_normal({4}, true);
  const Tensor scale = uniform({4}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [df](const std::vector<Tensor>& x) {
        Generator gen(7);
        return dist::StudentT(df, x[0], x[1]).rsample({3}, gen);
      },
      {loc, scale});
}

TEST(StudentT, PathwiseGradientInDfMatchesTheSecondMoment) {
  // E[X^2] = scale^2 df / (df - 2) for loc 0, so d/ddf = -2 scale^2 / (df - 2)^2.
  const double df = 10.0, scale = 1.5;
  const std::int64_t n = 100000;
  Tensor t = full({n}, df, f64(true));
  Generator gen(17);
  const Tensor x = dist::StudentT(t, 0.0, scale).rsample({}, gen);
  sum(x * x).backward();
  const auto g = t.grad().to_vector<double>();
  double m = 0, s = 0;
  for (double v : g) m += v;
  m /= n;
  for (double v : g) s += (v - m) * (v - m);
  const double err = std::sqrt(s / (n - 1) / n);
  EXPECT_NEAR(m, -2 * scale * scale / ((df - 2) * (df - 2)), 4 * err);
}

TEST(StudentT, DrawsHaveTheRightDistribution) {
  for (double df : {0.7, 3.0, 30.0}) {
    Generator gen(4321);
    const double loc = 1.0, scale = 2.0;
    const auto cdf = [&](double x) { return student_t_cdf(x, df, loc, scale); };
    const auto xs = dist::StudentT(scalar_tensor(df, f64()), loc, scale)
                        .sample({20000}, gen)
                        .to_vector<double>();
    EXPECT_LT(ks_statistic(xs, cdf), ks_critical_001(xs.size())) << "df " << df;
    const auto ys = dist::StudentT(df, loc, scale).sample({20000}, gen).to_vector<double>();
    EXPECT_LT(ks_statistic(ys, cdf), ks_critical_001(ys.size())) << "float32, df " << df;
  }
}

TEST(StudentT, ShapesFollowSampleBatchEvent) {
  const dist::StudentT d(full({3, 1}, 4.0), zeros({4}), 1.0);
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.log_prob(zeros({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.mean().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.variance().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.expand({2, 3, 4}).rsample().shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.df().shape(), (Shape{3, 1}));
  EXPECT_EQ(d.loc().shape(), (Shape{4}));
  EXPECT_EQ(d.scale().shape(), Shape{});
}

TEST(StudentT, MomentsAndEntropyAreClosedForm) {
  const dist::StudentT d(tensor({3.5, 30.0, 1.5, 0.8}, f64()), tensor({1.0, 0.0, 2.0, 2.0}, f64()),
                         tensor({2.0, 0.5, 1.0, 1.0}, f64()));
  const auto mean = d.mean().to_vector<double>();
  EXPECT_EQ(mean[0], 1.0);
  EXPECT_EQ(mean[2], 2.0);
  EXPECT_TRUE(std::isnan(mean[3]));  // df <= 1
  const auto var = d.variance().to_vector<double>();
  EXPECT_NEAR(var[0], 4.0 * 3.5 / 1.5, 1e-12);
  EXPECT_NEAR(var[1], 0.25 * 30.0 / 28.0, 1e-12);
  EXPECT_EQ(var[2], INFINITY);  // 1 < df <= 2
  EXPECT_TRUE(std::isnan(var[3]));
  const auto h = d.entropy().to_vector<double>();
  EXPECT_NEAR(h[0], 2.4140373012424123, 1e-10);  // SciPy
  EXPECT_NEAR(h[1], 0.7593961492272617, 1e-10);
}

TEST(StudentT, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::StudentT(-1.0, 0.0, 1.0), ValueError, "StudentT", "df", "positive",
                          "-1");
  EMBER_EXPECT_THROW_WITH(dist::StudentT(2.0, 0.0, tensor({1.0, -3.0})), ValueError, "scale", "-3",
                          "[1]");
  EMBER_EXPECT_THROW_WITH(dist::StudentT(ones({2}), ones({3}), 1.0), ShapeError, "StudentT", "(2)",
                          "(3)");
  const dist::StudentT d(3.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({NAN})), ValueError, "StudentT.log_prob", "support");
}
