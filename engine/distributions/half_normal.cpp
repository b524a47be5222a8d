// HalfNormal: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/half_normal.hpp"

#include <cmath>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class HalfNormalImpl final : public DistributionImpl {
 public:
  HalfNormalImpl(Tensor scale, const Shape& batch)
      : DistributionImpl(batch, {}, scale.dtype(), scale.device()), scale_(std::move(scale)) {}

  std::string name() const override { return "HalfNormal"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor eps = detail::draw(kernels::SampleOp::Normal, extended_shape(sample_shape), dtype_,
                                    device_, {}, gen);
    return scale_ * abs(eps);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::HalfNormal, value, {scale_});
  }
  Tensor mean() const override { return (scale_ * std::sqrt(2.0 / M_PI)).expand(batch_shape_); }
  Tensor variance() const override {
    return (square(scale_) * (1.0 - 2.0 / M_PI)).expand(batch_shape_);
  }
  Tensor entropy() const override {
    return (log(scale_) + 0.5 + 0.5 * std::log(0.5 * M_PI)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::nonnegative; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<HalfNormalImpl>(scale_.expand(batch), batch);
  }

  const Tensor& scale() const { return scale_; }

 private:
  Tensor scale_;
};

HalfNormal::HalfNormal(const ParamArg& scale) {
  auto p = detail::make_params("HalfNormal", {{"scale", scale}});
  detail::validate_param("HalfNormal", "scale", p.tensors[0], constraints::positive);
  impl_ = std::make_shared<HalfNormalImpl>(p.tensors[0], p.batch_shape);
}

Tensor HalfNormal::scale() const { return as<HalfNormalImpl>()->scale(); }

}  // namespace ember::dist
