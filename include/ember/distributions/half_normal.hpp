// HalfNormal(scale): |x| for x ~ Normal(0, scale), reparameterized as scale * |eps|.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class HalfNormal : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  explicit HalfNormal(const ParamArg& scale);
  Tensor scale() const;
};

}  // namespace ember::dist
