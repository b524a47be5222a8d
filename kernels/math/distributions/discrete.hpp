// Discrete families: log-probability mass functions (with partials in the parameters) and
// samplers, for host and device.
//
// The log-pmfs follow continuous.hpp: operator()(x, p, g) returns log p(x | p), writes
// g[0] = d/dx (0 for the counting families) and g[1 + k] = d/dp[k]; a value outside the
// support and a zero-probability value give -inf with zero partials. Terms x * log(p) with
// x = 0 are taken as 0, so Bernoulli(probs = 0) at 0 is 0, not nan. Bernoulli and Binomial
// also score values between their counts (the same formula, continued), which is what a VAE
// scoring pixel intensities with validation off asks for; with validation on, the engine's
// support check rejects such values first.
//
// The Poisson and Binomial samplers are Hoermann's transformed rejection (PTRS and BTRS,
// 1993) above a small mean and inversion below it. Their arithmetic is in double whatever T
// is: in float, lgamma(k + 1) for k ~ 1e6 has an absolute error of about 1, far larger
// than the acceptance test's margin.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/common/macros.hpp"
#include "kernels/math/distributions/samplers.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {
namespace discrete_detail {

template <typename T>
EMBER_HD bool is_count(T x) {
  return x >= T(0) && ::floor(x) == x;
}

// log C(n, k) through lgamma, so it also holds for a non-integer n (its partial in n is
// used when total_count requires grad).
template <typename T>
EMBER_HD T log_choose(T n, T k) {
  return log_gamma(n + T(1)) - log_gamma(k + T(1)) - log_gamma(n - k + T(1));
}

// Both uniforms of one Philox block in T's precision, widened to double for the rejection
// tests (which need double even for float draws).
template <typename T>
EMBER_HD void uniform_pair_as_double(RngState rng, std::int64_t i, std::uint32_t round, double* u,
                                     double* v) {
  T a, b;
  uniform_pair<T>(rng, i, round, &a, &b);
  *u = static_cast<double>(a);
  *v = static_cast<double>(b);
}

// Rejection loops give up after this many rounds; each round accepts with probability
// above 0.85 for PTRS and BTRS, so the cap is never reached in practice.
constexpr std::uint32_t kMaxRounds = 256;

// Poisson by sequential search of the CDF with one uniform; for rate < 10, where the
// expected number of steps is rate + 1.
EMBER_HD double poisson_inversion(double rate, double u) {
  double prob = ::exp(-rate), cdf = prob, k = 0;
  while (u > cdf && k < 200) {  // P(k > 200) < 1e-200 at rate 10; ends rounding stalls
    k += 1;
    prob *= rate / k;
    cdf += prob;
  }
  return k;
}

// PTRS (Hoermann 1993, "The transformed rejection method for generating Poisson random
// variables"), for rate >= 10. Round r of element i supplies attempt r's (u, v).
template <typename T>
EMBER_HD double poisson_ptrs(double rate, RngState rng, std::int64_t i) {
  const double slam = ::sqrt(rate), loglam = ::log(rate);
  const double b = 0.931 + 2.53 * slam;
  const double a = -0.059 + 0.02483 * b;
  const double log_inv_alpha = ::log(1.1239 + 1.1328 / (b - 3.4));
  const double vr = 0.9277 - 3.6224 / (b - 2);
  for (std::uint32_t round = 0; round < kMaxRounds; ++round) {
    double u, v;
    uniform_pair_as_double<T>(rng, i, round, &u, &v);
    u -= 0.5;
    const double us = 0.5 - ::fabs(u);
    const double k = ::floor((2 * a / us + b) * u + rate + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (::log(v) + log_inv_alpha - ::log(a / (us * us) + b) <=
        -rate + k * loglam - log_gamma(k + 1)) {
      return k;
    }
  }
  return ::floor(rate);
}

// Binomial(n, p <= 0.5) by sequential search of the CDF, for n * p < 10.
EMBER_HD double binomial_inversion(double n, double p, double u) {
  const double ratio = p / (1 - p);
  double prob = ::exp(n * ::log1p(-p)), cdf = prob, k = 0;
  while (u > cdf && k < n && k < 200) {  // as in poisson_inversion
    k += 1;
    prob *= ratio * (n - k + 1) / k;
    cdf += prob;
  }
  return k;
}

// BTRS (Hoermann 1993, "The generation of binomial random variates"), for p <= 0.5 and
// n * p >= 10.
template <typename T>
EMBER_HD double binomial_btrs(double n, double p, RngState rng, std::int64_t i) {
  const double q = 1 - p;
  const double spq = ::sqrt(n * p * q);
  const double b = 1.15 + 2.53 * spq;
  const double a = -0.0873 + 0.0248 * b + 0.01 * p;
  const double c = n * p + 0.5;
  const double vr = 0.92 - 4.2 / b;
  const double alpha = (2.83 + 5.1 / b) * spq;
  const double lpq = ::log(p / q);
  const double m = ::floor((n + 1) * p);
  const double h = log_gamma(m + 1) + log_gamma(n - m + 1);
  for (std::uint32_t round = 0; round < kMaxRounds; ++round) {
    double u, v;
    uniform_pair_as_double<T>(rng, i, round, &u, &v);
    u -= 0.5;
    const double us = 0.5 - ::fabs(u);
    const double k = ::floor((2 * a / us + b) * u + c);
    if (k < 0 || k > n) continue;
    if (us >= 0.07 && v <= vr) return k;
    if (::log(v * alpha / (a / (us * us) + b)) <=
        h - log_gamma(k + 1) - log_gamma(n - k + 1) + (k - m) * lpq) {
      return k;
    }
  }
  return m;
}

}  // namespace discrete_detail

// Bernoulli(probs): x log p + (1 - x) log(1 - p), at 0 and 1 and, for a value in between
// (pixel intensities scored by a VAE with validation off, as PyTorch's validate_args=False
// does), as the same cross-entropy; a term whose factor is 0 counts 0 (so probs 0 at 0 is
// 0, not nan). The partial in the value is logit(p): 0 where either term is infinite.
template <typename T>
struct BernoulliLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* prm, T* g) const {
    const T p = prm[0];
    if (!(x >= T(0) && x <= T(1))) return out_of_support(g, kParams);
    T lp = T(0), dp = T(0);
    if (x > T(0)) {
      if (!(p > T(0))) return out_of_support(g, kParams);
      lp += x * ::log(p);
      dp += x / p;
    }
    if (x < T(1)) {
      if (!(p < T(1))) return out_of_support(g, kParams);
      lp += (T(1) - x) * ::log1p(-p);
      dp -= (T(1) - x) / (T(1) - p);
    }
    g[0] = (p > T(0) && p < T(1)) ? ::log(p) - ::log1p(-p) : T(0);
    g[1] = dp;
    return lp;
  }
};

// Bernoulli(logits): x log sigmoid(l) + (1 - x) log sigmoid(-l), for x in [0, 1] as above.
template <typename T>
struct BernoulliLogitsLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* prm, T* g) const {
    const T l = prm[0];
    // x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l), from one exp and one
    // log: e = exp(-|l|) gives softplus(l) = max(l, 0) + log1p(e) and sigmoid(l) as well.
    // Without a branch (the support decides by selection), so the loop vectorizes; outside
    // [0, 1] the result is out_of_support's: -inf with zero partials.
    const bool in_support = x >= T(0) && x <= T(1);
    const T e = exp_fast(-::fabs(l));
    const T sig = l >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    const T lp = (x * l - (l > T(0) ? l : T(0))) - log1p_unit(e);
    g[0] = in_support ? l : T(0);
    g[1] = in_support ? x - sig : T(0);
    return in_support ? lp : -static_cast<T>(INFINITY);
  }
};

// Binomial and Poisson log-pmfs add terms as large as lgamma(n + 1) and x log(rate) that
// cancel to a much smaller result: in float32 that cancellation alone costs about 3e-4
// absolute at counts near 1e3 and 0.03 at 4e4. They are computed in double whatever T is
// (as the samplers are), and rounded to T once at the end.

// Binomial(total_count n, probs p): log C(n, x) + x log p + (n - x) log(1 - p), through
// lgamma for any x in [0, n] (the support check, while validation is on, asks for counts).
template <typename T>
struct BinomialLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x_in, const T* prm, T* g) const {
    const double x = x_in, n = prm[0], p = prm[1];
    if (!(x >= 0.0 && x <= n)) return out_of_support(g, kParams);
    double lp = discrete_detail::log_choose(n, x);
    double dn = digamma(n + 1.0) - digamma(n - x + 1.0);
    double dp = 0.0;
    if (x > 0.0) {
      if (!(p > 0.0)) return out_of_support(g, kParams);
      lp += x * ::log(p);
      dp += x / p;
    }
    if (n > x) {
      if (!(p < 1.0)) return out_of_support(g, kParams);
      lp += (n - x) * ::log1p(-p);
      dp -= (n - x) / (1.0 - p);
    }
    if (p < 1.0) dn += ::log1p(-p);
    g[0] = T(0);
    g[1] = static_cast<T>(dn);
    g[2] = static_cast<T>(dp);
    return static_cast<T>(lp);
  }
};

// Binomial(total_count n, logits l): log C(n, x) + x log sigmoid(l) + (n - x) log sigmoid(-l),
// two nonpositive terms (no cancellation for large |l|).
template <typename T>
struct BinomialLogitsLogProb {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(T x_in, const T* prm, T* g) const {
    const double x = x_in, n = prm[0], l = prm[1];
    if (!(x >= 0.0 && x <= n)) return out_of_support(g, kParams);
    const double log_q = log_sigmoid(-l);
    double lp = discrete_detail::log_choose(n, x);
    if (x > 0.0) lp += x * log_sigmoid(l);
    if (n > x) lp += (n - x) * log_q;
    g[0] = T(0);
    g[1] = static_cast<T>(digamma(n + 1.0) - digamma(n - x + 1.0) + log_q);
    g[2] = static_cast<T>(x - n * sigmoid(l));
    return static_cast<T>(lp);
  }
};

// Poisson(rate): x log(rate) - rate - log x!.
template <typename T>
struct PoissonLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x_in, const T* prm, T* g) const {
    const double x = x_in, rate = prm[0];
    if (!discrete_detail::is_count(x)) return out_of_support(g, kParams);
    g[0] = T(0);
    if (x == 0.0) {
      g[1] = T(-1);
      return static_cast<T>(-rate);
    }
    if (!(rate > 0.0)) return out_of_support(g, kParams);
    g[1] = static_cast<T>(x / rate - 1.0);
    return static_cast<T>(x * ::log(rate) - rate - log_gamma(x + 1.0));
  }
};

// Geometric(probs), counting failures before the first success: log p + x log(1 - p).
template <typename T>
struct GeometricLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* prm, T* g) const {
    const T p = prm[0];
    if (!discrete_detail::is_count(x) || !(p > T(0))) return out_of_support(g, kParams);
    g[0] = T(0);
    if (x == T(0)) {
      g[1] = T(1) / p;
      return ::log(p);
    }
    if (!(p < T(1))) return out_of_support(g, kParams);
    g[1] = T(1) / p - x / (T(1) - p);
    return ::log(p) + x * ::log1p(-p);
  }
};

// Geometric(logits): log sigmoid(l) + x log sigmoid(-l).
template <typename T>
struct GeometricLogitsLogProb {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(T x, const T* prm, T* g) const {
    const T l = prm[0];
    if (!discrete_detail::is_count(x)) return out_of_support(g, kParams);
    g[0] = T(0);
    g[1] = sigmoid(-l) - x * sigmoid(l);
    T lp = log_sigmoid(l);
    if (x > T(0)) lp += x * log_sigmoid(-l);
    return lp;
  }
};

#define EMBER_LOG_PROB_DISCRETE(X) \
  X(Bernoulli)                     \
  X(BernoulliLogits)               \
  X(Binomial)                      \
  X(BinomialLogits)                \
  X(Poisson)                       \
  X(Geometric)                     \
  X(GeometricLogits)

// Poisson(rate): inversion below rate 10, PTRS from there (retries in rounds 1, 2, ...).
template <typename T>
struct PoissonSampler {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(const T* prm, RngState rng, std::int64_t i) const {
    const double rate = static_cast<double>(prm[0]);
    if (!(rate > 0)) return rate == 0 ? T(0) : static_cast<T>(NAN);
    if (rate < 10) {
      return static_cast<T>(discrete_detail::poisson_inversion(rate, uniform01<T>(rng, i)));
    }
    return static_cast<T>(discrete_detail::poisson_ptrs<T>(rate, rng, i));
  }
};

// Binomial(total_count, probs): draws for min(p, 1 - p) (n - k for the complement);
// inversion while n * min(p, 1 - p) < 10, BTRS beyond.
template <typename T>
struct BinomialSampler {
  static constexpr int kParams = 2;
  EMBER_HD T operator()(const T* prm, RngState rng, std::int64_t i) const {
    const double n = static_cast<double>(prm[0]), p = static_cast<double>(prm[1]);
    if (!(n >= 0) || !(p >= 0 && p <= 1)) return static_cast<T>(NAN);
    if (n == 0 || p == 0) return T(0);
    if (p == 1) return static_cast<T>(n);
    const bool flip = p > 0.5;
    const double q = flip ? 1 - p : p;
    const double k = n * q < 10 ? discrete_detail::binomial_inversion(n, q, uniform01<T>(rng, i))
                                : discrete_detail::binomial_btrs<T>(n, q, rng, i);
    return static_cast<T>(flip ? n - k : k);
  }
};

// Geometric(probs): floor(log u / log(1 - p)), the inverse CDF of the failure count.
template <typename T>
struct GeometricSampler {
  static constexpr int kParams = 1;
  EMBER_HD T operator()(const T* prm, RngState rng, std::int64_t i) const {
    const T p = prm[0];
    if (p >= T(1)) return T(0);
    return ::floor(::log(uniform01<T>(rng, i)) / ::log1p(-p));
  }
};

#define EMBER_SAMPLERS_DISCRETE(X) \
  X(Poisson)                       \
  X(Binomial)                      \
  X(Geometric)

}  // namespace ember::kernels
