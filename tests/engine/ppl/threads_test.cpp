// Several threads running independent models at once: handler stacks, plate dims, seeds and
// param stores are per thread (or per store), so nothing crosses between them. And threads
// sharing an SVI, or a param store between SVIs, take turns step by step.
#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>
#include <utility>

#include "engine/data/data_test_util.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

// A model with a param, plates and a subsample; returns its trace's log-density.
double run_model(std::uint64_t seed, double offset, ParamStore& store) {
  ParamStoreScope scope(store);
  handlers::SeedHandler seeded(seed);
  handlers::TraceHandler tracer;
  const Tensor loc = param("loc", scalar_tensor(offset, f64()));
  auto outer = plate("outer", 50, {.subsample_size = 7});
  auto inner = plate("inner", 3);
  EXPECT_EQ(outer.dim(), -1);
  EXPECT_EQ(inner.dim(), -2);
  const Tensor z = sample("z", dist::Normal(loc, 1.0));
  sample("x", dist::Normal(z, 0.5), zeros({3, 7}, f64()));
  return tracer.trace().log_prob_sum().item();
}

TEST(ThreadsTest, IndependentModelsDoNotInterfere) {
  constexpr int kThreads = 6, kRuns = 40;
  std::vector<double> alone(kThreads);
  {
    std::vector<std::unique_ptr<ParamStore>> stores;
    for (int t = 0; t < kThreads; ++t) {
      stores.push_back(std::make_unique<ParamStore>());
      alone[t] = run_model(100 + t, t, *stores.back());
    }
  }
  std::vector<std::unique_ptr<ParamStore>> stores;
  for (int t = 0; t < kThreads; ++t) stores.push_back(std::make_unique<ParamStore>());
  std::vector<std::vector<double>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) got[t].push_back(run_model(100 + t, t, *stores[t]));
      EXPECT_TRUE(handler_stack_empty());
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_DOUBLE_EQ(stores[t]->get("loc").item(), t);
    for (double v : got[t]) EXPECT_DOUBLE_EQ(v, alone[t]) << "thread " << t;
  }
  EXPECT_TRUE(handler_stack_empty());
}

// A fit without latent sites (the data's mean by maximum likelihood): every step is the same
// function of the parameters and the optimizer's state, whichever thread runs it and with
// whatever generator, so steps that take turns give the steps of one thread, bit for bit.
void mean_model(const Tensor& data) {
  const Tensor loc = param("loc", scalar_tensor(0.0, f64()));
  auto points = plate("points", data.size(0));
  sample("x", dist::Normal(loc, 1.0), data);
}
void no_guide(const Tensor&) {}

Tensor mean_data() { return tensor({0.5, 1.5, 2.0, -0.3, 4.1}, f64()); }

// The losses of all threads together, in increasing order.
std::vector<double> sorted(const std::vector<std::vector<double>>& per_thread) {
  std::vector<double> all;
  for (const auto& l : per_thread) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  return all;
}

// kThreads threads calling step() on one SVI (its store given in its options), kSteps each,
// thread 0 through run() with a callback that evaluates the loss (the same thread entering
// the SVI again): the losses are those of one thread's kThreads * kSteps steps, each once,
// and so is the fitted value; eagerly and compiled.
TEST(ThreadsTest, StepsOfOneSviFromSeveralThreadsTakeTurns) {
  constexpr int kThreads = 4, kSteps = 60;
  const Tensor data = mean_data();
  for (const bool compiled : {false, true}) {
    SCOPED_TRACE(compiled ? "compiled" : "eager");
    auto make = [&](ParamStore& store) {
      SVI svi(mean_model, no_guide, optim::Adam({.lr = 0.05}), Trace_ELBO(),
              {.param_store = &store});
      if (compiled) svi.compile();
      return svi;
    };
    ParamStore alone_store;
    auto alone = make(alone_store);
    std::vector<double> expected;
    for (int i = 0; i < kThreads * kSteps; ++i) expected.push_back(alone.step(data).value());

    ParamStore store;
    auto shared = make(store);
    std::vector<std::vector<double>> losses(kThreads);
    std::vector<double> evaluated;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        if (t == 0) {
          const RunResult r =
              shared.run(kSteps,
                         {.callback =
                              [&](const StepInfo&) {
                                evaluated.push_back(shared.evaluate_loss(data).value());
                                return true;
                              },
                          .progress = Progress::None},
                         data);
          losses[t] = r.losses;
          return;
        }
        for (int i = 0; i < kSteps; ++i) losses[t].push_back(shared.step(data).value());
      });
    }
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(sorted(losses), sorted({expected}));
    EXPECT_EQ(shared.num_steps_taken(), kThreads * kSteps);
    EXPECT_EQ(store.get("loc").item(), alone_store.get("loc").item());
    EXPECT_EQ(evaluated.size(), static_cast<std::size_t>(kSteps));
  }
}

// SVIs of their own in several threads over one store take turns too: with SGD (no state of
// the optimizer's), each step moves the shared parameter from where the step before left it,
// and the fit is one thread's fit of as many steps.
TEST(ThreadsTest, SvisSharingAStoreTakeTurns) {
  constexpr int kThreads = 3, kSteps = 80;
  const Tensor data = mean_data();
  for (const bool compiled : {false, true}) {
    SCOPED_TRACE(compiled ? "compiled" : "eager");
    auto fit = [&](ParamStore& store, int steps, std::vector<double>& losses) {
      SVI svi(mean_model, no_guide, optim::SGD({.lr = 0.01}), Trace_ELBO(),
              {.param_store = &store});
      if (compiled) svi.compile();
      for (int i = 0; i < steps; ++i) losses.push_back(svi.step(data).value());
    };
    ParamStore alone;
    std::vector<double> expected;
    fit(alone, kThreads * kSteps, expected);

    ParamStore store;
    std::vector<std::vector<double>> losses(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] { fit(store, kSteps, losses[t]); });
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(sorted(losses), sorted({expected}));
    EXPECT_EQ(store.get("loc").item(), alone.get("loc").item());
  }
}

// A checkpoint written by another thread while a fit runs holds one step's parameters: save
// copies them between steps. Every file the saving thread writes, loaded back, gives a pair
// (loc, scale) that some step of the same fit run alone left. The fit goes on until the
// saver has written kCheckpoints files (at most kMaxSteps steps).
void located_model(const Tensor& data) {
  const Tensor loc = param("loc", scalar_tensor(0.0, f64()));
  const Tensor scale = param("scale", scalar_tensor(1.0, f64()), constraints::positive);
  auto points = plate("points", data.size(0));
  sample("x", dist::Normal(loc, scale), data);
}

TEST(ThreadsTest, CheckpointsSavedWhileAFitRunsHoldOneStepsParameters) {
  constexpr int kMaxSteps = 5000, kCheckpoints = 10;
  const Tensor data = mean_data();
  auto pair = [](const ParamStore& s) {
    return std::pair{s.get("loc").item(), s.get("scale").item()};
  };
  std::set<std::pair<double, double>> states;
  {
    ParamStore store;
    SVI svi(located_model, no_guide, optim::Adam({.lr = 0.05}), Trace_ELBO(),
            {.param_store = &store});
    for (int i = 0; i < kMaxSteps; ++i) {
      svi.step(data);
      states.insert(pair(store));
    }
  }
  const test::TempDir temp;
  const std::string file = temp.file("checkpoint.safetensors");
  ParamStore store;
  SVI svi(located_model, no_guide, optim::Adam({.lr = 0.05}), Trace_ELBO(),
          {.param_store = &store});
  svi.step(data);  // makes the parameters
  std::atomic<bool> done{false};
  std::atomic<int> checkpoints{0};
  std::thread saver([&] {
    while (!done.load()) {
      store.save(file);
      ParamStore loaded;
      loaded.load(file);
      EXPECT_EQ(states.count(pair(loaded)), 1u)
          << "a checkpoint mixes steps: loc " << pair(loaded).first << ", scale "
          << pair(loaded).second;
      ++checkpoints;
    }
  });
  for (int i = 1; i < kMaxSteps && checkpoints.load() < kCheckpoints; ++i) {
    svi.step(data);
    // Every 250 steps the fit waits for the saver's next file, so that on a loaded machine too
    // the saves come between steps of the fit, not after it.
    if (i % 250 == 0) {
      const int seen = checkpoints.load();
      while (checkpoints.load() == seen) std::this_thread::yield();
    }
  }
  done = true;
  saver.join();
  EXPECT_GE(checkpoints.load(), kCheckpoints);
  EXPECT_EQ(states.count(pair(store)), 1u);
}

// Backward passes of several threads through one leaf (a weight both use, outside any SVI) add
// their gradients into it one at a time: four threads, 1000 passes each of sum(w * (t + 1)),
// leave exactly 1000 * (1 + 2 + 3 + 4) in every element of w's gradient.
TEST(ThreadsTest, BackwardPassesOfSeveralThreadsAddIntoASharedLeaf) {
  const Tensor w = zeros({64}, f64()).requires_grad_();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) sum(w * static_cast<double>(t + 1)).backward();
    });
  }
  for (std::thread& th : threads) th.join();
  for (const double g : w.grad().to_vector<double>()) EXPECT_EQ(g, 10000.0);
}

}  // namespace
}  // namespace ember
