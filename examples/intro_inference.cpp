// Pyro's "An Introduction to Inference in Pyro": a scale that measures an object's weight
// with noise. Conditioning (by a handler or an observed value), an intervention with do, and
// a Normal guide fitted by SVI, checked against the exact (conjugate) posterior.
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>
#include <vector>

using namespace ember;

constexpr double kPriorScale = 1.0;         // weight ~ Normal(guess, 1)
constexpr double kMeasurementScale = 0.75;  // measurement ~ Normal(weight, 0.75)

Tensor scale(double guess) {
  const Tensor weight = sample("weight", dist::Normal(guess, kPriorScale));
  return sample("measurement", dist::Normal(weight, kMeasurementScale));
}

// The same conditioning written into the model: an observed site.
Tensor scale_obs(double guess) {
  const Tensor weight = sample("weight", dist::Normal(guess, kPriorScale));
  return sample("measurement", dist::Normal(weight, kMeasurementScale), scalar_tensor(9.5));
}

// Conditioning on data known only at run time.
Tensor deferred_conditioned_scale(const Tensor& measurement, double guess) {
  return handlers::condition(scale, {{"measurement", measurement}})(guess);
}

// The exact posterior of weight given one measurement: Normal prior, Normal likelihood.
struct Posterior {
  double mean, sd;
};
Posterior exact_posterior(double guess, double measurement) {
  const double prior_precision = 1.0 / (kPriorScale * kPriorScale);
  const double likelihood_precision = 1.0 / (kMeasurementScale * kMeasurementScale);
  const double precision = prior_precision + likelihood_precision;
  return {(prior_precision * guess + likelihood_precision * measurement) / precision,
          std::sqrt(1.0 / precision)};
}

void scale_parametrized_guide(double guess) {
  const Tensor a = param("a", guess);
  const Tensor b = param("b", 1.0, constraints::positive);
  sample("weight", dist::Normal(a, b));
}

void print_sites(const char* title, const Trace& tr) {
  std::printf("%s\n", title);
  for (const Site& s : tr) {
    std::printf("  %-12s value %8.4f  %s  log_prob %8.4f\n", s.name.c_str(), s.value.item(),
                s.is_observed ? "observed" : "latent  ", s.log_prob_sum().item());
  }
  std::printf("  log p(trace) %.4f\n", tr.log_prob_sum().item());
}

double correlation(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i] / n, my += y[i] / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

int main() {
  set_rng_seed(0);
  const double guess = 8.5;

  std::printf("scale(%.1f), three draws of the measurement:", guess);
  for (int i = 0; i < 3; ++i) std::printf(" %.4f", scale(guess).item());
  std::printf("\n\n");

  // Conditioning: the handler form and the observed-value form give the same program. Run
  // under one seed, both draw the same weight, so their traces agree site by site.
  auto conditioned_scale = handlers::condition(scale, {{"measurement", scalar_tensor(9.5)}});
  print_sites("trace of condition(scale, {measurement: 9.5})(8.5):",
              handlers::trace(handlers::seed(conditioned_scale, 1)).get_trace(guess));
  print_sites("trace of scale_obs(8.5) (sample(\"measurement\", d, obs)):",
              handlers::trace(handlers::seed(scale_obs, 1)).get_trace(guess));
  const Trace deferred = handlers::trace(handlers::seed(deferred_conditioned_scale, 1))
                             .get_trace(scalar_tensor(9.5), guess);
  std::printf("deferred_conditioned_scale(9.5, 8.5): log p(trace) %.4f\n\n",
              deferred.log_prob_sum().item());

  // An intervention: do(weight = 12) still samples weight from its prior (and records it),
  // but the measurement now follows the intervened value, not the sampled one.
  constexpr int kRuns = 20000;
  auto intervened = handlers::do_(scale, {{"weight", scalar_tensor(12.0)}});
  std::vector<double> w_plain, m_plain, w_do, m_do;
  for (int i = 0; i < kRuns; ++i) {
    const Trace plain = handlers::trace(scale).get_trace(guess);
    w_plain.push_back(plain.at("weight").value.item());
    m_plain.push_back(plain.at("measurement").value.item());
    const Trace tr = handlers::trace(intervened).get_trace(guess);
    w_do.push_back(tr.at("weight").value.item());
    m_do.push_back(tr.at("measurement").value.item());
  }
  const double sd_m = std::sqrt(kPriorScale * kPriorScale + kMeasurementScale * kMeasurementScale);
  std::printf("do(scale, {weight: 12}) against scale, %d runs each:\n", kRuns);
  std::printf(
      "  scale:  mean weight %.3f, mean measurement %.3f, corr(weight, measurement) %.3f"
      " (exact %.3f)\n",
      mean_of(w_plain), mean_of(m_plain), correlation(w_plain, m_plain), kPriorScale / sd_m);
  std::printf(
      "  do:     mean weight %.3f, mean measurement %.3f, corr(weight, measurement) %.3f"
      " (exact 0)\n\n",
      mean_of(w_do), mean_of(m_do), correlation(w_do, m_do));

  // Inference: fit a Normal(a, b) guide to p(weight | measurement = 9.5) with SVI, using the
  // tutorial's optimizer.
  const Posterior exact = exact_posterior(guess, 9.5);
  clear_param_store();
  SVI svi(conditioned_scale, scale_parametrized_guide, optim::SGD({.lr = 0.001, .momentum = 0.1}),
          Trace_ELBO());
  constexpr int kSteps = 2500;
  std::vector<double> a_hist, b_hist, losses;
  std::printf("SVI: Trace_ELBO, SGD(lr 0.001, momentum 0.1), %d steps\n", kSteps);
  std::printf("  %5s %10s %8s %8s\n", "step", "loss", "a", "b");
  for (int t = 0; t < kSteps; ++t) {
    losses.push_back(svi.step(guess));
    a_hist.push_back(param("a").item());
    b_hist.push_back(param("b").item());
    if (t == 0 || (t + 1) % 250 == 0) {
      std::printf("  %5d %10.4f %8.4f %8.4f\n", t + 1, losses.back(), a_hist.back(), b_hist.back());
    }
  }
  const std::vector<double> a_tail(a_hist.end() - 500, a_hist.end());
  const std::vector<double> b_tail(b_hist.end() - 500, b_hist.end());
  std::printf("a = %.4f, b = %.4f (mean of the last 500 steps: a %.4f, b %.4f)\n", a_hist.back(),
              b_hist.back(), mean_of(a_tail), mean_of(b_tail));
  std::printf("exact posterior: mean %.4f, sd %.4f\n", exact.mean, exact.sd);

  // The guide equal to the exact posterior makes every ELBO draw equal log p(9.5) exactly:
  // the loss is -log Normal(9.5; guess, sqrt(1 + 0.75^2)) without Monte Carlo noise.
  auto perfect_guide = [exact](double) { sample("weight", dist::Normal(exact.mean, exact.sd)); };
  SVI perfect(conditioned_scale, perfect_guide, optim::SGD(), Trace_ELBO());
  const double log_evidence = dist::Normal(guess, sd_m).log_prob(scalar_tensor(9.5)).item();
  std::printf("perfect guide: loss %.4f, %.4f, %.4f (exact -log p(9.5) = %.4f)\n",
              perfect.evaluate_loss(guess).value(), perfect.evaluate_loss(guess).value(),
              perfect.evaluate_loss(guess).value(), -log_evidence);
  double fitted_loss = 0.0;
  for (int i = 0; i < 2000; ++i) fitted_loss += svi.evaluate_loss(guess).value() / 2000;
  std::printf("fitted guide: mean loss over 2000 draws %.4f\n", fitted_loss);
  return 0;
}
