// TransformedDistribution(base, transforms): the law of t_n(...t_1(x)) for x ~ base, as in
// Pyro. log_prob inverts the transforms and subtracts each log|det J|; draws push base draws
// forward (reparameterized when the base is).
#pragma once

#include <vector>

#include "ember/distributions/distribution.hpp"
#include "ember/transforms.hpp"

namespace ember::dist {

class TransformedDistribution : public Distribution {
 public:
  // transforms are applied in order. When they act on more rightmost dims than base's event
  // dims, base's batch dims are reinterpreted as event dims (as with to_event); the event
  // shape is the largest of the two, carried through the transforms' shape changes.
  TransformedDistribution(const Distribution& base, std::vector<transforms::Transform> transforms);
  // The base as used (after any expansion and reinterpretation of batch dims).
  Distribution base_dist() const;
  const std::vector<transforms::Transform>& transforms() const;
};

}  // namespace ember::dist
