// LowRankMultivariateNormal(loc, cov_factor, cov_diag): the Gaussian over vectors whose
// covariance is W W^T + diag(D) for an (n, k) factor W, evaluated in O(n k^2) through the
// Woodbury identity and the matrix determinant lemma; reparameterized as
// loc + W eps_k + sqrt(D) eps_n.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

class LowRankMultivariateNormal : public Distribution {
 public:
  // loc (..., n), cov_factor (..., n, k), cov_diag (..., n) positive (checked while validation
  // is on); the batch dims of the three broadcast.
  LowRankMultivariateNormal(const Tensor& loc, const Tensor& cov_factor, const Tensor& cov_diag);

  // Each shaped batch_shape + its own trailing dims.
  Tensor loc() const;
  Tensor cov_factor() const;
  Tensor cov_diag() const;
  // W W^T + diag(D), batch_shape + (n, n).
  Tensor covariance_matrix() const;
};

}  // namespace ember::dist
