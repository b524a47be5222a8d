// Reference CDFs for the Gamma-based families' tests, in float64 and independent of the
// kernels: the regularized incomplete gamma and beta functions by the textbook series and
// continued fractions (Numerical Recipes 6.2, 6.4), iterated to full precision.
#pragma once

#include <cmath>

namespace ember::test {

// log P(a, x) and log Q(a, x), Q = 1 - P, each computed directly where it is the small one
// (so neither tail underflows), the other from it.
struct LogIncompleteGamma {
  double log_p, log_q;
  double p() const { return std::exp(log_p); }
};

inline LogIncompleteGamma log_incomplete_gamma(double a, double x) {
  if (x <= 0) return {-INFINITY, 0.0};
  const double log_prefix = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 100000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    const double log_p = std::log(sum) + log_prefix;
    return {log_p, std::log1p(-std::exp(log_p))};
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < 1e-17) break;
  }
  const double log_q = std::log(h) + log_prefix;
  return {std::log1p(-std::exp(log_q)), log_q};
}

// The Gamma(a, 1) CDF.
inline double gamma_cdf(double a, double x) { return log_incomplete_gamma(a, x).p(); }

// log of the Gamma(a, 1) density.
inline double gamma_log_density(double a, double x) {
  return (a - 1) * std::log(x) - x - std::lgamma(a);
}

// dx/da of a Gamma(a, 1) draw x holding its CDF fixed: -(dP/da) / f. The derivative is taken
// by central differences (relative step 1e-5) of the log of the smaller tail T, which is
// nearly linear in a, so truncation stays near 1e-10: dT/da = T d(log T)/da.
inline double gamma_implicit_grad(double a, double x) {
  const double h = 1e-5 * a;
  const LogIncompleteGamma mid = log_incomplete_gamma(a, x);
  const LogIncompleteGamma up = log_incomplete_gamma(a + h, x);
  const LogIncompleteGamma down = log_incomplete_gamma(a - h, x);
  const bool lower = mid.log_p < mid.log_q;
  const double log_t = lower ? mid.log_p : mid.log_q;
  const double dlog_t =
      lower ? (up.log_p - down.log_p) / (2 * h) : (up.log_q - down.log_q) / (2 * h);
  const double dt_over_f = std::exp(log_t - gamma_log_density(a, x)) * dlog_t;
  return lower ? -dt_over_f : dt_over_f;
}

// Continued fraction of the incomplete beta function.
inline double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::abs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m < 100000; ++m) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < 1e-16) break;
  }
  return h;
}

// The regularized incomplete beta function I_x(a, b), the Beta(a, b) CDF.
inline double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0.0;
  if (x >= 1) return 1.0;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
  return 1.0 - front * beta_cf(b, a, 1 - x) / b;
}

// The StudentT(df, loc, scale) CDF.
inline double student_t_cdf(double x, double df, double loc, double scale) {
  const double t = (x - loc) / scale;
  const double tail = 0.5 * incomplete_beta(0.5 * df, 0.5, df / (df + t * t));
  return t > 0 ? 1.0 - tail : tail;
}

}  // namespace ember::test
