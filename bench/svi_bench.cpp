// End-to-end SVI steps per second: the coin of SVI Part I (host dispatch bound), Bayesian
// linear regression with a Normal guide at N = 10^3 and 10^6 (D = 16; memory bound at the
// large size), and the Dirichlet-process mixture of Pyro's tutorial (T = 6, N = 200, a
// score-function Categorical guide), and NumPyro's benchmark logistic regression (N = 1000, D = 10)
// with an AutoNormal guide, and an HMM (T = 1000, K = 16) whose states TraceEnum_ELBO sums
// out along a markov scope. Each reports, per step, the time spent in guide, model,
// loss, backward and update, the tensor allocations, launcher calls, CUDA kernel launches and
// host syncs, the heap allocations (`heap_allocs`: calls of the global operator new, which this
// program replaces with a counting one over malloc), and for the regression the fraction of copy
// bandwidth that its least traffic (X and y read once: the one-pass roofline) reaches.
//
// Variants: "fast" switches argument validation and SVI's finite check off (no host sync in
// a step); "checked" keeps both on (the defaults a new user gets); "compiled" is "fast" with
// SVI::compile(): the step recorded once and replayed as a flat loop of kernel calls
// (`record_us`: what the recording step cost; `plan_calls`: the kernel calls a replay makes,
// `bound_calls` those of them that ran bound on the CPU and `fused_calls` those that ran
// fused with their neighbours (CompileOptions::fuse), `merged_calls` those that copy the
// result of an earlier equal call (CompileOptions::merge_repeats), `placed_before` the share
// of replays whose moved data found its calls bound where it now is, `retained_MiB` the
// memory its buffers hold, `shared_MiB` what buffers sharing memory spare
// (CompileOptions::share_buffers) and `tile_MiB` the buffers its fused runs keep to a tile
// per thread, which never go out to memory;
// on a GPU, `graphs` and `graph_calls`: the CUDA Graphs a replay launches and the calls inside
// them). On a GPU, "compiled_launches" replays with every kernel launched on its own (no
// graphs), and the regression runs at N = 10^7 too. On the CPU, the DP mixture also runs as
// "compiled_flush": compiled, with set_flush_denormal(true). The regression also runs as
// "compiled_batches": its data passed to each step in one of two places in turn, as a
// double-buffering loader's batches, so that the plan's inputs move at every replay, and as
// "compiled_staged": the same with CompileOptions::stage_inputs (the data copied into the
// plan's buffers at every step; `staged`: the inputs copied).
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include "bench/bench_util.hpp"
#include "bench/heap_counter.hpp"

namespace ember::bench {
namespace {

struct Mode {
  std::string name;
  bool checked;
  bool compiled;
  bool graphs = true;           // compiled on a GPU: replays in CUDA Graphs
  bool flush_denormal = false;  // the CPU kernels flush denormals (set_flush_denormal)
  bool batches = false;         // the regression's data in other memory at each step
  bool stage = false;           // compiled with CompileOptions::stage_inputs
};

// A fit that drifts, over many steps, to where float32 breaks down (the DP mixture's
// kappa, after some 22,000 steps) is started afresh every `every` steps, untimed and
// uncounted, so that the timed steps are those of a healthy fit, as the peers' are.
struct Refit {
  std::int64_t every = 0;         // 0: never
  std::function<void()> restart;  // forgets the fitted parameters
};

// Runs `steps` SVI steps per timed iteration and reports what a step costs.
template <typename Svi, typename Step>
void run_steps(benchmark::State& state, Device d, const Mode& mode, Svi& svi, std::int64_t steps,
               double bytes_per_step, Step&& step, const Refit& refit = {}) {
  const bool checked = mode.checked;
  set_validation_enabled(checked);
  const FlushDenormalScope flush(mode.flush_denormal);
  if (mode.compiled) {
    CompileOptions opts;
    opts.cuda_graphs = mode.graphs;
    opts.stage_inputs = mode.stage;
    svi.compile(opts);
  }
  auto warm_up = [&] {  // params made, caches filled, plan recorded (and bound at each place)
    for (int i = 0; i < (mode.batches ? 6 : 3); ++i) step();
  };
  warm_up();
  // What the refits cost, taken out of the step's counters.
  profile::Counters refits;
  std::uint64_t refit_heap = 0;
  std::int64_t since_refit = 0;
  auto between = [&] {
    since_refit += steps;
    if (refit.every == 0 || since_refit <= refit.every) return;
    since_refit = steps;
    const profile::Counters c0 = profile::counters();
    const std::uint64_t h0 = heap_counter::blocks();
    refit.restart();
    warm_up();
    synchronize(d);
    refits = refits + (profile::counters() - c0);
    refit_heap += heap_counter::blocks() - h0;
  };
  const profile::Counters before = profile::counters();
  const std::uint64_t heap_before = heap_counter::blocks();
  const double seconds = timed_loop(state, d, steps, step, between);
  const std::uint64_t heap = heap_counter::blocks() - heap_before - refit_heap;
  profile::Counters c = profile::counters() - before - refits;
  const double n = static_cast<double>(state.iterations()) * static_cast<double>(steps);
  // The phases' shares from extra steps after the timed ones: their clocks (a few reads of
  // the clock per step) would add to a small step's time.
  profile::set_phase_timing(true);
  const profile::Counters timed_before = profile::counters();
  for (std::int64_t i = 0; i < std::min<std::int64_t>(200, static_cast<std::int64_t>(n)); ++i)
    step();
  synchronize(d);
  const profile::Counters timed = profile::counters() - timed_before;
  profile::set_phase_timing(false);
  c.guide_seconds = timed.guide_seconds;
  c.model_seconds = timed.model_seconds;
  c.loss_seconds = timed.loss_seconds;
  c.backward_seconds = timed.backward_seconds;
  c.update_seconds = timed.update_seconds;
  set_validation_enabled(true);
  state.counters["us_per_step"] = 1e6 * seconds / n;
  state.counters["allocs"] = static_cast<double>(c.allocations) / n;
  state.counters["heap_allocs"] = static_cast<double>(heap) / n;
  state.counters["calls"] = static_cast<double>(c.backend_calls) / n;
  state.counters["launches"] = static_cast<double>(c.kernel_launches) / n;
  state.counters["syncs"] = static_cast<double>(c.host_syncs) / n;
  const double phases =
      c.guide_seconds + c.model_seconds + c.loss_seconds + c.backward_seconds + c.update_seconds;
  if (phases > 0) {
    state.counters["guide"] = c.guide_seconds / phases;
    state.counters["model"] = c.model_seconds / phases;
    state.counters["loss"] = c.loss_seconds / phases;
    state.counters["backward"] = c.backward_seconds / phases;
    state.counters["update"] = c.update_seconds / phases;
  }
  if (bytes_per_step > 0) report_rates(state, d, steps, seconds, 1.0, bytes_per_step);
  if (mode.compiled) {
    const CompileStats cs = svi.compile_stats();
    state.counters["record_us"] = 1e6 * cs.last_recording_seconds;
    state.counters["plan_calls"] = static_cast<double>(cs.calls_per_replay);
    state.counters["graphs"] = static_cast<double>(cs.graphs_per_replay);
    state.counters["graph_calls"] = static_cast<double>(cs.graph_calls_per_replay);
    state.counters["bound_calls"] = static_cast<double>(cs.bound_calls_per_replay);
    state.counters["fused_calls"] = static_cast<double>(cs.fused_calls_per_replay);
    state.counters["merged_calls"] = static_cast<double>(cs.merged_calls_per_replay);
    // Of the replays, those whose data had come back to memory the plan had bound it in.
    if (mode.batches && cs.replays > 0)
      state.counters["placed_before"] =
          static_cast<double>(cs.placements_reused) / static_cast<double>(cs.replays);
    if (mode.stage) state.counters["staged"] = static_cast<double>(cs.staged_inputs);
    state.counters["retained_MiB"] = static_cast<double>(cs.retained_bytes) / (1 << 20);
    state.counters["shared_MiB"] = static_cast<double>(cs.shared_bytes) / (1 << 20);
    state.counters["tile_MiB"] = static_cast<double>(cs.tile_bytes) / (1 << 20);
    if (!cs.capture_error.empty()) state.SetLabel("graph capture given up: " + cs.capture_error);
  }
}

// ---- the coin (SVI Part I) ----
void bm_coin(benchmark::State& state, Device d, const Mode& mode) {
  const bool checked = mode.checked;
  const auto opts = on(d);
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0}).to(d);
  const Tensor prior = full({}, 10.0, opts);
  auto model = [&](const Tensor& x) {
    const Tensor f = sample("fairness", dist::Beta(prior, prior));
    auto data = plate("data", x.size(0), {.device = d});
    sample("obs", dist::Bernoulli(f), x);
  };
  auto guide = [&](const Tensor&) {
    const Tensor a = param("alpha_q", full({}, 15.0, opts), constraints::positive);
    const Tensor b = param("beta_q", full({}, 15.0, opts), constraints::positive);
    sample("fairness", dist::Beta(a, b));
  };
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 5e-4}), Trace_ELBO(),
          {.check_finite = checked, .param_store = &store});
  run_steps(state, d, mode, svi, d.is_cpu() ? 1 : 50, 0, [&] { svi.step(flips); });
}

// ---- Bayesian linear regression ----
constexpr std::int64_t kD = 16;

void bm_blr(benchmark::State& state, Device d, std::int64_t n, const Mode& mode) {
  const bool checked = mode.checked;
  const auto opts = on(d);
  Generator gen(7);
  const Tensor x = randn({n, kD}, opts, &gen);
  const Tensor w_true = linspace(-1.0, 1.0, kD, opts);
  const Tensor y = matmul(x, w_true) + 0.5 + randn({n}, opts, &gen) * 0.3;
  const Tensor zero = zeros({kD}, opts);
  auto model = [&](const Tensor& xs, const Tensor& ys) {
    const Tensor w = sample("w", dist::Normal(zero, 1.0).to_event(1));
    const Tensor b = sample("b", dist::Normal(zeros({}, opts), 10.0));
    auto data = plate("data", n, {.device = d});
    sample("y", dist::Normal(matmul(xs, w) + b, 0.3), ys);
  };
  auto guide = [&](const Tensor&, const Tensor&) {
    const Tensor w_loc = param("w_loc", zeros({kD}, opts));
    const Tensor w_scale = param("w_scale", full({kD}, 0.1, opts), constraints::positive);
    const Tensor b_loc = param("b_loc", zeros({}, opts));
    const Tensor b_scale = param("b_scale", full({}, 0.1, opts), constraints::positive);
    sample("w", dist::Normal(w_loc, w_scale).to_event(1));
    sample("b", dist::Normal(b_loc, b_scale));
  };
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(),
          {.check_finite = checked, .param_store = &store});
  // The least a step must move: X and y read once, in one pass that computes the mean, the
  // log-density and its partials and X^T times them tile by tile (a compiled step's fused run
  // does; an eager step reads X twice and writes its N-vectors out).
  const double bytes = 4.0 * static_cast<double>(n) * (kD + 1.0);
  const std::int64_t steps = d.is_cpu() ? 1 : (n >= 1000000 ? 10 : 50);
  if (!mode.batches) {
    run_steps(state, d, mode, svi, steps, bytes, [&] { svi.step(x, y); });
    return;
  }
  // Batches as a double-buffering loader hands them: the same values in two places in turn.
  const Tensor xs[2] = {x, x.clone()}, ys[2] = {y, y.clone()};
  int turn = 0;
  run_steps(state, d, mode, svi, steps, bytes, [&] {
    svi.step(xs[turn], ys[turn]);
    turn ^= 1;
  });
}

// ---- the Dirichlet-process mixture (stick breaking, T = 6) ----
constexpr std::int64_t kT = 6;

Tensor mix_weights(const Tensor& beta) {
  const Tensor rest = cumprod(1.0 - beta, -1);
  return pad(beta, {0, 1}, 1.0) * pad(rest, {1, 0}, 1.0);
}

void bm_dp_mixture(benchmark::State& state, Device d, const Mode& mode) {
  const bool checked = mode.checked;
  const auto opts = on(d);
  Generator gen(3);
  constexpr std::int64_t n = 200;
  // Four clusters of 50 points, as the tutorial's synthetic data.
  const Tensor centers = tensor({{-8.0, -8.0}, {8.0, 8.0}, {1.5, 2.0}, {-0.5, 1.0}}).to(d);
  const Tensor which =
      arange(0.0, static_cast<double>(n), 1.0, TensorOptions{}.with_dtype(kInt64).with_device(d));
  const Tensor data = index_select(centers, 0, floor(which.to(kFloat32) / 50.0).to(kInt64)) +
                      randn({n, 2}, opts, &gen);
  const Tensor eye2 = eye(2, opts);
  const double alpha = 0.1;
  auto model = [&] {
    Tensor beta, mu;
    {
      auto p = plate("beta_plate", kT - 1, {.device = d});
      beta = sample("beta", dist::Beta(ones({}, opts), alpha));
    }
    {
      auto p = plate("mu_plate", kT, {.device = d});
      // Covariance 5 I (the tutorial's), given by its Cholesky factor sqrt(5) I.
      mu = sample("mu", dist::MultivariateNormal(zeros({2}, opts), eye2 * std::sqrt(5.0)));
    }
    auto p = plate("data", n, {.device = d});
    const Tensor z = sample("z", dist::Categorical(mix_weights(beta)));
    sample("obs", dist::MultivariateNormal(index_select(mu, 0, z), eye2), data);
  };
  auto guide = [&] {
    const Tensor kappa = param(
        "kappa", [&] { return rand({kT - 1}, opts, &gen) * 2.0; }, constraints::positive);
    const Tensor tau = param("tau", [&] { return randn({kT, 2}, opts, &gen) * std::sqrt(3.0); });
    const Tensor phi = param(
        "phi",
        [&] {
          return dist::Dirichlet(full({n, kT}, 1.0 / kT, opts)).sample({}, gen);
        },
        constraints::simplex);
    {
      auto p = plate("beta_plate", kT - 1, {.device = d});
      sample("beta", dist::Beta(ones({kT - 1}, opts), kappa));
    }
    {
      auto p = plate("mu_plate", kT, {.device = d});
      sample("mu", dist::MultivariateNormal(tau, eye2));
    }
    auto p = plate("data", n, {.device = d});
    sample("z", dist::Categorical(phi));
  };
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(),
          {.check_finite = checked, .param_store = &store});
  // In float32 the fit reaches, after some 22,000 steps, a kappa whose Beta draws' gradient
  // overflows; from there on every value is NaN (and logf's NaN path is slow). Each fit here
  // runs 1000 steps (the tutorial's length), then starts again from a fresh initialization.
  const Refit refit{1000, [&] { store.clear(); }};
  run_steps(
      state, d, mode, svi, d.is_cpu() ? 1 : 20, 0, [&] { svi.step(); }, refit);
}

// ---- logistic regression with AutoNormal (NumPyro's benchmark model, N = 1000, D = 10) ----
void bm_autonormal_logreg(benchmark::State& state, Device d, const Mode& mode) {
  const bool checked = mode.checked;
  const auto opts = on(d);
  constexpr std::int64_t n = 1000, dim = 10;
  Generator gen(5);
  const Tensor x = randn({n, dim}, opts, &gen);
  const Tensor true_coefs = linspace(-1.0, 1.0, dim, opts);
  const Tensor labels = dist::Bernoulli::from_logits(matmul(x, true_coefs)).sample({}, gen);
  const Tensor zero = zeros({dim}, opts);
  auto model = [&] {
    const Tensor coefs = sample("coefs", dist::Normal(zero, 1.0).to_event(1));
    const Tensor intercept = sample("intercept", dist::Normal(zeros({}, opts), 10.0));
    auto data = plate("data", n, {.device = d});
    sample("obs", dist::Bernoulli::from_logits(matmul(x, coefs) + intercept), labels);
  };
  auto guide = autoguide::AutoNormal(model);
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(),
          {.check_finite = checked, .param_store = &store});
  run_steps(state, d, mode, svi, d.is_cpu() ? 1 : 50, 0, [&] { svi.step(); });
}

// ---- an HMM with its states enumerated (T = 1000 steps, K = 16 states) ----
constexpr std::int64_t kHmmSteps = 1000, kHmmStates = 16;

void bm_hmm_enum(benchmark::State& state, Device d, const Mode& mode,
                 ChainScan scan = ChainScan::Auto) {
  const bool checked = mode.checked;
  const auto opts = on(d);
  Generator gen(11);
  // Data from a sticky chain: state means 0..15, unit noise.
  const Tensor states = arange(0.0, static_cast<double>(kHmmSteps), 1.0, opts);
  const Tensor x = floor(states / 100.0) + randn({kHmmSteps}, opts, &gen);
  auto model = [&] {
    const Tensor trans = param(
        "trans",
        [&] {
          return full({kHmmStates, kHmmStates}, 1.0 / kHmmStates, opts);
        },
        constraints::simplex);
    const Tensor locs =
        param("locs", [&] { return arange(0.0, static_cast<double>(kHmmStates), 1.0, opts); });
    // The chain starts from state 0 (z_{-1} = 0).
    Tensor z = zeros({}, TensorOptions{kInt64, d});
    for (std::int64_t t : markov(kHmmSteps)) {
      z = sample("z_" + std::to_string(t), dist::Categorical(index_rows(trans, z)),
                 SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
      sample("x_" + std::to_string(t), dist::Normal(index_rows(locs, z), 1.0), x.select(0, t));
    }
  };
  auto guide = [] {};
  ParamStore store;
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), TraceEnum_ELBO({.max_plate_nesting = 0}, scan),
          {.check_finite = checked, .param_store = &store});
  run_steps(state, d, mode, svi, 1, 0, [&] { svi.step(); });
}

void register_all(const std::vector<Backend>& backends) {
  add_copy_context(backends);
  for (const Backend& be : backends) {
    const Device d = be.device;
    std::vector<Mode> modes = {
        {"fast", false, false}, {"checked", true, false}, {"compiled", false, true}};
    // On a GPU, compiled replays with every kernel launched alone beside those in graphs.
    if (d.is_cuda()) modes.push_back({"compiled_launches", false, true, false});
    // The regression at 10^7 rows (640 MB of X) on a GPU only: a CPU step takes a second.
    std::vector<std::int64_t> rows = {1000, 1000000};
    if (d.is_cuda()) rows.push_back(10000000);
    for (const Mode& m : modes) {
      benchmark::RegisterBenchmark(bench_name("SviCoin", be, m.name).c_str(),
                                   [d, m](benchmark::State& s) { bm_coin(s, d, m); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
      for (const std::int64_t n : rows) {
        std::vector<Mode> blr_modes = {m};
        // The data in new memory at every step, fed as a loader's batches.
        if (m.name == "compiled") {
          Mode batched{"compiled_batches", false, true};
          batched.batches = true;
          blr_modes.push_back(batched);
          batched.name = "compiled_staged";
          batched.stage = true;
          blr_modes.push_back(batched);
        }
        for (const Mode& bm : blr_modes) {
          benchmark::RegisterBenchmark(
              bench_name("SviBayesLinReg", be, std::to_string(n) + "/" + bm.name).c_str(),
              [d, n, bm](benchmark::State& s) { bm_blr(s, d, n, bm); })
              ->UseManualTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
      benchmark::RegisterBenchmark(bench_name("SviDpMixture", be, m.name).c_str(),
                                   [d, m](benchmark::State& s) { bm_dp_mixture(s, d, m); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
      // The mixture's Adam states decay into denormals over a long run: compiled again with
      // the CPU flushing them.
      if (m.name == "compiled" && d.is_cpu()) {
        const Mode flushing{"compiled_flush", false, true, true, true};
        benchmark::RegisterBenchmark(
            bench_name("SviDpMixture", be, flushing.name).c_str(),
            [d, flushing](benchmark::State& s) { bm_dp_mixture(s, d, flushing); })
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
      benchmark::RegisterBenchmark(bench_name("SviAutoNormalLogReg", be, m.name).c_str(),
                                   [d, m](benchmark::State& s) { bm_autonormal_logreg(s, d, m); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(bench_name("SviHmmEnum", be, m.name).c_str(),
                                   [d, m](benchmark::State& s) { bm_hmm_enum(s, d, m); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
      // The chain's two contractions side by side (Auto above picks the parallel scan on a
      // GPU, the sequential one on the CPU).
      if (m.checked) continue;
      for (const auto& named : {std::pair{ChainScan::Sequential, "sequential"},
                                std::pair{ChainScan::Parallel, "parallel"}}) {
        const ChainScan scan = named.first;
        benchmark::RegisterBenchmark(
            bench_name("SviHmmEnumScan", be, std::string(named.second) + "/" + m.name).c_str(),
            [d, m, scan](benchmark::State& s) { bm_hmm_enum(s, d, m, scan); })
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
