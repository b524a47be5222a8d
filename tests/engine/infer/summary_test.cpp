// Posterior summaries (ember/summary.hpp) against NumPy and NumPyro: the reference numbers and
// tables below were computed with numpyro 0.22.0 and numpy 2.4 (numpyro.diagnostics.summary,
// print_summary, hpdi, effective_sample_size, split_gelman_rubin; np.quantile) on the data
// sets pasted here; the others are closed-form cases.
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember {
namespace {

using test::expect_values;
using test::f64;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor column(const std::vector<double>& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, f64());
}

// 21 draws (an odd count) of an autocorrelated chain, x_i = 0.6 x_{i-1} + e_i, rounded.
const std::vector<double> kX = {0.0,   0.3,   -0.09, -0.94, -1.01, -1.6,  -0.9,
                                0.8,   -0.01, -0.63, 0.11,  0.43,  0.37,  -0.71,
                                -0.46, 0.42,  -1.09, -1.11, -2.57, -2.83, -3.54};

// 12 draws of a 2 x 2 site, row-major.
const std::vector<double> kM = {-0.24, -1.53, -0.19, 5.08, -0.19, -4.03, -2.62, 4.98,  0.11,  -2.06,
                                -2.43, 4.51,  -0.81, 3.12, -3.42, 4.98,  0.88,  -0.17, -1.34, 5.06,
                                0.06,  -1.45, -0.77, 5.68, -1.55, 2.72,  -0.64, 4.68,  2.0,   2.52,
                                -4.6,  5.04,  0.58,  0.62, 1.05,  4.97,  0.67,  3.88,  -3.03, 5.1,
                                -0.46, 1.25,  -4.56, 4.71, -0.2,  2.8,   2.44,  4.34};

// 3 chains of 10 draws, one chain after another.
const std::vector<double> kY = {-0.79, 0.65,  -1.99, -0.46, -0.1, 1.26,  0.69, -0.33,
                                -0.37, -0.25, 1.82,  -0.13, -0.0, 0.65,  0.18, 0.1,
                                -0.81, 0.29,  -0.14, 1.47,  0.45, -0.22, 0.47, -0.54,
                                0.85,  -0.21, 0.38,  -1.49, 0.15, -1.89};

Tensor m_samples() { return from_vector(kM, {12, 2, 2}, f64()); }

TEST(SummaryTest, OneChainMatchesNumPyro) {
  const auto s = infer::summary({{"x", column(kX)}});
  ASSERT_EQ(s.size(), 1u);
  const infer::SiteSummary& x = s.at("x");
  EXPECT_EQ(x.mean.shape(), Shape{});
  EXPECT_EQ(x.mean.dtype(), kFloat64);
  expect_values(x.mean, {-0.7171428571428573}, 1e-12);
  expect_values(x.sd, {1.1489175029441534}, 1e-12);  // ddof 1, as NumPyro's summary
  expect_values(x.median, {-0.63}, 1e-12);
  expect_values(x.hpdi_low, {-2.83}, 1e-12);
  expect_values(x.hpdi_high, {0.43}, 1e-12);
  expect_values(x.n_eff, {7.4838182591948}, 1e-10);
  expect_values(x.r_hat, {1.0442345183613335}, 1e-12);
}

TEST(SummaryTest, MatrixSiteMatchesNumPyro) {
  const auto s = infer::summary({{"m", m_samples()}}, 0.8);
  const infer::SiteSummary& m = s.at("m");
  EXPECT_EQ(m.mean.shape(), (Shape{2, 2}));
  expect_values(m.mean,
                {0.07083333333333332, 0.6391666666666665, -1.675833333333333, 4.927499999999999},
                1e-12);
  expect_values(m.sd,
                {0.9004590580095884, 2.493243445551974, 2.1698238652159314, 0.34176347482911734},
                1e-12);
  expect_values(m.median, {-0.065, 0.935, -1.885, 4.98}, 1e-12);
  expect_values(m.hpdi_low, {-0.81, -2.06, -4.6, 4.51}, 1e-12);
  expect_values(m.hpdi_high, {0.88, 3.12, -0.19, 5.1}, 1e-12);
  expect_values(m.n_eff,
                {30.09557433370526, 6.128160512570358, 36.136580496668756, 12.815543664605965},
                1e-10);
  expect_values(m.r_hat,
                {0.9258672355176328, 1.546296246660776, 0.9158796010448992, 1.0471388600470026},
                1e-12);
}

TEST(SummaryTest, ChainsMatchNumPyro) {
  const auto s = infer::summary({{"y", column(kY)}}, {.prob = 0.9, .num_chains = 3});
  const infer::SiteSummary& y = s.at("y");
  // mean, sd, median and HPDI pool the chains; n_eff and R-hat combine them.
  expect_values(y.mean, {-0.01033333333333335}, 1e-12);
  expect_values(y.sd, {0.8670420716568421}, 1e-12);
  expect_values(y.median, {-0.05}, 1e-12);
  expect_values(y.hpdi_low, {-1.99}, 1e-12);
  expect_values(y.hpdi_high, {1.26}, 1e-12);
  expect_values(y.n_eff, {40.23259558056013}, 1e-10);
  expect_values(y.r_hat, {1.0475709782099345}, 1e-12);
  expect_values(infer::effective_sample_size(column(kY), 3), {40.23259558056013}, 1e-10);
  expect_values(infer::split_gelman_rubin(column(kY), 3), {1.0475709782099345}, 1e-12);
}

TEST(SummaryTest, ShortChainsMatchNumPyro) {
  // Chains of 3, 4 and 5 draws: one pair, two pairs with the last draw of an odd count left
  // out. (Three draws give NumPyro's estimator a negative value; it is reproduced as is.)
  const auto head = [](std::int64_t n) { return column({kX.begin(), kX.begin() + n}); };
  expect_values(infer::effective_sample_size(head(3)), {-11.169642857142852}, 1e-10);
  expect_values(infer::effective_sample_size(head(4)), {3.485525758373236}, 1e-10);
  expect_values(infer::effective_sample_size(head(5)), {2.6245943596822854}, 1e-10);
  expect_values(infer::split_gelman_rubin(head(4)), {1.260378453542366}, 1e-12);
  expect_values(infer::split_gelman_rubin(head(5)), {5.212754884692161}, 1e-12);
  // Two chains: x[0:10] and x[11:21].
  std::vector<double> two(kX.begin(), kX.begin() + 10);
  two.insert(two.end(), kX.begin() + 11, kX.end());
  expect_values(infer::effective_sample_size(column(two), 2), {7.5760639093176065}, 1e-10);
  expect_values(infer::split_gelman_rubin(column(two), 2), {1.5170302570423435}, 1e-12);
  // Fewer than 4 draws a chain: R-hat is not defined, and summary shows NaN.
  expect_values(infer::summary({{"x", head(3)}}).at("x").r_hat, {kNaN});
}

TEST(SummaryTest, QuantilesInterpolateLinearly) {
  // The quantiles of 0, 1, ..., 100 are 100 q.
  const Tensor r = arange(0.0, 101.0, 1.0, f64());
  const Tensor q = infer::quantiles(r, {0.0, 0.25, 0.5, 0.9, 0.333, 1.0});
  EXPECT_EQ(q.shape(), Shape{6});
  expect_values(q, {0.0, 25.0, 50.0, 90.0, 33.3, 100.0}, 1e-12);
  // np.quantile(x, [0, 0.1, 0.25, 0.5, 0.77, 1]).
  expect_values(infer::quantiles(column(kX), {0.0, 0.1, 0.25, 0.5, 0.77, 1.0}),
                {-3.54, -2.57, -1.09, -0.63, 0.18600000000000005, 0.8}, 1e-12);
  // Per element of a matrix site: shape (qs, 2, 2).
  const Tensor qm = infer::quantiles(m_samples(), {0.5, 0.0});
  EXPECT_EQ(qm.shape(), (Shape{2, 2, 2}));
  expect_values(qm, {-0.065, 0.935, -1.885, 4.98, -1.55, -4.03, -4.6, 4.34}, 1e-12);
  // Between two draws the value is their interpolation: 0.3 of the way from 10 to 20.
  expect_values(infer::quantiles(column({20.0, 10.0}), {0.3}), {13.0}, 1e-12);
}

TEST(SummaryTest, HpdiIsTheNarrowestInterval) {
  // With prob 0.5 of 10 draws, k = 5: the widths x[i + 5] - x[i] are 14, 5, 5, 5, 87; the
  // first narrowest starts at 10.
  const Tensor draws = column({15.0, 100.0, 0.0, 12.0, 17.0, 10.0, 14.0, 11.0, 16.0, 13.0});
  const Tensor h = infer::hpdi(draws, 0.5);
  EXPECT_EQ(h.shape(), Shape{2});
  expect_values(h, {10.0, 15.0});
  // numpyro.diagnostics.hpdi(x, 0.5).
  expect_values(infer::hpdi(column(kX), 0.5), {-1.11, 0.0}, 1e-12);
  // Per element: shape (2, ...), the lower bounds first.
  expect_values(infer::hpdi(m_samples(), 0.8), {-0.81, -2.06, -4.6, 4.51, 0.88, 3.12, -0.19, 5.1},
                1e-12);
}

TEST(SummaryTest, EffectiveSampleSizeOfIidAndAutoregressiveDraws) {
  std::mt19937 gen(12345);
  std::normal_distribution<double> normal(0.0, 1.0);
  const std::int64_t n = 20000;
  std::vector<double> iid(n), ar(n);
  const double rho = 0.8;
  for (std::int64_t i = 0; i < n; ++i) {
    iid[i] = normal(gen);
    ar[i] = (i > 0 ? rho * ar[i - 1] : 0.0) + normal(gen);
  }
  // Independent draws: about S.
  EXPECT_NEAR(infer::effective_sample_size(column(iid)).item(), static_cast<double>(n), 0.1 * n);
  // AR(1): the integrated autocorrelation time is (1 + rho) / (1 - rho).
  const double expected = static_cast<double>(n) * (1.0 - rho) / (1.0 + rho);
  EXPECT_NEAR(infer::effective_sample_size(column(ar)).item(), expected, 0.15 * expected);
}

TEST(SummaryTest, RHatSeparatesChainsThatDisagree) {
  std::mt19937 gen(777);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> same(4000), apart(4000);
  for (std::size_t i = 0; i < same.size(); ++i) {
    const double z = normal(gen);
    same[i] = z;
    apart[i] = z + (i < 2000 ? 0.0 : 3.0);  // two chains of 2000, the second shifted by 3
  }
  EXPECT_NEAR(infer::split_gelman_rubin(column(same), 2).item(), 1.0, 0.01);
  EXPECT_GT(infer::split_gelman_rubin(column(apart), 2).item(), 1.5);
}

TEST(SummaryTest, ConstantDraws) {
  // As NumPyro: no spread, so the effective sample size and R-hat are 0 / 0.
  const auto s = infer::summary({{"c", full({8}, 2.5, f64())}});
  const infer::SiteSummary& c = s.at("c");
  expect_values(c.mean, {2.5});
  expect_values(c.sd, {0.0});
  expect_values(c.hpdi_low, {2.5});
  expect_values(c.hpdi_high, {2.5});
  expect_values(c.n_eff, {kNaN});
  expect_values(c.r_hat, {kNaN});
}

TEST(SummaryTest, AnyDtypeAndLayout) {
  // Integers and booleans are summarized as float64.
  const Tensor ints = arange(0.0, 101.0, 1.0, TensorOptions{}.with_dtype(kInt64));
  const auto s = infer::summary({{"k", ints}});
  expect_values(s.at("k").mean, {50.0});
  expect_values(s.at("k").median, {50.0});
  EXPECT_EQ(s.at("k").mean.dtype(), kFloat64);
  const Tensor flags =
      from_vector(std::vector<std::uint8_t>{1, 0, 1, 1}, {4}, TensorOptions{}.with_dtype(kBool));
  expect_values(infer::summary({{"b", flags}}).at("b").mean, {0.75});
  // A float32 tensor and a strided view give the float64 contiguous answer.
  const auto from_f32 = infer::summary({{"m", m_samples().to(kFloat32)}}, 0.8).at("m");
  expect_values(from_f32.median, {-0.065, 0.935, -1.885, 4.98}, 1e-6);
  const Tensor strided = m_samples().transpose(0, 2).contiguous().transpose(0, 2);
  ASSERT_FALSE(strided.is_contiguous());
  const auto from_view = infer::summary({{"m", strided}}, 0.8).at("m");
  expect_values(from_view.n_eff,
                {30.09557433370526, 6.128160512570358, 36.136580496668756, 12.815543664605965},
                1e-10);
}

TEST(SummaryTest, DeviceTensorsAreReadToTheHost) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const auto s = infer::summary({{"m", m_samples().to(Device::cuda())}}, 0.8);
  EXPECT_TRUE(s.at("m").mean.device().is_cpu());
  expect_values(s.at("m").n_eff,
                {30.09557433370526, 6.128160512570358, 36.136580496668756, 12.815543664605965},
                1e-10);
}

TEST(SummaryTest, TableMatchesNumPyro) {
  // print_summary({"a": x, "m": m}, prob=0.9, group_by_chain=False).
  EXPECT_EQ(infer::format_summary({{"a", column(kX)}, {"m", m_samples()}}),
            "\n"
            "                mean       std    median      5.0%     95.0%     n_eff     r_hat\n"
            "         a     -0.72      1.15     -0.63     -2.83      0.43      7.48      1.04\n"
            "    m[0,0]      0.07      0.90     -0.07     -1.55      0.88     30.10      0.93\n"
            "    m[0,1]      0.64      2.49      0.94     -2.06      3.88      6.13      1.55\n"
            "    m[1,0]     -1.68      2.17     -1.89     -4.60      1.05     36.14      0.92\n"
            "    m[1,1]      4.93      0.34      4.98      4.34      5.10     12.82      1.05\n"
            "\n");
  // A name wider than 10 columns, prob 0.5: print_summary({"long_site_name": m[:10, 0, :]},
  // prob=0.5, group_by_chain=False).
  std::vector<double> w;
  for (int s = 0; s < 10; ++s) w.insert(w.end(), kM.begin() + 4 * s, kM.begin() + 4 * s + 2);
  EXPECT_EQ(
      infer::format_summary({{"long_site_name", from_vector(w, {10, 2}, f64())}}, 0.5),
      "\n"
      "                       mean       std    median     25.0%     75.0%     n_eff     r_hat\n"
      "long_site_name[0]      0.15      0.97      0.08     -0.24      0.67     13.67      0.94\n"
      "long_site_name[1]      0.36      2.64      0.22     -0.17      3.88      6.04      1.18\n"
      "\n");
  // Three chains: print_summary({"y": y}, prob=0.9) with y of shape (3, 10).
  const std::string chains =
      "\n"
      "                mean       std    median      5.0%     95.0%     n_eff     r_hat\n"
      "         y     -0.01      0.87     -0.05     -1.99      1.26     40.23      1.05\n"
      "\n";
  EXPECT_EQ(infer::format_summary({{"y", column(kY)}}, {.num_chains = 3}), chains);
  std::ostringstream os;
  infer::print_summary({{"y", column(kY)}}, {.num_chains = 3}, os);
  EXPECT_EQ(os.str(), chains);
}

TEST(SummaryTest, TableShowsNaNAsNumPyroDoes) {
  const std::string table = infer::format_summary({{"c", full({3}, 1.0, f64())}});
  EXPECT_NE(table.find("         c      1.00      0.00      1.00      1.00      1.00       nan"
                       "       nan\n"),
            std::string::npos)
      << table;
}

TEST(SummaryTest, ErrorsNameTheSite) {
  const Tensor x = column(kX);
  EMBER_EXPECT_THROW_WITH(infer::summary({}), ValueError, "summary", "no sites");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"u", Tensor()}}), ValueError, "site 'u'", "undefined");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"x", x}, {"s", scalar_tensor(1.0, f64())}}), ShapeError,
                          "site 's'", "shape ()", "no sample dim");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"one", zeros({1, 3}, f64())}}), ValueError, "site 'one'",
                          "shape (1, 3)", "1 draw(s) per chain", "at least 2");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"none", zeros({0, 3}, f64())}}), ValueError,
                          "site 'none'", "shape (0, 3)", "no draws");
  Tensor bad = zeros({10, 2}, f64());
  bad.data<double>()[3 * 2 + 1] = std::nan("");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"x", x}, {"bad", bad}}), ValueError, "site 'bad'",
                          "shape (10, 2)", "non-finite value nan", "index [3, 1]");
  Tensor inf = zeros({5}, f64());
  inf.data<double>()[4] = -std::numeric_limits<double>::infinity();
  EMBER_EXPECT_THROW_WITH(infer::print_summary({{"t", inf}}), ValueError, "site 't'", "-inf",
                          "index [4]");
  for (const double p : {0.0, 1.0, 1.5, -0.1, kNaN}) {
    EMBER_EXPECT_THROW_WITH(infer::summary({{"x", x}}, p), ValueError, "summary",
                            "prob must be in (0, 1)");
    EMBER_EXPECT_THROW_WITH(infer::hpdi(x, p), ValueError, "hpdi", "prob must be in (0, 1)");
  }
  EMBER_EXPECT_THROW_WITH(infer::quantiles(x, {0.5, 1.5}), ValueError, "quantiles", "[0, 1]",
                          "qs[1] = 1.5");
  EMBER_EXPECT_THROW_WITH(infer::quantiles(x, {-0.01}), ValueError, "qs[0] = -0.01");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"x", x}}, {.num_chains = 0}), ValueError,
                          "num_chains must be at least 1, got 0");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"x", x}}, {.num_chains = 2}), ValueError, "site 'x'",
                          "21 draws", "shape (21)", "num_chains = 2");
  EMBER_EXPECT_THROW_WITH(infer::summary({{"x", x}}, {.num_chains = 21}), ValueError, "site 'x'",
                          "1 draw(s) per chain");
  EMBER_EXPECT_THROW_WITH(infer::split_gelman_rubin(zeros({3}, f64())), ValueError,
                          "split_gelman_rubin", "shape (3)", "at least 4");
  EMBER_EXPECT_THROW_WITH(infer::effective_sample_size(zeros({1}, f64())), ValueError,
                          "effective_sample_size", "at least 2");
}

}  // namespace
}  // namespace ember
