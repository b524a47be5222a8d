// Picks the launcher for a device, and the names and parameter counts of the ops in the
// lists of kernels/math (for error messages and argument checks). The CUDA launcher exists
// only in builds with EMBER_CUDA; elsewhere asking for it is a clear DeviceError, never a
// crash.
#include <atomic>

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

namespace {
std::atomic<bool> g_stream_per_thread{false};
}  // namespace

void set_stream_per_thread(bool on) { g_stream_per_thread.store(on, std::memory_order_relaxed); }
bool stream_per_thread() { return g_stream_per_thread.load(std::memory_order_relaxed); }

Backend& backend_for(Device device) {
  return device.is_cpu() ? cpu_backend() : cuda_backend(device.index());
}

namespace {

#define EMBER_NAME_OF(name) #name,
constexpr const char* kUnaryOpNames[] = {EMBER_UNARY_OPS(EMBER_NAME_OF)};
constexpr const char* kBinaryOpNames[] = {EMBER_BINARY_ARITH_OPS(EMBER_NAME_OF)
                                              EMBER_BINARY_COMPARE_OPS(EMBER_NAME_OF)};
constexpr const char* kLogProbFamilyNames[] = {EMBER_LOG_PROB_FAMILIES(EMBER_NAME_OF)};
constexpr const char* kSampleOpNames[] = {EMBER_SAMPLERS(EMBER_NAME_OF)};
#undef EMBER_NAME_OF

#define EMBER_LOG_PROB_PARAMS(name) name##LogProb<double>::kParams,
constexpr int kLogProbParams[] = {EMBER_LOG_PROB_FAMILIES(EMBER_LOG_PROB_PARAMS)};
#undef EMBER_LOG_PROB_PARAMS
#define EMBER_SAMPLER_PARAMS(name) name##Sampler<double>::kParams,
constexpr int kSamplerParams[] = {EMBER_SAMPLERS(EMBER_SAMPLER_PARAMS)};
#undef EMBER_SAMPLER_PARAMS
#define EMBER_SAMPLE_GRAD_PARAMS(name) name##SampleGrad<double>::kParams,
constexpr int kSampleGradParams[] = {EMBER_SAMPLE_GRADS(EMBER_SAMPLE_GRAD_PARAMS)};
#undef EMBER_SAMPLE_GRAD_PARAMS

// The entry of a table indexed by an op's enum value; "?" (or 0) past its end.
template <typename T, std::size_t N, typename E>
T entry(const T (&table)[N], E e, T otherwise) {
  const auto i = static_cast<std::size_t>(e);
  return i < N ? table[i] : otherwise;
}

}  // namespace

const char* unary_op_name(UnaryOp op) { return entry(kUnaryOpNames, op, "?"); }
const char* binary_op_name(BinaryOp op) { return entry(kBinaryOpNames, op, "?"); }
const char* log_prob_family_name(LogProbFamily f) { return entry(kLogProbFamilyNames, f, "?"); }
int log_prob_param_count(LogProbFamily f) { return entry(kLogProbParams, f, 0); }
const char* sample_op_name(SampleOp op) { return entry(kSampleOpNames, op, "?"); }
int sample_param_count(SampleOp op) { return entry(kSamplerParams, op, 0); }
int sample_grad_param_count(SampleGradOp op) { return entry(kSampleGradParams, op, 0); }

}  // namespace ember::kernels
