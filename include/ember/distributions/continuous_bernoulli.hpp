// ContinuousBernoulli(probs) or ContinuousBernoulli::from_logits(logits): a density on [0, 1]
// proportional to probs^x (1 - probs)^(1 - x) (Loaiza-Ganem & Cunningham 2019), the properly
// normalized likelihood for pixel intensities in a VAE. Reparameterized by its inverse CDF.
#pragma once

#include <memory>

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class ContinuousBernoulli : public Distribution {
 public:
  // probs must lie in [0, 1] (checked while validation is on); values at the ends are kept
  // a rounding step inside, so that the logits stay finite.
  explicit ContinuousBernoulli(const ParamArg& probs);
  // logits = log(probs / (1 - probs)), any real.
  static ContinuousBernoulli from_logits(const ParamArg& logits);
  Tensor probs() const;
  Tensor logits() const;

 private:
  explicit ContinuousBernoulli(std::shared_ptr<const DistributionImpl> impl)
      : Distribution(std::move(impl)) {}
};

}  // namespace ember::dist
