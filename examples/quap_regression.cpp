// Statistical Rethinking's quap (chapter 4) on real data: the waiting time before an Old
// Faithful eruption regressed on the eruption's length (data/faithful.csv, 272 eruptions),
// fitted with AutoLaplaceApproximation, and the quadratic approximation set beside the exact
// posterior, which the conjugate Normal-Gamma prior makes available in closed form.
//
//   quap_regression [--steps 3000] [--samples 20000] [path/to/faithful.csv]
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>

#include "ember/ember.hpp"

using namespace ember;

namespace {

// The prior: tau ~ Gamma(a0, b0) (tau the noise precision), beta | tau ~ N(m0, V0 / tau) with
// V0 diagonal; waiting ~ N(beta_0 + beta_1 * x, 1 / sqrt(tau)), x the centred length.
constexpr double kA0 = 2.0, kB0 = 50.0;
constexpr double kM0[2] = {70.0, 0.0};
constexpr double kV0[2] = {100.0, 100.0};

void model(const Tensor& x, const Tensor& waiting) {
  const TensorOptions f64{kFloat64};
  const Tensor tau = sample("tau", dist::Gamma(scalar_tensor(kA0, f64), kB0));
  const Tensor beta_scale = sqrt(div(tensor({kV0[0], kV0[1]}, f64), tau.unsqueeze(-1)));
  const Tensor beta =
      sample("beta", dist::Normal(tensor({kM0[0], kM0[1]}, f64), beta_scale).to_event(1));
  const Tensor a = beta.select(-1, 0).unsqueeze(-1), b = beta.select(-1, 1).unsqueeze(-1);
  auto rows = plate("eruptions", x.size(0));
  sample("waiting", dist::Normal(add(a, mul(b, x)), reciprocal(sqrt(tau)).unsqueeze(-1)), waiting);
}

// The exact posterior: beta is Student-t with 2 an degrees of freedom around mn with scale
// (bn / an) Vn, tau is Gamma(an, bn).
struct Exact {
  double mean[2], sd[2];
  double sigma_mean, sigma_sd;
};

Exact exact_posterior(const std::vector<double>& x, const std::vector<double>& y) {
  // Vn^-1 = V0^-1 + X^T X, X = [1, x].
  double p00 = 1 / kV0[0], p01 = 0, p11 = 1 / kV0[1];
  double r0 = kM0[0] / kV0[0], r1 = kM0[1] / kV0[1], yy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    p00 += 1;
    p01 += x[i];
    p11 += x[i] * x[i];
    r0 += y[i];
    r1 += x[i] * y[i];
    yy += y[i] * y[i];
  }
  const double det = p00 * p11 - p01 * p01;
  const double v00 = p11 / det, v01 = -p01 / det, v11 = p00 / det;
  const double m0 = v00 * r0 + v01 * r1, m1 = v01 * r0 + v11 * r1;
  const double an = kA0 + 0.5 * x.size();
  const double prior_quad = kM0[0] * kM0[0] / kV0[0] + kM0[1] * kM0[1] / kV0[1];
  const double post_quad = m0 * (p00 * m0 + p01 * m1) + m1 * (p01 * m0 + p11 * m1);
  const double bn = kB0 + 0.5 * (yy + prior_quad - post_quad);
  const double t_var = bn / an * (2 * an) / (2 * an - 2);
  Exact e{};
  e.mean[0] = m0;
  e.mean[1] = m1;
  e.sd[0] = std::sqrt(t_var * v00);
  e.sd[1] = std::sqrt(t_var * v11);
  // sigma = tau^-1/2 with tau ~ Gamma(an, bn): E[sigma^k] = bn^(k/2) Gamma(an - k/2) / Gamma(an).
  e.sigma_mean = std::sqrt(bn) * std::exp(std::lgamma(an - 0.5) - std::lgamma(an));
  e.sigma_sd = std::sqrt(bn / (an - 1) - e.sigma_mean * e.sigma_mean);
  return e;
}

double sd_of(const Tensor& t) {
  const double m = mean(t).item();
  return std::sqrt(mean(square(sub(t, m))).item());
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 3000;
  std::int64_t samples = 20000;
  std::string path = std::string(EMBER_DATA_DIR) + "/faithful.csv";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
      samples = std::atoll(argv[++i]);
    } else if (argv[i][0] == '-') {
      std::cerr << "usage: quap_regression [--steps N] [--samples N] [faithful.csv]\n";
      return 2;
    } else {
      path = argv[i];
    }
  }
  try {
    const data::CsvTable table = data::read_csv(path, {.dtype = kFloat64});
    const Tensor length = table["eruptions"], waiting = table["waiting"];
    const Tensor x = sub(length, mean(length).item());

    set_rng_seed(0);
    auto guide = autoguide::AutoLaplaceApproximation(model);
    {
      SVI svi(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO());
      for (int i = 0; i < steps; ++i) svi.step(x, waiting);
    }
    SVI settle(model, guide, optim::Adam({.lr = 0.005}), Trace_ELBO());
    for (int i = 0; i < steps / 3; ++i) settle.step(x, waiting);

    // The Gaussian at the mode, its precision the Hessian there (in (beta, log tau)).
    auto quap = guide.laplace_approximation(x, waiting);
    const handlers::ValueMap draws = quap.sample_posterior(samples);
    const Tensor beta = draws.at("beta"), sigma = reciprocal(sqrt(draws.at("tau")));
    infer::print_summary({{"beta", beta}, {"sigma", sigma}}, 0.89);

    const Exact e = exact_posterior(x.to_vector<double>(), waiting.to_vector<double>());
    std::cout << "\n"
              << std::fixed << std::setprecision(4)
              << "parameter          quap mean   exact mean    quap sd    exact sd\n";
    const char* names[2] = {"a (intercept)", "b (slope)"};
    for (int k = 0; k < 2; ++k) {
      const Tensor col = beta.select(1, k);
      std::cout << std::left << std::setw(17) << names[k] << std::right << std::setw(11)
                << mean(col).item() << std::setw(13) << e.mean[k] << std::setw(11) << sd_of(col)
                << std::setw(12) << e.sd[k] << "\n";
    }
    std::cout << std::left << std::setw(17) << "sigma" << std::right << std::setw(11)
              << mean(sigma).item() << std::setw(13) << e.sigma_mean << std::setw(11)
              << sd_of(sigma) << std::setw(12) << e.sigma_sd << "\n";
    std::cout << "(quap: " << samples << " draws of the Laplace approximation; exact: the "
              << "Normal-Gamma posterior in closed form)\n";
  } catch (const Error& e) {
    std::cerr << "quap_regression: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
