// PyTorch's parameter initializations (torch.nn.init), as functions that make a fresh tensor
// from an explicit Generator (null: the calling thread's default generator), so that a
// network built with Generator(seed) is the same network on every run and every device.
#pragma once

#include <cstdint>

#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::nn::init {

// fan_in of a weight of this shape: shape[1] times the receptive field (the product of the
// dims after the first two); shape[0] for a 1-d shape.
std::int64_t fan_in(const Shape& shape);

// Uniform in (lo, hi) and normal (mean, std) draws.
Tensor uniform(const Shape& shape, double lo, double hi, const TensorOptions& opts = {},
               Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double std, const TensorOptions& opts = {},
              Generator* gen = nullptr);

// Kaiming (He) uniform for a leaky-ReLU gain with slope a: uniform in (-bound, bound) with
// bound = sqrt(6 / ((1 + a^2) fan_in)). torch.nn.Linear and Conv2d use a = sqrt(5), which
// makes bound = 1 / sqrt(fan_in).
Tensor kaiming_uniform(const Shape& shape, double a, const TensorOptions& opts = {},
                       Generator* gen = nullptr);

}  // namespace ember::nn::init
