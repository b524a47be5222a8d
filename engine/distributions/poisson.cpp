// Poisson: fused log-pmf and the inversion/PTRS sampler (kernels/math/distributions/discrete.hpp).
#include "ember/distributions/poisson.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class PoissonImpl final : public DistributionImpl {
 public:
  PoissonImpl(Tensor rate, const Shape& batch)
      : DistributionImpl(batch, {}, rate.dtype(), rate.device()), rate_(std::move(rate)) {}

  std::string name() const override { return "Poisson"; }
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    return detail::draw(kernels::SampleOp::Poisson, extended_shape(sample_shape), dtype_, device_,
                        {rate_}, gen);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Poisson, value, {rate_});
  }
  Tensor mean() const override { return rate_.expand(batch_shape_); }
  Tensor variance() const override { return rate_.expand(batch_shape_); }
  constraints::Constraint support() const override { return constraints::nonnegative_integer; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<PoissonImpl>(rate_.expand(batch), batch);
  }

  const Tensor& rate() const { return rate_; }

 private:
  Tensor rate_;
};

Poisson::Poisson(const ParamArg& rate) {
  auto p = detail::make_params("Poisson", {{"rate", rate}});
  detail::validate_param("Poisson", "rate", p.tensors[0], constraints::nonnegative);
  impl_ = std::make_shared<PoissonImpl>(p.tensors[0], p.batch_shape);
}

Tensor Poisson::rate() const { return as<PoissonImpl>()->rate(); }

}  // namespace ember::dist
