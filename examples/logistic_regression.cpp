// Bayesian logistic regression on real data, without a hand-written guide: which of two
// handwritten digits (3 or 5, from data/mnist10k) an image shows, from its 784 pixels. The
// weights get an AutoDiagonalNormal guide; Predictive then gives the posterior predictive
// probability of each held-out image, whose accuracy and log-likelihood are reported next to
// those of the posterior mean's point prediction.
//
//   logistic_regression [--steps 3000] [--samples 200] [--digits 3 5] [--seed 0]
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ember/ember.hpp"

using namespace ember;

namespace {

// w ~ N(0, 1) per pixel, b ~ N(0, 10); label ~ Bernoulli(logits = X w + b). With `label`
// undefined the labels are drawn (prediction).
void model(const Tensor& x, const Tensor& label) {
  const TensorOptions f32{kFloat32};
  const Tensor w = sample("w", dist::Normal(zeros({x.size(1)}, f32), 1.0).to_event(1));
  const Tensor b = sample("b", dist::Normal(scalar_tensor(0.0, f32), 10.0));
  const Tensor logits = add(matmul(x, w), b);
  auto images = plate("images", x.size(0));
  deterministic("p", sigmoid(logits));
  sample("label", dist::Bernoulli::from_logits(logits), SampleOptions{.obs = label});
}

struct Split {
  Tensor x_train, y_train, x_test, y_test;
};

// The images of the two digits, pixels scaled to [0, 1], shuffled and split 3:1.
Split load(int first, int second, std::uint64_t seed) {
  const std::string dir = EMBER_DATA_DIR;
  const Tensor images = data::read_idx(dir + "/mnist10k-images-idx3-ubyte.gz", {.dtype = kFloat32});
  const std::vector<std::int64_t> labels =
      data::read_idx(dir + "/mnist10k-labels-idx1-ubyte.gz", {.dtype = kInt64})
          .to_vector<std::int64_t>();
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == first || labels[i] == second) rows.push_back(static_cast<std::int64_t>(i));
  }
  std::mt19937_64 gen(seed);
  std::shuffle(rows.begin(), rows.end(), gen);
  const auto n_train = static_cast<std::int64_t>(rows.size() * 3 / 4);
  const Tensor flat = div(images.reshape({images.size(0), -1}), 255.0);
  auto take = [&](std::int64_t from, std::int64_t to, Tensor& x, Tensor& y) {
    std::vector<std::int64_t> idx(rows.begin() + from, rows.begin() + to);
    std::vector<float> is_second;
    for (std::int64_t r : idx) is_second.push_back(labels[r] == second ? 1.0F : 0.0F);
    const auto n = static_cast<std::int64_t>(idx.size());
    x = index_select(flat, 0, from_vector(idx, {n}, {kInt64})).contiguous();
    y = from_vector(is_second, {n}, {kFloat32});
  };
  Split s;
  take(0, n_train, s.x_train, s.y_train);
  take(n_train, static_cast<std::int64_t>(rows.size()), s.x_test, s.y_test);
  return s;
}

// Accuracy and mean log-likelihood of probabilities p for labels y.
std::pair<double, double> score(const Tensor& p, const Tensor& y) {
  const Tensor pc = clamp(p.to(kFloat64), 1e-12, 1 - 1e-12);
  const Tensor yd = y.to(kFloat64);
  const double accuracy = mean(eq(gt(pc, 0.5).to(kFloat64), yd).to(kFloat64)).item();
  const double loglik = mean(add(mul(yd, log(pc)), mul(sub(1.0, yd), log(sub(1.0, pc))))).item();
  return {accuracy, loglik};
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 3000, first = 3, second = 5;
  std::int64_t samples = 200;
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
      samples = std::atoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--digits") == 0 && i + 2 < argc) {
      first = std::atoi(argv[++i]);
      second = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::cerr << "usage: logistic_regression [--steps N] [--samples N] [--digits A B] "
                   "[--seed S]\n";
      return 2;
    }
  }
  try {
    const Split d = load(first, second, seed);
    std::cout << "digits " << first << " (label 0) and " << second
              << " (label 1): " << d.x_train.size(0) << " training images, " << d.x_test.size(0)
              << " held out, " << d.x_train.size(1) << " pixels\n";

    set_rng_seed(seed);
    auto guide = autoguide::AutoDiagonalNormal(model);
    SVI svi(model, guide, optim::ClippedAdam({.lr = 0.01, .lrd = std::pow(0.1, 1.0 / steps)}),
            Trace_ELBO());
    for (int i = 0; i < steps; ++i) {
      const double loss = svi.step(d.x_train, d.y_train);
      if ((i + 1) % (steps / 5) == 0) {
        std::cout << "step " << std::setw(5) << i + 1 << "  loss " << std::fixed
                  << std::setprecision(1) << loss << "\n";
      }
    }

    // The posterior predictive probability of each held-out image: the mean of p over draws.
    Predictive predictive(model, guide, {.num_samples = samples, .return_sites = {"p"}});
    const Tensor p_draws = predictive(d.x_test, Tensor()).at("p");
    const auto [acc, ll] = score(mean(p_draws, {0}), d.y_test);
    // The point prediction at the posterior median of the weights.
    const handlers::ValueMap med = guide.median();
    const Tensor p_point = sigmoid(add(matmul(d.x_test, med.at("w")), med.at("b")));
    const auto [acc_point, ll_point] = score(p_point, d.y_test);
    std::cout << std::setprecision(4) << "held-out accuracy: posterior predictive " << acc
              << ", posterior median " << acc_point << "\n"
              << "held-out mean log-likelihood: posterior predictive " << ll
              << ", posterior median " << ll_point << "\n";
    // The weights' uncertainty, as an image: pixels that never light up keep the prior's sd.
    const Tensor sd = guide.get_posterior().stddev().slice(0, 0, d.x_train.size(1));
    std::cout << "posterior sd of the weights: min " << min(sd).item() << ", max " << max(sd).item()
              << " (the prior's is 1)\n";
  } catch (const Error& e) {
    std::cerr << "logistic_regression: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
