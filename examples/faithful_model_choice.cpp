// Enumeration in the guide, on real data: does one Normal or a mixture of two explain the
// waiting times between Old Faithful's 272 eruptions (data/faithful.csv)? The model draws its
// own structure, structure ~ Categorical(1/2, 1/2), and then the sites of that structure only.
// The guide enumerates the structure *sequentially* (one run of guide and model per value,
// each weighted by the guide's probability of it), so q(structure) is fitted with exact
// gradients while each branch fits its own parameters. In the mixture the points' assignments
// are summed out either in the model (exactly) or in the guide (Enumerate::Parallel over
// per-point responsibilities, the mean-field form): the two fits are printed side by side.
//
//   faithful_model_choice [--steps 1500] [path/to/faithful.csv]
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>

#include "ember/ember.hpp"

using namespace ember;

namespace {

const TensorOptions kF64{kFloat64};
const SampleOptions kParallel{.infer = {.enumerate = Enumerate::Parallel}};

// Where the assignments of the mixture are summed out.
enum class Assignments { InModel, InGuide };

// structure ~ Categorical(1/2, 1/2);
//   0: mu ~ Normal(70, 20), sigma ~ LogNormal(log 10, 1), x_i ~ Normal(mu, sigma);
//   1: weights ~ Dirichlet(1, 1), locs_k ~ Normal(70, 20), sigma ~ LogNormal(log 10, 1),
//      z_i ~ Categorical(weights), x_i ~ Normal(locs[z_i], sigma).
void model(const Tensor& x, Assignments where) {
  const Tensor structure = sample("structure", dist::Categorical(full({2}, 0.5, kF64)));
  const Tensor sigma = sample("sigma", dist::LogNormal(scalar_tensor(std::log(10.0), kF64), 1.0));
  if (structure.item() == 0) {
    const Tensor mu = sample("mu", dist::Normal(scalar_tensor(70.0, kF64), 20.0));
    auto data = plate("data", x.size(0));
    sample("x", dist::Normal(mu, sigma), x);
    return;
  }
  const Tensor weights = sample("weights", dist::Dirichlet(ones({2}, kF64)));
  Tensor locs;
  {
    auto components = plate("components", 2);
    locs = sample("locs", dist::Normal(scalar_tensor(70.0, kF64), 20.0));
  }
  auto data = plate("data", x.size(0));
  const Tensor z = sample("z", dist::Categorical(weights),
                          where == Assignments::InModel ? kParallel : SampleOptions{});
  sample("x", dist::Normal(index_rows(locs, z), sigma), x);
}

// q(structure) enumerated one value per run (or, with `fixed`, that structure alone); per
// structure, Normal and LogNormal factors for its continuous sites, a Dirichlet for the
// weights, and with Assignments::InGuide each point's responsibilities, enumerated.
void guide(const Tensor& x, Assignments where, int fixed = -1) {
  const Tensor structure =
      fixed < 0
          ? sample("structure",
                   dist::Categorical::from_logits(param("structure_logits", zeros({2}, kF64))),
                   SampleOptions{.infer = {.enumerate = Enumerate::Sequential}})
          : sample("structure", dist::Categorical(fixed == 0 ? tensor({1.0, 0.0}, kF64)
                                                             : tensor({0.0, 1.0}, kF64)));
  const std::string b = structure.item() == 0 ? "one." : "two.";
  auto positive = constraints::positive;
  sample("sigma", dist::LogNormal(param(b + "sigma_loc", scalar_tensor(std::log(10.0), kF64)),
                                  param(b + "sigma_scale", scalar_tensor(0.1, kF64), positive)));
  if (structure.item() == 0) {
    sample("mu", dist::Normal(param("one.mu_loc", scalar_tensor(70.0, kF64)),
                              param("one.mu_scale", scalar_tensor(1.0, kF64), positive)));
    return;
  }
  sample("weights", dist::Dirichlet(param("two.concentration", full({2}, 10.0, kF64), positive)));
  {
    auto components = plate("components", 2);
    sample("locs", dist::Normal(param("two.locs_loc", tensor({50.0, 85.0}, kF64)),
                                param("two.locs_scale", full({2}, 1.0, kF64), positive)));
  }
  if (where == Assignments::InGuide) {
    // Each point starts leaning to the nearer of the initial means (as k-means would): from
    // even responsibilities the mixture's ELBO starts far below the single Normal's, q moves
    // to that branch, and Adam's steps for the mixture shrink with q before it has separated.
    auto init = [&x] {
      const Tensor d = sub(x.unsqueeze(-1), tensor({50.0, 85.0}, kF64));
      return mul(square(d), -1.0 / (2 * 10.0 * 10.0));
    };
    auto data = plate("data", x.size(0));
    sample("z", dist::Categorical::from_logits(param("two.responsibility_logits", init)),
           kParallel);
  }
}

struct Fit {
  double p_two;                       // q(structure = two components)
  double elbo_one, elbo_two;          // each structure's ELBO (its prior's log 1/2 included)
  std::vector<double> locs, weights;  // the mixture's posterior means
  double sigma_two;
};

Fit fit(const Tensor& x, Assignments where, int steps) {
  clear_param_store();
  set_rng_seed(0);
  SVI svi([&] { model(x, where); }, [&] { guide(x, where); }, optim::Adam({.lr = 0.05}),
          TraceEnum_ELBO({.max_plate_nesting = 1}));
  for (int i = 0; i < steps; ++i) svi.step();
  Fit out{};
  const Tensor q = softmax(param("structure_logits"), -1);
  out.p_two = q.select(0, 1).item();
  // Each structure's own ELBO: the same guide with the structure fixed (200 draws).
  TraceEnum_ELBO estimate({.num_particles = 200, .max_plate_nesting = 1});
  for (int s : {0, 1}) {
    const double elbo =
        -estimate.loss([&] { model(x, where); }, [&] { guide(x, where, s); }).loss.item();
    (s == 0 ? out.elbo_one : out.elbo_two) = elbo;
  }
  out.locs = param("two.locs_loc").to_vector<double>();
  const Tensor c = param("two.concentration");
  out.weights = div(c, sum(c)).to_vector<double>();
  const double sl = param("two.sigma_loc").item(), ss = param("two.sigma_scale").item();
  out.sigma_two = std::exp(sl + ss * ss / 2);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 1500;
  std::string path = std::string(EMBER_DATA_DIR) + "/faithful.csv";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (argv[i][0] == '-') {
      std::cerr << "usage: faithful_model_choice [--steps N] [faithful.csv]\n";
      return 2;
    } else {
      path = argv[i];
    }
  }
  try {
    const Tensor waiting = data::read_csv(path, {.dtype = kFloat64})["waiting"];
    std::cout << waiting.size(0) << " waiting times, " << steps << " steps per fit\n"
              << std::fixed << std::setprecision(2);
    for (Assignments where : {Assignments::InModel, Assignments::InGuide}) {
      const Fit f = fit(waiting, where, steps);
      std::cout << "assignments summed in the "
                << (where == Assignments::InModel ? "model (exact)" : "guide (mean field)")
                << "\n  ELBO, one Normal       " << std::setw(9) << f.elbo_one
                << "\n  ELBO, two components   " << std::setw(9) << f.elbo_two
                << "\n  q(two components)      " << std::setw(9) << std::setprecision(4) << f.p_two
                << std::setprecision(2) << "\n  mixture: weights " << f.weights[0] << " / "
                << f.weights[1] << ", means " << f.locs[0] << " / " << f.locs[1] << " min, sd "
                << f.sigma_two << " min\n";
    }
  } catch (const Error& e) {
    std::cerr << "faithful_model_choice: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
