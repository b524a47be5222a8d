// A Bayesian neural network for 1-d regression: a small MLP whose weights have N(0, 1) priors,
// a mean-field Normal guide over every weight fitted by SVI, and the posterior predictive mean
// of the function with its 90% band at a few inputs. The data cover [-3, -1] and [1, 3];
// beyond them the band widens, which a network with point weights cannot say. (Between the
// two clusters it does not: mean-field guides are known to miss that in-between uncertainty.)
//
//   bnn_regression [steps]       (default 8000)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ember/ember.hpp>
#include <string>
#include <vector>

using namespace ember;

namespace {

constexpr double kNoise = 0.1;  // the observation noise, known
constexpr std::int64_t kPoints = 40;
const TensorOptions kF64 = TensorOptions{}.with_dtype(kFloat64);

// y = sin(x) + x / 4 + noise at 40 points, half in (-3, -1), half in (1, 3).
struct Data {
  Tensor x, y;  // (40, 1) and (40)
};
Data make_data(Generator& gen) {
  const auto u = rand({kPoints}, kF64, &gen).to_vector<double>();
  const auto noise = randn({kPoints}, kF64, &gen).to_vector<double>();
  std::vector<double> x, y;
  for (std::int64_t i = 0; i < kPoints; ++i) {
    const double xi = (i < kPoints / 2 ? -1.0 : 1.0) * (1.0 + 2.0 * u[i]);
    x.push_back(xi);
    y.push_back(std::sin(xi) + xi / 4 + kNoise * noise[i]);
  }
  return {from_vector(x, {kPoints, 1}, kF64), from_vector(y, {kPoints}, kF64)};
}

// The network whose weights are random: 1 -> 32 -> 1 with ReLU.
nn::MLP& network() {
  static Generator gen(7);
  static nn::MLP net({1, 32, 1}, {.tensor_options = kF64, .gen = &gen});
  return net;
}

// Every weight and bias N(0, 1), the same prior Pyro's BNN examples use.
void model(const Tensor& x, const Tensor& y) {
  const nn::StateDict w = nn::sample_parameters(
      "bnn", network(),
      [](const std::string&, const Tensor& p) { return dist::Normal(zeros_like(p), 1.0); });
  const Tensor mean = nn::functional_call(network(), w, x).squeeze(-1);
  auto data = plate("data", x.size(0));
  sample("obs", dist::Normal(mean, kNoise), y);
}

// A Normal per weight, starting at the network's (torch-style) initial weights with a small
// scale, so the fit starts from a network that already breaks the hidden units' symmetry.
nn::StateDict guide_draws() {
  return nn::sample_parameters("bnn", network(), [](const std::string& path, const Tensor& p) {
    const Tensor loc = param("loc." + path, p.detach().clone());
    const Tensor scale = param("scale." + path, full_like(p, 0.01), constraints::positive);
    return dist::Normal(loc, scale);
  });
}
void guide(const Tensor&, const Tensor&) { guide_draws(); }

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 8000;
  set_rng_seed(0);
  clear_param_store();
  Generator data_gen(1);
  const Data data = make_data(data_gen);

  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO());
  const RunResult r = svi.run(steps, data.x, data.y);
  std::printf("%d SVI steps in %.2f s; final loss %.1f\n", static_cast<int>(r.steps), r.seconds,
              r.losses.back());

  // The posterior predictive of the function: 1000 networks drawn from the guide.
  const std::vector<double> grid = {-5, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 5};
  const Tensor xg = from_vector(grid, {static_cast<std::int64_t>(grid.size()), 1}, kF64);
  const int draws = 1000;
  std::vector<std::vector<double>> f(grid.size());
  {
    NoGradGuard no_grad;
    for (int s = 0; s < draws; ++s) {
      const auto out = nn::functional_call(network(), guide_draws(), xg).to_vector<double>();
      for (std::size_t i = 0; i < grid.size(); ++i) f[i].push_back(out[i]);
    }
  }
  std::printf("\n%6s %9s %9s %9s %9s %7s  %s\n", "x", "truth", "mean", "5%", "95%", "width",
              "where");
  for (std::size_t i = 0; i < grid.size(); ++i) {
    std::vector<double>& v = f[i];
    std::sort(v.begin(), v.end());
    double mean = 0;
    for (double e : v) mean += e / draws;
    const double lo = v[draws / 20], hi = v[draws - 1 - draws / 20];
    const double x = grid[i], ax = std::abs(x);
    const char* where = ax >= 1 && ax <= 3 ? "data" : (ax < 1 ? "gap" : "beyond");
    std::printf("%6.2f %9.3f %9.3f %9.3f %9.3f %7.3f  %s\n", x, std::sin(x) + x / 4, mean, lo, hi,
                hi - lo, where);
  }
  return 0;
}
