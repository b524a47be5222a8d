// MultivariateNormal: log-density by one triangular solve against the scale factor, pathwise
// draws loc + L eps, and the three parameterizations reduced to L.
#include "ember/distributions/multivariate_normal.hpp"

#include <cmath>
#include <vector>

#include "ember/linalg.hpp"
#include "engine/distributions/dist_util.hpp"

namespace ember::dist {
namespace {

using detail::append;
using detail::drop_last;

constexpr const char* kName = "MultivariateNormal";

// Reverses the rows and the columns of each matrix.
Tensor flip_matrix(const Tensor& m) {
  const std::int64_t n = m.size(-1);
  std::vector<std::int64_t> rev(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) rev[i] = n - 1 - i;
  const Tensor index = from_vector(rev, {n}, TensorOptions{}.with_dtype(kInt64)).to(m.device());
  return index_select(index_select(m, m.dim() - 1, index), m.dim() - 2, index);
}

// The lower factor L with L L^T = P^-1: with J the reversal, J P J = Lf Lf^T gives
// P = U U^T for the upper U = J Lf J, so P^-1 = U^-T U^-1 and L = U^-T = J Lf^-T J.
Tensor precision_to_scale_tril(const Tensor& precision) {
  const Tensor lf = cholesky(flip_matrix(precision));
  const Tensor id =
      eye(precision.size(-1),
          TensorOptions{}.with_dtype(precision.dtype()).with_device(precision.device()));
  return flip_matrix(triangular_solve(id, lf, true, true));
}

class MultivariateNormalImpl final : public DistributionImpl {
 public:
  // loc and the matrices are kept unexpanded (a factor shared by the batch is solved once);
  // covariance / precision are defined when the user gave them.
  MultivariateNormalImpl(Tensor loc, Tensor scale_tril, Tensor covariance, Tensor precision,
                         const Shape& batch)
      : DistributionImpl(batch, {scale_tril.size(-1)}, loc.dtype(), loc.device()),
        loc_(std::move(loc)),
        scale_tril_(std::move(scale_tril)),
        covariance_(std::move(covariance)),
        precision_(std::move(precision)) {}

  std::string name() const override { return kName; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor eps = detail::draw(kernels::SampleOp::Normal, extended_shape(sample_shape), dtype_,
                                    device_, {}, gen);
    return loc_ + matmul(scale_tril_, eps.unsqueeze(-1)).squeeze(-1);
  }
  Tensor log_prob(const Tensor& value) const override {
    const std::int64_t n = event_shape_[0];
    EMBER_CHECK_SHAPE(value.dim() >= 1 && value.size(-1) == n, kName, ".log_prob: value of shape ",
                      value.shape(), " does not end in the event shape (", n, ")");
    const Tensor m = batch_mahalanobis(scale_tril_, value - loc_);
    return -0.5 * (m + static_cast<double>(n) * std::log(2.0 * M_PI)) - half_log_det();
  }
  Tensor mean() const override { return loc_.expand(extended_shape({})); }
  Tensor variance() const override {
    // diag(L L^T) = row sums of L^2.
    return sum(square(scale_tril_), {-1}).expand(extended_shape({}));
  }
  Tensor entropy() const override {
    const double n = static_cast<double>(event_shape_[0]);
    return (half_log_det() + 0.5 * n * (1.0 + std::log(2.0 * M_PI))).expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::real_vector; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    const std::int64_t n = event_shape_[0];
    const Shape mat = append(batch, {n, n});
    return detail::pooled<MultivariateNormalImpl>(
        loc_.expand(append(batch, {n})), scale_tril_.expand(mat),
        covariance_.defined() ? covariance_.expand(mat) : Tensor(),
        precision_.defined() ? precision_.expand(mat) : Tensor(), batch);
  }

  Tensor loc() const { return mean(); }
  Tensor scale_tril() const { return scale_tril_.expand(matrix_shape()); }
  Tensor covariance_matrix() const {
    if (covariance_.defined()) return covariance_.expand(matrix_shape());
    return matmul(scale_tril_, scale_tril_.transpose(-2, -1)).expand(matrix_shape());
  }
  Tensor precision_matrix() const {
    if (precision_.defined()) return precision_.expand(matrix_shape());
    const Tensor id = eye(event_shape_[0], TensorOptions{}.with_dtype(dtype_).with_device(device_));
    const Tensor inv = triangular_solve(id, scale_tril_);  // L^-1
    return matmul(inv.transpose(-2, -1), inv).expand(matrix_shape());
  }

 private:
  Shape matrix_shape() const { return append(batch_shape_, {event_shape_[0], event_shape_[0]}); }
  // log det(L) = log sqrt(det Sigma), of L's batch shape.
  Tensor half_log_det() const { return sum(log(diagonal(scale_tril_)), {-1}); }

  Tensor loc_, scale_tril_, covariance_, precision_;
};

// Which matrix the user gave.
enum class Given { ScaleTril, Covariance, Precision };

std::shared_ptr<const DistributionImpl> make_mvn(const Tensor& loc_in, const Tensor& matrix_in,
                                                 Given given) {
  const char* param = given == Given::ScaleTril    ? "scale_tril"
                      : given == Given::Covariance ? "covariance_matrix"
                                                   : "precision_matrix";
  EMBER_CHECK_DEVICE(loc_in.device() == matrix_in.device(), kName, ": loc is on ", loc_in.device(),
                     " but ", param, " is on ", matrix_in.device());
  EMBER_CHECK_SHAPE(loc_in.dim() >= 1, kName, ": loc must have at least one dim, got shape ",
                    loc_in.shape());
  const std::int64_t n = loc_in.size(-1);
  EMBER_CHECK_SHAPE(matrix_in.dim() >= 2 && matrix_in.size(-1) == n && matrix_in.size(-2) == n,
                    kName, ": ", param, " of shape ", matrix_in.shape(),
                    " is not (..., n, n) for loc of shape ", loc_in.shape());
  DType t = promote(loc_in.dtype(), matrix_in.dtype());
  if (!is_floating(t)) t = kFloat32;
  const Tensor loc = loc_in.to(t), matrix = matrix_in.to(t);
  Shape batch;
  try {
    batch = broadcast_shapes(drop_last(loc.shape(), 1), drop_last(matrix.shape(), 2), kName);
  } catch (const ShapeError&) {
    EMBER_CHECK_SHAPE(false, kName, ": the batch dims of loc of shape ", loc.shape(), " and ",
                      param, " of shape ", matrix.shape(), " do not broadcast");
  }
  switch (given) {
    case Given::ScaleTril:
      detail::validate_param(kName, param, matrix, constraints::lower_cholesky);
      return detail::pooled<MultivariateNormalImpl>(loc, matrix, Tensor(), Tensor(), batch);
    case Given::Covariance:
      detail::validate_param(kName, param, matrix, constraints::positive_definite);
      return detail::pooled<MultivariateNormalImpl>(loc, cholesky(matrix), matrix, Tensor(), batch);
    case Given::Precision:
      detail::validate_param(kName, param, matrix, constraints::positive_definite);
      return detail::pooled<MultivariateNormalImpl>(loc, precision_to_scale_tril(matrix), Tensor(),
                                                    matrix, batch);
  }
  return nullptr;
}

}  // namespace

Tensor batch_mahalanobis(const Tensor& scale_tril, const Tensor& x) {
  const std::int64_t n = scale_tril.size(-1);
  const Shape l_batch = drop_last(scale_tril.shape(), 2);
  const Shape batch = broadcast_shapes(drop_last(x.shape(), 1), l_batch, "batch_mahalanobis");
  const int extra = batch.size() - l_batch.size();
  if (extra == 0 || l_batch.numel() == 1) {
    // One solve: a single factor is read in place for the whole batch.
    return sum(square(triangular_solve(x.unsqueeze(-1), scale_tril).squeeze(-1)), {-1});
  }
  // x (S..., B..., n) -> (B..., n, S): the leading dims become right-hand sides of L's solves.
  Shape inner;
  for (int d = extra; d < batch.size(); ++d) inner.push_back(batch[d]);
  const Shape lead = [&] {
    Shape s;
    for (int d = 0; d < extra; ++d) s.push_back(batch[d]);
    return s;
  }();
  Shape folded{lead.numel()};
  for (auto d : inner) folded.push_back(d);
  folded.push_back(n);
  const Tensor xs = x.expand(append(batch, {n})).reshape(folded);
  std::vector<int> to_columns;
  for (int d = 1; d <= inner.size() + 1; ++d) to_columns.push_back(d);
  to_columns.push_back(0);
  const Tensor y =
      triangular_solve(xs.permute(to_columns), scale_tril.expand(append(inner, {n, n})));
  const Tensor q = sum(square(y), {-2});  // (B..., S)
  std::vector<int> back{q.dim() - 1};
  for (int d = 0; d < q.dim() - 1; ++d) back.push_back(d);
  return q.permute(back).reshape(batch);
}

MultivariateNormal::MultivariateNormal(const Tensor& loc, const Tensor& scale_tril)
    : Distribution(make_mvn(loc, scale_tril, Given::ScaleTril)) {}

MultivariateNormal MultivariateNormal::from_scale_tril(const Tensor& loc,
                                                       const Tensor& scale_tril) {
  return MultivariateNormal(loc, scale_tril);
}
MultivariateNormal MultivariateNormal::from_covariance(const Tensor& loc,
                                                       const Tensor& covariance_matrix) {
  return MultivariateNormal(make_mvn(loc, covariance_matrix, Given::Covariance));
}
MultivariateNormal MultivariateNormal::from_precision(const Tensor& loc,
                                                      const Tensor& precision_matrix) {
  return MultivariateNormal(make_mvn(loc, precision_matrix, Given::Precision));
}

Tensor MultivariateNormal::loc() const { return as<MultivariateNormalImpl>()->loc(); }
Tensor MultivariateNormal::scale_tril() const { return as<MultivariateNormalImpl>()->scale_tril(); }
Tensor MultivariateNormal::covariance_matrix() const {
  return as<MultivariateNormalImpl>()->covariance_matrix();
}
Tensor MultivariateNormal::precision_matrix() const {
  return as<MultivariateNormalImpl>()->precision_matrix();
}

}  // namespace ember::dist
