// The definitions of DistributionArea: fused log-densities, samplers and sample gradients over
// the launcher's loop (kernels/common/launcher.hpp), included only by the
// launcher source file that instantiates it.
#pragma once

#include <cstdint>

#include "kernels/common/areas/run.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/elementwise_bodies.hpp"
#include "kernels/common/launcher.hpp"
#include "kernels/common/op_lists.hpp"

namespace ember::kernels {

namespace detail {
// One log-density loop: `family` (a stateless family, or one holding values computed once).
template <typename Family, typename T, typename Loop>
void run_log_prob(Loop& loop, const Family& family, const TensorArg& out, const TensorArg& value,
                  const TensorArg* params, const TensorArg* const* grads) {
  using Body = LogProbBody<Family, T>;
  constexpr int P = Body::P;
  const TensorArg* args[Body::kOperands];
  Body body{out.ptr<T>(), operand_ptr<T>(value, loop), {}, {}, family};
  args[0] = &out;
  args[1] = &value;
  bind_params<T>(P, params, loop, args + 2, body.params);
  for (int k = 0; k <= P; ++k) {
    args[2 + P + k] = grads[k] ? grads[k] : &out;
    body.grads[k] = grads[k] ? grads[k]->ptr<T>() : nullptr;
  }
  run_over(loop, args, body);
}
}  // namespace detail

template <typename Impl>
void DistributionArea<Impl>::log_prob(LogProbFamily family, const TensorArg& out,
                                      const TensorArg& value, const TensorArg* params,
                                      const TensorArg* const* grads) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_floating(out.dtype, log_prob_family_name(family), [&]<typename T>() {
    visit_op<T>(LogProbFamilies{}, static_cast<int>(family), [&]<typename Family>() {
      // A family with a hoisted form (Family::Fixed) takes it when the parameter that form
      // fixes is a scalar operand: its per-element work on that value is done once here.
      if constexpr (requires { typename Family::Fixed; }) {
        const TensorArg& fixed = params[Family::kFixedParam];
        if (fixed.is_scalar()) {
          detail::run_log_prob<typename Family::Fixed, T>(
              loop, Family::Fixed::make(loop.template scalar_value<T>(fixed)), out, value, params,
              grads);
          return;
        }
      }
      detail::run_log_prob<Family, T>(loop, Family{}, out, value, params, grads);
    });
  });
}

template <typename Impl>
void DistributionArea<Impl>::sample(SampleOp op, const TensorArg& out, const TensorArg* params,
                                    RngState rng) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_floating(out.dtype, sample_op_name(op), [&]<typename T>() {
    visit_op<T>(Samplers{}, static_cast<int>(op), [&]<typename Sampler>() {
      using Body = SampleBody<Sampler, T>;
      const TensorArg* args[Body::kOperands];
      Body body{out.ptr<T>(), {}, rng};
      args[0] = &out;
      bind_params<T>(Body::P, params, loop, args + 1, body.params);
      run_over(loop, args, body);
    });
  });
}

template <typename Impl>
void DistributionArea<Impl>::sample_grad(SampleGradOp op, const TensorArg& out,
                                         const TensorArg& sample, const TensorArg* params) {
  auto loop = static_cast<Impl*>(this)->loop();
  dispatch_floating(out.dtype, "sample_grad", [&]<typename T>() {
    visit_op<T>(SampleGrads{}, static_cast<int>(op), [&]<typename Grad>() {
      using Body = SampleGradBody<Grad, T>;
      const TensorArg* args[Body::kOperands];
      Body body{out.ptr<T>(), sample.ptr<const T>(), {}};
      args[0] = &out;
      args[1] = &sample;
      bind_params<T>(Body::P, params, loop, args + 2, body.params);
      run_over(loop, args, body);
    });
  });
}

}  // namespace ember::kernels
