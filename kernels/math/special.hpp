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
inline constexpr T kTwoPi = static_cast<T>(6.28318530717958647692);
template <typename T>
inline constexpr T kLogSqrt2Pi = static_cast<T>(0.91893853320467274178);  // log(sqrt(2 pi))
template <typename T>
inline constexpr T kLog2 = static_cast<T>(0.69314718055994530942);
template <typename T>
inline constexpr T kLogPi = static_cast<T>(1.14472988584940017414);

// The smallest positive normal number of T.
template <typename T>
EMBER_HD T tiny_normal() {
  return sizeof(T) == 4 ? static_cast<T>(1.17549435e-38f) : static_cast<T>(2.2250738585072014e-308);
}

// cos(2 pi u) for u in [0, 1] as s cos(x) (high false) or s sin(x) (high true), with
// x = 2 pi b, b in [0, 1/8], by the symmetries of the cosine. Every step of the reduction is
// exact (Sterbenz's lemma), so the one rounding is that of 2 pi b: the result is accurate
// relative to its size even next to the zeros at u = 1/4 and 3/4, where cos(2 pi u) of the
// rounded product 2 pi u is not (its relative error there grows like 1e-7 / |cos|, which a
// Cauchy draw, a ratio of normals, turns into a large one).
template <typename T>
struct TwoPiTurn {
  T x, sign;
  bool high;
  EMBER_HD explicit TwoPiTurn(T u) {
    const T a = u > T(0.5) ? T(1) - u : u;     // cos(2 pi u) = cos(2 pi a), a in [0, 1/2]
    const T b = a > T(0.25) ? T(0.5) - a : a;  // = s cos(2 pi b), b in [0, 1/4]
    sign = a > T(0.25) ? T(-1) : T(1);
    high = b > T(0.125);  // cos(2 pi b) = sin(2 pi (1/4 - b))
    x = (high ? T(0.25) - b : b) * kTwoPi<T>;
  }
};

// exp, log, log1p and cos(2 pi u) of floats on the host as straight-line code (Cephes' polynomials,
// range reduction by bit manipulation, about 1 ulp): unlike calls into the C library, loops over
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
// log(1 + m) + e log 2 for m in [sqrt(1/2) - 1, sqrt(2) - 1] (Cephes' polynomial), the core of
// the float log and log1p below.
inline __attribute__((always_inline)) float log_reduced_poly(float m, float e) {
  const float z = m * m;
  float r = 7.0376836292e-2f;
  r = r * m - 1.1514610310e-1f;
  r = r * m + 1.1676998740e-1f;
  r = r * m - 1.2420140846e-1f;
  r = r * m + 1.4249322787e-1f;
  r = r * m - 1.6668057665e-1f;
  r = r * m + 2.0000714765e-1f;
  r = r * m - 2.4999993993e-1f;
  r = r * m + 3.3333331174e-1f;
  r = r * m * z;
  r += -2.12194440e-4f * e;  // log 2 in two parts, the small one first
  r += -0.5f * z;
  return m + r + 0.693359375f * e;
}
// log(x) for every float: subnormals scaled into the normal range first, and zero (-inf),
// negatives (NaN), inf and NaN chosen by selects, so that loops over it still vectorize.
inline __attribute__((always_inline)) float log_float_poly(float x) {
  const bool subnormal = x < 1.17549435e-38f;
  const float xn = subnormal ? x * 16777216.0f : x;  // times 2^24
  const std::int32_t b = std::bit_cast<std::int32_t>(xn);
  std::int32_t e = ((b >> 23) & 0xff) - 126 - (subnormal ? 24 : 0);
  float m = std::bit_cast<float>((b & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  float r = log_reduced_poly(m, static_cast<float>(e));
  r = x > 0.0f ? r : (x == 0.0f ? -INFINITY : NAN);
  return x < INFINITY ? r : x;  // inf and NaN themselves
}
// cos(2 pi u) for u in [0, 1] (a Box-Muller angle): by the symmetries of the cosine, s cos(x)
// or s sin(x) with x = 2 pi b, b in [0, 1/8], both from Cephes' polynomials for |x| <= pi/4
// and chosen by selects; within 2e-7 of the double result (see TwoPiTurn).
inline __attribute__((always_inline)) float cos_two_pi_float_poly(float u) {
  const TwoPiTurn<float> t(u);
  const float x = t.x, s = t.sign;
  const bool high = t.high;
  const float z = x * x;
  const float c =
      ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
      0.5f * z + 1.0f;
  const float sn = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
  return s * (high ? sn : c);
}
// log(1 + y) for y in [0, 1] without a division: below sqrt(2) - 1 the polynomial's argument
// is y itself, above it log(1 + y) = log 2 + log1p((y - 1) / 2), whose argument is in
// (-0.293, 0] and nearly exact (within 1.4 ulps of the double result).
inline __attribute__((always_inline)) float log1p_float_poly(float y) {
  const bool big = y > 0.414213562373095049f;
  return log_reduced_poly(big ? (y - 1.0f) * 0.5f : y, big ? 1.0f : 0.0f);
}
#endif

// log |Gamma(x)|. On the host through lgamma_r: the C library's lgamma stores the sign in the
// global `signgam`, a data race when threads evaluate it at once (the CPU loops' pool, fits in
// threads of a service). The device's lgamma keeps no such state.
template <typename T>
EMBER_HD T log_gamma(T x) {
#if defined(__CUDA_ARCH__)
  return ::lgamma(x);
#else
  int sign = 0;
  if constexpr (std::is_same_v<T, float>) {
    return ::lgammaf_r(x, &sign);
  } else {
    return ::lgamma_r(static_cast<double>(x), &sign);
  }
#endif
}

template <typename T>
EMBER_HD T exp_fast(T x) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return exp_float_poly(x);
#endif
  return ::exp(x);
}
template <typename T>
EMBER_HD T log_fast(T x) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return log_float_poly(x);
#endif
  return ::log(x);
}
// cos(2 pi u), u in [0, 1], by the reduction of TwoPiTurn on both sides, so that the CPU and
// the GPU agree to a few ulps relative to the result everywhere.
template <typename T>
EMBER_HD T cos_two_pi_fast(T u) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return cos_two_pi_float_poly(u);
#endif
  const TwoPiTurn<T> t(u);
  return t.sign * (t.high ? ::sin(t.x) : ::cos(t.x));
}

// 1 / (1 + exp(-x)) without overflow for any x.
template <typename T>
EMBER_HD T sigmoid(T x) {
  const T e = exp_fast(-::fabs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// log(1 + y) for y in [0, 1], the log1p that softplus, log sigmoid and the Bernoulli logits
// log-pmf take once per element. Host floats use the polynomial above (it vectorizes);
// otherwise one log, corrected by the rounding error of 1 + y (Goldberg's method), which keeps
// log1p's accuracy to a few ulps at a fraction of the math library's log1p time.
template <typename T>
EMBER_HD T log1p_unit(T y) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return log1p_float_poly(y);
#endif
  const T u = T(1) + y;
  const T d = u - T(1);
  const T q = ::log(u) * (y / (d == T(0) ? T(1) : d));
  return d == T(0) ? y : q;
}

// log(1 + exp(-|x|)), the shared term of softplus and log sigmoid: in (0, log 2].
template <typename T>
EMBER_HD T log1p_exp_neg_abs(T x) {
  return log1p_unit(exp_fast(-::fabs(x)));
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
