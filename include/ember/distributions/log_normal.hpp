// LogNormal(loc, scale): exp of a Normal(loc, scale), reparameterized as exp(loc + scale * eps).
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class LogNormal : public Distribution {
 public:
  // loc and scale are the mean and standard deviation of log(x); scale must be positive
  // (checked while validation is on).
  LogNormal(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

}  // namespace ember::dist
