// ContinuousBernoulli: fused log-density in logits (kernels/math/distributions/continuous.hpp)
// and pathwise draws by the inverse CDF. Every formula is written in a = |logits| and mirrored
// for negative logits (x -> 1 - x), so nothing overflows however large the logits are; near
// a = 0, where the exact forms cancel, their series take over.
#include "ember/distributions/continuous_bernoulli.hpp"

#include <numbers>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {
namespace {

// Below these |logits| the series replace the exact forms: the quantile's exact form is 0/0
// only at 0 itself; the moments' forms cancel, so they are computed in float64 and switch to
// series (whose next terms are below float64 rounding there) at 1e-2.
constexpr double kSeriesQuantile = 1e-6;
constexpr double kSeriesMoments = 1e-2;

// a kept away from 0 where a series is used instead, so the unused exact branch stays finite
// (and its gradient zero).
Tensor away_from_zero(const Tensor& a, double cut) { return clamp_min(a, cut); }

// The mirror of f(a) for negative logits: f for l >= 0, 1 - f for l < 0.
Tensor mirrored(const Tensor& l, const Tensor& f) { return where(ge(l, 0.0), f, 1.0 - f); }

// log C(l) = log(l / tanh(l / 2)), even in l; log 2 + l^2 / 12 near 0.
Tensor log_normalizer(const Tensor& l) {
  const Tensor a = abs(l);
  const Tensor s = away_from_zero(a, kSeriesQuantile);
  const Tensor exact = log(s) - log(tanh(0.5 * s));
  return where(lt(a, kSeriesQuantile), std::numbers::ln2 + square(l) / 12.0, exact);
}

}  // namespace

class ContinuousBernoulliImpl final : public DistributionImpl {
 public:
  // `param` is probs, or logits when is_logits.
  ContinuousBernoulliImpl(Tensor param, bool is_logits, const Shape& batch)
      : DistributionImpl(batch, {}, param.dtype(), param.device()),
        param_(std::move(param)),
        is_logits_(is_logits) {}

  std::string name() const override { return "ContinuousBernoulli"; }
  bool has_rsample() const override { return true; }
  // x = log1p(u expm1(l)) / l, the inverse CDF at u, written so that nothing overflows:
  // -log1p(u expm1(-a)) / a for l = -a < 0, 1 + log1p((1 - u) expm1(-a)) / a for l = a > 0
  // (the same, mirrored), u + l u (1 - u) / 2 near 0. The draw is continuous in l for a
  // fixed u, across 0 and the series cut.
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor u = detail::draw(kernels::SampleOp::Uniform, extended_shape(sample_shape), dtype_,
                                  device_, {}, gen);
    const Tensor l = logits();
    const Tensor a = abs(l);
    const Tensor s = away_from_zero(a, kSeriesQuantile);
    const Tensor e = expm1(-s);
    const Tensor exact =
        where(ge(l, 0.0), 1.0 + log1p((1.0 - u) * e) / s, -log1p(u * e) / s);
    const Tensor series = u + 0.5 * l * u * (1.0 - u);
    return clamp(where(lt(a, kSeriesQuantile), series, exact), 0.0, 1.0);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::ContinuousBernoulli, value, {logits()});
  }
  // 1 / (1 - e^-a) - 1 / a for l = a >= 0, mirrored; 1/2 + a/12 - a^3/720 near 0.
  Tensor mean() const override { return mean64(logits().to(kFloat64)).to(dtype_); }
  // 1 / l^2 - 1 / (4 sinh^2(l / 2)) = 1 / l^2 - e^-a / expm1(-a)^2, even in l;
  // 1/12 - l^2/240 + l^4/6048 near 0.
  Tensor variance() const override {
    const Tensor l = logits().to(kFloat64);
    const Tensor a = abs(l);
    const Tensor s = away_from_zero(a, kSeriesMoments);
    const Tensor exact = reciprocal(square(s)) - exp(-s) / square(expm1(-s));
    const Tensor a2 = square(a);
    const Tensor series = 1.0 / 12.0 - a2 / 240.0 + square(a2) / 6048.0;
    return where(lt(a, kSeriesMoments), series, exact).to(dtype_).expand(batch_shape_);
  }
  // -E[log p(x)] = -(l E[x] + log sigmoid(-l) + log C(l)).
  Tensor entropy() const override {
    const Tensor l = logits().to(kFloat64);
    const Tensor h = -(l * mean64(l) + log_sigmoid(-l) + log_normalizer(l));
    return h.to(dtype_).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::unit_interval; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<ContinuousBernoulliImpl>(param_.expand(batch), is_logits_, batch);
  }

  Tensor probs() const { return detail::probs_of(param_, is_logits_); }
  Tensor logits() const {
    return is_logits_ ? param_ : detail::logits_of(detail::clamp_to_open_unit(param_), false);
  }

 private:
  // The mean for float64 logits l, broadcast to the batch.
  Tensor mean64(const Tensor& l) const {
    const Tensor a = abs(l);
    const Tensor s = away_from_zero(a, kSeriesMoments);
    const Tensor exact = -reciprocal(expm1(-s)) - reciprocal(s);
    const Tensor series = 0.5 + a / 12.0 - a * square(a) / 720.0;
    return mirrored(l, where(lt(a, kSeriesMoments), series, exact)).expand(batch_shape_);
  }
  Tensor param_;
  bool is_logits_;
};

ContinuousBernoulli::ContinuousBernoulli(const ParamArg& probs) {
  auto p = detail::make_params("ContinuousBernoulli", {{"probs", probs}});
  detail::validate_param("ContinuousBernoulli", "probs", p.tensors[0], constraints::unit_interval);
  impl_ = std::make_shared<ContinuousBernoulliImpl>(p.tensors[0], false, p.batch_shape);
}

ContinuousBernoulli ContinuousBernoulli::from_logits(const ParamArg& logits) {
  auto p = detail::make_params("ContinuousBernoulli", {{"logits", logits}});
  detail::validate_param("ContinuousBernoulli", "logits", p.tensors[0], constraints::real);
  return ContinuousBernoulli(
      std::make_shared<ContinuousBernoulliImpl>(p.tensors[0], true, p.batch_shape));
}

Tensor ContinuousBernoulli::probs() const { return as<ContinuousBernoulliImpl>()->probs(); }
Tensor ContinuousBernoulli::logits() const { return as<ContinuousBernoulliImpl>()->logits(); }

}  // namespace ember::dist
