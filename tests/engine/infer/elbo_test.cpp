// Unbiased gradients: for small models with known ELBO gradients, the mean of many estimates
// matches the analytic gradient within a few standard errors, for every estimator with
// reparameterized and score-function guides, with plates, subsampling and particles.
#include <functional>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

// Mean and standard error of each gradient component over `reps` estimates.
struct GradStats {
  std::map<std::string, double> mean, se;
};

GradStats estimate(ELBO& elbo, const std::function<void()>& model,
                   const std::function<void()>& guide, int reps) {
  std::map<std::string, std::vector<double>> samples;
  for (int r = 0; r < reps; ++r) {
    const ElboResult res = elbo.loss_and_grads(model, guide);
    for (const auto& p : res.params) {
      const auto g = p.param.grad().to_vector<double>();
      for (std::size_t i = 0; i < g.size(); ++i) {
        samples[p.name + (g.size() > 1 ? "[" + std::to_string(i) + "]" : "")].push_back(g[i]);
      }
      p.param.zero_grad();
    }
  }
  GradStats out;
  for (const auto& [name, v] : samples) {
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= v.size();
    for (double x : v) s += (x - m) * (x - m);
    out.mean[name] = m;
    out.se[name] = std::sqrt(s / (v.size() - 1) / v.size());
  }
  return out;
}

void expect_unbiased(const GradStats& got, const std::map<std::string, double>& truth,
                     const std::string& what) {
  for (const auto& [name, value] : truth) {
    ASSERT_TRUE(got.mean.count(name)) << what << ": no gradient for " << name;
    const double m = got.mean.at(name), se = got.se.at(name);
    EXPECT_NEAR(m, value, 4.5 * se + 1e-9)
        << what << ": " << name << " (standard error " << se << ")";
  }
}

// z ~ N(0, 1), x_i ~ N(z, 1) for three observations in a plate; q(z) = N(m, exp(u)).
// ELBO(m, s) = -(m^2 + s^2)/2 - sum_i ((x_i - m)^2 + s^2)/2 + log s + const, so the loss
// gradient is d/dm = 4m - sum x, d/du = s * (4s - 1/s) = 4 s^2 - 1.
struct Gaussian {
  Tensor data = tensor({0.5, 1.0, 2.0}, f64());
  double m = 0.3, s = 0.8;
  bool reparam = true;

  void model() const {
    const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    auto p = plate("data", 3);
    sample("x", dist::Normal(z, 1.0), data);
  }
  void guide() const {
    const Tensor loc = param("m", scalar_tensor(m, f64()));
    const Tensor scale = param("s", scalar_tensor(s, f64()), constraints::positive);
    dist::Distribution q = dist::Normal(loc, scale);
    sample("z", reparam ? q : q.without_rsample());
  }
  std::map<std::string, double> loss_grad() const {
    return {{"m", 4 * m - 3.5}, {"s", 4 * s * s - 1}};
  }
};

class ElboGradTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(2024);
  }
};

TEST_F(ElboGradTest, SlowTraceElboReparameterized) {
  Gaussian g;
  Trace_ELBO elbo;
  expect_unbiased(estimate(
                      elbo, [&] { g.model(); }, [&] { g.guide(); }, 3000),
                  g.loss_grad(), "Trace_ELBO reparam");
}

TEST_F(ElboGradTest, SlowTraceElboScoreFunction) {
  Gaussian g;
  g.reparam = false;
  Trace_ELBO elbo;
  expect_unbiased(estimate(
                      elbo, [&] { g.model(); }, [&] { g.guide(); }, 20000),
                  g.loss_grad(), "Trace_ELBO score function");
}

TEST_F(ElboGradTest, SlowTraceGraphElboScoreFunctionWithAndWithoutBaseline) {
  Gaussian g;
  g.reparam = false;
  TraceGraph_ELBO plain;
  expect_unbiased(estimate(
                      plain, [&] { g.model(); }, [&] { g.guide(); }, 20000),
                  g.loss_grad(), "TraceGraph_ELBO");
  // A decaying-average baseline keeps the estimate unbiased.
  auto guide_with_baseline = [&] {
    const Tensor loc = param("m", scalar_tensor(g.m, f64()));
    const Tensor scale = param("s", scalar_tensor(g.s, f64()), constraints::positive);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = true;
    sample("z", dist::Normal(loc, scale).without_rsample(), opts);
  };
  TraceGraph_ELBO with_baseline;
  expect_unbiased(estimate(
                      with_baseline, [&] { g.model(); }, guide_with_baseline, 20000),
                  g.loss_grad(), "TraceGraph_ELBO + baseline");
  EXPECT_TRUE(with_baseline.average_baseline("z").defined());
}

TEST_F(ElboGradTest, SlowMeanFieldElboIsExactWithClosedFormKl) {
  // Only the observed term is sampled; the KL part of the gradient is exact.
  Gaussian g;
  TraceMeanField_ELBO elbo;
  expect_unbiased(estimate(
                      elbo, [&] { g.model(); }, [&] { g.guide(); }, 3000),
                  g.loss_grad(), "TraceMeanField_ELBO");
  // Its loss is KL(q || p) - E log p(x | z); check the KL part against the closed form.
  g.reparam = false;
  EMBER_EXPECT_THROW_WITH(elbo.loss_and_grads([&] { g.model(); }, [&] { g.guide(); }), ValueError,
                          "guide site 'z'", "not reparameterized");
}

TEST_F(ElboGradTest, SlowVectorizedParticlesAverage) {
  Gaussian g;
  g.reparam = false;
  Trace_ELBO elbo({.num_particles = 8, .vectorize_particles = true});
  auto model = handlers::trace([&] { g.model(); });
  auto guide = handlers::trace([&] { g.guide(); });
  const ElboResult one = elbo.loss_and_grads([&] { model(); }, [&] { guide(); });
  // All particles at once: z has the particle dim (dim -2, outside the data plate's -1).
  EXPECT_EQ(guide.last_trace().at("z").value.shape(), (Shape{8, 1}));
  EXPECT_EQ(model.last_trace().at("x").log_prob().shape(), (Shape{8, 3}));
  for (const auto& p : one.params) p.param.zero_grad();
  expect_unbiased(estimate(
                      elbo, [&] { g.model(); }, [&] { g.guide(); }, 3000),
                  g.loss_grad(), "vectorized particles");
  Trace_ELBO sequential({.num_particles = 4});
  expect_unbiased(estimate(
                      sequential, [&] { g.model(); }, [&] { g.guide(); }, 5000),
                  g.loss_grad(), "sequential particles");
}

// A discrete latent: z ~ Bernoulli(0.3), x ~ N(2z - 1, 1) observed at 0.4; q(z) = Bernoulli
// (sigmoid(t)). The exact ELBO is a two-term sum, differentiated here by central differences.
TEST_F(ElboGradTest, SlowDiscreteLatentScoreFunction) {
  const double x = 0.4, t0 = 0.2;
  auto exact_elbo = [&](double t) {
    const double q1 = 1 / (1 + std::exp(-t));
    double e = 0;
    for (int z = 0; z <= 1; ++z) {
      const double q = z ? q1 : 1 - q1;
      const double lp = std::log(z ? 0.3 : 0.7) - 0.5 * (x - (2 * z - 1)) * (x - (2 * z - 1));
      e += q * (lp - std::log(q));
    }
    return e;
  };
  const double h = 1e-5;
  const double dloss = -(exact_elbo(t0 + h) - exact_elbo(t0 - h)) / (2 * h);
  auto model = [&] {
    const Tensor z = sample("z", dist::Bernoulli(scalar_tensor(0.3, f64())));
    sample("x", dist::Normal(z * 2.0 - 1.0, 1.0), scalar_tensor(x, f64()));
  };
  auto guide = [&] {
    const Tensor t = param("t", scalar_tensor(t0, f64()));
    sample("z", dist::Bernoulli::from_logits(t));
  };
  for (ELBO* elbo : std::initializer_list<ELBO*>{new Trace_ELBO(), new TraceGraph_ELBO()}) {
    std::unique_ptr<ELBO> own(elbo);
    expect_unbiased(estimate(*elbo, model, guide, 20000), {{"t", dloss}}, elbo->name());
  }
}

// With a subsampled plate the expected gradient is the full-batch one. A Delta guide makes
// the full-batch gradient deterministic: d/dm of -[log N(m; 0, 1) + sum_i log N(x_i; m, 1)].
TEST_F(ElboGradTest, SlowSubsamplingKeepsTheExpectedGradient) {
  const std::vector<double> xs = {0.1, -0.4, 1.3, 2.2, 0.7, -1.1, 0.9, 1.8, -0.2, 0.5};
  const Tensor data = from_vector(xs, {10}, f64());
  const double m0 = 0.25;
  double full = m0;
  for (double v : xs) full -= v - m0;
  auto model = [&](std::int64_t batch) {
    const Tensor z = sample("z", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    auto p = plate("data", 10, {.subsample_size = batch});
    sample("x", dist::Normal(z, 1.0), p.subsample(data));
  };
  auto guide = [&](std::int64_t) {
    sample("z", dist::Delta(param("m", scalar_tensor(m0, f64()))));
  };
  Trace_ELBO elbo;
  const GradStats all = estimate(
      elbo, [&] { model(10); }, [&] { guide(10); }, 2);
  EXPECT_NEAR(all.mean.at("m"), full, 1e-12);
  EXPECT_NEAR(all.se.at("m"), 0.0, 1e-12);
  const GradStats sub = estimate(
      elbo, [&] { model(3); }, [&] { guide(3); }, 4000);
  EXPECT_GT(sub.se.at("m"), 0.01);  // subsets differ
  expect_unbiased(sub, {{"m", full}}, "subsampled");
}

// TraceGraph_ELBO Rao-Blackwellizes by site order: a score-function site that comes after
// everything else in model and guide has no downstream cost but its own, so its gradient
// estimate is far less noisy than Trace_ELBO's, which weights it with the whole ELBO.
TEST_F(ElboGradTest, SlowTraceGraphUsesOnlyDownstreamCosts) {
  const Tensor obs = tensor({3.0, -2.0, 4.0}, f64());
  auto model = [&] {
    const Tensor b = sample("b", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    {
      auto p = plate("data", 3);
      sample("y", dist::Normal(b, 0.3), obs);
    }
    sample("a", dist::Bernoulli(scalar_tensor(0.4, f64())));
  };
  auto guide = [&] {
    sample("b", dist::Normal(param("bm", scalar_tensor(0.0, f64())), 1.0));
    sample("a", dist::Bernoulli::from_logits(param("t", scalar_tensor(0.0, f64()))));
  };
  Trace_ELBO trace_elbo;
  TraceGraph_ELBO graph_elbo;
  const GradStats wide = estimate(trace_elbo, model, guide, 3000);
  const GradStats narrow = estimate(graph_elbo, model, guide, 3000);
  // The exact gradient of the a-terms: d/dt -E_q[log p(a) - log q(a)] at t = 0.
  const double dloss = -0.5 * 0.5 * (std::log(0.4) - std::log(0.6));
  expect_unbiased(narrow, {{"t", dloss}}, "TraceGraph_ELBO");
  expect_unbiased(wide, {{"t", dloss}}, "Trace_ELBO");
  EXPECT_LT(narrow.se.at("t") * 5, wide.se.at("t"));
}

// Plate independence: a score-function site in element i of a plate sees only element i's
// costs, in both estimators.
TEST_F(ElboGradTest, SlowPlateElementsAreRaoBlackwellized) {
  const Tensor obs = tensor({0.3, 5.0, -5.0, 0.1}, f64());
  auto model = [&] {
    auto p = plate("data", 4);
    const Tensor z = sample("z", dist::Bernoulli(scalar_tensor(0.5, f64())));
    sample("x", dist::Normal(z * 2.0 - 1.0, 1.0), obs);
  };
  auto guide = [&] {
    const Tensor t = param("t", zeros({4}, f64()));
    auto p = plate("data", 4);
    sample("z", dist::Bernoulli::from_logits(t));
  };
  Trace_ELBO elbo;
  const GradStats g = estimate(elbo, model, guide, 4000);
  // Element 0's weight ignores elements 1, 2 (large costs): its noise stays small.
  EXPECT_LT(g.se.at("t[0]") * 3, g.se.at("t[1]"));
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Learned baselines: a given value that requires grad and a network registered with
// module() are both trained on (cost - baseline)^2 and keep the gradient unbiased. With the
// guide's parameters held fixed (lr 0 for them), the baseline converges to the mean cost.
TEST_F(ElboGradTest, SlowLearnedBaselinesTrainTowardsTheMeanCost) {
  const double x = 0.4;
  auto model = [&] {
    const Tensor z = sample("z", dist::Bernoulli(scalar_tensor(0.3, f64())));
    sample("x", dist::Normal(z * 2.0 - 1.0, 1.0), scalar_tensor(x, f64()));
  };
  // E_q[cost] for q(z = 1) = sigmoid(0.2), cost = log p(z) + log p(x | z) - log q(z).
  const double q1 = 1 / (1 + std::exp(-0.2));
  double mean_cost = 0;
  for (int z = 0; z <= 1; ++z) {
    const double q = z ? q1 : 1 - q1;
    mean_cost += q * (std::log(z ? 0.3 : 0.7) - 0.5 * std::log(2 * M_PI) -
                      0.5 * (x - (2 * z - 1)) * (x - (2 * z - 1)) - std::log(q));
  }
  auto per_param = [](const std::string& name) {
    return optim::SGDOptions{.lr = name == "t" ? 0.0 : 0.02};
  };

  // A given value.
  auto value_guide = [&] {
    const Tensor t = param("t", scalar_tensor(0.2, f64()));
    SampleOptions opts;
    opts.infer.baseline.baseline_value = param("b", scalar_tensor(0.0, f64()));
    sample("z", dist::Bernoulli::from_logits(t), opts);
  };
  SVI svi(model, value_guide, optim::SGD(per_param), TraceGraph_ELBO());
  double b = 0;
  for (int i = 0; i < 4000; ++i) {
    svi.step();
    if (i >= 2000) b += param("b").item() / 2000;
  }
  EXPECT_NEAR(b, mean_cost, 0.05);

  // A network (Linear(1, 1) of a constant input): its output converges likewise.
  auto net = std::make_shared<nn::Linear>(1, 1, true, f64());
  const Tensor input = ones({1}, f64());
  auto nn_guide = [&] {
    module("baseline_net", *net);
    const Tensor t = param("t", scalar_tensor(0.2, f64()));
    SampleOptions opts;
    opts.infer.baseline.nn_baseline = net;
    opts.infer.baseline.nn_baseline_input = input;
    sample("z", dist::Bernoulli::from_logits(t), opts);
  };
  SVI nn_svi(model, nn_guide, optim::SGD(per_param), TraceGraph_ELBO());
  double out = 0;
  for (int i = 0; i < 4000; ++i) {
    nn_svi.step();
    if (i >= 2000) out += (*net)(input).item() / 2000;
  }
  EXPECT_NEAR(out, mean_cost, 0.05);

  // Unbiased with the learned baseline in place.
  TraceGraph_ELBO elbo;
  const double h = 1e-5;
  auto exact = [&](double t) {
    const double p1 = 1 / (1 + std::exp(-t));
    double e = 0;
    for (int z = 0; z <= 1; ++z) {
      const double q = z ? p1 : 1 - p1;
      e +=
          q * (std::log(z ? 0.3 : 0.7) - 0.5 * (x - (2 * z - 1)) * (x - (2 * z - 1)) - std::log(q));
    }
    return e;
  };
  const double dloss = -(exact(0.2 + h) - exact(0.2 - h)) / (2 * h);
  const GradStats g = estimate(elbo, model, value_guide, 20000);
  expect_unbiased(g, {{"t", dloss}}, "learned baseline");
  // Both at once is refused.
  auto both = [&] {
    SampleOptions opts;
    opts.infer.baseline.nn_baseline = net;
    opts.infer.baseline.nn_baseline_input = input;
    opts.infer.baseline.baseline_value = scalar_tensor(0.0, f64());
    sample("z", dist::Bernoulli::from_logits(param("t", scalar_tensor(0.2, f64()))), opts);
  };
  EMBER_EXPECT_THROW_WITH(elbo.loss_and_grads(model, both), ValueError, "site 'z'",
                          "nn_baseline and baseline_value");
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// Sequential plates: the sites of one iteration are independent of another iteration's, so
// TraceGraph_ELBO leaves the noisy second iteration out of the first one's cost (Trace_ELBO
// cannot: a sequential plate owns no dim to sum over).
TEST_F(ElboGradTest, SlowTraceGraphTreatsSequentialIterationsAsIndependent) {
  const Tensor obs = tensor({0.2, 6.0}, f64());
  auto model = [&] {
    for (std::int64_t i : sequential_plate("points", 2)) {
      const Tensor z = sample("z_" + std::to_string(i), dist::Bernoulli(scalar_tensor(0.5, f64())));
      sample("x_" + std::to_string(i), dist::Normal(z * 2.0 - 1.0, 0.5), obs.select(0, i));
    }
  };
  auto guide = [&] {
    const Tensor t = param("t", zeros({2}, f64()));
    for (std::int64_t i : sequential_plate("points", 2)) {
      sample("z_" + std::to_string(i), dist::Bernoulli::from_logits(t.select(0, i)));
    }
  };
  Trace_ELBO trace_elbo;
  TraceGraph_ELBO graph_elbo;
  const GradStats wide = estimate(trace_elbo, model, guide, 3000);
  const GradStats narrow = estimate(graph_elbo, model, guide, 3000);
  EXPECT_LT(narrow.se.at("t[0]") * 5, wide.se.at("t[0]"));
  // Unbiased: the exact gradient of element 0's ELBO in t_0 at t = 0.
  auto elbo0 = [&](double t) {
    const double q1 = 1 / (1 + std::exp(-t));
    double e = 0;
    for (int z = 0; z <= 1; ++z) {
      const double q = z ? q1 : 1 - q1;
      const double r = (0.2 - (2 * z - 1)) / 0.5;
      e += q * (std::log(0.5) - 0.5 * r * r - std::log(q));
    }
    return e;
  };
  const double h = 1e-5;
  expect_unbiased(narrow, {{"t[0]", -(elbo0(h) - elbo0(-h)) / (2 * h)}}, "sequential plate");
}

}  // namespace
}  // namespace ember
