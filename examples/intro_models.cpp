// Pyro's "An Introduction to Models in Pyro": models are ordinary functions that call
// sample(). Outside inference sample() just draws, so running a model is simulating it; the
// Monte Carlo summaries below are checked against their exact values.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ember/ember.hpp>
#include <functional>
#include <string>

using namespace ember;

// ---- the weather model, and the ice-cream model built on it ----
struct Weather {
  bool cloudy;
  double temp;
};

Weather weather() {
  const bool cloudy = sample("cloudy", dist::Bernoulli(0.3)).item() == 1.0;
  const double mean_temp = cloudy ? 55.0 : 75.0;
  const double scale_temp = cloudy ? 10.0 : 15.0;
  const double temp = sample("temp", dist::Normal(mean_temp, scale_temp)).item();
  return {cloudy, temp};
}

double ice_cream_sales() {
  const Weather w = weather();
  const double expected_sales = !w.cloudy && w.temp > 80.0 ? 200.0 : 50.0;
  return sample("ice_cream", dist::Normal(expected_sales, 10.0)).item();
}

// ---- stochastic recursion: a site name per recursion depth, made at run time ----
// The number of failures before the first success of Bernoulli(p) trials.
int geometric(double p, int t = 0) {
  const Tensor x = sample("x_" + std::to_string(t), dist::Bernoulli(p));
  if (x.item() == 1.0) return 0;
  return 1 + geometric(p, t + 1);
}

// ---- higher-order stochastic functions ----
Tensor normal_product(const Tensor& loc, double scale) {
  const Tensor z1 = sample("z1", dist::Normal(loc, scale));
  const Tensor z2 = sample("z2", dist::Normal(loc, scale));
  return z1 * z2;
}

// Returns a stochastic function that closes over a random variable drawn now.
std::function<Tensor(double)> make_normal_normal() {
  const Tensor mu_latent = sample("mu_latent", dist::Normal(0.0, 1.0));
  return [mu_latent](double scale) { return normal_product(mu_latent, scale); };
}

// Takes stochastic functions as arguments, and which one runs is itself random: the set of
// sites a run visits depends on the coin.
Tensor either(double p, const std::function<Tensor()>& heads,
              const std::function<Tensor()>& tails) {
  return sample("coin", dist::Bernoulli(p)).item() == 1.0 ? heads() : tails();
}

double normal_cdf(double x, double mean, double sd) {
  return 0.5 * std::erfc(-(x - mean) / (sd * std::sqrt(2.0)));
}

std::string site_names(const Trace& tr) {
  std::string out;
  for (const Site& s : tr) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

int main() {
  set_rng_seed(101);
  constexpr int kDraws = 100000;

  std::printf("weather(), three draws:\n");
  for (int i = 0; i < 3; ++i) {
    const Weather w = weather();
    std::printf("  (%s, %.2f)\n", w.cloudy ? "cloudy" : "sunny", w.temp);
  }
  int cloudy = 0;
  double temp_sum = 0.0, sales_sum = 0.0;
  for (int i = 0; i < kDraws; ++i) {
    const Weather w = weather();
    cloudy += w.cloudy ? 1 : 0;
    temp_sum += w.temp;
  }
  for (int i = 0; i < kDraws; ++i) sales_sum += ice_cream_sales();
  // E[temp] = 0.3 * 55 + 0.7 * 75; sales are 200 only on a sunny day above 80 degrees.
  const double p_hot = 0.7 * (1.0 - normal_cdf(80.0, 75.0, 15.0));
  std::printf("over %d draws:\n", kDraws);
  std::printf("  P(cloudy)            %.4f (exact 0.3000)\n", static_cast<double>(cloudy) / kDraws);
  std::printf("  E[temp]              %.3f (exact %.3f)\n", temp_sum / kDraws,
              0.3 * 55.0 + 0.7 * 75.0);
  std::printf("  E[ice_cream_sales]   %.3f (exact %.3f)\n", sales_sum / kDraws,
              50.0 + 150.0 * p_hot);

  std::printf("\ngeometric(p), p = 0.3, five draws:");
  const double p = 0.3;
  for (int i = 0; i < 5; ++i) std::printf(" %d", geometric(p));
  std::printf("\n");
  double g_sum = 0.0;
  for (int i = 0; i < kDraws; ++i) g_sum += geometric(p);
  const double g_mean = (1.0 - p) / p;
  const double g_se = std::sqrt((1.0 - p) / (p * p) / kDraws);
  std::printf("  mean of %d draws %.4f (exact (1-p)/p = %.4f, standard error %.4f)\n", kDraws,
              g_sum / kDraws, g_mean, g_se);
  // The site names are made at run time, one per recursion step: a trace shows them.
  auto geometric_p = [p] { return geometric(p); };
  for (std::uint64_t seed : {1, 4}) {
    const Trace tr = handlers::trace(handlers::seed(geometric_p, seed)).get_trace();
    std::printf("  a traced run (seed %d) has %zu site(s): %s\n", static_cast<int>(seed), tr.size(),
                site_names(tr).c_str());
  }

  std::printf("\nhigher-order stochastic functions:\n");
  std::printf("  normal_product(0, 1)         %+.4f\n",
              normal_product(scalar_tensor(0.0), 1.0).item());
  std::printf("  make_normal_normal()(1.0)    %+.4f\n", make_normal_normal()(1.0).item());
  // E[z1 z2] = E[mu_latent^2] = 1; Var = E[(mu^2 + 1)^2] - 1 = 5.
  double nn_sum = 0.0;
  for (int i = 0; i < kDraws; ++i) nn_sum += make_normal_normal()(1.0).item();
  std::printf(
      "  mean of %d draws of make_normal_normal()(1.0) %.4f (exact 1, standard error %.4f)\n",
      kDraws, nn_sum / kDraws, std::sqrt(5.0 / kDraws));
  auto program = [] {
    return either(
        0.5, [] { return make_normal_normal()(1.0); },
        [] { return sample("flat", dist::Uniform(-1.0, 1.0)); });
  };
  for (std::uint64_t seed : {1, 2}) {
    Tensor value;
    const Trace tr = handlers::trace(handlers::seed([&] { value = program(); }, seed)).get_trace();
    std::printf("  either(...) (seed %d) = %+.4f, sites: %s\n", static_cast<int>(seed),
                value.item(), site_names(tr).c_str());
  }

  // A seeded run is reproducible whatever the thread's own stream has done in between.
  const Weather a = handlers::seed(weather, 42)();
  weather();
  const Weather b = handlers::seed(weather, 42)();
  std::printf("\nseed(weather, 42)() twice: (%s, %.4f) and (%s, %.4f)\n",
              a.cloudy ? "cloudy" : "sunny", a.temp, b.cloudy ? "cloudy" : "sunny", b.temp);
  return 0;
}
