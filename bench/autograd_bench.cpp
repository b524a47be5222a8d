// Host overhead of one op on tiny tensors, with and without autograd recording, and of a
// forward+backward through a short chain: the cost a probabilistic program pays per
// sample site and per parameter, where tensors are small and ops are many.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace ember::bench {
namespace {

// Ops per timed batch: a CPU op takes about a microsecond, so batching keeps the clock's own
// cost out; on a GPU it also means the figure is dispatch + launch, not launch + sync.
constexpr std::int64_t kTinyBatch = 64;

struct TinyOperands {
  Tensor x, w, b;
};

TinyOperands tiny_operands(Device d, bool requires_grad) {
  const auto opts = TensorOptions{}.with_device(d).with_requires_grad(requires_grad);
  return {full({1}, 0.5, opts), full({1}, 2.0, opts), full({1}, 0.25, opts)};
}

void report_ops(benchmark::State& state, std::int64_t ops_per_iteration) {
  const double ops =
      static_cast<double>(state.iterations()) * static_cast<double>(ops_per_iteration);
  state.SetItemsProcessed(static_cast<std::int64_t>(ops));
  // Seconds per op (printed with an SI prefix, e.g. 240ns).
  state.counters["time_per_op"] =
      benchmark::Counter(ops, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// y = x * w + b on one-element tensors: two ops per evaluation. `record` says whether the
// operands require grad (so a node is recorded per op) or grad mode is off altogether.
void bm_tiny_op(benchmark::State& state, Device d, bool record) {
  const TinyOperands t = tiny_operands(d, record);
  {
    const Tensor y = t.x * t.w + t.b;
    if (std::abs(y.item() - 1.25) > 1e-6 || y.requires_grad() != record) {
      state.SkipWithError("x * w + b: wrong result");
      return;
    }
  }
  std::optional<NoGradGuard> no_grad;
  if (!record) no_grad.emplace();
  timed_loop(state, d, kTinyBatch, [&] { benchmark::DoNotOptimize(t.x * t.w + t.b); });
  report_ops(state, 2 * kTinyBatch);
}

// y = x; repeated `length` times y = y * w + b; then sum(y).backward(): 2 * length + 1
// recorded ops forward and their backward, and the leaves' gradients accumulated.
void bm_forward_backward(benchmark::State& state, Device d, int length) {
  const TinyOperands t = tiny_operands(d, true);
  auto step = [&] {
    Tensor y = t.x;
    for (int i = 0; i < length; ++i) y = y * t.w + t.b;
    sum(y).backward();
  };
  {
    step();
    // dy/dx = w^length = 2^length.
    if (std::abs(t.x.grad().item() - std::ldexp(1.0, length)) > 1e-6 * std::ldexp(1.0, length)) {
      state.SkipWithError("forward+backward: wrong gradient");
      return;
    }
  }
  timed_loop(state, d, 1, [&] {
    t.x.zero_grad();
    t.w.zero_grad();
    t.b.zero_grad();
    step();
  });
  report_ops(state, 2 * length + 1);
}

void register_all(const std::vector<Backend>& backends) {
  for (const Backend& be : backends) {
    const Device d = be.device;
    benchmark::RegisterBenchmark(bench_name("TinyOpOverhead", be, "record").c_str(), bm_tiny_op, d,
                                 true)
        ->UseManualTime();
    benchmark::RegisterBenchmark(bench_name("TinyOpOverhead", be, "no_grad").c_str(), bm_tiny_op, d,
                                 false)
        ->UseManualTime();
    for (int length : {1, 16}) {
      benchmark::RegisterBenchmark(bench_name("TinyForwardBackward", be, length).c_str(),
                                   bm_forward_backward, d, length)
          ->UseManualTime();
    }
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
