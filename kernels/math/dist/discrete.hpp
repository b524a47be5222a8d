// Discrete families: log-probability mass functions (with partials in the parameters;
// the value's partial is 0) and samplers, for host and device.
#pragma once

#include <math.h>

#include "kernels/common/macros.hpp"
#include "kernels/math/dist/samplers.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {

#define EMBER_LOG_PROB_DISCRETE(X)
#define EMBER_SAMPLERS_DISCRETE(X)

}  // namespace ember::kernels
