// HalfCauchy(scale): |x| for x ~ Cauchy(0, scale), reparameterized as scale * |eps|. Its mean
// and variance are infinite.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class HalfCauchy : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  explicit HalfCauchy(const ParamArg& scale);
  Tensor scale() const;
};

}  // namespace ember::dist
