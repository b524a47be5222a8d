// The Dirichlet-process mixture of Pyro's tutorial, shared by examples/dp_mixture.cpp (the
// score-function fit) and examples/dp_mixture_enum.cpp (its assignments enumerated): a
// stick-breaking mixture of 2-d Gaussians truncated at kT clusters, its guide, and the
// tutorial's synthetic data.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "ember/ember.hpp"

namespace dp {

using namespace ember;

inline constexpr std::int64_t kT = 6;  // the truncation: at most kT clusters
// float64 rather than the tutorial's float32: for small kappa, Beta(1, kappa) puts a few
// percent of its draws within float32 rounding of 1 (about 3% at kappa = 0.2), where the
// sticks' log-densities are steep; float64 resolves them.
inline const TensorOptions kOpts = TensorOptions{}.with_dtype(kFloat64);

// Stick-breaking: weight_k = beta_k * prod_{j<k} (1 - beta_j); the last takes what is left.
inline Tensor mix_weights(const Tensor& beta) {
  return pad(beta, {0, 1}, 1.0) * pad(cumprod(1.0 - beta, -1), {1, 0}, 1.0);
}

// `enumerate`: each point's cluster z is summed out by TraceEnum_ELBO rather than drawn by
// the guide.
inline void model(const Tensor& data, double alpha, bool enumerate = false) {
  Tensor beta, mu;
  {
    auto beta_plate = plate("beta_plate", kT - 1);
    beta = sample("beta", dist::Beta(scalar_tensor(1.0, kOpts), alpha));
  }
  {
    // MultivariateNormal(0, 5 I), given by its Cholesky factor sqrt(5) I.
    auto mu_plate = plate("mu_plate", kT);
    mu = sample("mu", dist::MultivariateNormal(zeros({2}, kOpts), eye(2, kOpts) * std::sqrt(5.0)));
  }
  auto data_plate = plate("data", data.size(0));
  SampleOptions opts;
  if (enumerate) opts.infer.enumerate = Enumerate::Parallel;
  const Tensor z = sample("z", dist::Categorical(mix_weights(beta)), opts);
  sample("obs", dist::MultivariateNormal(index_rows(mu, z), eye(2, kOpts)), data);
}

// The tutorial's guide; with `enumerate` it leaves z to the model.
inline void guide(const Tensor& data, bool enumerate = false) {
  const std::int64_t n = data.size(0);
  // The initializers run only when the parameter is new (after clear_param_store()).
  const Tensor kappa = param(
      "kappa", [] { return dist::Uniform(scalar_tensor(0.0, kOpts), 2.0).sample({kT - 1}); },
      constraints::positive);
  const Tensor tau = param("tau", [] {
    return dist::MultivariateNormal(zeros({2}, kOpts), eye(2, kOpts) * std::sqrt(3.0)).sample({kT});
  });
  {
    auto beta_plate = plate("beta_plate", kT - 1);
    sample("beta", dist::Beta(ones({kT - 1}, kOpts), kappa));
  }
  {
    auto mu_plate = plate("mu_plate", kT);
    sample("mu", dist::MultivariateNormal(tau, eye(2, kOpts)));
  }
  if (enumerate) return;
  const Tensor phi = param(
      "phi", [n] { return dist::Dirichlet(full({kT}, 1.0 / kT, kOpts)).sample({n}); },
      constraints::simplex);
  auto data_plate = plate("data", n);
  sample("z", dist::Categorical(phi));
}

// The tutorial's synthetic data: 50 points around each of (-8, -8), (8, 8), (1.5, 2),
// (-0.5, 1), unit covariance.
inline Tensor synthetic_points(std::uint64_t seed) {
  Generator gen(seed);
  const double centers[4][2] = {{-8, -8}, {8, 8}, {1.5, 2}, {-0.5, 1}};
  std::vector<Tensor> parts;
  for (const auto& c : centers) {
    parts.push_back(
        dist::MultivariateNormal(tensor({c[0], c[1]}, kOpts), eye(2, kOpts)).sample({50}, gen));
  }
  return cat(parts, 0);
}

}  // namespace dp
