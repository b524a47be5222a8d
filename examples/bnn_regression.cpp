// A Bayesian neural network for 1-d regression: a small MLP whose weights have N(0, 1) priors,
// a mean-field Normal guide over every weight fitted by SVI, and the posterior predictive mean
// of the function with its 90% band at a few inputs. The data cover [-3, -1] and [1, 3];
// beyond them the band widens, which a network with point weights cannot say. (Between the
// two clusters it does not: mean-field guides are known to miss that in-between uncertainty.)
// The same on a fine grid is drawn as a plot: the data, the true function, the posterior mean
// and its 90% band.
//
//   bnn_regression [steps] [plot.png]      (defaults 8000 and bnn_regression.png)
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

double truth(double x) { return std::sin(x) + x / 4; }

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
    y.push_back(truth(xi) + kNoise * noise[i]);
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

// The mean and the 5% and 95% quantiles, at each x, of the functions of `draws` networks
// drawn from the guide.
struct Band {
  std::vector<double> mean, lo, hi;
};
Band predictive_band(const std::vector<double>& xs, int draws) {
  const auto n = static_cast<std::int64_t>(xs.size());
  const Tensor x = from_vector(xs, {n, 1}, kF64);
  std::vector<std::vector<double>> f(xs.size());
  NoGradGuard no_grad;
  for (int s = 0; s < draws; ++s) {
    const auto out = nn::functional_call(network(), guide_draws(), x).to_vector<double>();
    for (std::size_t i = 0; i < xs.size(); ++i) f[i].push_back(out[i]);
  }
  Band band;
  for (std::vector<double>& v : f) {
    std::sort(v.begin(), v.end());
    double mean = 0;
    for (double e : v) mean += e / draws;
    band.mean.push_back(mean);
    band.lo.push_back(v[draws / 20]);
    band.hi.push_back(v[draws - 1 - draws / 20]);
  }
  return band;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 8000;
  const std::string plot_path = argc > 2 ? argv[2] : "bnn_regression.png";
  set_rng_seed(0);
  clear_param_store();
  Generator data_gen(1);
  const Data data = make_data(data_gen);

  SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO());
  const RunResult r = svi.run(steps, data.x, data.y);
  std::printf("%d SVI steps in %.2f s; final loss %.1f\n", static_cast<int>(r.steps), r.seconds,
              r.losses.back());

  // The posterior predictive of the function: 1000 networks drawn from the guide, on a fine
  // grid over [-5, 5] for the plot; the table shows a few of its points.
  std::vector<double> grid;
  for (int i = 0; i <= 200; ++i) grid.push_back(-5.0 + 0.05 * i);
  const Band band = predictive_band(grid, 1000);

  std::printf("\n%6s %9s %9s %9s %9s %7s  %s\n", "x", "truth", "mean", "5%", "95%", "width",
              "where");
  for (std::size_t i = 0; i < grid.size(); i += 10) {
    const double x = grid[i], ax = std::abs(x);
    const char* where = ax >= 1 && ax <= 3 ? "data" : (ax < 1 ? "gap" : "beyond");
    std::printf("%6.2f %9.3f %9.3f %9.3f %9.3f %7.3f  %s\n", x, truth(x), band.mean[i], band.lo[i],
                band.hi[i], band.hi[i] - band.lo[i], where);
  }

  std::vector<double> truth_y;
  for (double x : grid) truth_y.push_back(truth(x));
  data::Plot(
      {.title = "BNN regression: posterior mean and 90% band", .x_label = "x", .y_label = "y"})
      .band(grid, band.lo, band.hi, {31, 119, 180}, 0.25)
      .line(grid, truth_y, {120, 120, 120}, 1.5)
      .line(grid, band.mean, {31, 119, 180}, 2.0)
      .points(data.x.to_vector<double>(), data.y.to_vector<double>(), {0, 0, 0}, 2.5)
      .write_png(plot_path);
  std::printf("\nwrote %s\n", plot_path.c_str());
  return 0;
}
