// Dirichlet(concentration) over the simplex of the last dim (event dim 1): independent
// Gamma(concentration_k, 1) draws normalized to sum 1.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Dirichlet : public Distribution {
 public:
  // concentration has at least one dim (the last is the event dim, of size >= 1) and is
  // positive (checked while validation is on).
  explicit Dirichlet(const ParamArg& concentration);
  Tensor concentration() const;
};

}  // namespace ember::dist
