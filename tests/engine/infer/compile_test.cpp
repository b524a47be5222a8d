// Compiled SVI steps: a replayed step equals the eager step bit for bit (loss history and
// fitted parameters) for the same seed, across models, ELBOs, optimizers, subsampling,
// particles and rebound data; a replay makes no tensor allocation; structure changes, host
// reads and foreign generators raise CompileError; plans are cached per input shape.
#include <cstring>
#include <map>
#include <sstream>
#include <thread>

#include "compile_fit.hpp"
#include "examples/vae_model.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using test::expect_identical;
using test::f64;
using test::fit;
using test::Fit;
using test::no_args;

// ---- the coin (float32, one-element params read by value in the CPU loops) ----
void coin_model(const Tensor& flips) {
  const Tensor prior = full({}, 10.0);
  const Tensor f = sample("fairness", dist::Beta(prior, prior));
  auto data = plate("data", flips.size(0));
  sample("obs", dist::Bernoulli(f), flips);
}
void coin_guide(const Tensor&) {
  const Tensor a = param("alpha_q", full({}, 15.0), constraints::positive);
  const Tensor b = param("beta_q", full({}, 15.0), constraints::positive);
  sample("fairness", dist::Beta(a, b));
}

TEST(CompileTest, CoinReplaysBitForBit) {
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  auto args = [&](int) { return std::make_tuple(flips); };
  for (bool checked : {false, true}) {
    const ValidationScope validation(checked);
    const SVIOptions o{.check_finite = checked};
    const Fit eager =
        fit(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), false, 30, args, o);
    const Fit compiled =
        fit(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), true, 30, args, o);
    expect_identical(eager, compiled);
    EXPECT_EQ(compiled.stats.plans, 1u);
    EXPECT_EQ(compiled.stats.recordings, 1);
    EXPECT_EQ(compiled.stats.replays, 28);
  }
}

// A replay's draws start where the generator stands when it begins: a new seed, or draws made
// between steps, move them as they move the eager step's.
TEST(CompileTest, DrawsFollowReseedsAndDrawsBetweenSteps) {
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  auto args = [&](int i) {
    if (i % 4 == 3) set_rng_seed(100 + static_cast<std::uint64_t>(i));
    if (i % 4 == 1) (void)randn({7});
    return std::make_tuple(flips);
  };
  const Fit eager =
      fit(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), false, 12, args);
  const Fit compiled =
      fit(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), true, 12, args);
  expect_identical(eager, compiled);
  // Not the losses of a fit without the reseeds and draws.
  const Fit plain = fit(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), true, 12,
                        [&](int) { return std::make_tuple(flips); });
  EXPECT_NE(plain.losses, compiled.losses);
}

// ---- Bayesian linear regression, data passed to step() and rebound every step ----
struct Regression {
  static constexpr std::int64_t kD = 4;
  void model(const Tensor& x, const Tensor& y) const {
    const Tensor w = sample("w", dist::Normal(zeros({kD}, f64()), 1.0).to_event(1));
    const Tensor b = sample("b", dist::Normal(zeros({}, f64()), 10.0));
    auto data = plate("data", x.size(0));
    sample("y", dist::Normal(matmul(x, w) + b, 0.3), y);
  }
  void guide(const Tensor&, const Tensor&) const {
    const Tensor w_loc = param("w_loc", zeros({kD}, f64()));
    const Tensor w_scale = param("w_scale", full({kD}, 0.1, f64()), constraints::positive);
    const Tensor b_loc = param("b_loc", zeros({}, f64()));
    const Tensor b_scale = param("b_scale", full({}, 0.1, f64()), constraints::positive);
    sample("w", dist::Normal(w_loc, w_scale).to_event(1));
    sample("b", dist::Normal(b_loc, b_scale));
  }
};

std::vector<std::pair<Tensor, Tensor>> batches(int count, std::int64_t n) {
  Generator gen(5);
  std::vector<std::pair<Tensor, Tensor>> out;
  const Tensor w = linspace(-1.0, 1.0, Regression::kD, f64());
  for (int i = 0; i < count; ++i) {
    const Tensor x = randn({n, Regression::kD}, f64(), &gen);
    out.emplace_back(x, matmul(x, w) + 0.5 + randn({n}, f64(), &gen) * 0.3);
  }
  return out;
}

TEST(CompileTest, RegressionWithDataReboundEveryStep) {
  const Regression r;
  const auto data = batches(7, 64);
  auto model = [&](const Tensor& x, const Tensor& y) { r.model(x, y); };
  auto guide = [&](const Tensor& x, const Tensor& y) { r.guide(x, y); };
  // A new batch (new memory) each step: the plan's inputs follow the arguments.
  auto args = [&](int i) { return std::make_tuple(data[i % 5].first, data[i % 5].second); };
  const Fit eager = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 25, args);
  const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 25, args);
  expect_identical(eager, compiled);
  // Most of a CPU replay's calls run bound (their loops set up once), and are bound again
  // from the new pointers when the data moves; a matrix product or a draw goes through the
  // launcher each time.
  EXPECT_GT(2 * compiled.stats.bound_calls_per_replay, compiled.stats.calls_per_replay);
  EXPECT_LT(compiled.stats.bound_calls_per_replay, compiled.stats.calls_per_replay);
  // The plan keeps the calls that read the data bound at the four places before the current
  // one (Plan::place_inputs): from the eighth step on, each of five batches comes back to
  // memory where they were bound, and finds them bound. Seven batches in turn are more places
  // than that: every move binds anew. The same bits either way.
  EXPECT_GE(compiled.stats.placements_reused, 18u);
  auto seven = [&](int i) { return std::make_tuple(data[i % 7].first, data[i % 7].second); };
  const Fit beyond = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 25, seven);
  expect_identical(fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 25, seven),
                   beyond);
  EXPECT_EQ(beyond.stats.placements_reused, 0u);
  EXPECT_EQ(beyond.stats.bound_calls_per_replay, compiled.stats.bound_calls_per_replay);
  // Clones: equal values in other memory give the same losses as the originals.
  auto cloned = [&](int i) {
    return std::make_tuple(data[i % 5].first.clone(), data[i % 5].second.clone());
  };
  expect_identical(eager,
                   fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 25, cloned));
}

// At 40000 rows a replay runs the pass over the data as one fused run (X w, the intercept,
// the log-density and its partial, the sums, X^T r: Backend::run_fused), with independent
// calls moved out of its way: the eager fit's bits, on one thread and on two (where the sums
// and X^T r add in per-thread slices). With the data in new memory every step the calls that
// read it are bound again before each replay runs (their launchers only capture), and the run
// is made again from the new pointers: fused at every replay, the same bits too.
TEST(CompileTest, ALargeRegressionRunsItsPassOverTheDataFusedWithTheEagerBits) {
  const Regression r;
  const auto data = batches(2, 40000);
  auto model = [&](const Tensor& x, const Tensor& y) { r.model(x, y); };
  auto guide = [&](const Tensor& x, const Tensor& y) { r.guide(x, y); };
  for (const int threads : {1, 2}) {
    for (const bool rebound : {false, true}) {
      SCOPED_TRACE(::testing::Message() << threads << " threads" << (rebound ? ", rebound" : ""));
      const NumThreadsScope scope(threads);
      auto args = [&](int i) {
        const auto& batch = data[rebound ? i % 2 : 0];
        return std::make_tuple(batch.first, batch.second);
      };
      const Fit eager = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 12, args);
      const Fit compiled =
          fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 12, args);
      expect_identical(eager, compiled);
      EXPECT_GE(compiled.stats.fused_calls_per_replay, 7u);
      // Its three N-vectors (five, sharing memory) live within the run: kept to a tile.
      EXPECT_EQ(compiled.stats.tile_buffers, 3u);
      EXPECT_EQ(compiled.stats.tile_bytes, 3u * 40000 * sizeof(double));
      // Two batches in turn: from the fifth step on, each finds its run made where it is.
      if (rebound) EXPECT_GE(compiled.stats.placements_reused, 8u);
    }
  }
}

// The regression's five N-vectors (X w, the mean, the log-density and its partial, the
// backward's product of the seed and the partial) each live from the call that writes them
// whole to their last reader within the step. The log-density is written after X w was read
// for the last time, and the product after the log-density's sum read it: both take X w's
// memory, and the plan keeps three N-vectors instead of five. The eager fit's bits with
// buffers shared and without, on one thread and two, with the pass over the data fused.
TEST(CompileTest, BuffersWhoseLivesDoNotOverlapShareMemoryWithTheEagerBits) {
  const Regression r;
  constexpr std::int64_t kRows = 40000;
  const auto data = batches(1, kRows);
  auto model = [&](const Tensor& x, const Tensor& y) { r.model(x, y); };
  auto guide = [&](const Tensor& x, const Tensor& y) { r.guide(x, y); };
  auto args = [&](int) { return std::make_tuple(data[0].first, data[0].second); };
  CompileOptions own;
  own.share_buffers = false;
  for (const int threads : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    const NumThreadsScope scope(threads);
    const Fit eager = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 12, args);
    const Fit shared = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 12, args);
    const Fit separate =
        fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 12, args, {}, own);
    expect_identical(eager, shared);
    expect_identical(eager, separate);
    EXPECT_EQ(shared.stats.shared_buffers, 2u);
    EXPECT_EQ(shared.stats.shared_bytes, 2u * kRows * sizeof(double));
    EXPECT_EQ(separate.stats.shared_buffers, 0u);
    EXPECT_EQ(separate.stats.retained_bytes - shared.stats.retained_bytes,
              shared.stats.shared_bytes);
    EXPECT_GE(shared.stats.fused_calls_per_replay, 7u);
    EXPECT_EQ(shared.stats.fused_calls_per_replay, separate.stats.fused_calls_per_replay);
  }
}

// Three batches in turn and a 0-d factor made anew at every step (an annealing factor): the
// calls that read the batch are bound at each of its places, those that read the factor take
// it from the slot their loop reads, filled again before each run, and the factor's own
// memory moves too. Placements kept for the batches come back with their slots: the eager
// fit's bits, on one thread and two, with the pass over the data fused.
TEST(CompileTest, BatchesInTurnWithAFactorMadeAnewAtEveryStep) {
  const Regression r;
  const auto data = batches(3, 20000);
  auto model = [&](const Tensor& x, const Tensor& y, const Tensor& scale) {
    r.model(x * scale, y);
  };
  auto guide = [&](const Tensor& x, const Tensor& y, const Tensor&) { r.guide(x, y); };
  auto args = [&](int i) {
    const auto& [x, y] = data[i % 3];
    return std::make_tuple(x, y, scalar_tensor(1.0 - 0.01 * i, f64()));
  };
  for (const int threads : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    const NumThreadsScope scope(threads);
    const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 16, args);
    expect_identical(fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 16, args),
                     compiled);
    EXPECT_GE(compiled.stats.placements_reused, 6u);
    EXPECT_GE(compiled.stats.fused_calls_per_replay, 7u);
  }
}

// With stage_inputs, data that keeps moving is copied into buffers of the plan's own from its
// second move on, and the calls read it there: seven batches in turn (more places than a plan
// keeps bound) give the eager fit's bits with the pass over the data fused at every replay,
// and nothing is bound again (no placement is looked for). A transposed view of the data is
// not contiguous: it is not copied, and its calls follow it, with the same bits.
TEST(CompileTest, StagedInputsAreCopiedIntoThePlansBuffers) {
  const Regression r;
  const auto data = batches(7, 20000);
  auto model = [&](const Tensor& x, const Tensor& y) { r.model(x, y); };
  auto guide = [&](const Tensor& x, const Tensor& y) { r.guide(x, y); };
  auto seven = [&](int i) { return std::make_tuple(data[i % 7].first, data[i % 7].second); };
  CompileOptions staged;
  staged.stage_inputs = true;
  for (const int threads : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << threads << " threads");
    const NumThreadsScope scope(threads);
    const Fit eager = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 16, seven);
    const Fit compiled =
        fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 16, seven, {}, staged);
    expect_identical(eager, compiled);
    EXPECT_EQ(compiled.stats.staged_inputs, 2u);
    EXPECT_EQ(compiled.stats.placements_reused, 0u);
    EXPECT_GE(compiled.stats.fused_calls_per_replay, 7u);
    EXPECT_GE(compiled.stats.retained_bytes, 20000u * (Regression::kD + 1) * sizeof(double));
    // Without the option the same data binds its calls anew at every move: the same bits.
    const Fit following =
        fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 16, seven);
    expect_identical(eager, following);
    EXPECT_EQ(following.stats.staged_inputs, 0u);
  }
  // x^T passed as a (D, N) view and transposed back in the model.
  auto model_t = [&](const Tensor& xt, const Tensor& y) { r.model(xt.t(), y); };
  auto guide_t = [&](const Tensor& xt, const Tensor& y) { r.guide(xt.t(), y); };
  auto seven_t = [&](int i) { return std::make_tuple(data[i % 7].first.t(), data[i % 7].second); };
  const Fit compiled_t =
      fit(model_t, guide_t, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 12, seven_t, {}, staged);
  expect_identical(
      fit(model_t, guide_t, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 12, seven_t),
      compiled_t);
  EXPECT_EQ(compiled_t.stats.staged_inputs, 1u);  // y only
}

// The whole data set passed, a subsampled plate picking 20000 of its 60000 rows at each step:
// the gathered batch lands in the plan's buffers, which stay where they are, so the pass over
// it runs fused at every replay while the indices change; the eager fit's bits.
TEST(CompileTest, ASubsampledBatchOfDataHeldInPlaceRunsFused) {
  const auto data = batches(1, 60000);
  constexpr std::int64_t kD = Regression::kD;
  auto model = [](const Tensor& x, const Tensor& y) {
    const Tensor w = sample("w", dist::Normal(zeros({kD}, f64()), 1.0).to_event(1));
    const Tensor b = sample("b", dist::Normal(zeros({}, f64()), 10.0));
    auto rows = plate("data", x.size(0), {.subsample_size = 20000});
    sample("y", dist::Normal(matmul(rows.subsample(x), w) + b, 0.3), rows.subsample(y));
  };
  auto guide = [](const Tensor& x, const Tensor& y) { Regression{}.guide(x, y); };
  auto args = [&](int) { return std::make_tuple(data[0].first, data[0].second); };
  const NumThreadsScope one(1);
  const Fit eager = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 10, args);
  const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 10, args);
  expect_identical(eager, compiled);
  EXPECT_GE(compiled.stats.fused_calls_per_replay, 7u);
}

// A factor that changes every step (an annealing schedule) passed as a 0-d tensor: an input
// read at every replay, even where the CPU loops take it by value; one plan serves every step.
TEST(CompileTest, AZeroDimTensorArgumentChangingEveryStep) {
  auto model = [](const Tensor& beta) {
    const Tensor z = sample("z", dist::Normal(zeros({3}), 1.0).to_event(1));
    sample("x", dist::Normal(z * beta, 1.0).to_event(1), tensor({0.5, -1.0, 2.0}));
  };
  auto guide = [](const Tensor&) {
    const Tensor loc = param("loc", zeros({3}));
    sample("z", dist::Normal(loc, 0.5).to_event(1));
  };
  auto args = [](int i) { return std::make_tuple(scalar_tensor(0.1 * (i + 1))); };
  const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), true, 20, args);
  expect_identical(fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), false, 20, args),
                   compiled);
  EXPECT_EQ(compiled.stats.plans, 1u);
}

// The replayed calls of `plans` (describe_plans()) that did not run bound at the last replay.
std::vector<std::string> unbound_calls(const std::string& plans) {
  std::vector<std::string> out;
  std::istringstream lines(plans);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  ", 0) != 0) continue;  // a plan's title
    if (line.find("(hoisted)") == std::string::npos && line.find("(bound)") == std::string::npos)
      out.push_back(line);
  }
  return out;
}

// A scalar operand read from memory at every replay (a drawn intercept, a 0-d input) is put
// into the bound loop's slot before the loop runs; one read from memory that nothing changes
// (a constant scale) is a constant of the call. Every replayed call but the draws runs bound.
TEST(CompileTest, ScalarsReadAgainAtEveryReplayRunBound) {
  const Regression r;
  const auto data = batches(1, 64)[0];
  auto model = [&](const Tensor& beta) { r.model(data.first * beta, data.second); };
  auto guide = [&](const Tensor&) { r.guide(data.first, data.second); };
  auto args = [](int i) { return std::make_tuple(scalar_tensor(1.0 - 0.01 * i, f64())); };
  const Fit eager = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 25, args);
  const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 25, args);
  expect_identical(eager, compiled);

  ParamStore store;
  set_rng_seed(99);
  SVI svi(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(),
          {.check_finite = false, .param_store = &store});
  svi.compile();
  for (int i = 0; i < 6; ++i) std::apply([&](const Tensor& b) { svi.step(b); }, args(i));
  const std::string plans = svi.describe_plans();
  // `x * beta` and `+ b` take a scalar read again, the log-density of y a constant scale.
  EXPECT_NE(plans.find("(bound) binary Mul float64 (64, 4), scalar float64"), std::string::npos)
      << plans;
  EXPECT_NE(plans.find("(bound) binary Add float64 (64), scalar float64"), std::string::npos)
      << plans;
  EXPECT_NE(plans.find("(bound) log_prob Normal float64 (64)"), std::string::npos) << plans;
  for (const std::string& line : unbound_calls(plans))
    EXPECT_NE(line.find(" sample "), std::string::npos) << line << "\n" << plans;
}

// A scalar read again that has, when the call is bound, the value of another scalar operand
// of the call cannot be told apart from it: binding waits for a replay at which they differ,
// and after a few such replays the call runs through the launcher for good. Either way the
// replays give the eager steps' numbers.
TEST(CompileTest, AScalarEqualToAnotherOperandWhenBoundIsNotMistakenForIt) {
  // The concentrations a (an input, read again) and b (a constant of the step) are both
  // scalars of one log-density, each read from a slot of the loop.
  const Tensor obs = tensor({0.5, -1.0, 2.0, 0.25}, f64());
  auto model = [&](const Tensor& a) {
    const Tensor b = full({}, 1.5, f64());
    const Tensor z = sample("z", dist::Normal(zeros({}, f64()), 1.0));
    sample("x", dist::Beta(a, b).expand({4}).to_event(1), sigmoid(obs * z));
  };
  auto guide = [](const Tensor&) {
    const Tensor m = param("m", zeros({}, f64()));
    sample("z", dist::Normal(m, 0.5));
  };
  for (int equal_steps : {4, 30}) {
    // a is 1.5 (b's value) for the first `equal_steps` steps, then moves.
    auto args = [&](int i) {
      return std::make_tuple(scalar_tensor(i < equal_steps ? 1.5 : 1.0 + 0.1 * i, f64()));
    };
    const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), true, 30, args);
    expect_identical(fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), false, 30, args),
                     compiled);
    EXPECT_EQ(compiled.stats.plans, 1u);
  }
}

TEST(CompileTest, ALastShortBatchRecordsAPlanOfItsOwn) {
  const Regression r;
  const auto full_batches = batches(3, 32);
  const auto short_batch = batches(1, 7);
  auto model = [&](const Tensor& x, const Tensor& y) { r.model(x, y); };
  auto guide = [&](const Tensor& x, const Tensor& y) { r.guide(x, y); };
  auto args = [&](int i) {
    const auto& b = i % 4 == 3 ? short_batch[0] : full_batches[i % 4];
    return std::make_tuple(b.first, b.second);
  };
  const Fit eager = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 24, args);
  const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 24, args);
  expect_identical(eager, compiled);
  EXPECT_EQ(compiled.stats.plans, 2u);
}

// ---- subsampling, particles, score-function sites and every optimizer ----
TEST(CompileTest, SubsampledPlateDrawsFreshIndicesEachReplay) {
  const auto data = batches(1, 200)[0];
  const Regression r;
  auto model = [&] {
    const Tensor w = sample("w", dist::Normal(zeros({Regression::kD}, f64()), 1.0).to_event(1));
    auto p = plate("data", 200, {.subsample_size = 16});
    sample("y", dist::Normal(matmul(p.subsample(data.first), w), 0.3), p.subsample(data.second));
  };
  auto guide = [&] {
    const Tensor loc = param("w_loc", zeros({Regression::kD}, f64()));
    sample("w", dist::Normal(loc, 0.2).to_event(1));
  };
  const Fit eager = fit(model, guide, optim::SGD({.lr = 1e-3, .momentum = 0.9}), Trace_ELBO(),
                        false, 20, no_args);
  const Fit compiled =
      fit(model, guide, optim::SGD({.lr = 1e-3, .momentum = 0.9}), Trace_ELBO(), true, 20, no_args);
  expect_identical(eager, compiled);
  // The indices differ between steps: the losses are not one value repeated.
  EXPECT_NE(compiled.losses[10], compiled.losses[11]);
}

TEST(CompileTest, VectorizedParticlesAndEveryOptimizer) {
  auto model = [] {
    const Tensor z = sample("z", dist::Normal(zeros({3}, f64()), 1.0).to_event(1));
    sample("x", dist::Normal(z, 0.5).to_event(1), tensor({0.3, -1.0, 2.0}, f64()));
  };
  auto guide = [] {
    const Tensor loc = param("loc", zeros({3}, f64()));
    const Tensor scale = param("scale", full({3}, 0.5, f64()), constraints::positive);
    sample("z", dist::Normal(loc, scale).to_event(1));
  };
  const Trace_ELBO particles({.num_particles = 8, .vectorize_particles = true});
  auto check = [&](auto make_opt) {
    expect_identical(fit(model, guide, make_opt(), particles, false, 15, no_args),
                     fit(model, guide, make_opt(), particles, true, 15, no_args));
  };
  check([] { return optim::SGD({.lr = 0.01}); });
  check([] { return optim::Adam({.lr = 0.01}); });
  check([] { return optim::ClippedAdam({.lr = 0.01, .clip_norm = 1.0, .lrd = 0.99}); });
  check([] { return optim::Adagrad({.lr = 0.1}); });
  check([] { return optim::RMSprop({.lr = 0.01}); });
  // Sequential particles too.
  const Trace_ELBO sequential({.num_particles = 3});
  expect_identical(fit(model, guide, optim::Adam({.lr = 0.01}), sequential, false, 12, no_args),
                   fit(model, guide, optim::Adam({.lr = 0.01}), sequential, true, 12, no_args));
}

// A score-function Categorical with a decaying-average baseline (TraceGraph_ELBO): the
// baseline's state carries from replay to replay.
TEST(CompileTest, ScoreFunctionSitesWithTraceGraphBaselines) {
  const Tensor obs = tensor({0.2, 2.1, 1.9, -0.1}, f64());
  const Tensor locs = tensor({0.0, 2.0}, f64());
  auto model = [&] {
    const Tensor w = sample("w", dist::Dirichlet(ones({2}, f64())));
    auto p = plate("data", 4);
    const Tensor z = sample("z", dist::Categorical(w));
    sample("x", dist::Normal(index_select(locs, 0, z), 0.5), obs);
  };
  auto guide = [&] {
    const Tensor conc = param("conc", ones({2}, f64()), constraints::positive);
    const Tensor logits = param("logits", zeros({4, 2}, f64()));
    sample("w", dist::Dirichlet(conc));
    auto p = plate("data", 4);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = true;
    sample("z", dist::Categorical::from_logits(logits), opts);
  };
  for (bool checked : {false, true}) {
    const ValidationScope validation(checked);
    const SVIOptions o{.check_finite = checked};
    expect_identical(
        fit(model, guide, optim::Adam({.lr = 0.05}), TraceGraph_ELBO(), false, 25, no_args, o),
        fit(model, guide, optim::Adam({.lr = 0.05}), TraceGraph_ELBO(), true, 25, no_args, o));
    expect_identical(
        fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), false, 25, no_args, o),
        fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), true, 25, no_args, o));
  }
}

// A markov chain of enumerated states whose transition row is picked by the previous state
// (svi_bench's HMM, shorter): each step's Categorical normalizes the same table, which a
// replay normalizes once per shape of its view and copies after (merge_repeats). The same
// loss history and parameters as the eager fit, in both precisions, merged or not.
TEST(CompileTest, AChainNormalizingOneTableAtEveryStepNormalizesItOnce) {
  constexpr std::int64_t kSteps = 30, kStates = 4;
  for (DType dtype : {kFloat32, kFloat64}) {
    SCOPED_TRACE(::testing::Message() << dtype);
    const TensorOptions opts = TensorOptions{}.with_dtype(dtype);
    Generator gen(11);
    const Tensor x = floor(arange(0.0, kSteps, 1.0, opts) / 8.0) + randn({kSteps}, opts, &gen);
    auto model = [&] {
      const Tensor trans =
          param("trans", full({kStates, kStates}, 1.0 / kStates, opts), constraints::simplex);
      const Tensor locs = param("locs", arange(0.0, kStates, 1.0, opts));
      Tensor z = zeros({}, TensorOptions{kInt64});
      for (std::int64_t t : markov(kSteps)) {
        z = sample("z_" + std::to_string(t), dist::Categorical(index_rows(trans, z)),
                   SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
        sample("x_" + std::to_string(t), dist::Normal(index_rows(locs, z), 1.0), x.select(0, t));
      }
    };
    auto guide = [] {};
    auto run = [&](bool compiled, bool merge) {
      return fit(model, guide, optim::Adam({.lr = 0.05}), TraceEnum_ELBO({.max_plate_nesting = 0}),
                 compiled, 12, no_args, {}, CompileOptions{.merge_repeats = merge});
    };
    const Fit eager = run(false, true), merged = run(true, true), unmerged = run(true, false);
    expect_identical(eager, merged);
    expect_identical(eager, unmerged);
    // Steps 1 to 29 pick a row of the table in views of two shapes in turn (the first step's
    // row is picked by the fixed start): 15 and 14 of them, all but the first of each copied.
    EXPECT_EQ(merged.stats.merged_calls_per_replay, static_cast<std::size_t>(kSteps - 3));
    EXPECT_EQ(unmerged.stats.merged_calls_per_replay, 0u);
  }
}

// The Dirichlet-process mixture of svi_bench and examples/dp_mixture.cpp (smaller): stick
// breaking (cumprod, pad), a score-function Categorical, MultivariateNormal sites (Cholesky
// solves), index_select by the drawn assignments; with and without validation.
TEST(CompileTest, DirichletProcessMixtureReplaysBitForBit) {
  constexpr std::int64_t kT = 3, kN = 20;
  Generator data_gen(3);
  const Tensor data = randn({kN, 2}, {}, &data_gen) + tensor({2.0, -1.0});
  const Tensor eye2 = eye(2);
  auto mix_weights = [](const Tensor& beta) {
    return pad(beta, {0, 1}, 1.0) * pad(cumprod(1.0 - beta, -1), {1, 0}, 1.0);
  };
  auto model = [&] {
    Tensor beta, mu;
    {
      auto p = plate("beta_plate", kT - 1);
      beta = sample("beta", dist::Beta(ones({}), 0.5));
    }
    {
      auto p = plate("mu_plate", kT);
      mu = sample("mu", dist::MultivariateNormal(zeros({2}), eye2 * 2.0));
    }
    auto p = plate("data", kN);
    const Tensor z = sample("z", dist::Categorical(mix_weights(beta)));
    sample("obs", dist::MultivariateNormal(index_select(mu, 0, z), eye2), data);
  };
  auto guide = [&] {
    const Tensor kappa = param("kappa", full({kT - 1}, 1.5), constraints::positive);
    const Tensor tau = param("tau", tensor({{0.0, 0.0}, {1.0, 1.0}, {-1.0, 0.5}}));
    const Tensor phi = param("phi", full({kN, kT}, 1.0 / kT), constraints::simplex);
    {
      auto p = plate("beta_plate", kT - 1);
      sample("beta", dist::Beta(ones({kT - 1}), kappa));
    }
    {
      auto p = plate("mu_plate", kT);
      sample("mu", dist::MultivariateNormal(tau, eye2));
    }
    auto p = plate("data", kN);
    sample("z", dist::Categorical(phi));
  };
  for (bool checked : {false, true}) {
    const ValidationScope validation(checked);
    const SVIOptions o{.check_finite = checked};
    expect_identical(
        fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), false, 20, no_args, o),
        fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), true, 20, no_args, o));
  }
}

// ---- the examples' programs: networks, data loaders, schedules ----
// The VAE of examples/vae.cpp: nn modules in model and guide, batches rebound. Small, and at
// the example's sizes (hidden 400, z 20) on batches of 64, where the step's activations,
// logits and their gradients (100 to 200 KB each) share memory in the plan.
Fit vae_fit(bool compiled, std::int64_t batch, std::int64_t hidden, std::int64_t z_dim) {
  ParamStore store;
  set_rng_seed(21);
  Generator init(4);
  examples::Vae vae({.z_dim = z_dim, .hidden = hidden, .gen = &init});
  Generator data_gen(8);
  std::vector<Tensor> images;
  for (int i = 0; i < 3; ++i)
    images.push_back(rand({batch, examples::kImagePixels}, {}, &data_gen));
  SVI svi([&](const Tensor& x) { vae.model(x); }, [&](const Tensor& x) { vae.guide(x); },
          optim::Adam({.lr = 1e-3}), Trace_ELBO(), {.param_store = &store});
  if (compiled) svi.compile();
  Fit f;
  for (int i = 0; i < 12; ++i) f.losses.push_back(svi.step(images[i % 3]).value());
  for (const std::string& name : store.names())
    f.params[name] = store.get(name).to(kFloat64).flatten().to_vector<double>();
  f.stats = svi.compile_stats();
  return f;
}

TEST(CompileTest, VaeOfTheExampleReplaysBitForBit) {
  expect_identical(vae_fit(false, 5, 16, 3), vae_fit(true, 5, 16, 3));
  const Fit large = vae_fit(true, 64, 400, 20);
  expect_identical(vae_fit(false, 64, 400, 20), large);
  EXPECT_GT(large.stats.shared_buffers, 0u);
}

// examples/svi_part2.cpp: a DataLoader's batches and indices as step() arguments (the last
// batch of an epoch shorter), a plate subsampled by those indices, an encoder network and
// an ExponentialLR schedule stepped every epoch.
TEST(CompileTest, DataLoaderBatchesIndicesAndAScheduleAsInSviPart2) {
  constexpr std::int64_t n = 50;
  Generator data_gen(2024);
  const Tensor x = randn({n, 3}, f64(), &data_gen);
  const Tensor a = tensor({1.0, -0.5, 0.8}, f64());
  auto run = [&](bool compiled) {
    ParamStore store;
    set_rng_seed(0);
    Generator init(7);
    nn::Linear hidden(3, 8, true, f64(), &init), loc(8, 1, true, f64(), &init);
    auto model = [&](const Tensor& batch, const Tensor& indices) {
      const Tensor mu = param("mu", zeros({3}, f64()));
      const Tensor sigma = param("sigma", full({}, 1.0, f64()), constraints::positive);
      auto data = plate("data", n, {.subsample = indices});
      const Tensor z = sample("z", dist::Normal(zeros({}, f64()), 1.0).expand({batch.size(0)}));
      sample("x", dist::Normal(mu + z.unsqueeze(-1) * a, sigma).to_event(1), batch);
    };
    auto guide = [&](const Tensor& batch, const Tensor& indices) {
      module("hidden", hidden);
      module("loc", loc);
      auto data = plate("data", n, {.subsample = indices});
      sample("z", dist::Normal(loc(softplus(hidden(batch))).squeeze(-1), 0.5));
    };
    data::DataLoader loader(data::TensorDataset({x}),
                            {.batch_size = 16, .seed = 11, .prefetch = 0});
    SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), {.param_store = &store});
    svi.optimizer().set_schedule(optim::ExponentialLR{.gamma = 0.7});
    if (compiled) svi.compile();
    Fit f;
    for (int epoch = 0; epoch < 4; ++epoch) {
      for (const data::Batch& batch : loader)
        f.losses.push_back(svi.step(batch[0], batch.indices).value());
      svi.optimizer().schedule_step();
    }
    for (const std::string& name : store.names())
      f.params[name] = store.get(name).to(kFloat64).flatten().to_vector<double>();
    f.stats = svi.compile_stats();
    return f;
  };
  const Fit compiled = run(true);
  expect_identical(run(false), compiled);
  EXPECT_EQ(compiled.stats.plans, 2u);  // batches of 16, and the last one of 2
}

// examples/bnn_regression.cpp: a network's weights as sample sites (sample_parameters) and
// functional_call, an MLP with ReLU, data passed to step().
TEST(CompileTest, BayesianNeuralNetworkOfTheExample) {
  Generator init(7);
  nn::MLP net({1, 8, 1}, {.tensor_options = f64(), .gen = &init});
  Generator data(1);
  const Tensor x = rand({12, 1}, f64(), &data) * 4.0 - 2.0;
  const Tensor y = tanh(x).squeeze(-1) + randn({12}, f64(), &data) * 0.1;
  auto model = [&](const Tensor& xs, const Tensor& ys) {
    const nn::StateDict w = nn::sample_parameters(
        "bnn", net,
        [](const std::string&, const Tensor& p) { return dist::Normal(zeros_like(p), 1.0); });
    auto plate_data = plate("data", xs.size(0));
    sample("obs", dist::Normal(nn::functional_call(net, w, xs).squeeze(-1), 0.1), ys);
  };
  auto guide = [&](const Tensor&, const Tensor&) {
    nn::sample_parameters("bnn", net, [](const std::string& path, const Tensor& p) {
      const Tensor loc = param("loc." + path, p.detach().clone());
      const Tensor scale = param("scale." + path, full_like(p, 0.01), constraints::positive);
      return dist::Normal(loc, scale);
    });
  };
  auto args = [&](int) { return std::make_tuple(x, y); };
  expect_identical(fit(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), false, 15, args),
                   fit(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), true, 15, args));
}

// examples/svi_part3.cpp: a Beta guide without rsample (score function) with a decaying
// baseline under TraceGraph_ELBO, Adam with other betas; examples/intro_inference.cpp: SGD with
// momentum on a Normal guide of a conditioned model.
TEST(CompileTest, SviPartThreeAndIntroInferenceOfTheExamples) {
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, f64());
  auto model = [](const Tensor& fl) {
    const Tensor f = sample("latent_fairness", dist::Beta(10.0, 10.0));
    auto data = plate("data", fl.size(0));
    sample("obs", dist::Bernoulli(f), fl);
  };
  auto guide = [](const Tensor&) {
    const Tensor a = param("alpha_q", 15.0, constraints::positive);
    const Tensor b = param("beta_q", 15.0, constraints::positive);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = true;
    opts.infer.baseline.baseline_beta = 0.90;
    sample("latent_fairness", dist::Beta(a, b).without_rsample(), opts);
  };
  auto args = [&](int) { return std::make_tuple(flips); };
  auto adam = [] { return optim::Adam({.lr = 0.0005, .betas = {0.93, 0.999}}); };
  expect_identical(fit(model, guide, adam(), TraceGraph_ELBO(), false, 30, args),
                   fit(model, guide, adam(), TraceGraph_ELBO(), true, 30, args));

  auto conditioned = [](double guess) {
    const Tensor weight = sample("weight", dist::Normal(scalar_tensor(guess, f64()), 1.0));
    sample("measurement", dist::Normal(weight, 0.75), scalar_tensor(9.5, f64()));
  };
  auto normal_guide = [](double guess) {
    const Tensor a = param("a", scalar_tensor(guess, f64()));
    const Tensor b = param("b", scalar_tensor(1.0, f64()), constraints::positive);
    sample("weight", dist::Normal(a, b));
  };
  auto guess = [](int) { return std::make_tuple(8.5); };  // a number: part of the plan's key
  auto sgd = [] { return optim::SGD({.lr = 0.001, .momentum = 0.1}); };
  expect_identical(fit(conditioned, normal_guide, sgd(), Trace_ELBO(), false, 30, guess),
                   fit(conditioned, normal_guide, sgd(), Trace_ELBO(), true, 30, guess));
}

// examples/amortized_encoder.cpp: an MLP encoder (nn::MLP with a softplus output activation)
// in the guide and a plate subsampled by size (the example captures the data; here it is
// passed to step()).
TEST(CompileTest, AmortizedEncoderOfTheExample) {
  constexpr std::int64_t kPoints = 60, kBatch = 12;
  Generator data(3);
  const Tensor a = tensor({1.0, -0.5, 0.8}, f64());
  const Tensor x =
      randn({kPoints}, f64(), &data).unsqueeze(1) * a + randn({kPoints, 3}, f64(), &data) * 0.3;
  // The networks' weights are the store's parameters once module() lifts them: each fit
  // starts from networks of its own.
  auto run = [&](bool compiled) {
    Generator gen(4);
    nn::MLP hidden({3, 16}, {.output_activation = [](const Tensor& t) { return softplus(t); },
                             .tensor_options = f64(),
                             .gen = &gen});
    nn::Linear loc(16, 1, true, f64(), &gen), scale(16, 1, true, f64(), &gen);
    auto model = [&](const Tensor& xs) {
      auto points = plate("points", kPoints, {.subsample_size = kBatch});
      const Tensor z = sample("z", dist::Normal(zeros({}, f64()), 1.0));
      sample("x", dist::Normal(z.unsqueeze(-1) * a, 0.3).to_event(1), points.subsample(xs));
    };
    auto guide = [&](const Tensor& xs) {
      module("hidden", hidden);
      module("loc", loc);
      module("scale", scale);
      auto points = plate("points", kPoints, {.subsample_size = kBatch});
      const Tensor h = hidden(points.subsample(xs));
      sample("z", dist::Normal(loc(h).squeeze(-1), softplus(scale(h)).squeeze(-1) + 1e-3));
    };
    auto args = [&](int) { return std::make_tuple(x); };
    return fit(model, guide, optim::Adam({.lr = 0.005}), Trace_ELBO(), compiled, 20, args);
  };
  expect_identical(run(false), run(true));
}

// A BatchNorm1d in training mode inside the guide: its running statistics carry from replay to
// replay (they are updated in place), as they do from step to step.
TEST(CompileTest, BatchNormRunningStatisticsCarryAcrossReplays) {
  Generator data(9);
  const Tensor x = randn({16, 3}, f64(), &data);
  auto run = [&](bool compiled) {
    Generator init(2);
    nn::Linear layer(3, 4, true, f64(), &init);
    nn::BatchNorm1d norm(4, {.momentum = 0.2}, f64());
    auto model = [&](const Tensor& xs) {
      auto p = plate("data", xs.size(0));
      sample("z", dist::Normal(zeros({}, f64()), 1.0).expand({xs.size(0)}));
    };
    auto guide = [&](const Tensor& xs) {
      module("layer", layer);
      auto p = plate("data", xs.size(0));
      sample("z", dist::Normal(sum(norm(layer(xs)), {-1}) * 0.1, 1.0));
    };
    Fit f = fit(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), compiled, 10,
                [&](int) { return std::make_tuple(x); });
    f.params["running_mean"] = norm.running_mean().to_vector<double>();
    f.params["running_var"] = norm.running_var().to_vector<double>();
    f.params["batches"] = {static_cast<double>(norm.num_batches_tracked())};
    return f;
  };
  const Fit compiled = run(true);
  expect_identical(run(false), compiled);
  EXPECT_EQ(compiled.params.at("batches")[0], 10.0);
}

// ---- allocations, evaluate_loss, run() ----
TEST(CompileTest, AReplayedStepMakesNoTensorAllocation) {
  ParamStore store;
  const Tensor flips = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0});
  SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), {.param_store = &store});
  svi.compile();
  for (int i = 0; i < 3; ++i) svi.step(flips);
  const profile::Counters before = profile::counters();
  double sum = 0;
  for (int i = 0; i < 20; ++i) sum += svi.step(flips).value();
  const profile::Counters used = profile::counters() - before;
  EXPECT_TRUE(std::isfinite(sum));
  EXPECT_EQ(used.allocations, 0u);
  EXPECT_EQ(svi.compile_stats().replays, 21);
  EXPECT_GT(svi.compile_stats().calls_per_replay, 10u);
  // The prior's constants (the fill of full({}, 10.0)) are made once, not at every replay;
  // the draws, whose results change, are replayed.
  const std::string plans = svi.describe_plans();
  EXPECT_NE(plans.find("(hoisted) fill"), std::string::npos) << plans;
  EXPECT_EQ(plans.find("(hoisted) sample"), std::string::npos) << plans;
  EXPECT_NE(plans.find("sample LogStandardGamma"), std::string::npos) << plans;
  // Replayed calls on the CPU ran bound, as many as the stats count.
  std::size_t bound_lines = 0;
  for (std::size_t at = plans.find("(bound) "); at != std::string::npos;
       at = plans.find("(bound) ", at + 1))
    ++bound_lines;
  EXPECT_GT(bound_lines, 0u) << plans;
  EXPECT_EQ(bound_lines, svi.compile_stats().bound_calls_per_replay) << plans;
  EXPECT_GT(svi.compile_stats().retained_bytes, 0u);
  // The eager step of the same program allocates tensors.
  SVI eager(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
            {.param_store = &store});
  eager.step(flips);
  const profile::Counters e0 = profile::counters();
  eager.step(flips);
  EXPECT_GT((profile::counters() - e0).allocations, 10u);
}

TEST(CompileTest, EvaluateLossAndRunReplayToo) {
  const Tensor flips = tensor({1, 1, 1, 0, 0, 1, 1, 1, 0, 1});
  for (bool compiled : {false, true}) {
    ParamStore store;
    set_rng_seed(7);
    SVI svi(coin_model, coin_guide, optim::Adam({.lr = 1e-2}), Trace_ELBO(),
            {.param_store = &store});
    if (compiled) svi.compile();
    const RunResult r = svi.run(20, RunOptions{.progress = Progress::None}, flips);
    std::vector<double> evals;
    for (int i = 0; i < 5; ++i) evals.push_back(svi.evaluate_loss(flips).value());
    static std::vector<double> first_losses, first_evals;
    if (!compiled) {
      first_losses = r.losses;
      first_evals = evals;
    } else {
      EXPECT_EQ(r.losses, first_losses);
      EXPECT_EQ(evals, first_evals);
      EXPECT_EQ(svi.compile_stats().recordings, 2);  // one step plan, one evaluate plan
    }
  }
}

// ---- what a compiled step refuses ----
TEST(CompileTest, VerifyEveryDetectsAChangedStructure) {
  bool extra = false;
  auto model = [&] {
    const Tensor z = sample("z", dist::Normal(zeros({2}, f64()), 1.0).to_event(1));
    sample("x", dist::Normal(extra ? z * 2.0 : z, 1.0).to_event(1), ones({2}, f64()));
  };
  auto guide = [] {
    const Tensor loc = param("loc", zeros({2}, f64()));
    sample("z", dist::Normal(loc, 1.0).to_event(1));
  };
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), {.param_store = &store});
  svi.compile({.verify_every = 5});
  for (int i = 0; i < 8; ++i) svi.step();
  EXPECT_GE(svi.compile_stats().verifications, 1);
  extra = true;  // a captured flag: invisible to the plan's key
  svi.step();    // step 9: replayed, the change unseen
  EMBER_EXPECT_THROW_WITH(svi.step(), CompileError, "verify_every = 5",
                          "differs from its compiled plan", "kernel call");
}

TEST(CompileTest, AHostReadWhileRecordingIsACompileError) {
  auto model = [] {
    const Tensor z = sample("z", dist::Normal(zeros({}, f64()), 1.0));
    if (z.item() > 100.0) sample("never", dist::Normal(0.0, 1.0));  // a value steering it
  };
  auto guide = [] { sample("z", dist::Normal(param("loc", zeros({}, f64())), 1.0)); };
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), {.param_store = &store});
  svi.compile();
  svi.step();  // eager: the first step
  EMBER_EXPECT_THROW_WITH(svi.step(), CompileError, "read a tensor's value on the host",
                          "without compile()");
}

// A sequential plate over its full range runs its host loop while recording; its indices are
// the same at every step. A subsampled one is refused.
TEST(CompileTest, SequentialPlatesOverTheFullRangeAndSubsampledOnes) {
  const Tensor obs = tensor({0.3, -0.2, 1.1}, f64());
  auto model = [&] {
    const Tensor mu = sample("mu", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    for (std::int64_t i : sequential_plate("points", 3))
      sample("x_" + std::to_string(i), dist::Normal(mu, 0.5), obs.narrow(0, i, 1).squeeze(0));
  };
  auto guide = [] { sample("mu", dist::Normal(param("loc", scalar_tensor(0.0, f64())), 0.3)); };
  expect_identical(fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), false, 12, no_args),
                   fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), true, 12, no_args));

  auto subsampled = [&] {
    const Tensor mu = sample("mu", dist::Normal(scalar_tensor(0.0, f64()), 1.0));
    for (std::int64_t i : sequential_plate("points", 3, {.subsample_size = 2}))
      sample("x_" + std::to_string(i), dist::Normal(mu, 0.5), obs.narrow(0, i, 1).squeeze(0));
  };
  ParamStore store;
  SVI svi(subsampled, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), {.param_store = &store});
  svi.compile();
  svi.step();
  EMBER_EXPECT_THROW_WITH(svi.step(), CompileError, "sequential_plate 'points' is subsampled",
                          "vectorized plate");
}

// Tensors inside a std::vector or a DataLoader batch are inputs; an argument of a type whose
// tensors cannot be seen is refused rather than read as a constant.
TEST(CompileTest, ArgumentsInVectorsAndBatchesAreInputsOpaqueOnesAreRefused) {
  const auto data = batches(4, 32);
  const Regression r;
  auto model = [&](const std::vector<Tensor>& xy) { r.model(xy[0], xy[1]); };
  auto guide = [&](const std::vector<Tensor>& xy) { r.guide(xy[0], xy[1]); };
  auto args = [&](int i) {
    return std::make_tuple(std::vector<Tensor>{data[i % 4].first, data[i % 4].second});
  };
  expect_identical(fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), false, 12, args),
                   fit(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), true, 12, args));

  const Tensor x = data[0].first, y = data[0].second;
  auto batch_model = [&](const data::Batch& b) { r.model(b[0], b[1]); };
  auto batch_guide = [&](const data::Batch& b) { r.guide(b[0], b[1]); };
  auto run = [&](bool compiled) {
    data::DataLoader loader(data::TensorDataset({x, y}),
                            {.batch_size = 8, .seed = 1, .prefetch = 0});  // the same epochs
    ParamStore store;
    set_rng_seed(5);
    SVI svi(batch_model, batch_guide, optim::Adam({.lr = 0.02}), Trace_ELBO(),
            {.param_store = &store});
    if (compiled) svi.compile();
    std::vector<double> losses;
    for (int epoch = 0; epoch < 3; ++epoch)
      for (const data::Batch& b : loader) losses.push_back(svi.step(b).value());
    return losses;
  };
  EXPECT_EQ(run(false), run(true));

  struct Holder {
    Tensor x, y;
  };
  auto opaque_model = [&](const Holder& h) { r.model(h.x, h.y); };
  auto opaque_guide = [&](const Holder& h) { r.guide(h.x, h.y); };
  ParamStore store;
  SVI svi(opaque_model, opaque_guide, optim::Adam({.lr = 0.02}), Trace_ELBO(),
          {.param_store = &store});
  svi.step(Holder{x, y});  // eager: fine
  svi.compile();
  EMBER_EXPECT_THROW_WITH(svi.step(Holder{x, y}), CompileError, "argument 0", "cannot see",
                          "Pass the tensors themselves");
  EMBER_EXPECT_THROW_WITH(compile([](const Holder& h) { return h.x; })(Holder{x, y}), CompileError,
                          "ember::compile: argument 0");
}

TEST(CompileTest, ADrawFromAnotherGeneratorIsACompileError) {
  Generator own(5);
  auto model = [&] {
    const Tensor z = sample("z", dist::Normal(zeros({2}), 1.0).to_event(1));
    sample("x", dist::Normal(z + randn({2}, {}, &own), 1.0).to_event(1), ones({2}));
  };
  auto guide = [] { sample("z", dist::Normal(param("loc", zeros({2})), 1.0).to_event(1)); };
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), {.param_store = &store});
  svi.compile();
  svi.step();
  EMBER_EXPECT_THROW_WITH(svi.step(), CompileError, "Normal draw came from a generator other than",
                          "thread's generator only");
}

TEST(CompileTest, NonFiniteReplayFallsBackToTheEagerDiagnosis) {
  auto model = [](const Tensor& s) {
    const Tensor z = sample("z", dist::Normal(zeros({}, f64()), 1.0));
    sample("x", dist::Normal(z, s), scalar_tensor(0.5, f64()));
  };
  auto guide = [](const Tensor&) {
    sample("z", dist::Normal(param("loc", zeros({}, f64())), 1.0));
  };
  for (bool validate : {false, true}) {
    const ValidationScope validation(validate);
    ParamStore store;
    SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), {.param_store = &store});
    svi.compile();
    for (int i = 0; i < 4; ++i) svi.step(scalar_tensor(1.0, f64()));
    // The same shapes, a value that makes the likelihood's log-density infinite: a replay
    // skips validation but not the finite check, whose failure reruns the step eagerly, which
    // raises what an eager step raises.
    const Tensor zero = scalar_tensor(0.0, f64());
    if (validate) {
      EMBER_EXPECT_THROW_WITH(svi.step(zero), ValueError, "site 'x'", "scale must be positive");
    } else {
      EMBER_EXPECT_THROW_WITH(svi.step(zero), NonFiniteError, "SVI step 4", "'x'");
    }
    EXPECT_EQ(svi.compile_stats().eager_steps, 2);  // the first step and the diagnosis
    EXPECT_EQ(svi.num_steps_taken(), 4);
  }
}

TEST(CompileTest, SkipNonfiniteSkipsAReplayedStepAsAnEagerOne) {
  auto model = [](const Tensor& s) {
    const Tensor z = sample("z", dist::Normal(zeros({}, f64()), 1.0));
    sample("x", dist::Normal(z, s), scalar_tensor(0.5, f64()));
  };
  auto guide = [](const Tensor&) {
    sample("z", dist::Normal(param("loc", zeros({}, f64())), 1.0));
  };
  const ValidationScope no_validation(false);
  auto run = [&](bool compiled) {
    ParamStore store;
    set_rng_seed(4);
    SVI svi(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(),
            {.skip_nonfinite = true, .param_store = &store});
    if (compiled) svi.compile();
    std::vector<double> locs;
    for (int i = 0; i < 9; ++i) {
      svi.step(scalar_tensor(i % 4 == 3 ? 0.0 : 1.0, f64()));  // every fourth step: not finite
      locs.push_back(store.get("loc").item());
    }
    EXPECT_EQ(svi.skipped_steps(), 2);
    return locs;
  };
  EXPECT_EQ(run(false), run(true));
}

// Each thread compiles its own SVI over its own store: plans, recorders and generators are
// per thread and per SVI, so threads give what the same fits give one after the other.
TEST(CompileTest, FitsCompiledInThreadsMatchTheSameFitsInOneThread) {
  const Tensor flips = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0});
  auto fit_one = [&](std::uint64_t seed) {
    ParamStore store;
    set_rng_seed(seed);
    SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
            {.param_store = &store});
    svi.compile({.verify_every = 7});
    std::vector<double> losses;
    for (int i = 0; i < 40; ++i) losses.push_back(svi.step(flips).value());
    losses.push_back(store.get("alpha_q").item());
    return losses;
  };
  std::vector<std::vector<double>> alone;
  for (std::uint64_t seed = 0; seed < 4; ++seed) alone.push_back(fit_one(seed));
  std::vector<std::vector<double>> threaded(4);
  std::vector<std::thread> threads;
  for (std::uint64_t seed = 0; seed < 4; ++seed)
    threads.emplace_back([&, seed] { threaded[seed] = fit_one(seed); });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(threaded, alone);
}

TEST(CompileTest, ParamsSetFromOutsideAreReadByTheNextStep) {
  ParamStore store;
  const Tensor flips = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0});
  auto run = [&](bool compiled) {
    store.clear();
    set_rng_seed(3);
    SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
            {.param_store = &store});
    if (compiled) svi.compile();
    std::vector<double> losses;
    for (int i = 0; i < 6; ++i) losses.push_back(svi.step(flips).value());
    store.set("alpha_q", full({}, 3.0), constraints::positive);  // new memory for the param
    for (int i = 0; i < 6; ++i) losses.push_back(svi.step(flips).value());
    return losses;
  };
  EXPECT_EQ(run(false), run(true));
}

// A fit started afresh by clearing the store, whose params' initial values come from a
// Generator of the program's own: the step after the clear makes them again eagerly (it is
// not recorded), and the fit goes on replaying, as the eager fit does.
TEST(CompileTest, AClearedStoreIsRefilledByAnEagerStep) {
  const Tensor flips = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0});
  auto run = [&](bool compiled) {
    ParamStore store;
    Generator init(11);
    auto guide = [&](const Tensor&) {
      const Tensor a = param(
          "alpha_q", [&] { return rand({}, {}, &init) + 10.0; }, constraints::positive);
      const Tensor b = param("beta_q", full({}, 15.0), constraints::positive);
      sample("fairness", dist::Beta(a, b));
    };
    set_rng_seed(3);
    SVI svi(coin_model, guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), {.param_store = &store});
    if (compiled) svi.compile();
    std::vector<double> losses;
    for (int fit = 0; fit < 3; ++fit) {
      store.clear();
      for (int i = 0; i < 5; ++i) losses.push_back(svi.step(flips).value());
      losses.push_back(store.get("alpha_q").item());
    }
    if (compiled) {
      const CompileStats stats = svi.compile_stats();
      EXPECT_EQ(stats.eager_steps, 3);  // one per fit
      EXPECT_EQ(stats.recordings, 3);
      EXPECT_EQ(stats.replays, 9);
    }
    return losses;
  };
  const std::vector<double> eager = run(false);
  EXPECT_EQ(run(true), eager);
  EXPECT_NE(eager[5], eager[11]);  // each fit began from its own draw
}

// Parameters made by a step that is recorded (the first evaluate_loss after compile(), the
// first step after the store was cleared or another made current by a compile() that came
// after eager steps) are made as an eager step makes them: the recording is dropped, a later
// step records, and the fit gives the eager fit's bits (it was a CompileError at every step:
// making a parameter reads its constraint check on the host).
TEST(CompileTest, ParamsMadeWhileAStepIsRecordedAreMadeAsEagerly) {
  const Tensor flips = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0});
  auto run = [&](bool compiled) {
    std::vector<double> out;
    {
      ParamStore store;
      set_rng_seed(3);
      SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
              {.param_store = &store});
      if (compiled) svi.compile();
      for (int i = 0; i < 3; ++i) out.push_back(svi.evaluate_loss(flips).value());
      for (int i = 0; i < 4; ++i) out.push_back(svi.step(flips).value());
    }
    {
      ParamStore store;
      set_rng_seed(4);
      SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
              {.param_store = &store});
      for (int i = 0; i < 2; ++i) out.push_back(svi.step(flips).value());
      store.clear();
      if (compiled) svi.compile();
      for (int i = 0; i < 5; ++i) out.push_back(svi.step(flips).value());
      if (compiled) EXPECT_GE(svi.compile_stats().replays, 3);
    }
    {
      ParamStore first;
      const ParamStoreScope in_first(first);
      set_rng_seed(5);
      SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO());
      for (int i = 0; i < 2; ++i) out.push_back(svi.step(flips).value());
      if (compiled) svi.compile();
      ParamStore second;  // another tenant, or a restart
      const ParamStoreScope in_second(second);
      for (int i = 0; i < 5; ++i) out.push_back(svi.step(flips).value());
      if (compiled) EXPECT_GE(svi.compile_stats().replays, 3);
    }
    return out;
  };
  const std::vector<double> eager = run(false);
  EXPECT_EQ(run(true), eager);
}

// A group index passed to step() and out of range: a replay throws the eager op's error
// before it reads or writes outside the table (index_select forward, index_add backward),
// and updates nothing; the fit then goes on as the eager fit does.
TEST(CompileTest, AnIndexInputOutOfRangeThrowsTheEagerErrorInAReplay) {
  auto model = [](const Tensor& group, const Tensor& y) {
    const Tensor loc = sample("loc", dist::Normal(zeros({3}, f64()), 1.0).to_event(1));
    auto rows = plate("rows", y.size(0));
    sample("y", dist::Normal(index_select(loc, 0, group), 1.0), y);
  };
  auto guide = [](const Tensor&, const Tensor&) {
    const Tensor loc = param("loc_q", zeros({3}, f64()));
    sample("loc", dist::Normal(loc, 0.5).to_event(1));
  };
  const Tensor y = tensor({0.5, -1.0, 2.0, 0.25}, f64());
  const auto i64 = TensorOptions{}.with_dtype(kInt64);
  auto run = [&](bool compiled) {
    ParamStore store;
    set_rng_seed(6);
    SVI svi(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), {.param_store = &store});
    if (compiled) svi.compile();
    std::vector<double> out;
    for (int i = 0; i < 4; ++i) out.push_back(svi.step(full({4}, double(i % 3), i64), y).value());
    for (const double bad : {3.0, 1e9, -1.0}) {
      EMBER_EXPECT_THROW_WITH(svi.step(full({4}, bad, i64), y), ValueError, "index_select: index ",
                              "is out of range for dim 0 of size 3");
    }
    const std::vector<double> loc = store.get("loc_q").to_vector<double>();
    out.insert(out.end(), loc.begin(), loc.end());  // not updated by the failed steps
    set_rng_seed(7);
    for (int i = 0; i < 3; ++i) out.push_back(svi.step(full({4}, double(i % 3), i64), y).value());
    if (compiled) EXPECT_EQ(svi.compile_stats().replays, 5);
    return out;
  };
  const std::vector<double> eager = run(false);
  EXPECT_EQ(run(true), eager);
}

// A step input that requires grad: each step adds its gradient to the input's .grad, as
// eager steps do, bit for bit, in replays too; after zero_grad() the next step's gradient
// is the new .grad (replays wrote into the plan's buffers, and nothing after zero_grad()).
TEST(CompileTest, AnInputThatRequiresGradAccumulatesItsGradAsEagerSteps) {
  Generator data(3);
  const Tensor X = randn({10, 3}, f64(), &data), Y = randn({10}, f64(), &data);
  auto model = [](const Tensor& x, const Tensor& y) {
    const Tensor w = sample("w", dist::Normal(zeros({3}, f64()), 1.0).to_event(1));
    auto rows = plate("rows", x.size(0));
    sample("y", dist::Normal(matmul(x, w), 0.7), y);
  };
  auto guide = [](const Tensor& x, const Tensor&) {
    const Tensor loc = param("loc", zeros({3}, f64()));
    const Tensor scale = param("scale", full({3}, 0.3, f64()), constraints::positive);
    sample("w", dist::Normal(loc + sum(x * x) * 1e-3, scale).to_event(1));  // x used twice
  };
  auto run = [&](bool compiled) {
    ParamStore store;
    set_rng_seed(9);
    SVI svi(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), {.param_store = &store});
    if (compiled) svi.compile();
    const Tensor x = X.clone().requires_grad_();
    std::vector<std::vector<double>> out;
    for (int i = 0; i < 8; ++i) {
      out.push_back({svi.step(x, Y).value()});
      out.push_back(x.grad().to_vector<double>());
      if (i == 4) x.zero_grad();
    }
    if (compiled) EXPECT_GE(svi.compile_stats().replays, 6);
    return out;
  };
  const auto eager = run(false);
  EXPECT_EQ(run(true), eager);
}

// compile() with fewer plans than are cached keeps the most recently used ones.
TEST(CompileTest, FewerPlansKeepTheMostRecentlyUsed) {
  auto model = [](const Tensor& flips) { coin_model(flips); };
  ParamStore store;
  SVI svi(model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(), {.param_store = &store});
  svi.compile();
  const Tensor a = tensor({1, 0, 1, 1}), b = tensor({1, 0, 1, 1, 0, 0});
  for (const Tensor* flips : {&a, &a, &b, &b, &a, &a}) svi.step(*flips);
  const CompileStats before = svi.compile_stats();
  ASSERT_EQ(before.plans, 2u);
  svi.compile({.max_plans = 1});
  svi.step(a);  // b's plan was dropped, a's replayed
  EXPECT_EQ(svi.compile_stats().plans, 1u);
  EXPECT_EQ(svi.compile_stats().recordings, before.recordings);
  EXPECT_EQ(svi.compile_stats().replays, before.replays + 1);
}

TEST(CompileTest, CompileOptionsAreChecked) {
  ParamStore store;
  SVI svi(coin_model, coin_guide, optim::Adam(optim::AdamOptions{}), Trace_ELBO(),
          {.param_store = &store});
  EMBER_EXPECT_THROW_WITH(svi.compile({.verify_every = -1}), ValueError, "verify_every");
  EMBER_EXPECT_THROW_WITH(svi.compile({.max_plans = 0}), ValueError, "max_plans");
  EXPECT_FALSE(svi.compiled());
  svi.compile();
  EXPECT_TRUE(svi.compiled());
}

}  // namespace
}  // namespace ember
