// The Gamma family and those built on Gamma draws (Beta, Dirichlet, StudentT): their
// log-densities, the Marsaglia-Tsang sampler and the implicit reparameterization gradient
// d sample / d concentration, for host and device.
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
// the value is +-inf unless the matching concentration is 1 (then finite).
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
    g[1] = log_x - digamma(a) + psi_ab;
    g[2] = log_y - digamma(b) + psi_ab;
    return xm1_log(a, x) + (b == T(1) ? T(0) : (b - T(1)) * log_y) - log_gamma(a) - log_gamma(b) +
           log_gamma(a + b);
  }
};

// StudentT(df v, loc, scale s), z = (x - loc) / s:
// lgamma((v+1)/2) - lgamma(v/2) - log(v pi)/2 - log s - (v+1)/2 log(1 + z^2/v).
template <typename T>
struct StudentTLogProb {
  static constexpr int kParams = 3;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T v = p[0], loc = p[1], s = p[2];
    const T inv = T(1) / s;
    const T z = (x - loc) * inv;
    const T z2 = z * z;
    const T t = ::log1p(z2 / v);
    const T w = (v + T(1)) / (v + z2);  // -d/dz of the log-density is w z
    g[0] = -w * z * inv;
    g[1] =
        T(0.5) * (digamma(T(0.5) * (v + T(1))) - digamma(T(0.5) * v) - T(1) / v - t + w * z2 / v);
    g[2] = w * z * inv;
    g[3] = (w * z2 - T(1)) * inv;
    return log_gamma(T(0.5) * (v + T(1))) - log_gamma(T(0.5) * v) -
           T(0.5) * (::log(v) + kLogPi<T>)-::log(s) - T(0.5) * (v + T(1)) * t;
  }
};

// Most proposal rounds one Marsaglia-Tsang draw may use. Each proposal is accepted with
// probability above 0.95 for every concentration, so running out has probability below
// 0.05^256; should it happen, the draw returns the distribution's approximate median d.
inline constexpr int kMaxGammaProposals = 256;

// Gamma(alpha, 1) by Marsaglia & Tsang (2000). For alpha < 1 it draws Gamma(alpha + 1) and
// multiplies by u^(1/alpha) (computed in log space). Philox rounds: 0 for that boost uniform,
// 2k + 1 for proposal k's normal and 2k + 2 for its acceptance uniform, so every element is
// a pure function of (seed, offset, element) whatever its neighbours needed.
template <typename T>
struct StandardGammaSampler {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(const T* p, RngState rng, std::int64_t i) const {
    const T alpha = p[0];
    if (!(alpha > T(0))) return static_cast<T>(NAN);
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
    if (boost) x = ::exp(::log(x) + ::log(uniform01<T>(rng, i, 0)) / alpha);
    // A draw that underflows is clamped to the smallest normal number (a draw of exactly 0
    // would sit outside the support).
    return x < tiny_normal<T>() ? tiny_normal<T>() : x;
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
// function (Figurnov et al. 2018). Computed in double whatever T is:
//  * x < alpha + 1: the series P = x^a e^-x / Gamma(a+1) * S, S = sum_n x^n / ((a+1)...(a+n)),
//    differentiated term by term; the prefactor cancels against f, leaving
//    dx/da = -(x / a) ((log x - psi(a + 1)) S + dS/da). All terms are positive.
//  * x >= alpha + 1: the continued fraction Q = x^a e^-x / Gamma(a) * H (Lentz's method),
//    differentiated the same way: dx/da = x ((log x - psi(a)) H + dH/da).
//  * alpha >= 1e6: x = alpha w^3 with w = 1 - 1/(9 alpha) + z / (3 sqrt(alpha)) at fixed z
//    (Wilson-Hilferty; it differs from the series by 2e-9 relative at alpha = 1e6, 8e-5 at 1e3).
template <typename T>
struct StandardGammaSampleGrad {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T sample, const T* p) const {
    const double a = static_cast<double>(p[0]);
    const double x = static_cast<double>(sample);
    if (!(a > 0.0) || !(x > 0.0)) return T(0);
    if (a >= kGammaGradAsymptotic) {
      const double sa = ::sqrt(a);
      const double w = ::cbrt(x / a);
      const double z = (w - 1.0 + 1.0 / (9.0 * a)) * 3.0 * sa;
      const double dw = 1.0 / (9.0 * a * a) - z / (6.0 * a * sa);
      return static_cast<T>(w * w * w + 3.0 * a * w * w * dw);
    }
    const double log_x = ::log(x);
    const double eps = 1e-16;
    if (x < a + 1.0) {
      GammaDual term{1.0, 0.0}, sum{1.0, 0.0};
      for (int n = 1; n < kGammaGradMaxTerms; ++n) {
        term = term * GammaDual{x, 0.0} / GammaDual{a + n, 1.0};
        sum = sum + term;
        if (term.v < eps * sum.v && ::fabs(term.d) < eps * ::fabs(sum.d) + 1e-300) break;
      }
      return static_cast<T>(-(x / a) * ((log_x - digamma(a + 1.0)) * sum.v + sum.d));
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
    return static_cast<T>(x * ((log_x - digamma(a)) * h.v + h.d));
  }
};

// g * dx/dalpha of a Gamma(alpha, 1) draw: the vector-Jacobian product a backward pass
// takes, in one pass (params: alpha, g) instead of the gradient and then a product.
template <typename T>
struct StandardGammaVjpSampleGrad {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T sample, const T* p) const {
    return p[1] * StandardGammaSampleGrad<T>{}(sample, p);
  }
};

#define EMBER_LOG_PROB_GAMMA(X) \
  X(Gamma)                      \
  X(Beta)                       \
  X(StudentT)

#define EMBER_SAMPLERS_GAMMA(X) X(StandardGamma)

#define EMBER_SAMPLE_GRADS(X) X(StandardGamma) X(StandardGammaVjp)

}  // namespace ember::kernels
