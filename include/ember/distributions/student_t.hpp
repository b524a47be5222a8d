// StudentT(df, loc, scale): loc + scale * T, T Student's t with df degrees of freedom,
// reparameterized as Z * rsqrt(V / df) with V = 2 * Gamma(df / 2, 1), so df gets gradients.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class StudentT : public Distribution {
 public:
  // df and scale must be positive (checked while validation is on).
  StudentT(const ParamArg& df, const ParamArg& loc = 0.0, const ParamArg& scale = 1.0);
  Tensor df() const;
  Tensor loc() const;
  Tensor scale() const;
};

}  // namespace ember::dist
