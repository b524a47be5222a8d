// Binomial(total_count, probs) or Binomial::from_logits(total_count, logits): the number of
// successes in total_count independent trials.
#pragma once

#include <memory>

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Binomial : public Distribution {
 public:
  // total_count must be a nonnegative integer and probs lie in [0, 1] (checked while
  // validation is on).
  Binomial(const ParamArg& total_count, const ParamArg& probs);
  // logits = log(probs / (1 - probs)), any real.
  static Binomial from_logits(const ParamArg& total_count, const ParamArg& logits);
  Tensor total_count() const;
  // Both are available whichever was given; the other is computed on each call.
  Tensor probs() const;
  Tensor logits() const;

 private:
  explicit Binomial(std::shared_ptr<const DistributionImpl> impl) : Distribution(std::move(impl)) {}
};

}  // namespace ember::dist
