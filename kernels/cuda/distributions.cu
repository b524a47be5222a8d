// Fused distribution kernels on the device: log-prob with partials in one pass, Philox
// samplers and sample gradients, over the functors of kernels/math/dist.
#include <cstdint>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {
namespace {

// Operand k of a fused kernel: out, value, params..., then the optional partials (an absent
// one walks with out's strides and is never written).
template <typename Family, typename T>
struct LogProbFn {
  static constexpr int P = Family::kParams;
  static constexpr int N = 3 + 2 * P;
  T* out;
  const T* value;
  const T* params[P];
  T* grads[P + 1];
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[N]) const {
    T p[P];
    T g[P + 1];
#pragma unroll
    for (int k = 0; k < P; ++k) p[k] = params[k][off[2 + k]];
    out[off[0]] = Family{}(value[off[1]], p, g);
#pragma unroll
    for (int k = 0; k <= P; ++k)
      if (grads[k] != nullptr) grads[k][off[2 + P + k]] = g[k];
  }
};

template <typename Family, typename T>
void launch_log_prob(cudaStream_t stream, const TensorArg& out, const TensorArg& value,
                     const TensorArg* params, const TensorArg* const* grad_args) {
  using Fn = LogProbFn<Family, T>;
  constexpr int P = Fn::P;
  const TensorArg* args[Fn::N];
  Fn fn{};
  args[0] = &out;
  args[1] = &value;
  fn.out = out.ptr<T>();
  fn.value = value.ptr<const T>();
  for (int k = 0; k < P; ++k) {
    args[2 + k] = &params[k];
    fn.params[k] = params[k].ptr<const T>();
  }
  for (int k = 0; k <= P; ++k) {
    args[2 + P + k] = grad_args[k] ? grad_args[k] : &out;
    fn.grads[k] = grad_args[k] ? grad_args[k]->ptr<T>() : nullptr;
  }
  launch_elementwise(stream, args, fn);
}

template <typename Sampler, typename T>
struct SampleFn {
  static constexpr int P = Sampler::kParams;
  T* out;
  const T* params[P + 1];
  RngState rng;
  // out is contiguous: its offset is the element's counter index, as on the CPU.
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[P + 1]) const {
    T p[P + 1];
#pragma unroll
    for (int k = 0; k < P; ++k) p[k] = params[k][off[1 + k]];
    out[off[0]] = Sampler{}(p, rng, off[0]);
  }
};

template <typename Sampler, typename T>
void launch_sample(cudaStream_t stream, const TensorArg& out, const TensorArg* params,
                   RngState rng) {
  using Fn = SampleFn<Sampler, T>;
  constexpr int P = Fn::P;
  const TensorArg* args[P + 1];
  Fn fn{};
  args[0] = &out;
  fn.out = out.ptr<T>();
  fn.rng = rng;
  for (int k = 0; k < P; ++k) {
    args[1 + k] = &params[k];
    fn.params[k] = params[k].ptr<const T>();
  }
  launch_elementwise(stream, args, fn);
}

template <typename Grad, typename T>
struct SampleGradFn {
  static constexpr int P = Grad::kParams;
  T* out;
  const T* sample;
  const T* params[P + 1];
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[P + 2]) const {
    T p[P + 1];
#pragma unroll
    for (int k = 0; k < P; ++k) p[k] = params[k][off[2 + k]];
    out[off[0]] = Grad{}(sample[off[1]], p);
  }
};

template <typename Grad, typename T>
void launch_sample_grad(cudaStream_t stream, const TensorArg& out, const TensorArg& sample,
                        const TensorArg* params) {
  using Fn = SampleGradFn<Grad, T>;
  constexpr int P = Fn::P;
  const TensorArg* args[P + 2];
  Fn fn{};
  args[0] = &out;
  args[1] = &sample;
  fn.out = out.ptr<T>();
  fn.sample = sample.ptr<const T>();
  for (int k = 0; k < P; ++k) {
    args[2 + k] = &params[k];
    fn.params[k] = params[k].ptr<const T>();
  }
  launch_elementwise(stream, args, fn);
}

}  // namespace

void CudaBackend::log_prob(LogProbFamily family, const TensorArg& out, const TensorArg& value,
                           const TensorArg* params, const TensorArg* const* grads) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  dispatch_floating(out.dtype, log_prob_family_name(family), [&]<typename T>() {
    switch (family) {
#define EMBER_CASE(name)                                                     \
  case LogProbFamily::name:                                                  \
    launch_log_prob<name##LogProb<T>, T>(stream, out, value, params, grads); \
    break;
      EMBER_LOG_PROB_FAMILIES(EMBER_CASE)
#undef EMBER_CASE
    }
  });
}

void CudaBackend::sample(SampleOp op, const TensorArg& out, const TensorArg* params, RngState rng) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  dispatch_floating(out.dtype, sample_op_name(op), [&]<typename T>() {
    switch (op) {
#define EMBER_CASE(name)                                          \
  case SampleOp::name:                                            \
    launch_sample<name##Sampler<T>, T>(stream, out, params, rng); \
    break;
      EMBER_SAMPLERS(EMBER_CASE)
#undef EMBER_CASE
    }
  });
}

void CudaBackend::sample_grad(SampleGradOp op, const TensorArg& out, const TensorArg& sample,
                              const TensorArg* params) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  const cudaStream_t stream = ctx_.stream();
  dispatch_floating(out.dtype, "sample_grad", [&]<typename T>() {
    switch (op) {
#define EMBER_CASE(name)                                                     \
  case SampleGradOp::name:                                                   \
    launch_sample_grad<name##SampleGrad<T>, T>(stream, out, sample, params); \
    break;
      EMBER_SAMPLE_GRADS(EMBER_CASE)
#undef EMBER_CASE
      default:
        break;
    }
  });
}

}  // namespace ember::kernels::cuda
