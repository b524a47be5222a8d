// Categorical: log-pmf by gathering the normalized table, draws by inverse CDF (a uniform
// against the cumulative sum of probs), both composed from tensor ops.
#include "ember/distributions/categorical.hpp"

#include <cmath>
#include <limits>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class CategoricalImpl final : public DistributionImpl {
 public:
  // `param` (batch + (K,)) is probs, or logits when is_logits.
  CategoricalImpl(Tensor param, bool is_logits, const Shape& batch)
      : DistributionImpl(batch, {}, param.dtype(), param.device()),
        param_(std::move(param)),
        is_logits_(is_logits) {}

  std::string name() const override { return "Categorical"; }
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    const Tensor cdf = cumsum(probs(), -1);
    Shape shape = extended_shape(sample_shape);
    shape.push_back(1);
    const Tensor u = detail::draw(kernels::SampleOp::Uniform, shape, dtype_, device_, {}, gen);
    // The index of the first cdf entry >= u * total: scaling u by the computed total keeps a
    // rounded-down last entry (or trailing zero-probability categories) from being drawn.
    const Tensor total = cdf.narrow(-1, num_categories() - 1, 1);
    return sum(lt(cdf, u * total), {-1});
  }
  Tensor log_prob(const Tensor& value) const override {
    const std::int64_t k = num_categories();
    Shape shape = broadcast_shapes(value.shape(), batch_shape_, "Categorical.log_prob");
    // Values outside 0..K-1 (possible only with validation off) read index 0 and give -inf.
    const Tensor v = value.detach();
    const Tensor ok = logical_and(logical_and(ge(v, 0.0), le(v, static_cast<double>(k - 1))),
                                  eq(floor(v.to(dtype_)), v.to(dtype_)));
    const Tensor index = where(ok, v.to(dtype_), 0.0).to(kInt64).expand(shape).unsqueeze(-1);
    Shape table_shape = shape;
    table_shape.push_back(k);
    // From probs the log is taken after the gather: log(0) for an unchosen category would
    // otherwise turn its zero gradient into nan.
    const Tensor table = (is_logits_ ? logits() : probs()).expand(table_shape);
    const Tensor picked = gather(table, -1, index).squeeze(-1);
    return where(ok, is_logits_ ? picked : log(picked), -INFINITY);
  }
  Tensor mean() const override { return sum(probs() * categories(), {-1}); }
  Tensor variance() const override {
    const Tensor p = probs();
    const Tensor m = sum(p * categories(), {-1}, true);
    return sum(p * square(categories() - m), {-1});
  }
  // A zero-probability category contributes 0, with no nan in the gradient: from logits
  // (-inf allowed) the log-probability is clamped to the lowest finite value, from probs
  // the log is taken of 1 in its place.
  Tensor entropy() const override {
    const Tensor p = probs();
    if (is_logits_) {
      const double lowest = dtype_ == kFloat32 ? std::numeric_limits<float>::lowest()
                                               : std::numeric_limits<double>::lowest();
      return -sum(p * clamp_min(logits(), lowest), {-1});
    }
    return -sum(p * log(where(gt(p, 0.0), p, 1.0)), {-1});
  }
  constraints::Constraint support() const override {
    return constraints::integer_interval(0.0, static_cast<double>(num_categories() - 1));
  }
  bool has_enumerate_support() const override { return true; }
  Tensor enumerate_support(bool expand) const override {
    const std::int64_t k = num_categories();
    Shape shape{k};
    shape.resize(1 + batch_shape_.size(), 1);
    const Tensor values = arange(0.0, static_cast<double>(k), 1.0,
                                 TensorOptions{}.with_dtype(kInt64).with_device(device_))
                              .reshape(shape);
    if (!expand) return values;
    Shape full{k};
    for (auto d : batch_shape_) full.push_back(d);
    return values.expand(full);
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    Shape full = batch;
    full.push_back(num_categories());
    return std::make_shared<CategoricalImpl>(param_.expand(full), is_logits_, batch);
  }

  // Computed per call rather than cached: a cached tensor would keep one graph's history,
  // which a backward pass releases.
  Tensor probs() const { return is_logits_ ? exp(logits()) : param_ / sum(param_, {-1}, true); }
  Tensor logits() const {
    return is_logits_ ? param_ - logsumexp(param_, {-1}, true) : log(probs());
  }
  std::int64_t num_categories() const { return param_.size(-1); }

 private:
  // 0, 1, ..., K-1 in the distribution's dtype.
  Tensor categories() const {
    return arange(0.0, static_cast<double>(num_categories()), 1.0,
                  TensorOptions{}.with_dtype(dtype_).with_device(device_));
  }

  Tensor param_;
  bool is_logits_;
};

namespace {

detail::Params categorical_params(const char* name, const ParamArg& param) {
  auto p = detail::make_params("Categorical", {{name, param}});
  const Tensor& t = p.tensors[0];
  EMBER_CHECK_SHAPE(t.dim() >= 1 && t.size(-1) >= 1, "Categorical: parameter ", name,
                    " needs a last dim of at least one category, got shape ", t.shape());
  p.batch_shape.resize(p.batch_shape.size() - 1);
  return p;
}

}  // namespace

Categorical::Categorical(const ParamArg& probs) {
  auto p = categorical_params("probs", probs);
  detail::validate_param("Categorical", "probs", p.tensors[0], constraints::simplex);
  impl_ = std::make_shared<CategoricalImpl>(p.tensors[0], false, p.batch_shape);
}

Categorical Categorical::from_logits(const ParamArg& logits) {
  auto p = categorical_params("logits", logits);
  detail::validate_param("Categorical", "logits", p.tensors[0], constraints::real_vector);
  return Categorical(std::make_shared<CategoricalImpl>(p.tensors[0], true, p.batch_shape));
}

Tensor Categorical::probs() const { return as<CategoricalImpl>()->probs(); }
Tensor Categorical::logits() const { return as<CategoricalImpl>()->logits(); }
std::int64_t Categorical::num_categories() const { return as<CategoricalImpl>()->num_categories(); }

}  // namespace ember::dist
