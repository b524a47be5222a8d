// Gamma: fused log-density (kernels/math/distributions/gamma.hpp) and implicitly reparameterized
// draws Gamma(a, 1) / rate.
#include "ember/distributions/gamma.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class GammaImpl final : public DistributionImpl {
 public:
  GammaImpl(Tensor concentration, Tensor rate, const Shape& batch)
      : DistributionImpl(batch, {}, concentration.dtype(), concentration.device()),
        concentration_(std::move(concentration)),
        rate_(std::move(rate)) {}

  std::string name() const override { return "Gamma"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return detail::standard_gamma(concentration_, extended_shape(sample_shape), gen) / rate_;
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Gamma, value, {concentration_, rate_});
  }
  Tensor mean() const override { return (concentration_ / rate_).expand(batch_shape_); }
  Tensor variance() const override { return (concentration_ / square(rate_)).expand(batch_shape_); }
  Tensor entropy() const override {
    const Tensor& a = concentration_;
    return (a - log(rate_) + lgamma(a) + (1.0 - a) * digamma(a)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::positive; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<GammaImpl>(concentration_.expand(batch), rate_.expand(batch), batch);
  }

  const Tensor& concentration() const { return concentration_; }
  const Tensor& rate() const { return rate_; }

 private:
  Tensor concentration_, rate_;
};

Gamma::Gamma(const ParamArg& concentration, const ParamArg& rate) {
  auto p = detail::make_params("Gamma", {{"concentration", concentration}, {"rate", rate}});
  detail::validate_param("Gamma", "concentration", p.tensors[0], constraints::positive);
  detail::validate_param("Gamma", "rate", p.tensors[1], constraints::positive);
  impl_ = std::make_shared<GammaImpl>(p.tensors[0], p.tensors[1], p.batch_shape);
}

Tensor Gamma::concentration() const { return as<GammaImpl>()->concentration(); }
Tensor Gamma::rate() const { return as<GammaImpl>()->rate(); }

}  // namespace ember::dist
