// The Gaussian mixture of examples/gmm.cpp (Pyro's tutorial), shared with the tests of
// compiled steps: five points, two components, each point's assignment enumerated.
#pragma once

#include <cstdint>

#include "ember/ember.hpp"

namespace gmm {

using namespace ember;

inline constexpr std::int64_t kK = 2;

inline const Tensor& points() {
  static const Tensor d = tensor({0.0, 1.0, 10.0, 11.0, 12.0}, {kFloat64});
  return d;
}

// weights ~ Dirichlet(0.5), scale ~ LogNormal(0, 2), locs_k ~ Normal(0, 10);
// assignment_i ~ Categorical(weights) (enumerated), obs_i ~ Normal(locs[assignment_i], scale).
inline void model(const Tensor& x) {
  const TensorOptions f64{kFloat64};
  const Tensor weights = sample("weights", dist::Dirichlet(full({kK}, 0.5, f64)));
  const Tensor scale = sample("scale", dist::LogNormal(scalar_tensor(0.0, f64), 2.0));
  Tensor locs;
  {
    auto components = plate("components", kK);
    locs = sample("locs", dist::Normal(scalar_tensor(0.0, f64), 10.0));
  }
  auto points = plate("data", x.size(0));
  const Tensor assignment = sample("assignment", dist::Categorical(weights),
                                   SampleOptions{.infer = {.enumerate = Enumerate::Parallel}});
  sample("obs", dist::Normal(index_rows(locs, assignment), scale), x);
}

inline const handlers::BlockOptions kGlobals{.expose = {"weights", "scale", "locs"}};

}  // namespace gmm
