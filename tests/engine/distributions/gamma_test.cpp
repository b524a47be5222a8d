// Gamma: reference log-densities (SciPy), fused partials against finite differences, the
// Marsaglia-Tsang sampler by KS tests, the implicit reparameterization gradient against
// finite differences of the CDF, pathwise gradients of expectations, shapes and validation.
#include "kernels/math/distributions/gamma.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "gamma_reference.hpp"
#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

// Per-draw gradients of g(x) in alpha: alpha is repeated n times so each draw has its own
// leaf; returns the draws and d g(x_i) / d alpha.
struct PathwiseDraws {
  std::vector<double> x, grad;
};
PathwiseDraws pathwise(double alpha, double rate, std::int64_t n, std::uint64_t seed,
                       const std::function<Tensor(const Tensor&)>& g) {
  Tensor a = full({n}, alpha, f64(true));
  Generator gen(seed);
  const Tensor x = dist::Gamma(a, rate).rsample({}, gen);
  sum(g(x)).backward();
  return {x.detach().to_vector<double>(), a.grad().to_vector<double>()};
}

// Mean and standard error of the mean.
std::pair<double, double> mean_and_error(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / (v.size() - 1) / v.size())};
}

}  // namespace

TEST(Gamma, LogProbMatchesSciPy) {
  for (const auto& c : reference_cases("Gamma")) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      const dist::Gamma d(scalar_tensor(c.scalar("concentration"), o),
                          scalar_tensor(c.scalar("rate"), o));
      const double lp = d.log_prob(scalar_tensor(c.value[0], o)).item();
      // float32 rounds each term of the sum (lgamma(200) is 857), so its tolerance scales
      // with their size.
      const double a = c.scalar("concentration"), b = c.scalar("rate"), x = c.value[0];
      const double terms = 1 + std::abs(a * std::log(b)) + std::abs((a - 1) * std::log(x)) +
                           std::abs(b * x) + std::abs(std::lgamma(a));
      EXPECT_NEAR(lp, c.log_prob,
                  dtype == kFloat64 ? 1e-12 * (1 + std::abs(c.log_prob)) : 1e-6 * terms)
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

TEST(Gamma, LogProbGradientsMatchFiniteDifferences) {
  // Broadcasting value (4, 3) against concentration (3) and rate (4, 1).
  const Tensor value = uniform({4, 3}, 0.2, 3.0, true);
  const Tensor concentration = uniform({3}, 0.3, 4.0, true);
  const Tensor rate = uniform({4, 1}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) { return dist::Gamma(x[1], x[2]).log_prob(x[0]); },
      {value, concentration, rate});
}

TEST(Gamma, ImplicitGradientMatchesCdfDerivative) {
  // dx/dalpha from the sample-grad kernel against -(dP/dalpha) / f with P by an independent
  // incomplete gamma function and dP/dalpha by central differences; relative tolerance 1e-6.
  for (double alpha : {0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1000.0}) {
    const std::int64_t n = 64;
    Tensor a = full({n}, alpha, f64(true));
    Generator gen(11);
    const Tensor x = dist::Gamma(a, 1.0).rsample({}, gen);
    sum(x).backward();
    const auto xs = x.detach().to_vector<double>();
    const auto grads = a.grad().to_vector<double>();
    for (std::int64_t i = 0; i < n; ++i) {
      const double expected = gamma_implicit_grad(alpha, xs[i]);
      EXPECT_NEAR(grads[i], expected, 1e-6 * std::abs(expected) + 1e-300)
          << "alpha " << alpha << ", x " << xs[i];
    }
  }
}

TEST(Gamma, ImplicitGradientKernelIsAccurateAcrossTheSupport) {
  // The kernel itself on a grid of quantile-like points, from deep in the lower tail to far
  // in the upper one, in float64 (relative 1e-6) and float32 (relative 1e-4).
  const kernels::StandardGammaSampleGrad<double> grad64{};
  const kernels::StandardGammaSampleGrad<float> grad32{};
  for (double alpha : {0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1000.0}) {
    const double sd = std::sqrt(alpha);
    for (double x : {1e-30, 1e-6, 0.01, 0.5 * alpha, alpha - 2 * sd, alpha, alpha + 1.0,
                     alpha + 2 * sd, alpha + 5 * sd + 5, 3 * alpha + 40}) {
      if (x <= 0) continue;
      const double expected = gamma_implicit_grad(alpha, x);
      EXPECT_NEAR(grad64(x, &alpha), expected, 1e-6 * std::abs(expected))
          << "alpha " << alpha << ", x " << x;
      const float a32 = static_cast<float>(alpha);
      if (static_cast<float>(x) > 0)
        EXPECT_NEAR(grad32(static_cast<float>(x), &a32), expected, 1e-4 * std::abs(expected))
            << "float32, alpha " << alpha << ", x " << x;
    }
  }
}

TEST(Gamma, ImplicitGradientIsContinuousAtTheAsymptoticSwitch) {
  // From alpha = 1e6 on the kernel uses the Wilson-Hilferty form; just below, the series and
  // the continued fraction.
  const kernels::StandardGammaSampleGrad<double> grad{};
  const double above = 1e6, below = std::nextafter(1e6, 0.0);
  for (double z : {-5.0, -1.0, 0.0, 0.5, 3.0, 6.0}) {
    const double x = above + z * 1e3;
    const double a = grad(x, &above), b = grad(x, &below);
    EXPECT_NEAR(a, b, 1e-8 * std::abs(b)) << "z " << z;
  }
}

TEST(Gamma, RsampleGradientInRateMatchesFiniteDifferences) {
  // With the concentration held fixed the Gamma(a, 1) draws do not move, so finite
  // differences in rate are valid (in alpha they are not: a perturbation may change the
  // accepted proposal; see the expectation checks below).
  const Tensor concentration = uniform({4}, 0.3, 5.0);
  const Tensor rate = uniform({4}, 0.5, 2.0, true);
  EMBER_EXPECT_GRAD(
      [concentration](const std::vector<Tensor>& x) {
        Generator gen(7);
        return dist::Gamma(concentration, x[0]).rsample({3}, gen);
      },
      {rate});
}

TEST(Gamma, PathwiseGradientsMatchDerivativesOfExpectations) {
  // d/dalpha E[X] = 1 / rate and d/dalpha E[X^2] = (2 alpha + 1) / rate^2, estimated from
  // 50000 draws at a fixed seed, within 4 standard errors.
  for (double alpha : {0.05, 0.3, 3.0, 40.0}) {
    const double rate = 2.0;
    const auto first = pathwise(alpha, rate, 50000, 21, [](const Tensor& x) { return x; });
    const auto [m1, e1] = mean_and_error(first.grad);
    EXPECT_NEAR(m1, 1 / rate, 4 * e1) << "alpha " << alpha;
    const auto second = pathwise(alpha, rate, 50000, 22, [](const Tensor& x) { return x * x; });
    const auto [m2, e2] = mean_and_error(second.grad);
    EXPECT_NEAR(m2, (2 * alpha + 1) / (rate * rate), 4 * e2) << "alpha " << alpha;
  }
}

TEST(Gamma, DrawsHaveTheRightDistribution) {
  for (double alpha : {0.1, 0.5, 1.0, 2.5, 50.0}) {
    Generator gen(1234);
    const double rate = 1.5;
    const auto xs = dist::Gamma(scalar_tensor(alpha, f64()), scalar_tensor(rate, f64()))
                        .sample({20000}, gen)
                        .to_vector<double>();
    const auto cdf = [&](double x) { return gamma_cdf(alpha, rate * x); };
    EXPECT_LT(ks_statistic(xs, cdf), ks_critical_001(xs.size())) << "alpha " << alpha;
    // float32 draws pass the same test.
    const auto ys = dist::Gamma(alpha, rate).sample({20000}, gen).to_vector<double>();
    EXPECT_LT(ks_statistic(ys, cdf), ks_critical_001(ys.size())) << "float32, alpha " << alpha;
    for (double y : ys) ASSERT_GT(y, 0.0);
  }
  // Tiny concentrations underflow to the smallest normal number, never to 0.
  Generator gen(5);
  const auto zs = dist::Gamma(0.01, 1.0).sample({5000}, gen).to_vector<double>();
  for (double z : zs) ASSERT_GT(z, 0.0);
}

TEST(Gamma, EachDrawDependsOnlyOnSeedOffsetAndElement) {
  // Rejection retries use extra Philox rounds of the element's own counter, so the first
  // draws of a larger batch equal a smaller batch's.
  Generator a(8), b(8);
  const dist::Gamma d(0.7, 1.0);
  const auto small = d.sample({10}, a).to_vector<double>();
  const auto large = d.sample({1000}, b).to_vector<double>();
  EXPECT_EQ(small, std::vector<double>(large.begin(), large.begin() + 10));
}

TEST(Gamma, ShapesFollowSampleBatchEvent) {
  const dist::Gamma d(ones({3, 1}), ones({4}));
  EXPECT_EQ(d.batch_shape(), (Shape{3, 4}));
  EXPECT_EQ(d.event_shape(), Shape{});
  EXPECT_EQ(d.sample({2}).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(d.rsample().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.log_prob(ones({4})).shape(), (Shape{3, 4}));
  EXPECT_EQ(d.mean().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.expand({2, 3, 4}).sample({5}).shape(), (Shape{5, 2, 3, 4}));
  EXPECT_EQ(d.concentration().shape(), (Shape{3, 1}));
  EXPECT_EQ(d.rate().shape(), (Shape{4}));
}

TEST(Gamma, MomentsAndEntropyAreClosedForm) {
  const dist::Gamma d(tensor({2.5, 0.3}, f64()), tensor({3.0, 0.5}, f64()));
  expect_values(d.mean(), {2.5 / 3.0, 0.3 / 0.5});
  expect_values(d.variance(), {2.5 / 9.0, 0.3 / 0.25});
  expect_values(d.entropy(), {0.6313356208369447, -0.3628217801620722});  // SciPy
}

TEST(Gamma, InvalidArgumentsNameTheDistributionAndValue) {
  EMBER_EXPECT_THROW_WITH(dist::Gamma(-1.0, 1.0), ValueError, "Gamma", "concentration", "positive",
                          "-1");
  EMBER_EXPECT_THROW_WITH(dist::Gamma(tensor({1.0, 0.0}), 1.0), ValueError, "concentration", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::Gamma(1.0, -2.0), ValueError, "Gamma", "rate", "-2");
  EMBER_EXPECT_THROW_WITH(dist::Gamma(ones({2}), ones({3})), ShapeError, "Gamma", "(2)", "(3)");
  const dist::Gamma d(2.0, 1.0);
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({-1.0})), ValueError, "Gamma.log_prob", "support");
  set_validation_enabled(false);
  EXPECT_NO_THROW(dist::Gamma(-1.0, 1.0));
  EXPECT_EQ(d.log_prob(tensor({-1.0})).item(), -INFINITY);
  set_validation_enabled(true);
}
