// Pyro's "Dirichlet Process Mixture Models" tutorial: a truncated stick-breaking mixture of
// 2-d Gaussians fitted by SVI with Trace_ELBO. The cluster assignments z are discrete, so the
// guide's Categorical has no reparameterized sampler and Trace_ELBO uses the score-function
// estimator for them (pathwise gradients for the Beta sticks and the Gaussian means).
//
//   dp_mixture [--data synthetic|faithful|both] [--alpha A] [--steps N] [--seed S]
//              [--threshold W] [path/to/faithful.csv]
//
// Default: the tutorial's synthetic data with alpha 0.1 and 1.5 (1000 steps each), then Old
// Faithful with alpha 1.5 (10000 steps).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ember/ember.hpp>
#include <optional>
#include <string>
#include <vector>

#include "examples/dp_mixture_model.hpp"

using namespace ember;

namespace {

using dp::kOpts;
using dp::kT;
using dp::mix_weights;

void model(const Tensor& data, double alpha) { dp::model(data, alpha); }
void guide(const Tensor& data) { dp::guide(data); }

struct Dataset {
  std::string label;
  Tensor data;  // (N, 2)
  // For standardized data: each column's mean and std, to report centers in data units.
  std::vector<double> mean, sd;
  std::string units[2];
};

// The tutorial's synthetic data: 50 points around each of (-8, -8), (8, 8), (1.5, 2),
// (-0.5, 1), unit covariance.
Dataset synthetic_data(std::uint64_t seed) {
  return {"synthetic data, 4 clusters", dp::synthetic_points(seed), {}, {}, {}};
}

// Old Faithful (eruption length, waiting time; data/faithful.csv), each column standardized:
// (x - mean) / std with torch's default (unbiased) std.
Dataset faithful_data(const std::string& path) {
  const data::CsvTable table = data::read_csv(path, {.dtype = kFloat64});
  const Tensor x = stack({table["eruptions"], table["waiting"]}, 1);
  const std::int64_t n = x.size(0);
  const Tensor m = mean(x, {0}, true);
  const Tensor sd = sqrt(sum(square(x - m), {0}, true) / static_cast<double>(n - 1));
  return {"Old Faithful, standardized",
          (x - m) / sd,
          m.to_vector<double>(),
          sd.to_vector<double>(),
          {"min eruption", "min wait"}};
}

struct FitOptions {
  std::optional<std::int64_t> steps;  // default: 1000 (synthetic), 10000 (Old Faithful)
  std::uint64_t seed = 0;
  double threshold = 0.1;  // clusters with a larger weight are reported as found
};

void fit(const Dataset& ds, double alpha, std::int64_t steps, const FitOptions& fo) {
  set_rng_seed(fo.seed);
  clear_param_store();
  std::printf("== %s: %lld points, alpha = %g, T = %lld, %lld steps ==\n", ds.label.c_str(),
              static_cast<long long>(ds.data.size(0)), alpha, static_cast<long long>(kT),
              static_cast<long long>(steps));

  auto bound_model = [alpha](const Tensor& d) { model(d, alpha); };
  // A step whose loss is not finite (a stick drawn at exactly 1, say) is skipped and counted
  // rather than ending the run.
  SVI svi(bound_model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), {.skip_nonfinite = true});
  RunOptions run_opts;  // a progress bar on a terminal, plain lines otherwise (on stderr)
  const RunResult r = svi.run(steps, run_opts, ds.data);

  std::printf("%lld steps in %.2f s (%.2f ms/step)", static_cast<long long>(r.steps), r.seconds,
              1e3 * r.seconds / static_cast<double>(r.steps));
  if (r.skipped_steps > 0) {
    std::printf(", %lld skipped (non-finite loss)", static_cast<long long>(r.skipped_steps));
  }
  // The loss (minus the ELBO estimate) is noisy step to step: the mean of each tenth of the
  // run (each 100 steps for the tutorial's 1000), over the finite values.
  const std::int64_t block = std::max<std::int64_t>(100, r.steps / 10);
  std::printf("\nloss, mean of each %lld steps:", static_cast<long long>(block));
  for (std::int64_t b = 0; b * block < r.steps; ++b) {
    double s = 0;
    std::int64_t k = 0;
    for (std::int64_t i = b * block; i < std::min(r.steps, (b + 1) * block); ++i) {
      const double v = r.losses[static_cast<std::size_t>(i)];
      if (std::isfinite(v)) s += v, ++k;
    }
    if (b % 5 == 0) std::printf("\n ");
    std::printf(" %6lld: %8.1f", static_cast<long long>(std::min(r.steps, (b + 1) * block)),
                s / static_cast<double>(std::max<std::int64_t>(k, 1)));
  }
  std::printf("\n");

  // Point estimates: the posterior mean of each stick, E[Beta(1, kappa)] = 1 / (1 + kappa),
  // broken into weights; "mean phi" is the tutorial's weight, the mean assignment probability.
  NoGradGuard no_grad;
  const std::vector<double> weights = mix_weights(1.0 / (1.0 + param("kappa"))).to_vector<double>();
  const std::vector<double> phi_mean = mean(param("phi"), {0}).to_vector<double>();
  const std::vector<double> tau = param("tau").to_vector<double>();
  const bool rescale = !ds.mean.empty();
  std::printf("  cluster  weight  mean phi  center tau%s\n",
              rescale ? "      center in data units" : "");
  int found = 0;
  for (std::int64_t k = 0; k < kT; ++k) {
    const bool keep = weights[k] > fo.threshold;
    found += keep ? 1 : 0;
    std::printf("  %c %-5lld  %.4f  %.4f    (%+.2f, %+.2f)", keep ? '*' : ' ',
                static_cast<long long>(k), weights[k], phi_mean[k], tau[2 * k], tau[2 * k + 1]);
    if (rescale) {
      std::printf("  %.2f %s, %.1f %s", tau[2 * k] * ds.sd[0] + ds.mean[0], ds.units[0].c_str(),
                  tau[2 * k + 1] * ds.sd[1] + ds.mean[1], ds.units[1].c_str());
    }
    std::printf("\n");
  }
  std::printf("%d cluster%s with weight > %g (*)\n\n", found, found == 1 ? "" : "s", fo.threshold);
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--data synthetic|faithful|both] [--alpha A] [--steps N] [--seed S] "
               "[--threshold W] [path/to/faithful.csv]\n",
               argv0);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "both";
  std::optional<double> alpha;  // default: the tutorial's values
  std::string csv = EMBER_DATA_DIR "/faithful.csv";
  FitOptions fo;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--data" && has_value) {
      which = argv[++i];
    } else if (arg == "--alpha" && has_value) {
      alpha = std::atof(argv[++i]);
    } else if (arg == "--steps" && has_value) {
      fo.steps = std::atoll(argv[++i]);
    } else if (arg == "--seed" && has_value) {
      fo.seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--threshold" && has_value) {
      fo.threshold = std::atof(argv[++i]);
    } else if (!arg.empty() && arg[0] != '-') {
      csv = arg;
    } else {
      usage(argv[0]);
    }
  }
  if ((which != "synthetic" && which != "faithful" && which != "both") ||
      (alpha && !(*alpha > 0.0)) || (fo.steps && *fo.steps < 1))
    usage(argv[0]);

  if (which != "faithful") {
    const Dataset ds = synthetic_data(fo.seed);
    for (double a : alpha ? std::vector<double>{*alpha} : std::vector<double>{0.1, 1.5}) {
      fit(ds, a, fo.steps.value_or(1000), fo);
    }
  }
  if (which != "synthetic") {
    // The score-function gradients of the assignments make this fit slow: after the
    // tutorial's 1000 steps the clusters are still spread between the two modes.
    fit(faithful_data(csv), alpha.value_or(1.5), fo.steps.value_or(10000), fo);
  }
  return 0;
}
