// HalfCauchy: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/half_cauchy.hpp"

#include <cmath>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class HalfCauchyImpl final : public DistributionImpl {
 public:
  HalfCauchyImpl(Tensor scale, const Shape& batch)
      : DistributionImpl(batch, {}, scale.dtype(), scale.device()), scale_(std::move(scale)) {}

  std::string name() const override { return "HalfCauchy"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    // |standard Cauchy| as the ratio of two |standard normals| (see Cauchy).
    const Shape shape = extended_shape(sample_shape);
    const Tensor num = detail::draw(kernels::SampleOp::Normal, shape, dtype_, device_, {}, gen);
    const Tensor den = detail::draw(kernels::SampleOp::Normal, shape, dtype_, device_, {}, gen);
    return scale_ * abs(num / den);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::HalfCauchy, value, {scale_});
  }
  // The integrals diverge to +inf (as in Pyro).
  Tensor mean() const override { return full_like(scale_, INFINITY).expand(batch_shape_); }
  Tensor variance() const override { return full_like(scale_, INFINITY).expand(batch_shape_); }
  Tensor entropy() const override {
    return (log(scale_) + std::log(2.0 * M_PI)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::nonnegative; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<HalfCauchyImpl>(scale_.expand(batch), batch);
  }

  const Tensor& scale() const { return scale_; }

 private:
  Tensor scale_;
};

HalfCauchy::HalfCauchy(const ParamArg& scale) {
  auto p = detail::make_params("HalfCauchy", {{"scale", scale}});
  detail::validate_param("HalfCauchy", "scale", p.tensors[0], constraints::positive);
  impl_ = std::make_shared<HalfCauchyImpl>(p.tensors[0], p.batch_shape);
}

Tensor HalfCauchy::scale() const { return as<HalfCauchyImpl>()->scale(); }

}  // namespace ember::dist
