// Throughput of the distribution kernels: log_prob followed by a full sum (what an ELBO
// does with every site), and reparameterized draws, over 2^10..2^26 elements on each
// backend, against the copy bandwidth measured in the same run.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace ember::bench {
namespace {

// One family at one size: how to build it with batch shape (n / event_size,), a value to
// score, and how many bytes the fused log-prob pass must move at least (the value and
// every parameter read once, the log-density written once, all float32).
struct Family {
  std::string name;
  std::int64_t event_size;
  std::function<dist::Distribution(Device, std::int64_t batch)> make;
  int params;  // per-element parameter tensors read by log_prob
};

std::vector<Family> families() {
  return {
      {"Normal", 1,
       [](Device d, std::int64_t b) {
         return dist::Normal(full({b}, 0.5, on(d)), full({b}, 2.0, on(d)));
       },
       2},
  };
}

void bm_log_prob_sum(benchmark::State& state, const Family& f, Device d, std::int64_t n) {
  const std::int64_t batch = n / f.event_size;
  const dist::Distribution p = f.make(d, batch);
  Generator gen(1);
  const Tensor x = p.sample({}, gen);
  set_validation_enabled(false);  // time the kernels, not the argument checks
  const double lp = sum(p.log_prob(x)).item();
  if (!validated(state, std::isfinite(lp), "log_prob: not finite")) return;
  const auto nd = static_cast<double>(n);
  const double bytes = 4.0 * (nd * (1 + f.params) + static_cast<double>(batch));
  const std::int64_t reps = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds =
      timed_loop(state, d, reps, [&] { benchmark::DoNotOptimize(sum(p.log_prob(x))); });
  set_validation_enabled(true);
  report_rates(state, d, reps, seconds, nd, bytes);
}

void bm_rsample(benchmark::State& state, const Family& f, Device d, std::int64_t n) {
  const std::int64_t batch = n / f.event_size;
  const dist::Distribution p = f.make(d, batch);
  Generator gen(2);
  if (!validated(state, all(isfinite(p.rsample({}, gen))), "rsample: not finite")) return;
  const auto nd = static_cast<double>(n);
  // Parameters read, draws written.
  const double bytes = 4.0 * nd * (f.params + 1);
  const std::int64_t reps = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds =
      timed_loop(state, d, reps, [&] { benchmark::DoNotOptimize(p.rsample({}, gen)); });
  report_rates(state, d, reps, seconds, nd, bytes);
}

void register_all(const std::vector<Backend>& backends) {
  add_copy_context(backends);
  static const std::vector<Family> kFamilies = families();
  for (const Backend& be : backends) {
    for (const Family& f : kFamilies) {
      for (std::int64_t n : pow2_sizes(10, be.max_log2)) {
        benchmark::RegisterBenchmark(bench_name("LogProbSum" + f.name, be, n).c_str(),
                                     bm_log_prob_sum, std::cref(f), be.device, n)
            ->UseManualTime();
        benchmark::RegisterBenchmark(bench_name("Rsample" + f.name, be, n).c_str(), bm_rsample,
                                     std::cref(f), be.device, n)
            ->UseManualTime();
      }
    }
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
