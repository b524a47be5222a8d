// The fused optimizer step on the CUDA backend against the CPU, its reference: every
// optimizer and variant over several steps in float32 and float64, a parameter spread over
// many blocks, and a step of hundreds of parameters of mixed sizes and dtypes (several slot
// tables, empty slots), within chain_tolerance.
#include <cstdint>
#include <ember/optim.hpp>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_harness.hpp"

namespace ember::test {
namespace {

using namespace ember::optim;

struct Config {
  std::string label;
  std::function<std::unique_ptr<Optimizer>()> make;
};

template <typename Opt, typename Options>
Config config(std::string label, Options o) {
  return {std::move(label), [o] { return std::make_unique<Opt>(o); }};
}

std::vector<Config> configs() {
  return {
      config<SGD>("SGD", SGDOptions{.lr = 0.05}),
      config<SGD>("SGD momentum, dampening, weight decay",
                  SGDOptions{.lr = 0.02, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.05}),
      config<SGD>("SGD nesterov",
                  SGDOptions{.lr = 0.02, .momentum = 0.9, .nesterov = true, .weight_decay = 0.1}),
      config<Adam>("Adam", AdamOptions{.lr = 0.05}),
      config<Adam>(
          "Adam betas, eps, weight decay",
          AdamOptions{.lr = 0.03, .betas = {0.8, 0.99}, .eps = 1e-3, .weight_decay = 0.05}),
      config<ClippedAdam>("ClippedAdam lrd, weight decay",
                          ClippedAdamOptions{.lr = 0.05,
                                             .betas = {0.85, 0.995},
                                             .eps = 1e-4,
                                             .weight_decay = 0.02,
                                             .clip_norm = 1.0,
                                             .lrd = 0.9}),
      config<Adagrad>("Adagrad", AdagradOptions{.lr = 0.1,
                                                .lr_decay = 0.05,
                                                .weight_decay = 0.01,
                                                .initial_accumulator_value = 0.5,
                                                .eps = 1e-6}),
      config<RMSprop>("RMSprop", RMSpropOptions{.lr = 0.01}),
      config<RMSprop>("RMSprop centered, momentum, weight decay",
                      RMSpropOptions{.lr = 0.005,
                                     .alpha = 0.9,
                                     .eps = 1e-6,
                                     .weight_decay = 0.01,
                                     .momentum = 0.5,
                                     .centered = true}),
  };
}

// One parameter of a run: its shape and dtype.
struct Spec {
  Shape shape;
  DType dtype;
};

// `steps` steps of a fresh optimizer on `device` over parameters made from a fixed seed; the
// loss at each step is sum(a * x^2 + w * x) with a fresh w (up to +-20) per step. Returns the
// parameters, on `device`.
std::vector<Tensor> run(const Config& c, Device device, const std::vector<Spec>& specs, int steps) {
  std::mt19937 gen(977);
  auto values = [&](const Shape& shape, double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    std::vector<double> v(static_cast<std::size_t>(shape.numel()));
    for (double& x : v) x = d(gen);
    return v;
  };
  std::vector<Tensor> params, curv;
  std::vector<NamedTensor> named;
  for (std::size_t k = 0; k < specs.size(); ++k) {
    const TensorOptions opts = TensorOptions{}.with_dtype(specs[k].dtype).with_device(device);
    params.push_back(from_vector(values(specs[k].shape, -2, 2), specs[k].shape, opts));
    params.back().requires_grad_();
    curv.push_back(from_vector(values(specs[k].shape, 0.1, 1), specs[k].shape, opts));
    named.push_back({"p" + std::to_string(k), params.back()});
  }
  const auto opt = c.make();
  for (int s = 0; s < steps; ++s) {
    for (std::size_t k = 0; k < specs.size(); ++k) {
      const TensorOptions opts = TensorOptions{}.with_dtype(specs[k].dtype).with_device(device);
      const Tensor w = from_vector(values(specs[k].shape, -20, 20), specs[k].shape, opts);
      const Tensor& x = params[k];
      x.zero_grad();
      sum(curv[k] * x * x + w * x).backward();
    }
    opt->step(named);
  }
  std::vector<Tensor> out;
  for (const Tensor& p : params) out.push_back(p.detach());
  return out;
}

void expect_device_matches_cpu(const Config& c, const std::vector<Spec>& specs, int steps) {
  SCOPED_TRACE(c.label);
  const std::vector<Tensor> on_device = run(c, target(), specs, steps);
  const std::vector<Tensor> on_cpu = run(c, Device::cpu(), specs, steps);
  for (std::size_t k = 0; k < specs.size(); ++k) {
    EXPECT_TRUE(agree(on_device[k], on_cpu[k], chain_tolerance(specs[k].dtype)))
        << "parameter p" << k << " of shape " << specs[k].shape;
  }
}

TEST(OptimCuda, EveryOptimizerMatchesTheCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dtype));
    // 70000 elements: a slot spread over many blocks.
    const std::vector<Spec> specs = {{{7}, dtype}, {{3, 4}, dtype}, {{70000}, dtype}};
    for (const Config& c : configs()) expect_device_matches_cpu(c, specs, 6);
  }
}

TEST(OptimCuda, HundredsOfParametersOfMixedSizesAndDtypes) {
  EMBER_REQUIRE_CUDA();
  // 600 parameters, half of each dtype: two groups of 300 slots, each past one 256-slot
  // table; sizes from empty to a few thousand elements.
  std::vector<Spec> specs;
  for (int k = 0; k < 600; ++k) {
    specs.push_back({{static_cast<std::int64_t>((k * 37) % 3001)}, k % 2 ? kFloat32 : kFloat64});
  }
  for (const Config& c : configs()) expect_device_matches_cpu(c, specs, 2);
}

TEST(OptimCuda, FewParametersUseTheSmallTable) {
  EMBER_REQUIRE_CUDA();
  std::vector<Spec> specs;
  for (int k = 0; k < 16; ++k)
    specs.push_back({{static_cast<std::int64_t>(1 + 500 * k)}, kFloat32});
  for (const Config& c : configs()) expect_device_matches_cpu(c, specs, 3);
}

}  // namespace
}  // namespace ember::test
