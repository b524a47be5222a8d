// Beta: fused log-density (kernels/math/distributions/gamma.hpp) and draws X / (X + Y) of two
// implicitly reparameterized Gamma draws.
#include "ember/distributions/beta.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class BetaImpl final : public DistributionImpl {
 public:
  BetaImpl(Tensor concentration1, Tensor concentration0, const Shape& batch)
      : DistributionImpl(batch, {}, concentration1.dtype(), concentration1.device()),
        concentration1_(std::move(concentration1)),
        concentration0_(std::move(concentration0)) {}

  std::string name() const override { return "Beta"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Shape shape = extended_shape(sample_shape);
    const Tensor x = detail::standard_gamma(concentration1_, shape, gen);
    const Tensor y = detail::standard_gamma(concentration0_, shape, gen);
    // A tiny concentration can underflow one gamma draw to 0 and put the ratio on the
    // boundary, where the density is infinite: keep draws inside (0, 1) (as PyTorch does).
    return detail::clamp_to_open_unit(x / (x + y));
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Beta, value,
                                  {concentration1_, concentration0_});
  }
  Tensor mean() const override {
    return (concentration1_ / (concentration1_ + concentration0_)).expand(batch_shape_);
  }
  Tensor variance() const override {
    const Tensor total = concentration1_ + concentration0_;
    return (concentration1_ * concentration0_ / (square(total) * (total + 1.0)))
        .expand(batch_shape_);
  }
  Tensor entropy() const override {
    const Tensor& a = concentration1_;
    const Tensor& b = concentration0_;
    const Tensor total = a + b;
    const Tensor log_beta = lgamma(a) + lgamma(b) - lgamma(total);
    return (log_beta - (a - 1.0) * digamma(a) - (b - 1.0) * digamma(b) +
            (total - 2.0) * digamma(total))
        .expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::unit_interval; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<BetaImpl>(concentration1_.expand(batch), concentration0_.expand(batch),
                                      batch);
  }

  const Tensor& concentration1() const { return concentration1_; }
  const Tensor& concentration0() const { return concentration0_; }

 private:
  Tensor concentration1_, concentration0_;
};

Beta::Beta(const ParamArg& concentration1, const ParamArg& concentration0) {
  auto p = detail::make_params(
      "Beta", {{"concentration1", concentration1}, {"concentration0", concentration0}});
  detail::validate_param("Beta", "concentration1", p.tensors[0], constraints::positive);
  detail::validate_param("Beta", "concentration0", p.tensors[1], constraints::positive);
  impl_ = std::make_shared<BetaImpl>(p.tensors[0], p.tensors[1], p.batch_shape);
}

Tensor Beta::concentration1() const { return as<BetaImpl>()->concentration1(); }
Tensor Beta::concentration0() const { return as<BetaImpl>()->concentration0(); }

}  // namespace ember::dist
