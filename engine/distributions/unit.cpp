// Unit: draws are empty, log_prob is the log factor broadcast to the value's batch shape.
#include "ember/distributions/unit.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class UnitImpl final : public DistributionImpl {
 public:
  UnitImpl(Tensor log_factor, const Shape& batch)
      : DistributionImpl(batch, {0}, log_factor.dtype(), log_factor.device()),
        log_factor_(std::move(log_factor)) {}

  std::string name() const override { return "Unit"; }
  // The empty draw carries no randomness, so it counts as reparameterized: a guide's
  // factor contributes its gradient pathwise.
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator&) const override {
    return empty(extended_shape(sample_shape),
                 TensorOptions{}.with_dtype(dtype_).with_device(device_));
  }
  Tensor log_prob(const Tensor& value) const override {
    EMBER_CHECK_SHAPE(value.dim() >= 1 && value.size(-1) == 0, "Unit.log_prob: the value must ",
                      "be empty (shape (..., 0)), got ", value.shape());
    const Shape shape =
        broadcast_shapes(batch_shape_, detail::drop_last(value.shape(), 1), "Unit.log_prob");
    return log_factor_.expand(shape);
  }
  constraints::Constraint support() const override { return constraints::real.independent(1); }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return detail::pooled<UnitImpl>(log_factor_.expand(batch), batch);
  }

  const Tensor& log_factor() const { return log_factor_; }

 private:
  Tensor log_factor_;
};

Unit::Unit(const ParamArg& log_factor) {
  auto p = detail::make_params("Unit", {{"log_factor", log_factor}});
  impl_ = detail::pooled<UnitImpl>(p.tensors[0], p.batch_shape);
}

Tensor Unit::log_factor() const { return as<UnitImpl>()->log_factor(); }

}  // namespace ember::dist
