// Delta(v, log_density, event_dim): the point mass at v, as Pyro's Delta. The rightmost
// event_dim dims of v form one event; log_density is added to log_prob (for a density
// carried by a deterministic site).
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Delta : public Distribution {
 public:
  // event_dim must lie in [0, v.dim()]; log_density must broadcast to the batch shape
  // v.shape[:v.dim() - event_dim].
  explicit Delta(const ParamArg& v, const ParamArg& log_density = 0.0, int event_dim = 0);
  Tensor v() const;
  Tensor log_density() const;
};

}  // namespace ember::dist
