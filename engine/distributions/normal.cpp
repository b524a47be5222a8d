// Normal: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/normal.hpp"

#include <cmath>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class NormalImpl final : public DistributionImpl {
 public:
  NormalImpl(Tensor loc, Tensor scale, const Shape& batch)
      : DistributionImpl(batch, {}, loc.dtype(), loc.device()),
        loc_(std::move(loc)),
        scale_(std::move(scale)) {}

  std::string name() const override { return "Normal"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor eps = detail::draw(kernels::SampleOp::Normal, extended_shape(sample_shape), dtype_,
                                    device_, {}, gen);
    return loc_ + scale_ * eps;
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Normal, value, {loc_, scale_});
  }
  Tensor mean() const override { return loc_.expand(batch_shape_); }
  Tensor variance() const override { return square(scale_).expand(batch_shape_); }
  Tensor entropy() const override {
    return (log(scale_) + 0.5 + 0.5 * std::log(2.0 * M_PI)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::real; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<NormalImpl>(loc_.expand(batch), scale_.expand(batch), batch);
  }

  const Tensor& loc() const { return loc_; }
  const Tensor& scale() const { return scale_; }

 private:
  Tensor loc_, scale_;
};

Normal::Normal(const ParamArg& loc, const ParamArg& scale) {
  auto p = detail::make_params("Normal", {{"loc", loc}, {"scale", scale}});
  detail::validate_param("Normal", "scale", p.tensors[1], constraints::positive);
  impl_ = std::make_shared<NormalImpl>(p.tensors[0], p.tensors[1], p.batch_shape);
}

Tensor Normal::loc() const { return as<NormalImpl>()->loc(); }
Tensor Normal::scale() const { return as<NormalImpl>()->scale(); }

}  // namespace ember::dist
