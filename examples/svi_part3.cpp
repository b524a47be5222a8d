// Pyro's "SVI Part III: ELBO gradient estimators": the coin of Part I with a Beta guide that
// has no reparameterized sampler, so TraceGraph_ELBO falls back to the score-function
// estimator. Counts the steps until the guide reaches the exact posterior Beta(16, 14), with
// and without a decaying-average baseline, over several seeds.
//
//   svi_part3 [num_seeds = 7] [max_steps = 20000]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ember/ember.hpp>
#include <vector>

using namespace ember;

namespace {

void model(const Tensor& flips) {
  const Tensor f = sample("latent_fairness", dist::Beta(10.0, 10.0));
  // As in the current tutorial, one plate over the flips (older versions observed each flip
  // at a site of its own; the ELBO is the same).
  auto data = plate("data", flips.size(0));
  sample("obs", dist::Bernoulli(f), flips);
}

// The guide of the tutorial, with NonreparameterizedBeta as Beta(...).without_rsample().
auto make_guide(bool use_baseline) {
  return [use_baseline](const Tensor&) {
    const Tensor a = param("alpha_q", 15.0, constraints::positive);
    const Tensor b = param("beta_q", 15.0, constraints::positive);
    SampleOptions opts;
    opts.infer.baseline.use_decaying_avg_baseline = use_baseline;
    opts.infer.baseline.baseline_beta = 0.90;
    sample("latent_fairness", dist::Beta(a, b).without_rsample(), opts);
  };
}

struct Outcome {
  int steps;  // steps taken until both parameters were within tolerance (or max_steps)
  bool converged;
  double alpha_q, beta_q;
};

Outcome fit(bool use_baseline, std::uint64_t seed, int max_steps, const Tensor& flips) {
  set_rng_seed(seed);
  clear_param_store();
  SVI svi(model, make_guide(use_baseline), optim::Adam({.lr = 0.0005, .betas = {0.93, 0.999}}),
          TraceGraph_ELBO());
  // The tutorial's stopping rule: both parameters within 0.8 of the exact posterior's.
  for (int k = 1; k <= max_steps; ++k) {
    svi.step(flips);
    const double a = param("alpha_q").item(), b = param("beta_q").item();
    if (std::abs(a - 16.0) < 0.8 && std::abs(b - 14.0) < 0.8) return {k, true, a, b};
  }
  return {max_steps, false, param("alpha_q").item(), param("beta_q").item()};
}

double median(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  const int num_seeds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int max_steps = argc > 2 ? std::atoi(argv[2]) : 20000;
  if (num_seeds < 1 || max_steps < 1) {
    std::fprintf(stderr, "usage: %s [num_seeds >= 1] [max_steps >= 1]\n", argv[0]);
    return 2;
  }
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  std::printf("coin: 6 heads in 10 flips, prior Beta(10, 10), exact posterior Beta(16, 14)\n");
  std::printf("guide Beta(alpha_q, beta_q).without_rsample(), TraceGraph_ELBO, Adam(lr 0.0005)\n");
  std::printf("steps until |alpha_q - 16| < 0.8 and |beta_q - 14| < 0.8 (at most %d)\n\n",
              max_steps);

  std::vector<int> steps[2];
  int total_steps = 0;
  bool all_converged = true;
  const auto start = std::chrono::steady_clock::now();
  std::printf("%6s  %-26s  %s\n", "seed", "no baseline", "decaying-average baseline");
  for (int s = 0; s < num_seeds; ++s) {
    char cells[2][64];
    for (int variant = 0; variant < 2; ++variant) {
      const Outcome o = fit(variant == 1, static_cast<std::uint64_t>(s), max_steps, flips);
      steps[variant].push_back(o.steps);
      total_steps += o.steps;
      all_converged = all_converged && o.converged;
      std::snprintf(cells[variant], sizeof(cells[variant]), "%5d%s (%.2f, %.2f)", o.steps,
                    o.converged ? " " : "+", o.alpha_q, o.beta_q);
    }
    std::printf("%6d  %-26s  %s\n", s, cells[0], cells[1]);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%6s  %5.0f%-21s  %5.0f\n", "median", median(steps[0]), "", median(steps[1]));
  std::printf("\n(in brackets: alpha_q, beta_q when the run stopped%s)\n",
              all_converged ? "" : "; +: not within tolerance after max_steps");
  std::printf("the baseline cuts the median number of steps %.2fx\n",
              median(steps[0]) / median(steps[1]));
  std::printf("%d steps in %.2f s (%.1f us/step)\n", total_steps, seconds,
              1e6 * seconds / total_steps);
  return 0;
}
