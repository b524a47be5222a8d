// Pyro's "SVI Part I": is a coin fair? Ten flips, six heads; a Beta(10, 10) prior on the
// coin's fairness; a Beta guide fitted by SVI. The exact posterior is Beta(16, 14), with
// mean 0.5333 and standard deviation 0.0896; Pyro's tutorial reports 0.532 +- 0.090.
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>

#include "examples/coin.hpp"

using namespace ember;

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 5000;
  set_rng_seed(0);
  clear_param_store();
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  SVI svi(coin::model, coin::guide, optim::Adam({.lr = 5e-4, .betas = {0.90, 0.999}}),
          Trace_ELBO());
  const RunResult r = svi.run(steps, flips);

  const double a = param("alpha_q").item(), b = param("beta_q").item();
  const double mean = a / (a + b);
  const double sd = std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)));
  std::printf("%d steps in %.2f s (%.1f us/step)\n", static_cast<int>(r.steps), r.seconds,
              1e6 * r.seconds / static_cast<double>(r.steps));
  std::printf("alpha_q = %.3f, beta_q = %.3f\n", a, b);
  std::printf("based on the data and our prior belief, the fairness of the coin is %.3f +- %.3f\n",
              mean, sd);
  std::printf("exact posterior Beta(16, 14): %.4f +- %.4f\n", 16.0 / 30.0,
              std::sqrt(16.0 * 14.0 / (30.0 * 30.0 * 31.0)));
  return 0;
}
