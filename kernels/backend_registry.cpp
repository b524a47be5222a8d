// Picks the launcher for a device. The CUDA launcher exists only in builds with
// EMBER_CUDA; elsewhere asking for it is a clear DeviceError, never a crash.
#include "ember/error.hpp"
#include "kernels/backend.hpp"

namespace ember::kernels {

#if !EMBER_WITH_CUDA
Backend& cuda_backend(int device_index) {
  EMBER_CHECK_DEVICE(false, "cuda:", device_index,
                     " requested, but Ember was built without its CUDA backend (EMBER_CUDA=OFF)");
  return cpu_backend();  // unreachable
}
int cuda_backend_device_count() { return 0; }
#endif

Backend& backend_for(Device device) {
  return device.is_cpu() ? cpu_backend() : cuda_backend(device.index());
}

const char* unary_op_name(UnaryOp op) {
  switch (op) {
#define EMBER_NAME(name) \
  case UnaryOp::name:    \
    return #name;
    EMBER_UNARY_OPS(EMBER_NAME)
#undef EMBER_NAME
  }
  return "?";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
#define EMBER_NAME(name) \
  case BinaryOp::name:   \
    return #name;
    EMBER_BINARY_ARITH_OPS(EMBER_NAME)
    EMBER_BINARY_COMPARE_OPS(EMBER_NAME)
#undef EMBER_NAME
  }
  return "?";
}

const char* log_prob_family_name(LogProbFamily f) {
  switch (f) {
#define EMBER_NAME(name)    \
  case LogProbFamily::name: \
    return #name;
    EMBER_LOG_PROB_FAMILIES(EMBER_NAME)
#undef EMBER_NAME
  }
  return "?";
}

int log_prob_param_count(LogProbFamily f) {
  switch (f) {
#define EMBER_COUNT(name)   \
  case LogProbFamily::name: \
    return name##LogProb<double>::kParams;
    EMBER_LOG_PROB_FAMILIES(EMBER_COUNT)
#undef EMBER_COUNT
  }
  return 0;
}

const char* sample_op_name(SampleOp op) {
  switch (op) {
#define EMBER_NAME(name) \
  case SampleOp::name:   \
    return #name;
    EMBER_SAMPLERS(EMBER_NAME)
#undef EMBER_NAME
  }
  return "?";
}

int sample_param_count(SampleOp op) {
  switch (op) {
#define EMBER_COUNT(name) \
  case SampleOp::name:    \
    return name##Sampler<double>::kParams;
    EMBER_SAMPLERS(EMBER_COUNT)
#undef EMBER_COUNT
  }
  return 0;
}

}  // namespace ember::kernels
