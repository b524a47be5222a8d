// What the family table (families_test.cpp) leaves out of the Gamma-based families (Gamma,
// Beta, StudentT, Dirichlet): the implicit reparameterization gradient against finite
// differences of the CDF, pathwise gradients against derivatives of known expectations,
// the sampler's tails and its per-element streams, Beta at its boundary and Dirichlet's
// draws by their moments.
#include "kernels/math/distributions/gamma.hpp"

#include <algorithm>
#include <cmath>

#include "gamma_reference.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

// Mean and standard error of the mean.
std::pair<double, double> mean_and_error(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / (v.size() - 1) / v.size())};
}

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

// ---------------------------------------------------------------------- Gamma ----
TEST(Gamma, ImplicitGradientMatchesCdfDerivative) {
  // dx/dalpha from the sample-grad kernel against -(dP/dalpha) / f with P by an independent
  // incomplete gamma function and dP/dalpha by central differences; relative tolerance 1e-6.
  for (double alpha : {0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1000.0}) {
    const auto draws = pathwise(alpha, 1.0, 64, 11, [](const Tensor& x) { return x; });
    for (std::size_t i = 0; i < draws.x.size(); ++i) {
      const double expected = gamma_implicit_grad(alpha, draws.x[i]);
      EXPECT_NEAR(draws.grad[i], expected, 1e-6 * std::abs(expected) + 1e-300)
          << "alpha " << alpha << ", x " << draws.x[i];
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

TEST(Gamma, SlowPathwiseGradientsMatchDerivativesOfExpectations) {
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

TEST(Gamma, TinyConcentrationsUnderflowToTheSmallestNormalNotZero) {
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

// ----------------------------------------------------------------------- Beta ----
TEST(Beta, LogProbAtTheBoundary) {
  // Beta(1, b) has density b at 0; Beta(a, 1) density a at 1; a < 1 makes 0 infinite.
  EXPECT_NEAR(dist::Beta(1.0, 3.0).log_prob(scalar_tensor(0.0, f64())).item(), std::log(3.0),
              1e-12);
  EXPECT_NEAR(dist::Beta(2.0, 1.0).log_prob(scalar_tensor(1.0, f64())).item(), std::log(2.0),
              1e-12);
  EXPECT_EQ(dist::Beta(0.5, 1.0).log_prob(scalar_tensor(0.0, f64())).item(), INFINITY);
  EXPECT_EQ(dist::Beta(2.0, 2.0).log_prob(scalar_tensor(1.0, f64())).item(), -INFINITY);
}

// A Beta draw is x / (x + y) of two Gamma draws, kept inside (0, 1), in one kernel with its
// gradient: the same values and gradients, bit for bit, as the add, division and clamp it
// replaces applied to the same Gamma draws (the generator's next two draws), in both
// precisions, including draws pushed to the boundary by a tiny concentration.
TEST(Beta, DrawIsTheClampedRatioOfTwoGammaDrawsBitForBit) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (auto [a, b] : {std::pair{2.0, 5.0}, std::pair{0.01, 3.0}, std::pair{4.0, 0.005}}) {
      SCOPED_TRACE(::testing::Message() << dtype << " a " << a << ", b " << b);
      const TensorOptions opts = TensorOptions{}.with_dtype(dtype).with_requires_grad(true);
      const std::int64_t n = 2000;
      Tensor ta = full({n}, a, opts), tb = full({n}, b, opts);
      Generator fused_gen(17);
      const Tensor z = dist::Beta(ta, tb).rsample({}, fused_gen);
      const Tensor w = linspace(-1.0, 2.0, n, TensorOptions{}.with_dtype(dtype));
      sum(z * w).backward();

      Tensor ra = full({n}, a, opts), rb = full({n}, b, opts);
      Generator parts_gen(17);
      const Tensor x = dist::Gamma(ra, 1.0).rsample({}, parts_gen);
      const Tensor y = dist::Gamma(rb, 1.0).rsample({}, parts_gen);
      const bool f32 = dtype == kFloat32;
      const Tensor ref = clamp(x / (x + y), f32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308,
                               f32 ? 1.0 - 1.1920928955078125e-07 : 1.0 - 2.220446049250313e-16);
      sum(ref * w).backward();

      EXPECT_EQ(z.detach().to_vector<double>(), ref.detach().to_vector<double>());
      EXPECT_EQ(ta.grad().to_vector<double>(), ra.grad().to_vector<double>());
      EXPECT_EQ(tb.grad().to_vector<double>(), rb.grad().to_vector<double>());
      // Inside (0, 1), and on its clamped ends where a concentration is tiny (float32).
      const auto zs = z.detach().to_vector<double>();
      const double lo = *std::min_element(zs.begin(), zs.end()),
                   hi = *std::max_element(zs.begin(), zs.end());
      EXPECT_GT(lo, 0.0);
      EXPECT_LT(hi, 1.0);
      if (f32 && a < 0.1) EXPECT_EQ(lo, 1.1754943508222875e-38);
      if (f32 && b < 0.1) EXPECT_EQ(hi, 1.0 - 1.1920928955078125e-07);
    }
  }
}

TEST(Beta, SlowPathwiseGradientsMatchDerivativesOfExpectations) {
  // E[X] = a / (a + b): d/da = b / (a + b)^2, d/db = -a / (a + b)^2, from per-draw gradients
  // (each draw has its own parameter leaves) within 4 standard errors.
  for (auto [a, b] : {std::pair{0.2, 0.7}, std::pair{2.0, 5.0}, std::pair{30.0, 3.0}}) {
    const std::int64_t n = 50000;
    Tensor ta = full({n}, a, f64(true)), tb = full({n}, b, f64(true));
    Generator gen(31);
    sum(dist::Beta(ta, tb).rsample({}, gen)).backward();
    const auto [ma, ea] = mean_and_error(ta.grad().to_vector<double>());
    const auto [mb, eb] = mean_and_error(tb.grad().to_vector<double>());
    EXPECT_NEAR(ma, b / ((a + b) * (a + b)), 4 * ea) << "a " << a << ", b " << b;
    EXPECT_NEAR(mb, -a / ((a + b) * (a + b)), 4 * eb) << "a " << a << ", b " << b;
  }
}

// ------------------------------------------------------------------- StudentT ----
TEST(StudentT, PathwiseGradientInDfMatchesTheSecondMoment) {
  // E[X^2] = scale^2 df / (df - 2) for loc 0, so d/ddf = -2 scale^2 / (df - 2)^2.
  const double df = 10.0, scale = 1.5;
  Tensor t = full({100000}, df, f64(true));
  Generator gen(17);
  const Tensor x = dist::StudentT(t, 0.0, scale).rsample({}, gen);
  sum(x * x).backward();
  const auto [m, err] = mean_and_error(t.grad().to_vector<double>());
  EXPECT_NEAR(m, -2 * scale * scale / ((df - 2) * (df - 2)), 4 * err);
}

// ------------------------------------------------------------------ Dirichlet ----
TEST(Dirichlet, DrawsMatchTheMoments) {
  Generator gen(99);
  const std::vector<double> alpha{0.3, 2.0, 5.0};
  const double total = 7.3;
  const std::int64_t n = 40000;
  const Tensor draws = dist::Dirichlet(from_vector(alpha, {3}, f64())).sample({n}, gen);
  EXPECT_EQ(draws.shape(), (Shape{n, 3}));
  expect_close(sum(draws, {-1}), ones({n}, f64()), 1e-12, 1e-12);
  const auto m = mean(draws, {0}).to_vector<double>();
  const auto centered = draws - mean(draws, {0}, true);
  const auto v = (sum(centered * centered, {0}) / static_cast<double>(n - 1)).to_vector<double>();
  const auto cov01 =
      (sum(centered.select(1, 0) * centered.select(1, 1)) / static_cast<double>(n - 1)).item();
  for (int k = 0; k < 3; ++k) {
    const double mk = alpha[k] / total;
    const double vk = mk * (1 - mk) / (total + 1);
    EXPECT_NEAR(m[k], mk, 4 * std::sqrt(vk / n)) << "component " << k;
    EXPECT_NEAR(v[k], vk, 0.05 * vk) << "component " << k;
  }
  const double c01 = -alpha[0] * alpha[1] / (total * total * (total + 1));
  EXPECT_NEAR(cov01, c01, 0.08 * std::abs(c01));
  // float32 draws lie on the simplex as well.
  const Tensor f = dist::Dirichlet(from_vector(alpha, {3})).sample({100}, gen);
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_TRUE(all(constraints::simplex.check(f)));
}

TEST(Dirichlet, PathwiseGradientsMatchDerivativesOfTheMean) {
  // d E[X_j] / d a_k = (delta_jk a0 - a_j) / a0^2, from per-draw gradients of X_0.
  const std::vector<double> alpha{0.4, 1.5, 3.0};
  const double a0 = 4.9;
  const std::int64_t n = 50000;
  Tensor a = from_vector(alpha, {1, 3}, f64()).expand({n, 3}).clone().requires_grad_();
  Generator gen(5);
  sum(dist::Dirichlet(a).rsample({}, gen).select(1, 0)).backward();
  const Tensor g = a.grad();
  for (int k = 0; k < 3; ++k) {
    const auto [m, err] = mean_and_error(g.select(1, k).to_vector<double>());
    const double expected = ((k == 0 ? a0 : 0.0) - alpha[0]) / (a0 * a0);
    EXPECT_NEAR(m, expected, 4 * err) << "d/da_" << k;
  }
}

}  // namespace
}  // namespace ember::test
