// The Dirichlet-process mixture of Pyro's tutorial (examples/dp_mixture.cpp) fitted two ways on
// the tutorial's synthetic data (four clusters of 50 points): the tutorial's, whose guide
// draws each point's cluster z (a Categorical: Trace_ELBO's score-function estimator), and one
// whose model sums z out (enumerated, TraceEnum_ELBO: the guide keeps only the sticks and
// the means, every gradient pathwise). Reported side by side: the variance of the gradient
// of the means' parameters at the same point, and the steps each fit takes to settle.
//
//   dp_mixture_enum [--steps 3000] [--seed 0]
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "examples/dp_mixture_model.hpp"

using namespace ember;

namespace {

constexpr double kAlpha = 0.1;

struct Fit {
  double loss_sd;         // of the loss estimate at the initial point
  double kappa_variance;  // of the gradient of the sticks' parameter, summed over elements
  double tau_variance;    // of the gradient of the means' parameter
  std::vector<double> losses;
};

Fit run(const Tensor& data, bool enumerate, int steps, std::uint64_t seed) {
  clear_param_store();
  set_rng_seed(seed);
  auto m = [&] { dp::model(data, kAlpha, enumerate); };
  auto g = [&] { dp::guide(data, enumerate); };
  std::unique_ptr<ELBO> elbo;
  if (enumerate) {
    elbo = std::make_unique<TraceEnum_ELBO>(ElboOptions{.max_plate_nesting = 1});
  } else {
    elbo = std::make_unique<Trace_ELBO>();
  }
  elbo->loss(m, g);  // makes the params
  // The estimates' spread at the initial point: 200 of them.
  constexpr int kEstimates = 200;
  ParamStore& store = get_param_store();
  const Tensor kappa = store.unconstrained("kappa"), tau = store.unconstrained("tau");
  Tensor k1 = zeros_like(kappa), k2 = zeros_like(kappa), t1 = zeros_like(tau), t2 = zeros_like(tau);
  double l1 = 0, l2 = 0;
  auto zero_grads = [&] {
    for (const auto& name : store.names()) store.unconstrained(name).zero_grad();
  };
  for (int i = 0; i < kEstimates; ++i) {
    zero_grads();
    const double l = elbo->loss_and_grads(m, g).loss.item();
    l1 += l;
    l2 += l * l;
    k1 = add(k1, kappa.grad());
    k2 = add(k2, square(kappa.grad()));
    t1 = add(t1, tau.grad());
    t2 = add(t2, square(tau.grad()));
  }
  zero_grads();
  auto variance = [](const Tensor& s1, const Tensor& s2) {
    return sum(sub(div(s2, kEstimates), square(div(s1, kEstimates)))).item();
  };
  Fit fit{std::sqrt(std::max(0.0, l2 / kEstimates - (l1 / kEstimates) * (l1 / kEstimates))),
          variance(k1, k2),
          variance(t1, t2),
          {}};
  auto fit_with = [&](auto&& loss) {
    SVI svi(m, g, optim::Adam({.lr = 0.05}), std::move(loss));
    for (int i = 0; i < steps; ++i) fit.losses.push_back(svi.step());
  };
  if (enumerate) {
    fit_with(TraceEnum_ELBO({.max_plate_nesting = 1}));
  } else {
    fit_with(Trace_ELBO());
  }
  return fit;
}

// The mean of losses[from, to).
double mean_of(const std::vector<double>& v, std::size_t from, std::size_t to) {
  double s = 0;
  for (std::size_t i = from; i < to; ++i) s += v[i];
  return s / static_cast<double>(to - from);
}

// The first step at which the mean of the 50 steps before it is at most `level` (-1: never).
long first_below(const std::vector<double>& v, double level) {
  for (std::size_t i = 50; i <= v.size(); ++i) {
    if (mean_of(v, i - 50, i) <= level) return static_cast<long>(i);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 3000;
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::cerr << "usage: dp_mixture_enum [--steps N] [--seed S]\n";
      return 2;
    }
  }
  if (steps < 200) {
    std::cerr << "dp_mixture_enum: --steps must be at least 200\n";
    return 2;
  }
  try {
    const Tensor data = dp::synthetic_points(seed);
    const Fit sf = run(data, false, steps, seed);
    const Fit en = run(data, true, steps, seed);
    auto final_mean = [](const Fit& f) {
      return mean_of(f.losses, f.losses.size() - 100, f.losses.size());
    };
    // A common target: 2% above where the enumerated fit ends.
    const double target = final_mean(en) + 0.02 * std::abs(final_mean(en));
    auto reached = [&](const Fit& f) {
      const long step = first_below(f.losses, target);
      return step < 0 ? std::string("never") : std::to_string(step);
    };
    std::cout << std::fixed << std::setprecision(1)
              << "at the initial point (200 estimates)   score function   enumerated\n"
              << "  sd of the loss estimate              " << std::setw(14) << sf.loss_sd
              << std::setw(13) << en.loss_sd << "\n"
              << "  gradient variance, sticks (kappa)    " << std::setw(14) << sf.kappa_variance
              << std::setw(13) << en.kappa_variance << "\n"
              << "  gradient variance, means (tau)       " << std::setw(14) << sf.tau_variance
              << std::setw(13) << en.tau_variance << "\n"
              << "the fit (" << steps << " steps, Adam 0.05)\n"
              << "  mean loss, last 100 steps            " << std::setw(14) << final_mean(sf)
              << std::setw(13) << final_mean(en) << "\n"
              << "  steps until the 50-step mean <= " << target << std::setw(10) << reached(sf)
              << std::setw(13) << reached(en) << "\n";
  } catch (const Error& e) {
    std::cerr << "dp_mixture_enum: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
