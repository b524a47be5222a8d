// Differentiable Gamma(alpha, 1) draws: the StandardGamma sampler forward and the
// StandardGamma sample gradient (implicit reparameterization) backward.
#include "engine/distributions/standard_gamma.hpp"

#include "engine/distributions/dist_util.hpp"

namespace ember::dist::detail {

Tensor standard_gamma(const Tensor& alpha, const Shape& shape, Generator& gen) {
  Tensor x =
      draw(kernels::SampleOp::StandardGamma, shape, alpha.dtype(), alpha.device(), {alpha}, gen);
  if (!ember::detail::needs_grad({&alpha})) return x;
  ember::detail::record(
      "standard_gamma", {alpha}, x,
      [a = alpha.detach(), xs = ember::detail::saved(x)](const Tensor& g) {
        Tensor dx = ember::detail::make_tensor(xs.shape(), xs.dtype(), xs.device());
        const kernels::TensorArg params[] = {ember::detail::broadcast_arg(a, xs.shape())};
        ember::detail::backend(xs).sample_grad(kernels::SampleGradOp::StandardGamma,
                                               ember::detail::arg(dx), ember::detail::arg(xs),
                                               params);
        return std::vector<Tensor>{sum_to(g * dx, a.shape())};
      });
  return x;
}

}  // namespace ember::dist::detail
