// Eight schools (Rubin 1981; Gelman et al., Bayesian Data Analysis, section 5.5): the
// coaching effects of eight schools, pooled by a hierarchical model, fitted without a
// hand-written guide. The centered and the non-centered forms, each with AutoNormal and
// AutoMultivariateNormal; posterior summaries, and a posterior predictive check.
//
//   eight_schools [--steps 4000] [--samples 2000] [--seed 0]
#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <string>

#include "ember/ember.hpp"
#include "examples/eight_schools_model.hpp"

using namespace ember;
using schools::centered;
using schools::effects;
using schools::errors;
using schools::non_centered;

namespace {

struct Args {
  int steps = 4000;
  std::int64_t samples = 2000;
  std::uint64_t seed = 0;
};

template <typename Model, typename Guide>
void fit_and_report(const std::string& title, Model model, Guide guide, const Args& args) {
  clear_param_store();
  set_rng_seed(args.seed);
  SVI svi(model, guide, optim::ClippedAdam({.lr = 0.02, .lrd = 0.9995}),
          Trace_ELBO({.num_particles = 8, .vectorize_particles = true}));
  double loss = 0;  // the mean of the last 500 steps
  const int tail = std::min(500, args.steps);
  for (int i = 0; i < args.steps; ++i) {
    const double l = svi.step(errors(), effects());
    if (i >= args.steps - tail) loss += l / tail;
  }
  std::cout << "\n== " << title << " ==  (mean loss of the last " << tail << " steps " << std::fixed
            << std::setprecision(2) << loss << ")\n";

  // Posterior draws of every site (theta too, by the posterior predictive of the model).
  Predictive predictive(model, guide,
                        {.num_samples = args.samples,
                         .return_sites = {"mu", "tau", "theta", "obs"},
                         .parallel = true});
  const handlers::ValueMap draws = predictive(errors(), effects());
  infer::Samples table{
      {"mu", draws.at("mu")}, {"tau", draws.at("tau")}, {"theta", draws.at("theta")}};
  infer::print_summary(table, 0.9);

  // A predictive check: how often the replicated spread of the eight estimates exceeds the
  // observed one (about 0.5 when the model reproduces it).
  const Tensor rep = draws.at("obs");
  const Tensor spread = sub(max(rep, {1}), min(rep, {1}));
  const double observed = max(effects()).item() - min(effects()).item();
  std::cout << "posterior predictive check: P(max - min of replicated y > " << observed
            << ") = " << std::setprecision(3)
            << ember::mean(gt(spread, observed).to(kFloat64)).item() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--steps") {
      args.steps = std::atoi(argv[i + 1]);
    } else if (flag == "--samples") {
      args.samples = std::atoll(argv[i + 1]);
    } else if (flag == "--seed") {
      args.seed = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  try {
    fit_and_report("centered, AutoNormal", centered, autoguide::AutoNormal(centered), args);
    fit_and_report("centered, AutoMultivariateNormal", centered,
                   autoguide::AutoMultivariateNormal(centered), args);
    fit_and_report("non-centered, AutoNormal", non_centered, autoguide::AutoNormal(non_centered),
                   args);
    fit_and_report("non-centered, AutoMultivariateNormal", non_centered,
                   autoguide::AutoMultivariateNormal(non_centered), args);
  } catch (const Error& e) {
    std::cerr << "eight_schools: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
