// Compiled SVI steps (docs/compile.md): Bayesian linear regression of Old Faithful's eruption
// length on the waiting time before it (data/faithful.csv, 272 eruptions), with mini-batches of
// 32 rows drawn by a subsampled plate, fitted twice from the same seed: eagerly, and with
// SVI::compile(), which records one step's kernel calls and replays them. The two fits agree
// bit for bit (losses and parameters); the program prints both step times, what the recording
// cost and the posterior next to the least-squares line. Then ember::compile turns the
// posterior predictive (draws of a, b and sigma from the fitted guide, then of y at new
// waiting times) into a compiled function, called for a few waiting times. With --device cuda
// everything runs on the first GPU, where the replays launch runs of kernels as CUDA Graphs
// (the program prints how many and how much of the step they hold).
//
//   svi_compiled [--steps N] [--verify-every K] [--device cpu|cuda] [path/to/faithful.csv]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ember/ember.hpp>
#include <string>
#include <vector>

using namespace ember;

namespace {

constexpr std::int64_t kBatch = 32;

struct Fit {
  std::vector<double> losses;
  std::vector<double> params;  // a_loc, b_loc, s_loc, then a_scale, b_scale, s_scale
  double seconds = 0;
  CompileStats stats;
};

// y = a + b * w + noise(sigma), w the standardized waiting time.
Fit fit(const Tensor& w, const Tensor& y, int steps, bool compiled, std::int64_t verify_every,
        const TensorOptions& kF64) {
  const std::int64_t n = w.size(0);
  auto model = [&](const Tensor& wait, const Tensor& length) {
    const Tensor a = sample("a", dist::Normal(scalar_tensor(0.0, kF64), 10.0));
    const Tensor b = sample("b", dist::Normal(scalar_tensor(0.0, kF64), 10.0));
    const Tensor sigma = sample("sigma", dist::LogNormal(scalar_tensor(0.0, kF64), 1.0));
    auto rows = plate("rows", n, {.subsample_size = kBatch, .device = kF64.device});
    sample("y", dist::Normal(a + b * rows.subsample(wait), sigma), rows.subsample(length));
  };
  auto guide = [&](const Tensor&, const Tensor&) {
    const Tensor a_loc = param("a_loc", scalar_tensor(0.0, kF64));
    const Tensor a_scale = param("a_scale", scalar_tensor(0.5, kF64), constraints::positive);
    const Tensor b_loc = param("b_loc", scalar_tensor(0.0, kF64));
    const Tensor b_scale = param("b_scale", scalar_tensor(0.5, kF64), constraints::positive);
    const Tensor s_loc = param("s_loc", scalar_tensor(0.0, kF64));
    const Tensor s_scale = param("s_scale", scalar_tensor(0.3, kF64), constraints::positive);
    sample("a", dist::Normal(a_loc, a_scale));
    sample("b", dist::Normal(b_loc, b_scale));
    sample("sigma", dist::LogNormal(s_loc, s_scale));
  };
  ParamStore store;
  set_rng_seed(0);
  SVI svi(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), {.param_store = &store});
  if (compiled) svi.compile({.verify_every = verify_every});
  Fit f;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) f.losses.push_back(svi.step(w, y).value());
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const char* name : {"a_loc", "b_loc", "s_loc", "a_scale", "b_scale", "s_scale"})
    f.params.push_back(store.get(name).item());
  f.stats = svi.compile_stats();
  return f;
}

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr,
               "svi_compiled: %s\nusage: svi_compiled [--steps N] [--verify-every K] "
               "[--device cpu|cuda] [path/to/faithful.csv]\n",
               problem);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 4000;
  std::int64_t verify_every = 1000;
  std::string path = std::string(EMBER_DATA_DIR) + "/faithful.csv";
  std::string device_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--verify-every") == 0 && i + 1 < argc) {
      verify_every = std::atoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
      device_name = argv[++i];
      if (device_name != "cpu" && device_name != "cuda") usage("--device must be cpu or cuda");
    } else if (argv[i][0] == '-') {
      usage((std::string("unknown option ") + argv[i]).c_str());
    } else {
      path = argv[i];
    }
  }
  if (steps < 2) usage("--steps must be at least 2");

  try {
    const Device device = device_name == "cuda" ? Device::cuda(0) : Device::cpu();
    const TensorOptions kF64 = TensorOptions{}.with_dtype(kFloat64).with_device(device);
    const data::CsvTable table = data::read_csv(path, {.dtype = kFloat64});
    const Tensor waiting = table["waiting"].to(device), y = table["eruptions"].to(device);
    const double w_mean = mean(waiting).item();
    const double w_sd = std::sqrt(mean(square(waiting - w_mean)).item());
    const Tensor w = (waiting - w_mean) / w_sd;

    const Fit eager = fit(w, y, steps, false, 0, kF64);
    const Fit compiled = fit(w, y, steps, true, verify_every, kF64);
    bool identical = eager.losses == compiled.losses && eager.params == compiled.params;
    std::printf("%lld eruptions, batches of %lld, %d steps\n", static_cast<long long>(w.size(0)),
                static_cast<long long>(kBatch), steps);
    std::printf("eager:    %7.2f us per step\n", 1e6 * eager.seconds / steps);
    std::printf(
        "compiled: %7.2f us per step (%.1fx), %lld replays of %zu kernel calls, "
        "%lld recording (%.0f us), %lld verifications\n",
        1e6 * compiled.seconds / steps, eager.seconds / compiled.seconds,
        static_cast<long long>(compiled.stats.replays), compiled.stats.calls_per_replay,
        static_cast<long long>(compiled.stats.recordings),
        1e6 * compiled.stats.last_recording_seconds,
        static_cast<long long>(compiled.stats.verifications));
    if (device.is_cuda()) {
      std::printf("on %s: %zu CUDA Graphs per replay hold %zu of its %zu kernel calls%s%s\n",
                  device_name.c_str(), compiled.stats.graphs_per_replay,
                  compiled.stats.graph_calls_per_replay, compiled.stats.calls_per_replay,
                  compiled.stats.capture_error.empty() ? "" : "; capture given up: ",
                  compiled.stats.capture_error.c_str());
    }
    std::printf("%s\n", identical ? "identical losses and parameters"
                                  : "the compiled fit DIFFERS from the eager one");

    // The least-squares line for comparison (the posterior means should sit close to it).
    const double y_mean = mean(y).item();
    const double slope = (sum(w * (y - y_mean)) / sum(w * w)).item();
    std::printf("posterior means: a %.3f b %.3f (per sd of waiting) sigma %.3f\n",
                compiled.params[0], compiled.params[1], std::exp(compiled.params[2]));
    std::printf("least squares:   a %.3f b %.3f\n", y_mean, slope);

    // The posterior predictive at waiting times `minutes` (a 1-d tensor): 4000 draws of the
    // guide's (a, b, sigma) and of y given them; the mean and sd of y at each time.
    const std::vector<double>& q = compiled.params;
    auto predictive = [&](const Tensor& minutes) {
      const std::int64_t draws = 4000;
      const Tensor w_new = ((minutes - w_mean) / w_sd).unsqueeze(0);
      const Tensor a = randn({draws, 1}, kF64) * q[3] + q[0];
      const Tensor b = randn({draws, 1}, kF64) * q[4] + q[1];
      const Tensor sigma = exp(randn({draws, 1}, kF64) * q[5] + q[2]);
      const Tensor y_new = a + b * w_new + sigma * randn({draws, minutes.size(0)}, kF64);
      const Tensor m = mean(y_new, {0});
      return std::vector<Tensor>{m, sqrt(mean(square(y_new - m), {0}))};
    };
    auto compiled_predictive = compile(predictive);
    for (double start : {50.0, 60.0, 70.0, 80.0}) {
      const std::vector<Tensor> r = compiled_predictive(tensor({start, start + 5.0}, kF64));
      std::printf(
          "after %.0f and %.0f minutes of waiting: eruption %.2f +- %.2f and %.2f +- %.2f "
          "minutes\n",
          start, start + 5.0, r[0].to_vector<double>()[0], r[1].to_vector<double>()[0],
          r[0].to_vector<double>()[1], r[1].to_vector<double>()[1]);
    }
    const CompileStats ps = compiled_predictive.stats();
    std::printf("posterior predictive: %lld eager call, %lld recording, %lld replays\n",
                static_cast<long long>(ps.eager_steps), static_cast<long long>(ps.recordings),
                static_cast<long long>(ps.replays));
    return identical ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "svi_compiled: %s\n", e.what());
    return 1;
  }
}
