// GRUCell, with torch's gate order (r, z, n) and parameter names.
#include <cmath>

#include "ember/error.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/layers.hpp"

namespace ember::nn {

GRUCell::GRUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias,
                 const TensorOptions& opts, Generator* gen)
    : hidden_size_(hidden_size) {
  EMBER_CHECK(input_size > 0 && hidden_size > 0,
              "GRUCell: input_size and hidden_size must be positive, got ", input_size, " and ",
              hidden_size);
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  auto draw = [&](const Shape& shape) { return init::uniform(shape, -bound, bound, opts, gen); };
  // torch draws them in registration order: weight_ih, weight_hh, bias_ih, bias_hh.
  weight_ih_ = &register_parameter("weight_ih", draw({3 * hidden_size, input_size}));
  weight_hh_ = &register_parameter("weight_hh", draw({3 * hidden_size, hidden_size}));
  if (bias) {
    bias_ih_ = &register_parameter("bias_ih", draw({3 * hidden_size}));
    bias_hh_ = &register_parameter("bias_hh", draw({3 * hidden_size}));
  }
}

Tensor GRUCell::forward(const Tensor& input, const Tensor& hidden) {
  const std::int64_t h = hidden_size_, in = weight_ih_->size(1);
  EMBER_CHECK_SHAPE((input.dim() == 1 || input.dim() == 2) && input.size(-1) == in,
                    "GRUCell: input must be (N, ", in, ") or (", in, "), got shape ",
                    input.shape());
  Shape hidden_shape = input.shape();
  hidden_shape[hidden_shape.size() - 1] = h;
  const Tensor hx =
      hidden.defined()
          ? hidden
          : zeros(hidden_shape,
                  TensorOptions{}.with_dtype(input.dtype()).with_device(input.device()));
  EMBER_CHECK_SHAPE(hx.shape() == hidden_shape, "GRUCell: hidden state of shape ", hx.shape(),
                    " does not fit input of shape ", input.shape(), " (expected ", hidden_shape,
                    ")");
  Tensor gi = matmul(input, weight_ih_->t());
  Tensor gh = matmul(hx, weight_hh_->t());
  if (bias_ih_ != nullptr) {
    gi = gi + *bias_ih_;
    gh = gh + *bias_hh_;
  }
  auto gate = [h](const Tensor& g, int k) { return g.narrow(-1, k * h, h); };
  const Tensor r = sigmoid(gate(gi, 0) + gate(gh, 0));
  const Tensor z = sigmoid(gate(gi, 1) + gate(gh, 1));
  const Tensor n = tanh(gate(gi, 2) + r * gate(gh, 2));
  return n + z * (hx - n);  // (1 - z) n + z h
}

}  // namespace ember::nn
