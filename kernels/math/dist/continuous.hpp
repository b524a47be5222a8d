// Log-densities of the elementwise continuous families, for host and device. Each is a
// functor: operator()(x, p, g) returns log p(x | p) and writes the partial derivatives in
// the same pass: g[0] = d/dx, g[1 + k] = d/dp[k]. Outside the support the log-density is
// -inf and the partials are 0. Parameter order is the public constructor's.
#pragma once

#include <math.h>

#include "kernels/common/macros.hpp"

namespace ember::kernels {

template <typename T>
EMBER_HD T log_sqrt_2pi() {
  return static_cast<T>(0.91893853320467274178);
}

// Normal(loc, scale): -(x - loc)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi)).
template <typename T>
struct NormalLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x, const T* p, T* g) const {
    const T loc = p[0], scale = p[1];
    const T inv = T(1) / scale;
    const T z = (x - loc) * inv;
    g[0] = -z * inv;
    g[1] = z * inv;
    g[2] = (z * z - T(1)) * inv;
    return T(-0.5) * z * z - ::log(scale) - log_sqrt_2pi<T>();
  }
};

#define EMBER_LOG_PROB_CONTINUOUS(X) X(Normal)

}  // namespace ember::kernels
