// Normal(loc, scale): the Gaussian, reparameterized as loc + scale * eps.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Normal : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  Normal(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

}  // namespace ember::dist
