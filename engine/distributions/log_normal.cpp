// LogNormal: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/log_normal.hpp"

#include <cmath>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class LogNormalImpl final : public DistributionImpl {
 public:
  LogNormalImpl(Tensor loc, Tensor scale, const Shape& batch)
      : DistributionImpl(batch, {}, loc.dtype(), loc.device()),
        loc_(std::move(loc)),
        scale_(std::move(scale)) {}

  std::string name() const override { return "LogNormal"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor eps = detail::draw(kernels::SampleOp::Normal, extended_shape(sample_shape), dtype_,
                                    device_, {}, gen);
    return exp(loc_ + scale_ * eps);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::LogNormal, value, {loc_, scale_});
  }
  Tensor mean() const override { return exp(loc_ + 0.5 * square(scale_)).expand(batch_shape_); }
  Tensor variance() const override {
    const Tensor s2 = square(scale_);
    return (expm1(s2) * exp(2.0 * loc_ + s2)).expand(batch_shape_);
  }
  Tensor entropy() const override {
    return (loc_ + log(scale_) + 0.5 + 0.5 * std::log(2.0 * M_PI)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::positive; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<LogNormalImpl>(loc_.expand(batch), scale_.expand(batch), batch);
  }

  const Tensor& loc() const { return loc_; }
  const Tensor& scale() const { return scale_; }

 private:
  Tensor loc_, scale_;
};

LogNormal::LogNormal(const ParamArg& loc, const ParamArg& scale) {
  auto p = detail::make_params("LogNormal", {{"loc", loc}, {"scale", scale}});
  detail::validate_param("LogNormal", "scale", p.tensors[1], constraints::positive);
  impl_ = std::make_shared<LogNormalImpl>(p.tensors[0], p.tensors[1], p.batch_shape);
}

Tensor LogNormal::loc() const { return as<LogNormalImpl>()->loc(); }
Tensor LogNormal::scale() const { return as<LogNormalImpl>()->scale(); }

}  // namespace ember::dist
