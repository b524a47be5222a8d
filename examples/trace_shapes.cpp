// Inspecting a trace, after Pyro's "Tensor shapes in Pyro": plates that own batch dims
// counted from the right, a subsampled plate and a param, the format_shapes table, the
// sites one by one, and the error a site whose batch shape conflicts with its plate raises.
#include <cstdio>
#include <ember/ember.hpp>
#include <string>

using namespace ember;

// A value's shape as "(3, 1)"; "-" for a site without one.
std::string shape_of(const Tensor& t) { return t.defined() ? t.shape().str() : "-"; }

void model(const Tensor& data) {
  // A plate that draws 10 of the 100 rows each run: the observed site sees only the
  // mini-batch, and its log-density is scaled by 100 / 10.
  {
    auto rows = plate("rows", data.size(0), {.subsample_size = 10});
    sample("obs", dist::Normal(0.5, 1.0), rows.subsample(data));
  }
  // The tutorial's plates: x_axis owns dim -2 and y_axis dim -3, so a site's value has its
  // plates' sizes there and 1 in the dims no enclosing plate owns. An Ember plate is a scope
  // entered once, and each plate records a site under its name, so the two nested plates of
  // the last block take names of their own.
  {
    // A param (kept, unconstrained, in the param store) shaped to line up with the plate.
    const Tensor x_scale = param("x_scale", ones({3, 1}), constraints::positive);
    auto x_axis = plate("x_axis", 3, {.dim = -2});
    sample("x", dist::Normal(0.0, x_scale));  // (3, 1)
  }
  {
    auto y_axis = plate("y_axis", 2, {.dim = -3});
    sample("y", dist::Normal(0.0, 1.0));  // (2, 1, 1)
  }
  {
    auto x_axis = plate("x_axis", 3, {.dim = -2});  // entered again, as in the tutorial
    auto y_axis = plate("y_axis", 2, {.dim = -3});
    sample("xy", dist::Normal(0.0, 1.0));                         // (2, 3, 1)
    sample("z", dist::Normal(0.0, 1.0).expand({5}).to_event(1));  // (2, 3, 1, 5)
  }
}

int main() {
  set_rng_seed(0);
  clear_param_store();
  const Tensor data = randn({100}) + 0.5;

  const Trace tr = handlers::trace(model).get_trace(data);
  tr.compute_log_prob();  // optional: adds the log_prob rows to the table
  std::printf("%s\n", tr.format_shapes().c_str());

  std::printf("%-8s %-9s %-8s %-6s %-13s %-10s %s\n", "site", "type", "observed", "scale", "value",
              "log_prob", "plates (outermost first)");
  for (const Site& s : tr) {
    std::string plates;
    for (const PlateFrame& f : s.cond_indep_stack) {
      plates += (plates.empty() ? "" : ", ") + f.name + " (dim " + std::to_string(f.dim) +
                ", size " + std::to_string(f.size);
      if (f.subsample_size != f.size) plates += ", subsample " + std::to_string(f.subsample_size);
      plates += ")";
    }
    std::printf("%-8s %-9s %-8s %-6g %-13s %-10s %s\n", s.name.c_str(), site_type_name(s.type),
                s.is_observed ? "yes" : "no", s.scale, shape_of(s.value).c_str(),
                s.is_sample() ? s.log_prob().shape().str().c_str() : "-",
                plates.empty() ? "-" : plates.c_str());
  }
  std::printf("\nlatent sites %zu, observed %zu, params %zu; log p(trace) = %.3f\n",
              tr.stochastic_nodes().size(), tr.observation_nodes().size(), tr.param_nodes().size(),
              tr.log_prob_sum().item());
  const Site& obs = tr.at("obs");
  std::printf("obs: sum of the unscaled log_prob %.3f, times the scale %g = %.3f\n",
              sum(obs.unscaled_log_prob()).item(), obs.scale, obs.log_prob_sum().item());

  // A batch shape of 4 where the plate says 3: the plate names the site, itself, the dim and
  // both sizes.
  std::printf("\na site whose batch shape conflicts with its plate:\n");
  try {
    auto x_axis = plate("x_axis", 3, {.dim = -1});
    sample("bad", dist::Normal(zeros({4}), 1.0));
  } catch (const ShapeError& err) {
    std::printf("  caught ShapeError: %s\n", err.what());
  }
  return 0;
}
