// The families built on Gamma draws (kernels/math/distributions/gamma.hpp): Gamma, Beta and
// StudentT scored by their fused kernels, Dirichlet composed from tensor ops over its event
// dim; all reparameterized through the implicit gradients of Gamma(a, 1) draws.
#include "ember/distributions/gamma.hpp"

#include <cmath>
#include <limits>
#include <numbers>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

using detail::FamilyImpl;
using kernels::LogProbFamily;

// ----------------------------------------------------------------------- Gamma ----

class GammaImpl final : public FamilyImpl<GammaImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  // Gamma(a, 1) / rate.
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return detail::standard_gamma(concentration(), extended_shape(sample_shape), gen) / rate();
  }
  Tensor mean() const override { return batched(concentration() / rate()); }
  Tensor variance() const override { return batched(concentration() / square(rate())); }
  Tensor entropy() const override {
    const Tensor& a = concentration();
    return batched(a - log(rate()) + lgamma(a) + (1.0 - a) * digamma(a));
  }
  constraints::Constraint support() const override { return constraints::positive; }

  const Tensor& concentration() const { return param(0); }
  const Tensor& rate() const { return param(1); }
};

Gamma::Gamma(const ParamArg& concentration, const ParamArg& rate) {
  impl_ = detail::make_family<GammaImpl>("Gamma", LogProbFamily::Gamma,
                                         {{"concentration", concentration, &constraints::positive},
                                          {"rate", rate, &constraints::positive}});
}
Tensor Gamma::concentration() const { return as<GammaImpl>()->concentration(); }
Tensor Gamma::rate() const { return as<GammaImpl>()->rate(); }

// ------------------------------------------------------------------------ Beta ----

class BetaImpl final : public FamilyImpl<BetaImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  // X / (X + Y) of two Gamma draws, as sigmoid(log X - log Y) of their logs: at a tiny
  // concentration the draws themselves underflow (both, at once, would give 1/2), the logs do
  // not. The ratio is kept inside (0, 1), as PyTorch does: it may round to the boundary, where
  // the density is infinite.
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Shape shape = extended_shape(sample_shape);
    const Tensor log_x = detail::log_standard_gamma(a(), shape, gen);
    const Tensor log_y = detail::log_standard_gamma(b(), shape, gen);
    return detail::gamma_ratio_of_logs(log_x, log_y);
  }
  Tensor mean() const override { return batched(a() / (a() + b())); }
  Tensor variance() const override {
    const Tensor total = a() + b();
    return batched(a() * b() / (square(total) * (total + 1.0)));
  }
  Tensor entropy() const override {
    const Tensor total = a() + b();
    const Tensor log_beta = lgamma(a()) + lgamma(b()) - lgamma(total);
    return batched(log_beta - (a() - 1.0) * digamma(a()) - (b() - 1.0) * digamma(b()) +
                   (total - 2.0) * digamma(total));
  }
  constraints::Constraint support() const override { return constraints::unit_interval; }

  // concentration1 and concentration0.
  const Tensor& a() const { return param(0); }
  const Tensor& b() const { return param(1); }
};

Beta::Beta(const ParamArg& concentration1, const ParamArg& concentration0) {
  impl_ =
      detail::make_family<BetaImpl>("Beta", LogProbFamily::Beta,
                                    {{"concentration1", concentration1, &constraints::positive},
                                     {"concentration0", concentration0, &constraints::positive}});
}
Tensor Beta::concentration1() const { return as<BetaImpl>()->a(); }
Tensor Beta::concentration0() const { return as<BetaImpl>()->b(); }

// -------------------------------------------------------------------- StudentT ----

class StudentTImpl final : public FamilyImpl<StudentTImpl> {
 public:
  using FamilyImpl::FamilyImpl;
  bool has_rsample() const override { return true; }
  // loc + scale * Z * sqrt(df / V), V = 2 Gamma(df / 2, 1): reparameterized in all parameters.
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor z = standard_draws(kernels::SampleOp::Normal, sample_shape, gen);
    const Tensor v = 2.0 * detail::standard_gamma(df() * 0.5, extended_shape(sample_shape), gen);
    return loc() + scale() * z * sqrt(df() / v);
  }
  // loc where df > 1, else undefined (nan), as in PyTorch.
  Tensor mean() const override { return batched(where(df() > 1.0, loc(), kNaN)); }
  // scale^2 df / (df - 2) where df > 2, inf where 1 < df <= 2, nan where df <= 1.
  Tensor variance() const override {
    const Tensor finite = square(scale()) * df() / (df() - 2.0);
    const Tensor v = where(df() > 2.0, finite, std::numeric_limits<double>::infinity());
    return batched(where(df() > 1.0, v, kNaN));
  }
  // (v+1)/2 (psi((v+1)/2) - psi(v/2)) + log(sqrt(v) B(v/2, 1/2)) + log scale.
  Tensor entropy() const override {
    const Tensor h = (df() + 1.0) * 0.5;
    const Tensor half = df() * 0.5;
    const Tensor log_beta = lgamma(half) + 0.5 * std::log(std::numbers::pi) - lgamma(h);
    return batched(h * (digamma(h) - digamma(half)) + 0.5 * log(df()) + log_beta + log(scale()));
  }
  constraints::Constraint support() const override { return constraints::real; }

  const Tensor& df() const { return param(0); }
  const Tensor& loc() const { return param(1); }
  const Tensor& scale() const { return param(2); }

 private:
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
};

StudentT::StudentT(const ParamArg& df, const ParamArg& loc, const ParamArg& scale) {
  impl_ = detail::make_family<StudentTImpl>(
      "StudentT", LogProbFamily::StudentT,
      {{"df", df, &constraints::positive}, {"loc", loc}, {"scale", scale, &constraints::positive}});
}
Tensor StudentT::df() const { return as<StudentTImpl>()->df(); }
Tensor StudentT::loc() const { return as<StudentTImpl>()->loc(); }
Tensor StudentT::scale() const { return as<StudentTImpl>()->scale(); }

// ------------------------------------------------------------------- Dirichlet ----

class DirichletImpl final : public DistributionImpl {
 public:
  // concentration has shape batch + (K,).
  DirichletImpl(Tensor concentration, const Shape& batch, std::int64_t k)
      : DistributionImpl(batch, {k}, concentration.dtype(), concentration.device()),
        concentration_(std::move(concentration)) {}

  std::string name() const override { return "Dirichlet"; }
  bool has_rsample() const override { return true; }
  // G / sum(G) of Gamma draws, as the softmax of their logs (see Beta), inside (0, 1).
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor log_g =
        detail::log_standard_gamma(concentration_, extended_shape(sample_shape), gen);
    return detail::clamp_to_open_unit(softmax(log_g, -1));
  }
  // sum_k (a_k - 1) log x_k + lgamma(sum_k a_k) - sum_k lgamma(a_k). A term with a_k = 1 is 0
  // also where x_k = 0 (Beta's rule, kernels/math/distributions/gamma.hpp): its log is taken
  // of 1 there, which keeps 0 * log 0 from making it nan and holds its partials at 0.
  Tensor log_prob(const Tensor& value) const override {
    const Tensor& a = concentration_;
    const Tensor x = where(logical_and(eq(a, 1.0), eq(value, 0.0)), 1.0, value);
    return sum((a - 1.0) * log(x), {-1}) + lgamma(sum(a, {-1})) - sum(lgamma(a), {-1});
  }
  Tensor mean() const override {
    return (concentration_ / sum(concentration_, {-1}, true)).expand(extended_shape({}));
  }
  Tensor variance() const override {
    const Tensor total = sum(concentration_, {-1}, true);
    return (concentration_ * (total - concentration_) / (square(total) * (total + 1.0)))
        .expand(extended_shape({}));
  }
  // log B(a) + (a0 - K) psi(a0) - sum_k (a_k - 1) psi(a_k), a0 = sum_k a_k.
  Tensor entropy() const override {
    const Tensor& a = concentration_;
    const Tensor total = sum(a, {-1});
    const double k = static_cast<double>(event_shape_[0]);
    return (sum(lgamma(a), {-1}) - lgamma(total) + (total - k) * digamma(total) -
            sum((a - 1.0) * digamma(a), {-1}))
        .expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::simplex; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    Shape full = batch;
    full.push_back(event_shape_[0]);
    return detail::pooled<DirichletImpl>(concentration_.expand(full), batch, event_shape_[0]);
  }

  const Tensor& concentration() const { return concentration_; }

 private:
  Tensor concentration_;
};

Dirichlet::Dirichlet(const ParamArg& concentration) {
  auto p = detail::make_params("Dirichlet", {{"concentration", concentration}});
  const Tensor& a = p.tensors[0];
  EMBER_CHECK_SHAPE(a.dim() >= 1 && a.shape()[a.dim() - 1] >= 1,
                    "Dirichlet: parameter concentration needs at least one dim (the event dim) "
                    "of size >= 1, got shape ",
                    a.shape());
  detail::validate_param("Dirichlet", "concentration", a, constraints::positive);
  impl_ = detail::pooled<DirichletImpl>(a, detail::drop_last(a.shape(), 1), a.size(-1));
}

Tensor Dirichlet::concentration() const { return as<DirichletImpl>()->concentration(); }

}  // namespace ember::dist
