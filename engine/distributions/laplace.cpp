// Laplace: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/laplace.hpp"

#include <cmath>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class LaplaceImpl final : public DistributionImpl {
 public:
  LaplaceImpl(Tensor loc, Tensor scale, const Shape& batch)
      : DistributionImpl(batch, {}, loc.dtype(), loc.device()),
        loc_(std::move(loc)),
        scale_(std::move(scale)) {}

  std::string name() const override { return "Laplace"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    // Inverse CDF of v = u - 1/2 in (-1/2, 1/2): sign(v) * -log(1 - 2|v|), with log1p for
    // accuracy near the centre (u is never exactly 0 or 1).
    const Tensor v = detail::draw(kernels::SampleOp::Uniform, extended_shape(sample_shape), dtype_,
                                  device_, {}, gen) -
                     0.5;
    const Tensor eps = where(v < 0.0, log1p(2.0 * v), -log1p(-2.0 * v));
    return loc_ + scale_ * eps;
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Laplace, value, {loc_, scale_});
  }
  Tensor mean() const override { return loc_.expand(batch_shape_); }
  Tensor variance() const override { return (2.0 * square(scale_)).expand(batch_shape_); }
  Tensor entropy() const override {
    return (log(scale_) + 1.0 + std::log(2.0)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::real; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<LaplaceImpl>(loc_.expand(batch), scale_.expand(batch), batch);
  }

  const Tensor& loc() const { return loc_; }
  const Tensor& scale() const { return scale_; }

 private:
  Tensor loc_, scale_;
};

Laplace::Laplace(const ParamArg& loc, const ParamArg& scale) {
  auto p = detail::make_params("Laplace", {{"loc", loc}, {"scale", scale}});
  detail::validate_param("Laplace", "scale", p.tensors[1], constraints::positive);
  impl_ = std::make_shared<LaplaceImpl>(p.tensors[0], p.tensors[1], p.batch_shape);
}

Tensor Laplace::loc() const { return as<LaplaceImpl>()->loc(); }
Tensor Laplace::scale() const { return as<LaplaceImpl>()->scale(); }

}  // namespace ember::dist
