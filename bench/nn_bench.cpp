// Networks: a 784-400-20 MLP's forward and backward at batch 256 (the VAE encoder's shape),
// on one CPU thread and on the device; log_softmax, composed from the max, exp, sum and log
// kernels, against a single elementwise pass over the same bytes (what a fused kernel would
// cost at best); and a small convolution's forward and backward (im2col + GEMM + col2im).
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace ember::bench {
namespace {

// Forward, sum, backward, zero_grad: one training step's network work, without the optimizer.
// items/s are samples; the FLOP rate counts the three GEMMs per layer (2 m k n each).
void bm_mlp(benchmark::State& state, Device d, std::int64_t batch, int threads) {
  std::optional<NumThreadsScope> scope;
  if (threads > 0) scope.emplace(threads);
  Generator gen(0);
  nn::MLP net({784, 400, 20}, {.tensor_options = TensorOptions{}.with_device(d), .gen = &gen});
  const Tensor x = rand({batch, 784}, TensorOptions{}.with_device(d), &gen);
  auto step = [&] {
    sum(net(x)).backward();
    net.zero_grad();
  };
  if (!validated(state, net(x).shape() == Shape{batch, 20}, "MLP: wrong output shape")) return;
  step();
  timed_loop(state, d, 1, step);
  const double flops = 3.0 * 2.0 * static_cast<double>(batch) * (784.0 * 400.0 + 400.0 * 20.0);
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["FLOP/s"] = benchmark::Counter(flops * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

// rows x 1000 float32 values: log_softmax along the rows, or exp (one read, one write: the
// traffic a fused softmax kernel would have). bytes/s count that minimal traffic for both, so
// their ratio is the fraction of the fused ideal that the composition reaches.
void bm_row_op(benchmark::State& state, Device d, std::int64_t n, bool softmax) {
  const Tensor x = rand({n / 1000, 1000}, TensorOptions{}.with_device(d));
  NoGradGuard no_grad;
  auto op = [&] { benchmark::DoNotOptimize(softmax ? log_softmax(x, 1) : exp(x)); };
  if (softmax) {
    const double total = sum(exp(log_softmax(x, 1).select(0, 0))).item();
    if (!validated(state, std::abs(total - 1.0) < 1e-4, "log_softmax: a row does not sum to 1"))
      return;
  }
  const auto bytes = static_cast<std::int64_t>(8 * x.numel());
  const std::int64_t batch = batch_size(d, bytes);
  const double seconds = timed_loop(state, d, batch, op);
  report_rates(state, d, batch, seconds, static_cast<double>(x.numel()),
               static_cast<double>(bytes));
}

// 32 images 3 x 32 x 32 through Conv2d(3, 16, 3x3, padding 1): forward and backward.
void bm_conv(benchmark::State& state, Device d, int threads) {
  std::optional<NumThreadsScope> scope;
  if (threads > 0) scope.emplace(threads);
  Generator gen(0);
  nn::Conv2d conv(3, 16, {3, 3}, {.padding = {1, 1}}, true, TensorOptions{}.with_device(d), &gen);
  const Tensor x = rand({32, 3, 32, 32}, TensorOptions{}.with_device(d).with_requires_grad(true));
  auto step = [&] {
    sum(conv(x)).backward();
    conv.zero_grad();
    x.zero_grad();
  };
  if (!validated(state, conv(x).shape() == Shape{32, 16, 32, 32}, "Conv2d: wrong output shape"))
    return;
  step();
  timed_loop(state, d, 1, step);
  state.SetItemsProcessed(state.iterations() * 32);
}

void register_all(const std::vector<Backend>& backends) {
  for (const Backend& be : backends) {
    const Device d = be.device;
    const int threads = d.is_cpu() ? 1 : 0;
    const std::string suffix = d.is_cpu() ? "256/1thread" : "256";
    benchmark::RegisterBenchmark(bench_name("MLPForwardBackward", be, suffix).c_str(), bm_mlp, d,
                                 256, threads)
        ->UseManualTime();
    if (d.is_cpu()) {
      benchmark::RegisterBenchmark(bench_name("MLPForwardBackward", be, "256/all").c_str(), bm_mlp,
                                   d, 256, 0)
          ->UseManualTime();
    }
    for (int log2 : {16, 20, 24}) {
      if (log2 > be.max_log2) continue;
      const std::int64_t n = (std::int64_t{1} << log2) / 1000 * 1000;
      benchmark::RegisterBenchmark(bench_name("LogSoftmaxRows", be, n).c_str(), bm_row_op, d, n,
                                   true)
          ->UseManualTime();
      benchmark::RegisterBenchmark(bench_name("ExpSamePass", be, n).c_str(), bm_row_op, d, n, false)
          ->UseManualTime();
    }
    benchmark::RegisterBenchmark(bench_name("Conv2dForwardBackward", be, "32x3x32x32").c_str(),
                                 bm_conv, d, threads)
        ->UseManualTime();
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
