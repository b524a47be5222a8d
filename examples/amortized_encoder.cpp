// Amortized inference with an encoder network, the guide of a VAE in miniature. Each data
// point x_i in R^3 comes from a latent z_i ~ N(0, 1) as x_i ~ N(z_i a, s^2 I). The guide is
// q(z_i | x_i) = N(loc(x_i), scale(x_i)) with loc and scale from one encoder network that
// returns both (a multi-output forward); SVI fits it on mini-batches. The exact posterior is
// normal, with precision 1 + |a|^2 / s^2 and mean (a . x_i / s^2) / precision, so the
// example prints the encoder's answer beside the exact one for a few new points.
//
//   amortized_encoder [steps]       (default 3000)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ember/ember.hpp>
#include <memory>

using namespace ember;

namespace {

constexpr std::int64_t kPoints = 1000, kBatch = 100;
constexpr double kNoise = 0.5;
const TensorOptions kF64 = TensorOptions{}.with_dtype(kFloat64);

// x -> (loc, scale): a shared hidden layer and one head per output.
class Encoder : public nn::Module {
 public:
  struct Out {
    Tensor loc, scale;
  };
  explicit Encoder(Generator* gen)
      : hidden_(register_module(
            "hidden", std::make_shared<nn::MLP>(std::vector<std::int64_t>{3, 32},
                                                nn::MLPOptions{.output_activation = softplus_fn(),
                                                               .tensor_options = kF64,
                                                               .gen = gen}))),
        loc_(register_module("loc", std::make_shared<nn::Linear>(32, 1, true, kF64, gen))),
        scale_(register_module("scale", std::make_shared<nn::Linear>(32, 1, true, kF64, gen))) {}

  Out operator()(const Tensor& x) {
    const Tensor h = (*hidden_)(x);
    return {(*loc_)(h).squeeze(-1), softplus((*scale_)(h)).squeeze(-1) + 1e-3};
  }

 private:
  static nn::TensorFn softplus_fn() {
    return [](const Tensor& t) { return softplus(t); };
  }
  std::shared_ptr<nn::MLP> hidden_;
  std::shared_ptr<nn::Linear> loc_, scale_;
};

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 3000;
  set_rng_seed(0);
  clear_param_store();
  Generator gen(3);
  const Tensor a = tensor({1.0, -0.5, 0.8}, kF64);
  const Tensor x =
      randn({kPoints}, kF64, &gen).unsqueeze(1) * a + randn({kPoints, 3}, kF64, &gen) * kNoise;
  Encoder encoder(&gen);

  auto model = [&](const Tensor& data) {
    auto points = plate("points", kPoints, {.subsample_size = kBatch});
    const Tensor z = sample("z", dist::Normal(zeros({}, kF64), 1.0));
    sample("x", dist::Normal(z.unsqueeze(-1) * a, kNoise).to_event(1), points.subsample(data));
  };
  auto guide = [&](const Tensor& data) {
    module("encoder", encoder);
    auto points = plate("points", kPoints, {.subsample_size = kBatch});
    const auto [loc, scale] = encoder(points.subsample(data));
    sample("z", dist::Normal(loc, scale));
  };
  SVI svi(model, guide, optim::Adam({.lr = 0.005}), Trace_ELBO());
  const RunResult r = svi.run(steps, x);
  std::printf("%d SVI steps in %.2f s; encoder of %lld parameters\n", static_cast<int>(r.steps),
              r.seconds, static_cast<long long>(encoder.num_parameters()));

  const double precision = 1 + (1.0 + 0.25 + 0.64) / (kNoise * kNoise);
  const Tensor x_new =
      tensor({{1.0, 0.0, 0.0}, {0.5, -1.0, 2.0}, {-1.0, 0.3, -0.4}, {0, 0, 0}}, kF64);
  NoGradGuard no_grad;
  const auto [loc, scale] = encoder(x_new);
  const auto exact = (matmul(x_new, a) / (kNoise * kNoise) / precision).to_vector<double>();
  const auto lv = loc.to_vector<double>(), sv = scale.to_vector<double>();
  std::printf("\n%-22s %10s %10s %10s %10s\n", "x", "loc", "exact", "scale", "exact");
  for (int i = 0; i < 4; ++i) {
    const auto xi = x_new.select(0, i).to_vector<double>();
    std::printf("(%5.2f, %5.2f, %5.2f)  %10.3f %10.3f %10.3f %10.3f\n", xi[0], xi[1], xi[2], lv[i],
                exact[i], sv[i], 1 / std::sqrt(precision));
  }
  return 0;
}
