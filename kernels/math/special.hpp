// Special functions for host and device: digamma and trigamma (lgamma comes from the C
// library on the host and CUDA's math library on the device).
#pragma once

#include <math.h>

#include <cmath>

#include "kernels/common/macros.hpp"

namespace ember::kernels {

template <typename T>
EMBER_HD T pi_v() {
  return static_cast<T>(3.14159265358979323846);
}

// psi(x) = d/dx lgamma(x). Reflection for x < 0.5, upward recurrence to x >= 6, then the
// asymptotic series (truncation error below 1e-11 there).
template <typename T>
EMBER_HD T digamma(T x) {
  T result = 0;
  if (x <= T(0) && ::floor(x) == x) return static_cast<T>(NAN);
  if (x < T(0.5)) {
    // psi(1 - x) - psi(x) = pi / tan(pi x)
    result = -pi_v<T>() / ::tan(pi_v<T>() * x);
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
    const T s = ::sin(pi_v<T>() * x);
    result = pi_v<T>() * pi_v<T>() / (s * s);
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
