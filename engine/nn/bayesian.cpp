// ParameterScope (functional_call) and sample_parameters.
#include "ember/nn/bayesian.hpp"

#include "ember/error.hpp"
#include "ember/primitives.hpp"

namespace ember::nn {

ParameterScope::ParameterScope(Module& net, const StateDict& params) {
  auto slots = net.named_parameters();
  // Everything is checked before anything is swapped in.
  std::vector<std::pair<Tensor*, Tensor>> swaps;
  for (const auto& [path, value] : params) {
    Tensor* slot = nullptr;
    for (auto& [name, ptr] : slots)
      if (name == path) slot = ptr;
    EMBER_CHECK(slot != nullptr, "functional_call: the module has no parameter '", path, "'");
    EMBER_CHECK_SHAPE(value.defined() && value.shape() == slot->shape(),
                      "functional_call: parameter '", path, "' has shape ", slot->shape(),
                      " but the given tensor's is ",
                      value.defined() ? value.shape().str() : std::string("undefined"));
    swaps.emplace_back(slot, value);
  }
  for (auto& [slot, value] : swaps) {
    saved_.emplace_back(slot, *slot);
    *slot = value;
  }
}

ParameterScope::~ParameterScope() {
  for (auto& [slot, original] : saved_) *slot = original;
}

StateDict sample_parameters(const std::string& name, Module& net, const ParameterPrior& prior) {
  EMBER_CHECK(static_cast<bool>(prior), "sample_parameters '", name, "': the prior is empty");
  StateDict draws;
  for (auto& [path, ptr] : net.named_parameters()) {
    const std::string site = name + "$$$" + path;
    dist::Distribution d = prior(path, *ptr);
    EMBER_CHECK(d.defined(), "sample_parameters: the prior of site '", site, "' is undefined");
    const Shape& shape = ptr->shape();
    if (d.event_shape().size() == 0) {
      if (!(d.batch_shape() == shape)) d = d.expand(shape);
      if (shape.size() > 0) d = d.to_event(shape.size());
    }
    EMBER_CHECK_SHAPE(d.shape() == shape, "sample_parameters: site '", site, "' draws shape ",
                      d.shape(), " for a parameter of shape ", shape);
    draws.emplace(path, sample(site, d));
  }
  return draws;
}

}  // namespace ember::nn
