// Several threads running independent models at once: handler stacks, plate dims, seeds and
// param stores are per thread (or per store), so nothing crosses between them.
#include <thread>

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

}  // namespace
}  // namespace ember
