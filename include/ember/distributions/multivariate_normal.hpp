// MultivariateNormal(loc, scale_tril): the Gaussian over vectors (event_shape (n)), given by
// a lower Cholesky factor of its covariance, its covariance or its precision; reparameterized
// as loc + scale_tril @ eps.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class MultivariateNormal : public Distribution {
 public:
  // loc (..., n); scale_tril (..., n, n) lower triangular with a positive diagonal (checked
  // while validation is on). The batch dims of the two broadcast.
  MultivariateNormal(const Tensor& loc, const Tensor& scale_tril);
  static MultivariateNormal from_scale_tril(const Tensor& loc, const Tensor& scale_tril);
  // covariance_matrix / precision_matrix (..., n, n) symmetric positive definite; the factor
  // is taken by one Cholesky decomposition (of the flipped precision for the latter).
  static MultivariateNormal from_covariance(const Tensor& loc, const Tensor& covariance_matrix);
  static MultivariateNormal from_precision(const Tensor& loc, const Tensor& precision_matrix);

  // Each shaped batch_shape + event_shape (+ (n) for the matrices).
  Tensor loc() const;
  Tensor scale_tril() const;
  Tensor covariance_matrix() const;
  Tensor precision_matrix() const;

 private:
  explicit MultivariateNormal(std::shared_ptr<const DistributionImpl> impl)
      : Distribution(std::move(impl)) {}
};

// |L^-1 x|^2 over x's last dim, for lower-triangular L (..., n, n) and x (..., n) whose batch
// dims broadcast. x's leading dims beyond L's batch are folded into the columns of one solve
// rather than copying L for each. Shared by the multivariate normal families.
Tensor batch_mahalanobis(const Tensor& scale_tril, const Tensor& x);

}  // namespace ember::dist
