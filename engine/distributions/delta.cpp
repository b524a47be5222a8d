// Delta: draws are v itself (a reparameterized draw: gradients reach v); log_prob is
// log_density where the value equals v on every event element and -inf elsewhere.
#include "ember/distributions/delta.hpp"

#include <vector>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class DeltaImpl final : public DistributionImpl {
 public:
  DeltaImpl(Tensor v, Tensor log_density, const Shape& batch, const Shape& event)
      : DistributionImpl(batch, event, v.dtype(), v.device()),
        v_(std::move(v)),
        log_density_(std::move(log_density)) {}

  std::string name() const override { return "Delta"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator&) const override {
    return v_.expand(extended_shape(sample_shape));
  }
  Tensor log_prob(const Tensor& value) const override {
    Tensor lp = log(eq(value, v_).to(dtype_));
    if (!event_shape_.empty()) {
      std::vector<int> dims;
      for (int i = 1; i <= event_shape_.size(); ++i) dims.push_back(-i);
      lp = sum(lp, dims);
    }
    return lp + log_density_;
  }
  Tensor mean() const override { return v_; }
  Tensor variance() const override { return zeros_like(v_.detach()); }
  constraints::Constraint support() const override {
    return constraints::real.independent(event_shape_.size());
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    Shape full = batch;
    for (auto d : event_shape_) full.push_back(d);
    return detail::pooled<DeltaImpl>(v_.expand(full), log_density_.expand(batch), batch,
                                     event_shape_);
  }

  const Tensor& v() const { return v_; }
  const Tensor& log_density() const { return log_density_; }

 private:
  Tensor v_;
  Tensor log_density_;  // broadcast to the batch shape
};

Delta::Delta(const ParamArg& v, const ParamArg& log_density, int event_dim) {
  // v and log_density are aligned at the batch dims, not the rightmost ones, so only v's
  // dtype and device are taken from make_params.
  auto p = detail::make_params("Delta", {{"v", v}});
  const Tensor& value = p.tensors[0];
  EMBER_CHECK(event_dim >= 0 && event_dim <= value.dim(), "Delta: event_dim must lie in [0, ",
              value.dim(), "] for v of shape ", value.shape(), ", got ", event_dim);
  Shape batch, event;
  for (int i = 0; i < value.dim(); ++i) {
    (i < value.dim() - event_dim ? batch : event).push_back(value.shape()[i]);
  }
  const auto opts = TensorOptions{}.with_dtype(p.dtype).with_device(p.device);
  Tensor density = log_density.is_tensor() ? log_density.tensor().to(p.dtype)
                                           : scalar_tensor(log_density.value(), opts);
  EMBER_CHECK_DEVICE(density.device() == p.device, "Delta: parameter log_density is on ",
                     density.device(), " but v is on ", p.device);
  bool fits = false;
  try {
    fits = broadcast_shapes(density.shape(), batch, "Delta") == batch;
  } catch (const ShapeError&) {
  }
  EMBER_CHECK_SHAPE(fits, "Delta: parameter log_density of shape ", density.shape(),
                    " does not broadcast to the batch shape ", batch);
  impl_ = detail::pooled<DeltaImpl>(value, density.expand(batch), batch, event);
}

Tensor Delta::v() const { return as<DeltaImpl>()->v(); }
Tensor Delta::log_density() const { return as<DeltaImpl>()->log_density(); }

}  // namespace ember::dist
