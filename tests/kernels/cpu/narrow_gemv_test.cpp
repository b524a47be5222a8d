// The narrow matrix-vector products (kernels/cpu/narrow_gemv.hpp) run on whole 64-byte vectors
// where the CPU holds them in one register (AVX-512) and on 32-byte halves elsewhere. Each
// output must come out with the same bits either way, and on every instruction set: the
// order of the sums is the products', not the machine's. Both forms run here, on whatever
// this CPU is (a form the CPU holds badly is slower, never different), over row counts around
// the blocks, every width up to a whole vector, padded and strided operands, and beta 0 and 1.
#include "kernels/cpu/narrow_gemv.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace ember::test {
namespace {

using kernels::cpu::ColumnSumsCarry;
using kernels::cpu::Lanes;

template <typename T>
std::vector<T> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> v(n);
  for (T& e : v) e = static_cast<T>(normal(rng));
  return v;
}

template <typename T>
void expect_bits(const std::vector<T>& got, const std::vector<T>& want) {
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(T)), 0);
}

// y = A x + beta y over rows of k <= L features (lda >= k: padded rows), x read every incx.
template <typename T>
void check_row_dots() {
  constexpr int L = Lanes<T>::kCount;
  for (const std::int64_t rows : {1, 3, 7, 8, 9, 15, 16, 17, 33, 1000}) {
    for (int k = 1; k <= L; ++k) {
      for (const std::int64_t lda : {std::int64_t{k}, std::int64_t{k} + 3}) {
        for (const std::int64_t incx : {1, 2}) {
          SCOPED_TRACE(::testing::Message()
                       << rows << " rows, k " << k << ", lda " << lda << ", incx " << incx);
          const auto a = random_values<T>(static_cast<std::size_t>(rows * lda), 1);
          const auto x = random_values<T>(static_cast<std::size_t>(k * incx), 2);
          for (const T beta : {T(0), T(1)}) {
            std::vector<T> whole = random_values<T>(static_cast<std::size_t>(rows), 3);
            std::vector<T> halves = whole;
            kernels::cpu::row_dots_whole(a.data(), lda, x.data(), incx, whole.data(), rows, k,
                                         beta);
            kernels::cpu::row_dots_halves(a.data(), lda, x.data(), incx, halves.data(), rows, k,
                                          beta);
            expect_bits(halves, whole);
          }
          // And the sums are what they claim to be (in float64, to the type's rounding).
          std::vector<T> y(static_cast<std::size_t>(rows));
          kernels::cpu::row_dots(a.data(), lda, x.data(), incx, y.data(), rows, k, T(0));
          for (std::int64_t i = 0; i < rows; ++i) {
            double want = 0;
            for (int j = 0; j < k; ++j)
              want += static_cast<double>(a[i * lda + j]) * static_cast<double>(x[j * incx]);
            EXPECT_NEAR(y[i], want, 1e-5 * (1 + std::abs(want)));
          }
        }
      }
    }
  }
}

TEST(NarrowGemv, HalvesGiveTheBitsOfWholeVectorsForRowDots) {
  check_row_dots<float>();
  check_row_dots<double>();
}

// Columns [begin, end) of a (k, lda) column-major A with `rows` <= L kept, in parts that carry
// their accumulators: every split gives the whole vectors' bits.
template <typename T>
void check_column_sums() {
  constexpr int L = Lanes<T>::kCount;
  for (const std::int64_t k : {1, 3, 4, 5, 17, 64, 1001}) {
    for (int rows = 1; rows <= L; ++rows) {
      for (const std::int64_t lda : {std::int64_t{rows}, std::int64_t{rows} + 5}) {
        SCOPED_TRACE(::testing::Message() << k << " columns, rows " << rows << ", lda " << lda);
        const auto a = random_values<T>(static_cast<std::size_t>(k * lda), 4);
        const auto x = random_values<T>(static_cast<std::size_t>(k), 5);
        const std::int64_t last = (k - 1) * lda + rows;
        for (const std::int64_t split : {k, std::int64_t{4} * ((k + 7) / 8)}) {
          ColumnSumsCarry<T> whole{}, halves{};
          for (std::int64_t begin = 0; begin < k; begin += split) {
            const std::int64_t end = std::min(k, begin + split);
            kernels::cpu::column_sums_part_whole(a.data(), lda, x.data(), 1, rows, begin, end, last,
                                                 &whole);
            kernels::cpu::column_sums_part_halves(a.data(), lda, x.data(), 1, rows, begin, end,
                                                  last, &halves);
          }
          EXPECT_EQ(std::memcmp(&whole, &halves, sizeof(whole)), 0);
        }
      }
    }
  }
}

TEST(NarrowGemv, HalvesGiveTheBitsOfWholeVectorsForColumnSums) {
  check_column_sums<float>();
  check_column_sums<double>();
}

}  // namespace
}  // namespace ember::test
