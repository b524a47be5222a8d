// Importance sampling against closed forms: the log evidence of conjugate models (from the
// prior, and from the exact posterior, where every weight equals the evidence), weighted
// posterior moments, the effective sample size, resampling, the errors naming sites, and
// reproducibility under a seed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

class ImportanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(2024);
  }
};

// z ~ N(0, s0^2), x_i ~ N(z, s^2): the marginal of x is N(0, s^2 I + s0^2 11'), and the
// posterior of z is N(m, v) with 1/v = 1/s0^2 + n/s^2, m = v * sum(x) / s^2.
struct NormalNormal {
  double s0 = 2.0, s = 1.0;
  std::vector<double> x = {0.8, 1.9, 1.2, 2.4};

  Tensor data() const { return from_vector(x, {static_cast<std::int64_t>(x.size())}, f64()); }
  double n() const { return static_cast<double>(x.size()); }
  double sum_x() const {
    double t = 0;
    for (double v : x) t += v;
    return t;
  }
  double post_var() const { return 1.0 / (1.0 / (s0 * s0) + n() / (s * s)); }
  double post_mean() const { return post_var() * sum_x() / (s * s); }
  // log N(x; 0, s^2 I + s0^2 11'): by Sherman-Morrison, the determinant is
  // s^2n (1 + n s0^2 / s^2) and x' S^-1 x = (sum x^2 - s0^2 (sum x)^2 / (s^2 + n s0^2)) / s^2.
  double log_evidence() const {
    double sq = 0;
    for (double v : x) sq += v * v;
    const double logdet = 2.0 * n() * std::log(s) + std::log1p(n() * s0 * s0 / (s * s));
    const double quad = (sq - s0 * s0 * sum_x() * sum_x() / (s * s + n() * s0 * s0)) / (s * s);
    return -0.5 * n() * std::log(2.0 * std::numbers::pi) - 0.5 * logdet - 0.5 * quad;
  }
};

const NormalNormal kNN;

void nn_model(const Tensor& x) {
  const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), kNN.s0));
  auto data = plate("data", x.size(0));
  sample("obs", dist::Normal(z, kNN.s), x);
}

void nn_exact_guide(const Tensor&) {
  sample("z", dist::Normal(scalar_tensor(kNN.post_mean(), f64()), std::sqrt(kNN.post_var())));
}

// The standard error of a log-evidence estimate is about sqrt(1/ESS - 1/S).
double log_evidence_se(const ImportanceResult& r) {
  return std::sqrt(
      std::max(0.0, 1.0 / r.effective_sample_size() - 1.0 / static_cast<double>(r.num_samples())));
}

TEST_F(ImportanceTest, PriorProposalEstimatesTheNormalNormalEvidence) {
  Importance is(nn_model, 4000);
  const ImportanceResult r = is.run(kNN.data());
  ASSERT_EQ(r.num_samples(), 4000);
  EXPECT_EQ(r.log_weights().dtype(), kFloat64);
  EXPECT_EQ(r.log_weights().shape(), Shape({4000}));
  const double se = log_evidence_se(r);
  EXPECT_GT(se, 0.0);
  EXPECT_NEAR(r.log_evidence(), kNN.log_evidence(), 4.0 * se + 1e-6)
      << "exact " << kNN.log_evidence() << ", standard error " << se;
  // The prior N(0, 4) against the posterior (sd 0.49): about a fifth of the draws count.
  EXPECT_GT(r.effective_sample_size(), 0.1 * 4000);
  EXPECT_LT(r.effective_sample_size(), 0.4 * 4000);
}

TEST_F(ImportanceTest, ExactPosteriorGuideGivesTheEvidenceInEveryWeight) {
  Importance is(nn_model, nn_exact_guide, 64);
  const ImportanceResult r = is.run(kNN.data());
  const double exact = kNN.log_evidence();
  for (double w : r.log_weights().to_vector<double>()) EXPECT_NEAR(w, exact, 1e-10);
  EXPECT_NEAR(r.log_evidence(), exact, 1e-10);
  EXPECT_NEAR(r.effective_sample_size(), 64.0, 1e-8);
  for (double w : r.normalized_weights().to_vector<double>()) EXPECT_NEAR(w, 1.0 / 64, 1e-12);
}

TEST_F(ImportanceTest, LogWeightsAreLogJointMinusLogProposal) {
  // From the prior the weight is the likelihood alone; from a guide, log p(x, z) - log q(z).
  const Tensor x = kNN.data();
  auto loglik = [&](double z) {
    double t = 0;
    for (double v : kNN.x) t += -0.5 * std::log(2 * std::numbers::pi) - 0.5 * (v - z) * (v - z);
    return t;
  };
  auto lognormal = [](double v, double m, double sd) {
    return -0.5 * std::log(2 * std::numbers::pi) - std::log(sd) - 0.5 * std::pow((v - m) / sd, 2);
  };
  const ImportanceResult prior = Importance(nn_model, 5).run(x);
  const auto zp = prior.samples("z").to_vector<double>();
  const auto wp = prior.log_weights().to_vector<double>();
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(wp[i], loglik(zp[i]), 1e-10) << i;

  auto guide = [](const Tensor&) { sample("z", dist::Normal(scalar_tensor(1.0, f64()), 0.7)); };
  const ImportanceResult r = Importance(nn_model, guide, 5).run(x);
  const auto zg = r.samples("z").to_vector<double>();
  const auto wg = r.log_weights().to_vector<double>();
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(wg[i], lognormal(zg[i], 0.0, kNN.s0) + loglik(zg[i]) - lognormal(zg[i], 1.0, 0.7),
                1e-10)
        << i;
  }
}

TEST_F(ImportanceTest, WeightedPosteriorMomentsAndResampling) {
  const ImportanceResult r = Importance(nn_model, 4000).run(kNN.data());
  const double ess = r.effective_sample_size();
  const double sd = std::sqrt(kNN.post_var());
  EXPECT_EQ(r.samples("z").shape(), Shape({4000}));
  EXPECT_NEAR(r.mean("z").item(), kNN.post_mean(), 4.0 * sd / std::sqrt(ess));
  // The variance's standard error is about v * sqrt(2 / ESS).
  EXPECT_NEAR(r.variance("z").item(), kNN.post_var(), 4.0 * kNN.post_var() * std::sqrt(2 / ess));

  // Resampled draws are unweighted posterior draws, each one of the weighted samples.
  Generator gen(5);
  const handlers::ValueMap draws = r.resample(3000, gen);
  ASSERT_EQ(draws.size(), 1u);
  const Tensor& z = draws.at("z");
  EXPECT_EQ(z.shape(), Shape({3000}));
  EXPECT_NEAR(mean(z).item(), kNN.post_mean(), 4.0 * sd * std::sqrt(1 / ess + 1 / 3000.0));
  const auto all = r.samples("z").to_vector<double>();
  const std::set<double> pool(all.begin(), all.end());
  for (double v : z.to_vector<double>()) ASSERT_TRUE(pool.count(v)) << v;
}

TEST_F(ImportanceTest, BetaBernoulliEvidence) {
  // p ~ Beta(a, b), ten flips with seven heads: p(x) = B(a + 7, b + 3) / B(a, b), and the
  // posterior Beta(a + 7, b + 3) as the guide gives that in every weight.
  const double a = 2.0, b = 3.0;
  const Tensor flips = tensor({1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0}, f64());
  auto lbeta = [](double p, double q) {
    return std::lgamma(p) + std::lgamma(q) - std::lgamma(p + q);
  };
  const double exact = lbeta(a + 7, b + 3) - lbeta(a, b);
  auto model = [&](const Tensor& x) {
    const Tensor p = sample("p", dist::Beta(scalar_tensor(a, f64()), scalar_tensor(b, f64())));
    auto data = plate("flips", x.size(0));
    sample("obs", dist::Bernoulli(p), x);
  };
  auto posterior = [&](const Tensor&) {
    sample("p", dist::Beta(scalar_tensor(a + 7, f64()), scalar_tensor(b + 3, f64())));
  };
  const ImportanceResult prior = Importance(model, 3000).run(flips);
  EXPECT_NEAR(prior.log_evidence(), exact, 4.0 * log_evidence_se(prior) + 1e-6)
      << "exact " << exact;
  EXPECT_NEAR(prior.mean("p").item(), (a + 7) / (a + b + 10),
              4.0 * std::sqrt(9.0 * 6.0 / (15.0 * 15.0 * 16.0) / prior.effective_sample_size()));

  const ImportanceResult exact_run = Importance(model, posterior, 32).run(flips);
  for (double w : exact_run.log_weights().to_vector<double>()) EXPECT_NEAR(w, exact, 1e-9);
  EXPECT_NEAR(exact_run.effective_sample_size(), 32.0, 1e-6);
}

TEST_F(ImportanceTest, ZeroWeightsAreNeverResampled) {
  // A factor of log 0 for z < 0 halves the prior's mass: the evidence is log P(z > 0), and
  // the weight-zero samples drop out of the moments and the resampled draws.
  auto model = [] {
    const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    factor("positive", log(gt(z, 0.0).to(kFloat64)));
  };
  const ImportanceResult r = Importance(model, 2000).run();
  const auto w = r.log_weights().to_vector<double>();
  const auto z = r.samples("z").to_vector<double>();
  int kept = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (z[i] > 0) {
      EXPECT_EQ(w[i], 0.0);
      ++kept;
    } else {
      EXPECT_EQ(w[i], -std::numeric_limits<double>::infinity());
    }
  }
  EXPECT_NEAR(r.log_evidence(), std::log(kept / 2000.0), 1e-12);
  EXPECT_NEAR(r.effective_sample_size(), kept, 1e-6);
  EXPECT_NEAR(std::exp(r.log_evidence()), 0.5, 4.0 * std::sqrt(0.25 / 2000));
  // E[z | z > 0] = sqrt(2 / pi).
  EXPECT_NEAR(r.mean("z").item(), std::sqrt(2 / std::numbers::pi), 4.0 * 0.6 / std::sqrt(kept));
  for (double v : r.resample(500, 11).at("z").to_vector<double>()) EXPECT_GT(v, 0.0);
}

TEST_F(ImportanceTest, SitesStackWithTheirShapesAndDeterministicRecords) {
  auto model = [](const Tensor& x) {
    const Tensor loc = sample("loc", dist::Normal(zeros({2}, f64()), 1.0).to_event(1));
    deterministic("loc_sum", sum(loc));
    auto data = plate("data", x.size(0));
    sample("obs", dist::Normal(loc, 1.0).to_event(1), x);
  };
  const Tensor x = tensor({0.5, -0.5, 1.0, 0.0}, f64()).reshape({2, 2});
  const ImportanceResult r = Importance(model, 7).run(x);
  EXPECT_EQ(r.sites(), (std::vector<std::string>{"loc", "loc_sum"}));
  EXPECT_TRUE(r.contains("loc"));
  EXPECT_FALSE(r.contains("obs"));
  EXPECT_EQ(r.samples("loc").shape(), Shape({7, 2}));
  EXPECT_EQ(r.samples("loc_sum").shape(), Shape({7}));
  EXPECT_EQ(r.mean("loc").shape(), Shape({2}));
  test::expect_close(sum(r.samples("loc"), {1}), r.samples("loc_sum"), 1e-12, 1e-12);
  const handlers::ValueMap draws = r.resample(4, 3);
  EXPECT_EQ(draws.at("loc").shape(), Shape({4, 2}));
  test::expect_close(sum(draws.at("loc"), {1}), draws.at("loc_sum"), 1e-12, 1e-12);
}

TEST_F(ImportanceTest, SitesNotInEverySampleAreNamedWhenAsked) {
  auto model = [] {
    const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    if (z.item() > 0) sample("extra", dist::Normal(z, 1.0));
  };
  const ImportanceResult r = Importance(model, 50).run();
  EXPECT_EQ(r.sites(), std::vector<std::string>{"z"});
  EMBER_EXPECT_THROW_WITH(r.samples("extra"), ValueError, "site 'extra' is not in every sample",
                          "of 50)");
  EMBER_EXPECT_THROW_WITH(r.samples("zz"), ValueError,
                          "no site 'zz' among the sampled sites ('z')");
}

TEST_F(ImportanceTest, NumSamplesMustBePositive) {
  EMBER_EXPECT_THROW_WITH(Importance(nn_model, 0), ValueError,
                          "Importance: num_samples must be at least 1, got 0");
  EMBER_EXPECT_THROW_WITH(Importance(nn_model, nn_exact_guide, -3), ValueError,
                          "num_samples must be at least 1, got -3");
}

TEST_F(ImportanceTest, MismatchedSitesAreNamed) {
  const Tensor x = kNN.data();
  auto misspelt = [](const Tensor&) { sample("zz", dist::Normal(scalar_tensor(0.0, f64()), 1.0)); };
  EMBER_EXPECT_THROW_WITH(Importance(nn_model, misspelt, 3).run(x), ValueError,
                          "guide site 'zz' is not in the model");

  auto two_latents = [](const Tensor& data) {
    nn_model(data);
    sample("w", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
  };
  EMBER_EXPECT_THROW_WITH(Importance(two_latents, nn_exact_guide, 3).run(x), ValueError,
                          "model site 'w' is not in the guide");

  auto guesses_obs = [](const Tensor& data) {
    nn_exact_guide(data);
    sample("obs", dist::Normal(zeros({4}, f64()), 1.0).to_event(1));
  };
  EMBER_EXPECT_THROW_WITH(Importance(nn_model, guesses_obs, 3).run(x), ValueError,
                          "guide site 'obs' is observed in the model");

  // A guide's draw of another shape would broadcast silently against a scalar observation.
  auto one_obs = [](const Tensor& data) {
    const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    sample("obs", dist::Normal(z, 1.0), data);
  };
  auto wide = [](const Tensor&) { sample("z", dist::Normal(zeros({3}, f64()), 1.0).to_event(1)); };
  EMBER_EXPECT_THROW_WITH(
      Importance(one_obs, wide, 3).run(scalar_tensor(0.5, f64())), ShapeError,
      "disagree on the shape of site 'z': the guide draws (3) (Independent(Normal, 1))",
      "batch + event shape ()");
}

// An observation far outside a tiny scale has density 0 whatever z is.
void model_with_bad_obs() {
  const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
  auto p = plate("data", 3);
  sample("obs", dist::Normal(z, tensor({1.0, 1e-200, 1.0}, f64())),
         tensor({0.0, 1e200, 0.0}, f64()));
}

TEST_F(ImportanceTest, AllZeroWeightsNameTheSite) {
  try {
    Importance(model_with_bad_obs, 8).run();
    ADD_FAILURE() << "no NonFiniteError";
  } catch (const NonFiniteError& e) {
    EXPECT_EQ(e.site(), "obs");
    EXPECT_NE(std::string(e.what()).find(
                  "Importance: all 8 log-weights are -inf (every sample has weight zero); in "
                  "sample 0 the first site whose log-density is not finite is 'obs' (model, "
                  "Normal, batch shape (3)): value -inf at index [1]"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(ImportanceTest, ANanWeightNamesTheSite) {
  auto guide = [] {
    sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    factor("bad", full({}, std::numeric_limits<double>::quiet_NaN(), f64()));
  };
  auto model = [] { sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0)); };
  try {
    Importance(model, guide, 4).run();
    ADD_FAILURE() << "no NonFiniteError";
  } catch (const NonFiniteError& e) {
    EXPECT_EQ(e.site(), "bad");
    EXPECT_NE(std::string(e.what()).find("the log-weight of sample 0 is nan; the first site whose "
                                         "log-density is not finite is 'bad' (guide, Unit"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(ImportanceTest, ASeedMakesARunReproducible) {
  const Tensor x = kNN.data();
  auto seeded = [&](std::uint64_t seed) {
    handlers::SeedHandler s(seed);
    return Importance(nn_model, 100).run(x);
  };
  const ImportanceResult a = seeded(7), b = seeded(7), c = seeded(8);
  EXPECT_EQ(a.log_weights().to_vector<double>(), b.log_weights().to_vector<double>());
  EXPECT_EQ(a.samples("z").to_vector<double>(), b.samples("z").to_vector<double>());
  EXPECT_NE(a.samples("z").to_vector<double>(), c.samples("z").to_vector<double>());
  // So is resampling: a seed, or a generator of that seed, gives the same draws.
  Generator g1(3), g2(3);
  const Tensor idx = a.resample_indices(50, g1);
  EXPECT_EQ(idx.to_vector<std::int64_t>(), a.resample_indices(50, g2).to_vector<std::int64_t>());
  EXPECT_EQ(a.resample(50, 3).at("z").to_vector<double>(),
            index_select(a.samples("z"), 0, idx).to_vector<double>());
}

}  // namespace
}  // namespace ember
