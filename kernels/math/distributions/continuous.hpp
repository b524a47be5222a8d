// Log-densities of the elementwise continuous families, for host and device. Each is a
// functor: operator()(x, p, g) returns log p(x | p) and writes the partial derivatives in
// the same pass: g[0] = d/dx, g[1 + k] = d/dp[k]. Outside the support the log-density is
// -inf and the partials are 0. Parameter order is the public constructor's.
#pragma once

#include <math.h>

#include "kernels/common/macros.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {

// Normal(loc, scale): -(x - loc)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi)), given
// inv = 1 / scale and log(scale).
template <typename T>
EMBER_HD T normal_log_prob(T x, T loc, T inv, T log_scale, T* g) {
  const T z = (x - loc) * inv;
  g[0] = -z * inv;
  g[1] = z * inv;
  g[2] = (z * z - T(1)) * inv;
  return T(-0.5) * z * z - log_scale - kLogSqrt2Pi<T>;
}

// Normal with one scale for all elements: its reciprocal and log computed once, before the
// loop, instead of per element; the same values, so the same bits. The launcher takes it when
// the scale is a scalar operand (DistributionArea::log_prob).
template <typename T>
struct NormalLogProbFixedScale {
  static constexpr int kParams = 2;
  T inv, log_scale;
  static NormalLogProbFixedScale make(T scale) { return {T(1) / scale, log_fast(scale)}; }
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    return normal_log_prob(x, p[0], inv, log_scale, g);
  }
};

template <typename T>
struct NormalLogProb {
  static constexpr int kParams = 2;
  // The parameter whose scalar operand selects the hoisted form, and that form.
  static constexpr int kFixedParam = 1;
  using Fixed = NormalLogProbFixedScale<T>;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    return normal_log_prob(x, p[0], T(1) / p[1], log_fast(p[1]), g);
  }
};

// LogNormal(loc, scale) on x > 0: Normal(loc, scale) of y = log x, less log x (the Jacobian).
template <typename T>
struct LogNormalLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T loc = p[0], scale = p[1];
    if (x <= T(0)) return out_of_support(g, kParams);
    const T inv = T(1) / scale;
    const T y = ::log(x);
    const T z = (y - loc) * inv;
    g[0] = -(z * inv + T(1)) / x;
    g[1] = z * inv;
    g[2] = (z * z - T(1)) * inv;
    return T(-0.5) * z * z - ::log(scale) - kLogSqrt2Pi<T> - y;
  }
};

// HalfNormal(scale) on x >= 0: twice the Normal(0, scale) density.
template <typename T>
struct HalfNormalLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T scale = p[0];
    if (x < T(0)) return out_of_support(g, kParams);
    const T inv = T(1) / scale;
    const T z = x * inv;
    g[0] = -z * inv;
    g[1] = (z * z - T(1)) * inv;
    return T(-0.5) * z * z - ::log(scale) - kLogSqrt2Pi<T> + kLog2<T>;
  }
};

// log(1 + z^2), and its derivative 2z / (1 + z^2) in *slope, for every finite z. z^2 overflows
// float32 from |z| = 1.8e19 (float64 from 1.3e154), which made the log -inf, the slope 0 and the
// Cauchy scale partial w z - 1 the wrong sign; past |z| = 2^32 they are 2 log|z| and 2 / z,
// 1 / z^2 < 2^-64 being below the rounding of both in either dtype.
template <typename T>
EMBER_HD T log1p_square(T z, T* slope) {
  if (::fabs(z) > T(4294967296.0)) {
    *slope = T(2) / z;
    return T(2) * ::log(::fabs(z));
  }
  *slope = T(2) * z / (T(1) + z * z);
  return ::log1p(z * z);
}

// Cauchy(loc, scale): -log(pi scale) - log(1 + z^2), z = (x - loc) / scale.
template <typename T>
struct CauchyLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T loc = p[0], scale = p[1];
    const T inv = T(1) / scale;
    const T z = (x - loc) * inv;
    T w;  // -d/dz of the log-density
    const T t = log1p_square(z, &w);
    g[0] = -w * inv;
    g[1] = w * inv;
    g[2] = (w * z - T(1)) * inv;
    return -t - ::log(scale) - kLogPi<T>;
  }
};

// HalfCauchy(scale) on x >= 0: twice the Cauchy(0, scale) density.
template <typename T>
struct HalfCauchyLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T scale = p[0];
    if (x < T(0)) return out_of_support(g, kParams);
    const T inv = T(1) / scale;
    const T z = x * inv;
    T w;
    const T t = log1p_square(z, &w);
    g[0] = -w * inv;
    g[1] = (w * z - T(1)) * inv;
    return -t - ::log(scale) - kLogPi<T> + kLog2<T>;
  }
};

// Laplace(loc, scale): -|x - loc| / scale - log(2 scale). At x = loc the partials take the
// zero subgradient.
template <typename T>
struct LaplaceLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T loc = p[0], scale = p[1];
    const T inv = T(1) / scale;
    const T d = x - loc;
    const T sign = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
    const T a = ::fabs(d) * inv;
    g[0] = -sign * inv;
    g[1] = sign * inv;
    g[2] = (a - T(1)) * inv;
    return -a - ::log(scale) - kLog2<T>;
  }
};

// Uniform(low, high) on low <= x <= high: -log(high - low).
template <typename T>
struct UniformLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T low = p[0], high = p[1];
    if (!(x >= low && x <= high)) return out_of_support(g, kParams);
    const T inv = T(1) / (high - low);
    g[0] = T(0);
    g[1] = inv;
    g[2] = -inv;
    return -::log(high - low);
  }
};

// Exponential(rate) on x >= 0: log(rate) - rate x.
template <typename T>
struct ExponentialLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T rate = p[0];
    if (x < T(0)) return out_of_support(g, kParams);
    g[0] = -rate;
    g[1] = T(1) / rate - x;
    return ::log(rate) - rate * x;
  }
};

// ContinuousBernoulli(logits l) on [0, 1] (Loaiza-Ganem & Cunningham 2019): the Bernoulli
// cross-entropy x log sigmoid(l) + (1 - x) log sigmoid(-l) made a density by its normalizer
// C = l / tanh(l / 2) (2 at l = 0), the form in logits of 2 atanh(1 - 2p) / (1 - 2p), which
// has no cancellation at p = 1/2. The normalizer's derivative 1/l - 1/sinh(l) cancels for
// small l, so it comes from its series there; both are computed in double in every dtype.
template <typename T>
struct ContinuousBernoulliLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T l = p[0];
    if (!(x >= T(0) && x <= T(1))) return out_of_support(g, kParams);
    const double ld = static_cast<double>(l);
    const double a = ::fabs(ld);
    const double log_norm =
        a < 1e-4 ? kLog2<double> + ld * ld / 12.0 : ::log(a) - ::log(::fabs(::tanh(0.5 * ld)));
    const double l2 = ld * ld;
    const double dlog_norm = a < 0.03
                                 ? ld * (1.0 / 6.0 - l2 * (7.0 / 360.0 - l2 * (31.0 / 15120.0)))
                                 : 1.0 / ld - 1.0 / ::sinh(ld);
    const double xd = static_cast<double>(x);
    g[0] = l;
    g[1] = static_cast<T>(xd - sigmoid(ld) + dlog_norm);
    return static_cast<T>(xd * log_sigmoid(ld) + (1.0 - xd) * log_sigmoid(-ld) + log_norm);
  }
};

#define EMBER_LOG_PROB_CONTINUOUS(X) \
  X(Normal)                          \
  X(LogNormal)                       \
  X(HalfNormal)                      \
  X(Cauchy)                          \
  X(HalfCauchy)                      \
  X(Laplace)                         \
  X(Uniform)                         \
  X(Exponential)                     \
  X(ContinuousBernoulli)

}  // namespace ember::kernels
