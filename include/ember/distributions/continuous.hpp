// The continuous families whose math is in kernels/math/distributions/continuous.hpp: each
// scored by one fused log-density kernel and reparameterized (rsample).
#pragma once

#include <memory>

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

// Normal(loc, scale): the Gaussian, reparameterized as loc + scale * eps.
class Normal : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  Normal(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

// LogNormal(loc, scale): exp of a Normal(loc, scale), reparameterized as exp(loc + scale * eps).
class LogNormal : public Distribution {
 public:
  // loc and scale are the mean and standard deviation of log(x); scale must be positive
  // (checked while validation is on).
  LogNormal(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

// HalfNormal(scale): |x| for x ~ Normal(0, scale), reparameterized as scale * |eps|.
class HalfNormal : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  explicit HalfNormal(const ParamArg& scale);
  Tensor scale() const;
};

// Cauchy(loc, scale): the Lorentzian, reparameterized as loc + scale * eps, eps a standard
// Cauchy draw. It has no mean or variance: mean() and variance() throw ValueError.
class Cauchy : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  Cauchy(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

// HalfCauchy(scale): |x| for x ~ Cauchy(0, scale), reparameterized as scale * |eps|. Its mean
// and variance are infinite.
class HalfCauchy : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  explicit HalfCauchy(const ParamArg& scale);
  Tensor scale() const;
};

// Laplace(loc, scale): the double exponential, reparameterized by its inverse CDF.
class Laplace : public Distribution {
 public:
  // scale must be positive (checked while validation is on).
  Laplace(const ParamArg& loc, const ParamArg& scale);
  Tensor loc() const;
  Tensor scale() const;
};

// Uniform(low, high): constant density on [low, high], reparameterized as low + (high - low) u.
class Uniform : public Distribution {
 public:
  // low < high elementwise (checked while validation is on).
  Uniform(const ParamArg& low, const ParamArg& high);
  Tensor low() const;
  Tensor high() const;
};

// Exponential(rate): waiting times of rate `rate`, reparameterized as -log(u) / rate.
class Exponential : public Distribution {
 public:
  // rate must be positive (checked while validation is on).
  explicit Exponential(const ParamArg& rate);
  Tensor rate() const;
};

// ContinuousBernoulli(probs) or ContinuousBernoulli::from_logits(logits): a density on [0, 1]
// proportional to probs^x (1 - probs)^(1 - x) (Loaiza-Ganem & Cunningham 2019), the properly
// normalized likelihood for pixel intensities in a VAE. Reparameterized by its inverse CDF.
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
