// The discrete families (kernels/math/distributions/discrete.hpp): drawn without gradients
// (sample); Bernoulli, Binomial and Categorical enumerate their support.
#pragma once

#include <cstdint>
#include <memory>

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

// Bernoulli(probs) or Bernoulli::from_logits(logits): a draw is 1 with probability probs, else 0.
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

// Binomial(total_count, probs) or Binomial::from_logits(total_count, logits): the number of
// successes in total_count independent trials.
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

// Poisson(rate): counts 0, 1, 2, ... with mean rate.
class Poisson : public Distribution {
 public:
  // rate must be nonnegative (checked while validation is on); rate 0 always draws 0.
  explicit Poisson(const ParamArg& rate);
  Tensor rate() const;
};

// Geometric(probs) or Geometric::from_logits(logits): the number of failures before the
// first success in trials that succeed with probability probs (support 0, 1, 2, ...).
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

// Categorical(probs) or Categorical::from_logits(logits) over the last dim: values are the
// category indices 0..K-1 (int64 draws, as in PyTorch); batch_shape = probs.shape[:-1].
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
