// The log-space matrix product and its max-plus twin, per output element, written once for
// both launchers: out[m, n] = log sum_k exp(a[m, k] + b[k, n]) (or max_k (a[m, k] + b[k, n]))
// with each element's terms shifted by their max, so that float32 neither overflows nor
// underflows and a -inf term is a probability of zero; and the per-element sums of its
// gradient. How an enumerated chain's forward algorithm (and Viterbi) moves along a step.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/macros.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {

// An output's steps, shared by log_matmul_exp_entry and the CPU's loops over a row of outputs
// side by side (kernels/cpu/linalg.cpp), so that both take the same steps in the same order:
// the terms' running max; whether the max is the result (max-plus, or a max of -inf or +inf);
// each term's exp after the shift; the result from the max and the sum of those exps.
template <typename T>
EMBER_HD T log_matmul_exp_max_step(T m, T term) {
  return term > m ? term : m;
}
template <typename T>
EMBER_HD bool log_matmul_exp_is_max(T m, bool max_plus) {
  return max_plus || m == T(-INFINITY) || m == T(INFINITY);
}
template <typename T>
EMBER_HD T log_matmul_exp_shifted(T term, T m) {
  return exp_fast(term - m);
}
template <typename T>
EMBER_HD T log_matmul_exp_result(T m, T sum) {
  return m + log_fast(sum);
}

// One output: the k terms a[i * sa] + b[i * sb]. A NaN term gives NaN (the first one); a +inf
// one +inf; all -inf give -inf.
template <typename T>
EMBER_HD T log_matmul_exp_entry(const T* a, std::int64_t sa, const T* b, std::int64_t sb,
                                std::int64_t k, bool max_plus) {
  T m = T(-INFINITY);
  for (std::int64_t i = 0; i < k; ++i) {
    const T v = a[i * sa] + b[i * sb];
    if (v != v) return v;
    m = log_matmul_exp_max_step(m, v);
  }
  if (log_matmul_exp_is_max(m, max_plus)) return m;
  T s = T(0);
  for (std::int64_t i = 0; i < k; ++i) s += log_matmul_exp_shifted(a[i * sa] + b[i * sb], m);
  return log_matmul_exp_result(m, s);
}

// The weight of one term in its output's gradient: d out / d (a + b) = exp(a + b - out), zero
// for an output of -inf (every term zero).
template <typename T>
EMBER_HD T log_matmul_exp_weight(T term, T out) {
  return out == T(-INFINITY) ? T(0) : exp_fast(term - out);
}

// d loss / d a[m, k] = sum_n g[m, n] exp(a[m, k] + b[k, n] - out[m, n]): b's row k, g's and
// out's row m, n entries apart by their strides.
template <typename T>
EMBER_HD T log_matmul_exp_grad_a(T a_mk, const T* b_row, std::int64_t sb, const T* g_row,
                                 std::int64_t sg, const T* out_row, std::int64_t so,
                                 std::int64_t n) {
  T s = T(0);
  for (std::int64_t j = 0; j < n; ++j) {
    s += g_row[j * sg] * log_matmul_exp_weight(a_mk + b_row[j * sb], out_row[j * so]);
  }
  return s;
}

}  // namespace ember::kernels
