// The two-state hidden Markov model of examples/hmm_faithful.cpp, shared with the tests of
// compiled steps: each eruption's length emitted by a hidden state, the states a markov chain
// of enumerated sites.
#pragma once

#include <cstdint>
#include <string>

#include "ember/ember.hpp"

namespace hmm {

using namespace ember;

inline constexpr std::int64_t kStates = 2;

// trans_k ~ Dirichlet(1, 1) per state, loc_k ~ Normal(3.5, 2), sd_k ~ LogNormal(-1, 1);
// z_0 ~ Categorical(1/2, 1/2), z_t ~ Categorical(trans[z_{t-1}]), x_t ~ N(loc[z_t], sd[z_t]).
inline void model(const Tensor& lengths) {
  const TensorOptions f64{kFloat64};
  Tensor trans, loc, sd;
  {
    auto states = plate("states", kStates);
    trans = sample("trans", dist::Dirichlet(ones({kStates}, f64)));
    loc = sample("loc", dist::Normal(scalar_tensor(3.5, f64), 2.0));
    sd = sample("sd", dist::LogNormal(scalar_tensor(-1.0, f64), 1.0));
  }
  Tensor probs = full({kStates}, 1.0 / kStates, f64);
  for (std::int64_t t : markov(lengths.size(0))) {
    const Tensor z = sample("z_" + std::to_string(t), dist::Categorical(probs),
                            SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
    sample("x_" + std::to_string(t), dist::Normal(index_rows(loc, z), index_rows(sd, z)),
           lengths.select(0, t));
    probs = index_rows(trans, z);
  }
}

// The sites AutoDelta fits (the states are summed out).
inline const handlers::BlockOptions kGlobals{.expose = {"trans", "loc", "sd"}};

}  // namespace hmm
