// Gamma(concentration, rate): density rate^a x^(a-1) e^(-rate x) / Gamma(a) on x > 0,
// reparameterized through implicit gradients of its Gamma(a, 1) draws.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Gamma : public Distribution {
 public:
  // concentration and rate must be positive (checked while validation is on).
  Gamma(const ParamArg& concentration, const ParamArg& rate);
  Tensor concentration() const;
  Tensor rate() const;
};

}  // namespace ember::dist
