// Dropout, LayerNorm and BatchNorm1d.
#include <cmath>

#include "ember/error.hpp"
#include "ember/nn/layers.hpp"
#include "engine/internal.hpp"

namespace ember::nn {
namespace {

// buffer = value, in the buffer's memory (value converted to the buffer's dtype).
void assign(const Tensor& buffer, const Tensor& value) {
  detail::backend(buffer).copy(detail::arg(buffer), detail::broadcast_arg(value, buffer.shape()));
}

}  // namespace

namespace {

TensorOptions no_grad_options(const TensorOptions& opts) {
  return TensorOptions{opts}.with_requires_grad(false);
}

// (x - mean) / sqrt(var + eps) over `dims`, with the biased variance.
Tensor normalize(const Tensor& x, const Tensor& mean, const Tensor& var, double eps) {
  return (x - mean) / sqrt(var + eps);
}

}  // namespace

// ---------------------------------------------------------------------------- Dropout ----
Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must lie in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& input) {
  if (!is_training() || p_ == 0.0) return input;
  if (p_ == 1.0) return input * 0.0;
  const TensorOptions o = TensorOptions{}.with_dtype(input.dtype()).with_device(input.device());
  // Kept with probability 1 - p: a uniform draw in (0, 1) above p.
  const Tensor keep = gt(rand(input.shape(), o, gen_), p_).to(input.dtype());
  return input * keep * (1.0 / (1.0 - p_));
}

// -------------------------------------------------------------------------- LayerNorm ----
LayerNorm::LayerNorm(const Shape& normalized_shape, double eps, bool elementwise_affine,
                     const TensorOptions& opts)
    : normalized_shape_(normalized_shape), eps_(eps) {
  EMBER_CHECK_SHAPE(normalized_shape.size() >= 1 && normalized_shape.numel() > 0,
                    "LayerNorm: normalized_shape must be nonempty, got ", normalized_shape);
  EMBER_CHECK(eps > 0, "LayerNorm: eps must be positive, got ", eps);
  if (elementwise_affine) {
    weight_ = &register_parameter("weight", ones(normalized_shape, no_grad_options(opts)));
    bias_ = &register_parameter("bias", zeros(normalized_shape, no_grad_options(opts)));
  }
}

Tensor LayerNorm::forward(const Tensor& input) {
  const int k = normalized_shape_.size();
  bool fits = input.dim() >= k;
  for (int i = 1; fits && i <= k; ++i) fits = input.size(-i) == normalized_shape_[k - i];
  EMBER_CHECK_SHAPE(fits, "LayerNorm: input of shape ", input.shape(),
                    " does not end in normalized_shape ", normalized_shape_);
  std::vector<int> dims;
  for (int i = 1; i <= k; ++i) dims.push_back(-i);
  const Tensor mu = mean(input, dims, true);
  const Tensor var = mean(square(input - mu), dims, true);
  Tensor y = normalize(input, mu, var, eps_);
  if (weight_ != nullptr) y = y * *weight_ + *bias_;
  return y;
}

// ------------------------------------------------------------------------ BatchNorm1d ----
BatchNorm1d::BatchNorm1d(std::int64_t num_features, const BatchNormOptions& options,
                         const TensorOptions& opts)
    : num_features_(num_features), options_(options) {
  EMBER_CHECK(num_features > 0, "BatchNorm1d: num_features must be positive, got ", num_features);
  EMBER_CHECK(options.eps > 0, "BatchNorm1d: eps must be positive, got ", options.eps);
  EMBER_CHECK(!options.momentum || (*options.momentum >= 0 && *options.momentum <= 1),
              "BatchNorm1d: momentum must lie in [0, 1], got ", options.momentum.value_or(0));
  const TensorOptions o = no_grad_options(opts);
  if (options.affine) {
    weight_ = &register_parameter("weight", ones({num_features}, o));
    bias_ = &register_parameter("bias", zeros({num_features}, o));
  }
  if (options.track_running_stats) {
    running_mean_ = &register_buffer("running_mean", zeros({num_features}, o));
    running_var_ = &register_buffer("running_var", ones({num_features}, o));
    num_batches_tracked_ =
        &register_buffer("num_batches_tracked", zeros({}, TensorOptions{o}.with_dtype(kInt64)));
  }
}

std::int64_t BatchNorm1d::num_batches_tracked() const {
  return num_batches_tracked_ != nullptr ? static_cast<std::int64_t>(num_batches_tracked_->item())
                                         : 0;
}

Tensor BatchNorm1d::forward(const Tensor& input) {
  EMBER_CHECK_SHAPE((input.dim() == 2 || input.dim() == 3) && input.size(1) == num_features_,
                    "BatchNorm1d: input must be (N, ", num_features_, ") or (N, ", num_features_,
                    ", L), got shape ", input.shape());
  // Per-channel statistics broadcast as (C) against (N, C) or (C, 1) against (N, C, L).
  const Shape stat_shape = input.dim() == 2 ? Shape{num_features_} : Shape{num_features_, 1};
  const std::vector<int> dims = input.dim() == 2 ? std::vector<int>{0} : std::vector<int>{0, 2};
  const bool batch_stats = is_training() || running_mean_ == nullptr;
  Tensor mu, var;
  if (batch_stats) {
    const std::int64_t n = input.numel() / num_features_;
    EMBER_CHECK_SHAPE(!is_training() || n > 1, "BatchNorm1d: training needs more than one value ",
                      "per channel, got input of shape ", input.shape());
    mu = mean(input, dims, true);
    var = mean(square(input - mu), dims, true);
    if (is_training() && running_mean_ != nullptr) {
      NoGradGuard no_grad;
      // In place, as torch does: a compiled step's replay reads and writes the same buffers.
      assign(*num_batches_tracked_, *num_batches_tracked_ + 1.0);
      const double m =
          options_.momentum ? *options_.momentum : 1.0 / static_cast<double>(num_batches_tracked());
      const double unbiased = static_cast<double>(n) / static_cast<double>(n - 1);
      assign(*running_mean_, *running_mean_ * (1.0 - m) + mu.detach().reshape({num_features_}) * m);
      assign(*running_var_,
             *running_var_ * (1.0 - m) + var.detach().reshape({num_features_}) * (unbiased * m));
    }
  } else {
    mu = running_mean_->reshape(stat_shape);
    var = running_var_->reshape(stat_shape);
  }
  Tensor y = normalize(input, mu, var, options_.eps);
  if (weight_ != nullptr) y = y * weight_->reshape(stat_shape) + bias_->reshape(stat_shape);
  return y;
}

}  // namespace ember::nn
