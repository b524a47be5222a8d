// Pyro's Gaussian mixture model tutorial in Ember: five points, two components, the
// assignments summed out by enumeration (TraceEnum_ELBO). First a MAP fit of the global
// parameters (AutoDelta over the sites the model exposes), the best of 100 random starts as
// the tutorial does; then each point's MAP component (infer_discrete, Viterbi-style max-product)
// and its posterior probability; then a full guide (AutoNormal) over the same globals.
//
//   gmm [--steps 200] [--seed 0]
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <limits>
#include <random>
#include <string>

#include "ember/ember.hpp"
#include "examples/gmm_model.hpp"

using namespace ember;
using gmm::kGlobals;
using gmm::kK;
using gmm::model;
using gmm::points;

namespace {

// Where a MAP fit starts: the tutorial's heuristic, equal weights, half the data's variance
// as the scale, and two random points (chosen by `seed`) as the locations.
autoguide::InitFn init_for(std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  const auto a = static_cast<std::int64_t>(gen() % 5), b = static_cast<std::int64_t>(gen() % 5);
  const double mean = ember::mean(points()).item();
  const double spread = std::sqrt(ember::mean(square(sub(points(), mean))).item() / 2);
  return autoguide::init_to_value(
      {{"weights", full({kK}, 0.5, {kFloat64})},
       {"scale", scalar_tensor(spread, {kFloat64})},
       {"locs", tensor({points().select(0, a).item(), points().select(0, b).item()}, {kFloat64})}});
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 200;
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::cerr << "usage: gmm [--steps N] [--seed S]\n";
      return 2;
    }
  }
  try {
    auto globals = handlers::block(model, kGlobals);

    // The best of 100 starts by the initial loss, as the tutorial.
    set_rng_seed(seed);
    double best_loss = std::numeric_limits<double>::infinity();
    std::uint64_t best_seed = 0;
    for (std::uint64_t s = 0; s < 100; ++s) {
      clear_param_store();
      auto guide = autoguide::AutoDelta(globals, {.init_loc_fn = init_for(seed * 1000 + s)});
      TraceEnum_ELBO probe({.max_plate_nesting = 1});
      const double loss =
          probe.loss([&] { model(points()); }, [&] { guide(points()); }).loss.item();
      if (loss < best_loss) {
        best_loss = loss;
        best_seed = s;
      }
    }
    clear_param_store();
    auto map_guide =
        autoguide::AutoDelta(globals, {.init_loc_fn = init_for(seed * 1000 + best_seed)});
    SVI svi(model, map_guide, optim::Adam({.lr = 0.1, .betas = {0.8, 0.99}}),
            TraceEnum_ELBO({.max_plate_nesting = 1}));
    double loss = 0;
    for (int i = 0; i < steps; ++i) loss = svi.step(points());
    const handlers::ValueMap map = map_guide.median();
    std::cout << std::fixed << std::setprecision(3) << "MAP (best of 100 starts, " << steps
              << " steps, final loss " << loss << ")\n"
              << "  weights " << map.at("weights").select(0, 0).item() << ", "
              << map.at("weights").select(0, 1).item() << "\n"
              << "  locs    " << map.at("locs").select(0, 0).item() << ", "
              << map.at("locs").select(0, 1).item() << "\n"
              << "  scale   " << map.at("scale").item() << "\n";

    // Each point's MAP component, and its posterior probability of the second one.
    const handlers::ValueMap assignment =
        infer_discrete(model, map_guide, {.temperature = 0, .max_plate_nesting = 1})(points());
    auto draw = infer_discrete(model, map_guide, {.temperature = 1, .max_plate_nesting = 1});
    Tensor ones_count = zeros({5}, {kFloat64});
    constexpr int kDraws = 1000;
    for (int i = 0; i < kDraws; ++i)
      ones_count = add(ones_count, draw(points()).at("assignment").to(kFloat64));
    std::cout << "  point   MAP component   P(component 1)\n";
    for (std::int64_t i = 0; i < 5; ++i) {
      std::cout << std::setw(7) << points().select(0, i).item() << std::setw(16)
                << assignment.at("assignment").select(0, i).item() << std::setw(17)
                << ones_count.select(0, i).item() / kDraws << "\n";
    }

    // A full guide over the same globals: their posterior spread with the assignments summed.
    clear_param_store();
    auto full_guide =
        autoguide::AutoNormal(globals, {.init_loc_fn = init_for(seed * 1000 + best_seed)});
    SVI full(model, full_guide, optim::Adam({.lr = 0.05}),
             TraceEnum_ELBO({.num_particles = 4, .max_plate_nesting = 1}));
    for (int i = 0; i < 10 * steps; ++i) full.step(points());
    const handlers::ValueMap q = full_guide.quantiles({0.05, 0.5, 0.95});
    std::cout << "AutoNormal posterior (5%, 50%, 95%)\n";
    for (const char* name : {"weights", "locs"}) {
      for (std::int64_t k = 0; k < kK; ++k) {
        const Tensor v = q.at(name).select(1, k);
        std::cout << "  " << name << "[" << k << "]  " << v.select(0, 0).item() << "  "
                  << v.select(0, 1).item() << "  " << v.select(0, 2).item() << "\n";
      }
    }
    const Tensor sc = q.at("scale");
    std::cout << "  scale       " << sc.select(0, 0).item() << "  " << sc.select(0, 1).item()
              << "  " << sc.select(0, 2).item() << "\n";
  } catch (const Error& e) {
    std::cerr << "gmm: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
