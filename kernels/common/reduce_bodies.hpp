// What reductions and scans do per element and per line, once for both launchers (the
// launchers differ in how they split the work: threads and lanes on the CPU, blocks, warps
// and passes on the GPU).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/macros.hpp"
#include "kernels/math/elementwise_ops.hpp"

namespace ember::kernels {

// What a reduction combines: element r of one input, or the product of two inputs' elements
// (reduce_product, how a fused log-density's partials meet the incoming gradient). `base`
// holds each input's offset for the current output, `r` the offsets within it.
template <typename T>
struct LoadOne {
  static constexpr int kInputs = 1;
  const T* in[1];
  EMBER_HD T operator()(const std::int64_t* base, const std::int64_t (&r)[1]) const {
    return in[0][base[0] + r[0]];
  }
};

template <typename T>
struct LoadProduct {
  static constexpr int kInputs = 2;
  const T* in[2];
  EMBER_HD T operator()(const std::int64_t* base, const std::int64_t (&r)[2]) const {
    return in[0][base[0] + r[0]] * in[1][base[1] + r[1]];
  }
};

// Inclusive scan of one line of `len` elements (strided in and out), from the end when
// reverse, combining in the element type.
template <typename Combine, typename T>
EMBER_HD void scan_line(T* out, std::int64_t out_stride, const T* in, std::int64_t in_stride,
                        std::int64_t len, bool reverse) {
  const Combine combine{};
  T acc = Combine::identity();
  for (std::int64_t j = 0; j < len; ++j) {
    const std::int64_t p = reverse ? len - 1 - j : j;
    acc = combine(acc, in[p * in_stride]);
    out[p * out_stride] = acc;
  }
}

// The exact gradient of cumprod along one line, with no division (so zeros in x are fine):
// gx_k = (prod_{i<k} x_i) * S_k with S_k = g_k + x_{k+1} S_{k+1}.
template <typename T>
EMBER_HD void cumprod_backward_line(T* gx, std::int64_t sgx, const T* g, std::int64_t sg,
                                    const T* x, std::int64_t sx, std::int64_t len) {
  T s = T(0);
  for (std::int64_t k = len - 1; k >= 0; --k) {
    const T next_x = k + 1 < len ? x[(k + 1) * sx] : T(0);
    s = g[k * sg] + next_x * s;
    gx[k * sgx] = s;
  }
  T prefix = T(1);
  for (std::int64_t k = 0; k < len; ++k) {
    gx[k * sgx] *= prefix;
    prefix *= x[k * sx];
  }
}

// The sum of one line, in order.
template <typename T>
EMBER_HD T line_sum(const T* x, std::int64_t sx, std::int64_t len) {
  T s = T(0);
  for (std::int64_t j = 0; j < len; ++j) s += x[j * sx];
  return s;
}

// log(x_k) - log(sum_i x_i) along one line: the log-probabilities of a table of unnormalized
// probabilities (a zero gives -inf; a sum of zero, nan). log_fast: on the CPU a float line's
// logs vectorize, where the C library's would be a call per element.
// Given the line's sum (the CPU sums several lines at once: kernels/cpu/reduce.cpp).
template <typename T>
EMBER_HD void log_normalize_given_sum(T* out, std::int64_t so, const T* x, std::int64_t sx,
                                      std::int64_t len, T sum) {
  const T log_s = log_fast(sum);
  for (std::int64_t k = 0; k < len; ++k) out[k * so] = log_fast(x[k * sx]) - log_s;
}
template <typename T>
EMBER_HD void log_normalize_line(T* out, std::int64_t so, const T* x, std::int64_t sx,
                                 std::int64_t len) {
  log_normalize_given_sum(out, so, x, sx, len, line_sum(x, sx, len));
}

// Its gradient along one line: gx_k = g_k / x_k - (sum_i g_i) / (sum_i x_i).
// Given the line's two sums (see log_normalize_given_sum).
template <typename T>
EMBER_HD void log_normalize_backward_given_sums(T* gx, std::int64_t sgx, const T* g,
                                                std::int64_t sg, const T* x, std::int64_t sx,
                                                std::int64_t len, T sum_g, T sum_x) {
  const T shared = sum_g / sum_x;
  for (std::int64_t k = 0; k < len; ++k) gx[k * sgx] = g[k * sg] / x[k * sx] - shared;
}
template <typename T>
EMBER_HD void log_normalize_backward_line(T* gx, std::int64_t sgx, const T* g, std::int64_t sg,
                                          const T* x, std::int64_t sx, std::int64_t len) {
  log_normalize_backward_given_sums(gx, sgx, g, sg, x, sx, len, line_sum(g, sg, len),
                                    line_sum(x, sx, len));
}

// The category a Categorical's value names, or -1 when it is not an integer in 0..len-1.
template <typename V>
EMBER_HD std::int64_t category_of(V v, std::int64_t len) {
  if (!(v >= V(0) && v <= V(len - 1))) return -1;  // also a nan
  const auto k = static_cast<std::int64_t>(v);
  return static_cast<V>(k) == v ? k : -1;
}

// The log-normalizer of one line of logits: logsumexp (shifted by the max; -inf for a line of
// -inf). exp_fast and log_fast, as for the other lines' exps and logs: inline float
// polynomials on the CPU, where the C library's would be a call per element; the device's own
// on the GPU.
template <typename T>
EMBER_HD T logsumexp_line(const T* table, std::int64_t st, std::int64_t len) {
  T m = T(-INFINITY);
  for (std::int64_t j = 0; j < len; ++j) m = table[j * st] > m ? table[j * st] : m;
  if (m == T(-INFINITY)) return m;
  T s = T(0);
  for (std::int64_t j = 0; j < len; ++j) s += exp_fast(table[j * st] - m);
  return m + log_fast(s);
}

// log p(v) of one line, in two steps so that a loop over many lines can take the logs of a
// block of them at once (kernels/cpu/reduce.cpp): categorical_log_prob_line_pre gives either a
// positive ratio whose log is the result, or the result itself, never positive; and
// categorical_log_prob_finish turns that into the result. For probabilities the ratio
// table[v] / sum, whose one log is as accurate as two logs' difference, or more where they
// nearly cancel; unless the ratio leaves the normal range and would lose bits as a denormal:
// then log(table[v]) - log(sum), below log(tiny_normal) < 0. For logits table[v] - logsumexp,
// at most 0 (the logsumexp is at least the largest logit). Out of range: -inf.
// For probabilities, the line's sum is an argument of its own (categorical_..._given_sum): the
// CPU sums a table shared by every line once for all of them (kernels/cpu/reduce.cpp).
template <typename T, typename V>
EMBER_HD T categorical_log_prob_given_sum(const T* table, std::int64_t st, std::int64_t len, V v,
                                          T sum) {
  const std::int64_t k = category_of(v, len);
  if (k < 0) return T(-INFINITY);
  const T picked = table[k * st];
  const T ratio = picked / sum;
  return ratio >= tiny_normal<T>() ? ratio : ::log(picked) - ::log(sum);
}
template <typename T, typename V>
EMBER_HD T categorical_log_prob_line_pre(const T* table, std::int64_t st, std::int64_t len, V v,
                                         bool logits) {
  if (!logits) return categorical_log_prob_given_sum(table, st, len, v, line_sum(table, st, len));
  const std::int64_t k = category_of(v, len);
  if (k < 0) return T(-INFINITY);
  return table[k * st] - logsumexp_line(table, st, len);
}
template <typename T>
EMBER_HD T categorical_log_prob_finish(T pre) {
  return pre > T(0) ? log_fast(pre) : pre;
}

// The category a uniform draw u in [0, 1) picks from one line of a Categorical's table: the
// first index whose cumulative weight reaches u times the line's total, where the weights are
// the probabilities as given (normalized or not) or, for logits, exp(logit - max). Scaling u by
// the total summed in the same order keeps a category of weight 0 from being picked, a
// trailing one included. A line without weight (all zero, or all -inf logits) picks 0.
// The first index j < len - 1 whose cumulative weight reaches threshold, else len - 1.
template <typename T, typename Weight>
EMBER_HD std::int64_t categorical_first_reaching(const Weight& weight, std::int64_t len,
                                                 T threshold) {
  T cumulative = T(0);
  for (std::int64_t j = 0; j + 1 < len; ++j) {
    cumulative += weight(j);
    if (!(cumulative < threshold)) return j;
  }
  return len - 1;
}
// For probabilities, given the line's sum (see categorical_log_prob_given_sum).
template <typename T>
EMBER_HD std::int64_t categorical_pick_given_sum(const T* table, std::int64_t st, std::int64_t len,
                                                 T u, T sum) {
  return categorical_first_reaching([&](std::int64_t j) { return table[j * st]; }, len, u * sum);
}
template <typename T>
EMBER_HD std::int64_t categorical_pick_line(const T* table, std::int64_t st, std::int64_t len, T u,
                                            bool logits) {
  if (!logits) return categorical_pick_given_sum(table, st, len, u, line_sum(table, st, len));
  T m = T(-INFINITY);
  for (std::int64_t j = 0; j < len; ++j) m = table[j * st] > m ? table[j * st] : m;
  if (m == T(-INFINITY)) return 0;
  const auto weight = [&](std::int64_t j) { return exp_fast(table[j * st] - m); };
  T total = T(0);
  for (std::int64_t j = 0; j < len; ++j) total += weight(j);
  return categorical_first_reaching(weight, len, u * total);
}

// Its gradient along one line into gt: g ([j == v] / table[v] - 1 / sum) for probabilities
// (1 / sum itself, not exp(-log(sum)): no transcendental call per line), g ([j == v] -
// softmax_j) for logits; zeros for a value out of range.
template <typename T, typename V>
EMBER_HD void categorical_log_prob_backward_given_sum(T* gt, std::int64_t sgt, T g, const T* table,
                                                      std::int64_t st, std::int64_t len, V v,
                                                      T sum) {
  const std::int64_t k = category_of(v, len);
  const T shared = k < 0 ? T(0) : -g / sum;
  for (std::int64_t j = 0; j < len; ++j) gt[j * sgt] = shared;
  if (k >= 0) gt[k * sgt] += g / table[k * st];
}
template <typename T, typename V>
EMBER_HD void categorical_log_prob_backward_line(T* gt, std::int64_t sgt, T g, const T* table,
                                                 std::int64_t st, std::int64_t len, V v,
                                                 bool logits) {
  if (!logits) {
    categorical_log_prob_backward_given_sum(gt, sgt, g, table, st, len, v,
                                            line_sum(table, st, len));
    return;
  }
  const std::int64_t k = category_of(v, len);
  if (k < 0) {
    for (std::int64_t j = 0; j < len; ++j) gt[j * sgt] = T(0);
    return;
  }
  const T norm = logsumexp_line(table, st, len);
  for (std::int64_t j = 0; j < len; ++j) gt[j * sgt] = -g * exp_fast(table[j * st] - norm);
  gt[k * sgt] += g;
}

// The stick-breaking map of StickBreakingTransform along one line, from the fractions z (length
// n, each in (0, 1)) to y on the simplex (length n + 1): piece k takes the fraction z_k of the
// stick left, r_{k-1} (r_{-1} = 1), so y_k = z_k r_{k-1} and r_k = r_{k-1} (1 - z_k); the
// last piece is what is left, y_n = r_{n-1}. One pass, with the products of the composition
// pad(z, {0, 1}, 1) * pad(cumprod(1 - z), {1, 0}, 1) in the same order.
template <typename T>
EMBER_HD void stick_breaking_line(T* y, std::int64_t sy, const T* z, std::int64_t sz,
                                  std::int64_t n) {
  T rest = T(1);
  for (std::int64_t k = 0; k < n; ++k) {
    const T zk = z[k * sz];
    y[k * sy] = zk * rest;
    rest *= T(1) - zk;
  }
  y[n * sy] = rest;
}

// Its gradient from g (length n + 1) into gz (length n). a_k, the gradient reaching r_k,
// starts at a_{n-1} = g_n and runs back as a_{k-1} = g_k z_k + a_k (1 - z_k); the gradient of
// z_k is r_{k-1} (g_k - a_k). r_{k-1} is computed forward into gz first: no division, so a z
// of 1 is fine.
template <typename T>
EMBER_HD void stick_breaking_backward_line(T* gz, std::int64_t sgz, const T* g, std::int64_t sg,
                                           const T* z, std::int64_t sz, std::int64_t n) {
  T rest = T(1);
  for (std::int64_t k = 0; k < n; ++k) {
    gz[k * sgz] = rest;
    rest *= T(1) - z[k * sz];
  }
  T a = g[n * sg];
  for (std::int64_t k = n - 1; k >= 0; --k) {
    const T zk = z[k * sz], gk = g[k * sg];
    gz[k * sgz] *= gk - a;
    a = gk * zk + a * (T(1) - zk);
  }
}

// The body of line map `op` along one line (len: in's length along it).
template <typename T>
EMBER_HD void line_map_line(LineMap op, T* out, std::int64_t so, const T* in, std::int64_t si,
                            std::int64_t len) {
  if (op == LineMap::LogNormalize) {
    log_normalize_line(out, so, in, si, len);
  } else {
    stick_breaking_line(out, so, in, si, len);
  }
}

// The gradient body of `op` along one line (len: x's length along it).
template <typename T>
EMBER_HD void line_backward_line(LineGrad op, T* gx, std::int64_t sgx, const T* g, std::int64_t sg,
                                 const T* x, std::int64_t sx, std::int64_t len) {
  switch (op) {
    case LineGrad::Cumprod:
      cumprod_backward_line(gx, sgx, g, sg, x, sx, len);
      return;
    case LineGrad::LogNormalize:
      log_normalize_backward_line(gx, sgx, g, sg, x, sx, len);
      return;
    case LineGrad::StickBreaking:
      stick_breaking_backward_line(gx, sgx, g, sg, x, sx, len);
      return;
  }
}

// The line ops' bodies for each backend's loop over lines (the CPU's for_each_line, the CUDA
// launcher's launch_elementwise over LineGeometry::lines): body(line, offsets) with each
// operand's offset of the line's first element; pointers and strides held by value.
template <typename T>
struct LineMapLines {
  LineMap op;
  T* out;
  const T* in;
  std::int64_t s_out, s_in, len;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[2]) const {
    line_map_line(op, out + off[1], s_out, in + off[0], s_in, len);  // off[0]: in's
  }
};

template <typename T>
struct LineBackwardLines {
  LineGrad op;
  T* gx;
  const T* g;
  const T* x;
  std::int64_t s_gx, s_g, s_x, len;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    line_backward_line(op, gx + off[0], s_gx, g + off[1], s_g, x + off[2], s_x, len);
  }
};

template <typename T, typename V>
struct CategoricalLogProbLines {
  T* out;
  const T* table;
  const V* value;
  std::int64_t s_table, len;
  bool logits;
  static constexpr int kTable = 1;  // the table's operand
  EMBER_HD T pre(const std::int64_t (&off)[3]) const {
    return categorical_log_prob_line_pre(table + off[1], s_table, len, value[off[2]], logits);
  }
  EMBER_HD T pre_given_sum(const std::int64_t (&off)[3], T sum) const {
    return categorical_log_prob_given_sum(table + off[1], s_table, len, value[off[2]], sum);
  }
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    out[off[0]] = categorical_log_prob_finish(pre(off));
  }
};

template <typename T, typename V>
struct CategoricalLogProbBackwardLines {
  T* gtable;
  const T* g;
  const T* table;
  const V* value;
  std::int64_t s_gtable, s_table, len;
  bool logits;
  static constexpr int kTable = 2;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[4]) const {
    categorical_log_prob_backward_line(gtable + off[0], s_gtable, g[off[1]], table + off[2],
                                       s_table, len, value[off[3]], logits);
  }
  EMBER_HD void given_sum(const std::int64_t (&off)[4], T sum) const {
    categorical_log_prob_backward_given_sum(gtable + off[0], s_gtable, g[off[1]], table + off[2],
                                            s_table, len, value[off[3]], sum);
  }
};

template <typename T>
struct CategoricalSampleLines {
  std::int64_t* out;
  const T* table;
  const T* u;
  std::int64_t s_table, len;
  bool logits;
  static constexpr int kTable = 1;
  EMBER_HD void operator()(std::int64_t, const std::int64_t (&off)[3]) const {
    out[off[0]] = categorical_pick_line(table + off[1], s_table, len, u[off[2]], logits);
  }
  EMBER_HD void given_sum(const std::int64_t (&off)[3], T sum) const {
    out[off[0]] = categorical_pick_given_sum(table + off[1], s_table, len, u[off[2]], sum);
  }
};

}  // namespace ember::kernels
