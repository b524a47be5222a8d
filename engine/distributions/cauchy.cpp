// Cauchy: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/cauchy.hpp"

#include <cmath>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class CauchyImpl final : public DistributionImpl {
 public:
  CauchyImpl(Tensor loc, Tensor scale, const Shape& batch)
      : DistributionImpl(batch, {}, loc.dtype(), loc.device()),
        loc_(std::move(loc)),
        scale_(std::move(scale)) {}

  std::string name() const override { return "Cauchy"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    // A standard Cauchy draw as the ratio of two independent standard normals (the kernels
    // have no tan; the ratio has exactly the standard Cauchy law).
    const Shape shape = extended_shape(sample_shape);
    const Tensor num = detail::draw(kernels::SampleOp::Normal, shape, dtype_, device_, {}, gen);
    const Tensor den = detail::draw(kernels::SampleOp::Normal, shape, dtype_, device_, {}, gen);
    return loc_ + scale_ * (num / den);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Cauchy, value, {loc_, scale_});
  }
  Tensor mean() const override { not_available("mean (the Cauchy mean is undefined)"); }
  Tensor variance() const override { not_available("variance (the Cauchy variance is undefined)"); }
  Tensor entropy() const override {
    return (log(scale_) + std::log(4.0 * M_PI)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::real; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<CauchyImpl>(loc_.expand(batch), scale_.expand(batch), batch);
  }

  const Tensor& loc() const { return loc_; }
  const Tensor& scale() const { return scale_; }

 private:
  Tensor loc_, scale_;
};

Cauchy::Cauchy(const ParamArg& loc, const ParamArg& scale) {
  auto p = detail::make_params("Cauchy", {{"loc", loc}, {"scale", scale}});
  detail::validate_param("Cauchy", "scale", p.tensors[1], constraints::positive);
  impl_ = std::make_shared<CauchyImpl>(p.tensors[0], p.tensors[1], p.batch_shape);
}

Tensor Cauchy::loc() const { return as<CauchyImpl>()->loc(); }
Tensor Cauchy::scale() const { return as<CauchyImpl>()->scale(); }

}  // namespace ember::dist
