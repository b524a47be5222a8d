// Uniform(low, high): constant density on [low, high], reparameterized as low + (high - low) u.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Uniform : public Distribution {
 public:
  // low < high elementwise (checked while validation is on).
  Uniform(const ParamArg& low, const ParamArg& high);
  Tensor low() const;
  Tensor high() const;
};

}  // namespace ember::dist
