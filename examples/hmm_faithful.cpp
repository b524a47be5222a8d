// A two-state hidden Markov model on real data: the 272 consecutive eruptions of Old Faithful
// (data/faithful.csv, in the order R's `faithful` lists them), each eruption's length emitted
// by a hidden "short" or "long" state. The states are summed out along a markov scope by
// TraceEnum_ELBO (no score-function noise) while AutoDelta fits the transition matrix and the
// states' emission means and sds (MAP); then infer_discrete decodes the most probable state
// sequence (Viterbi, max-product) and draws from the states' posterior.
//
//   hmm_faithful [--steps 600] [path/to/faithful.csv]
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>

#include "ember/ember.hpp"
#include "examples/hmm_model.hpp"

using namespace ember;

int main(int argc, char** argv) {
  int steps = 600;
  std::string path = std::string(EMBER_DATA_DIR) + "/faithful.csv";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (argv[i][0] == '-') {
      std::cerr << "usage: hmm_faithful [--steps N] [faithful.csv]\n";
      return 2;
    } else {
      path = argv[i];
    }
  }
  try {
    const Tensor lengths = data::read_csv(path, {.dtype = kFloat64})["eruptions"];
    const std::int64_t n = lengths.size(0);
    set_rng_seed(0);
    auto guide = autoguide::AutoDelta(
        handlers::block(hmm::model, hmm::kGlobals),
        {.init_loc_fn = autoguide::init_to_value(
             {{"loc", tensor({2.0, 4.5}, {kFloat64})}, {"sd", tensor({0.5, 0.5}, {kFloat64})}},
             autoguide::init_to_mean())});
    SVI svi(hmm::model, guide, optim::Adam({.lr = 0.02}), TraceEnum_ELBO({.max_plate_nesting = 1}));
    double loss = 0;
    for (int i = 0; i < steps; ++i) {
      loss = svi.step(lengths);
      if ((i + 1) % (steps / 4) == 0) {
        std::cout << "step " << std::setw(4) << i + 1 << "  -log p(lengths, params) " << std::fixed
                  << std::setprecision(2) << loss << "\n";
      }
    }
    const handlers::ValueMap map = guide.median();
    const Tensor trans = map.at("trans"), loc = map.at("loc"), sd = map.at("sd");
    std::cout << std::setprecision(3) << "state   mean length   sd     P(stay)   P(switch)\n";
    for (std::int64_t k = 0; k < hmm::kStates; ++k) {
      std::cout << std::setw(5) << k << std::setw(14) << loc.select(0, k).item() << std::setw(8)
                << sd.select(0, k).item() << std::setw(10) << trans.select(0, k).select(0, k).item()
                << std::setw(11) << trans.select(0, k).select(0, 1 - k).item() << "\n";
    }

    // The most probable state sequence, and how it reads the eruptions.
    const handlers::ValueMap path_map =
        infer_discrete(hmm::model, guide, {.temperature = 0, .max_plate_nesting = 1})(lengths);
    const std::vector<double> x = lengths.to_vector<double>();
    const std::int64_t long_state = loc.select(0, 1).item() > loc.select(0, 0).item() ? 1 : 0;
    int long_count = 0, switches = 0, agree = 0;
    std::string strip;
    std::int64_t prev = -1;
    for (std::int64_t t = 0; t < n; ++t) {
      const auto z = static_cast<std::int64_t>(path_map.at("z_" + std::to_string(t)).item());
      const bool is_long = z == long_state;
      long_count += is_long;
      switches += prev >= 0 && z != prev;
      agree += is_long == (x[t] > 3.0);
      if (t < 60) strip += is_long ? 'L' : 's';
      prev = z;
    }
    std::cout << "Viterbi path: " << long_count << " long and " << n - long_count
              << " short eruptions, " << switches << " switches; it agrees with a 3-minute "
              << "threshold on " << agree << " of " << n << "\n"
              << "first 60 states: " << strip << "\n";

    // Posterior draws of the states: how sure the model is of each eruption's state.
    auto draw = infer_discrete(hmm::model, guide, {.temperature = 1, .max_plate_nesting = 1});
    constexpr int kDraws = 200;
    std::vector<int> long_draws(static_cast<std::size_t>(n), 0);
    for (int d = 0; d < kDraws; ++d) {
      const handlers::ValueMap v = draw(lengths);
      for (std::int64_t t = 0; t < n; ++t) {
        long_draws[t] +=
            static_cast<std::int64_t>(v.at("z_" + std::to_string(t)).item()) == long_state;
      }
    }
    int uncertain = 0;
    for (std::int64_t t = 0; t < n; ++t) {
      const double p = static_cast<double>(long_draws[t]) / kDraws;
      uncertain += p > 0.05 && p < 0.95;
    }
    std::cout << "posterior draws: " << uncertain
              << " eruptions have a state probability between 0.05 and 0.95\n";
  } catch (const Error& e) {
    std::cerr << "hmm_faithful: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
