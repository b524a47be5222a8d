// Unit(log_factor): the distribution over the empty value (event shape (0)) whose
// log-density is log_factor, as Pyro's Unit; factor() observes it to add a term to a
// program's log-density.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Unit : public Distribution {
 public:
  // log_factor's shape is the batch shape; it may require grad.
  explicit Unit(const ParamArg& log_factor);
  Tensor log_factor() const;
};

}  // namespace ember::dist
