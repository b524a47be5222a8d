// The VAE step of Pyro's tutorial at the shape its comparisons use (784-400-20, softplus
// hidden layers, a Bernoulli likelihood, Adam 1e-3, float32): one SVI step (guide, model,
// loss, backward, update) on a fixed batch of binarized MNIST digits, at batch 128 and 256;
// on the CPU at 1 and 2 threads. Per step it reports the time, tensor allocations, launcher
// calls, CUDA launches and host syncs. Two more show that data loading never holds a step
// back: the same step fed from a DataLoader over 60,000 images ("fed"), and the loader alone
// (BM_VaeLoader), whose time per batch must stay well under a step's. Each step also runs
// "compiled" (svi.compile(): recorded once, replayed; docs/compile.md): with a fixed batch the
// replay's inputs stay in place; fed from the loader they move at every step, among the few
// buffers the loader takes in turn (`placed_before`: the share of replays whose batch came
// back to memory the plan had bound it in). `heap_allocs` counts the blocks a step takes from
// the global operator new (on every thread: the loader's own included).
#include <cmath>
#include <functional>
#include <optional>
#include <string>

#include "bench/bench_util.hpp"
#include "bench/heap_counter.hpp"
#include "examples/vae_model.hpp"

namespace ember::bench {
namespace {

constexpr std::int64_t kZDim = 20, kHidden = 400, kLoaderImages = 60000;

// The shipped digits, binarized at 0.5, as many as `count` (repeated past 10,000), on `d`.
Tensor binarized_digits(std::int64_t count, Device d) {
  static const Tensor digits =
      data::read_idx(EMBER_DATA_DIR "/mnist10k-images-idx3-ubyte.gz", {.dtype = kFloat32})
          .reshape({-1, examples::kImagePixels});
  std::vector<Tensor> parts;
  for (std::int64_t have = 0; have < count; have += digits.size(0))
    parts.push_back(digits.narrow(0, 0, std::min(digits.size(0), count - have)));
  return (cat(parts) > 127.5).to(kFloat32).to(d);
}

// The model and guide as a type that can be named in a member.
using Program = std::function<void(const Tensor&)>;

struct VaeStep {
  explicit VaeStep(Device d)
      : gen(0),
        vae({.z_dim = kZDim, .hidden = kHidden, .tensor_options = on(d), .gen = &gen}),
        svi([this](const Tensor& x) { vae.model(x); }, [this](const Tensor& x) { vae.guide(x); },
            optim::Adam({.lr = 1e-3}), Trace_ELBO(), {.param_store = &store}) {}
  Generator gen;
  ParamStore store;
  examples::Vae vae;
  SVI<Program, Program> svi;
};

void report_step(benchmark::State& state, const profile::Counters& c, std::uint64_t heap,
                 double seconds, std::int64_t batch) {
  const double n = static_cast<double>(state.iterations());
  state.counters["heap_allocs"] = static_cast<double>(heap) / n;
  state.counters["ms_per_step"] = 1e3 * seconds / n;
  state.counters["allocs"] = static_cast<double>(c.allocations) / n;
  state.counters["calls"] = static_cast<double>(c.backend_calls) / n;
  state.counters["launches"] = static_cast<double>(c.kernel_launches) / n;
  state.counters["syncs"] = static_cast<double>(c.host_syncs) / n;
  state.SetItemsProcessed(state.iterations() * batch);
}

// One step per iteration on the same batch; the loss is read (as a training loop that
// prints it would), so a GPU step's time includes finishing it.
void bm_vae_step(benchmark::State& state, Device d, std::int64_t batch, int threads,
                 bool compiled) {
  std::optional<NumThreadsScope> scope;
  if (threads > 0) scope.emplace(threads);
  set_rng_seed(0);
  VaeStep s(d);
  if (compiled) s.svi.compile();
  const Tensor x = binarized_digits(batch, d);
  double loss = 0;
  for (int i = 0; i < 3; ++i) loss = s.svi.step(x);  // params made, caches warm
  if (!validated(state, std::isfinite(loss) && loss > 0, "VaeStep: loss not finite and positive"))
    return;
  const profile::Counters before = profile::counters();
  const std::uint64_t heap_before = heap_counter::blocks();
  const double seconds =
      timed_loop(state, d, 1, [&] { benchmark::DoNotOptimize(double(s.svi.step(x))); });
  report_step(state, profile::counters() - before, heap_counter::blocks() - heap_before, seconds,
              batch);
  if (compiled) {
    // What the plan's buffers hold, and what buffers sharing memory spare.
    const CompileStats cs = s.svi.compile_stats();
    state.counters["retained_MiB"] = static_cast<double>(cs.retained_bytes) / (1 << 20);
    state.counters["shared_MiB"] = static_cast<double>(cs.shared_bytes) / (1 << 20);
  }
}

// The step fed from a shuffling loader with batches prepared on its background thread.
void bm_vae_step_fed(benchmark::State& state, Device d, std::int64_t batch, int threads,
                     bool compiled) {
  std::optional<NumThreadsScope> scope;
  if (threads > 0) scope.emplace(threads);
  set_rng_seed(0);
  VaeStep s(d);
  if (compiled) s.svi.compile();
  data::DataLoader loader(data::TensorDataset({binarized_digits(kLoaderImages, Device::cpu())}),
                          {.batch_size = batch, .drop_last = true, .seed = 1, .device = d});
  auto it = loader.begin();
  auto next_batch = [&]() -> const Tensor& {
    if (it == loader.end()) it = loader.begin();
    const Tensor& x = (*it)[0];
    return x;
  };
  for (int i = 0; i < 3; ++i) {
    s.svi.step(next_batch());
    ++it;
  }
  const profile::Counters before = profile::counters();
  const std::uint64_t heap_before = heap_counter::blocks();
  const double seconds = timed_loop(state, d, 1, [&] {
    benchmark::DoNotOptimize(double(s.svi.step(next_batch())));
    ++it;
  });
  report_step(state, profile::counters() - before, heap_counter::blocks() - heap_before, seconds,
              batch);
  // Of the replays, those whose batch came back to memory the plan had bound it in.
  const CompileStats cs = s.svi.compile_stats();
  if (compiled && cs.replays > 0)
    state.counters["placed_before"] =
        static_cast<double>(cs.placements_reused) / static_cast<double>(cs.replays);
}

// The loader alone: one epoch over 60,000 binarized images per iteration.
void bm_vae_loader(benchmark::State& state, Device d, std::int64_t batch) {
  data::DataLoader loader(data::TensorDataset({binarized_digits(kLoaderImages, Device::cpu())}),
                          {.batch_size = batch, .drop_last = true, .seed = 1, .device = d});
  const double seconds = timed_loader_epochs(state, d, loader);
  if (seconds < 0) return;
  const auto batches = static_cast<double>(state.iterations() * loader.size());
  state.counters["ms_per_batch"] = 1e3 * seconds / batches;
  state.counters["batches_per_s"] = benchmark::Counter(batches, benchmark::Counter::kIsRate);
}

void register_all(const std::vector<Backend>& backends) {
  for (const Backend& be : backends) {
    // The CPU at 1 and 2 threads (the peers' comparison points); a GPU at its default.
    const std::vector<int> thread_counts =
        be.device.is_cpu() ? std::vector<int>{1, 2} : std::vector<int>{0};
    for (const std::int64_t batch : {128, 256}) {
      for (const int threads : thread_counts) {
        const std::string suffix =
            std::to_string(batch) + (threads > 0 ? "/threads" + std::to_string(threads) : "");
        for (const bool compiled : {false, true}) {
          const std::string mode = compiled ? "/compiled" : "";
          register_ms(bench_name("VaeStep", be, suffix + mode), bm_vae_step, be.device, batch,
                      threads, compiled);
          register_ms(bench_name("VaeStep", be, suffix + "/fed" + mode), bm_vae_step_fed, be.device,
                      batch, threads, compiled);
        }
      }
      register_ms(bench_name("VaeLoader", be, batch), bm_vae_loader, be.device, batch);
    }
  }
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  return ember::bench::bench_main(argc, argv, ember::bench::register_all);
}
