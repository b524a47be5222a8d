// Which model explains Old Faithful's eruption durations better, one Normal or a mixture of
// two? Each model's evidence p(x) is estimated by importance sampling, with a guide fitted by
// SVI (and widened) as the proposal; their ratio is the Bayes factor. The one-Normal model
// has a Normal-Gamma prior, so its evidence is also known exactly, a check on the estimate;
// runs with the prior as the proposal show what a poor proposal's ESS looks like.
//
//   importance_evidence [--samples N] [--steps N] [--widen C] [--seed S] [path/to/faithful.csv]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ember/ember.hpp>
#include <functional>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

using namespace ember;

namespace {

const TensorOptions kOpts = TensorOptions{}.with_dtype(kFloat64);

// The Normal-Gamma prior of a component: precision tau ~ Gamma(kA0, kB0), mean
// mu | tau ~ Normal(m0, 1 / sqrt(kK0 * tau)).
constexpr double kA0 = 2.0, kB0 = 1.0, kK0 = 1.0;

Tensor num(double v) { return scalar_tensor(v, kOpts); }

// A component's precision and mean, drawn from its Normal-Gamma prior.
std::pair<Tensor, Tensor> component(const std::string& suffix, double m0) {
  const Tensor tau = sample("tau" + suffix, dist::Gamma(num(kA0), num(kB0)));
  const Tensor mu = sample("mu" + suffix, dist::Normal(num(m0), 1.0 / sqrt(tau * kK0)));
  return {tau, mu};
}

// Model A: every duration from one Normal, its prior centred on 3.5 min.
void one_normal(const Tensor& x) {
  const auto [tau, mu] = component("", 3.5);
  auto data = plate("data", x.size(0));
  sample("obs", dist::Normal(mu, 1.0 / sqrt(tau)), x);
}

// Model B: short eruptions (prior mean 2 min) with probability p, long ones (4.5 min)
// otherwise. The two priors keep the labels apart, so the posterior has one mode. The
// likelihood, the component marginalized, enters as a factor.
void two_normals(const Tensor& x) {
  const Tensor p = sample("p", dist::Beta(num(2.0), num(2.0)));
  const auto [tau1, mu1] = component("_short", 2.0);
  const auto [tau2, mu2] = component("_long", 4.5);
  auto data = plate("data", x.size(0));
  const Tensor short_lp = log(p) + dist::Normal(mu1, 1.0 / sqrt(tau1)).log_prob(x);
  const Tensor long_lp = log1p(-p) + dist::Normal(mu2, 1.0 / sqrt(tau2)).log_prob(x);
  factor("obs", logsumexp(stack({short_lp, long_lp}, 0), {0}));
}

// Mean-field guides: LogNormal precisions, Normal means, a Beta weight. `widen` multiplies
// each site's spread (SVI's fit, by KL(q || p), is narrower than the posterior, and an
// importance proposal must not be).
void component_guide(const std::string& suffix, double tau0, double mu0, double widen) {
  const Tensor tl = param("tau_loc" + suffix, num(std::log(tau0)));
  const Tensor ts = param("tau_scale" + suffix, num(0.1), constraints::positive);
  const Tensor ml = param("mu_loc" + suffix, num(mu0));
  const Tensor ms = param("mu_scale" + suffix, num(0.05), constraints::positive);
  sample("tau" + suffix, dist::LogNormal(tl, ts * widen));
  sample("mu" + suffix, dist::Normal(ml, ms * widen));
}

void one_normal_guide(const Tensor&, double widen) { component_guide("", 1.0, 3.5, widen); }

void two_normals_guide(const Tensor&, double widen) {
  const Tensor a = param("p_a", num(20.0), constraints::positive);
  const Tensor b = param("p_b", num(30.0), constraints::positive);
  // Beta(a / c^2, b / c^2) keeps the mean and widens the spread by about c.
  sample("p", dist::Beta(a / (widen * widen), b / (widen * widen)));
  component_guide("_short", 10.0, 2.0, widen);
  component_guide("_long", 5.0, 4.5, widen);
}

// log p(x) under model A, by Normal-Gamma conjugacy.
double exact_one_normal(const std::vector<double>& x) {
  const auto n = static_cast<double>(x.size());
  double mean = 0.0, ss = 0.0;
  for (double v : x) mean += v / n;
  for (double v : x) ss += (v - mean) * (v - mean);
  const double m0 = 3.5, kn = kK0 + n, an = kA0 + n / 2;
  const double bn = kB0 + 0.5 * ss + kK0 * n * (mean - m0) * (mean - m0) / (2 * kn);
  return std::lgamma(an) - std::lgamma(kA0) + kA0 * std::log(kB0) - an * std::log(bn) +
         0.5 * (std::log(kK0) - std::log(kn)) - 0.5 * n * std::log(2 * std::numbers::pi);
}

struct Options {
  std::int64_t samples = 20000;
  std::int64_t steps = 3000;
  double widen = 1.2;
  std::uint64_t seed = 0;
};

// One importance run's log evidence, its standard error (about sqrt(1/ESS - 1/S)) and ESS.
struct Estimate {
  double log_evidence, se, ess;
};

Estimate estimate(const ImportanceResult& r) {
  const double ess = r.effective_sample_size();
  const double se =
      std::sqrt(std::max(0.0, 1.0 / ess - 1.0 / static_cast<double>(r.num_samples())));
  return {r.log_evidence(), se, ess};
}

struct Evidence {
  double elbo;
  Estimate guided, prior;
  ImportanceResult result;  // the guided run
};

using Program = std::function<void(const Tensor&, double)>;

// Fits the guide by SVI and estimates the ELBO, then the evidence with the widened guide as
// the proposal, and with the prior.
Evidence evidence(const std::function<void(const Tensor&)>& model, const Program& guide,
                  const Tensor& x, const Options& o) {
  clear_param_store();
  set_rng_seed(o.seed);
  auto fitted = [&guide](const Tensor& d) { guide(d, 1.0); };
  SVI svi(model, fitted, optim::Adam({.lr = 0.02}), Trace_ELBO());
  svi.run(o.steps, RunOptions{.progress = Progress::None}, x);
  double loss = 0.0;
  const int evals = 200;
  for (int i = 0; i < evals; ++i) loss += svi.evaluate_loss(x).value() / evals;

  const double widen = o.widen;
  auto proposal = [&guide, widen](const Tensor& d) { guide(d, widen); };
  ImportanceResult r = Importance(model, proposal, o.samples).run(x);
  const Estimate guided = estimate(r);
  const Estimate prior = estimate(Importance(model, o.samples).run(x));
  return {-loss, guided, prior, std::move(r)};
}

void print_row(const char* name, const std::string& elbo, const Estimate& e, std::int64_t samples) {
  std::printf("%-12s %12s %14.3f %9.3f %9.0f / %lld\n", name, elbo.c_str(), e.log_evidence, e.se,
              e.ess, static_cast<long long>(samples));
}

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string csv = EMBER_DATA_DIR "/faithful.csv";
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--samples") && has_value) {
      o.samples = std::atoll(argv[++i]);
    } else if (!std::strcmp(argv[i], "--steps") && has_value) {
      o.steps = std::atoll(argv[++i]);
    } else if (!std::strcmp(argv[i], "--widen") && has_value) {
      o.widen = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--seed") && has_value) {
      o.seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (argv[i][0] != '-') {
      csv = argv[i];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--samples N] [--steps N] [--widen C] [--seed S] "
                   "[path/to/faithful.csv]\n",
                   argv[0]);
      return 2;
    }
  }

  const data::CsvTable table = data::read_csv(csv, {.dtype = kFloat64});
  const Tensor x = table["eruptions"];
  const std::vector<double> xs = x.to_vector<double>();
  const auto n = static_cast<double>(xs.size());
  double mean = 0.0, var = 0.0;
  for (double v : xs) mean += v / n;
  for (double v : xs) var += (v - mean) * (v - mean) / (n - 1);
  std::printf("Old Faithful eruption durations: %lld eruptions, mean %.3f min, sd %.3f min\n",
              static_cast<long long>(xs.size()), mean, std::sqrt(var));
  std::printf(
      "guides fitted by SVI (%lld steps), widened %.2gx as proposals; %lld samples each\n\n",
      static_cast<long long>(o.steps), o.widen, static_cast<long long>(o.samples));

  const Evidence a = evidence(one_normal, one_normal_guide, x, o);
  const Evidence b = evidence(two_normals, two_normals_guide, x, o);

  std::printf("%-12s %12s %14s %9s %18s\n", "model", "ELBO (SVI)", "log evidence", "+- se",
              "ESS / samples");
  print_row("one Normal", fixed2(a.elbo), a.guided, o.samples);
  std::printf("%-12s %12s %14.3f   (exact, Normal-Gamma conjugacy)\n", "", "",
              exact_one_normal(xs));
  print_row("two Normals", fixed2(b.elbo), b.guided, o.samples);
  std::printf("\nthe prior as the proposal instead, Importance(model, num_samples):\n");
  print_row("one Normal", "", a.prior, o.samples);
  print_row("two Normals", "", b.prior, o.samples);

  const double log_bf = b.guided.log_evidence - a.guided.log_evidence;
  std::printf("\nlog Bayes factor, two Normals : one Normal = %.2f +- %.2f (the guided runs)\n",
              log_bf, std::hypot(a.guided.se, b.guided.se));
  std::printf("Bayes factor = 10^%.1f\n", log_bf / std::log(10.0));

  const ImportanceResult& r = b.result;
  const double sd_short = 1.0 / std::sqrt(r.mean("tau_short").item());
  const double sd_long = 1.0 / std::sqrt(r.mean("tau_long").item());
  std::printf(
      "two Normals, weighted posterior means: p(short) %.3f, means %.3f and %.3f min, "
      "sds about %.3f and %.3f min\n",
      r.mean("p").item(), r.mean("mu_short").item(), r.mean("mu_long").item(), sd_short, sd_long);
  return 0;
}
