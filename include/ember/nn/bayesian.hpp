// Networks with random weights (Pyro's random_module and PyroSample): sample_parameters draws
// every parameter of a network at a sample site, and functional_call runs the network with
// those draws in place of its own parameters, leaving the network as it was. The same two
// calls serve the model (a prior per parameter) and the guide (a distribution of params):
//
//   auto w = nn::sample_parameters("bnn", net, [](const std::string&, const Tensor& p) {
//     return dist::Normal(0.0, 1.0);                      // the prior, expanded to p's shape
//   });
//   const Tensor mean = nn::functional_call(net, w, x);
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ember/distributions/distribution.hpp"
#include "ember/nn/module.hpp"

namespace ember::nn {

// Replaces the parameters of `net` named in `params` (dotted paths, as named_parameters) for
// the scope's lifetime and puts the originals back when it ends, also on an exception. An
// unknown path is a ValueError, a shape that differs a ShapeError. The module must not be
// used from another thread meanwhile (as torch.func.functional_call).
class ParameterScope {
 public:
  ParameterScope(Module& net, const StateDict& params);
  ~ParameterScope();
  ParameterScope(const ParameterScope&) = delete;
  ParameterScope& operator=(const ParameterScope&) = delete;

 private:
  std::vector<std::pair<Tensor*, Tensor>> saved_;  // slot, original value
};

// net(args...) with `params` in place of its parameters: a Tensor for a single-tensor
// module, whatever its operator() returns for a multi-output one.
template <typename M, typename... Args>
decltype(auto) functional_call(M& net, const StateDict& params, Args&&... args) {
  const ParameterScope scope(net, params);
  return net(std::forward<Args>(args)...);
}

// The distribution of the parameter at `path`, given its current value (for its shape,
// dtype and device). A distribution of a smaller batch shape is expanded to the value's
// shape; the value's dims become one event.
using ParameterPrior =
    std::function<dist::Distribution(const std::string& path, const Tensor& value)>;

// Samples every parameter of `net` at a site "<name>$$$<path>" (the names module() gives
// params, so lift and sample_parameters name sites alike) and returns the draws by path, for
// functional_call. The network itself is not changed.
StateDict sample_parameters(const std::string& name, Module& net, const ParameterPrior& prior);

}  // namespace ember::nn
