// Laplace(loc, scale): the double exponential, reparameterized by its inverse CDF.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Laplace : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  Laplace(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

}  // namespace ember::dist
