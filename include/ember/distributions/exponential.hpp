// Exponential(rate): waiting times of rate `rate`, reparameterized as -log(u) / rate.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Exponential : public Distribution {
 public:
  // rate must be positive (checked while validation is on).
  explicit Exponential(const ParamArg& rate);
  Tensor rate() const;
};

}  // namespace ember::dist
