// Compiled SVI steps of the examples' other programs and the benchmark's models: autoguides
// (AutoNormal, AutoDiagonalNormal, AutoMultivariateNormal, AutoLowRankMultivariateNormal,
// AutoIAFNormal, AutoLaplaceApproximation, AutoDelta), enumerated discrete sites under
// TraceEnum_ELBO (a mixture, a markov chain contracted step by step and by a parallel scan, the
// Dirichlet-process mixture with its assignments summed out) and TraceMeanField_ELBO's
// closed-form KL terms. Each compiled fit equals the eager fit bit for bit for the same seed.
#include <cmath>
#include <string>

#include "compile_fit.hpp"
#include "examples/dp_mixture_model.hpp"
#include "examples/eight_schools_model.hpp"
#include "examples/gmm_model.hpp"
#include "examples/hmm_model.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using test::expect_identical;
using test::f64;
using test::fit;
using test::Fit;
using test::no_args;

// bench/svi_bench's AutoNormal model (NumPyro's benchmark: logistic regression, float32), and
// examples/logistic_regression.cpp's AutoDiagonalNormal over the same model.
TEST(CompileModelsTest, LogisticRegressionWithAutoNormalAndAutoDiagonalNormal) {
  constexpr std::int64_t n = 120, dim = 5;
  Generator gen(5);
  const Tensor x = randn({n, dim}, {}, &gen);
  const Tensor labels =
      dist::Bernoulli::from_logits(matmul(x, linspace(-1.0, 1.0, dim))).sample({}, gen);
  auto model = [&] {
    const Tensor coefs = sample("coefs", dist::Normal(zeros({dim}), 1.0).to_event(1));
    const Tensor intercept = sample("intercept", dist::Normal(zeros({}), 10.0));
    auto data = plate("data", n);
    sample("obs", dist::Bernoulli::from_logits(matmul(x, coefs) + intercept), labels);
  };
  auto run_normal = [&](bool compiled) {
    return fit(model, autoguide::AutoNormal(model), optim::Adam({.lr = 0.01}), Trace_ELBO(),
               compiled, 25, no_args);
  };
  expect_identical(run_normal(false), run_normal(true));
  auto run_diagonal = [&](bool compiled) {
    return fit(model, autoguide::AutoDiagonalNormal(model), optim::Adam({.lr = 0.01}), Trace_ELBO(),
               compiled, 25, no_args);
  };
  expect_identical(run_diagonal(false), run_diagonal(true));
}

// examples/eight_schools.cpp: the centered model with AutoNormal, the non-centered one (a
// deterministic site) with AutoMultivariateNormal, both under ClippedAdam with learning-rate
// decay and eight vectorized particles; the data passed to step().
TEST(CompileModelsTest, EightSchoolsWithVectorizedParticles) {
  using schools::centered;
  using schools::non_centered;
  auto args = [&](int) { return std::make_tuple(schools::errors(), schools::effects()); };
  auto clipped = [] { return optim::ClippedAdam({.lr = 0.02, .lrd = 0.9995}); };
  const ElboOptions particles{.num_particles = 8, .vectorize_particles = true};
  expect_identical(fit(centered, autoguide::AutoNormal(centered), clipped(), Trace_ELBO(particles),
                       false, 20, args),
                   fit(centered, autoguide::AutoNormal(centered), clipped(), Trace_ELBO(particles),
                       true, 20, args));
  expect_identical(fit(non_centered, autoguide::AutoMultivariateNormal(non_centered), clipped(),
                       Trace_ELBO(particles), false, 20, args),
                   fit(non_centered, autoguide::AutoMultivariateNormal(non_centered), clipped(),
                       Trace_ELBO(particles), true, 20, args));
}

// A hierarchical regression with a positive and a unit-interval latent (transforms in every
// flow): AutoLowRankMultivariateNormal and AutoIAFNormal (masked networks in the guide).
TEST(CompileModelsTest, LowRankAndInverseAutoregressiveFlowGuides) {
  Generator gen(11);
  const Tensor x = randn({30}, f64(), &gen);
  const Tensor y = x * 0.7 + 0.2 + randn({30}, f64(), &gen) * 0.5;
  auto model = [&] {
    const Tensor w = sample("w", dist::Normal(zeros({3}, f64()), 1.0).to_event(1));
    const Tensor noise = sample("noise", dist::LogNormal(scalar_tensor(0.0, f64()), 1.0));
    const Tensor mix = sample("mix", dist::Beta(scalar_tensor(2.0, f64()), 2.0));
    auto data = plate("data", 30);
    sample("y", dist::Normal(w.select(0, 0) + x * w.select(0, 1) * mix, noise), y);
  };
  auto low_rank = [&](bool compiled) {
    return fit(model, autoguide::AutoLowRankMultivariateNormal(model, {.rank = 2}),
               optim::Adam({.lr = 0.02}), Trace_ELBO(), compiled, 20, no_args);
  };
  expect_identical(low_rank(false), low_rank(true));
  auto iaf = [&](bool compiled) {
    // The flow's initial weights come from the default generator, seeded by fit().
    return fit(model, autoguide::AutoIAFNormal(model, {.num_transforms = 2, .hidden_dim = 8}),
               optim::Adam({.lr = 0.01}), Trace_ELBO(), compiled, 15, no_args);
  };
  expect_identical(iaf(false), iaf(true));
}

// examples/quap_regression.cpp: AutoLaplaceApproximation's MAP fit (a Delta over the joint
// unconstrained vector), the data passed to step().
TEST(CompileModelsTest, LaplaceApproximationMapFit) {
  Generator gen(2);
  const Tensor x = randn({40}, f64(), &gen);
  const Tensor waiting = x * 10.0 + 70.0 + randn({40}, f64(), &gen) * 6.0;
  auto model = [](const Tensor& xs, const Tensor& ys) {
    const Tensor beta = sample("beta", dist::Normal(tensor({70.0, 0.0}, f64()), 20.0).to_event(1));
    const Tensor tau = sample("tau", dist::Gamma(scalar_tensor(2.0, f64()), 100.0));
    auto data = plate("data", xs.size(0));
    sample("y", dist::Normal(beta.select(0, 0) + beta.select(0, 1) * xs, reciprocal(sqrt(tau))),
           ys);
  };
  auto args = [&](int) { return std::make_tuple(x, waiting); };
  auto run = [&](bool compiled) {
    return fit(model, autoguide::AutoLaplaceApproximation(model), optim::Adam({.lr = 0.05}),
               Trace_ELBO(), compiled, 25, args);
  };
  expect_identical(run(false), run(true));
}

// TraceMeanField_ELBO: closed-form KL terms for the Normal latents, and a sampled term for the
// one pair without a closed form (a LogNormal guide against a HalfCauchy prior).
TEST(CompileModelsTest, MeanFieldElboWithClosedFormAndSampledTerms) {
  const Tensor y = tensor({1.2, 0.4, 2.1, 1.7, 0.9}, f64());
  auto model = [&] {
    const Tensor mu = sample("mu", dist::Normal(scalar_tensor(0.0, f64()), 3.0));
    const Tensor scale = sample("scale", dist::HalfCauchy(scalar_tensor(2.0, f64())));
    auto data = plate("data", 5);
    sample("y", dist::Normal(mu, scale), y);
  };
  auto guide = [] {
    const Tensor loc = param("loc", scalar_tensor(0.5, f64()));
    const Tensor sd = param("sd", scalar_tensor(0.4, f64()), constraints::positive);
    const Tensor log_loc = param("log_loc", scalar_tensor(0.0, f64()));
    sample("mu", dist::Normal(loc, sd));
    sample("scale", dist::LogNormal(log_loc, 0.3));
  };
  expect_identical(
      fit(model, guide, optim::Adam({.lr = 0.02}), TraceMeanField_ELBO(), false, 30, no_args),
      fit(model, guide, optim::Adam({.lr = 0.02}), TraceMeanField_ELBO(), true, 30, no_args));
}

// examples/gmm.cpp: a mixture whose assignments are enumerated in the model (TraceEnum_ELBO),
// its globals fitted by AutoDelta (MAP) and by AutoNormal with four particles.
TEST(CompileModelsTest, MixtureWithEnumeratedAssignments) {
  using gmm::kK;
  const auto globals = handlers::block(gmm::model, gmm::kGlobals);
  const auto init = autoguide::init_to_value({{"weights", full({kK}, 0.5, f64())},
                                              {"scale", scalar_tensor(3.0, f64())},
                                              {"locs", tensor({1.0, 11.0}, f64())}});
  auto args = [&](int) { return std::make_tuple(gmm::points()); };
  auto map_fit = [&](bool compiled) {
    return fit(gmm::model, autoguide::AutoDelta(globals, {.init_loc_fn = init}),
               optim::Adam({.lr = 0.1, .betas = {0.8, 0.99}}),
               TraceEnum_ELBO({.max_plate_nesting = 1}), compiled, 25, args);
  };
  expect_identical(map_fit(false), map_fit(true));
  auto normal_fit = [&](bool compiled) {
    return fit(gmm::model, autoguide::AutoNormal(globals, {.init_loc_fn = init}),
               optim::Adam({.lr = 0.05}),
               TraceEnum_ELBO({.num_particles = 4, .max_plate_nesting = 1}), compiled, 15, args);
  };
  expect_identical(normal_fit(false), normal_fit(true));
}

// examples/hmm_faithful.cpp: a two-state HMM whose states form a markov chain of enumerated
// sites, contracted step by step and by the parallel scan; AutoDelta over the globals.
TEST(CompileModelsTest, HiddenMarkovChainContractedSequentiallyAndByParallelScan) {
  Generator gen(6);
  const Tensor lengths = where(rand({24}, f64(), &gen) < 0.5, full({24}, 2.0, f64()), 4.5) +
                         randn({24}, f64(), &gen) * 0.3;
  const auto globals = handlers::block(hmm::model, hmm::kGlobals);
  auto args = [&](int) { return std::make_tuple(lengths); };
  for (ChainScan scan : {ChainScan::Sequential, ChainScan::Parallel}) {
    auto run = [&](bool compiled) {
      return fit(
          hmm::model,
          autoguide::AutoDelta(
              globals, {.init_loc_fn = autoguide::init_to_value(
                            {{"loc", tensor({2.0, 4.5}, f64())}, {"sd", tensor({0.5, 0.5}, f64())}},
                            autoguide::init_to_mean())}),
          optim::Adam({.lr = 0.02}), TraceEnum_ELBO({.max_plate_nesting = 1}, scan), compiled, 15,
          args);
    };
    SCOPED_TRACE(scan == ChainScan::Sequential ? "sequential" : "parallel scan");
    expect_identical(run(false), run(true));
  }
}

// examples/dp_mixture_enum.cpp: the Dirichlet-process mixture with each point's cluster summed
// out (the guide keeps the sticks and the means; its initializers draw from the default
// generator on the first step).
TEST(CompileModelsTest, DirichletProcessMixtureWithAssignmentsSummedOut) {
  const Tensor data = dp::synthetic_points(3).narrow(0, 20, 40);
  auto model = [&] { dp::model(data, 0.1, true); };
  auto guide = [&] { dp::guide(data, true); };
  expect_identical(fit(model, guide, optim::Adam({.lr = 0.05}),
                       TraceEnum_ELBO({.max_plate_nesting = 1}), false, 15, no_args),
                   fit(model, guide, optim::Adam({.lr = 0.05}),
                       TraceEnum_ELBO({.max_plate_nesting = 1}), true, 15, no_args));
}

}  // namespace
}  // namespace ember
