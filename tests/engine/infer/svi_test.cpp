// SVI end to end: convergence to exact posteriors (Beta-Bernoulli, Normal-Normal,
// Gamma-Poisson) with reparameterized and score-function guides, run() and its callback,
// and non-finite losses.
#include <sstream>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

class SviTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(1234);
  }
};

// Mean of the last `tail` values of a parameter's trajectory (Polyak averaging irons out
// the score-function noise of the final iterates).
struct Tracker {
  std::vector<std::map<std::string, double>> history;
  void record(std::initializer_list<std::string> names) {
    std::map<std::string, double> row;
    for (const auto& n : names) row[n] = param(n).item();
    history.push_back(row);
  }
  double tail_mean(const std::string& n, std::size_t tail) const {
    double s = 0;
    for (std::size_t i = history.size() - tail; i < history.size(); ++i) s += history[i].at(n);
    return s / tail;
  }
};

// The coin of SVI Part I: Beta(10, 10) prior, 6 heads in 10 flips; exact posterior
// Beta(16, 14): mean 0.5333, sd 0.0896.
void coin_model(const Tensor& flips) {
  const Tensor f = sample("fairness", dist::Beta(scalar_tensor(10.0, f64()), 10.0));
  auto data = plate("data", flips.size(0));
  sample("obs", dist::Bernoulli(f), flips);
}

TEST_F(SviTest, SlowBetaBernoulliReparameterized) {
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, f64());
  auto guide = [](const Tensor&) {
    const Tensor a = param("a", scalar_tensor(15.0, f64()), constraints::positive);
    const Tensor b = param("b", scalar_tensor(15.0, f64()), constraints::positive);
    sample("fairness", dist::Beta(a, b));
  };
  SVI svi(coin_model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO());
  Tracker t;
  for (int i = 0; i < 3000; ++i) {
    svi.step(flips);
    t.record({"a", "b"});
  }
  const double a = t.tail_mean("a", 1000), b = t.tail_mean("b", 1000);
  EXPECT_NEAR(a / (a + b), 16.0 / 30.0, 0.01);
  EXPECT_NEAR(std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1))), 0.0896, 0.01);
}

TEST_F(SviTest, SlowBetaBernoulliScoreFunction) {
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, f64());
  auto guide = [](const Tensor&) {
    const Tensor a = param("a", scalar_tensor(15.0, f64()), constraints::positive);
    const Tensor b = param("b", scalar_tensor(15.0, f64()), constraints::positive);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = true;
    sample("fairness", dist::Beta(a, b).without_rsample(), opts);
  };
  SVI svi(coin_model, guide, optim::Adam({.lr = 0.02}), TraceGraph_ELBO());
  Tracker t;
  for (int i = 0; i < 6000; ++i) {
    svi.step(flips);
    t.record({"a", "b"});
  }
  const double a = t.tail_mean("a", 3000), b = t.tail_mean("b", 3000);
  EXPECT_NEAR(a / (a + b), 16.0 / 30.0, 0.02);
  EXPECT_NEAR(std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1))), 0.0896, 0.02);
}

// Pyro's scale example: guess 8.5 with prior sd 1, a measurement 9.5 with noise 0.75;
// exact posterior N(9.14, 0.6).
void scale_model(double guess) {
  const Tensor w = sample("weight", dist::Normal(scalar_tensor(guess, f64()), 1.0));
  sample("measurement", dist::Normal(w, 0.75), scalar_tensor(9.5, f64()));
}

void scale_posterior_check(bool reparam) {
  auto guide = [reparam](double guess) {
    const Tensor a = param("a", scalar_tensor(guess, f64()));
    const Tensor b = param("b", scalar_tensor(1.0, f64()), constraints::positive);
    dist::Distribution q = dist::Normal(a, b);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = true;
    sample("weight", reparam ? q : q.without_rsample(), opts);
  };
  const double exact_mean = (8.5 / 1.0 + 9.5 / 0.5625) / (1.0 + 1.0 / 0.5625);
  const double exact_sd = std::sqrt(1.0 / (1.0 + 1.0 / 0.5625));
  // A guide at the exact posterior has no KL to it: every draw's ELBO is the log evidence,
  // the measurement's N(8.5, sqrt(1 + 0.75^2)) density at 9.5.
  const double log_evidence = -0.5 * std::log(2 * M_PI * 1.5625) - 0.5 / 1.5625;
  const auto exact = [&] {
    sample("weight", dist::Normal(scalar_tensor(exact_mean, f64()), exact_sd));
  };
  for (int i = 0; i < 5; ++i)
    EXPECT_NEAR(Trace_ELBO().loss([] { scale_model(8.5); }, exact).loss.item(), -log_evidence,
                1e-12);
  SVI svi(scale_model, guide, optim::Adam({.lr = reparam ? 0.01 : 0.005}), TraceGraph_ELBO());
  Tracker t;
  const int steps = reparam ? 3000 : 8000;
  for (int i = 0; i < steps; ++i) {
    svi.step(8.5);
    t.record({"a", "b"});
  }
  EXPECT_NEAR(t.tail_mean("a", steps / 3), exact_mean, reparam ? 0.02 : 0.05);
  EXPECT_NEAR(t.tail_mean("b", steps / 3), exact_sd, reparam ? 0.02 : 0.05);
}

TEST_F(SviTest, SlowNormalNormalReparameterized) { scale_posterior_check(true); }
TEST_F(SviTest, SlowNormalNormalScoreFunction) { scale_posterior_check(false); }

// Gamma(3, 1) prior on a Poisson rate, counts 2, 4, 3, 6, 5: posterior Gamma(3 + 20, 1 + 5).
void gamma_poisson_check(bool reparam) {
  const Tensor counts = tensor({2, 4, 3, 6, 5}, f64());
  auto model = [&] {
    const Tensor rate = sample("rate", dist::Gamma(scalar_tensor(3.0, f64()), 1.0));
    auto p = plate("obs_plate", 5);
    sample("obs", dist::Poisson(rate), counts);
  };
  auto guide = [reparam] {
    const Tensor k = param("k", scalar_tensor(5.0, f64()), constraints::positive);
    const Tensor r = param("r", scalar_tensor(2.0, f64()), constraints::positive);
    dist::Distribution q = dist::Gamma(k, r);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = true;
    sample("rate", reparam ? q : q.without_rsample(), opts);
  };
  SVI svi(model, guide, optim::Adam({.lr = reparam ? 0.02 : 0.01}), TraceGraph_ELBO());
  Tracker t;
  const int steps = reparam ? 4000 : 10000;
  for (int i = 0; i < steps; ++i) {
    svi.step();
    t.record({"k", "r"});
  }
  const double k = t.tail_mean("k", steps / 3), r = t.tail_mean("r", steps / 3);
  const double tol = reparam ? 0.03 : 0.08;
  EXPECT_NEAR(k / r, 23.0 / 6.0, tol * 23.0 / 6.0) << "k " << k << " r " << r;
  EXPECT_NEAR(std::sqrt(k) / r, std::sqrt(23.0) / 6.0, 2 * tol * std::sqrt(23.0) / 6.0);
}

TEST_F(SviTest, SlowGammaPoissonReparameterized) { gamma_poisson_check(true); }
TEST_F(SviTest, SlowGammaPoissonScoreFunction) { gamma_poisson_check(false); }

TEST_F(SviTest, RunReportsProgressAndStopsOnRequest) {
  std::ostringstream out;
  int calls = 0;
  RunOptions opts;
  opts.out = &out;
  opts.progress = Progress::Lines;
  opts.print_every = 25;
  opts.callback = [&](const StepInfo& info) {
    ++calls;
    EXPECT_EQ(info.step, calls - 1);
    EXPECT_TRUE(std::isfinite(info.loss.value()));
    return info.step < 59;
  };
  auto guide = [](double guess) {
    sample("weight", dist::Normal(param("a", scalar_tensor(guess, f64())), 1.0));
  };
  SVI svi(scale_model, guide, optim::SGD({.lr = 0.01}), Trace_ELBO());
  const RunResult r = svi.run(100, opts, 8.5);
  EXPECT_EQ(r.steps, 60);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.losses.size(), 60u);
  EXPECT_EQ(calls, 60);
  EXPECT_EQ(svi.num_steps_taken(), 60);
  const std::string text = out.str();
  EXPECT_NE(text.find("step 25/100"), std::string::npos) << text;
  EXPECT_NE(text.find("step 50/100"), std::string::npos) << text;
  EXPECT_NE(text.find("steps/s"), std::string::npos) << text;
  // The loss history is the step losses, in order, matching evaluate_loss's scale.
  const double eval = svi.evaluate_loss(8.5);
  EXPECT_NEAR(eval, r.losses.back(), 5.0);
}

TEST_F(SviTest, ParamsCreatedDuringARunJoinTheOptimizer) {
  int step = 0;
  auto guide = [&](double) {
    sample("weight", dist::Normal(param("a", scalar_tensor(8.0, f64())), 1.0));
    if (step++ >= 5) param("late", scalar_tensor(1.0, f64()));
  };
  auto model = [](double guess) {
    scale_model(guess);
    if (get_param_store().contains("late")) factor("pull", -square(param("late")));
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO());
  for (int i = 0; i < 50; ++i) svi.step(8.5);
  EXPECT_EQ(svi.optimizer().step_count("a"), 50);
  EXPECT_EQ(svi.optimizer().step_count("late"), 45);  // from the sixth step on
  EXPECT_LT(param("late").item(), 0.5);
}

TEST_F(SviTest, NonFiniteLossNamesTheSite) {
  // An observation far outside a tiny scale underflows the density to -inf.
  auto model = [] {
    const Tensor w = sample("w", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    auto p = plate("data", 3);
    sample("obs", dist::Normal(w, tensor({1.0, 1e-200, 1.0}, f64())),
           tensor({0.0, 1e200, 0.0}, f64()));
  };
  auto guide = [] { sample("w", dist::Normal(param("m", scalar_tensor(0.0, f64())), 1.0)); };
  SVI svi(model, guide, optim::Adam({.lr = 0.1}), Trace_ELBO());
  try {
    svi.step();
    ADD_FAILURE() << "expected NonFiniteError";
  } catch (const NonFiniteError& e) {
    EXPECT_EQ(e.site(), "obs");
    const std::string what = e.what();
    EXPECT_NE(what.find("'obs' (model, Normal"), std::string::npos) << what;
    EXPECT_NE(what.find("index [1]"), std::string::npos) << what;
  }
  // Skipping: the step is counted, the parameter does not move.
  const double before = param("m").item();
  SVI skipping(model, guide, optim::Adam({.lr = 0.1}), Trace_ELBO(), {.skip_nonfinite = true});
  const double loss = skipping.step();
  EXPECT_FALSE(std::isfinite(loss));
  EXPECT_EQ(skipping.skipped_steps(), 1);
  EXPECT_DOUBLE_EQ(param("m").item(), before);
  EXPECT_FALSE(get_param_store().unconstrained("m").grad().defined());
}

TEST_F(SviTest, NonFiniteGradientNamesTheParam) {
  // sqrt at 0 has an infinite derivative while the loss stays finite.
  auto model = [] { factor("f", sqrt(param("p", scalar_tensor(0.0, f64())))); };
  auto guide = [] {};
  SVI svi(model, guide, optim::SGD({.lr = 0.1}), Trace_ELBO());
  EMBER_EXPECT_THROW_WITH(svi.step(), NonFiniteError, "gradient", "'p'");
}

TEST_F(SviTest, ParamStoreOptionIsolatesAFit) {
  ParamStore store;
  auto guide = [](double guess) {
    sample("weight", dist::Normal(param("a", scalar_tensor(guess, f64())), 1.0));
  };
  SVI svi(scale_model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), {.param_store = &store});
  for (int i = 0; i < 20; ++i) svi.step(8.5);
  EXPECT_TRUE(store.contains("a"));
  EXPECT_FALSE(get_param_store().contains("a"));
}

}  // namespace
}  // namespace ember
