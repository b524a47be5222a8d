// The numeric rules both launchers follow (docs/gpu.md, "Numerics and determinism"). They
// live in the per-element bodies the two launchers share, so checking them on the CPU checks
// the code the GPU runs: integer division by zero and INT64_MIN / -1, saturating float to
// int64 conversion with NaN to 0, bool conversion, arange without a fused multiply-add, and
// scans and reductions that repeat bit for bit, and the index division by multiplication
// that im2col's bodies use.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "engine/internal.hpp"
#include "kernels/common/geometry.hpp"
#include "kernels/math/special.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

Tensor int64s(const std::vector<std::int64_t>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, TensorOptions{}.with_dtype(kInt64));
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
  EXPECT_EQ(f.to(kInt64).to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, kMax, kMin, 5}));
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

// The exponents -2 to 3 are products and quotients, rounded as written, rather than the math
// library's pow, which differs between the CPU and the GPU by an ulp or two (CUDA's
// pow(-3.0, 1.0) is -2.9999999999999996): integer powers of integers stay exact.
// v^b for b in -2..3 as the products and quotients the rule names, in v's own type.
template <typename T>
T small_power(T v, double b) {
  const T sq = v * v;
  if (b == -2) return T(1) / sq;
  if (b == -1) return T(1) / v;
  if (b == 0) return T(1);
  if (b == 1) return v;
  return b == 2 ? sq : sq * v;
}

TEST(NumericRules, SmallIntegerPowersAreProductsAndQuotients) {
  for (const DType dtype : {kFloat64, kFloat32}) {
    const Tensor a = uniform({257}, -3.0, 3.0, false, dtype);
    const std::vector<double> x = a.to(kFloat64).to_vector<double>();
    for (const double b : {-2.0, -1.0, 0.0, 1.0, 2.0, 3.0}) {
      const std::vector<double> got = pow(a, full({257}, b, TensorOptions{}.with_dtype(dtype)))
                                          .to(kFloat64)
                                          .to_vector<double>();
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double want = dtype == kFloat32 ? double{small_power(static_cast<float>(x[i]), b)}
                                              : small_power(x[i], b);
        ASSERT_EQ(got[i], want) << dtype_name(dtype) << " pow(" << x[i] << ", " << b << ")";
      }
    }
  }
  const Tensor base = from_vector(std::vector<double>{-3, -2, 5, 0.5}, {4}, f64());
  EXPECT_EQ(pow(base, full({4}, 3.0, f64())).to_vector<double>(),
            (std::vector<double>{-27, -8, 125, 0.125}));
  EXPECT_EQ(pow(base, full({4}, -1.0, f64())).to_vector<double>(),
            (std::vector<double>{-1.0 / 3.0, -0.5, 0.2, 2}));
  EXPECT_EQ(pow(full({1}, NAN, f64()), full({1}, 0.0, f64())).item(), 1.0);
  EXPECT_EQ(pow(full({1}, -0.0, f64()), full({1}, -1.0, f64())).item(), -INFINITY);
}

// cos(2 pi u), the Box-Muller angle, next to its zeros at u = 1/4 and 3/4: accurate relative
// to its size in both dtypes (the float polynomial of the CPU, and sin or cos of the reduced
// angle that the GPU and double draws take). cos of the rounded product 2 pi u would be off
// by 1e-16 / |cos| relative there (2e-5 at u = 1/4 + 2^-40), and a Cauchy draw, a ratio of
// normals, would differ between the CPU and the GPU by as much.
TEST(NumericRules, CosTwoPiIsAccurateRelativeToItsSizeNextToItsZeros) {
  constexpr long double kTwoPiL = 6.283185307179586476925286766559005768L;
  double worst_double = 0, worst_float = 0;
  for (const double zero : {0.25, 0.75}) {
    for (int k = 3; k <= 60; ++k) {  // |d| <= 1/8: u stays in [1/8, 7/8]
      for (const double side : {-1.0, 1.0}) {
        const double d = side * std::ldexp(1.0, -k);
        const double u = zero + d;  // exact for k <= 52; rounded beyond, then d is u - zero
        const long double du = static_cast<long double>(u) - zero;
        const long double ref = (zero == 0.25 ? -1 : 1) * std::sin(kTwoPiL * du);
        if (ref == 0) continue;
        const double got = kernels::cos_two_pi_fast(u);
        worst_double = std::max(worst_double, static_cast<double>(std::abs((got - ref) / ref)));
        const float uf = static_cast<float>(u);
        const long double duf = static_cast<long double>(uf) - zero;
        const long double reff = (zero == 0.25 ? -1 : 1) * std::sin(kTwoPiL * duf);
        if (reff == 0) continue;
        const float gotf = kernels::cos_two_pi_fast(uf);
        worst_float = std::max(worst_float, static_cast<double>(std::abs((gotf - reff) / reff)));
      }
    }
  }
  EXPECT_LE(worst_double, 4 * std::numeric_limits<double>::epsilon());
  EXPECT_LE(worst_float, 4 * std::numeric_limits<float>::epsilon());
  EXPECT_EQ(kernels::cos_two_pi_fast(0.5), -1.0);
  EXPECT_EQ(kernels::cos_two_pi_fast(1.0), 1.0);
  EXPECT_EQ(kernels::cos_two_pi_fast(0.0), 1.0);
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

// softplus, log sigmoid and the Bernoulli logits log-pmf take log1p on [0, 1]
// (kernels::log1p_unit); in float they stay within a few ulps of the double result over
// the whole range, including arguments where 1 + y rounds to 1.
TEST(NumericRules, SoftplusAndLogSigmoidKeepLog1pAccuracyInFloat) {
  double worst_softplus = 0, worst_log_sigmoid = 0, worst_log1p = 0;
  for (double x = -60; x <= 60; x += 0.0137) {
    const auto xf = static_cast<float>(x);
    const double xd = xf;
    const double sp = std::max(xd, 0.0) + std::log1p(std::exp(-std::abs(xd)));
    const double ls = std::min(xd, 0.0) - std::log1p(std::exp(-std::abs(xd)));
    worst_softplus = std::max(worst_softplus, std::abs(kernels::softplus(xf) - sp) / std::abs(sp));
    worst_log_sigmoid =
        std::max(worst_log_sigmoid, std::abs(kernels::log_sigmoid(xf) - ls) / std::abs(ls));
    const float y = std::exp(static_cast<float>(-std::abs(x)));
    worst_log1p = std::max(worst_log1p, std::abs(kernels::log1p_unit(y) - std::log1p(double{y})) /
                                            std::log1p(double{y}));
  }
  constexpr double kUlp = std::numeric_limits<float>::epsilon();
  EXPECT_LT(worst_log1p, 2 * kUlp);
  EXPECT_LT(worst_softplus, 4 * kUlp);
  EXPECT_LT(worst_log_sigmoid, 4 * kUlp);
  EXPECT_EQ(kernels::log1p_unit(1e-30f), 1e-30f);  // 1 + y rounds to 1: y itself
  EXPECT_EQ(kernels::log1p_unit(0.0), 0.0);
}

// The gradients' finite check tests the exponent bits block by block: an inf or a NaN is
// found wherever it lies (first, last, inside or at the end of a block), in both dtypes,
// and the largest finite numbers pass.
TEST(NumericRules, TheFiniteCheckFindsEveryNonFiniteWherever) {
  for (DType dtype : {kFloat32, kFloat64}) {
    const std::int64_t n = 3 * 4096 + 17;
    for (std::int64_t at : std::vector<std::int64_t>{0, 1, 4095, 4096, 8191, n - 1}) {
      for (double bad : {double{INFINITY}, double{-INFINITY}, double{NAN}}) {
        std::vector<double> v(n, 1.5);
        v[at] = bad;
        const Tensor t = from_vector(v, {n}, TensorOptions{}.with_dtype(dtype));
        EXPECT_FALSE(detail::all_finite(std::span<const Tensor>(&t, 1)))
            << dtype << " " << bad << " at " << at;
      }
    }
    const double big =
        dtype == kFloat32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
    const Tensor ok =
        from_vector(std::vector<double>(n, -big), {n}, TensorOptions{}.with_dtype(dtype));
    EXPECT_TRUE(detail::all_finite(std::span<const Tensor>(&ok, 1))) << dtype;
  }
}

// The host's float exp, log and log1p (straight-line polynomials that vectorize) stay within 2
// ulps of the double result over the whole range they serve: exp over every argument whose
// result is a normal float (and clamped beyond), log over every positive float, subnormals
// included, with zero, negatives, inf and NaN as the C library has them; log1p over [0, 1].
// cos(2 pi u) over [0, 1] stays within 2e-7 of it.
TEST(NumericRules, FloatExpLogLog1pAndCosPolynomialsAreAccurate) {
  auto ulps = [](float got, double want) {
    const double ulp =
        std::nextafter(static_cast<float>(want), INFINITY) - static_cast<float>(want);
    return std::abs(static_cast<double>(got) - want) / ulp;
  };
  double worst_exp = 0, worst_log = 0, worst_log1p = 0;
  for (float x = -87.0f; x < 88.5f; x += 0.000731f)
    worst_exp = std::max(worst_exp, ulps(kernels::exp_float_poly(x), std::exp(double{x})));
  // Every float from 2^-20 to 1 in steps of 97 ulps: both branches and the seam at sqrt(2) - 1.
  for (float y = 0x1p-20f; y <= 1.0f; y = std::bit_cast<float>(std::bit_cast<std::int32_t>(y) + 97))
    worst_log1p = std::max(worst_log1p, ulps(kernels::log1p_float_poly(y), std::log1p(double{y})));
  // Every float from the smallest subnormal up in steps of 9973 ulps (about 430,000 of them).
  for (float x = std::numeric_limits<float>::denorm_min(); x < INFINITY;
       x = std::bit_cast<float>(std::bit_cast<std::int32_t>(x) + 9973)) {
    worst_log = std::max(worst_log, ulps(kernels::log_float_poly(x), std::log(double{x})));
  }
  EXPECT_LE(worst_exp, 2.0);
  EXPECT_LE(worst_log, 2.0);
  EXPECT_LE(worst_log1p, 2.0);
  EXPECT_EQ(kernels::log_float_poly(1.0f), 0.0f);
  EXPECT_EQ(kernels::log_float_poly(0.0f), -INFINITY);
  EXPECT_EQ(kernels::log_float_poly(INFINITY), INFINITY);
  EXPECT_TRUE(std::isnan(kernels::log_float_poly(-1.0f)));
  EXPECT_TRUE(std::isnan(kernels::log_float_poly(-INFINITY)));
  EXPECT_TRUE(std::isnan(kernels::log_float_poly(NAN)));
  EXPECT_EQ(kernels::log1p_float_poly(0.0f), 0.0f);
  EXPECT_EQ(kernels::log1p_float_poly(1e-30f), 1e-30f);
  EXPECT_EQ(kernels::log1p_float_poly(1.0f), static_cast<float>(std::log(2.0)));
  // cos(2 pi u), the Box-Muller angle, over every float u in [0, 1] in steps of 101 ulps
  // and the points where its reduction switches branches.
  double worst_cos = 0;
  auto cos_error = [](float u) {
    return std::abs(kernels::cos_two_pi_float_poly(u) - std::cos(6.283185307179586 * u));
  };
  for (float u = 0x1p-30f; u <= 1.0f;
       u = std::bit_cast<float>(std::bit_cast<std::int32_t>(u) + 101))
    worst_cos = std::max(worst_cos, cos_error(u));
  for (float u : {0.0f, 0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f, 0.875f, 1.0f})
    worst_cos = std::max(worst_cos, cos_error(u));
  EXPECT_LE(worst_cos, 2e-7);
  EXPECT_EQ(kernels::cos_two_pi_float_poly(0.0f), 1.0f);
  EXPECT_EQ(kernels::cos_two_pi_float_poly(0.5f), -1.0f);
  EXPECT_EQ(kernels::cos_two_pi_float_poly(1.0f), 1.0f);
  EXPECT_GT(kernels::exp_float_poly(-1000.0f), 0.0f);  // clamped, never 0 or a NaN
  EXPECT_TRUE(std::isfinite(kernels::exp_float_poly(1000.0f)));
}

// IndexDivider gives n / d and n % d for every divisor and dividend it takes by multiply:
// divisors 1 to 300, powers of two and their neighbours up to 2^31 - 1, random ones; the
// dividends 0, around each multiple's edges, and up to 2^31 - 1. Past 2^31 (the limit or the
// divisor) it divides, with the same results.
TEST(NumericRules, IndexDividerMatchesIntegerDivision) {
  constexpr std::int64_t k31 = std::int64_t{1} << 31;
  std::vector<std::int64_t> divisors;
  for (std::int64_t d = 1; d <= 300; ++d) divisors.push_back(d);
  for (int b = 1; b <= 31; ++b) {
    const std::int64_t p = std::int64_t{1} << b;
    for (std::int64_t d : {p - 1, p, p + 1})
      if (d < k31) divisors.push_back(d);
  }
  std::mt19937_64 gen(7);
  std::uniform_int_distribution<std::int64_t> any(1, k31 - 1), index(0, k31 - 1);
  for (int k = 0; k < 200; ++k) divisors.push_back(any(gen));
  for (const std::int64_t d : divisors) {
    const kernels::IndexDivider by(d, k31);
    std::vector<std::int64_t> ns = {0, 1, d - 1, d, d + 1, k31 - 1, k31 - 2, k31 - 1 - d};
    for (std::int64_t m : {std::int64_t{2}, std::int64_t{7}, k31 / d, (k31 - 1) / d}) {
      if (m * d - 1 < k31) ns.push_back(m * d - 1);
      if (m * d < k31) ns.push_back(m * d);
    }
    for (int k = 0; k < 200; ++k) ns.push_back(index(gen));
    for (const std::int64_t n : ns) {
      if (n < 0 || n >= k31) continue;
      std::int64_t rem = -1;
      ASSERT_EQ(by.div_rem(n, rem), n / d) << n << " / " << d;
      ASSERT_EQ(rem, n % d) << n << " % " << d;
    }
  }
  // Beyond 2^31: the plain division.
  const std::int64_t big = std::int64_t{1} << 40;
  for (const std::int64_t d : {std::int64_t{3}, k31 + 5, big}) {
    const kernels::IndexDivider by(d, big * 4);
    for (const std::int64_t n : {std::int64_t{0}, k31, big + 17, big * 3 + 1}) {
      std::int64_t rem = -1;
      ASSERT_EQ(by.div_rem(n, rem), n / d) << n << " / " << d;
      ASSERT_EQ(rem, n % d);
    }
  }
}

// Im2colSource, element by element (the GPU's walk) and row by row (the CPU's), against the
// definition: column element i = (((((c KH + kh) KW + kw) N + n) OH + oh) OW + ow) reads input
// (n, c, oh sh - ph + kh dh, ow sw - pw + kw dw), or the padding.
TEST(NumericRules, Im2colSourceMatchesTheDefinition) {
  kernels::Im2colGeometry g{};
  g.batch = 2, g.channels = 3, g.height = 5, g.width = 7;
  g.kernel_h = 2, g.kernel_w = 3, g.stride_h = 2, g.stride_w = 1;
  g.pad_h = 1, g.pad_w = 2, g.dilation_h = 2, g.dilation_w = 3;
  g.out_h = (g.height + 2 * g.pad_h - g.dilation_h * (g.kernel_h - 1) - 1) / g.stride_h + 1;
  g.out_w = (g.width + 2 * g.pad_w - g.dilation_w * (g.kernel_w - 1) - 1) / g.stride_w + 1;
  // A channels-last input: strides of (N, C, H, W) laid out (N, H, W, C).
  g.in_strides[0] = g.height * g.width * g.channels, g.in_strides[1] = 1;
  g.in_strides[2] = g.width * g.channels, g.in_strides[3] = g.channels;
  const kernels::Im2colSource source(g);
  ASSERT_EQ(source.rows() * g.out_w, g.numel());
  std::int64_t i = 0, padding = 0;
  for (std::int64_t c = 0; c < g.channels; ++c)
    for (std::int64_t kh = 0; kh < g.kernel_h; ++kh)
      for (std::int64_t kw = 0; kw < g.kernel_w; ++kw)
        for (std::int64_t n = 0; n < g.batch; ++n)
          for (std::int64_t oh = 0; oh < g.out_h; ++oh)
            for (std::int64_t ow = 0; ow < g.out_w; ++ow, ++i) {
              const std::int64_t h = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
              const std::int64_t w = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
              const bool inside = h >= 0 && h < g.height && w >= 0 && w < g.width;
              const std::int64_t want = inside ? n * g.in_strides[0] + c * g.in_strides[1] +
                                                     h * g.in_strides[2] + w * g.in_strides[3]
                                               : -1;
              padding += inside ? 0 : 1;
              ASSERT_EQ(source(i), want) << "element " << i;
              ASSERT_EQ(source.at(source.row(i / g.out_w), ow), want) << "element " << i;
            }
  EXPECT_GT(padding, 0);
  EXPECT_LT(padding, g.numel());
}

}  // namespace
}  // namespace ember::test
