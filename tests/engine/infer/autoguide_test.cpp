// Autoguides: each recovers exact posteriors of conjugate models (AutoNormal and
// AutoDiagonalNormal the Gaussian's mean and sd, AutoMultivariateNormal a full covariance,
// the low-rank guide within its rank, AutoDelta a MAP, Laplace the analytic Hessian), local
// latents in subsampled plates, the init strategies, AutoGuideList, and the errors.
#include <cmath>
#include <thread>

#include "test_util.hpp"

namespace ember {
namespace {

using autoguide::AutoGuideOptions;
using test::f64;

class AutoGuideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(4321);
  }
};

// Fits with Adam, then again with a tenth of the step size to settle the iterate.
template <typename Model, typename Guide, typename... Args>
void fit(Model model, Guide guide, int steps, double lr, int particles, const Args&... args) {
  ElboOptions eo{.num_particles = particles, .vectorize_particles = particles > 1};
  {
    SVI svi(model, guide, optim::Adam({.lr = lr}), Trace_ELBO(eo));
    for (int i = 0; i < steps; ++i) svi.step(args...);
  }
  SVI svi(model, guide, optim::Adam({.lr = lr / 10}), Trace_ELBO(eo));
  for (int i = 0; i < steps / 2; ++i) svi.step(args...);
}

// z ~ N(0, 1), x_i ~ N(z, 1): the posterior is N(sum(x) / (n + 1), 1 / (n + 1)).
void normal_normal(const Tensor& x) {
  const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
  auto data = plate("data", x.size(0));
  sample("x", dist::Normal(z, 1.0), x);
}

const Tensor& normal_data() {
  static const Tensor x = tensor({0.8, 1.9, 1.1, 0.4, 1.6}, f64());
  return x;
}

TEST_F(AutoGuideTest, AutoNormalRecoversTheNormalPosterior) {
  auto guide = autoguide::AutoNormal(normal_normal);
  fit(normal_normal, guide, 1500, 0.05, 32, normal_data());
  const double mean = 5.8 / 6, sd = std::sqrt(1.0 / 6);
  EXPECT_NEAR(guide.median().at("z").item(), mean, 0.02);
  EXPECT_NEAR(param("AutoNormal.scales.z").item(), sd, 0.04);
  // quantiles: mean + sd * z_q.
  const Tensor q = guide.quantiles({0.1, 0.5, 0.9}).at("z");
  EXPECT_NEAR(q.select(0, 0).item(), mean - 1.2815515655 * sd, 0.05);
  EXPECT_NEAR(q.select(0, 1).item(), mean, 0.02);
  EXPECT_NEAR(q.select(0, 2).item(), mean + 1.2815515655 * sd, 0.05);
  // The sampler draws from the fitted guide.
  const Tensor draws = guide.sample_posterior(4000).at("z");
  EXPECT_EQ(draws.shape(), Shape({4000}));
  EXPECT_NEAR(ember::mean(draws).item(), mean, 4 * sd / std::sqrt(4000.0) + 0.02);
}

TEST_F(AutoGuideTest, AutoDiagonalNormalRecoversTheNormalPosterior) {
  auto guide = autoguide::AutoDiagonalNormal(normal_normal);
  fit(normal_normal, guide, 1500, 0.05, 32, normal_data());
  EXPECT_NEAR(guide.median().at("z").item(), 5.8 / 6, 0.02);
  const dist::Distribution q = guide.get_posterior();
  EXPECT_EQ(q.event_shape(), Shape({1}));
  EXPECT_NEAR(q.stddev().select(0, 0).item(), std::sqrt(1.0 / 6), 0.04);
}

// w ~ N(0, I_2), y_i ~ N(a_i . w, 0.5): the posterior precision is I + A^T A / 0.25.
void correlated(const Tensor& a, const Tensor& y) {
  const Tensor w = sample("w", dist::Normal(zeros({2}, f64()), 1.0).to_event(1));
  auto data = plate("data", y.size(0));
  sample("y", dist::Normal(sum(mul(a, w), {-1}), 0.5), y);
}

struct Correlated {
  Tensor a = tensor({{1.0, 0.9}, {0.8, 1.0}, {1.2, 1.0}}, f64());
  Tensor y = tensor({1.0, 0.7, 1.4}, f64());
  // The exact posterior, from the precision.
  Tensor cov() const {
    const Tensor precision = add(eye(2, f64()), div(matmul(a.t(), a), 0.25));
    return dist::MultivariateNormal::from_precision(zeros({2}, f64()), precision)
        .covariance_matrix();
  }
  Tensor mean() const { return matmul(cov(), div(matmul(a.t(), y), 0.25)); }
};

TEST_F(AutoGuideTest, AutoMultivariateNormalRecoversTheFullCovariance) {
  const Correlated c;
  auto guide = autoguide::AutoMultivariateNormal(correlated);
  fit(correlated, guide, 2500, 0.03, 64, c.a, c.y);
  const Tensor cov =
      dist::MultivariateNormal(zeros({2}, f64()), param("AutoMultivariateNormal.scale_tril"))
          .covariance_matrix();
  const Tensor want = c.cov();
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(guide.median().at("w").select(0, i).item(), c.mean().select(0, i).item(), 0.03);
    for (int j = 0; j < 2; ++j) {
      EXPECT_NEAR(cov.select(0, i).select(0, j).item(), want.select(0, i).select(0, j).item(),
                  0.15 * std::abs(want.select(0, i).select(0, i).item()));
    }
  }
  // A strongly negative correlation, which no diagonal guide can express.
  const double rho =
      want.select(0, 0).select(0, 1).item() /
      std::sqrt(want.select(0, 0).select(0, 0).item() * want.select(0, 1).select(0, 1).item());
  ASSERT_LT(rho, -0.8);
  const double fitted =
      cov.select(0, 0).select(0, 1).item() /
      std::sqrt(cov.select(0, 0).select(0, 0).item() * cov.select(0, 1).select(0, 1).item());
  EXPECT_NEAR(fitted, rho, 0.05);
}

TEST_F(AutoGuideTest, AutoLowRankMultivariateNormalRecoversACovarianceWithinItsRank) {
  const Correlated c;
  auto guide = autoguide::AutoLowRankMultivariateNormal(correlated, AutoGuideOptions{.rank = 1});
  fit(correlated, guide, 2500, 0.03, 64, c.a, c.y);
  EXPECT_EQ(param("AutoLowRankMultivariateNormal.cov_factor").shape(), Shape({2, 1}));
  const Tensor scale = param("AutoLowRankMultivariateNormal.scale");
  const Tensor cov =
      dist::LowRankMultivariateNormal(
          zeros({2}, f64()),
          mul(param("AutoLowRankMultivariateNormal.cov_factor"), scale.unsqueeze(-1)),
          square(scale))
          .covariance_matrix();
  // get_posterior is that distribution.
  test::expect_close(guide.get_posterior().variance(), diagonal(cov), 1e-12, 1e-12);
  const Tensor want = c.cov();
  // A 2x2 covariance is W W^T + D with W of rank 1.
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(guide.median().at("w").select(0, i).item(), c.mean().select(0, i).item(), 0.03);
    for (int j = 0; j < 2; ++j) {
      EXPECT_NEAR(cov.select(0, i).select(0, j).item(), want.select(0, i).select(0, j).item(),
                  0.2 * std::abs(want.select(0, i).select(0, i).item()));
    }
  }
}

TEST_F(AutoGuideTest, AutoIAFNormalRecoversACorrelatedGaussian) {
  const Correlated c;
  auto guide = autoguide::AutoIAFNormal(correlated);
  fit(correlated, guide, 2500, 0.01, 32, c.a, c.y);
  // The flow's draws: their mean and covariance against the exact posterior's.
  const Tensor w = guide.sample_posterior(20000).at("w");
  const Tensor m = ember::mean(w, {0});
  const Tensor centred = sub(w, m);
  const Tensor cov = div(matmul(centred.t(), centred), 20000.0);
  const Tensor want = c.cov();
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(m.select(0, i).item(), c.mean().select(0, i).item(), 0.05);
    for (int j = 0; j < 2; ++j) {
      EXPECT_NEAR(cov.select(0, i).select(0, j).item(), want.select(0, i).select(0, j).item(),
                  0.15 * want.select(0, i).select(0, i).item());
    }
  }
  EXPECT_EQ(guide.quantiles({0.5}).at("w").shape(), Shape({1, 2}));
  EXPECT_THROW(guide.get_posterior(), ValueError);
}

// lambda ~ Gamma(a, b), x_i ~ Poisson(lambda): the posterior is Gamma(a + sum(x), b + n).
void gamma_poisson(const Tensor& x) {
  const Tensor lambda = sample("lambda", dist::Gamma(scalar_tensor(2.0, f64()), 1.0));
  auto data = plate("data", x.size(0));
  sample("x", dist::Poisson(lambda), x);
}

TEST_F(AutoGuideTest, AutoDeltaFindsTheMapInConstrainedSpace) {
  const Tensor x = tensor({3, 1, 4, 2, 5}, f64());
  auto guide = autoguide::AutoDelta(gamma_poisson);
  fit(gamma_poisson, guide, 1500, 0.05, 1, x);
  // The mode of Gamma(17, 6).
  EXPECT_NEAR(guide.median().at("lambda").item(), 16.0 / 6, 0.01);
  EXPECT_NEAR(param("AutoDelta.lambda").item(), 16.0 / 6, 0.01);
}

TEST_F(AutoGuideTest, LaplaceApproximationMatchesTheAnalyticHessian) {
  const Tensor x = tensor({3, 1, 4, 2, 5}, f64());
  auto guide = autoguide::AutoLaplaceApproximation(gamma_poisson);
  fit(gamma_poisson, guide, 1500, 0.05, 1, x);
  // In u = log(lambda) the density is lambda^17 e^{-6 lambda}: the mode is log(17 / 6) and
  // the Hessian there is 17.
  EXPECT_NEAR(param("AutoLaplaceApproximation.loc").select(0, 0).item(), std::log(17.0 / 6), 1e-3);
  auto laplace = guide.laplace_approximation(x);
  const Tensor tril = param("AutoLaplaceApproximation.laplace.scale_tril");
  EXPECT_NEAR(tril.select(0, 0).select(0, 0).item(), 1 / std::sqrt(17.0), 1e-3);
  EXPECT_NEAR(laplace.median().at("lambda").item(), 17.0 / 6, 5e-3);
  // Its quantiles are the lognormal's.
  const Tensor q = laplace.quantiles({0.975}).at("lambda");
  EXPECT_NEAR(q.item(), 17.0 / 6 * std::exp(1.959964 / std::sqrt(17.0)), 0.01);
}

TEST_F(AutoGuideTest, LaplaceApproximationOfTheGaussianIsExact) {
  const Correlated c;
  auto guide = autoguide::AutoLaplaceApproximation(correlated);
  fit(correlated, guide, 3000, 0.05, 1, c.a, c.y);
  auto laplace = guide.laplace_approximation(c.a, c.y);
  const Tensor cov = dist::MultivariateNormal(zeros({2}, f64()),
                                              param("AutoLaplaceApproximation.laplace.scale_tril"))
                         .covariance_matrix();
  test::expect_close(laplace.get_posterior().variance(), diagonal(cov), 1e-12, 1e-12);
  test::expect_close(cov, c.cov(), 1e-4, 1e-4);
  test::expect_close(laplace.median().at("w"), c.mean(), 1e-3, 1e-3);
}

// Local latents: z_i ~ N(0, 1), x_i ~ N(z_i, 1), so z_i | x_i ~ N(x_i / 2, 1 / 2); the
// plate is subsampled, four of ten points per step.
void local_latents(const Tensor& x) {
  auto data = plate("data", x.size(0), {.subsample_size = 4});
  const Tensor z = sample("z", dist::Normal(zeros({4}, f64()), 1.0));
  sample("x", dist::Normal(z, 1.0), data.subsample(x));
}

template <typename Guide>
void expect_local_posterior(Guide guide) {
  const Tensor x = tensor({-2.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, -0.5, 2.5}, f64());
  fit(local_latents, guide, 4000, 0.05, 16, x);
  const Tensor m = guide.median().at("z");
  ASSERT_EQ(m.shape(), Shape({10}));
  test::expect_close(m, div(x, 2.0), 0.0, 0.1);
  const Tensor q = guide.quantiles({0.8413447}).at("z");  // one sd above
  test::expect_close(sub(q.select(0, 0), m), full({10}, std::sqrt(0.5), f64()), 0.0, 0.08);
}

TEST_F(AutoGuideTest, AutoNormalGuidesLocalLatentsInASubsampledPlate) {
  expect_local_posterior(autoguide::AutoNormal(local_latents));
}

TEST_F(AutoGuideTest, AutoDiagonalNormalGuidesLocalLatentsInASubsampledPlate) {
  expect_local_posterior(autoguide::AutoDiagonalNormal(local_latents));
}

// Beta-Bernoulli through the logit transform: the guide's median lands near the exact
// posterior median of Beta(16, 14).
void coin(const Tensor& flips) {
  const Tensor f = sample("fairness", dist::Beta(scalar_tensor(10.0, f64()), 10.0));
  auto data = plate("data", flips.size(0));
  sample("obs", dist::Bernoulli(f), flips);
}

TEST_F(AutoGuideTest, AutoNormalReachesAConstrainedSupport) {
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, f64());
  auto guide = autoguide::AutoNormal(coin);
  fit(coin, guide, 1500, 0.05, 32, flips);
  EXPECT_NEAR(guide.median().at("fairness").item(), 0.5345, 0.015);
  const Tensor draws = guide.sample_posterior(2000).at("fairness");
  EXPECT_TRUE(all(logical_and(gt(draws, 0.0), lt(draws, 1.0))));
  EXPECT_NEAR(ember::mean(draws).item(), 16.0 / 30, 0.015);
  // The site's posterior is the pushed-forward Normal.
  const dist::Distribution p = guide.posterior("fairness");
  EXPECT_EQ(p.support().kind(), constraints::Kind::Interval);
}

// A simplex site's coordinates do not map one by one: its quantiles are drawn empirically,
// so each coordinate's are ordered and lie inside (0, 1).
TEST_F(AutoGuideTest, QuantilesOfASimplexSiteAreOrderedPerCoordinate) {
  auto model = [] {
    const Tensor w = sample("w", dist::Dirichlet(tensor({2.0, 3.0, 4.0}, f64())));
    sample("k", dist::Categorical(w), scalar_tensor(1.0, TensorOptions{kInt64}));
  };
  auto guide = autoguide::AutoNormal(model, AutoGuideOptions{.init_scale = 0.5});
  guide();
  const Tensor q = guide.quantiles({0.05, 0.5, 0.95}).at("w");
  ASSERT_EQ(q.shape(), Shape({3, 3}));
  for (int k = 0; k < 3; ++k) {
    EXPECT_LT(q.select(0, 0).select(0, k).item(), q.select(0, 1).select(0, k).item()) << k;
    EXPECT_LT(q.select(0, 1).select(0, k).item(), q.select(0, 2).select(0, k).item()) << k;
    EXPECT_GT(q.select(0, 0).select(0, k).item(), 0.0);
    EXPECT_LT(q.select(0, 2).select(0, k).item(), 1.0);
  }
}

TEST_F(AutoGuideTest, GuideParametersHavePyroNames) {
  auto guide = autoguide::AutoNormal(coin);
  guide(tensor({1, 0}, f64()));
  EXPECT_TRUE(get_param_store().contains("AutoNormal.locs.fairness"));
  EXPECT_TRUE(get_param_store().contains("AutoNormal.scales.fairness"));
  auto named = autoguide::AutoDelta(coin, AutoGuideOptions{.prefix = "map"});
  named(tensor({1, 0}, f64()));
  EXPECT_TRUE(get_param_store().contains("map.fairness"));
  EXPECT_EQ(guide.sites().size(), 1u);
  EXPECT_EQ(guide.sites()[0].name, "fairness");
}

// ---- init strategies ----
Site site_of(const dist::Distribution& d, const std::string& name = "s") {
  Message msg;
  msg.name = name;
  msg.fn = d;
  return Site(msg);
}

TEST_F(AutoGuideTest, InitStrategiesGiveValuesInTheSupport) {
  const dist::Distribution g = dist::Gamma(full({3}, 4.0, f64()), 2.0);
  EXPECT_TRUE(all(eq(autoguide::init_to_feasible()(site_of(g)), 1.0)));  // exp(0)
  test::expect_close(autoguide::init_to_mean()(site_of(g)), full({3}, 2.0, f64()), 1e-12, 0);
  const Tensor med = autoguide::init_to_median(101)(site_of(g));
  EXPECT_TRUE(all(gt(med, 0.0)));
  EXPECT_NEAR(ember::mean(med).item(), 1.836, 0.35);  // Gamma(4, 2)'s median
  EXPECT_EQ(autoguide::init_to_sample()(site_of(g)).shape(), Shape({3}));
  const dist::Distribution u = dist::Uniform(scalar_tensor(2.0, f64()), 4.0);
  EXPECT_NEAR(autoguide::init_to_feasible()(site_of(u)).item(), 3.0, 1e-12);
  // A Dirichlet's elementwise median is off the simplex: the mean stands in.
  const dist::Distribution dir = dist::Dirichlet(tensor({1.0, 2.0, 3.0}, f64()));
  const Tensor v = autoguide::init_to_median()(site_of(dir));
  EXPECT_NEAR(sum(v).item(), 1.0, 1e-9);
  // init_to_value: given sites take the value, others the fallback.
  const auto by_value = autoguide::init_to_value({{"s", tensor({0.5, 0.5, 0.5}, f64())}},
                                                 autoguide::init_to_feasible());
  test::expect_close(by_value(site_of(g)), full({3}, 0.5, f64()), 0, 0);
  EXPECT_TRUE(all(eq(by_value(site_of(g, "other")), 1.0)));
  EXPECT_THROW(
      {
        try {
          autoguide::init_to_value({{"s", tensor({-1.0, 1.0, 1.0}, f64())}})(site_of(g));
        } catch (const ValueError& e) {
          EXPECT_NE(std::string(e.what()).find("'s'"), std::string::npos) << e.what();
          throw;
        }
      },
      ValueError);
  EXPECT_THROW(autoguide::init_to_value({{"s", zeros({2}, f64())}})(site_of(g)), ShapeError);
}

TEST_F(AutoGuideTest, TheInitStrategyGivesTheGuideItsStart) {
  auto guide = autoguide::AutoNormal(
      gamma_poisson, AutoGuideOptions{.init_loc_fn = autoguide::init_to_value(
                                          {{"lambda", scalar_tensor(5.0, f64())}})});
  guide(tensor({1, 2}, f64()));
  EXPECT_NEAR(guide.median().at("lambda").item(), 5.0, 1e-12);
  EXPECT_NEAR(param("AutoNormal.scales.lambda").item(), 0.1, 1e-12);
}

// ---- AutoGuideList ----
void two_latents(const Tensor& x) {
  const Tensor mu = sample("mu", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
  const Tensor sigma = sample("sigma", dist::LogNormal(scalar_tensor(0.0, f64()), 1.0));
  auto data = plate("data", x.size(0));
  sample("x", dist::Normal(mu, sigma), x);
}

TEST_F(AutoGuideTest, AutoGuideListCombinesAutoguidesAndHandWrittenParts) {
  auto by_hand = [](const Tensor&) {
    const Tensor s = param("sigma_loc", scalar_tensor(0.5, f64()), constraints::positive);
    sample("sigma", dist::Delta(s));
  };
  auto guide = autoguide::AutoGuideList(
      autoguide::AutoNormal(handlers::block(two_latents, {.hide = {"sigma"}})), by_hand);
  const Tensor x = tensor({0.3, 0.9, 1.4}, f64());
  const handlers::ValueMap v = guide(x);
  EXPECT_TRUE(v.contains("mu"));
  EXPECT_FALSE(v.contains("sigma"));  // the hand-written part returns nothing
  EXPECT_EQ(guide.part<0>().sites().size(), 1u);
  SVI svi(two_latents, guide, optim::Adam({.lr = 0.01}), Trace_ELBO());
  for (int i = 0; i < 5; ++i) svi.step(x);
  EXPECT_TRUE(get_param_store().contains("sigma_loc"));
  EXPECT_EQ(guide.median().size(), 1u);
}

// ---- errors ----
void discrete(const Tensor& x) {
  sample("k", dist::Bernoulli(scalar_tensor(0.3, f64())));
  sample("x", dist::Normal(scalar_tensor(0.0, f64()), 1.0), x);
}

template <typename E, typename F>
void expect_error(F f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one saying " << words[0];
  } catch (const E& e) {
    for (const std::string& w : words) {
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
  }
}

TEST_F(AutoGuideTest, ErrorsNameTheGuideAndTheSite) {
  const Tensor x = scalar_tensor(0.0, f64());
  expect_error<ValueError>(
      [&] {
        auto guide = autoguide::AutoNormal(discrete);
        guide(x);
      },
      {"AutoNormal", "'k'", "discrete"});
  expect_error<ValueError>(
      [&] {
        auto guide = autoguide::AutoMultivariateNormal(local_latents);
        guide(zeros({10}, f64()));
      },
      {"AutoMultivariateNormal", "'z'", "plate 'data'", "subsampled"});
  expect_error<ValueError>([] { autoguide::AutoNormal(coin).median(); },
                           {"AutoNormal.median", "call it"});
  auto guide = autoguide::AutoNormal(coin);
  guide(tensor({1, 0}, f64()));
  expect_error<ValueError>([&] { guide.quantiles({1.5}); }, {"AutoNormal.quantiles", "1.5"});
  expect_error<ValueError>([&] { guide.posterior("nope"); }, {"'nope'"});
  clear_param_store();
  expect_error<ValueError>([&] { guide.median(); },
                           {"'AutoNormal.locs.fairness'", "current param store"});
  expect_error<ValueError>([] { autoguide::AutoNormal(coin, AutoGuideOptions{.init_scale = -1}); },
                           {"init_scale"});
}

TEST_F(AutoGuideTest, FitsAreReproducibleForASeed) {
  auto run = [] {
    clear_param_store();
    set_rng_seed(7);
    auto guide = autoguide::AutoMultivariateNormal(normal_normal);
    SVI svi(normal_normal, guide, optim::Adam({.lr = 0.05}), Trace_ELBO());
    for (int i = 0; i < 50; ++i) svi.step(normal_data());
    return param("AutoMultivariateNormal.scale_tril").clone();
  };
  const Tensor a = run(), b = run();
  test::expect_close(a, b, 0, 0);
}

// One guide object fitted in two threads at once, each with its own store and seed: each fit
// equals the same fit run alone.
TEST_F(AutoGuideTest, OneGuideFitsInSeveralThreadsAtOnce) {
  auto guide = autoguide::AutoMultivariateNormal(two_latents);
  const Tensor x = tensor({0.3, 0.9, 1.4}, f64());
  auto fit_in = [&](ParamStore& store, std::uint64_t seed) {
    handlers::SeedHandler seeded(seed);
    SVI svi(two_latents, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), {.param_store = &store});
    for (int i = 0; i < 200; ++i) svi.step(x);
    return store.get("AutoMultivariateNormal.loc").clone();
  };
  guide.setup(x);  // the prototype draws from the generator once, before any fit
  ParamStore alone_a, alone_b, a, b;
  const Tensor want_a = fit_in(alone_a, 1), want_b = fit_in(alone_b, 2);
  Tensor got_a, got_b;
  std::thread ta([&] { got_a = fit_in(a, 1); });
  std::thread tb([&] { got_b = fit_in(b, 2); });
  ta.join();
  tb.join();
  test::expect_close(got_a, want_a, 0, 0);
  test::expect_close(got_b, want_b, 0, 0);
  EXPECT_FALSE(all(eq(got_a, got_b)));
}

TEST_F(AutoGuideTest, CompiledStepsOfAnAutoguideEqualEagerOnes) {
  auto run = [](bool compiled) {
    clear_param_store();
    set_rng_seed(11);
    auto guide = autoguide::AutoNormal(two_latents);
    SVI svi(two_latents, guide, optim::Adam({.lr = 0.05}), Trace_ELBO());
    if (compiled) svi.compile({});
    std::vector<double> losses;
    for (int i = 0; i < 30; ++i) losses.push_back(svi.step(tensor({0.3, 0.9, 1.4}, f64())));
    return losses;
  };
  EXPECT_EQ(run(false), run(true));
}

}  // namespace
}  // namespace ember
