// SVI on the device: the same seed gives the CPU's parameters step for step, fits reach the
// exact posteriors, and a step with validation and finite checks off never waits on the
// device.
#include "cuda_harness.hpp"

namespace ember::test {
namespace {

TensorOptions on(Device d) { return TensorOptions{}.with_dtype(kFloat64).with_device(d); }

// The coin, with a reparameterized or a score-function Beta guide, on `d`; compiled with
// `compiled` when given.
std::pair<double, double> coin_fit(Device d, bool reparam, int steps, std::uint64_t seed,
                                   bool own_stream = false,
                                   const CompileOptions* compiled = nullptr) {
  set_rng_seed(seed);
  ParamStore store;
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, on(d));
  const Tensor prior = full({}, 10.0, on(d));
  auto model = [&] {
    const Tensor f = sample("fairness", dist::Beta(prior, prior));
    auto p = plate("data", 10, {.device = d});
    sample("obs", dist::Bernoulli(f), flips);
  };
  auto guide = [&] {
    const Tensor a = param("a", full({}, 15.0, on(d)), constraints::positive);
    const Tensor b = param("b", full({}, 15.0, on(d)), constraints::positive);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = true;
    dist::Distribution q = dist::Beta(a, b);
    sample("fairness", reparam ? q : q.without_rsample(), opts);
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.02}), TraceGraph_ELBO(),
          {.param_store = &store, .own_stream = own_stream});
  if (compiled != nullptr) svi.compile(*compiled);
  double a = 0, b = 0;
  const int tail = steps / 3;
  for (int i = 0; i < steps; ++i) {
    svi.step();
    if (i >= steps - tail) {
      a += store.get("a").item() / tail;
      b += store.get("b").item() / tail;
    }
  }
  return {a, b};
}

// The coin with its flips passed to each step, a reparameterized Beta guide and Adam, no
// finite check.
void data_coin_model(const Tensor& x) {
  const Tensor f = sample("fairness", dist::Beta(full({}, 10.0, on(target())), 10.0));
  auto p = plate("data", x.size(0), {.device = target()});
  sample("obs", dist::Bernoulli(f), x);
}
void data_coin_guide(const Tensor&) {
  const Tensor a = param("a", full({}, 15.0, on(target())), constraints::positive);
  const Tensor b = param("b", full({}, 15.0, on(target())), constraints::positive);
  sample("fairness", dist::Beta(a, b));
}
auto data_coin_svi(ParamStore& store) {
  return SVI(data_coin_model, data_coin_guide, optim::Adam({.lr = 0.02}), Trace_ELBO(),
             {.check_finite = false, .param_store = &store});
}

// The device's last-ulp differences (see chain_tolerance) compound over thirty steps of
// Adam; a wrong step is off by far more.
constexpr double kFitRtol = 1e-6;

TEST(SviCuda, SameSeedSameParametersAsTheCpu) {
  EMBER_REQUIRE_CUDA();
  for (bool reparam : {true, false}) {
    const auto cpu = coin_fit(Device::cpu(), reparam, 30, 5);
    const auto device = coin_fit(target(), reparam, 30, 5);
    EXPECT_NEAR(device.first, cpu.first, kFitRtol * cpu.first) << "reparam " << reparam;
    EXPECT_NEAR(device.second, cpu.second, kFitRtol * cpu.second) << "reparam " << reparam;
  }
}

// A compiled fit replays the eager fit's kernels on the device, in CUDA Graphs or launched one
// by one: the same numbers exactly. With validation and the finite check off a replayed step
// neither waits for the device nor allocates more than its loss's copy, and most of its calls
// run inside graphs.
TEST(SviCuda, CompiledStepsReplayTheEagerStepsExactly) {
  EMBER_REQUIRE_CUDA();
  CompileOptions graphs, one_by_one;
  one_by_one.cuda_graphs = false;
  for (bool reparam : {true, false}) {
    const auto eager = coin_fit(target(), reparam, 30, 5);
    for (const CompileOptions* opts : {&graphs, &one_by_one}) {
      const auto compiled = coin_fit(target(), reparam, 30, 5, false, opts);
      EXPECT_EQ(compiled.first, eager.first)
          << "reparam " << reparam << ", graphs " << opts->cuda_graphs;
      EXPECT_EQ(compiled.second, eager.second)
          << "reparam " << reparam << ", graphs " << opts->cuda_graphs;
    }
  }
  const ValidationScope no_validation(false);
  ParamStore store;
  const Tensor flips = tensor({1, 0, 1, 1, 0, 1, 1, 0, 1, 1}, on(target()));
  auto svi = data_coin_svi(store);
  svi.compile();
  for (int i = 0; i < 3; ++i) svi.step(flips);
  const profile::Counters before = profile::counters();
  std::vector<LossValue> losses;
  for (int i = 0; i < 10; ++i) losses.push_back(svi.step(flips));
  const profile::Counters used = profile::counters() - before;
  EXPECT_EQ(used.host_syncs, 0u);
  EXPECT_LE(used.allocations, 10u);
  const CompileStats stats = svi.compile_stats();
  EXPECT_EQ(stats.replays, 11);
  // Each step's loss is its own: the next replay does not overwrite it.
  EXPECT_NE(losses[0].value(), losses[1].value());
  EXPECT_EQ(stats.capture_error, "");
  if (target().is_cuda()) {  // the CPU playing the device has no graphs
    // Every call of the plan runs inside one graph, the draws too (they read their offset from
    // the device): a launch for the graph, one that sets the draws' offset, and the update's
    // and the loss's own.
    EXPECT_EQ(stats.graphs_per_replay, 1u) << svi.describe_plans();
    EXPECT_EQ(stats.graph_calls_per_replay, stats.calls_per_replay) << svi.describe_plans();
    EXPECT_LE(used.kernel_launches, 10u * 6);
  }
}

// Draws in graphs start where the generator stands at each replay: a new seed captures them
// again, and draws made between steps move their offset. A compiled fit reseeded and drawn
// from between its steps gives the eager fit's losses and parameters exactly.
TEST(SviCuda, CompiledDrawsFollowReseedsAndDrawsBetweenSteps) {
  EMBER_REQUIRE_CUDA();
  const ValidationScope no_validation(false);
  const Tensor flips = tensor({1, 0, 1, 1, 0, 1, 1, 0, 1, 1}, on(target()));
  auto fit = [&](bool compiled) {
    set_rng_seed(5);
    ParamStore store;
    auto svi = data_coin_svi(store);
    if (compiled) svi.compile();
    std::vector<double> losses;
    for (int i = 0; i < 12; ++i) {
      if (i % 4 == 3) set_rng_seed(100 + i);
      if (i % 4 == 1) (void)randn({7}, on(target()));
      losses.push_back(svi.step(flips).value());
    }
    EXPECT_EQ(svi.compile_stats().capture_error, "");
    return std::make_pair(losses, store.get("a").item());
  };
  EXPECT_EQ(fit(true), fit(false));
}

// Fourteen steps of the data coin compiled with `opts`, its data at a new address every step
// (alternating between two data sets; the copies stay alive, so none reuses an earlier one's
// block).
struct MovingDataFit {
  std::vector<double> losses;
  CompileStats stats;
  std::string plans;
};
MovingDataFit moving_data_fit(const CompileOptions& opts) {
  const Tensor first = tensor({1, 0, 1, 1, 0, 1, 1, 0, 1, 1}, on(target()));
  const Tensor second = tensor({0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, on(target()));
  set_rng_seed(17);
  ParamStore store;
  auto svi = data_coin_svi(store);
  svi.compile(opts);
  MovingDataFit f;
  std::vector<Tensor> kept;
  for (int i = 0; i < 14; ++i) {
    const Tensor& x = kept.emplace_back((i % 2 == 0 ? first : second).clone());
    f.losses.push_back(svi.step(x).value());
  }
  f.stats = svi.compile_stats();
  f.plans = svi.describe_plans();
  EXPECT_EQ(f.stats.capture_error, "");
  return f;
}

// Data passed to a compiled step at a new address each step: graphs that read it are captured
// again and updated in place, so every step reads its own data (the losses are those of the
// calls launched one by one) and the graph stays in use, instantiated once.
TEST(SviCuda, CompiledGraphsFollowDataThatMoves) {
  EMBER_REQUIRE_CUDA();
  const ValidationScope no_validation(false);
  const MovingDataFit graphs = moving_data_fit({});
  CompileOptions launches;
  launches.cuda_graphs = false;
  EXPECT_EQ(graphs.losses, moving_data_fit(launches).losses);
  if (target().is_cuda()) {
    EXPECT_EQ(graphs.stats.graphs_per_replay, 1u) << graphs.plans;
    EXPECT_EQ(graphs.stats.graph_instantiations, 1u);
    // Step 0 makes the params, step 1 records, step 2 captures: 11 replays then move the data.
    EXPECT_EQ(graphs.stats.replays, 12);
    EXPECT_EQ(graphs.stats.graph_updates, 11u);
  }
}

// With CompileOptions::stage_inputs the data is copied into the plan's buffer from its second
// move on: the graph that reads it is captured for the first replay and updated once, to read
// the copy, and then relaunched as it is. The same losses as the calls launched one by one, and
// as the graphs that follow the data.
TEST(SviCuda, CompiledGraphsReadStagedDataWithoutCapturingAgain) {
  EMBER_REQUIRE_CUDA();
  const ValidationScope no_validation(false);
  CompileOptions opts;
  opts.stage_inputs = true;
  const MovingDataFit staged = moving_data_fit(opts);
  EXPECT_EQ(staged.stats.staged_inputs, 1u);
  opts.cuda_graphs = false;
  EXPECT_EQ(staged.losses, moving_data_fit(opts).losses);
  EXPECT_EQ(staged.losses, moving_data_fit({}).losses);
  if (target().is_cuda()) {
    EXPECT_EQ(staged.stats.graphs_per_replay, 1u) << staged.plans;
    EXPECT_EQ(staged.stats.graph_instantiations, 1u);
    // Step 0 makes the params, step 1 records, step 2 captures with the data where it is,
    // step 3 moves it into the plan's buffer (an update); the 10 replays after read it there.
    EXPECT_EQ(staged.stats.graph_updates, 1u);
  }
}

// Fits on streams of their own, in threads of their own, give exactly what the same fits give
// one after the other on the default stream: streams change the overlap, not the numbers.
TEST(SviCuda, FitsOnTheirOwnStreamsInThreadsMatchTheDefaultStream) {
  EMBER_REQUIRE_CUDA();
  const auto first = coin_fit(target(), true, 30, 21);
  const auto second = coin_fit(target(), false, 30, 22);
  std::pair<double, double> a, b;
  std::thread ta([&] { a = coin_fit(target(), true, 30, 21, /*own_stream=*/true); });
  std::thread tb([&] { b = coin_fit(target(), false, 30, 22, /*own_stream=*/true); });
  ta.join();
  tb.join();
  EXPECT_EQ(a, first);
  EXPECT_EQ(b, second);
}

TEST(SviCuda, SlowCoinReachesTheExactPosterior) {
  EMBER_REQUIRE_CUDA();
  for (bool reparam : {true, false}) {
    const auto [a, b] = coin_fit(target(), reparam, reparam ? 3000 : 6000, 11);
    EXPECT_NEAR(a / (a + b), 16.0 / 30.0, reparam ? 0.01 : 0.02) << "reparam " << reparam;
    EXPECT_NEAR(std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1))), 0.0896,
                reparam ? 0.01 : 0.02);
  }
}

TEST(SviCuda, SlowNormalNormalAndGammaPoissonOnTheDevice) {
  EMBER_REQUIRE_CUDA();
  const Device d = target();
  for (bool reparam : {true, false}) {
    set_rng_seed(3);
    ParamStore store;
    auto model = [&] {
      const Tensor w = sample("weight", dist::Normal(full({}, 8.5, on(d)), 1.0));
      sample("measurement", dist::Normal(w, 0.75), full({}, 9.5, on(d)));
      const Tensor rate = sample("rate", dist::Gamma(full({}, 3.0, on(d)), 1.0));
      auto p = plate("counts", 5, {.device = d});
      sample("obs", dist::Poisson(rate), tensor({2, 4, 3, 6, 5}, on(d)));
    };
    auto guide = [&] {
      SampleOptions opts;
      opts.infer.baseline.use_decaying_avg_baseline = true;
      dist::Distribution qw =
          dist::Normal(param("wa", full({}, 8.5, on(d))),
                       param("wb", full({}, 1.0, on(d)), constraints::positive));
      dist::Distribution qr = dist::Gamma(param("k", full({}, 5.0, on(d)), constraints::positive),
                                          param("r", full({}, 2.0, on(d)), constraints::positive));
      sample("weight", reparam ? qw : qw.without_rsample(), opts);
      sample("rate", reparam ? qr : qr.without_rsample(), opts);
    };
    SVI svi(model, guide, optim::Adam({.lr = reparam ? 0.01 : 0.005}), TraceGraph_ELBO(),
            {.param_store = &store});
    const int steps = reparam ? 4000 : 10000, tail = steps / 3;
    double wa = 0, wb = 0, k = 0, r = 0;
    for (int i = 0; i < steps; ++i) {
      svi.step();
      if (i >= steps - tail) {
        wa += store.get("wa").item() / tail;
        wb += store.get("wb").item() / tail;
        k += store.get("k").item() / tail;
        r += store.get("r").item() / tail;
      }
    }
    const double tol = reparam ? 0.03 : 0.08;
    EXPECT_NEAR(wa, 9.14, 0.05) << "reparam " << reparam;
    EXPECT_NEAR(wb, 0.6, 0.05) << "reparam " << reparam;
    EXPECT_NEAR(k / r, 23.0 / 6.0, tol * 23.0 / 6.0) << "reparam " << reparam;
  }
}

// Enumeration on the device: an HMM over a plate of sequences, its emissions shifted by a
// global enumerated switch, contracted on the GPU by the parallel scan (ChainScan::Auto picks
// it for 100 steps there) and, for a guide-enumerated mixture, the expectation over the
// guide's values: the CPU's step-by-step loss and gradients.
std::vector<double> enumerated_loss_and_grads(Device d, ChainScan scan) {
  set_rng_seed(11);
  ParamStore store;
  const std::int64_t n = 6, steps = 100;
  std::vector<double> values;
  for (std::int64_t i = 0; i < n * steps; ++i) values.push_back(3.0 * std::sin(0.7 * i));
  const Tensor x = from_vector(values, {n, steps}, on(d));
  auto model = [&] {
    const Tensor trans =
        param("trans", tensor({{0.7, 0.2, 0.1}, {0.1, 0.8, 0.1}, {0.3, 0.3, 0.4}}, on(d)),
              constraints::simplex);
    const Tensor locs = param("locs", tensor({-2.0, 0.5, 3.0}, on(d)));
    const Tensor g = sample("g", dist::Bernoulli(full({}, 0.4, on(d))));
    const Tensor shift = index_rows(tensor({0.0, 0.7}, on(d)), g.to(kInt64));
    auto seqs = plate("seqs", n, {.dim = -1, .device = d});
    const Tensor c = sample("c", dist::Categorical(tensor({0.5, 0.5}, on(d))));
    Tensor z = zeros({n}, TensorOptions{kInt64, d});
    for (std::int64_t t : markov(steps)) {
      z = sample("z_" + std::to_string(t), dist::Categorical(index_rows(trans, z)),
                 SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
      const Tensor loc = add(add(index_rows(locs, z), shift), mul(c.to(kFloat64), 0.3));
      sample("x_" + std::to_string(t), dist::Normal(loc, 0.5), x.select(1, t));
    }
  };
  auto guide = [&] {
    const Tensor a = param("a", full({}, 0.2, on(d)));
    sample("g", dist::Bernoulli::from_logits(a),
           SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    const Tensor logits = param("logits", zeros({n, 2}, on(d)));
    auto seqs = plate("seqs", n, {.dim = -1, .device = d});
    sample("c", dist::Categorical::from_logits(logits),
           SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
  };
  const ParamStoreScope scoped(store);
  TraceEnum_ELBO elbo({.max_plate_nesting = 1}, scan);
  std::vector<double> out{elbo.loss_and_grads(model, guide).loss.item()};
  for (const char* name : {"trans", "locs", "a", "logits"}) {
    for (double g : store.unconstrained(name).grad().to(Device::cpu()).to_vector<double>()) {
      out.push_back(g);
    }
  }
  return out;
}

TEST(SviCuda, EnumeratedChainsAndGuidesMatchTheCpu) {
  EMBER_REQUIRE_CUDA();
  const std::vector<double> cpu = enumerated_loss_and_grads(Device::cpu(), ChainScan::Sequential);
  const std::vector<double> device = enumerated_loss_and_grads(target(), ChainScan::Auto);
  ASSERT_EQ(cpu.size(), device.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_NEAR(device[i], cpu[i], 1e-9 * (1 + std::abs(cpu[i]))) << "entry " << i;
  }
}

// A chain whose every step normalizes the same transition table, compiled: the repeated
// normalizations are copies of the first (CompileOptions::merge_repeats), inside the graphs;
// the same losses and parameters exactly as the eager fit and as the compiled fit without
// merging.
std::vector<double> chain_fit(bool compiled, bool merge, std::size_t* merged = nullptr) {
  set_rng_seed(3);
  ParamStore store;
  const std::int64_t steps = 40;
  std::vector<double> values;
  for (std::int64_t t = 0; t < steps; ++t) values.push_back(2.0 * std::sin(0.3 * t));
  const Tensor x = from_vector(values, {steps}, on(target()));
  auto model = [&] {
    const Tensor trans =
        param("trans", tensor({{0.7, 0.2, 0.1}, {0.1, 0.8, 0.1}, {0.3, 0.3, 0.4}}, on(target())),
              constraints::simplex);
    const Tensor locs = param("locs", tensor({-2.0, 0.5, 3.0}, on(target())));
    Tensor z = zeros({}, TensorOptions{kInt64, target()});
    for (std::int64_t t : markov(steps)) {
      z = sample("z_" + std::to_string(t), dist::Categorical(index_rows(trans, z)),
                 SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
      sample("x_" + std::to_string(t), dist::Normal(index_rows(locs, z), 0.5), x.select(0, t));
    }
  };
  auto guide = [] {};
  SVI svi(model, guide, optim::Adam({.lr = 0.05}), TraceEnum_ELBO({.max_plate_nesting = 0}),
          {.check_finite = false, .param_store = &store});
  if (compiled) svi.compile({.merge_repeats = merge});
  std::vector<double> out;
  for (int i = 0; i < 8; ++i) out.push_back(svi.step().value());
  for (const char* name : {"trans", "locs"})
    for (double v : store.get(name).to(Device::cpu()).to_vector<double>()) out.push_back(v);
  if (merged != nullptr) *merged = svi.compile_stats().merged_calls_per_replay;
  return out;
}

TEST(SviCuda, CompiledChainCopiesItsRepeatedNormalizationsExactly) {
  EMBER_REQUIRE_CUDA();
  std::size_t merged = 0, unmerged = 1;
  const std::vector<double> eager = chain_fit(false, true);
  EXPECT_EQ(chain_fit(true, true, &merged), eager);
  EXPECT_EQ(chain_fit(true, false, &unmerged), eager);
  // Steps 1 to 39 normalize the table in views of two shapes in turn: all but one of each.
  EXPECT_EQ(merged, 37u);
  EXPECT_EQ(unmerged, 0u);
}

TEST(SviCuda, AFastStepDoesNotWaitOnTheDevice) {
  EMBER_REQUIRE_CUDA();
  const Device d = target();
  set_validation_enabled(false);
  ParamStore store;
  const Tensor x = randn({4096, 16}, TensorOptions{}.with_device(d));
  const Tensor y = sum(x, {-1});
  auto model = [&] {
    const Tensor w =
        sample("w", dist::Normal(zeros({16}, TensorOptions{}.with_device(d)), 1.0).to_event(1));
    auto p = plate("data", 4096, {.device = d});
    sample("y", dist::Normal(matmul(x, w), 0.5), y);
  };
  auto guide = [&] {
    const Tensor loc = param("loc", zeros({16}, TensorOptions{}.with_device(d)));
    const Tensor scale =
        param("scale", full({16}, 0.1, TensorOptions{}.with_device(d)), constraints::positive);
    sample("w", dist::Normal(loc, scale).to_event(1));
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(),
          {.check_finite = false, .param_store = &store});
  svi.step();
  synchronize(d);
  const profile::Counters before = profile::counters();
  for (int i = 0; i < 10; ++i) svi.step();
  const profile::Counters c = profile::counters() - before;
  set_validation_enabled(true);
  EXPECT_EQ(c.host_syncs, 0u);
  if (!target().is_cpu()) EXPECT_GT(c.kernel_launches, 0u);  // the CPU launches no kernels
  // And the fit is going somewhere: every weight near 1.
  for (int i = 0; i < 1000; ++i) svi.step();
  expect_close(store.get("loc").to(Device::cpu()), ones({16}), 0, 0.1);
}

// A subsampled plate on the device: its indices, drawn on the host, go up from page-locked
// memory without a host wait, eagerly and in compiled replays; the device's fit draws the CPU's
// indices (the same losses to the device's rounding), and the compiled fit equals the eager one.
TEST(SviCuda, SubsampledStepsDrawTheCpusIndicesWithoutWaiting) {
  EMBER_REQUIRE_CUDA();
  const ValidationScope no_validation(false);
  auto fit = [](Device d, bool compiled, profile::Counters* used) {
    set_rng_seed(23);
    ParamStore store;
    const TensorOptions o = on(d);
    const Tensor x = arange(0.0, 100.0, 1.0, o) / 50.0 - 1.0;
    const Tensor y = 2.0 * x + 0.5;
    auto model = [&](const Tensor& xs, const Tensor& ys) {
      const Tensor w = sample("w", dist::Normal(full({}, 0.0, o), 3.0));
      auto rows = plate("rows", 100, {.subsample_size = 10, .device = d});
      sample("y", dist::Normal(w * rows.subsample(xs) + 0.5, 0.3), rows.subsample(ys));
    };
    auto guide = [&](const Tensor&, const Tensor&) {
      const Tensor loc = param("loc", full({}, 0.0, o));
      const Tensor scale = param("scale", full({}, 1.0, o), constraints::positive);
      sample("w", dist::Normal(loc, scale));
    };
    SVI svi(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(),
            {.check_finite = false, .param_store = &store});
    if (compiled) svi.compile();
    std::vector<LossValue> pending;
    for (int i = 0; i < 3; ++i) pending.push_back(svi.step(x, y));
    synchronize(d);
    const profile::Counters before = profile::counters();
    for (int i = 0; i < 20; ++i) pending.push_back(svi.step(x, y));
    if (used != nullptr) *used = profile::counters() - before;
    std::vector<double> losses;
    for (const LossValue& l : pending) losses.push_back(l.value());
    losses.push_back(store.get("loc").item());
    return losses;
  };
  profile::Counters eager_used, compiled_used;
  const std::vector<double> cpu = fit(Device::cpu(), false, nullptr);
  const std::vector<double> eager = fit(target(), false, &eager_used);
  const std::vector<double> compiled = fit(target(), true, &compiled_used);
  EXPECT_EQ(eager_used.host_syncs, 0u);
  EXPECT_EQ(compiled_used.host_syncs, 0u);
  EXPECT_EQ(compiled, eager);
  ASSERT_EQ(eager.size(), cpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i)
    EXPECT_NEAR(eager[i], cpu[i], 1e-9 * (1 + std::abs(cpu[i]))) << "entry " << i;
}

}  // namespace
}  // namespace ember::test
