// A replayed SVI step takes no block from the heap: not a tensor (CompileTest checks those
// through Ember's counters) and not a container, closure or scratch buffer of the launcher,
// the optimizer or the plan. This program replaces the global operator new with a counting
// one (bench/heap_counter.hpp), so it counts every `new` of a step on every thread.
#include "bench/heap_counter.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

// Heap blocks per step over `steps` steps of `step`, after three to record and warm up.
template <typename Step>
std::uint64_t heap_blocks_of(int steps, Step&& step) {
  for (int i = 0; i < 3; ++i) step();
  const std::uint64_t before = heap_counter::blocks();
  for (int i = 0; i < steps; ++i) step();
  return heap_counter::blocks() - before;
}

// The coin of SVI Part I.
const auto coin_model = [](const Tensor& x) {
  const Tensor prior = full({}, 10.0);
  const Tensor f = sample("fairness", dist::Beta(prior, prior));
  auto data = plate("data", x.size(0));
  sample("obs", dist::Bernoulli(f), x);
};
const auto coin_guide = [](const Tensor&) {
  const Tensor a = param("alpha_q", full({}, 15.0), constraints::positive);
  const Tensor b = param("beta_q", full({}, 15.0), constraints::positive);
  sample("fairness", dist::Beta(a, b));
};

TEST(ReplayHeap, CoinReplaysTakeNoHeapBlock) {
  ParamStore store;
  const Tensor flips = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0});
  SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
          {.check_finite = false, .param_store = &store});
  // The counter counts: the eager step of the same program takes blocks.
  EXPECT_GT(heap_blocks_of(5, [&] { svi.step(flips); }), 0u);
  svi.compile();
  double sum = 0;
  EXPECT_EQ(heap_blocks_of(20, [&] { sum += svi.step(flips).value(); }), 0u);
  EXPECT_TRUE(std::isfinite(sum));
  EXPECT_EQ(svi.compile_stats().replays, 22);
}

// An eager step pools its tensors, storages, tape nodes, closures, traces' site lists and
// distributions' parameter lists: of the coin's step only three heap blocks are left, the
// plate's frame list in the observation's message and in its trace's copy, and the list of
// parameters the ELBO hands the optimizer (their types are the public Message and ElboResult).
TEST(ReplayHeap, EagerCoinStepTakesThreeHeapBlocks) {
  const ValidationScope fast(false);
  ParamStore store;
  const Tensor flips = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0});
  SVI svi(coin_model, coin_guide, optim::Adam({.lr = 5e-3}), Trace_ELBO(),
          {.check_finite = false, .param_store = &store});
  double sum = 0;
  EXPECT_EQ(heap_blocks_of(20, [&] { sum += svi.step(flips).value(); }), 3u * 20u);
  EXPECT_TRUE(std::isfinite(sum));
  EXPECT_EQ(svi.compile_stats().replays, 0);
}

// The regression: matrix-vector products, a fused log-density with its gradients, sums and a
// ClippedAdam update over several parameters, with the data passed at every step. At 20000
// rows on one thread its pass over the data runs fused (Backend::run_fused): no block either.
TEST(ReplayHeap, RegressionReplaysTakeNoHeapBlock) {
  const NumThreadsScope one(1);
  for (const std::int64_t n : {1000, 20000}) {
    SCOPED_TRACE(::testing::Message() << n << " rows");
    ParamStore store;
    Generator gen(3);
    const Tensor x = randn({n, 16}, {}, &gen);
    const Tensor y = matmul(x, linspace(-1.0, 1.0, 16)) + randn({n}, {}, &gen) * 0.3;
    auto model = [](const Tensor& xs, const Tensor& ys) {
      const Tensor w = sample("w", dist::Normal(zeros({16}), 1.0).to_event(1));
      const Tensor b = sample("b", dist::Normal(zeros({}), 10.0));
      auto data = plate("data", xs.size(0));
      sample("y", dist::Normal(matmul(xs, w) + b, 0.3), ys);
    };
    auto guide = [](const Tensor&, const Tensor&) {
      const Tensor w_loc = param("w_loc", zeros({16}));
      const Tensor w_scale = param("w_scale", full({16}, 0.1), constraints::positive);
      sample("w", dist::Normal(w_loc, w_scale).to_event(1));
      const Tensor b_loc = param("b_loc", zeros({}));
      sample("b", dist::Normal(b_loc, 0.1));
    };
    SVI svi(model, guide, optim::ClippedAdam({.lr = 1e-2}), Trace_ELBO(),
            {.check_finite = false, .param_store = &store});
    svi.compile();
    double sum = 0;
    EXPECT_EQ(heap_blocks_of(20, [&] { sum += svi.step(x, y).value(); }), 0u);
    EXPECT_TRUE(std::isfinite(sum));
    EXPECT_GT(svi.compile_stats().bound_calls_per_replay, 0u);
    if (n == 20000) EXPECT_GT(svi.compile_stats().fused_calls_per_replay, 0u);
  }
}

// A mean-field Normal guide of four regression weights.
void four_weights_guide() {
  const Tensor loc = param("w_loc", zeros({4}));
  const Tensor scale = param("w_scale", full({4}, 0.1), constraints::positive);
  sample("w", dist::Normal(loc, scale).to_event(1));
}

// A regression of 20000 rows on four weights, compiled with `opts`, fed `count` batches of its
// data (each in memory of its own) by a step function: step i gets batch batch_at(i).
struct FourWeightsFit {
  static constexpr std::int64_t kRows = 20000;
  FourWeightsFit(int count, std::uint64_t seed, const CompileOptions& opts)
      : svi([](const Tensor& xs, const Tensor& ys) { model(xs, ys); },
            [](const Tensor&, const Tensor&) { four_weights_guide(); }, optim::Adam({.lr = 1e-2}),
            Trace_ELBO(), {.check_finite = false, .param_store = &store}) {
    Generator gen(seed);
    for (int k = 0; k < count; ++k) {
      const Tensor x = randn({kRows, 4}, {}, &gen);
      batches.emplace_back(x, matmul(x, linspace(-1.0, 1.0, 4)) + randn({kRows}, {}, &gen));
    }
    svi.compile(opts);
  }
  static void model(const Tensor& xs, const Tensor& ys) {
    const Tensor w = sample("w", dist::Normal(zeros({4}), 1.0).to_event(1));
    auto data = plate("data", xs.size(0));
    sample("y", dist::Normal(matmul(xs, w), 1.0), ys);
  }
  void step(std::size_t batch) {
    const auto& [x, y] = batches[batch];
    sum += svi.step(x, y).value();
  }
  using Program = std::function<void(const Tensor&, const Tensor&)>;
  ParamStore store;
  SVI<Program, Program> svi;
  std::vector<std::pair<Tensor, Tensor>> batches;
  double sum = 0;
};

// Data that comes back to memory it was in before (a loader's batches, buffers used in turn)
// finds the calls that read it bound there, and their fused run made: once each of three
// batches has been seen twice, a replay takes no block either.
TEST(ReplayHeap, DataInBuffersUsedInTurnTakesNoHeapBlock) {
  const NumThreadsScope one(1);
  FourWeightsFit f(3, 5, {});
  std::size_t step = 0;
  auto next = [&] { f.step(step++ % 3); };
  for (int i = 0; i < 4; ++i) next();  // recorded, bound at each place, runs made
  EXPECT_EQ(heap_blocks_of(21, next), 0u);
  EXPECT_TRUE(std::isfinite(f.sum));
  EXPECT_GE(f.svi.compile_stats().placements_reused, 23u);  // from the sixth step on
  EXPECT_GT(f.svi.compile_stats().fused_calls_per_replay, 0u);
}

// Batches in new memory at every step (all alive, so none reuses another's block), with
// CompileOptions::stage_inputs: from its second move on each is copied into the plan's buffer,
// which the calls read, so a replay neither binds nor takes a block.
TEST(ReplayHeap, StagedDataInNewMemoryEveryStepTakesNoHeapBlock) {
  const NumThreadsScope one(1);
  CompileOptions opts;
  opts.stage_inputs = true;
  FourWeightsFit f(30, 9, opts);
  std::size_t step = 0;
  auto next = [&] { f.step(step++); };
  next();  // the first move; the three steps heap_blocks_of warms up with stage the data
  EXPECT_EQ(heap_blocks_of(21, next), 0u);
  EXPECT_TRUE(std::isfinite(f.sum));
  EXPECT_EQ(f.svi.compile_stats().staged_inputs, 2u);
  EXPECT_GT(f.svi.compile_stats().fused_calls_per_replay, 0u);
}

// A 0-d factor passed in new memory at every step (an annealing factor made afresh): the calls
// that read it take it as a scalar read again before they run, so its moves bind nothing
// again, and the data held in place keeps its fused run: no block either.
TEST(ReplayHeap, AFactorInNewMemoryAtEveryStepBindsNothingAgain) {
  const NumThreadsScope one(1);
  constexpr std::int64_t kRows = 20000;
  Generator gen(7);
  const Tensor x = randn({kRows, 4}, {}, &gen);
  const Tensor y = matmul(x, linspace(-1.0, 1.0, 4)) + randn({kRows}, {}, &gen);
  std::vector<Tensor> factors;  // all alive: each in memory of its own
  for (int i = 0; i < 30; ++i) factors.push_back(scalar_tensor(1.0 - 0.01 * i));
  ParamStore store;
  auto model = [](const Tensor& xs, const Tensor& ys, const Tensor& factor) {
    const Tensor w = sample("w", dist::Normal(zeros({4}), 1.0).to_event(1));
    auto data = plate("data", xs.size(0));
    sample("y", dist::Normal(matmul(xs, w) * factor, 1.0), ys);
  };
  auto guide = [](const Tensor&, const Tensor&, const Tensor&) { four_weights_guide(); };
  SVI svi(model, guide, optim::Adam({.lr = 1e-2}), Trace_ELBO(),
          {.check_finite = false, .param_store = &store});
  svi.compile();
  std::size_t step = 0;
  double sum = 0;
  auto next = [&] { sum += svi.step(x, y, factors[step++]).value(); };
  EXPECT_EQ(heap_blocks_of(21, next), 0u);
  EXPECT_TRUE(std::isfinite(sum));
  EXPECT_EQ(svi.compile_stats().placements_reused, 0u);
  EXPECT_GT(svi.compile_stats().fused_calls_per_replay, 0u);
}

// A permute, recorded and differentiated, takes no heap block of its own (an enumerated
// chain's contractions permute several tensors at every time step): a step through it takes
// what the same step through a transpose takes, and its forward on a tensor that requires
// grad (recording the node and its closure) none at all.
TEST(ReplayHeap, PermuteAndItsGradientTakeNoHeapBlockOfTheirOwn) {
  const Tensor x = randn({2, 3, 4}).requires_grad_();
  const Tensor w = randn({3, 2, 4});
  const std::vector<int> dims{1, 0, 2};
  Tensor kept;
  EXPECT_EQ(heap_blocks_of(10, [&] { kept = x.permute(dims); }), 0u);
  const std::uint64_t through_permute = heap_blocks_of(10, [&] {
    x.zero_grad();
    sum(x.permute(dims) * w).backward();
  });
  const std::uint64_t through_transpose = heap_blocks_of(10, [&] {
    x.zero_grad();
    sum(x.transpose(0, 1) * w).backward();
  });
  EXPECT_EQ(through_permute, through_transpose);
  // And the gradient is the permuted-back weights.
  x.zero_grad();
  sum(x.permute(dims) * w).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), w.permute(dims).contiguous().to_vector<double>());
}

}  // namespace
}  // namespace ember
