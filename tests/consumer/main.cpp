// Uses the installed Ember as a service would: a gradient checked against known values, then
// the README's coin fitted by SVI in a store of its own, saved and loaded back.
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>
#include <filesystem>

using namespace ember;

void model(const Tensor& flips) {
  const Tensor f = sample("fairness", dist::Beta(10.0, 10.0));
  auto data = plate("data", flips.size(0));
  sample("obs", dist::Bernoulli(f), flips);
}

void guide(const Tensor& flips) {
  const Tensor a = param("alpha_q", 15.0, constraints::positive);
  const Tensor b = param("beta_q", 15.0, constraints::positive);
  sample("fairness", dist::Beta(a, b));
}

int main() {
  Tensor x = tensor({1.0, 2.0, 3.0}, TensorOptions{}.with_dtype(kFloat64)).requires_grad_();
  Tensor y = sum(x * x);  // dy/dx = 2x
  y.backward();
  const auto g = x.grad().to_vector<double>();
  const bool grad_ok = y.item() == 14.0 && g[0] == 2.0 && g[1] == 4.0 && g[2] == 6.0;

  set_rng_seed(1);
  ParamStore store;
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  SVI svi(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), {.param_store = &store});
  RunOptions quiet;
  quiet.progress = Progress::None;
  svi.run(2000, quiet, flips);
  const double a = store.get("alpha_q").item(), b = store.get("beta_q").item();
  const bool fit_ok = std::abs(a / (a + b) - 16.0 / 30.0) < 0.03;
  const std::string path =
      (std::filesystem::temp_directory_path() / "ember_consumer.safetensors").string();
  store.save(path);
  ParamStore loaded;
  loaded.load(path);
  const bool io_ok = std::abs(loaded.get("alpha_q").item() - a) < 1e-4 * a;

  const bool ok = grad_ok && fit_ok && io_ok;
  std::printf(
      "ember %s: grad %s, coin fairness %.3f (exact 0.533) %s, save/load %s, cuda built: "
      "%d -> %s\n",
      kVersion, grad_ok ? "ok" : "WRONG", a / (a + b), fit_ok ? "ok" : "WRONG",
      io_ok ? "ok" : "WRONG", cuda_built() ? 1 : 0, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
