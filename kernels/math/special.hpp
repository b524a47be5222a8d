// Constants and special functions for host and device, the one home of the small helpers
// every op and log-density uses: sigmoid and its logarithm, softplus, digamma, trigamma, the
// value of a log-density outside its support (lgamma comes from the C library on the host
// and CUDA's math library on the device).
#pragma once

#include <math.h>

#include <cmath>

#include "kernels/common/macros.hpp"

namespace ember::kernels {

template <typename T>
inline constexpr T kPi = static_cast<T>(3.14159265358979323846);
template <typename T>
inline constexpr T kLogSqrt2Pi = static_cast<T>(0.91893853320467274178);  // log(sqrt(2 pi))
template <typename T>
inline constexpr T kLog2 = static_cast<T>(0.69314718055994530942);
template <typename T>
inline constexpr T kLogPi = static_cast<T>(1.14472988584940017414);

// 1 / (1 + exp(-x)) without overflow for any x.
template <typename T>
EMBER_HD T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + ::exp(-x));
  const T e = ::exp(x);
  return e / (T(1) + e);
}

// log(1 + y) for y > -1 from one log: log(1 + y) rounded is corrected by the rounding error
// of 1 + y (Goldberg's method), which keeps log1p's accuracy to a few ulps. glibc's log is
// several times faster than its log1p, and log-densities of networks' outputs (softplus,
// Bernoulli logits) call it once per element.
template <typename T>
EMBER_HD T log1p_via_log(T y) {
  const T u = T(1) + y;
  const T d = u - T(1);
  return d == T(0) ? y : ::log(u) * (y / d);
}

// log(1 + exp(-|x|)), the shared term of softplus and log sigmoid: in (0, log 2].
template <typename T>
EMBER_HD T log1p_exp_neg_abs(T x) {
  return log1p_via_log(::exp(-::fabs(x)));
}

// log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): finite for every x, no cancellation.
template <typename T>
EMBER_HD T log_sigmoid(T x) {
  return (x < T(0) ? x : T(0)) - log1p_exp_neg_abs(x);
}

// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)).
template <typename T>
EMBER_HD T softplus(T x) {
  return (x > T(0) ? x : T(0)) + log1p_exp_neg_abs(x);
}

// A log-density's value outside its support (or at a value of probability zero): -inf, with
// the value's partial and the `params` parameters' partials g[0..params] all zero.
template <typename T>
EMBER_HD T out_of_support(T* g, int params) {
  for (int k = 0; k <= params; ++k) g[k] = T(0);
  return -static_cast<T>(INFINITY);
}

// psi(x) = d/dx lgamma(x). Reflection for x < 0.5, upward recurrence to x >= 6, then the
// asymptotic series (truncation error below 1e-11 there).
template <typename T>
EMBER_HD T digamma(T x) {
  T result = 0;
  if (x <= T(0) && ::floor(x) == x) return static_cast<T>(NAN);
  if (x < T(0.5)) {
    // psi(1 - x) - psi(x) = pi / tan(pi x)
    result = -kPi<T> / ::tan(kPi<T> * x);
    x = T(1) - x;
  }
  while (x < T(6)) {
    result -= T(1) / x;
    x += T(1);
  }
  const T f = T(1) / (x * x);
  const T series =
      f * (T(-1.0 / 12) +
           f * (T(1.0 / 120) + f * (T(-1.0 / 252) + f * (T(1.0 / 240) + f * T(-1.0 / 132)))));
  return result + ::log(x) - T(0.5) / x + series;
}

// psi'(x). Reflection psi'(1-x) + psi'(x) = pi^2 / sin^2(pi x) for x < 0.5.
template <typename T>
EMBER_HD T trigamma(T x) {
  T sign = 1;
  T result = 0;
  if (x <= T(0) && ::floor(x) == x) return static_cast<T>(INFINITY);
  if (x < T(0.5)) {
    const T s = ::sin(kPi<T> * x);
    result = kPi<T> * kPi<T> / (s * s);
    sign = -1;
    x = T(1) - x;
  }
  T acc = 0;
  while (x < T(6)) {
    acc += T(1) / (x * x);
    x += T(1);
  }
  const T f = T(1) / (x * x);
  const T series = T(1) / x + f / T(2) +
                   f / x * (T(1.0 / 6) + f * (T(-1.0 / 30) + f * (T(1.0 / 42) + f * T(-1.0 / 30))));
  return result + sign * (acc + series);
}

}  // namespace ember::kernels
