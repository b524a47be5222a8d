// Beta(concentration1, concentration0) on [0, 1]: X / (X + Y) for independent
// X ~ Gamma(concentration1, 1), Y ~ Gamma(concentration0, 1).
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Beta : public Distribution {
 public:
  // Both concentrations must be positive (checked while validation is on).
  Beta(const ParamArg& concentration1, const ParamArg& concentration0);
  Tensor concentration1() const;
  Tensor concentration0() const;
};

}  // namespace ember::dist
