// Helpers of the nn tests: a gradient check of a module in its input and every parameter
// (through functional_call, so the module's own parameters are left alone).
#pragma once

#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember::test {

// grad_check of net(input) in the input (when floating) and in each parameter.
inline ::testing::AssertionResult module_grad_check(nn::Module& net, const Tensor& input,
                                                    GradCheckOptions opt = {}) {
  std::vector<std::string> paths;
  std::vector<Tensor> inputs{input.detach()};
  if (is_floating(input.dtype())) inputs[0].requires_grad_();
  for (auto& [path, ptr] : net.named_parameters()) {
    paths.push_back(path);
    inputs.push_back(ptr->detach().clone().requires_grad_());
  }
  const auto f = [&](const std::vector<Tensor>& in) {
    nn::StateDict params;
    for (std::size_t k = 0; k < paths.size(); ++k) params.emplace(paths[k], in[k + 1]);
    return nn::functional_call(net, params, in[0]);
  };
  return grad_check(f, inputs, opt);
}

#define EMBER_EXPECT_MODULE_GRAD(net, ...) \
  EXPECT_TRUE(::ember::test::module_grad_check(net, __VA_ARGS__))

}  // namespace ember::test

namespace ember::test {

// torch's
//   fc1 = Linear(3, 4); bn = BatchNorm1d(4); fc2 = Linear(4, 2)
//   forward(x) = fc2(relu(bn(fc1(x))))
// the network of tools/reference/make_nn_state.py.
class RefNet : public nn::Module {
 public:
  explicit RefNet(const TensorOptions& opts = {}, Generator* gen = nullptr)
      : fc1_(register_module("fc1", std::make_shared<nn::Linear>(3, 4, true, opts, gen))),
        bn_(register_module("bn",
                            std::make_shared<nn::BatchNorm1d>(4, nn::BatchNormOptions{}, opts))),
        fc2_(register_module("fc2", std::make_shared<nn::Linear>(4, 2, true, opts, gen))) {}
  Tensor forward(const Tensor& x) override { return (*fc2_)(relu((*bn_)((*fc1_)(x)))); }
  nn::BatchNorm1d& bn() { return *bn_; }

 private:
  std::shared_ptr<nn::Linear> fc1_;
  std::shared_ptr<nn::BatchNorm1d> bn_;
  std::shared_ptr<nn::Linear> fc2_;
};

// The committed reference files (tools/reference/make_nn_state.py).
inline std::string reference_file(const std::string& name) {
  return std::string(EMBER_TEST_DIR) + "/../tools/reference/" + name;
}

}  // namespace ember::test
