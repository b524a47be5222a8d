// Conv2d: torch's parameters and initialization over ember::conv2d.
#include <cmath>

#include "ember/error.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/layers.hpp"

namespace ember::nn {

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels,
               std::array<std::int64_t, 2> kernel_size, const Conv2dOptions& conv, bool bias,
               const TensorOptions& opts, Generator* gen)
    : conv_(conv) {
  EMBER_CHECK(in_channels > 0 && out_channels > 0 && kernel_size[0] > 0 && kernel_size[1] > 0,
              "Conv2d: channels and kernel sizes must be positive, got in_channels ", in_channels,
              ", out_channels ", out_channels, ", kernel (", kernel_size[0], ", ", kernel_size[1],
              ")");
  EMBER_CHECK(conv.groups >= 1 && in_channels % conv.groups == 0 && out_channels % conv.groups == 0,
              "Conv2d: groups (", conv.groups, ") must divide in_channels (", in_channels,
              ") and out_channels (", out_channels, ")");
  const Shape shape{out_channels, in_channels / conv.groups, kernel_size[0], kernel_size[1]};
  weight_ = &register_parameter("weight", init::kaiming_uniform(shape, std::sqrt(5.0), opts, gen));
  if (bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(shape)));
    bias_ = &register_parameter("bias", init::uniform({out_channels}, -bound, bound, opts, gen));
  }
}

Tensor Conv2d::forward(const Tensor& input) {
  return conv2d(input, *weight_, bias_ != nullptr ? *bias_ : Tensor(), conv_);
}

}  // namespace ember::nn
