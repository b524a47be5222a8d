// The numeric rules both launchers follow (docs/gpu.md, "Numerics and determinism"). They
// live in the per-element bodies the two launchers share, so checking them on the CPU checks
// the code the GPU runs: integer division by zero and INT64_MIN / -1, saturating float to
// int64 conversion with NaN to 0, bool conversion, arange without a fused multiply-add, and
// scans and reductions that repeat bit for bit.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/internal.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

Tensor int64s(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())},
                     TensorOptions{}.with_dtype(kInt64));
}

// The launcher's binary op on int64 operands (the public div is true division, in float).
std::vector<std::int64_t> int_binary(kernels::BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = detail::make_tensor(a.shape(), kInt64, a.device());
  detail::backend(a).binary(op, detail::arg(out), detail::arg(a), detail::arg(b));
  return out.to_vector<std::int64_t>();
}

TEST(NumericRules, IntegerDivisionByZeroIsZeroAndTheOverflowingQuotientWraps) {
  const Tensor a = int64s({7, -7, 0, kMin, kMin, 9, -9});
  const Tensor b = int64s({0, 0, 0, -1, 1, -2, 2});
  EXPECT_EQ(int_binary(kernels::BinaryOp::Div, a, b),
            (std::vector<std::int64_t>{0, 0, 0, kMin, kMin, -4, -4}));
}

TEST(NumericRules, FloatToInt64SaturatesAndNanIsZero) {
  const Tensor x = tensor({NAN, INFINITY, -INFINITY, 1e30, -1e30, 2.7, -2.7, 9.2e18}, f64());
  EXPECT_EQ(x.to(kInt64).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{0, kMax, kMin, kMax, kMin, 2, -2,
                                       static_cast<std::int64_t>(9.2e18)}));
  const Tensor f = tensor({NAN, 3e38f, -3e38f, 5.5f}, TensorOptions{}.with_dtype(kFloat32));
  EXPECT_EQ(f.to(kInt64).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{0, kMax, kMin, 5}));
}

TEST(NumericRules, BoolIsNonZero) {
  const Tensor x = tensor({0.0, 0.5, -0.1, NAN, -0.0}, f64());
  EXPECT_EQ(x.to(kBool).to(kInt64).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{0, 1, 1, 1, 0}));
  EXPECT_EQ(full({3}, 0.25, TensorOptions{}.with_dtype(kBool)).to(kInt64).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{1, 1, 1}));
  EXPECT_EQ(full({2}, 0.0, TensorOptions{}.with_dtype(kBool)).to(kInt64).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{0, 0}));
}

// start + step * i, rounded twice: a fused multiply-add would round once and give 1.0 at
// i = 3 (nvcc contracts by default; Ember turns that off on both sides).
TEST(NumericRules, ArangeRoundsTheProductAndTheSumSeparately) {
  const std::vector<double> values = arange(0.1, 2.0, 0.3, f64()).to_vector<double>();
  ASSERT_EQ(values.size(), 7u);
  volatile double step = 0.3, start = 0.1;
  for (int i = 0; i < 7; ++i) {
    volatile double product = step * i;
    EXPECT_EQ(values[i], start + product) << "i = " << i;
  }
  EXPECT_LT(values[3], 1.0);
  EXPECT_EQ(arange(0.1, 2.0, 0.3, f64()).to(kInt64).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1}));
}

// The CPU splits long work between threads; how it splits and combines depends on the shape
// alone, never on how many threads are free.
TEST(NumericRules, LongScansAndSumsRepeatBitForBitWhateverTheThreads) {
  set_rng_seed(3);
  const Tensor x = randn({1 << 20}, TensorOptions{}.with_dtype(kFloat32));
  const std::vector<float> scan = cumsum(x, 0).to_vector<float>();
  const double total = sum(x).item();
  for (int threads : {1, 2, 3}) {
    const NumThreadsScope scope(threads);
    EXPECT_EQ(cumsum(x, 0).to_vector<float>(), scan) << threads << " threads";
    EXPECT_EQ(sum(x).item(), total) << threads << " threads";
  }
}

}  // namespace
}  // namespace ember::test
