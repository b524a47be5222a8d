// Differentiable Gamma(alpha, 1) draws, the reparameterized source of the Gamma, Beta,
// Dirichlet and StudentT families.
#pragma once

#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::dist::detail {

// Draws of Gamma(alpha, 1) with shape `shape` (alpha broadcasts to it), by the
// StandardGamma sampler (kernels/math/distributions/gamma.hpp). When alpha requires grad the draw is
// recorded with the implicit reparameterization gradient: grad_alpha = g * dx/dalpha, summed
// back to alpha's shape.
Tensor standard_gamma(const Tensor& alpha, const Shape& shape, Generator& gen);

}  // namespace ember::dist::detail
