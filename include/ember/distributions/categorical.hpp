// Categorical(probs) or Categorical::from_logits(logits) over the last dim: values are the
// category indices 0..K-1 (int64 draws, as in PyTorch); batch_shape = probs.shape[:-1].
#pragma once

#include <cstdint>
#include <memory>

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class Categorical : public Distribution {
 public:
  // probs must be a simplex over the last dim (checked while validation is on); they are
  // normalized again, so rounding in their sum does not matter.
  explicit Categorical(const ParamArg& probs);
  // Unnormalized log-probabilities over the last dim.
  static Categorical from_logits(const ParamArg& logits);
  // Both are available whichever was given, normalized (probs sum to 1, logits have
  // logsumexp 0 over the last dim) and computed on each call.
  Tensor probs() const;
  Tensor logits() const;
  std::int64_t num_categories() const;

 private:
  explicit Categorical(std::shared_ptr<const DistributionImpl> impl)
      : Distribution(std::move(impl)) {}
};

}  // namespace ember::dist
