// torch.nn.init's draws, as fresh tensors from an explicit generator.
#include "ember/nn/init.hpp"

#include <cmath>

#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::nn::init {

std::int64_t fan_in(const Shape& shape) {
  EMBER_CHECK_SHAPE(shape.size() >= 1, "init::fan_in: a 0-d shape has no fan-in");
  if (shape.size() == 1) return shape[0];
  std::int64_t receptive = 1;
  for (int d = 2; d < shape.size(); ++d) receptive *= shape[d];
  return shape[1] * receptive;
}

Tensor uniform(const Shape& shape, double lo, double hi, const TensorOptions& opts,
               Generator* gen) {
  EMBER_CHECK(lo <= hi, "init::uniform: lo ", lo, " exceeds hi ", hi);
  const TensorOptions o = TensorOptions{opts}.with_requires_grad(false);
  return rand(shape, o, gen) * (hi - lo) + lo;
}

Tensor normal(const Shape& shape, double mean, double std, const TensorOptions& opts,
              Generator* gen) {
  EMBER_CHECK(std >= 0, "init::normal: std must be nonnegative, got ", std);
  const TensorOptions o = TensorOptions{opts}.with_requires_grad(false);
  return randn(shape, o, gen) * std + mean;
}

Tensor kaiming_uniform(const Shape& shape, double a, const TensorOptions& opts, Generator* gen) {
  const std::int64_t fan = fan_in(shape);
  EMBER_CHECK(fan > 0, "init::kaiming_uniform: shape ", shape, " has no inputs");
  const double bound = std::sqrt(6.0 / ((1.0 + a * a) * static_cast<double>(fan)));
  return uniform(shape, -bound, bound, opts, gen);
}

}  // namespace ember::nn::init
