// Exponential: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/exponential.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class ExponentialImpl final : public DistributionImpl {
 public:
  ExponentialImpl(Tensor rate, const Shape& batch)
      : DistributionImpl(batch, {}, rate.dtype(), rate.device()), rate_(std::move(rate)) {}

  std::string name() const override { return "Exponential"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor u = detail::draw(kernels::SampleOp::Uniform, extended_shape(sample_shape), dtype_,
                                  device_, {}, gen);
    return -log(u) / rate_;
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Exponential, value, {rate_});
  }
  Tensor mean() const override { return reciprocal(rate_).expand(batch_shape_); }
  Tensor variance() const override { return reciprocal(square(rate_)).expand(batch_shape_); }
  Tensor entropy() const override { return (1.0 - log(rate_)).expand(batch_shape_); }
  constraints::Constraint support() const override { return constraints::nonnegative; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<ExponentialImpl>(rate_.expand(batch), batch);
  }

  const Tensor& rate() const { return rate_; }

 private:
  Tensor rate_;
};

Exponential::Exponential(const ParamArg& rate) {
  auto p = detail::make_params("Exponential", {{"rate", rate}});
  detail::validate_param("Exponential", "rate", p.tensors[0], constraints::positive);
  impl_ = std::make_shared<ExponentialImpl>(p.tensors[0], p.batch_shape);
}

Tensor Exponential::rate() const { return as<ExponentialImpl>()->rate(); }

}  // namespace ember::dist
