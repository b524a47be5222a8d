// Activation, Sequential and the MLP builder.
#include <string>

#include "ember/error.hpp"
#include "ember/nn/layers.hpp"

namespace ember::nn {

Activation::Activation(TensorFn fn) : fn_(std::move(fn)) {
  EMBER_CHECK(static_cast<bool>(fn_), "Activation: the function is empty");
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& [name, layer] : children()) x = layer->forward(x);
  return x;
}

MLP::MLP(const std::vector<std::int64_t>& sizes, const MLPOptions& opts) {
  EMBER_CHECK(sizes.size() >= 2, "MLP: needs at least an input and an output size, got ",
              sizes.size(), " size(s)");
  EMBER_CHECK(static_cast<bool>(opts.activation) || sizes.size() == 2,
              "MLP: hidden layers need an activation");
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    push_back(Linear(sizes[i], sizes[i + 1], opts.bias, opts.tensor_options, opts.gen));
    const bool last = i + 2 == sizes.size();
    if (!last) push_back(Activation(opts.activation));
    if (last && opts.output_activation) push_back(Activation(opts.output_activation));
  }
}

}  // namespace ember::nn
