// The layers, each as its torch.nn namesake: the same forward, the same parameter and buffer
// names and shapes, and the same default initialization, drawn from an explicit Generator
// when one is given (else the calling thread's default generator).
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/nn/module.hpp"
#include "ember/ops.hpp"
#include "ember/random.hpp"

namespace ember::nn {

using TensorFn = std::function<Tensor(const Tensor&)>;

// ---- linear ----

// y = x W^T + b for x of shape (..., in_features). W (out, in) is Kaiming-uniform with
// a = sqrt(5) and b uniform in (-1/sqrt(in), 1/sqrt(in)), as torch.nn.Linear (both bounds
// come to 1/sqrt(in_features)).
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true,
         const TensorOptions& opts = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& input) override;
  const Tensor& weight() const { return *weight_; }
  const Tensor* bias() const { return bias_; }

 private:
  Tensor* weight_;
  Tensor* bias_ = nullptr;
};

// A lookup table: indices (int64, any shape) -> rows of weight (num_embeddings, dim), which
// starts N(0, 1) as torch.nn.Embedding. The row at padding_idx starts at zero and gets no
// gradient.
class Embedding : public Module {
 public:
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim,
            std::optional<std::int64_t> padding_idx = std::nullopt, const TensorOptions& opts = {},
            Generator* gen = nullptr);
  Tensor forward(const Tensor& indices) override;
  const Tensor& weight() const { return *weight_; }

 private:
  Tensor* weight_;
  std::optional<std::int64_t> padding_idx_;
};

// ---- containers ----

// A parameterless module that applies a function (an activation between layers):
// Activation(relu), Activation([](const Tensor& x) { return leaky_relu(x, 0.2); }).
class Activation : public Module {
 public:
  explicit Activation(TensorFn fn);
  Tensor forward(const Tensor& input) override { return fn_(input); }

 private:
  TensorFn fn_;
};

template <typename M>
concept ModuleValue = std::derived_from<std::remove_cvref_t<M>, Module>;
template <typename P>
concept ModulePointer = std::convertible_to<P, std::shared_ptr<Module>>;

// Modules applied in order, registered as "0", "1", ... as torch.nn.Sequential, so
// Sequential(Linear, Activation, Linear) has the keys "0.weight", "0.bias", "2.weight", ...
// Give modules by value (moved in) or as shared pointers (shared with the caller).
class Sequential : public Module {
 public:
  Sequential() = default;
  template <typename... Ms>
  requires(sizeof...(Ms) > 0 &&
           ((ModuleValue<Ms> || ModulePointer<Ms>)&&...)) explicit Sequential(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  template <typename M>
  requires ModuleValue<M>
  void push_back(M&& module) {
    push_back(std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(module)));
  }
  void push_back(std::shared_ptr<Module> module);

  std::size_t size() const { return children().size(); }
  Module& operator[](std::size_t i) const { return *children().at(i).second; }
  Tensor forward(const Tensor& input) override;
};

struct MLPOptions {
  TensorFn activation = relu;  // between layers
  TensorFn output_activation;  // after the last layer; none when empty
  bool bias = true;
  TensorOptions tensor_options;
  Generator* gen = nullptr;
};

// A multilayer perceptron: Linear(sizes[0], sizes[1]), activation, Linear(sizes[1],
// sizes[2]), ..., as a Sequential (keys "0.weight", "2.weight", ... as torch's Sequential of
// the same layers). MLP({784, 400, 20}) has one hidden layer of 400.
class MLP : public Sequential {
 public:
  explicit MLP(const std::vector<std::int64_t>& sizes, const MLPOptions& opts = {});
};

// ---- regularization and normalization ----

// Zeroes each element with probability p and scales the others by 1 / (1 - p), in training
// mode only; the identity in eval mode. Draws from `gen`, else the calling thread's default
// generator (so the seed handler and GeneratorScope govern it).
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& input) override;
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

// Normalizes over the trailing dims `normalized_shape` (mean and biased variance), then
// scales by weight and shifts by bias (ones and zeros at first), as torch.nn.LayerNorm.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(const Shape& normalized_shape, double eps = 1e-5,
                     bool elementwise_affine = true, const TensorOptions& opts = {});
  Tensor forward(const Tensor& input) override;

 private:
  Shape normalized_shape_;
  double eps_;
  Tensor* weight_ = nullptr;
  Tensor* bias_ = nullptr;
};

struct BatchNormOptions {
  double eps = 1e-5;
  // The running statistics' update weight; nullopt: a cumulative average over the batches
  // seen (num_batches_tracked), as torch's momentum=None.
  std::optional<double> momentum = 0.1;
  bool affine = true;               // a learned weight (ones) and bias (zeros)
  bool track_running_stats = true;  // buffers running_mean, running_var, num_batches_tracked
};

// Batch normalization of (N, C) or (N, C, L) inputs per channel, as torch.nn.BatchNorm1d.
// In training mode it normalizes by the batch's mean and biased variance and updates the
// running statistics (running_var with the unbiased variance); in eval mode it uses them.
class BatchNorm1d : public Module {
 public:
  explicit BatchNorm1d(std::int64_t num_features, const BatchNormOptions& options = {},
                       const TensorOptions& opts = {});
  Tensor forward(const Tensor& input) override;
  const Tensor& running_mean() const { return *running_mean_; }
  const Tensor& running_var() const { return *running_var_; }
  std::int64_t num_batches_tracked() const;

 private:
  std::int64_t num_features_;
  BatchNormOptions options_;
  Tensor* weight_ = nullptr;
  Tensor* bias_ = nullptr;
  Tensor* running_mean_ = nullptr;
  Tensor* running_var_ = nullptr;
  Tensor* num_batches_tracked_ = nullptr;
};

// ---- convolution ----

// A 2-d convolution layer over (N, C, H, W) or (C, H, W), as torch.nn.Conv2d: weight
// (out, in / groups, KH, KW) Kaiming-uniform with a = sqrt(5), bias uniform in
// (-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in / groups * KH * KW. See conv2d (ops.hpp).
class Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels,
         std::array<std::int64_t, 2> kernel_size, const Conv2dOptions& conv = {}, bool bias = true,
         const TensorOptions& opts = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& input) override;
  const Tensor& weight() const { return *weight_; }
  const Tensor* bias() const { return bias_; }

 private:
  Conv2dOptions conv_;
  Tensor* weight_;
  Tensor* bias_ = nullptr;
};

// ---- recurrent ----

// One step of a gated recurrent unit, with torch.nn.GRUCell's equations and parameters
// (weight_ih (3H, I), weight_hh (3H, H), bias_ih, bias_hh (3H), gates in the order r, z, n,
// all uniform in (-1/sqrt(H), 1/sqrt(H))):
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
// Inputs (N, I) with hidden (N, H), or unbatched (I) with (H); no hidden state means zeros.
class GRUCell : public Module {
 public:
  GRUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true,
          const TensorOptions& opts = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& input, const Tensor& hidden);
  Tensor forward(const Tensor& input) override { return forward(input, Tensor()); }
  Tensor operator()(const Tensor& input, const Tensor& hidden) { return forward(input, hidden); }
  using Module::operator();
  std::int64_t hidden_size() const { return hidden_size_; }

 private:
  std::int64_t hidden_size_;
  Tensor* weight_ih_;
  Tensor* weight_hh_;
  Tensor* bias_ih_ = nullptr;
  Tensor* bias_hh_ = nullptr;
};

}  // namespace ember::nn
