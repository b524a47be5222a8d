// The distribution ops: the fused log-density of a family with its partials, the Philox
// draws of a sampler, and Gamma(alpha, 1) draws (or their logs) with their
// implicit-reparameterization gradient. The families (engine/distributions/) build on these
// as other code builds on sum or matmul.
#include <array>
#include <span>
#include <vector>

#include "engine/internal.hpp"

namespace ember::detail {

Tensor fused_log_prob(kernels::LogProbFamily family, const Tensor& value_in,
                      std::span<const Tensor> params) {
  const char* name = kernels::log_prob_family_name(family);
  EMBER_CHECK(static_cast<int>(params.size()) == kernels::log_prob_param_count(family),
              "internal: ", name, " log_prob takes ", kernels::log_prob_param_count(family),
              " parameters, got ", params.size());
  DType t = is_floating(value_in.dtype()) ? value_in.dtype() : kFloat32;
  Shape shape = value_in.shape();
  for (const Tensor& p : params) {
    check_same_device(name, value_in, p);
    t = promote(t, p.dtype());
    try {
      shape = broadcast_shapes(shape, p.shape(), name);
    } catch (const ShapeError&) {
      EMBER_CHECK_SHAPE(false, name, ".log_prob: value of shape ", value_in.shape(),
                        " does not broadcast with the batch shape (parameter of shape ", p.shape(),
                        ")");
    }
  }
  // The value and the parameters, then the partials of those that need them (computed in the
  // same pass as the value), in fixed arrays: no heap blocks beyond the tensors themselves.
  constexpr int kMax = kernels::kMaxDistParams + 1;
  std::array<Tensor, kMax> inputs;
  struct Saved {  // what the backward keeps: the partials and the operands' shapes
    int count = 0;
    std::array<Tensor, kMax> partials;
    std::array<Shape, kMax> shapes;
  } ops;
  inputs[ops.count++] = value_in.to(t);
  for (const Tensor& p : params) inputs[ops.count++] = p.to(t);
  Tensor out = make_tensor(shape, t, value_in.device());

  const bool record = grad_enabled();
  bool any = false;
  kernels::TensorArg grad_args[kMax];
  const kernels::TensorArg* grad_ptrs[kMax] = {};
  kernels::TensorArg param_args[kernels::kMaxDistParams];
  for (int k = 0; k < ops.count; ++k) {
    ops.shapes[k] = inputs[k].shape();
    if (record && inputs[k].requires_grad()) {
      ops.partials[k] = make_tensor(shape, t, value_in.device());
      grad_args[k] = arg(ops.partials[k]);
      grad_ptrs[k] = &grad_args[k];
      any = true;
    }
    if (k > 0) param_args[k - 1] = operand_arg(inputs[k], shape);
  }
  backend(out).log_prob(family, arg(out), operand_arg(inputs[0], shape), param_args, grad_ptrs);
  if (any) {
    const std::span<const Tensor> recorded(inputs.data(), ops.count);
    record_many(name, recorded, out, [ops = std::move(ops)](const Tensor& g) {
      detail::Grads grads(ops.count);
      for (int k = 0; k < ops.count; ++k)
        if (ops.partials[k].defined()) grads[k] = mul_sum_to(g, ops.partials[k], ops.shapes[k]);
      return grads;
    });
  }
  return out;
}

Tensor draw(kernels::SampleOp op, const Shape& shape, DType dtype, Device device,
            std::initializer_list<Tensor> params, Generator& gen) {
  EMBER_CHECK_DTYPE(is_floating(dtype), kernels::sample_op_name(op),
                    " draws need a floating dtype, got ", dtype);
  EMBER_CHECK_DEVICE(!gen.has_device_offset() || gen.device_offset().device() == device,
                     kernels::sample_op_name(op), ": the generator keeps its offset on ",
                     gen.device_offset().device(), " but the draw is on ", device);
  gen.check_device_owner(kernels::sample_op_name(op));
  const kernels::RngState rng{gen.seed(), gen.next_offset(), gen.device_offset_ptr()};
  Tensor out = make_tensor(shape, dtype, device);
  EMBER_CHECK(static_cast<int>(params.size()) == kernels::sample_param_count(op),
              "internal: ", kernels::sample_op_name(op), " takes ", kernels::sample_param_count(op),
              " parameters, got ", params.size());
  std::array<Tensor, kernels::kMaxDistParams> converted;  // alive until the launch is queued
  kernels::TensorArg args[kernels::kMaxDistParams];
  int k = 0;
  for (const Tensor& p : params) {
    check_same_device(kernels::sample_op_name(op), out, p);
    // Read as it is where its dtype is the draw's (a draw records no gradient); converted
    // from a detached view otherwise, so the conversion records none either.
    if (p.dtype() != dtype) converted[k] = p.detach().to(dtype);
    args[k] = operand_arg(p.dtype() == dtype ? p : converted[k], shape);
    ++k;
  }
  backend(device).sample(op, arg(out), args, rng);
  return out;
}

namespace {
// Draws of `op` (a Gamma(alpha, 1) sampler) with, where alpha requires grad, the gradient
// `vjp` (g * d draw / dalpha in one pass) recorded under `name`, summed back to alpha's shape.
Tensor gamma_draws(kernels::SampleOp op, kernels::SampleGradOp vjp, const char* name,
                   const Tensor& alpha, const Shape& shape, Generator& gen) {
  Tensor x = draw(op, shape, alpha.dtype(), alpha.device(), {alpha}, gen);
  if (!needs_grad({&alpha})) return x;
  // alpha itself is kept (an input of the node, so no cycle), read without its gradient.
  record(name, {alpha}, x, [a = alpha, xs = saved(x), vjp](const Tensor& g) {
    Tensor gx = make_tensor(xs.shape(), xs.dtype(), xs.device());
    const Tensor gc = g.to(xs.dtype());
    const kernels::TensorArg params[] = {broadcast_arg(a, xs.shape()),
                                         broadcast_arg(gc, xs.shape())};
    backend(xs).sample_grad(vjp, arg(gx), arg(xs), params);
    return detail::Grads{sum_to(gx, a.shape())};
  });
  return x;
}
}  // namespace

Tensor standard_gamma(const Tensor& alpha, const Shape& shape, Generator& gen) {
  return gamma_draws(kernels::SampleOp::StandardGamma, kernels::SampleGradOp::StandardGammaVjp,
                     "standard_gamma", alpha, shape, gen);
}

Tensor log_standard_gamma(const Tensor& alpha, const Shape& shape, Generator& gen) {
  return gamma_draws(kernels::SampleOp::LogStandardGamma,
                     kernels::SampleGradOp::LogStandardGammaVjp, "log_standard_gamma", alpha, shape,
                     gen);
}

}  // namespace ember::detail
