// The Gamma family and those built on Gamma draws (Beta, Dirichlet, StudentT): their
// log-densities, the Marsaglia-Tsang sampler (of Gamma draws and of their logs) and the
// implicit reparameterization gradient d sample / d concentration, for host and device.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/common/macros.hpp"
#include "kernels/math/distributions/continuous.hpp"
#include "kernels/math/distributions/samplers.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {

// (a - 1) * log(x) and (a - 1) / x with the a == 1 case exactly 0, so that the boundary of a
// support (x = 0) has the finite density it should have when a == 1.
template <typename T>
EMBER_HD T xm1_log(T a, T x) {
  return a == T(1) ? T(0) : (a - T(1)) * ::log(x);
}
template <typename T>
EMBER_HD T xm1_over(T a, T x) {
  return a == T(1) ? T(0) : (a - T(1)) / x;
}
// The partial of xm1_log in a, log x, also held at 0 where a == 1 and x == 0: the term has no
// finite partial there (it is +inf for a < 1, -inf for a > 1), and a finite one keeps a
// gradient step from making the concentration nan. PyTorch's xlogy takes the same 0.
template <typename T>
EMBER_HD T xm1_log_da(T a, T x, T log_x) {
  return a == T(1) && x == T(0) ? T(0) : log_x;
}

// Gamma(concentration a, rate b) on x > 0:
// a log b + (a - 1) log x - b x - lgamma(a).
template <typename T>
struct GammaLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T a = p[0], b = p[1];
    if (!(x > T(0))) return out_of_support(g, kParams);
    const T log_x = ::log(x), log_b = ::log(b);
    g[0] = xm1_over(a, x) - b;
    g[1] = log_b + log_x - digamma(a);
    g[2] = a / b - x;
    return a * log_b + xm1_log(a, x) - b * x - log_gamma(a);
  }
};

// Beta(concentration1 a, concentration0 b) on [0, 1]:
// (a - 1) log x + (b - 1) log(1 - x) - lgamma(a) - lgamma(b) + lgamma(a + b). At x = 0 or 1
// the value is +-inf unless the matching concentration is 1 (then finite, with finite partials).
template <typename T>
struct BetaLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T a = p[0], b = p[1];
    if (!(x >= T(0) && x <= T(1))) return out_of_support(g, kParams);
    const T y = T(1) - x;
    const T log_x = ::log(x), log_y = ::log1p(-x);
    const T psi_ab = digamma(a + b);
    g[0] = xm1_over(a, x) - xm1_over(b, y);
    g[1] = xm1_log_da(a, x, log_x) - digamma(a) + psi_ab;
    g[2] = xm1_log_da(b, y, log_y) - digamma(b) + psi_ab;
    return xm1_log(a, x) + (b == T(1) ? T(0) : (b - T(1)) * log_y) - log_gamma(a) - log_gamma(b) +
           log_gamma(a + b);
  }
};

// C(x) = lgamma(x + 1/2) - lgamma(x) - log(x) / 2 and C'(x) = psi(x + 1/2) - psi(x) - 1/(2x),
// x > 0: the Student-t normalizer less its limit, near -1/(8x) and 1/(8x^2) for large x. As
// the differences they are written as, both cancel (lgamma(x) grows like x log x, psi(x) like
// log x), so float32 loses every digit of them by x = 5e5. Instead x is raised to x_s (4 for
// float32, 10 for float64) by the recurrences
//   C(x) = C(x + 1) - log(1 + 1 / (4x (x + 1))) / 2,
//   C'(x) = C'(x + 1) + 1 / (4x (x + 1)(x + 1/2)),
// whose terms keep one sign, and the asymptotic series (from the Bernoulli polynomials, ten
// terms) is taken there: from x_s on it is within 3e-9 (float32) and 1e-16 (float64) of both,
// relative, so that each is within 3 ulps for every x.
template <typename T>
struct HalfStepLogGamma {
  T value, slope;  // C(x) and C'(x)
};
template <typename T>
EMBER_HD HalfStepLogGamma<T> half_step_log_gamma(T x) {
  const T x_s = sizeof(T) == 4 ? T(4) : T(10);
  T excess = T(0);  // the product of the recurrence's factors 1 + r, less 1
  T slope = T(0);
  for (; x < x_s; x += T(1)) {
    const T r = T(1) / (T(4) * x * (x + T(1)));
    slope += r / (x + T(0.5));
    excess += r + excess * r;
  }
  // The series in f = 1 / x^2: C = (c1 + c2 f + ... + c10 f^9) / x, and term by term its
  // derivative C' = -(c1 + 3 c2 f + ... + 19 c10 f^9) f.
  const T f = T(1) / (x * x);
  T series = T(221930581.0 / 79691776);
  series = series * f - T(3202291.0 / 8912896);
  series = series * f + T(929569.0 / 15728640);
  series = series * f - T(5461.0 / 425984);
  series = series * f + T(691.0 / 180224);
  series = series * f - T(31.0 / 18432);
  series = series * f + T(17.0 / 14336);
  series = series * f - T(1.0 / 640);
  series = series * f + T(1.0 / 192);
  series = series * f - T(1.0 / 8);
  T dseries = T(-221930581.0 / 4194304);
  dseries = dseries * f + T(3202291.0 / 524288);
  dseries = dseries * f - T(929569.0 / 1048576);
  dseries = dseries * f + T(5461.0 / 32768);
  dseries = dseries * f - T(691.0 / 16384);
  dseries = dseries * f + T(31.0 / 2048);
  dseries = dseries * f - T(17.0 / 2048);
  dseries = dseries * f + T(1.0 / 128);
  dseries = dseries * f - T(1.0 / 64);
  dseries = dseries * f + T(1.0 / 8);
  return {series / x - T(0.5) * ::log1p(excess), dseries * f + slope};
}

// u / (1 + u) - log(1 + u) for u >= 0, about -u^2 / 2 for small u, where the difference
// cancels. With s = u / (2 + u), log(1 + u) = 2 atanh(s) and u / (1 + u) = 2s / (1 + s), so it
// is -2s^2 / (1 + s) - 2 (s^3/3 + s^5/5 + ...), every term negative; below u = 0.1 (s < 1/21)
// five terms of the series reach float64's precision. Above, the difference of y = u / (1 + u)
// and t = log(1 + u), given, loses about 4 bits at most.
template <typename T>
EMBER_HD T ratio_less_log1p(T u, T y, T t) {
  if (!(u < T(0.1))) return y - t;
  const T s = u / (T(2) + u);
  const T s2 = s * s;
  const T odd =
      T(1.0 / 3) + s2 * (T(1.0 / 5) + s2 * (T(1.0 / 7) + s2 * (T(1.0 / 9) + s2 * T(1.0 / 11))));
  return T(-2) * s2 / (T(1) + s) - T(2) * s * s2 * odd;
}

// StudentT(df v, loc, scale s), z = (x - loc) / s, u = z^2 / v:
// lgamma((v+1)/2) - lgamma(v/2) - log(v pi)/2 - log s - (v+1)/2 log(1 + u), taken as
// C(v/2) - log(2 pi)/2 - log s - (v+1)/2 log(1 + u) (half_step_log_gamma), which tends to the
// Normal log-density as v grows instead of cancelling. Past u = 2^64, where z^2 may overflow,
// log(1 + u) is 2 log|z| - log v and u / (1 + u) is 1 (1 / u is below their rounding).
template <typename T>
struct StudentTLogProb {
  static constexpr int kParams = 3;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T v = p[0], loc = p[1], s = p[2];
    const T inv = T(1) / s;
    const T z = (x - loc) * inv;
    const T u = z * (z / v);  // z / v first: z^2 may overflow where u does not
    T t, y, wz;  // log(1 + u), u / (1 + u) and -d/dz of the log-density, (v + 1) z / (v + z^2)
    if (u < T(18446744073709551616.0)) {
      t = ::log1p(u);
      y = u / (T(1) + u);
      wz = (T(1) + T(1) / v) * z / (T(1) + u);
    } else {
      t = T(2) * ::log(::fabs(z)) - ::log(v);
      y = T(1);
      wz = (v + T(1)) / z;
    }
    const HalfStepLogGamma<T> c = half_step_log_gamma(T(0.5) * v);
    g[0] = -wz * inv;
    // d/dv: (C'(v/2) - t + (v + 1) y / v) / 2, the last two as (y - t) + y / v.
    g[1] = T(0.5) * (c.slope + ratio_less_log1p(u, y, t) + y / v);
    g[2] = wz * inv;
    g[3] = ((v + T(1)) * y - T(1)) * inv;
    return c.value - kLogSqrt2Pi<T> - ::log(s) - T(0.5) * (v + T(1)) * t;
  }
};

// Most proposal rounds one Marsaglia-Tsang draw may use. Each proposal is accepted with
// probability above 0.95 for every concentration, so running out has probability below
// 0.05^256; should it happen, the draw returns the distribution's approximate median d.
inline constexpr int kMaxGammaProposals = 256;

// One Gamma(alpha, 1) draw by Marsaglia & Tsang (2000), in two parts: x, a Gamma(a, 1) draw
// with a = alpha, or a = alpha + 1 where alpha < 1 (boost), and then log(u) / alpha, the log of
// the factor u^(1/alpha) that takes a boosted draw to Gamma(alpha, 1). Philox rounds: 0 for
// that boost uniform, 2k + 1 for proposal k's normal and 2k + 2 for its acceptance uniform, so
// every element is a pure function of (seed, offset, element) whatever its neighbours needed.
template <typename T>
struct GammaDraw {
  T x, log_boost;
  bool boost;
};
template <typename T>
EMBER_HD GammaDraw<T> marsaglia_tsang(T alpha, RngState rng, std::int64_t i) {
  const bool boost = alpha < T(1);
  const T a = boost ? alpha + T(1) : alpha;
  const T d = a - T(1) / T(3);
  const T c = T(1) / ::sqrt(T(9) * d);
  T x = d;
  for (int k = 0; k < kMaxGammaProposals; ++k) {
    const auto round = static_cast<std::uint32_t>(2 * k + 1);
    const T z = normal01<T, false>(rng, i, round);
    T v = T(1) + c * z;
    if (v <= T(0)) continue;
    v = v * v * v;
    const T u = uniform01<T>(rng, i, round + 1);
    const T z2 = z * z;
    if (u < T(1) - T(0.0331) * z2 * z2 || ::log(u) < T(0.5) * z2 + d * (T(1) - v + ::log(v))) {
      x = d * v;
      break;
    }
  }
  return {x, boost ? ::log(uniform01<T>(rng, i, 0)) / alpha : T(0), boost};
}

// Gamma(alpha, 1) draws.
template <typename T>
struct StandardGammaSampler {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(const T* p, RngState rng, std::int64_t i) const {
    const T alpha = p[0];
    if (!(alpha > T(0))) return static_cast<T>(NAN);
    const GammaDraw<T> draw = marsaglia_tsang(alpha, rng, i);
    const T x = draw.boost ? ::exp(::log(draw.x) + draw.log_boost) : draw.x;
    // A draw that underflows is clamped to the smallest normal number (a draw of exactly 0
    // would sit outside the support).
    return x < tiny_normal<T>() ? tiny_normal<T>() : x;
  }
};

// The logs of Gamma(alpha, 1) draws, the same draws as StandardGammaSampler's (the same
// Philox rounds) but never underflowing: 42% of float32 Gamma(0.01) draws lie below 1e-38,
// where their logs (near log(u) / alpha) are ordinary numbers. Beta and Dirichlet draws are
// taken from these.
template <typename T>
struct LogStandardGammaSampler {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(const T* p, RngState rng, std::int64_t i) const {
    const T alpha = p[0];
    if (!(alpha > T(0))) return static_cast<T>(NAN);
    const GammaDraw<T> draw = marsaglia_tsang(alpha, rng, i);
    return ::log(draw.x) + draw.log_boost;
  }
};

// A number with its derivative in the concentration (forward mode), for differentiating the
// incomplete-gamma series and continued fraction term by term.
struct GammaDual {
  double v, d;
};
EMBER_HD GammaDual operator+(GammaDual a, GammaDual b) { return {a.v + b.v, a.d + b.d}; }
EMBER_HD GammaDual operator*(GammaDual a, GammaDual b) {
  return {a.v * b.v, a.d * b.v + a.v * b.d};
}
EMBER_HD GammaDual operator/(GammaDual a, GammaDual b) {
  return {a.v / b.v, (a.d * b.v - a.v * b.d) / (b.v * b.v)};
}

// Iteration cap of the series and the continued fraction: both need O(sqrt(alpha)) terms near
// x = alpha, so this covers alpha up to kGammaGradAsymptotic with a wide margin.
inline constexpr int kGammaGradMaxTerms = 20000;
// From this concentration on the gradient uses the Wilson-Hilferty form (see below).
inline constexpr double kGammaGradAsymptotic = 1e6;

// dx/dalpha of a Gamma(alpha, 1) draw x, by implicit differentiation of its CDF:
// dx/dalpha = -(dP(alpha, x)/dalpha) / f(x; alpha), P the regularized lower incomplete gamma
// function (Figurnov et al. 2018); with kLog, d log(x) / dalpha, the same divided by x, for a
// draw given by its log (x may underflow to 0 then, which the series below takes as it is).
// Computed in double whatever T is:
//  * x < alpha + 1: the series P = x^a e^-x / Gamma(a+1) * S, S = sum_n x^n / ((a+1)...(a+n)),
//    differentiated term by term; the prefactor cancels against f, leaving
//    dx/da = -(x / a) ((log x - psi(a + 1)) S + dS/da). All terms are positive.
//  * x >= alpha + 1: the continued fraction Q = x^a e^-x / Gamma(a) * H (Lentz's method),
//    differentiated the same way: dx/da = x ((log x - psi(a)) H + dH/da).
//  * alpha >= 1e6: x = alpha w^3 with w = 1 - 1/(9 alpha) + z / (3 sqrt(alpha)) at fixed z
//    (Wilson-Hilferty; it differs from the series by 2e-9 relative at alpha = 1e6, 8e-5 at 1e3).
template <bool kLog>
EMBER_HD double gamma_draw_grad(double a, double x, double log_x) {
  if (a >= kGammaGradAsymptotic) {
    const double sa = ::sqrt(a);
    const double w = ::cbrt(x / a);
    const double z = (w - 1.0 + 1.0 / (9.0 * a)) * 3.0 * sa;
    const double dw = 1.0 / (9.0 * a * a) - z / (6.0 * a * sa);
    const double dx = w * w * w + 3.0 * a * w * w * dw;
    return kLog ? dx / x : dx;
  }
  const double eps = 1e-16;
  if (x < a + 1.0) {
    GammaDual term{1.0, 0.0}, sum{1.0, 0.0};
    for (int n = 1; n < kGammaGradMaxTerms; ++n) {
      term = term * GammaDual{x, 0.0} / GammaDual{a + n, 1.0};
      sum = sum + term;
      if (term.v < eps * sum.v && ::fabs(term.d) < eps * ::fabs(sum.d) + 1e-300) break;
    }
    const double q = (log_x - digamma(a + 1.0)) * sum.v + sum.d;
    return kLog ? -q / a : -(x / a) * q;
  }
  // Modified Lentz for H = 1/(x+1-a - 1(1-a)/(x+3-a - 2(2-a)/(x+5-a - ...))).
  const double tiny = 1e-300;
  GammaDual b{x + 1.0 - a, -1.0};
  GammaDual c{1.0 / tiny, 0.0};
  GammaDual dd = GammaDual{1.0, 0.0} / b;
  GammaDual h = dd;
  for (int i = 1; i < kGammaGradMaxTerms; ++i) {
    const GammaDual an{-i * (i - a), static_cast<double>(i)};
    b = b + GammaDual{2.0, 0.0};
    dd = an * dd + b;
    if (::fabs(dd.v) < tiny) dd.v = tiny;
    c = b + an / c;
    if (::fabs(c.v) < tiny) c.v = tiny;
    dd = GammaDual{1.0, 0.0} / dd;
    const GammaDual del = c * dd;
    h = h * del;
    if (::fabs(del.v - 1.0) < eps && ::fabs(del.d) < eps * (1.0 + ::fabs(h.d / h.v))) break;
  }
  const double q = (log_x - digamma(a)) * h.v + h.d;
  return kLog ? q : x * q;
}

// dx/dalpha of a StandardGammaSampler draw x.
template <typename T>
struct StandardGammaSampleGrad {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T sample, const T* p) const {
    const double a = static_cast<double>(p[0]);
    const double x = static_cast<double>(sample);
    if (!(a > 0.0) || !(x > 0.0)) return T(0);
    return static_cast<T>(gamma_draw_grad<false>(a, x, ::log(x)));
  }
};

// d log(x) / dalpha of a LogStandardGammaSampler draw log(x).
template <typename T>
struct LogStandardGammaSampleGrad {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T sample, const T* p) const {
    const double a = static_cast<double>(p[0]);
    const double log_x = static_cast<double>(sample);
    if (!(a > 0.0) || !(log_x > -static_cast<double>(INFINITY))) return T(0);
    return static_cast<T>(gamma_draw_grad<true>(a, ::exp(log_x), log_x));
  }
};

// g * dx/dalpha of a Gamma(alpha, 1) draw (or of its log): the vector-Jacobian product a
// backward pass takes, in one pass (params: alpha, g) instead of the gradient and then a product.
template <typename T>
struct StandardGammaVjpSampleGrad {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T sample, const T* p) const {
    return p[1] * StandardGammaSampleGrad<T>{}(sample, p);
  }
};
template <typename T>
struct LogStandardGammaVjpSampleGrad {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T sample, const T* p) const {
    return p[1] * LogStandardGammaSampleGrad<T>{}(sample, p);
  }
};

#define EMBER_LOG_PROB_GAMMA(X) \
  X(Gamma)                      \
  X(Beta)                       \
  X(StudentT)

#define EMBER_SAMPLERS_GAMMA(X) \
  X(StandardGamma)              \
  X(LogStandardGamma)

#define EMBER_SAMPLE_GRADS(X) \
  X(StandardGamma)            \
  X(StandardGammaVjp)         \
  X(LogStandardGamma)         \
  X(LogStandardGammaVjp)

}  // namespace ember::kernels
