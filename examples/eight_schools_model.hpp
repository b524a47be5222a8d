// The eight-schools model of examples/eight_schools.cpp, centered and non-centered, with the
// published data; shared with the tests of compiled steps.
#pragma once

#include "ember/ember.hpp"

namespace schools {

using namespace ember;

// The published estimates and their standard errors.
inline const Tensor& effects() {
  static const Tensor y = tensor({28, 8, -3, 7, -1, 1, 18, 12}, {kFloat64});
  return y;
}
inline const Tensor& errors() {
  static const Tensor s = tensor({15, 10, 16, 11, 9, 11, 10, 18}, {kFloat64});
  return s;
}

// mu ~ N(0, 5), tau ~ HalfCauchy(5), theta_j ~ N(mu, tau), y_j ~ N(theta_j, sigma_j).
inline void centered(const Tensor& sigma, const Tensor& y) {
  const Tensor mu = sample("mu", dist::Normal(scalar_tensor(0.0, {kFloat64}), 5.0));
  const Tensor tau = sample("tau", dist::HalfCauchy(scalar_tensor(5.0, {kFloat64})));
  auto per_school = plate("schools", 8);
  const Tensor theta = sample("theta", dist::Normal(mu, tau));
  sample("obs", dist::Normal(theta, sigma), y);
}

// The same model with theta = mu + tau * eta, eta_j ~ N(0, 1): the funnel between tau and
// theta is gone from the guide's space.
inline void non_centered(const Tensor& sigma, const Tensor& y) {
  const Tensor mu = sample("mu", dist::Normal(scalar_tensor(0.0, {kFloat64}), 5.0));
  const Tensor tau = sample("tau", dist::HalfCauchy(scalar_tensor(5.0, {kFloat64})));
  auto per_school = plate("schools", 8);
  const Tensor eta = sample("eta", dist::Normal(scalar_tensor(0.0, {kFloat64}), 1.0));
  const Tensor theta = deterministic("theta", add(mu, mul(tau, eta)));
  sample("obs", dist::Normal(theta, sigma), y);
}

}  // namespace schools
