// The continuous families of kernels/math/distributions/continuous.hpp: each scored by its fused
// log-density kernel, with pathwise draws from uniform or normal ones.
#include "ember/distributions/continuous.hpp"

#include <cmath>
#include <numbers>

#include "engine/compile/plan.hpp"
#include "engine/distributions/dist_util.hpp"
#include "kernels/math/special.hpp"

namespace ember::dist {

using detail::FamilyImpl;
using kernels::LogProbFamily;
using kernels::SampleOp;

// ---------------------------------------------------------------------- Normal ----

class NormalImpl final : public FamilyImpl<NormalImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return loc() + scale() * standard_draws(SampleOp::Normal, sample_shape, gen);
  }
  Tensor mean() const override { return batched(loc()); }
  Tensor variance() const override { return batched(square(scale())); }
  Tensor entropy() const override {
    return batched(log(scale()) + 0.5 + kernels::kLogSqrt2Pi<double>);
  }
  constraints::Constraint support() const override { return constraints::real; }

  const Tensor& loc() const { return param(0); }
  const Tensor& scale() const { return param(1); }
};

Normal::Normal(const ParamArg& loc, const ParamArg& scale) {
  impl_ = detail::make_family<NormalImpl>("Normal", LogProbFamily::Normal,
                                          {{"loc", loc}, {"scale", scale, &constraints::positive}});
}
Tensor Normal::loc() const { return as<NormalImpl>()->loc(); }
Tensor Normal::scale() const { return as<NormalImpl>()->scale(); }

// ------------------------------------------------------------------- LogNormal ----

class LogNormalImpl final : public FamilyImpl<LogNormalImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return exp(loc() + scale() * standard_draws(SampleOp::Normal, sample_shape, gen));
  }
  Tensor mean() const override { return batched(exp(loc() + 0.5 * square(scale()))); }
  Tensor variance() const override {
    const Tensor s2 = square(scale());
    return batched(expm1(s2) * exp(2.0 * loc() + s2));
  }
  Tensor entropy() const override {
    return batched(loc() + log(scale()) + 0.5 + kernels::kLogSqrt2Pi<double>);
  }
  constraints::Constraint support() const override { return constraints::positive; }

  const Tensor& loc() const { return param(0); }
  const Tensor& scale() const { return param(1); }
};

LogNormal::LogNormal(const ParamArg& loc, const ParamArg& scale) {
  impl_ =
      detail::make_family<LogNormalImpl>("LogNormal", LogProbFamily::LogNormal,
                                         {{"loc", loc}, {"scale", scale, &constraints::positive}});
}
Tensor LogNormal::loc() const { return as<LogNormalImpl>()->loc(); }
Tensor LogNormal::scale() const { return as<LogNormalImpl>()->scale(); }

// ------------------------------------------------------------------ HalfNormal ----

class HalfNormalImpl final : public FamilyImpl<HalfNormalImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return scale() * abs(standard_draws(SampleOp::Normal, sample_shape, gen));
  }
  Tensor mean() const override { return batched(scale() * std::sqrt(2.0 / std::numbers::pi)); }
  Tensor variance() const override {
    return batched(square(scale()) * (1.0 - 2.0 / std::numbers::pi));
  }
  Tensor entropy() const override {
    return batched(log(scale()) + 0.5 + 0.5 * std::log(0.5 * std::numbers::pi));
  }
  constraints::Constraint support() const override { return constraints::nonnegative; }

  const Tensor& scale() const { return param(0); }
};

HalfNormal::HalfNormal(const ParamArg& scale) {
  impl_ = detail::make_family<HalfNormalImpl>("HalfNormal", LogProbFamily::HalfNormal,
                                              {{"scale", scale, &constraints::positive}});
}
Tensor HalfNormal::scale() const { return as<HalfNormalImpl>()->scale(); }

// ---------------------------------------------------------------------- Cauchy ----

class CauchyImpl final : public FamilyImpl<CauchyImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  // A standard Cauchy draw as the ratio of two independent standard normals (the kernels
  // have no tan; the ratio has exactly the standard Cauchy law).
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor num = standard_draws(SampleOp::Normal, sample_shape, gen);
    return loc() + scale() * (num / standard_draws(SampleOp::Normal, sample_shape, gen));
  }
  Tensor mean() const override { not_available("mean (the Cauchy mean is undefined)"); }
  Tensor variance() const override { not_available("variance (the Cauchy variance is undefined)"); }
  Tensor entropy() const override {
    return batched(log(scale()) + std::log(4.0 * std::numbers::pi));
  }
  constraints::Constraint support() const override { return constraints::real; }

  const Tensor& loc() const { return param(0); }
  const Tensor& scale() const { return param(1); }
};

Cauchy::Cauchy(const ParamArg& loc, const ParamArg& scale) {
  impl_ = detail::make_family<CauchyImpl>("Cauchy", LogProbFamily::Cauchy,
                                          {{"loc", loc}, {"scale", scale, &constraints::positive}});
}
Tensor Cauchy::loc() const { return as<CauchyImpl>()->loc(); }
Tensor Cauchy::scale() const { return as<CauchyImpl>()->scale(); }

// ------------------------------------------------------------------ HalfCauchy ----

class HalfCauchyImpl final : public FamilyImpl<HalfCauchyImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  // |standard Cauchy| as the ratio of two |standard normals| (see Cauchy).
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor num = standard_draws(SampleOp::Normal, sample_shape, gen);
    return scale() * abs(num / standard_draws(SampleOp::Normal, sample_shape, gen));
  }
  // The integrals diverge to +inf (as in Pyro).
  Tensor mean() const override { return batched(full_like(scale(), INFINITY)); }
  Tensor variance() const override { return mean(); }
  Tensor entropy() const override {
    return batched(log(scale()) + std::log(2.0 * std::numbers::pi));
  }
  constraints::Constraint support() const override { return constraints::nonnegative; }

  const Tensor& scale() const { return param(0); }
};

HalfCauchy::HalfCauchy(const ParamArg& scale) {
  impl_ = detail::make_family<HalfCauchyImpl>("HalfCauchy", LogProbFamily::HalfCauchy,
                                              {{"scale", scale, &constraints::positive}});
}
Tensor HalfCauchy::scale() const { return as<HalfCauchyImpl>()->scale(); }

// --------------------------------------------------------------------- Laplace ----

class LaplaceImpl final : public FamilyImpl<LaplaceImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  // Inverse CDF of v = u - 1/2 in (-1/2, 1/2): sign(v) * -log(1 - 2|v|), with log1p for
  // accuracy near the centre (u is never exactly 0 or 1).
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor v = standard_draws(SampleOp::Uniform, sample_shape, gen) - 0.5;
    return loc() + scale() * where(v < 0.0, log1p(2.0 * v), -log1p(-2.0 * v));
  }
  Tensor mean() const override { return batched(loc()); }
  Tensor variance() const override { return batched(2.0 * square(scale())); }
  Tensor entropy() const override { return batched(log(scale()) + 1.0 + std::numbers::ln2); }
  constraints::Constraint support() const override { return constraints::real; }

  const Tensor& loc() const { return param(0); }
  const Tensor& scale() const { return param(1); }
};

Laplace::Laplace(const ParamArg& loc, const ParamArg& scale) {
  impl_ = detail::make_family<LaplaceImpl>(
      "Laplace", LogProbFamily::Laplace, {{"loc", loc}, {"scale", scale, &constraints::positive}});
}
Tensor Laplace::loc() const { return as<LaplaceImpl>()->loc(); }
Tensor Laplace::scale() const { return as<LaplaceImpl>()->scale(); }

// --------------------------------------------------------------------- Uniform ----

class UniformImpl final : public FamilyImpl<UniformImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return low() + (high() - low()) * standard_draws(SampleOp::Uniform, sample_shape, gen);
  }
  Tensor mean() const override { return batched(0.5 * (low() + high())); }
  Tensor variance() const override { return batched(square(high() - low()) / 12.0); }
  Tensor entropy() const override { return batched(log(high() - low())); }
  constraints::Constraint support() const override { return constraints::interval(low(), high()); }

  const Tensor& low() const { return param(0); }
  const Tensor& high() const { return param(1); }
};

Uniform::Uniform(const ParamArg& low, const ParamArg& high) {
  auto impl = detail::make_family<UniformImpl>("Uniform", LogProbFamily::Uniform,
                                               {{"low", low}, {"high", high}});
  // low < high elementwise, else a ValueError naming both values at the first offending index.
  if (validation_enabled()) {
    const detail::PauseRecording checks_are_not_replayed;
    const Shape& batch = impl->batch_shape();
    const Tensor ok = lt(impl->low(), impl->high()).expand(batch);
    if (!all(ok)) {
      const auto first = detail::first_violation(ok);
      const auto at = [&](const Tensor& t) {
        return t.detach()
            .expand(batch)
            .to(kFloat64)
            .to(Device::cpu())
            .flatten()
            .to_vector<double>()[first];
      };
      detail::report_invalid_param(
          detail::concat("Uniform: parameter low must be less than high, got low ", at(impl->low()),
                         " and high ", at(impl->high()), " at index ",
                         detail::format_index(first, batch), " (", __FILE__, ":", __LINE__, ")"));
    }
  }
  impl_ = std::move(impl);
}
Tensor Uniform::low() const { return as<UniformImpl>()->low(); }
Tensor Uniform::high() const { return as<UniformImpl>()->high(); }

// ----------------------------------------------------------------- Exponential ----

class ExponentialImpl final : public FamilyImpl<ExponentialImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return -log(standard_draws(SampleOp::Uniform, sample_shape, gen)) / rate();
  }
  Tensor mean() const override { return batched(reciprocal(rate())); }
  Tensor variance() const override { return batched(reciprocal(square(rate()))); }
  Tensor entropy() const override { return batched(1.0 - log(rate())); }
  constraints::Constraint support() const override { return constraints::nonnegative; }

  const Tensor& rate() const { return param(0); }
};

Exponential::Exponential(const ParamArg& rate) {
  impl_ = detail::make_family<ExponentialImpl>("Exponential", LogProbFamily::Exponential,
                                               {{"rate", rate, &constraints::positive}});
}
Tensor Exponential::rate() const { return as<ExponentialImpl>()->rate(); }

// --------------------------------------------------------- ContinuousBernoulli ----
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

class ContinuousBernoulliImpl final : public detail::ProbsOrLogitsImpl<ContinuousBernoulliImpl> {
 public:
  using ProbsOrLogitsImpl::ProbsOrLogitsImpl;
  bool has_rsample() const override { return true; }
  // x = log1p(u expm1(l)) / l, the inverse CDF at u, written so that nothing overflows:
  // -log1p(u expm1(-a)) / a for l = -a < 0, 1 + log1p((1 - u) expm1(-a)) / a for l = a > 0
  // (the same, mirrored), u + l u (1 - u) / 2 near 0. The draw is continuous in l for a
  // fixed u, across 0 and the series cut.
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor u = standard_draws(SampleOp::Uniform, sample_shape, gen);
    const Tensor l = finite_logits();
    const Tensor a = abs(l);
    const Tensor s = away_from_zero(a, kSeriesQuantile);
    const Tensor e = expm1(-s);
    const Tensor exact = where(ge(l, 0.0), 1.0 + log1p((1.0 - u) * e) / s, -log1p(u * e) / s);
    const Tensor series = u + 0.5 * l * u * (1.0 - u);
    return clamp(where(lt(a, kSeriesQuantile), series, exact), 0.0, 1.0);
  }
  // The kernel takes logits whichever form was given.
  Tensor log_prob(const Tensor& value) const override {
    const Tensor logits[] = {finite_logits()};
    return detail::fused_log_prob(LogProbFamily::ContinuousBernoulli, value, logits);
  }
  // 1 / (1 - e^-a) - 1 / a for l = a >= 0, mirrored; 1/2 + a/12 - a^3/720 near 0.
  Tensor mean() const override { return mean64(finite_logits().to(kFloat64)).to(dtype_); }
  // 1 / l^2 - 1 / (4 sinh^2(l / 2)) = 1 / l^2 - e^-a / expm1(-a)^2, even in l;
  // 1/12 - l^2/240 + l^4/6048 near 0.
  Tensor variance() const override {
    const Tensor l = finite_logits().to(kFloat64);
    const Tensor a = abs(l);
    const Tensor s = away_from_zero(a, kSeriesMoments);
    const Tensor exact = reciprocal(square(s)) - exp(-s) / square(expm1(-s));
    const Tensor a2 = square(a);
    const Tensor series = 1.0 / 12.0 - a2 / 240.0 + square(a2) / 6048.0;
    return batched(where(lt(a, kSeriesMoments), series, exact).to(dtype_));
  }
  // -E[log p(x)] = -(l E[x] + log sigmoid(-l) + log C(l)).
  Tensor entropy() const override {
    const Tensor l = finite_logits().to(kFloat64);
    const Tensor h = -(l * mean64(l) + log_sigmoid(-l) + log_normalizer(l));
    return batched(h.to(dtype_));
  }
  constraints::Constraint support() const override { return constraints::unit_interval; }

  // The logits, from probs kept a rounding step inside [0, 1] so that they stay finite.
  Tensor finite_logits() const {
    if (is_logits_) return given();
    const Tensor p = detail::clamp_to_open_unit(given());
    return log(p) - log1p(-p);
  }

 private:
  // The mean for float64 logits l, broadcast to the batch.
  Tensor mean64(const Tensor& l) const {
    const Tensor a = abs(l);
    const Tensor s = away_from_zero(a, kSeriesMoments);
    const Tensor exact = -reciprocal(expm1(-s)) - reciprocal(s);
    const Tensor series = 0.5 + a / 12.0 - a * square(a) / 720.0;
    return batched(mirrored(l, where(lt(a, kSeriesMoments), series, exact)));
  }
};

ContinuousBernoulli::ContinuousBernoulli(const ParamArg& probs) {
  impl_ = detail::make_family<ContinuousBernoulliImpl>(
      "ContinuousBernoulli", LogProbFamily::ContinuousBernoulli,
      {{"probs", probs, &constraints::unit_interval}}, false);
}
ContinuousBernoulli ContinuousBernoulli::from_logits(const ParamArg& logits) {
  return ContinuousBernoulli(detail::make_family<ContinuousBernoulliImpl>(
      "ContinuousBernoulli", LogProbFamily::ContinuousBernoulli,
      {{"logits", logits, &constraints::real}}, true));
}
Tensor ContinuousBernoulli::probs() const { return as<ContinuousBernoulliImpl>()->probs(); }
Tensor ContinuousBernoulli::logits() const {
  return as<ContinuousBernoulliImpl>()->finite_logits();
}

}  // namespace ember::dist
