// Throughput of the fused optimizer step: one Adam step over 1, 16 or 256 float32
// parameters of various sizes on each backend, against the copy bandwidth measured in the
// same run, and the same parameters stepped one call per parameter (what an unfused loop
// pays in host work and, on a GPU, launches).
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_util.hpp"
#include "ember/optim.hpp"

namespace ember::bench {
namespace {

constexpr double kLr = 1e-3;

// `count` float32 leaves of `size` elements, each with a gradient that stays in place
// (a step does not zero it), named for the optimizer.
std::vector<optim::NamedTensor> make_params(Device d, std::int64_t count, std::int64_t size) {
  std::vector<optim::NamedTensor> params;
  for (std::int64_t k = 0; k < count; ++k) {
    Tensor p = full({size}, 1.0, on(d));
    p.requires_grad_();
    sum(p * full({size}, 0.5, on(d))).backward();  // grad = 0.5 everywhere
    std::string name = "p";
    name += std::to_string(k);  // not "p" + ...: GCC 12 warns falsely (-Wrestrict) on that
    params.push_back({std::move(name), p});
  }
  return params;
}

// Adam's first step moves every element by lr against its gradient's sign (up to eps).
bool first_step_ok(const std::vector<optim::NamedTensor>& params) {
  for (const auto& [name, p] : params) {
    const std::vector<double> v = p.to_vector<double>();
    for (double x : v) {
      if (std::abs(x - (1.0 - kLr)) > 1e-6) return false;
    }
  }
  return true;
}

// Adam reads param, grad and both moments and writes param and both moments: 7 floats.
constexpr double kBytesPerElement = 7.0 * 4.0;

void bm_adam_step(benchmark::State& state, Device d, std::int64_t count, std::int64_t size,
                  bool fused) {
  const std::vector<optim::NamedTensor> params = make_params(d, count, size);
  optim::Adam adam(optim::AdamOptions{.lr = kLr});
  std::vector<std::vector<optim::NamedTensor>> one_each;
  for (const auto& p : params) one_each.push_back({p});
  auto step = [&] {
    if (fused) {
      adam.step(params);
    } else {
      for (const auto& single : one_each) adam.step(single);
    }
  };
  step();
  if (!validated(state, first_step_ok(params), "Adam step: wrong update")) return;
  const double n = static_cast<double>(count * size);
  const double bytes = n * kBytesPerElement;
  const std::int64_t reps = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds = timed_loop(state, d, reps, step);
  report_rates(state, d, reps, seconds, n, bytes);
  state.counters["params"] = static_cast<double>(count);
}

void register_all(const std::vector<Backend>& backends) {
  add_copy_context(backends);
  for (const Backend& be : backends) {
    // (parameters, log2 sizes of each): totals from 2^10 up to the backend's cap.
    const std::vector<std::pair<std::int64_t, std::vector<int>>> sweeps = {
        {1, {10, 14, 18, 22, 24, 26}}, {16, {6, 10, 14, 18, 22}}, {256, {4, 8, 12, 16, 18}}};
    for (const auto& [count, log2_sizes] : sweeps) {
      for (int lg : log2_sizes) {
        const std::int64_t size = std::int64_t{1} << lg;
        if (count * size > (std::int64_t{1} << be.max_log2)) continue;
        const std::string n = std::to_string(count) + "x" + std::to_string(size);
        benchmark::RegisterBenchmark(bench_name("AdamStep", be, n).c_str(), bm_adam_step, be.device,
                                     count, size, true)
            ->UseManualTime();
        if (count > 1) {
          benchmark::RegisterBenchmark(bench_name("AdamStepOneCallPerParam", be, n).c_str(),
                                       bm_adam_step, be.device, count, size, false)
              ->UseManualTime();
        }
      }
    }
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
