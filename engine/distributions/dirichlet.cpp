// Dirichlet: log-density composed from tensor ops over the event dim, and draws of
// implicitly reparameterized Gamma draws normalized along it.
#include "ember/distributions/dirichlet.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class DirichletImpl final : public DistributionImpl {
 public:
  // concentration has shape batch + (K,).
  DirichletImpl(Tensor concentration, const Shape& batch, std::int64_t k)
      : DistributionImpl(batch, {k}, concentration.dtype(), concentration.device()),
        concentration_(std::move(concentration)) {}

  std::string name() const override { return "Dirichlet"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor g = detail::standard_gamma(concentration_, extended_shape(sample_shape), gen);
    return detail::clamp_to_open_unit(g / sum(g, {-1}, true));
  }
  // sum_k (a_k - 1) log x_k + lgamma(sum_k a_k) - sum_k lgamma(a_k).
  Tensor log_prob(const Tensor& value) const override {
    const Tensor& a = concentration_;
    return sum((a - 1.0) * log(value), {-1}) + lgamma(sum(a, {-1})) - sum(lgamma(a), {-1});
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
    return std::make_shared<DirichletImpl>(concentration_.expand(full), batch, event_shape_[0]);
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
  Shape batch;
  for (int d = 0; d + 1 < a.dim(); ++d) batch.push_back(a.shape()[d]);
  impl_ = std::make_shared<DirichletImpl>(a, batch, a.shape()[a.dim() - 1]);
}

Tensor Dirichlet::concentration() const { return as<DirichletImpl>()->concentration(); }

}  // namespace ember::dist
