// The finite check of an SVI step on cuda:0: with validation off a checked step waits on the
// device exactly once (one launch over the loss and every gradient, one read of its flag),
// and a non-finite loss names the same site as on the CPU. Each case skips with a reason
// where there is no CUDA device.
#include <gtest/gtest.h>

#include <ember/ember.hpp>

#include "test_util.hpp"

namespace ember {
namespace {

#define EMBER_REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

// Syncs and kernel launches of 10 steps of a regression on the device (after a warm-up step).
profile::Counters ten_steps(bool check_finite) {
  const Device d = Device::cuda(0);
  const auto opts = TensorOptions{}.with_device(d);
  set_rng_seed(17);
  ParamStore store;
  const Tensor x = randn({1024, 8}, opts);
  const Tensor y = sum(x, {-1});
  auto model = [&] {
    const Tensor w = sample("w", dist::Normal(zeros({8}, opts), 1.0).to_event(1));
    auto p = plate("data", 1024, {.device = d});
    sample("y", dist::Normal(matmul(x, w), 0.5), y);
  };
  auto guide = [&] {
    const Tensor loc = param("loc", zeros({8}, opts));
    const Tensor scale = param("scale", full({8}, 0.1, opts), constraints::positive);
    sample("w", dist::Normal(loc, scale).to_event(1));
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(),
          {.check_finite = check_finite, .param_store = &store});
  svi.step();
  synchronize(d);
  const profile::Counters before = profile::counters();
  for (int i = 0; i < 10; ++i) svi.step();
  return profile::counters() - before;
}

TEST(FiniteCheckCuda, ACheckedStepWaitsOnTheDeviceOnce) {
  EMBER_REQUIRE_CUDA();
  set_validation_enabled(false);
  const profile::Counters fast = ten_steps(false);
  const profile::Counters checked = ten_steps(true);
  set_validation_enabled(true);
  EXPECT_EQ(fast.host_syncs, 0u);
  EXPECT_EQ(checked.host_syncs, 10u);
  EXPECT_EQ(checked.kernel_launches, fast.kernel_launches + 10);
}

TEST(FiniteCheckCuda, ANonFiniteLossNamesTheSiteAsOnTheCpu) {
  EMBER_REQUIRE_CUDA();
  auto message = [](Device d) {
    const auto opts = TensorOptions{}.with_dtype(kFloat64).with_device(d);
    ParamStore store;
    auto model = [&] {
      const Tensor w = sample("w", dist::Normal(zeros({}, opts), 1.0));
      auto p = plate("data", 3, {.device = d});
      sample("obs", dist::Normal(w, tensor({1.0, 1e-200, 1.0}, opts)),
             tensor({0.0, 1e200, 0.0}, opts));
    };
    auto guide = [&] { sample("w", dist::Normal(param("m", zeros({}, opts)), 1.0)); };
    SVI svi(model, guide, optim::Adam({.lr = 0.1}), Trace_ELBO(), {.param_store = &store});
    try {
      svi.step();
    } catch (const NonFiniteError& e) {
      return e.site() + ": " + e.what();
    }
    return std::string("no NonFiniteError");
  };
  const std::string cpu = message(Device::cpu());
  EXPECT_NE(cpu.find("'obs' (model, Normal, batch shape (3)): value -inf at index [1]"),
            std::string::npos)
      << cpu;
  EXPECT_EQ(message(Device::cuda(0)), cpu);
}

}  // namespace
}  // namespace ember
