// Poisson(rate): counts 0, 1, 2, ... with mean rate.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Poisson : public Distribution {
 public:
  // rate must be nonnegative (checked while validation is on); rate 0 always draws 0.
  explicit Poisson(const ParamArg& rate);
  Tensor rate() const;
};

}  // namespace ember::dist
