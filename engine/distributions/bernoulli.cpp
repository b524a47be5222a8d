// Bernoulli: fused log-pmf in probs or logits (kernels/math/distributions/discrete.hpp) and draws
// as (uniform < probs).
#include "ember/distributions/bernoulli.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class BernoulliImpl final : public DistributionImpl {
 public:
  // `param` is probs, or logits when is_logits.
  BernoulliImpl(Tensor param, bool is_logits, const Shape& batch)
      : DistributionImpl(batch, {}, param.dtype(), param.device()),
        param_(std::move(param)),
        is_logits_(is_logits) {}

  std::string name() const override { return "Bernoulli"; }
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    const Tensor u = detail::draw(kernels::SampleOp::Uniform, extended_shape(sample_shape), dtype_,
                                  device_, {}, gen);
    return lt(u, probs()).to(dtype_);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(
        is_logits_ ? kernels::LogProbFamily::BernoulliLogits : kernels::LogProbFamily::Bernoulli,
        value, {param_});
  }
  Tensor mean() const override { return probs().expand(batch_shape_); }
  Tensor variance() const override {
    if (is_logits_) return (sigmoid(param_) * sigmoid(-param_)).expand(batch_shape_);
    return (param_ * (1.0 - param_)).expand(batch_shape_);
  }
  Tensor entropy() const override {
    if (is_logits_) {
      const Tensor p = sigmoid(param_);
      return -(p * log_sigmoid(param_) + (1.0 - p) * log_sigmoid(-param_)).expand(batch_shape_);
    }
    return -(detail::xlogx(param_) + detail::xlogx(1.0 - param_)).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::boolean; }
  bool has_enumerate_support() const override { return true; }
  Tensor enumerate_support(bool expand) const override {
    Shape shape{2};
    shape.resize(1 + batch_shape_.size(), 1);
    const Tensor values =
        arange(0.0, 2.0, 1.0, TensorOptions{}.with_dtype(dtype_).with_device(device_))
            .reshape(shape);
    if (!expand) return values;
    Shape full{2};
    for (auto d : batch_shape_) full.push_back(d);
    return values.expand(full);
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<BernoulliImpl>(param_.expand(batch), is_logits_, batch);
  }

  Tensor probs() const { return detail::probs_of(param_, is_logits_); }
  Tensor logits() const { return detail::logits_of(param_, is_logits_); }

 private:
  Tensor param_;
  bool is_logits_;
};

Bernoulli::Bernoulli(const ParamArg& probs) {
  auto p = detail::make_params("Bernoulli", {{"probs", probs}});
  detail::validate_param("Bernoulli", "probs", p.tensors[0], constraints::unit_interval);
  impl_ = std::make_shared<BernoulliImpl>(p.tensors[0], false, p.batch_shape);
}

Bernoulli Bernoulli::from_logits(const ParamArg& logits) {
  auto p = detail::make_params("Bernoulli", {{"logits", logits}});
  detail::validate_param("Bernoulli", "logits", p.tensors[0], constraints::real);
  return Bernoulli(std::make_shared<BernoulliImpl>(p.tensors[0], true, p.batch_shape));
}

Tensor Bernoulli::probs() const { return as<BernoulliImpl>()->probs(); }
Tensor Bernoulli::logits() const { return as<BernoulliImpl>()->logits(); }

}  // namespace ember::dist
