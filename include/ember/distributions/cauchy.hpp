// Cauchy(loc, scale): the Lorentzian, reparameterized as loc + scale * eps, eps a standard
// Cauchy draw. It has no mean or variance: mean() and variance() throw ValueError.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Cauchy : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  Cauchy(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

}  // namespace ember::dist
