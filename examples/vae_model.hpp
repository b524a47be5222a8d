// The variational autoencoder of Pyro's VAE tutorial: its encoder and decoder networks and its
// model/guide pair, shared by the `vae` example and the VAE step benchmark (bench/vae_bench).
//
//   p(z) = N(0, I),   p(x | z) = Bernoulli(decoder(z))   over the 784 pixels of an image
//   q(z | x) = N(encoder_loc(x), encoder_scale(x))
//
// The decoder returns logits rather than probabilities: the same distribution as the
// tutorial's sigmoid output, scored without computing log(sigmoid) by hand. Pixel intensities
// in [0, 1] are scored as the tutorial does, with the Bernoulli's validation off
// (PyTorch's validate_args=False).
#pragma once

#include <cstdint>
#include <ember/ember.hpp>
#include <memory>

namespace ember::examples {

inline constexpr std::int64_t kImagePixels = 784;  // 28 x 28

// x -> (loc, scale) of q(z | x), with the tutorial's layer names (fc1, fc21, fc22), so
// a state dict has the keys of the tutorial's PyTorch module.
class VaeEncoder : public nn::Module {
 public:
  struct Out {
    Tensor loc, scale;
  };
  VaeEncoder(std::int64_t z_dim, std::int64_t hidden, const TensorOptions& opts, Generator* gen)
      : fc1_(register_module("fc1",
                             std::make_shared<nn::Linear>(kImagePixels, hidden, true, opts, gen))),
        fc21_(
            register_module("fc21", std::make_shared<nn::Linear>(hidden, z_dim, true, opts, gen))),
        fc22_(register_module("fc22",
                              std::make_shared<nn::Linear>(hidden, z_dim, true, opts, gen))) {}

  Out operator()(const Tensor& x) {
    const Tensor h = softplus((*fc1_)(x));
    return {(*fc21_)(h), exp((*fc22_)(h))};
  }

 private:
  std::shared_ptr<nn::Linear> fc1_, fc21_, fc22_;
};

// z -> the logits of the 784 pixels' Bernoulli distributions.
class VaeDecoder : public nn::Module {
 public:
  VaeDecoder(std::int64_t z_dim, std::int64_t hidden, const TensorOptions& opts, Generator* gen)
      : fc1_(register_module("fc1", std::make_shared<nn::Linear>(z_dim, hidden, true, opts, gen))),
        fc21_(register_module(
            "fc21", std::make_shared<nn::Linear>(hidden, kImagePixels, true, opts, gen))) {}

  Tensor forward(const Tensor& z) override { return (*fc21_)(softplus((*fc1_)(z))); }

 private:
  std::shared_ptr<nn::Linear> fc1_, fc21_;
};

struct VaeOptions {
  std::int64_t z_dim = 50;
  std::int64_t hidden = 400;
  TensorOptions tensor_options;
  // Draws the networks' initial weights (PyTorch's initializations); unset: the calling
  // thread's generator.
  Generator* gen = nullptr;
};

class Vae {
 public:
  explicit Vae(const VaeOptions& options = {})
      : options_(options),
        encoder_(options.z_dim, options.hidden, options.tensor_options, options.gen),
        decoder_(options.z_dim, options.hidden, options.tensor_options, options.gen) {}

  // x: a batch of images, (batch, 784) with intensities in [0, 1].
  void model(const Tensor& x) {
    module("decoder", decoder_);
    auto data = plate("data", x.size(0));
    const Tensor z = sample(
        "latent",
        dist::Normal(zeros({x.size(0), options_.z_dim}, options_.tensor_options), 1.0).to_event(1));
    sample("obs", dist::Bernoulli::from_logits(decoder_(z)).validate_args(false).to_event(1), x);
  }

  void guide(const Tensor& x) {
    module("encoder", encoder_);
    auto data = plate("data", x.size(0));
    const auto [loc, scale] = encoder_(x);
    sample("latent", dist::Normal(loc, scale).to_event(1));
  }

  // The decoder's pixel probabilities at the encoder's mean code of each image.
  Tensor reconstruct(const Tensor& x) {
    NoGradGuard no_grad;
    return sigmoid(decoder_(encoder_(x).loc));
  }
  // The decoder's pixel probabilities at codes z drawn from the prior.
  Tensor generate(std::int64_t count, Generator* gen) {
    NoGradGuard no_grad;
    return sigmoid(decoder_(randn({count, options_.z_dim}, options_.tensor_options, gen)));
  }

  VaeEncoder& encoder() { return encoder_; }
  VaeDecoder& decoder() { return decoder_; }

 private:
  VaeOptions options_;
  VaeEncoder encoder_;
  VaeDecoder decoder_;
};

}  // namespace ember::examples
