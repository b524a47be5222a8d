// Matrix-vector products of narrow matrices on the CPU: y = A x where the side that is summed
// over (row dots) or the side that is kept (column sums) fits one 64-byte vector, as in a
// regression's X w and X^T r with a few features. OpenBLAS runs such shapes through kernels
// made for long rows. tensor_ops_bench, float32, 16 features, one thread, through matmul (the
// op's own work included), OpenBLAS against these: BM_MatVec/cpu/1000 (X w) 2.18 ->
// 1.30 us, BM_MatVecT/cpu/1000 (X^T r) 1.41 -> 1.03 us; at 10^6 rows 2.6-2.9 -> 2.17 ms and
// 2.2-2.4 -> 2.18 ms (an AVX-512 machine). On an AVX2 machine (an AMD EPYC, two interleaved
// runs), whole 64-byte vectors against halves: X w 2.04-2.06 -> 1.56-1.68 us and X^T r
// 3.85-4.72 -> 1.43-1.88 us at 1000 rows; at 10^6 rows both bound by memory (4-5.5 ms).
//
// Each output is summed in a fixed order that depends on neither the number of rows nor the
// instruction set: the vectors are GCC/clang vector extensions, which the compiler lowers to
// whatever the clone it compiles for (EMBER_CPU_CLONES) has, lane for lane, and multiplies and
// adds stay separate (no contraction), so every clone gives the same bits.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/cpu/cpu_loops.hpp"

namespace ember::kernels::cpu {

// Vectors of `Bytes` bytes of T, and integer vectors of the same lanes (masks, shuffle
// indices).
template <typename T, int Bytes>
struct VectorOf {
  using Int = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  // typedef, not using: GCC drops a dependent vector_size from an alias declaration.
  typedef T V __attribute__((vector_size(Bytes)));    // NOLINT(modernize-use-using)
  typedef Int I __attribute__((vector_size(Bytes)));  // NOLINT(modernize-use-using)
  static constexpr int kCount = Bytes / static_cast<int>(sizeof(T));
};
// Whole vectors: 64 bytes.
template <typename T>
using Lanes = VectorOf<T, 64>;

// Half of such a vector: 32 bytes, what an AVX2 register holds. GCC lowers a 64-byte vector
// on a machine without AVX-512 through the stack, moving halves in and out at every step (the
// product over 1000 rows ran four times slower than on AVX-512), so there the products below
// run on halves, each output summed in the very same order: the same bits either way
// (NarrowGemv.HalvesGiveTheBitsOfWholeVectors).
template <typename T>
using Halves = VectorOf<T, 32>;

// Whether this CPU holds a 64-byte vector in one register (AVX-512); else the products run
// on halves.
inline bool whole_vectors() {
  static const bool whole = __builtin_cpu_supports("avx512f") != 0;
  return whole;
}

// Lane l's index into (x, y) for one step of the transposing sum below: lanes come in groups
// of 2h; the lower half of a group takes x's half (`upper`: the group's upper half, else its
// lower one), the upper half y's.
constexpr int fold_index(int l, int h, bool upper, int count) {
  const int base = l / (2 * h) * (2 * h), off = l % (2 * h), shift = upper ? h : 0;
  return off < h ? base + off + shift : count + base + (off - h) + shift;
}

// x's and y's groups of 2h lanes each summed to h lanes, x's first: after steps with h = L/2,
// L/4, ..., 1 over L vectors (pairs of them, then pairs of the results), lane l holds the sum
// of the lanes of input vector bitreverse(l).
// (Vectors go by reference: passed by value, 64-byte vectors have an ABI of their own.)
template <typename T, int H, std::size_t... L>
[[gnu::always_inline]] inline void fold(typename Lanes<T>::V& out, const typename Lanes<T>::V& x,
                                        const typename Lanes<T>::V& y, std::index_sequence<L...>) {
  constexpr int n = Lanes<T>::kCount;
  out = __builtin_shufflevector(x, y, fold_index(static_cast<int>(L), H, false, n)...) +
        __builtin_shufflevector(x, y, fold_index(static_cast<int>(L), H, true, n)...);
}

constexpr int bit_reverse(int v, int bits) {
  int r = 0;
  for (int b = 0; b < bits; ++b) r |= ((v >> b) & 1) << (bits - 1 - b);
  return r;
}

// The first `count` of the L lanes at p, the rest zero. Reads the L lanes in one load when
// `whole` (they are all inside the operand), lane by lane otherwise.
template <typename T>
[[gnu::always_inline]] inline void load_lanes(typename Lanes<T>::V& v, const T* p, int count,
                                              bool whole, const typename Lanes<T>::I& keep) {
  using V = typename Lanes<T>::V;
  using I = typename Lanes<T>::I;
  v = V{};
  if (whole) {
    std::memcpy(&v, p, sizeof(V));
    v = reinterpret_cast<V>(reinterpret_cast<I>(v) & keep);
    return;
  }
  for (int l = 0; l < count; ++l) v[l] = p[l];
}

// Lanes below count set (all ones), the rest clear.
template <typename T>
[[gnu::always_inline]] inline void lane_mask(typename Lanes<T>::I& m, int count) {
  for (int l = 0; l < Lanes<T>::kCount; ++l) m[l] = l < count ? -1 : 0;
}

// One block of L rows (row i0 + bit_reverse(p) in vector p, so that lane l of the result is
// row i0 + l) multiplied by x lane by lane and transposed into the L sums by log2(L) folds.
// `Whole`: every row's L lanes lie inside the matrix (one load each); otherwise rows past
// `rows` are zero and the others are read lane by lane.
template <typename T, bool Whole>
[[gnu::always_inline]] inline void row_block(typename Lanes<T>::V& s, const T* a, std::int64_t lda,
                                             const typename Lanes<T>::V& xv,
                                             const typename Lanes<T>::I& keep, std::int64_t i0,
                                             std::int64_t rows, int k, std::int64_t last) {
  using V = typename Lanes<T>::V;
  constexpr int L = Lanes<T>::kCount;
  constexpr int kBits = L == 16 ? 4 : 3;
  using Seq = std::make_index_sequence<L>;
  V v[L];
#pragma GCC unroll 16
  for (int p = 0; p < L; ++p) {
    const std::int64_t r = i0 + bit_reverse(p, kBits);
    if constexpr (Whole) {
      load_lanes<T>(v[p], a + r * lda, k, true, keep);
    } else if (r < rows) {
      load_lanes<T>(v[p], a + r * lda, k, r * lda + L <= last, keep);
    } else {
      v[p] = V{};
    }
    v[p] *= xv;
  }
  V t[L / 2];
#pragma GCC unroll 8
  for (int p = 0; p < L / 2; ++p) fold<T, L / 2>(t[p], v[2 * p], v[2 * p + 1], Seq{});
#pragma GCC unroll 4
  for (int p = 0; p < L / 4; ++p) fold<T, L / 4>(t[p], t[2 * p], t[2 * p + 1], Seq{});
  if constexpr (L == 16) {
    fold<T, 2>(t[0], t[0], t[1], Seq{});
    fold<T, 2>(t[1], t[2], t[3], Seq{});
  }
  fold<T, 1>(s, t[0], t[1], Seq{});
}

// y[i] (+)= sum_j a[i * lda + j] x[j * incx] for i < rows, j < k <= L (beta 0 or 1), a block
// of L rows at a time (row_block); a last partial block is padded with zero rows, so each
// row's sum is the same wherever the row is. Each row's L products p are summed as
// s_j = p_j + p_{j + L/2}, then the same over s's halves, down to one.
template <typename T>
EMBER_CPU_CLONES void row_dots_whole(const T* a, std::int64_t lda, const T* x, std::int64_t incx,
                                     T* y, std::int64_t rows, int k, T beta) {
  using V = typename Lanes<T>::V;
  constexpr int L = Lanes<T>::kCount;
  typename Lanes<T>::I keep;
  lane_mask<T>(keep, k);
  V xv{};
  for (int j = 0; j < k; ++j) xv[j] = x[j * incx];
  // One past the last element read (a[(rows - 1) * lda + k - 1]): blocks whose rows all have
  // L lanes before it load whole rows.
  const std::int64_t last = (rows - 1) * lda + k;
  V s;
  std::int64_t i0 = 0;
  for (; i0 + L <= rows && (i0 + L - 1) * lda + L <= last; i0 += L) {
    row_block<T, true>(s, a, lda, xv, keep, i0, rows, k, last);
    if (beta == T(0)) {
      std::memcpy(y + i0, &s, sizeof(V));
    } else {
      for (int l = 0; l < L; ++l) y[i0 + l] += s[l];
    }
  }
  for (; i0 < rows; i0 += L) {
    row_block<T, false>(s, a, lda, xv, keep, i0, rows, k, last);
    const int n = static_cast<int>(std::min<std::int64_t>(L, rows - i0));
    for (int l = 0; l < n; ++l) y[i0 + l] = beta == T(0) ? s[l] : y[i0 + l] + s[l];
  }
}

// load_lanes on halves: the first `count` of the 2N lanes at p into h[0] and h[1], the rest
// zero; in two loads when `whole`, lane by lane otherwise.
template <typename T>
[[gnu::always_inline]] inline void load_halves(typename Halves<T>::V (&h)[2], const T* p, int count,
                                               bool whole, const typename Halves<T>::I (&keep)[2]) {
  using H = typename Halves<T>::V;
  constexpr int N = Halves<T>::kCount;
  h[0] = h[1] = H{};
  if (whole) {
    for (int part = 0; part < 2; ++part) {
      std::memcpy(&h[part], p + part * N, sizeof(H));
      h[part] = reinterpret_cast<H>(reinterpret_cast<typename Halves<T>::I>(h[part]) & keep[part]);
    }
    return;
  }
  for (int l = 0; l < count; ++l) h[l / N][l % N] = p[l];
}

// Row r's L products summed to L/2 lanes (its s above): the row's two halves, each multiplied
// by x's, added. Rows past `rows` are zero.
template <typename T>
[[gnu::always_inline]] inline void half_sums(typename Halves<T>::V& s, const T* row, bool in_matrix,
                                             bool whole, int k,
                                             const typename Halves<T>::V (&xh)[2],
                                             const typename Halves<T>::I (&keep)[2]) {
  using H = typename Halves<T>::V;
  H h[2];
  load_halves<T>(h, row, in_matrix ? k : 0, in_matrix && whole, keep);
  s = h[0] * xh[0] + h[1] * xh[1];
}

// The sums of N rows (lane r: row r) from their half sums hs[r], in the order row_dots_whole
// adds: s_j + s_{j + N/2} and so on down to one lane.
template <typename T>
[[gnu::always_inline]] inline void transpose_sums(
    typename Halves<T>::V& out, const typename Halves<T>::V (&hs)[Halves<T>::kCount]);
template <>
[[gnu::always_inline]] inline void transpose_sums<float>(Halves<float>::V& out,
                                                         const Halves<float>::V (&hs)[8]) {
  using H = Halves<float>::V;
  // Rows r and r + 4 side by side: lanes 0-3 row r's s_j + s_{j+4}, lanes 4-7 row r + 4's.
  H t[4];
  for (int r = 0; r < 4; ++r)
    t[r] = __builtin_shufflevector(hs[r], hs[r + 4], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(hs[r], hs[r + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  // Then + s_{j+2}: lanes (0, 1) row r, (2, 3) row r + 1 in each half.
  H u[2];
  for (int r = 0; r < 2; ++r)
    u[r] = __builtin_shufflevector(t[2 * r], t[2 * r + 1], 0, 1, 8, 9, 4, 5, 12, 13) +
           __builtin_shufflevector(t[2 * r], t[2 * r + 1], 2, 3, 10, 11, 6, 7, 14, 15);
  // Then the last pair: lane r row r.
  out = __builtin_shufflevector(u[0], u[1], 0, 2, 8, 10, 4, 6, 12, 14) +
        __builtin_shufflevector(u[0], u[1], 1, 3, 9, 11, 5, 7, 13, 15);
}
template <>
[[gnu::always_inline]] inline void transpose_sums<double>(Halves<double>::V& out,
                                                          const Halves<double>::V (&hs)[4]) {
  using H = Halves<double>::V;
  // Rows r and r + 2 side by side: lanes 0-1 row r's s_j + s_{j+2}, lanes 2-3 row r + 2's.
  H t[2];
  for (int r = 0; r < 2; ++r)
    t[r] = __builtin_shufflevector(hs[r], hs[r + 2], 0, 1, 4, 5) +
           __builtin_shufflevector(hs[r], hs[r + 2], 2, 3, 6, 7);
  // Then the last pair: lane r row r.
  out = __builtin_shufflevector(t[0], t[1], 0, 4, 2, 6) +
        __builtin_shufflevector(t[0], t[1], 1, 5, 3, 7);
}

// row_dots_whole on halves, N = L/2 rows at a time: the same sums.
template <typename T>
EMBER_CPU_CLONES void row_dots_halves(const T* a, std::int64_t lda, const T* x, std::int64_t incx,
                                      T* y, std::int64_t rows, int k, T beta) {
  using H = typename Halves<T>::V;
  using I = typename Halves<T>::I;
  constexpr int N = Halves<T>::kCount;
  H xh[2] = {H{}, H{}};
  I keep[2];
  for (int l = 0; l < 2 * N; ++l) {
    if (l < k) xh[l / N][l % N] = x[l * incx];
    keep[l / N][l % N] = l < k ? -1 : 0;
  }
  // One past the last element read: rows whose 2N lanes all lie before it load whole.
  const std::int64_t last = (rows - 1) * lda + k;
  H hs[N], s;
  std::int64_t i0 = 0;
  // Blocks of N rows that all load whole, without a check per row.
  for (; i0 + N <= rows && (i0 + N - 1) * lda + 2 * N <= last; i0 += N) {
#pragma GCC unroll 8
    for (int r = 0; r < N; ++r) half_sums<T>(hs[r], a + (i0 + r) * lda, true, true, k, xh, keep);
    transpose_sums<T>(s, hs);
    if (beta == T(0)) {
      std::memcpy(y + i0, &s, sizeof(H));
    } else {
      for (int l = 0; l < N; ++l) y[i0 + l] += s[l];
    }
  }
  for (; i0 < rows; i0 += N) {
    for (int r = 0; r < N; ++r) {
      const std::int64_t row = i0 + r;
      half_sums<T>(hs[r], a + row * lda, row < rows, row * lda + 2 * N <= last, k, xh, keep);
    }
    transpose_sums<T>(s, hs);
    const int n = static_cast<int>(std::min<std::int64_t>(N, rows - i0));
    for (int l = 0; l < n; ++l) y[i0 + l] = beta == T(0) ? s[l] : y[i0 + l] + s[l];
  }
}

template <typename T>
void row_dots(const T* a, std::int64_t lda, const T* x, std::int64_t incx, T* y, std::int64_t rows,
              int k, T beta) {
  if (whole_vectors()) {
    row_dots_whole(a, lda, x, incx, y, rows, k, beta);
  } else {
    row_dots_halves(a, lda, x, incx, y, rows, k, beta);
  }
}

// Column sums accumulate column j of A scaled by x[j] into accumulator j % 4 of these (the
// four added pairwise at the end), so that a product over many columns can run in parts
// that carry them (a compiled step's fused run, Backend::run_fused).
inline constexpr int kColumnAccumulators = 4;
template <typename T>
struct ColumnSumsCarry {
  typename Lanes<T>::V acc[kColumnAccumulators];
};

// Columns [begin, end) of column_sums' product into carry (begin a multiple of
// kColumnAccumulators), x pointing at the vector's element of column `begin`; `last`: one
// past the last element of the whole matrix read, (k - 1) * lda + rows. Parts in order add in
// the order one part over all columns does.
template <typename T>
EMBER_CPU_CLONES void column_sums_part_whole(const T* a, std::int64_t lda, const T* x,
                                             std::int64_t incx, int rows, std::int64_t begin,
                                             std::int64_t end, std::int64_t last,
                                             ColumnSumsCarry<T>* carry) {
  using V = typename Lanes<T>::V;
  constexpr int L = Lanes<T>::kCount;
  constexpr int U = kColumnAccumulators;
  typename Lanes<T>::I keep;
  lane_mask<T>(keep, rows);
  V acc[U];
  for (int u = 0; u < U; ++u) acc[u] = carry->acc[u];
  V col;
  std::int64_t j = begin;
  // Columns whose L lanes all lie before `last`: one load each.
  for (; j + U <= end && (j + U - 1) * lda + L <= last; j += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      load_lanes<T>(col, a + (j + u) * lda, rows, true, keep);
      acc[u] += col * x[(j - begin + u) * incx];
    }
  }
  // The last columns, up to U - 1 and those near the end of the matrix, each into its own
  // accumulator; constant indices keep the accumulators in registers (an index known only at
  // run time would put them in memory, and wide vectors lowered to narrower registers then
  // move through the stack at every column).
  for (; j < end; j += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      if (j + u >= end) break;
      const std::int64_t at = (j + u) * lda;
      load_lanes<T>(col, a + at, rows, at + L <= last, keep);
      acc[u] += col * x[(j - begin + u) * incx];
    }
  }
  for (int u = 0; u < U; ++u) carry->acc[u] = acc[u];
}

// column_sums_part_whole on halves: each accumulator's two halves apart, the same sums.
template <typename T>
EMBER_CPU_CLONES void column_sums_part_halves(const T* a, std::int64_t lda, const T* x,
                                              std::int64_t incx, int rows, std::int64_t begin,
                                              std::int64_t end, std::int64_t last,
                                              ColumnSumsCarry<T>* carry) {
  using H = typename Halves<T>::V;
  using I = typename Halves<T>::I;
  constexpr int N = Halves<T>::kCount;
  constexpr int U = kColumnAccumulators;
  I keep[2];
  for (int l = 0; l < 2 * N; ++l) keep[l / N][l % N] = l < rows ? -1 : 0;
  H acc[U][2];
  for (int u = 0; u < U; ++u) std::memcpy(acc[u], &carry->acc[u], sizeof(acc[u]));
  auto add_column = [&](H(&into)[2], std::int64_t j, bool whole) {
    const T xj = x[(j - begin) * incx];
    H h[2];
    load_halves<T>(h, a + j * lda, rows, whole, keep);
    into[0] += h[0] * xj;
    into[1] += h[1] * xj;
  };
  std::int64_t j = begin;
  for (; j + U <= end && (j + U - 1) * lda + 2 * N <= last; j += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) add_column(acc[u], j + u, true);
  }
  for (; j < end; j += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      if (j + u >= end) break;
      add_column(acc[u], j + u, (j + u) * lda + 2 * N <= last);
    }
  }
  for (int u = 0; u < U; ++u) std::memcpy(&carry->acc[u], acc[u], sizeof(acc[u]));
}

template <typename T>
void column_sums_part(const T* a, std::int64_t lda, const T* x, std::int64_t incx, int rows,
                      std::int64_t begin, std::int64_t end, std::int64_t last,
                      ColumnSumsCarry<T>* carry) {
  if (whole_vectors()) {
    column_sums_part_whole(a, lda, x, incx, rows, begin, end, last, carry);
  } else {
    column_sums_part_halves(a, lda, x, incx, rows, begin, end, last, carry);
  }
}

// A slice's column sums: its four accumulators added pairwise (an out parameter: a vector
// wider than the baseline's registers is not returned by value).
template <typename T>
void column_sums_fold(const ColumnSumsCarry<T>& c, typename Lanes<T>::V& sum) {
  sum = (c.acc[0] + c.acc[1]) + (c.acc[2] + c.acc[3]);
}

// y[l] (+)= the slices' column sums (slice_sum(s, v) sets v to slice s's column_sums_fold)
// added in order, for l < rows (beta 0 or 1).
template <typename T, typename SliceSum>
void column_sums_finish(SliceSum&& slice_sum, int slices, T* y, int rows, T beta) {
  typename Lanes<T>::V s, next;
  slice_sum(0, s);
  for (int k = 1; k < slices; ++k) {
    slice_sum(k, next);
    s = s + next;
  }
  for (int l = 0; l < rows; ++l) y[l] = beta == T(0) ? s[l] : y[l] + s[l];
}

// y[i] (+)= sum_j a[i + j * lda] x[j * incx] for i < rows <= L, j < k (beta 0 or 1): the
// columns in the slices of a reduction over k (reduce_slices), one per thread.
template <typename T>
void column_sums(const T* a, std::int64_t lda, const T* x, std::int64_t incx, T* y, int rows,
                 std::int64_t k, T beta) {
  const ReduceSlices slices = reduce_slices(k);
  const std::int64_t last = (k - 1) * lda + rows;
  typename Lanes<T>::V sums[kMaxReduceSlices];
  parallel_for(slices.count, 0, [&](std::int64_t first, std::int64_t end) {
    for (std::int64_t s = first; s < end; ++s) {
      ColumnSumsCarry<T> carry{};
      column_sums_part(a, lda, x + s * slices.chunk * incx, incx, rows, s * slices.chunk,
                       std::min(k, (s + 1) * slices.chunk), last, &carry);
      column_sums_fold(carry, sums[s]);
    }
  });
  column_sums_finish<T>([&](int s, typename Lanes<T>::V& v) { v = sums[s]; }, slices.count, y, rows,
                        beta);
}

}  // namespace ember::kernels::cpu
