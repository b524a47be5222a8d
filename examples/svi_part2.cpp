// Pyro's "SVI Part II" end to end: conditional independence, subsampling and amortization on
// 100,000 points. Each point x_i in R^3 has a local latent z_i ~ N(0, 1) and
//   x_i ~ N(mu + z_i a, sigma^2 I)
// with a known loading a and global parameters mu (a 3-vector) and sigma, fitted by maximum
// likelihood through the ELBO. The guide is amortized: one encoder network maps each x_i to
// q(z_i | x_i) = N(loc(x_i), scale(x_i)). A DataLoader shuffles the points each epoch and
// hands each batch's indices to the plate, which scales the batch's log-likelihood by
// N / batch. At the end the recovered mu and sigma stand beside the truth, and the
// encoder's posterior beside the exact one, N(a.(x - mu) / sigma^2 / p, 1 / p) with
// precision p = 1 + |a|^2 / sigma^2, at a few inputs.
//
//   svi_part2 [--points N] [--epochs E] [--batch B] [--device cpu|cuda]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ember/ember.hpp>
#include <memory>
#include <string>

using namespace ember;

namespace {

struct Args {
  std::int64_t points = 100000;
  int epochs = 10;
  std::int64_t batch = 500;
  Device device = Device::cpu();
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--points") {
      a.points = std::atoll(value.c_str());
    } else if (flag == "--epochs") {
      a.epochs = std::atoi(value.c_str());
    } else if (flag == "--batch") {
      a.batch = std::atoll(value.c_str());
    } else if (flag == "--device") {
      a.device = value == "cuda" ? Device::cuda(0) : Device::cpu();
    } else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      std::exit(2);
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "usage: svi_part2 [--points N] [--epochs E] [--batch B] [--device cpu|cuda]\n");
    std::exit(2);
  }
  return a;
}

// x -> (loc, scale) of q(z | x): a hidden layer, then one linear head per output.
class Encoder : public nn::Module {
 public:
  struct Out {
    Tensor loc, scale;
  };
  Encoder(const TensorOptions& opts, Generator* gen)
      : hidden_(register_module("hidden", std::make_shared<nn::Linear>(3, 32, true, opts, gen))),
        loc_(register_module("loc", std::make_shared<nn::Linear>(32, 1, true, opts, gen))),
        scale_(register_module("scale", std::make_shared<nn::Linear>(32, 1, true, opts, gen))) {}

  Out operator()(const Tensor& x) {
    const Tensor h = softplus((*hidden_)(x));
    return {(*loc_)(h).squeeze(-1), softplus((*scale_)(h)).squeeze(-1) + 1e-4};
  }

 private:
  std::shared_ptr<nn::Linear> hidden_, loc_, scale_;
};

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const TensorOptions opts = TensorOptions{}.with_dtype(kFloat64).with_device(args.device);
  set_rng_seed(0);
  ParamStore store;

  // The data: mu = (1, -2, 0.5), sigma = 0.4, a = (1, -0.5, 0.8).
  Generator data_gen(2024);
  const TensorOptions host = TensorOptions{}.with_dtype(kFloat64);
  const Tensor a = tensor({1.0, -0.5, 0.8}, opts);
  const std::vector<double> true_mu = {1.0, -2.0, 0.5};
  const double true_sigma = 0.4;
  const Tensor z_true = randn({args.points, 1}, host, &data_gen);
  const Tensor x = from_vector(true_mu, {3}, host) + z_true * tensor({1.0, -0.5, 0.8}, host) +
                   randn({args.points, 3}, host, &data_gen) * true_sigma;

  Generator init_gen(7);
  Encoder encoder(opts, &init_gen);
  const std::int64_t n = args.points;

  auto model = [&](const Tensor& batch, const Tensor& indices) {
    const Tensor mu = param("mu", zeros({3}, opts));
    const Tensor sigma = param("sigma", full({}, 1.0, opts), constraints::positive);
    auto data = plate("data", n, {.subsample = indices});
    const Tensor z = sample("z", dist::Normal(zeros({}, opts), 1.0).expand({batch.size(0)}));
    sample("x", dist::Normal(mu + z.unsqueeze(-1) * a, sigma).to_event(1), batch);
  };
  auto guide = [&](const Tensor& batch, const Tensor& indices) {
    module("encoder", encoder);
    auto data = plate("data", n, {.subsample = indices});
    const auto [loc, scale] = encoder(batch);
    sample("z", dist::Normal(loc, scale));
  };

  data::DataLoader loader(data::TensorDataset({x}),
                          {.batch_size = args.batch, .seed = 11, .device = args.device});
  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO(), {.param_store = &store});
  // The lr shrinks by 0.7 each epoch: large steps first, then averaging out the noise of
  // the batches.
  svi.optimizer().set_schedule(optim::ExponentialLR{.gamma = 0.7});
  std::printf("%lld points, batches of %lld (%lld per epoch), on %s\n",
              static_cast<long long>(n), static_cast<long long>(args.batch),
              static_cast<long long>(loader.size()), args.device.str().c_str());
  for (int epoch = 0; epoch < args.epochs; ++epoch) {
    double total = 0;
    for (const data::Batch& batch : loader) total += svi.step(batch[0], batch.indices);
    std::printf("epoch %d  mean loss per point %.4f\n", epoch, total / loader.size() / n);
    svi.optimizer().schedule_step();
  }

  const auto mu = store.get("mu").to_vector<double>();
  const double sigma = store.get("sigma").item();
  std::printf("\n%-8s %10s %10s\n", "global", "fitted", "truth");
  for (int i = 0; i < 3; ++i) std::printf("mu[%d]    %10.4f %10.4f\n", i, mu[i], true_mu[i]);
  std::printf("sigma    %10.4f %10.4f\n", sigma, true_sigma);

  // The amortized posterior against the exact one, at the fitted globals.
  const double precision = 1 + (1.0 + 0.25 + 0.64) / (sigma * sigma);
  const Tensor x_new = tensor({{1.0, -2.0, 0.5}, {2.0, -2.5, 1.3}, {0.0, -1.5, -0.3}}, opts);
  NoGradGuard no_grad;
  const auto [loc, scale] = encoder(x_new);
  const Tensor exact_loc = matmul(x_new - from_vector(mu, {3}, opts), a) / (sigma * sigma) / precision;
  const auto lv = loc.to_vector<double>(), sv = scale.to_vector<double>();
  const auto ev = exact_loc.to_vector<double>();
  std::printf("\n%-22s %9s %9s %9s %9s\n", "x", "q loc", "exact", "q scale", "exact");
  for (int i = 0; i < 3; ++i) {
    const auto xi = x_new.select(0, i).to_vector<double>();
    std::printf("(%5.2f, %5.2f, %5.2f)  %9.4f %9.4f %9.4f %9.4f\n", xi[0], xi[1], xi[2], lv[i],
                ev[i], sv[i], 1 / std::sqrt(precision));
  }
  return 0;
}
