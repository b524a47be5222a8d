// What the family table (families_test.cpp) leaves out of the Gamma-based families (Gamma,
// Beta, StudentT, Dirichlet): the implicit reparameterization gradient against finite
// differences of the CDF, pathwise gradients against derivatives of known expectations,
// the sampler's tails and its per-element streams, Beta at its boundary and Dirichlet's
// draws by their moments.
#include "kernels/math/distributions/gamma.hpp"

#include <algorithm>
#include <cmath>

#include "engine/internal.hpp"
#include "gamma_reference.hpp"
#include "reference.hpp"
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

// Quantile-like points (alpha, x) of Gamma(alpha, 1), from deep in the lower tail to far in
// the upper one, where the implicit gradient kernels are checked.
std::vector<std::pair<double, double>> implicit_gradient_grid() {
  std::vector<std::pair<double, double>> grid;
  for (double alpha : {0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1000.0}) {
    const double sd = std::sqrt(alpha);
    for (double x : {1e-30, 1e-6, 0.01, 0.5 * alpha, alpha - 2 * sd, alpha, alpha + 1.0,
                     alpha + 2 * sd, alpha + 5 * sd + 5, 3 * alpha + 40})
      if (x > 0) grid.emplace_back(alpha, x);
  }
  return grid;
}

TEST(Gamma, ImplicitGradientKernelIsAccurateAcrossTheSupport) {
  // The kernel itself on a grid of quantile-like points, from deep in the lower tail to far
  // in the upper one, in float64 (relative 1e-6) and float32 (relative 1e-4).
  const kernels::StandardGammaSampleGrad<double> grad64{};
  const kernels::StandardGammaSampleGrad<float> grad32{};
  for (const auto& [alpha, x] : implicit_gradient_grid()) {
    const double expected = gamma_implicit_grad(alpha, x);
    EXPECT_NEAR(grad64(x, &alpha), expected, 1e-6 * std::abs(expected))
        << "alpha " << alpha << ", x " << x;
    const float a32 = static_cast<float>(alpha);
    if (static_cast<float>(x) > 0)
      EXPECT_NEAR(grad32(static_cast<float>(x), &a32), expected, 1e-4 * std::abs(expected))
          << "float32, alpha " << alpha << ", x " << x;
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

TEST(Gamma, LogImplicitGradientKernelHoldsBelowTheUnderflow) {
  // d log(x) / dalpha of a draw given by its log: (dx/dalpha) / x on the grid above (relative
  // 1e-6, float32 1e-4), and where x underflows even float64, its limit
  // (psi(alpha + 1) - log x) / alpha, by mpmath (relative 1e-12, float32 1e-6).
  const kernels::LogStandardGammaSampleGrad<double> grad64{};
  const kernels::LogStandardGammaSampleGrad<float> grad32{};
  for (const auto& [alpha, x] : implicit_gradient_grid()) {
    const double expected = gamma_implicit_grad(alpha, x) / x;
    EXPECT_NEAR(grad64(std::log(x), &alpha), expected, 1e-6 * std::abs(expected))
        << "alpha " << alpha << ", x " << x;
    const float a32 = static_cast<float>(alpha);
    EXPECT_NEAR(grad32(std::log(static_cast<float>(x)), &a32), expected, 1e-4 * std::abs(expected))
        << "float32, alpha " << alpha << ", x " << x;
  }
  struct Deep {
    double alpha, log_x, expected;
  };
  for (const Deep& c :
       {Deep{0.01, -800.0, 79943.911454213133}, Deep{0.01, -10000.0, 999943.91145421313},
        Deep{0.5, -800.0, 1600.0729799479572}, Deep{0.5, -10000.0, 20000.072979947957}}) {
    EXPECT_NEAR(grad64(c.log_x, &c.alpha), c.expected, 1e-12 * c.expected) << c.alpha;
    const float a32 = static_cast<float>(c.alpha);
    EXPECT_NEAR(grad32(static_cast<float>(c.log_x), &a32), c.expected, 1e-6 * c.expected)
        << "float32, alpha " << c.alpha << ", log x " << c.log_x;
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

TEST(Beta, PartialsAtTheBoundaryAreFiniteWhereTheDensityIs) {
  // Where the matching concentration is 1 the term (a - 1) log x is held at 0 on the boundary,
  // and so is its partial in a (it has no finite one there: the density is infinite for a
  // smaller a and 0 for a larger). By mpmath: Beta(1, 3) at 0 has partials psi(4) - psi(1)
  // = 11/6 and psi(4) - psi(3) = 1/3 in the concentrations and -(b - 1) = -2 in x; Beta(2, 1)
  // at 1 has psi(3) - psi(2) = 1/2, psi(3) - psi(1) = 3/2 and a - 1 = 1.
  const auto beta = [](const auto& p) { return dist::Beta(p[0], p[1]); };
  expect_log_prob_at(beta, kFloat64, {1.0, 3.0}, 0.0, std::log(3.0),
                     {-2.0, 1.8333333333333333, 0.33333333333333333}, 1e-15, 1e-15);
  expect_log_prob_at(beta, kFloat64, {2.0, 1.0}, 1.0, std::log(2.0), {1.0, 0.5, 1.5}, 1e-15, 1e-15);
}

// Float32 Beta(0.01, 0.01) puts most of its mass within 1e-38 of 0 or 1, where both Gamma draws
// underflow: once clamped to the smallest normal number, their ratio was exactly 1/2 for 17.6%
// of the draws. By mpmath: P(0.45 < X < 0.55) = 0.0019793345598802 and the variance
// ab / ((a + b)^2 (a + b + 1)) = 0.24509803921568627, met by 200000 draws within 5 standard
// errors (9.9e-5 and 6.3e-5, the latter from the fourth central moment).
TEST(Beta, SmallConcentrationsKeepTheirMassAwayFromTheCentre) {
  Generator gen(2024);
  const Tensor draws = dist::Beta(scalar_tensor(0.01), scalar_tensor(0.01)).sample({200000}, gen);
  ASSERT_EQ(draws.dtype(), kFloat32);
  const auto xs = draws.to_vector<double>();
  const double n = static_cast<double>(xs.size());
  double centre = 0, m = 0, v = 0;
  for (double x : xs) {
    centre += (x > 0.45 && x < 0.55) / n;
    m += x / n;
  }
  for (double x : xs) v += (x - m) * (x - m) / (n - 1);
  EXPECT_NEAR(centre, 0.0019793345598802, 5 * 9.9e-5);
  EXPECT_NEAR(v, 0.24509803921568627, 5 * 6.3e-5);
}

// A Beta draw is x / (x + y) of two Gamma draws taken from their logs, sigmoid(log x - log y),
// kept inside (0, 1), in one kernel with its gradient: the same values and gradients, bit for
// bit, as the subtraction, sigmoid and clamp it replaces applied to the same log-Gamma draws
// (the generator's next two draws), in both precisions, including draws pushed to the
// boundary by a tiny concentration.
TEST(Beta, DrawIsTheClampedSigmoidOfTwoLogGammaDrawsBitForBit) {
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
      const Tensor x = detail::log_standard_gamma(ra, {n}, parts_gen);
      const Tensor y = detail::log_standard_gamma(rb, {n}, parts_gen);
      const bool f32 = dtype == kFloat32;
      const Tensor ref =
          clamp(sigmoid(x - y), f32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308,
                f32 ? 1.0 - 1.1920928955078125e-07 : 1.0 - 2.220446049250313e-16);
      sum(ref * w).backward();

      EXPECT_EQ(z.detach().to_vector<double>(), ref.detach().to_vector<double>());
      EXPECT_EQ(ta.grad().to_vector<double>(), ra.grad().to_vector<double>());
      EXPECT_EQ(tb.grad().to_vector<double>(), rb.grad().to_vector<double>());
      // Inside (0, 1), and at its ends where a concentration is tiny (float32): 1 - eps, the
      // clamp's, and the bottom of the normal range (the host's float sigmoid stops at
      // exp(-87.34) = 1.17550e-38, just above the clamp).
      const auto zs = z.detach().to_vector<double>();
      const double lo = *std::min_element(zs.begin(), zs.end()),
                   hi = *std::max_element(zs.begin(), zs.end());
      EXPECT_GT(lo, 0.0);
      EXPECT_LT(hi, 1.0);
      if (f32 && a < 0.1) EXPECT_LT(lo, 1.1756e-38);
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

TEST(StudentT, HalfStepLogGammaIsAccurateForEveryX) {
  // C(x) = lgamma(x + 1/2) - lgamma(x) - log(x) / 2 and C'(x) = psi(x + 1/2) - psi(x) - 1/(2x)
  // by mpmath (80 digits), at points exact in float32, across both switch points (4 and 10):
  // within 4 ulps relative in each dtype.
  struct Point {
    double x, value, slope;
  };
  for (const Point& p :
       {Point{0.0009765625, -2.8947231964662516, 510.6169115365883},
        Point{0.25, -0.39159439270683678, 1.1415926535897932},
        Point{0.5, -0.22579135264472743, 0.38629436111989062},
        Point{3.75, -0.033236571134205304, 0.0088124968153571667},
        Point{9.5, -0.013151840019046447, 0.0013831337164031534},
        Point{10.0, -0.01249480717472882, 0.0012484452309652676},
        Point{10.5, -0.011900274909987181, 0.0011325071499871133},
        Point{123.5, -0.001012142984024647, 8.1954449733359784e-6},
        Point{524288.0, -2.3841857910152636e-7, 4.5474735088625732e-13},
        Point{1125899906842624.0, -1.1102230246251565e-16, 9.8607613152626476e-32}}) {
    const auto c64 = kernels::half_step_log_gamma(p.x);
    EXPECT_NEAR(c64.value, p.value, 8.9e-16 * std::abs(p.value)) << p.x;
    EXPECT_NEAR(c64.slope, p.slope, 8.9e-16 * std::abs(p.slope)) << p.x;
    const auto c32 = kernels::half_step_log_gamma(static_cast<float>(p.x));
    EXPECT_NEAR(c32.value, p.value, 4.8e-7 * std::abs(p.value)) << "float32 " << p.x;
    EXPECT_NEAR(c32.slope, p.slope, 4.8e-7 * std::abs(p.slope)) << "float32 " << p.x;
  }
}

TEST(StudentT, LogProbAndPartialsStayAccurateForLargeDf) {
  // lgamma((df+1)/2) - lgamma(df/2) grows like log(df) / 2 while each term grows like
  // df log(df) / 2, and the digamma difference of the df partial likewise: taken as differences
  // they cancelled (float64 df = 1e15 gave +2.03 at 0.5, float32 df = 1e6 gave -1.105). The
  // density tends to Normal(0, 1)'s, -1.0439385332046727 at 0.5. Values and partials (x, df,
  // loc, scale) by mpmath (80 digits): the log-density as written, the df partial as
  // (psi((df+1)/2) - psi(df/2) - 1/df - log1p(x^2/df) + (df+1) x^2 / (df (df + x^2))) / 2.
  const auto student_t = [](const auto& p) { return dist::StudentT(p[0], p[1], p[2]); };
  expect_log_prob_at(
      student_t, kFloat64, {30.0, 0.0, 1.0}, 0.5, -1.0559017690066196,
      {-0.51239669421487603, 0.00039819484256228543, 0.51239669421487603, -0.74380165289256198},
      2e-15, 1e-13);
  expect_log_prob_at(
      student_t, kFloat64, {1e6, 0.0, 1.0}, 0.5, -1.0439388925796597,
      {-0.50000037499990625, 3.5937497395821468e-13, 0.50000037499990625, -0.74999981250004687},
      2e-15, 1e-13);
  expect_log_prob_at(
      student_t, kFloat64, {1e8, 0.0, 1.0}, 0.5, -1.0439385367984227,
      {-0.50000000374999999, 3.5937499973958332e-17, 0.50000000374999999, -0.749999998125}, 2e-15,
      1e-13);
  expect_log_prob_at(
      student_t, kFloat64, {1e15, 0.0, 1.0}, 0.5, -1.0439385332046731,
      {-0.50000000000000037, 3.5937499999999997e-31, 0.50000000000000037, -0.74999999999999981},
      2e-15, 1e-13);
  expect_log_prob_at(
      student_t, kFloat32, {1e3, 0.0, 1.0}, 0.5, -1.0442978951442883,
      {-0.50037490627343164, 3.5934883967967747e-7, 0.50037490627343164, -0.74981254686328418},
      3e-7, 1e-5);
  expect_log_prob_at(
      student_t, kFloat32, {1e6, 0.0, 1.0}, 0.5, -1.0439388925796597,
      {-0.50000037499990625, 3.5937497395821468e-13, 0.50000037499990625, -0.74999981250004687},
      3e-7, 1e-5);
}

TEST(StudentT, LogProbAndPartialsFarInTheTails) {
  // z^2 overflows (float32 from |z| = 1.8e19, float64 from 1.3e154), which made the
  // log-density -inf and the partials nan. By mpmath (80 digits) at the float32 value of 1e20
  // and at -+1e200, df 3, loc 0, scale 1: as in the test above.
  const auto student_t = [](const auto& p) { return dist::StudentT(p[0], p[1], p[2]); };
  expect_log_prob_at(student_t, kFloat32, {3.0, 0.0, 1.0}, 1e20, -183.01047179197445,
                     {-3.9999999198364922e-20, -44.809248555027791, 3.9999999198364922e-20, 3.0},
                     1e-6, 1e-6);
  expect_log_prob_at(student_t, kFloat64, {3.0, 0.0, 1.0}, 1e200, -1840.8717386675238,
                     {-4.0000000000000001e-200, -459.27456527391514, 4.0000000000000001e-200, 3.0},
                     1e-15, 1e-15);
  expect_log_prob_at(student_t, kFloat64, {3.0, 0.0, 1.0}, -1e200, -1840.8717386675238,
                     {4.0000000000000001e-200, -459.27456527391514, -4.0000000000000001e-200, 3.0},
                     1e-15, 1e-15);
}

// ------------------------------------------------------------------ Dirichlet ----
TEST(Dirichlet, LogProbOnTheBoundaryWhereTheConcentrationIsOne) {
  // A component with concentration 1 adds nothing, also where it is 0 (as in Beta), and so its
  // partial in the concentration is held at 0 there; inside the simplex it keeps log x_k.
  // By mpmath: Dirichlet(1, 2, 3) at (0, 1/2, 1/2) has density Gamma(6) / (Gamma(2) Gamma(3))
  // / 8 = 7.5; its partials are psi(6) - psi(a_k) + log x_k in a_k (no log for the first) and
  // (a_k - 1) / x_k in x_k; at (0.2, 0.3, 0.5) the first is psi(6) - psi(1) + log 0.2.
  Tensor a = tensor({1.0, 2.0, 3.0}, f64(true));
  Tensor x = tensor({0.0, 0.5, 0.5}, f64(true));
  const Tensor lp = dist::Dirichlet(a).log_prob(x);
  lp.backward();
  EXPECT_NEAR(lp.item(), 2.0149030205422648, 1e-15);
  expect_values(a.grad(), {2.2833333333333333, 0.59018615277338802, 0.090186152773388024}, 1e-15,
                1e-15);
  expect_values(x.grad(), {0.0, 2.0, 4.0}, 1e-15, 0.0);

  Tensor inside = tensor({1.0, 2.0, 3.0}, f64(true));
  dist::Dirichlet(inside).log_prob(tensor({0.2, 0.3, 0.5}, f64())).backward();
  EXPECT_NEAR(inside.grad().to_vector<double>()[0], 0.67389542089923296, 1e-15);

  // Elsewhere on the boundary the density is 0 or infinite, as Beta's.
  const Tensor edge = tensor({0.0, 0.5, 0.5}, f64());
  EXPECT_EQ(dist::Dirichlet(tensor({2.0, 2.0, 3.0}, f64())).log_prob(edge).item(), -INFINITY);
  EXPECT_EQ(dist::Dirichlet(tensor({0.5, 2.0, 3.0}, f64())).log_prob(edge).item(), INFINITY);
}

// As Beta(0.01, 0.01) above: float32 Dirichlet(0.01, 0.01, 0.01) drew (1/3, 1/3, 1/3) where
// all three Gamma draws underflowed. Each component is Beta(0.01, 0.02); by mpmath
// P(0.28 < X_k < 0.38) = 0.0029761764120734 and the variance is 0.21574973031283711, met by
// 200000 draws within 5 standard errors (1.2e-4 and 3.5e-4).
TEST(Dirichlet, SmallConcentrationsKeepTheirMassAwayFromTheCentre) {
  Generator gen(2025);
  const std::int64_t n = 200000;
  const Tensor draws = dist::Dirichlet(full({3}, 0.01)).sample({n}, gen);
  ASSERT_EQ(draws.dtype(), kFloat32);
  for (int k = 0; k < 3; ++k) {
    const auto xs = draws.select(1, k).to_vector<double>();
    double centre = 0, m = 0, v = 0;
    for (double x : xs) {
      centre += (x > 0.28 && x < 0.38) / static_cast<double>(n);
      m += x / static_cast<double>(n);
    }
    for (double x : xs) v += (x - m) * (x - m) / static_cast<double>(n - 1);
    EXPECT_NEAR(centre, 0.0029761764120734, 5 * 1.2e-4) << "component " << k;
    EXPECT_NEAR(v, 0.21574973031283711, 5 * 3.5e-4) << "component " << k;
  }
}

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
