// Enumeration in the guide: TraceEnum_ELBO's estimate is the exact expectation under the
// guide's enumerated (parallel or sequential) sites, alone or mixed with the model's
// enumerated sites and with sites drawn by the score function; its gradients match finite
// differences of that expectation (and are unbiased where a site is drawn), and what cannot
// be summed is refused with the site named.
#include <cmath>
#include <functional>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;
using test::log_normal;
using test::logsumexp;

class EnumGuideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(2025);
  }
};

std::vector<double> softmax(const std::vector<double>& logits) {
  const double z = logsumexp(logits);
  std::vector<double> out;
  for (double l : logits) out.push_back(std::exp(l - z));
  return out;
}
double sigmoid(double a) { return 1 / (1 + std::exp(-a)); }

const SampleOptions kParallel{.infer = {.enumerate = Enumerate::Parallel}};
const SampleOptions kSequential{.infer = {.enumerate = Enumerate::Sequential}};

const std::vector<double> kX = {-1.2, 0.3, 2.5, 1.9, -0.4};
const std::vector<double> kW = {0.3, 0.7};

// Model: z_i ~ Categorical(w), x_i ~ Normal(locs[z_i], 1) (z_i marked for enumeration, which
// the guide's z_i overrides). Guide: z_i ~ Categorical(softmax(logits_i)), enumerated.
void mixture_model() {
  const Tensor locs = param("locs", tensor({-0.5, 1.5}, f64()));
  auto data = plate("data", 5);
  const Tensor z = sample("z", dist::Categorical(tensor({0.3, 0.7}, f64())), kParallel);
  sample("x", dist::Normal(index_rows(locs, z), 1.0), from_vector(kX, {5}, f64()));
}
const std::vector<double> kLogits = {0.2, -0.1, 0.4, 0.0, -0.3, 0.6, 1.0, -1.0, 0.1, 0.5};
void mixture_guide() {
  const Tensor logits = param("logits", from_vector(kLogits, {5, 2}, f64()));
  auto data = plate("data", 5);
  sample("z", dist::Categorical::from_logits(logits), kParallel);
}
// Σ_i Σ_k q_ik (log w_k + log N(x_i; loc_k, 1) - log q_ik).
double mixture_elbo(const std::vector<double>& logits, const std::vector<double>& locs) {
  double total = 0;
  for (std::size_t i = 0; i < kX.size(); ++i) {
    const std::vector<double> q = softmax({logits[2 * i], logits[2 * i + 1]});
    for (int k = 0; k < 2; ++k) {
      total += q[k] * (std::log(kW[k]) + log_normal(kX[i], locs[k], 1) - std::log(q[k]));
    }
  }
  return total;
}

TEST_F(EnumGuideTest, GuideEnumeratedAssignmentsGiveTheExactExpectation) {
  TraceEnum_ELBO elbo({.max_plate_nesting = 1});
  const double loss = elbo.loss_and_grads(mixture_model, mixture_guide).loss.item();
  EXPECT_NEAR(-loss, mixture_elbo(kLogits, {-0.5, 1.5}), 1e-12);
  const double h = 1e-6;
  const Tensor g_logits = get_param_store().unconstrained("logits").grad().reshape({-1});
  for (int j = 0; j < 10; ++j) {
    std::vector<double> up = kLogits, down = kLogits;
    up[j] += h;
    down[j] -= h;
    const double fd = -(mixture_elbo(up, {-0.5, 1.5}) - mixture_elbo(down, {-0.5, 1.5})) / (2 * h);
    EXPECT_NEAR(g_logits.select(0, j).item(), fd, 1e-7) << j;
  }
  const Tensor g_locs = get_param_store().unconstrained("locs").grad();
  for (int k = 0; k < 2; ++k) {
    std::vector<double> up = {-0.5, 1.5}, down = up;
    up[k] += h;
    down[k] -= h;
    const double fd = -(mixture_elbo(kLogits, up) - mixture_elbo(kLogits, down)) / (2 * h);
    EXPECT_NEAR(g_locs.select(0, k).item(), fd, 1e-7) << k;
  }
}

// In a subsampled plate each point's expectation is scaled by size / subsample size; the
// guide's probabilities weigh the points unscaled.
TEST_F(EnumGuideTest, SubsampledGuideEnumerationScalesEachPoint) {
  const Tensor batch = test::index_tensor({1, 3});
  auto model = [&batch] {
    const Tensor locs = param("locs", tensor({-0.5, 1.5}, f64()));
    auto data = plate("data", 5, {.subsample = batch});
    const Tensor z = sample("z", dist::Categorical(tensor({0.3, 0.7}, f64())));
    sample("x", dist::Normal(index_rows(locs, z), 1.0),
           data.subsample(from_vector(kX, {5}, f64())));
  };
  auto guide = [&batch] {
    const Tensor logits = param("logits", from_vector(kLogits, {5, 2}, f64()));
    auto data = plate("data", 5, {.subsample = batch});
    sample("z", dist::Categorical::from_logits(data.subsample(logits)), kParallel);
  };
  double want = 0;
  for (int i : {1, 3}) {
    const std::vector<double> q = softmax({kLogits[2 * i], kLogits[2 * i + 1]});
    for (int k = 0; k < 2; ++k) {
      want += 2.5 * q[k] *
              (std::log(kW[k]) + log_normal(kX[i], k == 0 ? -0.5 : 1.5, 1) - std::log(q[k]));
    }
  }
  EXPECT_NEAR(-TraceEnum_ELBO({.max_plate_nesting = 1}).loss(model, guide).loss.item(), want,
              1e-12);
}

// A global switch c enumerated in the guide, each point's z_i enumerated in the model:
// Σ_c q(c) [log p(c) - log q(c) + Σ_i log Σ_z w[c][z] N(x_i; locs[z], 1)].
const double kWeights[2][2] = {{0.2, 0.8}, {0.9, 0.1}};
const double kLocs[2] = {-1.0, 2.0};
void switch_model() {
  const Tensor c = sample("c", dist::Bernoulli(scalar_tensor(0.3, f64())));
  auto data = plate("data", 5);
  const Tensor w = index_rows(tensor({{0.2, 0.8}, {0.9, 0.1}}, f64()), c.to(kInt64));
  const Tensor z = sample("z", dist::Categorical(w), kParallel);
  sample("x", dist::Normal(index_rows(tensor({-1.0, 2.0}, f64()), z), 1.0),
         from_vector(kX, {5}, f64()));
}
double switch_elbo(double a) {
  double total = 0;
  for (int c = 0; c < 2; ++c) {
    const double q = c == 1 ? sigmoid(a) : 1 - sigmoid(a);
    double lp = std::log(c == 1 ? 0.3 : 0.7) - std::log(q);
    for (double x : kX) {
      lp += logsumexp({std::log(kWeights[c][0]) + log_normal(x, kLocs[0], 1),
                       std::log(kWeights[c][1]) + log_normal(x, kLocs[1], 1)});
    }
    total += q * lp;
  }
  return total;
}

TEST_F(EnumGuideTest, GuideAndModelEnumerationMix) {
  for (const SampleOptions& how : {kParallel, kSequential}) {
    clear_param_store();
    auto guide = [&how] {
      const Tensor a = param("a", scalar_tensor(0.4, f64()));
      sample("c", dist::Bernoulli::from_logits(a), how);
    };
    TraceEnum_ELBO elbo({.max_plate_nesting = 1});
    const double loss = elbo.loss_and_grads(switch_model, guide).loss.item();
    EXPECT_NEAR(-loss, switch_elbo(0.4), 1e-12);
    const double h = 1e-6;
    const double fd = -(switch_elbo(0.4 + h) - switch_elbo(0.4 - h)) / (2 * h);
    EXPECT_NEAR(get_param_store().unconstrained("a").grad().item(), fd, 1e-7);
  }
}

// config_enumerate marks the guide's discrete sites the same way as the site option.
TEST_F(EnumGuideTest, ConfigEnumerateMarksGuideSitesSequentialOrParallel) {
  auto plain = [] {
    sample("c", dist::Bernoulli::from_logits(param("a", scalar_tensor(0.4, f64()))));
  };
  for (Enumerate how : {Enumerate::Parallel, Enumerate::Sequential}) {
    clear_param_store();
    const double loss = TraceEnum_ELBO({.max_plate_nesting = 1})
                            .loss(switch_model, config_enumerate(plain, how))
                            .loss.item();
    EXPECT_NEAR(-loss, switch_elbo(0.4), 1e-12);
  }
}

// At the exact posterior of the switch the estimate is the log marginal itself.
TEST_F(EnumGuideTest, TheExactPosteriorGuideGivesTheLogMarginal) {
  std::vector<double> joint;
  for (int c = 0; c < 2; ++c) {
    double lp = std::log(c == 1 ? 0.3 : 0.7);
    for (double x : kX) {
      lp += logsumexp({std::log(kWeights[c][0]) + log_normal(x, kLocs[0], 1),
                       std::log(kWeights[c][1]) + log_normal(x, kLocs[1], 1)});
    }
    joint.push_back(lp);
  }
  const double evidence = logsumexp(joint);
  const double posterior_logit = joint[1] - joint[0];
  auto guide = [posterior_logit] {
    sample("c", dist::Bernoulli::from_logits(scalar_tensor(posterior_logit, f64())), kParallel);
  };
  EXPECT_NEAR(-TraceEnum_ELBO({.max_plate_nesting = 1}).loss(switch_model, guide).loss.item(),
              evidence, 1e-10);
}

// Sequential sites whose presence depends on earlier values: three runs, (c = 0),
// (c = 1, d = 0), (c = 1, d = 1), each weighted by its probability under the guide.
TEST_F(EnumGuideTest, SequentialSitesFollowTheProgramsBranches) {
  auto model = [] {
    const Tensor c = sample("c", dist::Bernoulli(scalar_tensor(0.3, f64())));
    double loc = 0.0;
    if (c.item() == 1.0) {
      const Tensor d = sample("d", dist::Bernoulli(scalar_tensor(0.5, f64())));
      loc = d.item() == 1.0 ? 3.0 : -2.0;
    }
    sample("x", dist::Normal(scalar_tensor(loc, f64()), 1.0), scalar_tensor(1.0, f64()));
  };
  int runs = 0;
  auto guide = [&runs] {
    ++runs;
    const Tensor a = param("a", scalar_tensor(-0.2, f64()));
    const Tensor b = param("b", scalar_tensor(0.7, f64()));
    const Tensor c = sample("c", dist::Bernoulli::from_logits(a), kSequential);
    if (c.item() == 1.0) sample("d", dist::Bernoulli::from_logits(b), kSequential);
  };
  auto exact = [](double a, double b) {
    const double qc = sigmoid(a), qd = sigmoid(b);
    double total = (1 - qc) * (std::log(0.7) - std::log(1 - qc) + log_normal(1.0, 0.0, 1));
    for (int d = 0; d < 2; ++d) {
      const double q = d == 1 ? qd : 1 - qd;
      total += qc * q *
               (std::log(0.3) + std::log(0.5) - std::log(qc) - std::log(q) +
                log_normal(1.0, d == 1 ? 3.0 : -2.0, 1));
    }
    return total;
  };
  TraceEnum_ELBO elbo({.max_plate_nesting = 0});
  const double loss = elbo.loss_and_grads(model, guide).loss.item();
  EXPECT_EQ(runs, 3);
  EXPECT_NEAR(-loss, exact(-0.2, 0.7), 1e-12);
  const double h = 1e-6;
  EXPECT_NEAR(get_param_store().unconstrained("a").grad().item(),
              -(exact(-0.2 + h, 0.7) - exact(-0.2 - h, 0.7)) / (2 * h), 1e-7);
  EXPECT_NEAR(get_param_store().unconstrained("b").grad().item(),
              -(exact(-0.2, 0.7 + h) - exact(-0.2, 0.7 - h)) / (2 * h), 1e-7);
}

// A guide site drawn by the score function next to an enumerated one, with vectorized
// particles: the mean gradient over many particles is the exact one.
TEST_F(EnumGuideTest, ScoreFunctionSitesBesideEnumeratedOnesAreUnbiased) {
  auto model = [] {
    const Tensor c = sample("c", dist::Bernoulli(scalar_tensor(0.3, f64())));
    const Tensor b = sample("b", dist::Bernoulli(scalar_tensor(0.6, f64())));
    const Tensor mu = add(index_rows(tensor({-1.0, 2.0}, f64()), c.to(kInt64)), mul(b, 2.0));
    sample("x", dist::Normal(mu, 1.0), scalar_tensor(1.0, f64()));
  };
  auto guide = [] {
    sample("c", dist::Bernoulli::from_logits(param("a", scalar_tensor(0.5, f64()))), kParallel);
    sample("b", dist::Bernoulli::from_logits(param("beta", scalar_tensor(-0.3, f64()))));
  };
  auto exact = [](double a, double beta) {
    double total = 0;
    for (int c = 0; c < 2; ++c) {
      for (int b = 0; b < 2; ++b) {
        const double qc = c == 1 ? sigmoid(a) : 1 - sigmoid(a);
        const double qb = b == 1 ? sigmoid(beta) : 1 - sigmoid(beta);
        total += qc * qb *
                 (std::log(c == 1 ? 0.3 : 0.7) + std::log(b == 1 ? 0.6 : 0.4) - std::log(qc) -
                  std::log(qb) + log_normal(1.0, (c == 1 ? 2.0 : -1.0) + 2.0 * b, 1));
      }
    }
    return total;
  };
  TraceEnum_ELBO elbo(
      {.num_particles = 40000, .vectorize_particles = true, .max_plate_nesting = 0});
  const double loss = elbo.loss_and_grads(model, guide).loss.item();
  EXPECT_NEAR(-loss, exact(0.5, -0.3), 0.03);
  const double h = 1e-6;
  EXPECT_NEAR(get_param_store().unconstrained("a").grad().item(),
              -(exact(0.5 + h, -0.3) - exact(0.5 - h, -0.3)) / (2 * h), 0.02);
  // The score function's spread here is about 1.5 per particle: 4 standard errors.
  EXPECT_NEAR(get_param_store().unconstrained("beta").grad().item(),
              -(exact(0.5, -0.3 + h) - exact(0.5, -0.3 - h)) / (2 * h), 0.03);
}

// SVI with the assignments enumerated in the guide fits the mixture's locations and each
// point's responsibilities; compiled steps equal the eager ones.
TEST_F(EnumGuideTest, SviFitsWithGuideEnumerationCompiledOrNot) {
  auto run = [](bool compiled) {
    clear_param_store();
    SVI svi(mixture_model, mixture_guide, optim::Adam({.lr = 0.05}),
            TraceEnum_ELBO({.max_plate_nesting = 1}));
    if (compiled) svi.compile({});
    std::vector<double> losses;
    for (int i = 0; i < 400; ++i) losses.push_back(svi.step());
    return losses;
  };
  const std::vector<double> eager = run(false);
  // At the optimum over the guide, q is each point's posterior, and the loss is the log
  // marginal's at the fitted locations.
  const std::vector<double> locs = param("locs").to_vector<double>();
  double marginal = 0;
  for (double x : kX) {
    marginal += logsumexp(
        {std::log(0.3) + log_normal(x, locs[0], 1), std::log(0.7) + log_normal(x, locs[1], 1)});
  }
  EXPECT_NEAR(-eager.back(), marginal, 0.02);
  EXPECT_LT(eager.back(), eager.front());
  EXPECT_EQ(run(true), eager);
}

// A value the guide never takes weighs nothing, though the model gives it log-density -inf:
// the estimate and its gradients stay finite.
TEST_F(EnumGuideTest, ValuesTheGuideNeverTakesWeighNothing) {
  auto model = [] {
    const Tensor loc = param("loc", scalar_tensor(0.5, f64()));
    const Tensor c = sample("c", dist::Categorical(tensor({0.6, 0.4, 0.0}, f64())));
    sample("x", dist::Normal(add(loc, c.to(kFloat64)), 1.0), scalar_tensor(1.0, f64()));
  };
  auto guide = [] { sample("c", dist::Categorical(tensor({0.5, 0.5, 0.0}, f64())), kParallel); };
  TraceEnum_ELBO elbo({.max_plate_nesting = 0});
  const double loss = elbo.loss_and_grads(model, guide).loss.item();
  const double exact = 0.5 * (std::log(0.6) - std::log(0.5) + log_normal(1.0, 0.5, 1)) +
                       0.5 * (std::log(0.4) - std::log(0.5) + log_normal(1.0, 1.5, 1));
  EXPECT_NEAR(-loss, exact, 1e-12);
  // d/dloc: 0.5 (1 - 0.5) + 0.5 (1 - 1.5) = 0.
  const double grad = get_param_store().unconstrained("loc").grad().item();
  EXPECT_TRUE(std::isfinite(grad));
  EXPECT_NEAR(grad, 0.0, 1e-12);
}

void expect_error(const std::function<void()>& model, const std::function<void()>& guide,
                  int nesting, const std::vector<std::string>& words) {
  try {
    TraceEnum_ELBO({.max_plate_nesting = nesting}).loss(model, guide);
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    for (const std::string& w : words) {
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << w << ": " << e.what();
    }
  }
}

TEST_F(EnumGuideTest, WhatCannotBeSummedIsNamed) {
  // Sequential enumeration is for the guide.
  expect_error([] { sample("s", dist::Bernoulli(scalar_tensor(0.5, f64())), kSequential); }, [] {},
               0, {"'s'", "Sequential", "Parallel"});
  // A sequential site takes one value per run.
  expect_error(
      [] {
        auto p = plate("p", 3);
        sample("s", dist::Bernoulli(scalar_tensor(0.5, f64())));
      },
      [] {
        auto p = plate("p", 3);
        sample("s", dist::Bernoulli(scalar_tensor(0.5, f64())), kSequential);
      },
      1, {"'s'", "(3)", "Parallel"});
  // With vectorized particles a sequential site would take one value for every particle.
  try {
    TraceEnum_ELBO({.num_particles = 4, .vectorize_particles = true, .max_plate_nesting = 0})
        .loss([] { sample("s", dist::Bernoulli(scalar_tensor(0.5, f64()))); },
              [] { sample("s", dist::Bernoulli(scalar_tensor(0.5, f64())), kSequential); });
    ADD_FAILURE() << "no exception";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("vectorize_particles"), std::string::npos) << e.what();
  }
  // A guide-enumerated site local to a plate cannot meet a model-enumerated global one.
  expect_error(
      [] {
        const Tensor g = sample("g", dist::Bernoulli(scalar_tensor(0.5, f64())), kParallel);
        auto p = plate("p", 3);
        const Tensor c = sample("c", dist::Bernoulli(scalar_tensor(0.5, f64())));
        sample("x", dist::Normal(add(g, c), 1.0), tensor({0.1, 0.2, 0.3}, f64()));
      },
      [] {
        auto p = plate("p", 3);
        sample("c", dist::Bernoulli(scalar_tensor(0.5, f64())), kParallel);
      },
      1, {"'c'", "'g'", "'p'"});
  // Enumerating a chain's sites belongs in the model.
  expect_error(
      [] {
        for (std::int64_t t : markov(3)) {
          sample("z_" + std::to_string(t), dist::Bernoulli(scalar_tensor(0.5, f64())));
        }
      },
      [] {
        for (std::int64_t t : markov(3)) {
          sample("z_" + std::to_string(t), dist::Bernoulli(scalar_tensor(0.5, f64())), kParallel);
        }
      },
      0, {"'z_0'", "markov", "model"});
}

}  // namespace
}  // namespace ember
