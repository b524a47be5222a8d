// Shared benchmark plumbing: the backends to run on, timing of a synchronized batch, and
// the reference copy bandwidth that every bandwidth figure is compared against.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ember/ember.hpp"

#if EMBER_BENCH_CUDART
#include <cuda_runtime.h>
#endif

namespace ember::bench {

// One place the benchmarks run: the name that goes into `BM_<What>/<backend>/<n>`, and
// the largest log2 size that size sweeps go up to there.
struct Backend {
  std::string name;
  Device device;
  int max_log2;
};

// The integer in environment variable `name`, or `fallback` when unset or unparsable.
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end != nullptr && *end == '\0') ? static_cast<int>(x) : fallback;
}

// The CPU always; the first CUDA device only when one is usable at run time, so a build
// with the CUDA backend still runs (CPU only) on a machine without a GPU. Size caps come
// from EMBER_BENCH_CPU_MAX_LOG2 (default 24) and EMBER_BENCH_GPU_MAX_LOG2 (default 26).
inline std::vector<Backend> backends() {
  std::vector<Backend> out{{"cpu", Device::cpu(), env_int("EMBER_BENCH_CPU_MAX_LOG2", 24)}};
  if (cuda_available()) {
    out.push_back({"cuda", Device::cuda(0), env_int("EMBER_BENCH_GPU_MAX_LOG2", 26)});
  }
  return out;
}

// `BM_<what>/<backend>/<n>`.
inline std::string bench_name(const std::string& what, const Backend& b, const std::string& n) {
  return "BM_" + what + "/" + b.name + "/" + n;
}
inline std::string bench_name(const std::string& what, const Backend& b, std::int64_t n) {
  return bench_name(what, b, std::to_string(n));
}

// Ops per timed batch. A GPU op is queued, not done, when it returns: the batch is long
// enough that the synchronize closing it costs little next to the work. A CPU op is
// synchronous, so one op per batch already times it exactly.
inline std::int64_t batch_size(Device d, std::int64_t bytes_per_op) {
  if (d.is_cpu()) return 1;
  constexpr std::int64_t kBatchBytes = std::int64_t{1} << 28;  // ~0.1 ms at 3 TB/s
  return std::clamp<std::int64_t>(kBatchBytes / std::max<std::int64_t>(bytes_per_op, 1), 1, 64);
}

// Runs the benchmark loop: each iteration times `batch` calls of op() from a drained
// device to a drained device, and reports that time (benchmarks using this must be
// registered with UseManualTime()); between() runs before each iteration, untimed. Returns the
// total timed seconds.
template <typename Op, typename Between>
double timed_loop(benchmark::State& state, Device d, std::int64_t batch, Op&& op,
                  Between&& between) {
  double total = 0;
  synchronize(d);
  for (auto _ : state) {
    between();  // leaves the device drained, as the iteration before did
    const auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < batch; ++i) op();
    synchronize(d);
    const auto t1 = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t1 - t0).count();
    state.SetIterationTime(dt);
    total += dt;
  }
  return total;
}

template <typename Op>
double timed_loop(benchmark::State& state, Device d, std::int64_t batch, Op&& op) {
  return timed_loop(state, d, batch, std::forward<Op>(op), [] {});
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

namespace detail {

constexpr int kCopyRuns = 9;

// All cores each memcpy one slice: the fastest plain copy of host memory there is
// without hand-written streaming stores, i.e. what a CPU kernel can hope to reach.
inline double measure_cpu_copy_bytes_per_second(std::size_t n_floats) {
  const std::size_t nbytes = n_floats * sizeof(float);
  std::vector<char> src(nbytes, 1), dst(nbytes, 0);  // touched: no page faults in the runs
  const unsigned nt = std::max(1u, std::thread::hardware_concurrency());
  auto run = [&] {
    std::vector<std::thread> threads;
    const std::size_t chunk = (nbytes + nt - 1) / nt;
    for (unsigned t = 0; t < nt; ++t) {
      const std::size_t b = std::min(nbytes, t * chunk), e = std::min(nbytes, b + chunk);
      threads.emplace_back([&, b, e] { std::memcpy(dst.data() + b, src.data() + b, e - b); });
    }
    for (auto& th : threads) th.join();
  };
  run();
  std::vector<double> rates;
  for (int i = 0; i < kCopyRuns; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const auto t1 = std::chrono::steady_clock::now();
    rates.push_back(2.0 * static_cast<double>(nbytes) /
                    std::chrono::duration<double>(t1 - t0).count());
  }
  benchmark::DoNotOptimize(dst.data());
  return median(rates);
}

#if EMBER_BENCH_CUDART
inline void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw Error(std::string("bench: ") + what + ": " + cudaGetErrorString(e));
  }
}

// cudaMemcpy device to device, timed with events: the copy engine's or the copy kernel's
// best, whichever the driver picks, and the yardstick of every GPU bandwidth figure.
inline double measure_cuda_copy_bytes_per_second(Device d, std::size_t n_floats) {
  const std::size_t nbytes = n_floats * sizeof(float);
  synchronize(d);
  cuda_check(cudaSetDevice(d.index()), "cudaSetDevice");
  void *d_src = nullptr, *d_dst = nullptr;
  cuda_check(cudaMalloc(&d_src, nbytes), "cudaMalloc");
  cuda_check(cudaMalloc(&d_dst, nbytes), "cudaMalloc");
  cuda_check(cudaMemset(d_src, 1, nbytes), "cudaMemset");
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "cudaEventCreate");
  cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> rates;
  for (int i = -2; i < kCopyRuns; ++i) {  // two warm-up runs
    cuda_check(cudaEventRecord(start), "cudaEventRecord");
    cuda_check(cudaMemcpyAsync(d_dst, d_src, nbytes, cudaMemcpyDeviceToDevice), "cudaMemcpy");
    cuda_check(cudaEventRecord(stop), "cudaEventRecord");
    cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (i >= 0) rates.push_back(2.0 * static_cast<double>(nbytes) / (ms * 1e-3));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(d_src);
  cudaFree(d_dst);
  return median(rates);
}
#endif

// Without the CUDA runtime at hand: Ember's own clone, which makes BM_Copy's fraction 1
// by construction but still gives the other benchmarks a yardstick.
inline double measure_clone_bytes_per_second(Device d, std::size_t n_floats) {
  const Tensor x = full({static_cast<std::int64_t>(n_floats)}, 1.0, TensorOptions{}.with_device(d));
  std::vector<double> rates;
  for (int i = -2; i < kCopyRuns; ++i) {
    synchronize(d);
    const auto t0 = std::chrono::steady_clock::now();
    Tensor y = x.clone();
    synchronize(d);
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= 0)
      rates.push_back(8.0 * static_cast<double>(n_floats) /
                      std::chrono::duration<double>(t1 - t0).count());
  }
  return median(rates);
}

}  // namespace detail

// The copy bandwidth of `d` in bytes/s (read + write counted), measured once per process
// on the first call: the median of several copies of 2^26 floats on a GPU, 2^24 on the
// CPU (256 and 64 MiB, well past the last-level cache). EMBER_BENCH_COPY_LOG2 overrides.
inline double reference_copy_bytes_per_second(Device d) {
  static std::map<std::pair<int, int>, double> cache;
  const auto key = std::make_pair(static_cast<int>(d.type()), d.index());
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const int log2 = env_int("EMBER_BENCH_COPY_LOG2", d.is_cpu() ? 24 : 26);
  const std::size_t n = std::size_t{1} << log2;
  double bw = 0;
  if (d.is_cpu()) {
    bw = detail::measure_cpu_copy_bytes_per_second(n);
  } else {
#if EMBER_BENCH_CUDART
    bw = detail::measure_cuda_copy_bytes_per_second(d, n);
#else
    bw = detail::measure_clone_bytes_per_second(d, n);
#endif
  }
  cache.emplace(key, bw);
  return bw;
}

// Which yardstick reference_copy_bytes_per_second(d) uses, for the run's context.
inline std::string reference_copy_method(Device d) {
  if (d.is_cpu()) return "memcpy on all cores";
#if EMBER_BENCH_CUDART
  return "cudaMemcpy device-to-device";
#else
  return "ember clone (no CUDA runtime linked into the benchmark)";
#endif
}

// Reports items/s and bytes/s for `items` and `bytes` per op, and on every backend the
// fraction of the reference copy bandwidth reached. Each iteration ran `batch` ops and all
// of them took `seconds` (what timed_loop returned).
inline void report_rates(benchmark::State& state, Device d, std::int64_t batch, double seconds,
                         double items, double bytes) {
  const double ops = static_cast<double>(state.iterations()) * static_cast<double>(batch);
  state.SetItemsProcessed(static_cast<std::int64_t>(ops * items));
  state.SetBytesProcessed(static_cast<std::int64_t>(ops * bytes));
  // A plain ratio, not a kIsRate counter (that would print it as "x/s").
  if (seconds > 0) {
    state.counters["frac_of_copy_bw"] = ops * bytes / seconds / reference_copy_bytes_per_second(d);
  }
  if (batch > 1) state.counters["batch"] = static_cast<double>(batch);
}

// Times one epoch of `loader` per iteration, the consumer touching each batch on its device
// as a step would. Returns the timed seconds, or a negative number after reporting the
// benchmark as failed when batches went missing.
inline double timed_loader_epochs(benchmark::State& state, Device d, data::DataLoader& loader) {
  std::int64_t batches = 0;
  const double seconds = timed_loop(state, d, 1, [&] {
    for (const data::Batch& b : loader) {
      benchmark::DoNotOptimize(b[0].data_ptr());
      ++batches;
    }
  });
  if (batches != state.iterations() * loader.size()) {
    state.SkipWithError("DataLoader: batches lost");
    return -1;
  }
  return seconds;
}

// Registers a benchmark timed by timed_loop (manual time), reported in milliseconds.
template <typename... Args>
benchmark::internal::Benchmark* register_ms(const std::string& name, Args&&... args) {
  return benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

inline TensorOptions on(Device d) { return TensorOptions{}.with_device(d); }

// Each benchmark checks its op's result once, before it times it: a fast wrong kernel
// must not produce a figure.
inline bool validated(benchmark::State& state, bool ok, const char* what) {
  if (!ok) state.SkipWithError(what);
  return ok;
}

// Sizes 2^lo, 2^(lo+2), ..., up to 2^max_log2.
inline std::vector<std::int64_t> pow2_sizes(int lo, int max_log2) {
  std::vector<std::int64_t> v;
  for (int k = lo; k <= max_log2; k += 2) v.push_back(std::int64_t{1} << k);
  return v;
}

// Adds the copy yardsticks to the run's context (printed in the header, kept in JSON).
inline void add_copy_context(const std::vector<Backend>& backends) {
  for (const Backend& b : backends) {
    const double bw = reference_copy_bytes_per_second(b.device);
    benchmark::AddCustomContext(b.name + "_copy_GBps", std::to_string(bw * 1e-9));
    benchmark::AddCustomContext(b.name + "_copy_method", reference_copy_method(b.device));
  }
}

// main() of a benchmark program: registers what `register_all` adds for the usable
// backends, then runs Google Benchmark as its own main would.
template <typename Register>
int bench_main(int argc, char** argv, Register&& register_all) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // What multiplies matrices on the CPU, and whether its kernels fit the CPU: a figure from
  // OpenBLAS's fallback kernels is no figure of this machine (ember::cpu_matmul_info).
  const CpuMatmulInfo matmul = cpu_matmul_info();
  benchmark::AddCustomContext("cpu_matmul", matmul.library);
  if (!matmul.advice.empty()) {
    benchmark::AddCustomContext("cpu_matmul_advice", matmul.advice);
    std::fprintf(stderr, "warning: %s\n", matmul.advice.c_str());
  }
  register_all(backends());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace ember::bench
