// Bernoulli(probs) or Bernoulli::from_logits(logits): a draw is 1 with probability probs, else 0.
#pragma once

#include <memory>

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Bernoulli : public Distribution {
 public:
  // probs must lie in [0, 1] (checked while validation is on).
  explicit Bernoulli(const ParamArg& probs);
  // logits = log(probs / (1 - probs)), any real.
  static Bernoulli from_logits(const ParamArg& logits);
  // Both are available whichever was given; the other is computed on each call.
  Tensor probs() const;
  Tensor logits() const;

 private:
  explicit Bernoulli(std::shared_ptr<const DistributionImpl> impl)
      : Distribution(std::move(impl)) {}
};

}  // namespace ember::dist
