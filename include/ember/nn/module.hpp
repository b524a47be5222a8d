// Neural network modules: a Module owns named parameter tensors (and sub-modules) and maps
// an input to an output. module(name, m) registers a module's parameters with the param
// store, so a model or guide can contain networks that SVI trains.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::nn {

class Module {
 public:
  virtual ~Module() = default;

  virtual Tensor forward(const Tensor& input) = 0;
  Tensor operator()(const Tensor& input) { return forward(input); }

  // Every parameter, depth first: own ones by name, sub-modules' as "<sub>.<name>".
  std::vector<std::pair<std::string, Tensor*>> named_parameters();
  // Moves (copies) every parameter to `device`, keeping them leaves that require grad.
  void to(Device device);

 protected:
  // Registers a parameter (made a leaf that requires grad) and returns a reference to it.
  Tensor& register_parameter(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  std::deque<std::pair<std::string, Tensor>> params_;  // a deque: references stay valid
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// y = x W^T + b for x of shape (..., in_features), as torch.nn.Linear; W and b start
// uniform in (-1/sqrt(in_features), 1/sqrt(in_features)).
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true,
         const TensorOptions& opts = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& input) override;
  const Tensor& weight() const { return *weight_; }
  const Tensor* bias() const { return bias_; }

 private:
  Tensor* weight_;
  Tensor* bias_ = nullptr;
};

}  // namespace ember::nn
