// Enumeration: TraceEnum_ELBO's loss equals minus the exact log marginal likelihood computed
// by brute force (mixtures, a global discrete site over a plate, nested plates, HMMs along
// markov scopes, subsampling), its gradients match finite differences of that marginal, and
// infer_discrete equals the brute-force MAP and posterior frequencies.
#include <cmath>
#include <functional>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;
using test::log_normal;
using test::logsumexp;

class EnumTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(2024);
  }
};

// -loss of TraceEnum_ELBO for a model without latents in the guide.
double enum_log_marginal(const std::function<void()>& model, int nesting) {
  TraceEnum_ELBO elbo({.max_plate_nesting = nesting});
  return -elbo.loss(model, [] {}).loss.item();
}

const std::vector<double> kX = {-1.2, 0.3, 2.5, 1.9, -0.4};

// z_i ~ Categorical(w), x_i ~ Normal(locs[z_i], 1).
void mixture(const Tensor& w, const Tensor& locs) {
  auto data = plate("data", 5);
  const Tensor z =
      sample("z", dist::Categorical(w), SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
  sample("x", dist::Normal(index_rows(locs, z), 1.0), tensor({-1.2, 0.3, 2.5, 1.9, -0.4}, f64()));
}

double mixture_brute(const std::vector<double>& w, const std::vector<double>& locs) {
  double total = 0;
  for (double x : kX) {
    std::vector<double> terms;
    for (std::size_t k = 0; k < w.size(); ++k)
      terms.push_back(std::log(w[k]) + log_normal(x, locs[k], 1));
    total += logsumexp(terms);
  }
  return total;
}

TEST_F(EnumTest, MixtureLossIsTheExactLogMarginal) {
  const Tensor w = tensor({0.2, 0.5, 0.3}, f64()), locs = tensor({-1.0, 0.5, 2.0}, f64());
  EXPECT_NEAR(enum_log_marginal([&] { mixture(w, locs); }, 1),
              mixture_brute({0.2, 0.5, 0.3}, {-1.0, 0.5, 2.0}), 1e-10);
}

TEST_F(EnumTest, ConfigEnumerateMarksEveryDiscreteSite) {
  const Tensor w = tensor({0.4, 0.6}, f64()), locs = tensor({-1.0, 1.5}, f64());
  auto plain = [&] {
    auto data = plate("data", 5);
    const Tensor z = sample("z", dist::Categorical(w));
    sample("x", dist::Normal(index_rows(locs, z), 1.0), tensor({-1.2, 0.3, 2.5, 1.9, -0.4}, f64()));
  };
  EXPECT_NEAR(enum_log_marginal(config_enumerate(plain), 1), mixture_brute({0.4, 0.6}, {-1.0, 1.5}),
              1e-10);
}

// A global switch c ~ Bernoulli(0.3) chooses the mixture weights of every point.
TEST_F(EnumTest, AGlobalDiscreteSiteOverAPlate) {
  const Tensor weights = tensor({{0.9, 0.1}, {0.2, 0.8}}, f64());
  const Tensor locs = tensor({-1.0, 2.0}, f64());
  auto model = [&] {
    const Tensor c = sample("c", dist::Bernoulli(scalar_tensor(0.3, f64())),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    auto data = plate("data", 5);
    const Tensor z = sample("z", dist::Categorical(index_rows(weights, c.to(kInt64))),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x", dist::Normal(index_rows(locs, z), 1.0), tensor({-1.2, 0.3, 2.5, 1.9, -0.4}, f64()));
  };
  std::vector<double> by_c;
  const double pc[2] = {0.7, 0.3};
  const double w[2][2] = {{0.9, 0.1}, {0.2, 0.8}};
  for (int c = 0; c < 2; ++c) {
    double s = std::log(pc[c]);
    for (double x : kX) {
      s += logsumexp(
          {std::log(w[c][0]) + log_normal(x, -1, 1), std::log(w[c][1]) + log_normal(x, 2, 1)});
    }
    by_c.push_back(s);
  }
  EXPECT_NEAR(enum_log_marginal(model, 1), logsumexp(by_c), 1e-10);
}

// Two groups (plate "a"), each with its own z_a ~ Bernoulli(0.4), three points each (plate
// "b" inside): x_ab ~ Normal(mu[z_a], 1).
TEST_F(EnumTest, NestedPlates) {
  const Tensor x = tensor({{0.1, -0.5, 0.4}, {2.2, 1.7, 2.9}}, f64());
  const Tensor mu = tensor({0.0, 2.0}, f64());
  auto model = [&] {
    auto a = plate("a", 2, {.dim = -2});
    const Tensor z = sample("z", dist::Bernoulli(scalar_tensor(0.4, f64())),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    auto b = plate("b", 3, {.dim = -1});
    sample("x", dist::Normal(index_rows(mu, z.to(kInt64)), 1.0), x);
  };
  const std::vector<std::vector<double>> xs = {{0.1, -0.5, 0.4}, {2.2, 1.7, 2.9}};
  double want = 0;
  for (const auto& row : xs) {
    std::vector<double> by_z;
    for (int z = 0; z < 2; ++z) {
      double s = std::log(z == 1 ? 0.4 : 0.6);
      for (double v : row) s += log_normal(v, z == 1 ? 2.0 : 0.0, 1);
      by_z.push_back(s);
    }
    want += logsumexp(by_z);
  }
  EXPECT_NEAR(enum_log_marginal(model, 2), want, 1e-10);
}

// One-hot rows of a two-valued index: shaped index.shape + (2, 1), for picking a row.
Tensor one_hot(const Tensor& index) { return index_rows(eye(2, f64()), index).unsqueeze(-1); }

// A two-state HMM along a markov scope: z_t ~ Categorical(trans[z_{t-1}]), x_t ~ N(locs[z_t], 1).
const std::vector<double> kSeq = {-0.8, -1.1, 1.9, 2.3, 2.1, -0.9, 0.2, 1.8};
void hmm(const Tensor& trans, const Tensor& locs, std::int64_t steps) {
  Tensor z = scalar_tensor(0.0, TensorOptions{kInt64});
  for (std::int64_t t : markov(steps)) {
    z = sample("z_" + std::to_string(t), dist::Categorical(index_rows(trans, z)),
               SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x_" + std::to_string(t), dist::Normal(index_rows(locs, z), 1.0),
           scalar_tensor(kSeq[t], f64()));
  }
}

double hmm_brute(const double trans[2][2], const double locs[2], int steps) {
  std::vector<double> paths;
  for (int code = 0; code < (1 << steps); ++code) {
    double s = 0;
    int prev = 0;
    for (int t = 0; t < steps; ++t) {
      const int z = (code >> t) & 1;
      s += std::log(trans[prev][z]) + log_normal(kSeq[t], locs[z], 1);
      prev = z;
    }
    paths.push_back(s);
  }
  return logsumexp(paths);
}

TEST_F(EnumTest, HmmAlongAMarkovScopeIsTheExactMarginal) {
  const double trans[2][2] = {{0.8, 0.2}, {0.3, 0.7}};
  const double locs[2] = {-1.0, 2.0};
  const Tensor t = tensor({{0.8, 0.2}, {0.3, 0.7}}, f64()), l = tensor({-1.0, 2.0}, f64());
  for (int steps : {1, 2, 5, 8}) {
    EXPECT_NEAR(enum_log_marginal([&] { hmm(t, l, steps); }, 0), hmm_brute(trans, locs, steps),
                1e-9)
        << steps << " steps";
  }
}

// A second-order chain (history 2): z_t ~ Categorical(trans[z_{t-2}, z_{t-1}]).
TEST_F(EnumTest, ASecondOrderChain) {
  const double p[2][2][2] = {{{0.9, 0.1}, {0.4, 0.6}}, {{0.3, 0.7}, {0.5, 0.5}}};
  const Tensor trans = tensor({0.9, 0.1, 0.4, 0.6, 0.3, 0.7, 0.5, 0.5}, f64()).reshape({2, 2, 2});
  const Tensor locs = tensor({-1.0, 2.0}, f64());
  const int steps = 6;
  auto model = [&] {
    Tensor prev2 = scalar_tensor(0.0, TensorOptions{kInt64});
    Tensor prev1 = prev2;
    for (std::int64_t t : markov(steps, 2)) {
      const Tensor rows = index_rows(trans, prev2);  // (..., 2, 2)
      // rows[..., prev1, :]: the row of each prev1 value.
      const Tensor probs = sum(mul(rows, one_hot(prev1)), {-2});
      const Tensor z = sample("z_" + std::to_string(t), dist::Categorical(probs),
                              SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
      sample("x_" + std::to_string(t), dist::Normal(index_rows(locs, z), 1.0),
             scalar_tensor(kSeq[t], f64()));
      prev2 = prev1;
      prev1 = z;
    }
  };
  std::vector<double> paths;
  for (int code = 0; code < (1 << steps); ++code) {
    double s = 0;
    int a = 0, b = 0;
    for (int t = 0; t < steps; ++t) {
      const int z = (code >> t) & 1;
      s += std::log(p[a][b][z]) + log_normal(kSeq[t], z == 1 ? 2.0 : -1.0, 1);
      a = b;
      b = z;
    }
    paths.push_back(s);
  }
  EXPECT_NEAR(enum_log_marginal(model, 0), logsumexp(paths), 1e-9);
}

TEST_F(EnumTest, AnHmmReusesItsDimsAlongTheChain) {
  // Two dims serve a chain of any length (history 1): the model's values never have more.
  const Tensor t = tensor({{0.8, 0.2}, {0.3, 0.7}}, f64()), l = tensor({-1.0, 2.0}, f64());
  handlers::TraceHandler tracer;
  {
    handlers::EnumHandler enumerate(-1);
    hmm(t, l, 8);
  }
  for (const Site& s : tracer.trace()) {
    if (s.infer.enum_dim != 0) {
      EXPECT_GE(s.infer.enum_dim, -2) << s.name;
    }
  }
}

// Four sequences (a plate) of a three-state HMM whose emissions a global enumerated switch
// shifts: the switch is a batch dim of the chain's contraction.
void switched_hmm(const Tensor& x, DType dtype) {
  const TensorOptions o{dtype};
  const Tensor trans =
      param("trans", tensor({{0.7, 0.2, 0.1}, {0.1, 0.8, 0.1}, {0.3, 0.3, 0.4}}, o),
            constraints::simplex);
  const Tensor locs = param("locs", tensor({-2.0, 0.5, 3.0}, o));
  const Tensor shift = index_rows(tensor({0.0, 0.7}, o),
                                  sample("g", dist::Bernoulli(scalar_tensor(0.4, o)),
                                         SampleOptions{.infer = {.enumerate = Enumerate::Parallel}})
                                      .to(kInt64));
  auto seqs = plate("seqs", x.size(0), {.dim = -1});
  Tensor z = zeros({x.size(0)}, TensorOptions{kInt64});
  for (std::int64_t t : markov(x.size(1))) {
    z = sample("z_" + std::to_string(t), dist::Categorical(index_rows(trans, z)),
               SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x_" + std::to_string(t), dist::Normal(add(index_rows(locs, z), shift), 0.5),
           x.select(1, t));
  }
}

// The parallel scan (pairwise products of the transition matrices) gives the step-by-step
// contraction's value and gradients, for chains of odd and even lengths, with a plate and an
// outer enumerated site as batch dims.
TEST_F(EnumTest, AParallelScanEqualsTheStepByStepContraction) {
  for (std::int64_t steps : {2, 3, 8, 13}) {
    const Tensor x = test::uniform({4, steps}, -3.0, 4.0);
    auto run = [&](ChainScan scan) {
      clear_param_store();
      TraceEnum_ELBO elbo({.max_plate_nesting = 1}, scan);
      const double loss =
          elbo.loss_and_grads([&] { switched_hmm(x, kFloat64); }, [] {}).loss.item();
      std::vector<double> out{loss};
      for (const char* name : {"trans", "locs"}) {
        for (double g : get_param_store().unconstrained(name).grad().to_vector<double>()) {
          out.push_back(g);
        }
      }
      return out;
    };
    const std::vector<double> sequential = run(ChainScan::Sequential);
    const std::vector<double> parallel = run(ChainScan::Parallel);
    ASSERT_EQ(sequential.size(), parallel.size());
    for (std::size_t i = 0; i < sequential.size(); ++i) {
      EXPECT_NEAR(parallel[i], sequential[i], 1e-10 * (1 + std::abs(sequential[i])))
          << steps << " steps, entry " << i;
    }
  }
}

// A long chain in float32 whose path probabilities underflow in linear space: the scan's
// products stay finite and match the float64 contraction.
TEST_F(EnumTest, AParallelScanIsStableInFloat32) {
  const Tensor x = test::uniform({4, 300}, -3.0, 4.0);
  auto loss = [&](ChainScan scan, DType dtype) {
    clear_param_store();
    return TraceEnum_ELBO({.max_plate_nesting = 1}, scan)
        .loss([&] { switched_hmm(x.to(dtype), dtype); }, [] {})
        .loss.item();
  };
  const double want = loss(ChainScan::Sequential, kFloat64);
  const double got = loss(ChainScan::Parallel, kFloat32);
  EXPECT_GT(want, 1000.0);  // exp(-loss) is far below float32's smallest number
  EXPECT_NEAR(got, want, 1e-5 * want);
}

// Subsampling: each point's log marginal scaled by size / subsample size.
TEST_F(EnumTest, SubsampledPlateScalesEachPointsMarginal) {
  const Tensor w = tensor({0.2, 0.8}, f64()), locs = tensor({-1.0, 2.0}, f64());
  const Tensor x = tensor({-1.2, 0.3, 2.5, 1.9, -0.4}, f64());
  auto model = [&] {
    auto data = plate("data", 5, {.subsample = test::index_tensor({1, 3})});
    const Tensor z = sample("z", dist::Categorical(w),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x", dist::Normal(index_rows(locs, z), 1.0), data.subsample(x));
  };
  double want = 0;
  for (double v : {0.3, 1.9}) {
    want += logsumexp({std::log(0.2) + log_normal(v, -1, 1), std::log(0.8) + log_normal(v, 2, 1)});
  }
  EXPECT_NEAR(enum_log_marginal(model, 1), 2.5 * want, 1e-10);
}

// The gradient of the enumerated loss is the exact marginal's: finite differences of the
// brute force in float64, with respect to the mixture's locations (params of the model).
TEST_F(EnumTest, GradientsAreTheExactMarginals) {
  auto model = [] {
    const Tensor w = param("w", tensor({0.3, 0.7}, f64()), constraints::simplex);
    const Tensor locs = param("locs", tensor({-0.5, 1.5}, f64()));
    mixture(w, locs);
  };
  TraceEnum_ELBO elbo({.max_plate_nesting = 1});
  elbo.loss_and_grads(model, [] {});
  const Tensor grad = get_param_store().unconstrained("locs").grad();
  const double h = 1e-6;
  for (int k = 0; k < 2; ++k) {
    std::vector<double> up = {-0.5, 1.5}, down = up;
    up[k] += h;
    down[k] -= h;
    const double fd = -(mixture_brute({0.3, 0.7}, up) - mixture_brute({0.3, 0.7}, down)) / (2 * h);
    EXPECT_NEAR(grad.select(0, k).item(), fd, 1e-6) << k;
  }
}

// SVI with an enumerated model fits a mixture's locations (no score-function noise).
TEST_F(EnumTest, SviFitsAMixtureWithEnumeratedAssignments) {
  auto model = [] {
    const Tensor locs = param("locs", tensor({-0.5, 0.5}, f64()));
    auto data = plate("data", 6);
    const Tensor z = sample("z", dist::Categorical(tensor({0.5, 0.5}, f64())),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x", dist::Normal(index_rows(locs, z), 0.3),
           tensor({-2.1, -1.9, -2.0, 3.0, 3.1, 2.9}, f64()));
  };
  SVI svi(
      model, [] {}, optim::Adam({.lr = 0.1}), TraceEnum_ELBO({.max_plate_nesting = 1}));
  for (int i = 0; i < 300; ++i) svi.step();
  const Tensor locs = param("locs");
  EXPECT_NEAR(locs.select(0, 0).item(), -2.0, 0.05);
  EXPECT_NEAR(locs.select(0, 1).item(), 3.0, 0.05);
}

// Vectorized particles: the particles' plate sits between the plates and the enumeration
// dims; with a guide for a continuous global, each particle's estimate is the exact marginal
// given its draw, so the mean over particles matches the sequential runs' mean.
TEST_F(EnumTest, VectorizedParticlesMatchSequentialOnes) {
  const Tensor x = tensor({-1.2, 0.3, 2.5, 1.9, -0.4}, f64());
  auto model = [&] {
    const Tensor shift = sample("shift", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    auto data = plate("data", 5);
    const Tensor z = sample("z", dist::Categorical(tensor({0.4, 0.6}, f64())),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x", dist::Normal(add(index_rows(tensor({-1.0, 2.0}, f64()), z), shift), 1.0), x);
  };
  auto guide = [] { sample("shift", dist::Normal(scalar_tensor(0.2, f64()), 0.3)); };
  set_rng_seed(3);
  const double vectorized =
      TraceEnum_ELBO({.num_particles = 4000, .vectorize_particles = true, .max_plate_nesting = 1})
          .loss(model, guide)
          .loss.item();
  // The exact expectation by quadrature over shift ~ N(0.2, 0.3).
  double expected = 0;
  const int n = 2001;
  double weight_sum = 0;
  for (int i = 0; i < n; ++i) {
    const double u = -6.0 + 12.0 * i / (n - 1);
    const double s = 0.2 + 0.3 * u;
    const double w = std::exp(-0.5 * u * u);
    double lp = log_normal(s, 0, 1) - log_normal(s, 0.2, 0.3);
    for (double v : kX) {
      lp += logsumexp(
          {std::log(0.4) + log_normal(v, -1 + s, 1), std::log(0.6) + log_normal(v, 2 + s, 1)});
    }
    expected += w * lp;
    weight_sum += w;
  }
  expected /= weight_sum;
  EXPECT_NEAR(-vectorized, expected, 0.05);
}

// Compiled steps of an enumerated model equal the eager ones bit for bit.
TEST_F(EnumTest, CompiledStepsEqualEagerOnes) {
  auto run = [](bool compiled) {
    clear_param_store();
    set_rng_seed(5);
    auto model = [] {
      const Tensor trans =
          param("trans", tensor({{0.8, 0.2}, {0.3, 0.7}}, f64()), constraints::simplex);
      const Tensor locs = param("locs", tensor({-1.0, 2.0}, f64()));
      Tensor z = scalar_tensor(0.0, TensorOptions{kInt64});
      for (std::int64_t t : markov(6)) {
        z = sample("z_" + std::to_string(t), dist::Categorical(index_rows(trans, z)),
                   SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
        sample("x_" + std::to_string(t), dist::Normal(index_rows(locs, z), 1.0),
               scalar_tensor(kSeq[t], f64()));
      }
    };
    SVI svi(
        model, [] {}, optim::Adam({.lr = 0.05}), TraceEnum_ELBO({.max_plate_nesting = 0}));
    if (compiled) svi.compile({});
    std::vector<double> losses;
    for (int i = 0; i < 20; ++i) losses.push_back(svi.step());
    return losses;
  };
  EXPECT_EQ(run(false), run(true));
}

TEST_F(EnumTest, ADimNoPlateOwnsIsNamed) {
  // x has a batch dim of 3 outside any plate, and reads the enumerated z.
  auto model = [] {
    const Tensor z = sample("z", dist::Bernoulli(scalar_tensor(0.5, f64())),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x", dist::Normal(add(zeros({3}, f64()), z), 1.0), tensor({0.1, 0.2, 0.3}, f64()));
  };
  // Validation names the site and its shape; without it, the contraction names the dim.
  for (bool validate : {true, false}) {
    const ValidationScope scope(validate);
    try {
      TraceEnum_ELBO({.max_plate_nesting = 1}).loss(model, [] {});
      ADD_FAILURE() << "no exception";
    } catch (const ShapeError& e) {
      EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(validate ? "(2, 3)" : "dim -1"), std::string::npos)
          << e.what();
    }
  }
}

TEST_F(EnumTest, InferDiscreteMapIsTheBruteForceViterbiPath) {
  const double trans[2][2] = {{0.8, 0.2}, {0.3, 0.7}};
  const double locs[2] = {-1.0, 2.0};
  const Tensor t = tensor({{0.8, 0.2}, {0.3, 0.7}}, f64()), l = tensor({-1.0, 2.0}, f64());
  const int steps = 8;
  int best = 0;
  double best_score = -INFINITY;
  for (int code = 0; code < (1 << steps); ++code) {
    double s = 0;
    int prev = 0;
    for (int k = 0; k < steps; ++k) {
      const int z = (code >> k) & 1;
      s += std::log(trans[prev][z]) + log_normal(kSeq[k], locs[z], 1);
      prev = z;
    }
    if (s > best_score) {
      best_score = s;
      best = code;
    }
  }
  const handlers::ValueMap map =
      infer_discrete([&] { hmm(t, l, steps); }, {.temperature = 0, .max_plate_nesting = 0})();
  for (int k = 0; k < steps; ++k) {
    EXPECT_EQ(map.at("z_" + std::to_string(k)).item(), (best >> k) & 1) << "step " << k;
  }
}

TEST_F(EnumTest, InferDiscreteMapOfAMixtureIsEachPointsBestComponent) {
  const Tensor w = tensor({0.2, 0.5, 0.3}, f64()), locs = tensor({-1.0, 0.5, 2.0}, f64());
  const handlers::ValueMap map =
      infer_discrete([&] { mixture(w, locs); }, {.temperature = 0, .max_plate_nesting = 1})();
  const Tensor z = map.at("z");
  ASSERT_EQ(z.shape(), Shape({5}));
  const double wv[3] = {0.2, 0.5, 0.3}, lv[3] = {-1.0, 0.5, 2.0};
  for (std::size_t i = 0; i < kX.size(); ++i) {
    int best = 0;
    for (int k = 1; k < 3; ++k) {
      if (std::log(wv[k]) + log_normal(kX[i], lv[k], 1) >
          std::log(wv[best]) + log_normal(kX[i], lv[best], 1)) {
        best = k;
      }
    }
    EXPECT_EQ(z.select(0, static_cast<std::int64_t>(i)).item(), best) << i;
  }
}

// Posterior draws of a three-step chain: the frequency of each path against its exact
// posterior probability.
TEST_F(EnumTest, SlowInferDiscreteDrawsFollowThePosterior) {
  const double trans[2][2] = {{0.8, 0.2}, {0.3, 0.7}};
  const double locs[2] = {-1.0, 2.0};
  const Tensor t = tensor({{0.8, 0.2}, {0.3, 0.7}}, f64()), l = tensor({-1.0, 2.0}, f64());
  constexpr int kSteps = 3, kDraws = 4000;
  std::vector<double> logp(1 << kSteps);
  for (int code = 0; code < (1 << kSteps); ++code) {
    double s = 0;
    int prev = 0;
    for (int k = 0; k < kSteps; ++k) {
      const int z = (code >> k) & 1;
      s += std::log(trans[prev][z]) + log_normal(kSeq[k], locs[z], 1);
      prev = z;
    }
    logp[code] = s;
  }
  const double norm = logsumexp(logp);
  std::vector<int> counts(1 << kSteps, 0);
  auto draw =
      infer_discrete([&] { hmm(t, l, kSteps); }, {.temperature = 1, .max_plate_nesting = 0});
  for (int i = 0; i < kDraws; ++i) {
    const handlers::ValueMap v = draw();
    int code = 0;
    for (int k = 0; k < kSteps; ++k)
      code |= static_cast<int>(v.at("z_" + std::to_string(k)).item()) << k;
    ++counts[code];
  }
  for (int code = 0; code < (1 << kSteps); ++code) {
    const double p = std::exp(logp[code] - norm);
    EXPECT_NEAR(counts[code] / double(kDraws), p, 4 * std::sqrt(p * (1 - p) / kDraws) + 1e-3)
        << "path " << code;
  }
}

// Scoring every support value at once equals log_prob of the enumerated values.
TEST_F(EnumTest, LogProbOfSupportMatchesTheSupportsLogProb) {
  const std::vector<dist::Distribution> families = {
      dist::Categorical(tensor({{0.2, 0.3, 0.5}, {0.6, 0.1, 0.3}}, f64())),
      dist::Categorical::from_logits(tensor({{0.5, -1.0}, {2.0, 0.0}, {0.1, 0.1}}, f64())),
      dist::Bernoulli(tensor({0.25, 0.9}, f64())), dist::Binomial(4.0, tensor({0.3, 0.6}, f64()))};
  for (const dist::Distribution& d : families) {
    const Tensor want = d.log_prob(d.enumerate_support(false));
    test::expect_close(d.log_prob_of_support(), want, 1e-12, 1e-12);
  }
}

TEST_F(EnumTest, TooManyEnumeratedSitesOutsideAChainAreNamed) {
  auto model = [] {
    for (int i = 0; i < 12; ++i) {
      sample("c_" + std::to_string(i), dist::Bernoulli(scalar_tensor(0.5, f64())),
             SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    }
  };
  EMBER_EXPECT_THROW_WITH(TraceEnum_ELBO({.max_plate_nesting = 0}).loss(model, [] {}), ShapeError,
                          "'c_10'", "rank limit", "markov");
}

TEST_F(EnumTest, ErrorsNameTheSite) {
  auto continuous = [] {
    sample("y", dist::Normal(scalar_tensor(0.0, f64()), 1.0),
           SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
  };
  try {
    TraceEnum_ELBO({.max_plate_nesting = 0}).loss(continuous, [] {});
    ADD_FAILURE() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'y'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(infer_discrete([] { sample("a", dist::Normal(scalar_tensor(0.0, f64()), 1.0)); })(),
               ValueError);
}

}  // namespace
}  // namespace ember
