// Throughput of the distribution kernels: log_prob followed by a full sum (what an ELBO
// does with every site), and draws (reparameterized where the family has them), over
// 2^10..2^26 elements on each backend, against the copy bandwidth measured in the same run.
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace ember::bench {
namespace {

// One family at one size n. n counts the float32 parameter elements of the main parameter
// (one per scalar site, K per Categorical row, event_size per MVN row), so the batch shape is
// (n / event_size,). The byte counts are the least the fused pass must move, each tensor read
// or written once; event_size 1 families pass batch == n.
struct Family {
  std::string name;
  std::int64_t event_size;
  std::function<dist::Distribution(Device, std::int64_t batch)> make;
  // Bytes of log_prob(value) then sum, and of one draw, for n elements in `batch` rows.
  std::function<double(double n, double batch)> log_prob_bytes;
  std::function<double(double n, double batch)> draw_bytes;
  bool reparameterized;  // times rsample if true, sample otherwise
};

constexpr std::int64_t kCategories = 16;  // Categorical K
constexpr std::int64_t kMvnEvent = 16;    // MultivariateNormal event size

std::vector<Family> families() {
  // Elementwise families with `params` per-element parameter tensors: log_prob reads the
  // value and the parameters and writes the log-density; a draw reads the parameters and
  // writes the draw.
  auto scalar_lp = [](int params) {
    return [params](double n, double) { return 4.0 * n * (params + 2); };
  };
  auto scalar_draw = [](int params) {
    return [params](double n, double) { return 4.0 * n * (params + 1); };
  };
  return {
      {"Normal", 1,
       [](Device d, std::int64_t b) {
         return dist::Normal(full({b}, 0.5, on(d)), full({b}, 2.0, on(d)));
       },
       scalar_lp(2), scalar_draw(2), true},
      {"Gamma", 1,
       [](Device d, std::int64_t b) {
         return dist::Gamma(full({b}, 2.5, on(d)), full({b}, 1.5, on(d)));
       },
       scalar_lp(2), scalar_draw(2), true},
      // Logits (b, K): log_prob reads every logit (the normalizer needs the whole row), one
      // int64 index per row, and writes one float per row; a draw reads the logits and
      // writes one int64 per row.
      {"Categorical", kCategories,
       [](Device d, std::int64_t b) {
         // Distinct logits per category, so the draw is not degenerate.
         const Tensor row = arange(0.0, static_cast<double>(kCategories), 1.0, on(d)) * 0.25;
         return dist::Categorical::from_logits(row.expand({b, kCategories}).contiguous());
       },
       [](double n, double b) { return 4.0 * n + 8.0 * b + 4.0 * b; },
       [](double n, double b) { return 4.0 * n + 8.0 * b; }, false},
      // A mixture's weights: one row of probabilities (K) shared by every row (expanded, not
      // copied), as a Categorical site in a data plate over a global simplex. log_prob reads
      // one int64 index per row and writes one float per row; a draw writes one int64 per
      // row. The shared row stays in cache and is left out of both counts.
      {"CategoricalShared", kCategories,
       [](Device d, std::int64_t b) {
         const Tensor w = arange(1.0, static_cast<double>(kCategories) + 1.0, 1.0, on(d));
         return dist::Categorical((w / sum(w)).expand({b, kCategories}));
       },
       [](double, double b) { return 8.0 * b + 4.0 * b; }, [](double, double b) { return 8.0 * b; },
       false},
      // loc (b, 16) and one scale_tril (16, 16) shared by every row: log_prob reads the
      // value and loc and writes one float per row; a draw reads loc and writes the draw.
      // The shared factor's 1 KiB is left out of both counts: it stays in cache.
      {"MultivariateNormal", kMvnEvent,
       [](Device d, std::int64_t b) {
         const Tensor l =
             tril(full({kMvnEvent, kMvnEvent}, 0.1, on(d)), -1) + eye(kMvnEvent, on(d)) * 1.5;
         return dist::MultivariateNormal(full({b, kMvnEvent}, 0.5, on(d)), l);
       },
       [](double n, double b) { return 4.0 * (2.0 * n + b); },
       [](double n, double) { return 4.0 * 2.0 * n; }, true},
  };
}

// Whether a draw of p is usable: in the support and finite (log_prob finite at every point).
bool draw_ok(const dist::Distribution& p, const Tensor& x) {
  set_validation_enabled(false);  // an out-of-support value must fail the check, not throw
  const bool ok = all(isfinite(p.log_prob(x)));
  set_validation_enabled(true);
  return ok;
}

void bm_log_prob_sum(benchmark::State& state, const Family& f, Device d, std::int64_t n) {
  const std::int64_t batch = n / f.event_size;
  const dist::Distribution p = f.make(d, batch);
  Generator gen(1);
  const Tensor x = p.sample({}, gen);
  set_validation_enabled(false);  // time the kernels, not the argument checks
  const double lp = sum(p.log_prob(x)).item();
  if (!validated(state, std::isfinite(lp), "log_prob: not finite")) {
    set_validation_enabled(true);
    return;
  }
  const auto nd = static_cast<double>(n);
  const double bytes = f.log_prob_bytes(nd, static_cast<double>(batch));
  const std::int64_t reps = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds =
      timed_loop(state, d, reps, [&] { benchmark::DoNotOptimize(sum(p.log_prob(x))); });
  set_validation_enabled(true);
  report_rates(state, d, reps, seconds, nd, bytes);
}

void bm_draw(benchmark::State& state, const Family& f, Device d, std::int64_t n) {
  const std::int64_t batch = n / f.event_size;
  const dist::Distribution p = f.make(d, batch);
  Generator gen(2);
  auto draw = [&] { return f.reparameterized ? p.rsample({}, gen) : p.sample({}, gen); };
  if (!validated(state, draw_ok(p, draw()), "draw: outside the support or not finite")) return;
  const auto nd = static_cast<double>(n);
  const double bytes = f.draw_bytes(nd, static_cast<double>(batch));
  const std::int64_t reps = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds = timed_loop(state, d, reps, [&] { benchmark::DoNotOptimize(draw()); });
  report_rates(state, d, reps, seconds, nd, bytes);
}

void register_all(const std::vector<Backend>& backends) {
  add_copy_context(backends);
  static const std::vector<Family> kFamilies = families();
  for (const Backend& be : backends) {
    for (const Family& f : kFamilies) {
      const std::string draw = f.reparameterized ? "Rsample" : "Sample";
      for (std::int64_t n : pow2_sizes(10, be.max_log2)) {
        benchmark::RegisterBenchmark(bench_name("LogProbSum" + f.name, be, n).c_str(),
                                     bm_log_prob_sum, std::cref(f), be.device, n)
            ->UseManualTime();
        benchmark::RegisterBenchmark(bench_name(draw + f.name, be, n).c_str(), bm_draw,
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
