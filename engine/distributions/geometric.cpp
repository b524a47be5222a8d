// Geometric: fused log-pmf in probs or logits and the inverse-CDF sampler
// (kernels/math/distributions/discrete.hpp).
#include "ember/distributions/geometric.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class GeometricImpl final : public DistributionImpl {
 public:
  // `param` is probs, or logits when is_logits.
  GeometricImpl(Tensor param, bool is_logits, const Shape& batch)
      : DistributionImpl(batch, {}, param.dtype(), param.device()),
        param_(std::move(param)),
        is_logits_(is_logits) {}

  std::string name() const override { return "Geometric"; }
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    return detail::draw(kernels::SampleOp::Geometric, extended_shape(sample_shape), dtype_, device_,
                        {probs()}, gen);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(
        is_logits_ ? kernels::LogProbFamily::GeometricLogits : kernels::LogProbFamily::Geometric,
        value, {param_});
  }
  // (1 - p) / p, which is exp(-logits).
  Tensor mean() const override {
    return (is_logits_ ? exp(-param_) : (1.0 - param_) / param_).expand(batch_shape_);
  }
  // (1 - p) / p^2.
  Tensor variance() const override {
    if (is_logits_) return (exp(-param_) / sigmoid(param_)).expand(batch_shape_);
    return ((1.0 - param_) / square(param_)).expand(batch_shape_);
  }
  // -(p log p + (1 - p) log(1 - p)) / p.
  Tensor entropy() const override {
    const Tensor p = probs();
    if (is_logits_) {
      return (-(p * log_sigmoid(param_) + (1.0 - p) * log_sigmoid(-param_)) / p)
          .expand(batch_shape_);
    }
    return (-(detail::xlogx(p) + detail::xlogx(1.0 - p)) / p).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::nonnegative_integer; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<GeometricImpl>(param_.expand(batch), is_logits_, batch);
  }

  Tensor probs() const { return detail::probs_of(param_, is_logits_); }
  Tensor logits() const { return detail::logits_of(param_, is_logits_); }

 private:
  Tensor param_;
  bool is_logits_;
};

Geometric::Geometric(const ParamArg& probs) {
  auto p = detail::make_params("Geometric", {{"probs", probs}});
  detail::validate_param("Geometric", "probs", p.tensors[0], constraints::unit_interval);
  // p = 0 never succeeds: no distribution over the counts.
  detail::validate_param("Geometric", "probs", p.tensors[0], constraints::positive);
  impl_ = std::make_shared<GeometricImpl>(p.tensors[0], false, p.batch_shape);
}

Geometric Geometric::from_logits(const ParamArg& logits) {
  auto p = detail::make_params("Geometric", {{"logits", logits}});
  detail::validate_param("Geometric", "logits", p.tensors[0], constraints::real);
  return Geometric(std::make_shared<GeometricImpl>(p.tensors[0], true, p.batch_shape));
}

Tensor Geometric::probs() const { return as<GeometricImpl>()->probs(); }
Tensor Geometric::logits() const { return as<GeometricImpl>()->logits(); }

}  // namespace ember::dist
