// The discrete families of kernels/math/distributions/discrete.hpp: Bernoulli, Binomial, Poisson
// and Geometric scored by their fused log-pmfs (in probs or logits) and drawn by their samplers;
// Categorical composed from tensor ops over its last dim.
#include "ember/distributions/discrete.hpp"

#include <cmath>
#include <limits>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

using detail::FamilyImpl;
using detail::ProbsOrLogitsImpl;
using kernels::LogProbFamily;
using kernels::SampleOp;

// ------------------------------------------------------------------- Bernoulli ----

class BernoulliImpl final : public ProbsOrLogitsImpl<BernoulliImpl> {
 public:
  using ProbsOrLogitsImpl::ProbsOrLogitsImpl;
  // 1 where a uniform draw falls below probs.
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    return lt(standard_draws(SampleOp::Uniform, sample_shape, gen), probs()).to(dtype_);
  }
  Tensor mean() const override { return batched(probs()); }
  Tensor variance() const override { return batched(p_times_q()); }
  Tensor entropy() const override { return batched(trial_entropy()); }
  constraints::Constraint support() const override { return constraints::boolean; }
  bool has_enumerate_support() const override { return true; }
  Tensor enumerate_support(bool expand) const override {
    return detail::enumerate_values(2, batch_shape_, dtype_, device_, expand);
  }
};

Bernoulli::Bernoulli(const ParamArg& probs) {
  impl_ =
      detail::make_family<BernoulliImpl>("Bernoulli", LogProbFamily::Bernoulli,
                                         {{"probs", probs, &constraints::unit_interval}}, false);
}
Bernoulli Bernoulli::from_logits(const ParamArg& logits) {
  return Bernoulli(detail::make_family<BernoulliImpl>(
      "Bernoulli", LogProbFamily::BernoulliLogits, {{"logits", logits, &constraints::real}}, true));
}
Tensor Bernoulli::probs() const { return as<BernoulliImpl>()->probs(); }
Tensor Bernoulli::logits() const { return as<BernoulliImpl>()->logits(); }

// -------------------------------------------------------------------- Binomial ----

class BinomialImpl final : public ProbsOrLogitsImpl<BinomialImpl> {
 public:
  using ProbsOrLogitsImpl::ProbsOrLogitsImpl;
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    return detail::draw(SampleOp::Binomial, extended_shape(sample_shape), dtype_, device_,
                        {total_count(), probs()}, gen);
  }
  Tensor mean() const override { return batched(total_count() * probs()); }
  Tensor variance() const override { return batched(total_count() * p_times_q()); }
  constraints::Constraint support() const override {
    return constraints::integer_interval(
        zeros({}, TensorOptions{}.with_dtype(dtype_).with_device(device_)), total_count());
  }
  bool has_enumerate_support() const override { return true; }
  // 0..n, shared by the whole batch, so total_count must be one value (as in Pyro).
  Tensor enumerate_support(bool expand) const override {
    const auto counts = total_count().detach().to(kFloat64).flatten().to_vector<double>();
    EMBER_CHECK(!counts.empty(), "Binomial.enumerate_support: the batch is empty");
    for (double n : counts) {
      EMBER_CHECK(n == counts[0],
                  "Binomial.enumerate_support: total_count must be the same "
                  "across the batch, got ",
                  counts[0], " and ", n);
    }
    const auto n = static_cast<std::int64_t>(counts[0]);
    return detail::enumerate_values(n + 1, batch_shape_, dtype_, device_, expand);
  }

  const Tensor& total_count() const { return param(0); }
};

namespace {

std::shared_ptr<const BinomialImpl> make_binomial(const ParamArg& total_count, const char* name,
                                                  const ParamArg& param, bool is_logits) {
  return detail::make_family<BinomialImpl>(
      "Binomial", is_logits ? LogProbFamily::BinomialLogits : LogProbFamily::Binomial,
      {{"total_count", total_count, &constraints::nonnegative_integer},
       {name, param, is_logits ? &constraints::real : &constraints::unit_interval}},
      is_logits);
}

}  // namespace

Binomial::Binomial(const ParamArg& total_count, const ParamArg& probs) {
  impl_ = make_binomial(total_count, "probs", probs, false);
}
Binomial Binomial::from_logits(const ParamArg& total_count, const ParamArg& logits) {
  return Binomial(make_binomial(total_count, "logits", logits, true));
}
Tensor Binomial::total_count() const { return as<BinomialImpl>()->total_count(); }
Tensor Binomial::probs() const { return as<BinomialImpl>()->probs(); }
Tensor Binomial::logits() const { return as<BinomialImpl>()->logits(); }

// --------------------------------------------------------------------- Poisson ----

class PoissonImpl final : public FamilyImpl<PoissonImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  // Inversion for small rates, PTRS for large ones.
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    return detail::draw(SampleOp::Poisson, extended_shape(sample_shape), dtype_, device_, {rate()},
                        gen);
  }
  Tensor mean() const override { return batched(rate()); }
  Tensor variance() const override { return batched(rate()); }
  constraints::Constraint support() const override { return constraints::nonnegative_integer; }

  const Tensor& rate() const { return param(0); }
};

// rate 0 always draws 0.
Poisson::Poisson(const ParamArg& rate) {
  impl_ = detail::make_family<PoissonImpl>("Poisson", LogProbFamily::Poisson,
                                           {{"rate", rate, &constraints::nonnegative}});
}
Tensor Poisson::rate() const { return as<PoissonImpl>()->rate(); }

// ------------------------------------------------------------------- Geometric ----

class GeometricImpl final : public ProbsOrLogitsImpl<GeometricImpl> {
 public:
  using ProbsOrLogitsImpl::ProbsOrLogitsImpl;
  // By the inverse CDF.
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    return detail::draw(SampleOp::Geometric, extended_shape(sample_shape), dtype_, device_,
                        {probs()}, gen);
  }
  // (1 - p) / p, which is exp(-logits).
  Tensor mean() const override {
    return batched(is_logits_ ? exp(-given()) : (1.0 - given()) / given());
  }
  // (1 - p) / p^2.
  Tensor variance() const override {
    if (is_logits_) return batched(exp(-given()) / sigmoid(given()));
    return batched((1.0 - given()) / square(given()));
  }
  // -(p log p + (1 - p) log(1 - p)) / p.
  Tensor entropy() const override { return batched(trial_entropy() / probs()); }
  constraints::Constraint support() const override { return constraints::nonnegative_integer; }
};

Geometric::Geometric(const ParamArg& probs) {
  auto impl =
      detail::make_family<GeometricImpl>("Geometric", LogProbFamily::Geometric,
                                         {{"probs", probs, &constraints::unit_interval}}, false);
  // p = 0 never succeeds: no distribution over the counts.
  detail::validate_param("Geometric", "probs", impl->probs(), constraints::positive);
  impl_ = std::move(impl);
}
Geometric Geometric::from_logits(const ParamArg& logits) {
  return Geometric(detail::make_family<GeometricImpl>(
      "Geometric", LogProbFamily::GeometricLogits, {{"logits", logits, &constraints::real}}, true));
}
Tensor Geometric::probs() const { return as<GeometricImpl>()->probs(); }
Tensor Geometric::logits() const { return as<GeometricImpl>()->logits(); }

// ----------------------------------------------------------------- Categorical ----

class CategoricalImpl final : public DistributionImpl {
 public:
  // `param` (batch + (K,)) is probs, or logits when is_logits.
  CategoricalImpl(Tensor param, bool is_logits, const Shape& batch)
      : DistributionImpl(batch, {}, param.dtype(), param.device()),
        param_(std::move(param)),
        is_logits_(is_logits) {}

  std::string name() const override { return "Categorical"; }
  // One uniform draw per line, and one kernel that walks each line's cumulative weights to the
  // category the draw picks (reduce_bodies.hpp, categorical_pick_line).
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    using detail::arg;
    const Shape shape = extended_shape(sample_shape);
    Shape lines = shape;
    lines.push_back(num_categories());
    Shape one_per_line = shape;
    one_per_line.push_back(1);
    const Tensor u =
        detail::draw(kernels::SampleOp::Uniform, one_per_line, dtype_, device_, {}, gen);
    Tensor out = detail::make_tensor(shape, kInt64, device_);
    if (out.numel() > 0) {
      const Tensor table = param_.detach().expand(lines);
      detail::backend(table).categorical_sample(arg(out.unsqueeze(-1).expand(lines)), arg(table),
                                                arg(u.expand(lines)), is_logits_);
    }
    return out;
  }
  // One kernel for each line's normalizer, the pick and its log, and one for the gradient
  // (the table given as probabilities or logits, normalized in the same pass). Values outside
  // 0..K-1 or not integers (possible only with validation off) give -inf and no gradient.
  Tensor log_prob(const Tensor& value) const override {
    using detail::arg;
    const Shape shape = broadcast_shapes(value.shape(), batch_shape_, "Categorical.log_prob");
    Shape lines = shape;
    lines.push_back(num_categories());
    const Tensor table = param_.expand(lines);
    Tensor v = value.detach();
    if (v.dtype() != kInt64 && v.dtype() != dtype_) v = v.to(dtype_);
    if (v.device() != device_) v = v.to(device_);
    const Tensor v_lines = v.expand(shape).unsqueeze(-1).expand(lines);
    Tensor out = detail::make_tensor(shape, dtype_, device_);
    const bool logits = is_logits_;
    if (out.numel() > 0) {
      detail::backend(table).categorical_log_prob(arg(out.unsqueeze(-1).expand(lines)), arg(table),
                                                  arg(v_lines), logits);
    }
    if (detail::needs_grad({&table})) {
      detail::record(
          "Categorical.log_prob", {table}, out, [table, v_lines, lines, logits](const Tensor& g) {
            Tensor gt = detail::make_tensor(lines, table.dtype(), table.device());
            if (gt.numel() > 0) {
              detail::backend(table).categorical_log_prob_backward(
                  arg(gt), arg(g.unsqueeze(-1).expand(lines)), arg(table), arg(v_lines), logits);
            }
            return detail::Grads{gt};
          });
    }
    return out;
  }
  // Every category's log-probability at once: the normalized table, categories first.
  Tensor log_prob_of_support() const override {
    const Tensor table = logits();
    std::vector<int> order{table.dim() - 1};
    for (int d = 0; d + 1 < table.dim(); ++d) order.push_back(d);
    return table.permute(order);
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
    return detail::enumerate_values(k, batch_shape_, kInt64, device_, expand);
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    Shape full = batch;
    full.push_back(num_categories());
    return detail::pooled<CategoricalImpl>(param_.expand(full), is_logits_, batch);
  }

  // Computed per call rather than cached: a cached tensor would keep one graph's history,
  // which a backward pass releases.
  Tensor probs() const { return is_logits_ ? exp(logits()) : param_ / sum(param_, {-1}, true); }
  Tensor logits() const {
    return is_logits_ ? param_ - logsumexp(param_, {-1}, true) : log_normalize(param_, -1);
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
  impl_ = detail::pooled<CategoricalImpl>(p.tensors[0], false, p.batch_shape);
}

Categorical Categorical::from_logits(const ParamArg& logits) {
  auto p = categorical_params("logits", logits);
  detail::validate_param("Categorical", "logits", p.tensors[0], constraints::real_vector);
  return Categorical(detail::pooled<CategoricalImpl>(p.tensors[0], true, p.batch_shape));
}

Tensor Categorical::probs() const { return as<CategoricalImpl>()->probs(); }
Tensor Categorical::logits() const { return as<CategoricalImpl>()->logits(); }
std::int64_t Categorical::num_categories() const { return as<CategoricalImpl>()->num_categories(); }

}  // namespace ember::dist
