// Geometric(probs) or Geometric::from_logits(logits): the number of failures before the
// first success in trials that succeed with probability probs (support 0, 1, 2, ...).
#pragma once

#include <memory>

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Geometric : public Distribution {
 public:
  // probs must lie in (0, 1] (checked while validation is on).
  explicit Geometric(const ParamArg& probs);
  // logits = log(probs / (1 - probs)), any real.
  static Geometric from_logits(const ParamArg& logits);
  // Both are available whichever was given; the other is computed on each call.
  Tensor probs() const;
  Tensor logits() const;

 private:
  explicit Geometric(std::shared_ptr<const DistributionImpl> impl)
      : Distribution(std::move(impl)) {}
};

}  // namespace ember::dist
