// Binomial: fused log-pmf in probs or logits and the inversion/BTRS sampler
// (kernels/math/distributions/discrete.hpp).
#include "ember/distributions/binomial.hpp"

#include <vector>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class BinomialImpl final : public DistributionImpl {
 public:
  // `param` is probs, or logits when is_logits.
  BinomialImpl(Tensor total_count, Tensor param, bool is_logits, const Shape& batch)
      : DistributionImpl(batch, {}, param.dtype(), param.device()),
        total_count_(std::move(total_count)),
        param_(std::move(param)),
        is_logits_(is_logits) {}

  std::string name() const override { return "Binomial"; }
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    return detail::draw(kernels::SampleOp::Binomial, extended_shape(sample_shape), dtype_, device_,
                        {total_count_, probs()}, gen);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(
        is_logits_ ? kernels::LogProbFamily::BinomialLogits : kernels::LogProbFamily::Binomial,
        value, {total_count_, param_});
  }
  Tensor mean() const override { return (total_count_ * probs()).expand(batch_shape_); }
  Tensor variance() const override {
    const Tensor pq = is_logits_ ? sigmoid(param_) * sigmoid(-param_) : param_ * (1.0 - param_);
    return (total_count_ * pq).expand(batch_shape_);
  }
  constraints::Constraint support() const override {
    return constraints::integer_interval(
        zeros({}, TensorOptions{}.with_dtype(dtype_).with_device(device_)), total_count_);
  }
  bool has_enumerate_support() const override { return true; }
  // 0..n, shared by the whole batch, so total_count must be one value (as in Pyro).
  Tensor enumerate_support(bool expand) const override {
    const auto counts = total_count_.detach().to(kFloat64).flatten().to_vector<double>();
    EMBER_CHECK(!counts.empty(), "Binomial.enumerate_support: the batch is empty");
    for (double n : counts) {
      EMBER_CHECK(n == counts[0],
                  "Binomial.enumerate_support: total_count must be the same "
                  "across the batch, got ",
                  counts[0], " and ", n);
    }
    const auto n = static_cast<std::int64_t>(counts[0]);
    Shape shape{n + 1};
    shape.resize(1 + batch_shape_.size(), 1);
    const Tensor values = arange(0.0, static_cast<double>(n + 1), 1.0,
                                 TensorOptions{}.with_dtype(dtype_).with_device(device_))
                              .reshape(shape);
    if (!expand) return values;
    Shape full{n + 1};
    for (auto d : batch_shape_) full.push_back(d);
    return values.expand(full);
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<BinomialImpl>(total_count_.expand(batch), param_.expand(batch),
                                          is_logits_, batch);
  }

  const Tensor& total_count() const { return total_count_; }
  Tensor probs() const { return detail::probs_of(param_, is_logits_); }
  Tensor logits() const { return detail::logits_of(param_, is_logits_); }

 private:
  Tensor total_count_, param_;
  bool is_logits_;
};

namespace {

detail::Params binomial_params(const ParamArg& total_count, const char* name, const ParamArg& param,
                               const constraints::Constraint& constraint) {
  auto p = detail::make_params("Binomial", {{"total_count", total_count}, {name, param}});
  detail::validate_param("Binomial", "total_count", p.tensors[0], constraints::nonnegative_integer);
  detail::validate_param("Binomial", name, p.tensors[1], constraint);
  return p;
}

}  // namespace

Binomial::Binomial(const ParamArg& total_count, const ParamArg& probs) {
  auto p = binomial_params(total_count, "probs", probs, constraints::unit_interval);
  impl_ = std::make_shared<BinomialImpl>(p.tensors[0], p.tensors[1], false, p.batch_shape);
}

Binomial Binomial::from_logits(const ParamArg& total_count, const ParamArg& logits) {
  auto p = binomial_params(total_count, "logits", logits, constraints::real);
  return Binomial(std::make_shared<BinomialImpl>(p.tensors[0], p.tensors[1], true, p.batch_shape));
}

Tensor Binomial::total_count() const { return as<BinomialImpl>()->total_count(); }
Tensor Binomial::probs() const { return as<BinomialImpl>()->probs(); }
Tensor Binomial::logits() const { return as<BinomialImpl>()->logits(); }

}  // namespace ember::dist
