// The Module base and Linear.
#include "ember/nn/module.hpp"

#include <cmath>

#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::nn {

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& [name, value] : params_) out.emplace_back(name, &value);
  for (auto& [prefix, child] : children_) {
    for (auto& [name, ptr] : child->named_parameters()) out.emplace_back(prefix + "." + name, ptr);
  }
  return out;
}

void Module::to(Device device) {
  for (auto& [name, ptr] : named_parameters()) {
    if (ptr->device() == device) continue;
    Tensor moved = ptr->detach().to(device);
    moved.requires_grad_();
    *ptr = moved;
  }
}

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  EMBER_CHECK(value.defined(), "Module::register_parameter: '", name, "' is undefined");
  for (const auto& [existing, v] : params_) {
    EMBER_CHECK(existing != name, "Module::register_parameter: '", name, "' is registered already");
  }
  Tensor leaf = value.detach();
  leaf.requires_grad_();
  params_.emplace_back(name, leaf);
  return params_.back().second;
}

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias,
               const TensorOptions& opts, Generator* gen) {
  EMBER_CHECK(in_features > 0 && out_features > 0,
              "Linear: in_features and out_features must be positive, got ", in_features, " and ",
              out_features);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  const TensorOptions o = TensorOptions{opts}.with_requires_grad(false);
  auto init = [&](const Shape& shape) { return rand(shape, o, gen) * (2.0 * bound) - bound; };
  weight_ = &register_parameter("weight", init({out_features, in_features}));
  if (bias) bias_ = &register_parameter("bias", init({out_features}));
}

Tensor Linear::forward(const Tensor& input) {
  EMBER_CHECK_SHAPE(input.dim() >= 1 && input.size(-1) == weight_->size(1),
                    "Linear: input of shape ", input.shape(),
                    " does not end in in_features = ", weight_->size(1));
  Tensor y = matmul(input, weight_->t());
  return bias_ != nullptr ? y + *bias_ : y;
}

}  // namespace ember::nn
