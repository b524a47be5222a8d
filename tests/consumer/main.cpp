// Uses the installed Ember as a service would: a gradient checked against known values, then
// a conjugate model fitted by SVI in a store of its own, saved and loaded back. The model:
// mu ~ Normal(0, 1), x_i ~ Normal(mu, 1); for x = (0.5, 1.5, 1, 2) the exact posterior is
// Normal(1, 1/sqrt(5)).
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>
#include <filesystem>

using namespace ember;

void model(const Tensor& x) {
  const Tensor mu = sample("mu", dist::Normal(0.0, 1.0));
  auto data = plate("data", x.size(0));
  sample("x", dist::Normal(mu, 1.0), x);
}

void guide(const Tensor&) {
  const Tensor loc = param("loc", 0.0);
  const Tensor scale = param("scale", 1.0, constraints::positive);
  sample("mu", dist::Normal(loc, scale));
}

int main() {
  Tensor x = tensor({1.0, 2.0, 3.0}, TensorOptions{}.with_dtype(kFloat64)).requires_grad_();
  Tensor y = sum(x * x);  // dy/dx = 2x
  y.backward();
  const auto g = x.grad().to_vector<double>();
  const bool grad_ok = y.item() == 14.0 && g[0] == 2.0 && g[1] == 4.0 && g[2] == 6.0;

  set_rng_seed(1);
  ParamStore store;
  const Tensor data = tensor({0.5, 1.5, 1.0, 2.0});
  SVI svi(model, guide, optim::Adam({.lr = 0.02}), Trace_ELBO(), {.param_store = &store});
  RunOptions quiet;
  quiet.progress = Progress::None;
  svi.run(2000, quiet, data);
  const double loc = store.get("loc").item(), scale = store.get("scale").item();
  // Within a quarter of the posterior sd: one-sample gradients keep Adam jittering there.
  const bool fit_ok = std::abs(loc - 1.0) < 0.11 && std::abs(scale - 1.0 / std::sqrt(5.0)) < 0.08;
  const std::string path =
      (std::filesystem::temp_directory_path() / "ember_consumer.safetensors").string();
  store.save(path);
  ParamStore loaded;
  loaded.load(path);
  const bool io_ok = loaded.get("loc").item() == loc && loaded.get("scale").item() == scale;
  std::filesystem::remove(path);

  const bool ok = grad_ok && fit_ok && io_ok;
  std::printf(
      "ember %s: grad %s, posterior %.3f +- %.3f (exact 1 +- 0.447) %s, save/load %s, cuda "
      "built: %d -> %s\n",
      kVersion, grad_ok ? "ok" : "WRONG", loc, scale, fit_ok ? "ok" : "WRONG",
      io_ok ? "ok" : "WRONG", cuda_built() ? 1 : 0, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
