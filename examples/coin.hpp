// Pyro's "SVI Part I" coin: a Beta(10, 10) prior on a coin's fairness, Bernoulli flips in a
// plate, and a Beta guide with learnable (positive) alpha_q and beta_q, both starting at 15.
// Shared by the svi_coin example and the soak run (bench/svi_soak.cpp).
#pragma once

#include <ember/ember.hpp>

namespace coin {

inline void model(const ember::Tensor& flips) {
  using namespace ember;
  const Tensor f = sample("latent_fairness", dist::Beta(10.0, 10.0));
  auto data = plate("data", flips.size(0));
  sample("obs", dist::Bernoulli(f), flips);
}

inline void guide(const ember::Tensor&) {
  using namespace ember;
  const Tensor a = param("alpha_q", 15.0, constraints::positive);
  const Tensor b = param("beta_q", 15.0, constraints::positive);
  sample("latent_fairness", dist::Beta(a, b));
}

}  // namespace coin
