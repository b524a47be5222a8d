// The lists of fused distribution kernels both launchers instantiate: log-prob families,
// samplers and sample gradients. A family joins by one entry in its group's list.
#pragma once

#include <cstdint>

#include "kernels/math/distributions/continuous.hpp"
#include "kernels/math/distributions/discrete.hpp"
#include "kernels/math/distributions/gamma.hpp"
#include "kernels/math/distributions/samplers.hpp"

namespace ember::kernels {

#define EMBER_LOG_PROB_FAMILIES(X) \
  EMBER_LOG_PROB_CONTINUOUS(X)     \
  EMBER_LOG_PROB_GAMMA(X)          \
  EMBER_LOG_PROB_DISCRETE(X)

#define EMBER_SAMPLERS(X) \
  EMBER_SAMPLERS_BASIC(X) \
  EMBER_SAMPLERS_GAMMA(X) \
  EMBER_SAMPLERS_DISCRETE(X)

// Largest parameter count of any log-prob family or sampler.
inline constexpr int kMaxDistParams = 3;

enum class LogProbFamily : std::uint8_t {
#define EMBER_ENUM_ENTRY(name) name,
  EMBER_LOG_PROB_FAMILIES(EMBER_ENUM_ENTRY)
#undef EMBER_ENUM_ENTRY
};

enum class SampleOp : std::uint8_t {
#define EMBER_ENUM_ENTRY(name) name,
  EMBER_SAMPLERS(EMBER_ENUM_ENTRY)
#undef EMBER_ENUM_ENTRY
};

// Derivatives of a draw with respect to its parameters (implicit reparameterization).
enum class SampleGradOp : std::uint8_t {
#define EMBER_ENUM_ENTRY(name) name,
  EMBER_SAMPLE_GRADS(EMBER_ENUM_ENTRY)
#undef EMBER_ENUM_ENTRY
};

const char* log_prob_family_name(LogProbFamily f);
int log_prob_param_count(LogProbFamily f);
const char* sample_op_name(SampleOp op);
int sample_param_count(SampleOp op);
int sample_grad_param_count(SampleGradOp op);

}  // namespace ember::kernels
