// LowRankMultivariateNormal: with Sigma = W W^T + D and the k x k capacitance
// K = I + W^T D^-1 W = C C^T,
//   Sigma^-1      = D^-1 - D^-1 W K^-1 W^T D^-1      (Woodbury)
//   log det Sigma = log det K + sum log D             (matrix determinant lemma)
// so log_prob costs one k x k Cholesky factor and a solve against it, never an n x n matrix.
#include "ember/distributions/low_rank_multivariate_normal.hpp"

#include <cmath>

#include "ember/distributions/multivariate_normal.hpp"
#include "ember/linalg.hpp"
#include "engine/distributions/dist_util.hpp"

namespace ember::dist {
namespace {

using detail::append;
using detail::drop_last;

constexpr const char* kName = "LowRankMultivariateNormal";

class LowRankMultivariateNormalImpl final : public DistributionImpl {
 public:
  // Parameters are kept unexpanded; the capacitance factor is made once here.
  LowRankMultivariateNormalImpl(Tensor loc, Tensor cov_factor, Tensor cov_diag, const Shape& batch)
      : DistributionImpl(batch, {loc.size(-1)}, loc.dtype(), loc.device()),
        loc_(std::move(loc)),
        w_(std::move(cov_factor)),
        d_(std::move(cov_diag)) {
    const std::int64_t k = w_.size(-1);
    wt_dinv_ = (w_ / d_.unsqueeze(-1)).transpose(-2, -1);  // W^T D^-1, (..., k, n)
    const Tensor id = eye(k, TensorOptions{}.with_dtype(dtype_).with_device(device_));
    capacitance_tril_ = cholesky(matmul(wt_dinv_, w_) + id);
  }

  std::string name() const override { return kName; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Shape shape = extended_shape(sample_shape);
    Shape factor_shape = drop_last(shape, 1);
    factor_shape.push_back(w_.size(-1));
    const Tensor eps_w =
        detail::draw(kernels::SampleOp::Normal, factor_shape, dtype_, device_, {}, gen);
    const Tensor eps_d = detail::draw(kernels::SampleOp::Normal, shape, dtype_, device_, {}, gen);
    return loc_ + matmul(w_, eps_w.unsqueeze(-1)).squeeze(-1) + sqrt(d_) * eps_d;
  }
  Tensor log_prob(const Tensor& value) const override {
    const std::int64_t n = event_shape_[0];
    EMBER_CHECK_SHAPE(value.dim() >= 1 && value.size(-1) == n, kName, ".log_prob: value of shape ",
                      value.shape(), " does not end in the event shape (", n, ")");
    const Tensor diff = value - loc_;
    const Tensor projected = matmul(wt_dinv_, diff.unsqueeze(-1)).squeeze(-1);  // W^T D^-1 x
    const Tensor m = sum(square(diff) / d_, {-1}) - batch_mahalanobis(capacitance_tril_, projected);
    return -0.5 * (m + log_det() + static_cast<double>(n) * std::log(2.0 * M_PI));
  }
  Tensor mean() const override { return loc_.expand(extended_shape({})); }
  Tensor variance() const override {
    return (sum(square(w_), {-1}) + d_).expand(extended_shape({}));
  }
  Tensor entropy() const override {
    const double n = static_cast<double>(event_shape_[0]);
    return (0.5 * log_det() + 0.5 * n * (1.0 + std::log(2.0 * M_PI))).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::real_vector; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    const std::int64_t n = event_shape_[0];
    return detail::pooled<LowRankMultivariateNormalImpl>(loc_.expand(append(batch, {n})),
                                                         w_.expand(append(batch, {n, w_.size(-1)})),
                                                         d_.expand(append(batch, {n})), batch);
  }

  Tensor loc() const { return mean(); }
  Tensor cov_factor() const {
    return w_.expand(append(batch_shape_, {event_shape_[0], w_.size(-1)}));
  }
  Tensor cov_diag() const { return d_.expand(extended_shape({})); }
  Tensor covariance_matrix() const {
    const std::int64_t n = event_shape_[0];
    const Tensor id = eye(n, TensorOptions{}.with_dtype(dtype_).with_device(device_));
    return (matmul(w_, w_.transpose(-2, -1)) + d_.unsqueeze(-1) * id)
        .expand(append(batch_shape_, {n, n}));
  }

 private:
  // log det Sigma = 2 sum log diag C + sum log D.
  Tensor log_det() const {
    return 2.0 * sum(log(diagonal(capacitance_tril_)), {-1}) + sum(log(d_), {-1});
  }

  Tensor loc_, w_, d_;
  Tensor wt_dinv_, capacitance_tril_;
};

}  // namespace

LowRankMultivariateNormal::LowRankMultivariateNormal(const Tensor& loc_in,
                                                     const Tensor& cov_factor_in,
                                                     const Tensor& cov_diag_in) {
  detail::check_same_device(kName, loc_in, cov_factor_in);
  detail::check_same_device(kName, loc_in, cov_diag_in);
  EMBER_CHECK_SHAPE(loc_in.dim() >= 1, kName, ": loc must have at least one dim, got shape ",
                    loc_in.shape());
  const std::int64_t n = loc_in.size(-1);
  EMBER_CHECK_SHAPE(cov_factor_in.dim() >= 2 && cov_factor_in.size(-2) == n, kName,
                    ": cov_factor of shape ", cov_factor_in.shape(),
                    " is not (..., n, k) for loc of shape ", loc_in.shape());
  EMBER_CHECK_SHAPE(cov_diag_in.dim() >= 1 && cov_diag_in.size(-1) == n, kName,
                    ": cov_diag of shape ", cov_diag_in.shape(),
                    " is not (..., n) for loc of shape ", loc_in.shape());
  DType t = promote(promote(loc_in.dtype(), cov_factor_in.dtype()), cov_diag_in.dtype());
  if (!is_floating(t)) t = kFloat32;
  const Tensor loc = loc_in.to(t), w = cov_factor_in.to(t), d = cov_diag_in.to(t);
  Shape batch;
  try {
    batch = broadcast_shapes(drop_last(loc.shape(), 1), drop_last(w.shape(), 2), kName);
    batch = broadcast_shapes(batch, drop_last(d.shape(), 1), kName);
  } catch (const ShapeError&) {
    EMBER_CHECK_SHAPE(false, kName, ": the batch dims of loc of shape ", loc.shape(),
                      ", cov_factor of shape ", w.shape(), " and cov_diag of shape ", d.shape(),
                      " do not broadcast");
  }
  detail::validate_param(kName, "cov_diag", d, constraints::positive);
  impl_ = detail::pooled<LowRankMultivariateNormalImpl>(loc, w, d, batch);
}

Tensor LowRankMultivariateNormal::loc() const { return as<LowRankMultivariateNormalImpl>()->loc(); }
Tensor LowRankMultivariateNormal::cov_factor() const {
  return as<LowRankMultivariateNormalImpl>()->cov_factor();
}
Tensor LowRankMultivariateNormal::cov_diag() const {
  return as<LowRankMultivariateNormalImpl>()->cov_diag();
}
Tensor LowRankMultivariateNormal::covariance_matrix() const {
  return as<LowRankMultivariateNormalImpl>()->covariance_matrix();
}

}  // namespace ember::dist
