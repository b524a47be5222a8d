// Constants and special functions for host and device, the one home of the small helpers
// every op and log-density uses: sigmoid and its logarithm, softplus, digamma, trigamma, the
// value of a log-density outside its support (lgamma comes from the C library on the host
// and CUDA's math library on the device).
#pragma once

#include <math.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

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

// exp and log of floats on the host as straight-line code (Cephes' polynomials, range
// reduction by bit manipulation, about 1 ulp): unlike calls into the C library, loops over
// them vectorize. Double precision and device code use the math library.
#if !defined(__CUDA_ARCH__)
inline __attribute__((always_inline)) float exp_float_poly(float x) {
  x = x < -87.33654f ? -87.33654f : x;  // exp(x) stays a normal float
  x = x > 88.72283f ? 88.72283f : x;
  // n = round(x / ln 2) by the 1.5 * 2^23 trick; r = x - n ln 2 in two parts.
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n as two normal factors, 2^h 2^(n - h): n reaches 128 near the top of the range.
  const std::int32_t ni = std::bit_cast<std::int32_t>(t) - 0x4B400000;
  const std::int32_t h = ni >> 1;
  return p * std::bit_cast<float>((h + 127) << 23) * std::bit_cast<float>((ni - h + 127) << 23);
}
// For normal x > 0 (the callers pass x in [1, 2]).
inline __attribute__((always_inline)) float log_float_poly(float x) {
  const std::int32_t b = std::bit_cast<std::int32_t>(x);
  std::int32_t e = ((b >> 23) & 0xff) - 126;
  float m = std::bit_cast<float>((b & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const auto fe = static_cast<float>(e);
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return m + y + 0.693359375f * fe;
}
#endif

template <typename T>
EMBER_HD T exp_fast(T x) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return exp_float_poly(x);
#endif
  return ::exp(x);
}
template <typename T>
EMBER_HD T log_ge1_fast(T x) {  // x >= 1
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return log_float_poly(x);
#endif
  return ::log(x);
}

// 1 / (1 + exp(-x)) without overflow for any x.
template <typename T>
EMBER_HD T sigmoid(T x) {
  const T e = exp_fast(-::fabs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// log(1 + y) for y >= 0 from one log: log(1 + y) rounded is corrected by the rounding error
// of 1 + y (Goldberg's method), which keeps log1p's accuracy to a few ulps. glibc's log is
// several times faster than its log1p, and log-densities of networks' outputs (softplus,
// Bernoulli logits) call it once per element.
template <typename T>
EMBER_HD T log1p_via_log(T y) {
  const T u = T(1) + y;
  const T d = u - T(1);
  const T q = log_ge1_fast(u) * (y / (d == T(0) ? T(1) : d));
  return d == T(0) ? y : q;
}

// log(1 + exp(-|x|)), the shared term of softplus and log sigmoid: in (0, log 2].
template <typename T>
EMBER_HD T log1p_exp_neg_abs(T x) {
  return log1p_via_log(exp_fast(-::fabs(x)));
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
