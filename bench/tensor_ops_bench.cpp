// Throughput of the tensor foundation's bulk ops (elementwise, reductions, copy, gathers,
// matrix-vector products, matmul, triangular solves, a compiled chain fused or not) over sizes,
// against the device's copy bandwidth measured in the same run.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

namespace ember::bench {
namespace {

// c = a * b over n float32: reads 2n, writes n values.
void bm_elementwise(benchmark::State& state, Device d, std::int64_t n) {
  const Tensor a = full({n}, 1.5, on(d)), b = full({n}, 2.0, on(d));
  if (!validated(state, all(eq(mul(a, b), 3.0)), "mul: wrong result")) return;
  const auto nd = static_cast<double>(n);
  const double bytes = 3.0 * 4.0 * nd;
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds = timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(mul(a, b)); });
  report_rates(state, d, batch, seconds, nd, bytes);
}

// sum(x) over all n float32 values: reads n values, writes one.
void bm_sum(benchmark::State& state, Device d, std::int64_t n) {
  const Tensor x = full({n}, 0.5, on(d));
  const auto nd = static_cast<double>(n);
  const double got = sum(x).item(), want = 0.5 * nd;
  if (!validated(state, std::abs(got - want) <= 1e-5 * want, "sum: wrong result")) return;
  const double bytes = 4.0 * nd;
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds = timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(sum(x)); });
  report_rates(state, d, batch, seconds, nd, bytes);
}

// sum over the last dim of an (n/1024, 1024) float32 matrix: reads n, writes n/1024.
void bm_sum_rows(benchmark::State& state, Device d, std::int64_t n) {
  constexpr std::int64_t kRow = 1024;
  const Tensor x = full({n / kRow, kRow}, 0.5, on(d));
  if (!validated(state, all(eq(sum(x, {-1}), 0.5 * kRow)), "sum rows: wrong result")) return;
  const auto nd = static_cast<double>(n);
  const double bytes = 4.0 * (nd + nd / kRow);
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds =
      timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(sum(x, {-1})); });
  report_rates(state, d, batch, seconds, nd, bytes);
}

// y = x.clone() of n float32: reads n, writes n.
void bm_copy(benchmark::State& state, Device d, std::int64_t n) {
  const auto nd = static_cast<double>(n);
  const Tensor x = arange(nd, on(d));
  if (!validated(state, all(eq(x.clone(), x)), "clone: wrong result")) return;
  const double bytes = 2.0 * 4.0 * nd;
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds = timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(x.clone()); });
  report_rates(state, d, batch, seconds, nd, bytes);
}

// The rows of a minibatch gathered from a table, as a subsampled plate reads its data:
// index_select(table, 0, idx) of n float32 in rows of kGatherRow, from a table of twice as
// many rows: reads and writes n values (the index's 8 bytes a row besides). With `add`, the
// backward's index_add(table, 0, idx, rows): a copy of the table (2n values read, 2n written),
// then n values read and n read and written in the copy.
constexpr std::int64_t kGatherRow = 784;

void bm_gather_rows(benchmark::State& state, Device d, std::int64_t n, bool add) {
  const std::int64_t rows = std::max<std::int64_t>(1, n / kGatherRow);
  const auto nd = static_cast<double>(rows * kGatherRow);
  Generator gen(11);
  const Tensor table = randn({2 * rows, kGatherRow}, on(d), &gen);
  const Tensor idx = floor(rand({rows}, on(d), &gen) * static_cast<double>(2 * rows)).to(kInt64);
  const Tensor picked = index_select(table, 0, idx);
  const Tensor row0 = index_select(table, 0, idx.narrow(0, 0, 1));
  if (!validated(state, all(eq(picked.narrow(0, 0, 1), row0)), "index_select: wrong row")) return;
  const double bytes = (add ? 7.0 : 2.0) * 4.0 * nd + 8.0 * static_cast<double>(rows);
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds = timed_loop(state, d, batch, [&] {
    if (add) {
      benchmark::DoNotOptimize(index_add(table, 0, idx, picked));
    } else {
      benchmark::DoNotOptimize(index_select(table, 0, idx));
    }
  });
  report_rates(state, d, batch, seconds, nd, bytes);
}

// A MultivariateNormal's solve: one lower-triangular (k, k) float32 factor against a batch
// of 2^16 vectors, L^-1 X (reads and writes the batch; the factor stays in cache).
constexpr std::int64_t kSolveBatch = std::int64_t{1} << 16;

void bm_triangular_solve(benchmark::State& state, Device d, std::int64_t k) {
  Generator gen(13);
  const Tensor l = tril(randn({k, k}, on(d), &gen), -1) + 2.0 * eye(k, on(d));
  const Tensor x = randn({kSolveBatch, k, 1}, on(d), &gen);
  const Tensor solved = triangular_solve(x, l);
  const Tensor residual = abs(matmul(l, solved) - x);
  if (!validated(state, all(le(residual, 1e-4)), "triangular_solve: wrong result")) return;
  const auto nd = static_cast<double>(kSolveBatch * k);
  const double bytes = 2.0 * 4.0 * nd;
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds =
      timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(triangular_solve(x, l)); });
  report_rates(state, d, batch, seconds, nd, bytes);
}

// (n, n) @ (n, n) float32: 2n^3 flops; bytes are the compulsory traffic 3 * 4n^2, so the
// copy-bandwidth fraction is small for a compute-bound size, as it should be.
void bm_matmul(benchmark::State& state, Device d, std::int64_t n) {
  const Tensor a = ones({n, n}, on(d)), b = full({n, n}, 0.5, on(d));
  const auto nd = static_cast<double>(n);
  if (!validated(state, all(eq(matmul(a, b), 0.5 * nd)), "matmul: wrong result")) return;
  const double flops = 2.0 * nd * nd * nd, bytes = 3.0 * 4.0 * nd * nd;
  const std::int64_t batch =
      d.is_cpu() ? 1 : std::clamp<std::int64_t>((1LL << 34) / n / n / n, 1, 64);
  const double seconds =
      timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(matmul(a, b)); });
  report_rates(state, d, batch, seconds, nd * nd, bytes);
  const double ops = static_cast<double>(state.iterations()) * static_cast<double>(batch);
  state.counters["FLOP/s"] = benchmark::Counter(ops * flops, benchmark::Counter::kIsRate);
}

// A regression's two matrix-vector products over n rows of kWidth float32 features: X w
// (`transposed` false: reads X and w, writes n values) or X^T r (reads X and r, writes kWidth).
constexpr std::int64_t kWidth = 16;
void bm_matvec(benchmark::State& state, Device d, std::int64_t n, bool transposed) {
  const Tensor x = full({n, kWidth}, 0.5, on(d));
  const Tensor v = full({transposed ? n : kWidth}, 2.0, on(d));
  auto product = [&] { return transposed ? matmul(x.t(), v) : matmul(x, v); };
  const double want = transposed ? static_cast<double>(n) : static_cast<double>(kWidth);
  if (!validated(state, all(eq(product(), want)), "matvec: wrong result")) return;
  const auto nd = static_cast<double>(n);
  const double bytes = 4.0 * (nd * kWidth + nd + kWidth);
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds = timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(product()); });
  report_rates(state, d, batch, seconds, nd, bytes);
}

// A compiled function whose elementwise chain feeds a sum, sum((x * 0.5 + 1) * x - 3) over n
// float32, replayed with its calls fused over tiles (CompileOptions::fuse) or one by one:
// fused it reads x once, unfused each call reads and writes an n-vector.
void bm_compiled_chain(benchmark::State& state, Device d, std::int64_t n, bool fuse) {
  const Tensor x = full({n}, 2.0, on(d));
  auto f = [](const Tensor& v) { return sum((v * 0.5 + 1.0) * v - 3.0); };
  auto compiled = compile(f, CompileOptions{.fuse = fuse});
  for (int i = 0; i < 3; ++i) (void)compiled(x);  // eager, recorded, bound
  const auto nd = static_cast<double>(n);
  if (!validated(state, compiled(x).item() == 1.0 * nd, "compiled chain: wrong result")) return;
  const double bytes = 4.0 * nd;  // x, read once
  const std::int64_t batch = batch_size(d, static_cast<std::int64_t>(bytes));
  const double seconds =
      timed_loop(state, d, batch, [&] { benchmark::DoNotOptimize(compiled(x)); });
  report_rates(state, d, batch, seconds, nd, bytes);
  state.counters["fused_calls"] = static_cast<double>(compiled.stats().fused_calls_per_replay);
}

void register_all(const std::vector<Backend>& backends) {
  add_copy_context(backends);
  for (const Backend& be : backends) {
    const Device d = be.device;
    for (std::int64_t n : pow2_sizes(10, be.max_log2)) {
      benchmark::RegisterBenchmark(bench_name("Elementwise", be, n).c_str(), bm_elementwise, d, n)
          ->UseManualTime();
    }
    for (std::int64_t n : pow2_sizes(10, be.max_log2)) {
      benchmark::RegisterBenchmark(bench_name("Sum", be, n).c_str(), bm_sum, d, n)->UseManualTime();
    }
    for (std::int64_t n : pow2_sizes(10, be.max_log2)) {
      benchmark::RegisterBenchmark(bench_name("SumRows", be, n).c_str(), bm_sum_rows, d, n)
          ->UseManualTime();
    }
    for (std::int64_t n : pow2_sizes(10, be.max_log2)) {
      benchmark::RegisterBenchmark(bench_name("Copy", be, n).c_str(), bm_copy, d, n)
          ->UseManualTime();
    }
    for (std::int64_t n : pow2_sizes(14, be.max_log2)) {
      benchmark::RegisterBenchmark(bench_name("GatherRows", be, n).c_str(), bm_gather_rows, d, n,
                                   false)
          ->UseManualTime();
      benchmark::RegisterBenchmark(bench_name("ScatterAddRows", be, n).c_str(), bm_gather_rows, d,
                                   n, true)
          ->UseManualTime();
    }
    for (std::int64_t n : {std::int64_t{1000}, std::int64_t{1000000}}) {
      benchmark::RegisterBenchmark(bench_name("MatVec", be, n).c_str(), bm_matvec, d, n, false)
          ->UseManualTime();
      benchmark::RegisterBenchmark(bench_name("MatVecT", be, n).c_str(), bm_matvec, d, n, true)
          ->UseManualTime();
    }
    for (std::int64_t n : {std::int64_t{1} << 16, std::int64_t{1} << 20}) {
      for (const bool fuse : {true, false}) {
        benchmark::RegisterBenchmark(
            bench_name("CompiledChain", be, std::to_string(n) + (fuse ? "/fused" : "/unfused"))
                .c_str(),
            bm_compiled_chain, d, n, fuse)
            ->UseManualTime();
      }
    }
    for (std::int64_t k : {2, 8, 16}) {
      benchmark::RegisterBenchmark(bench_name("TriangularSolve", be, k).c_str(),
                                   bm_triangular_solve, d, k)
          ->UseManualTime();
    }
    const std::int64_t max_matmul =
        env_int(d.is_cpu() ? "EMBER_BENCH_CPU_MAX_MATMUL" : "EMBER_BENCH_GPU_MAX_MATMUL",
                d.is_cpu() ? 1024 : 4096);
    for (std::int64_t n = 64; n <= max_matmul; n *= 2) {
      benchmark::RegisterBenchmark(bench_name("Matmul", be, n).c_str(), bm_matmul, d, n)
          ->UseManualTime();
    }
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
