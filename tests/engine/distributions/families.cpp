// The entries of the family table: one function per family, its numbers from SciPy where a
// comment says so and from the closed forms otherwise.
#include "families.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "gamma_reference.hpp"

namespace ember::test {
namespace {

using Error = Invalid::Error;
constexpr double kPi = std::numbers::pi;

double sigmoid(double l) { return 1.0 / (1.0 + std::exp(-l)); }
double logit(double p) { return std::log(p) - std::log1p(-p); }

// ContinuousBernoulli from the paper's formulas in probs (Loaiza-Ganem & Cunningham 2019), not
// Ember's forms in |logits|: the CDF (p^x (1 - p)^(1 - x) + p - 1) / (2p - 1), the mean
// p / (2p - 1) + 1 / (2 atanh(1 - 2p)) and the variance p (p - 1) / (1 - 2p)^2 +
// 1 / (2 atanh(1 - 2p))^2, with 2 atanh(1 - 2p) written -l (it rounds to infinity for p near
// 0 or 1); at p = 1/2 the uniform's.
double cb_cdf(double p, double x) {
  if (x <= 0) return 0.0;
  if (x >= 1) return 1.0;
  if (p == 0.5) return x;
  return (std::pow(p, x) * std::pow(1 - p, 1 - x) + p - 1) / (2 * p - 1);
}
double cb_mean(double p, double l) { return p == 0.5 ? 0.5 : p / (2 * p - 1) - 1 / l; }
double cb_variance(double p, double l) {
  return p == 0.5 ? 1.0 / 12.0 : p * (p - 1) / ((1 - 2 * p) * (1 - 2 * p)) + 1 / (l * l);
}
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// -(p log p + (1 - p) log(1 - p)), the Bernoulli entropy.
double bernoulli_entropy(double p) { return -(p * std::log(p) + (1 - p) * std::log(1 - p)); }

double binomial_pmf(double n, double p, std::int64_t k) {
  if (k > n) return 0.0;
  return std::exp(std::lgamma(n + 1) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1) +
                  k * std::log(p) + (n - k) * std::log1p(-p));
}

double geometric_pmf(double p, std::int64_t k) { return p * std::pow(1 - p, double(k)); }

bool positive(const Scalars&, double x) { return x > 0.0; }
bool nonnegative(const Scalars&, double x) { return x >= 0.0; }

// The accessors `get` of the family class that `make` builds, as Family::accessors.
template <typename Make, typename... Get>
std::function<Tensors(const Tensors&)> accessors(Make make, Get... get) {
  return [make, get...](const Tensors& p) {
    const auto d = make(p);
    return Tensors{(d.*get)()...};
  };
}

// A check that validation makes (and set_validation_enabled(false) turns off).
Invalid invalid_value(std::function<void()> statement, std::vector<std::string> fragments) {
  return {std::move(statement), Error::Value, std::move(fragments)};
}
// Parameters that do not broadcast, or of a rank the family cannot take.
Invalid invalid_shape(std::function<void()> statement, std::vector<std::string> fragments) {
  return {std::move(statement), Error::Shape, std::move(fragments), false};
}
// What the family does not have, whatever the validation.
Invalid unavailable(std::function<void()> statement, std::vector<std::string> fragments) {
  return {std::move(statement), Error::Value, std::move(fragments), false};
}

// ------------------------------------------------------------------ continuous ----
Family normal_family() {
  const auto make = [](const Tensors& p) { return dist::Normal(p[0], p[1]); };
  return {
      .name = "Normal",
      .dist_name = "Normal",
      .make = make,
      .accessors = accessors(make, &dist::Normal::loc, &dist::Normal::scale),
      .params = {{"loc", normal_values()}, {"scale", uniform_values(0.5, 2.0)}},
      .value = normal_values(),
      .has_rsample = true,
      .reference = Reference{"Normal"},
      .sampler =
          Sampler{.seed = 1234,
                  .cases = {{1.5, 0.7}},
                  .cdf = [](const Scalars& p, double x) { return normal_cdf((x - p[0]) / p[1]); },
                  .mean = [](const Scalars& p) { return p[0]; },
                  .variance = [](const Scalars& p) { return p[1] * p[1]; },
                  .var_rtol = 0.05},
      .moments = {{.params = {{1.0, -2.0}, {0.5, 3.0}},
                   .mean = Expected{{1.0, -2.0}},
                   .variance = Expected{{0.25, 9.0}},
                   .entropy = Expected{{0.5 * std::log(2 * kPi * std::numbers::e * 0.25),
                                        0.5 * std::log(2 * kPi * std::numbers::e * 9.0)}}}},
      .invalid = {invalid_value([] { dist::Normal(0.0, -1.0); },
                                {"Normal", "scale", "positive", "-1"}),
                  invalid_value(
                      [] {
                        dist::Normal(zeros({2}), tensor({1.0, 0.0}));
                      },
                      {"scale", "[1]"}),
                  invalid_shape([] { dist::Normal(zeros({2}), ones({3})); },
                                {"Normal", "parameter scale of shape (3)",
                                 "does not broadcast with loc of shape (2)"}),
                  invalid_value([] { dist::Normal(0.0, 1.0).log_prob(tensor({NAN})); },
                                {"Normal.log_prob", "support"})},
  };
}

Family log_normal_family() {
  const auto make = [](const Tensors& p) { return dist::LogNormal(p[0], p[1]); };
  return {
      .name = "LogNormal",
      .dist_name = "LogNormal",
      .make = make,
      .accessors = accessors(make, &dist::LogNormal::loc, &dist::LogNormal::scale),
      .params = {{"loc", normal_values()},
                 {"scale", uniform_values(0.5, 2.0), uniform_values(0.5, 1.5)}},
      .value = uniform_values(0.2, 3.0),
      .has_rsample = true,
      .reference = Reference{"LogNormal"},
      .sampler = Sampler{
          .seed = 1234,
          .cases = {{0.3, 0.4}},
          .cdf = [](const Scalars& p,
                    double x) { return x <= 0 ? 0.0 : normal_cdf((std::log(x) - p[0]) / p[1]); },
          .in_support = positive,
          .mean = [](const Scalars& p) { return std::exp(p[0] + 0.5 * p[1] * p[1]); },
          .variance =
              [](const Scalars& p) {
                const double m = std::exp(p[0] + 0.5 * p[1] * p[1]);
                return std::expm1(p[1] * p[1]) * m * m;
              },
          .var_rtol = 0.08},
      // SciPy's lognorm(s=scale, scale=exp(loc)) mean, var and entropy.
      .moments = {{.params = {{0.5, -1.0}, {0.3, 1.2}},
                   .mean = Expected{{1.7246083823764355, 0.7557837414557255}},
                   .variance = Expected{{0.2801001303266057, 1.8396906425683945}},
                   .entropy = Expected{{0.7149657288787366, 0.6012600899986273}}}},
      .invalid = {invalid_value([] { dist::LogNormal(0.0, -1.0); },
                                {"LogNormal", "scale", "positive", "-1"}),
                  invalid_value(
                      [] {
                        dist::LogNormal(zeros({2}), tensor({1.0, 0.0}));
                      },
                      {"scale", "[1]"}),
                  invalid_value(
                      [] {
                        dist::LogNormal(0.0, 1.0).log_prob(tensor({1.0, 0.0}));
                      },
                      {"LogNormal.log_prob", "positive", "[1]"}),
                  invalid_value([] { dist::LogNormal(0.0, 1.0).log_prob(tensor({-2.0})); },
                                {"LogNormal.log_prob", "-2"})},
      .support = Support{.params = {scalar(0.0), scalar(1.0)}, .outside = {-1.0, 0.0}},
  };
}

Family half_normal_family() {
  const auto make = [](const Tensors& p) { return dist::HalfNormal(p[0]); };
  return {
      .name = "HalfNormal",
      .dist_name = "HalfNormal",
      .make = make,
      .accessors = accessors(make, &dist::HalfNormal::scale),
      .params = {{"scale", uniform_values(0.5, 2.0)}},
      .value = uniform_values(0.1, 3.0),
      .has_rsample = true,
      .reference = Reference{"HalfNormal"},
      .sampler = Sampler{
          .seed = 1234,
          .cases = {{1.7}},
          .cdf = [](const Scalars& p,
                    double x) { return x <= 0 ? 0.0 : std::erf(x / (p[0] * std::sqrt(2.0))); },
          .in_support = nonnegative,
          .mean = [](const Scalars& p) { return p[0] * std::sqrt(2 / kPi); },
          .variance = [](const Scalars& p) { return p[0] * p[0] * (1 - 2 / kPi); },
          .var_rtol = 0.05},
      // SciPy's halfnorm(scale=scale) mean, var and entropy.
      .moments = {{.params = {{0.5, 3.0}},
                   .mean = Expected{{0.3989422804014327, 2.3936536824085963}},
                   .variance = Expected{{0.09084505690810465, 3.270422048691768}},
                   .entropy = Expected{{0.0326441720847821, 1.8244036413128373}}}},
      .invalid = {invalid_value([] { dist::HalfNormal(-1.0); },
                                {"HalfNormal", "scale", "positive", "-1"}),
                  invalid_value(
                      [] {
                        dist::HalfNormal(tensor({1.0, 0.0}));
                      },
                      {"scale", "[1]"}),
                  invalid_value(
                      [] {
                        dist::HalfNormal(1.0).log_prob(tensor({1.0, -0.5}));
                      },
                      {"HalfNormal.log_prob", "nonnegative", "-0.5", "[1]"})},
      .support = Support{.params = {scalar(1.0)}, .edge = Array{0.0}, .outside = {-1.0}},
  };
}

Family cauchy_family() {
  const auto make = [](const Tensors& p) { return dist::Cauchy(p[0], p[1]); };
  return {
      .name = "Cauchy",
      .dist_name = "Cauchy",
      .make = make,
      .accessors = accessors(make, &dist::Cauchy::loc, &dist::Cauchy::scale),
      .params = {{"loc", normal_values()}, {"scale", uniform_values(0.5, 2.0)}},
      .value = normal_values(),
      .has_rsample = true,
      .reference = Reference{"Cauchy"},
      // No moments: the quantiles are checked in continuous_test.cpp.
      .sampler = Sampler{.seed = 1234,
                         .cases = {{-1.0, 2.5}},
                         .cdf = [](const Scalars& p,
                                   double x) { return 0.5 + std::atan((x - p[0]) / p[1]) / kPi; }},
      // SciPy's cauchy(loc, scale).entropy(); the mean and variance are undefined.
      .moments = {{.params = {{1.0, -2.0}, {0.5, 3.0}},
                   .entropy = Expected{{1.8378770664093453, 3.6296365356374007}}}},
      .invalid =
          {invalid_value([] { dist::Cauchy(0.0, -1.0); }, {"Cauchy", "scale", "positive", "-1"}),
           invalid_value(
               [] {
                 dist::Cauchy(zeros({2}), tensor({1.0, 0.0}));
               },
               {"scale", "[1]"}),
           invalid_shape([] { dist::Cauchy(zeros({2}), ones({3})); }, {"Cauchy", "(2)", "(3)"}),
           invalid_value([] { dist::Cauchy(0.0, 1.0).log_prob(tensor({NAN})); },
                         {"Cauchy.log_prob", "support"}),
           unavailable([] { dist::Cauchy(0.0, 1.0).mean(); }, {"Cauchy", "mean", "undefined"}),
           unavailable([] { dist::Cauchy(0.0, 1.0).variance(); },
                       {"Cauchy", "variance", "undefined"}),
           unavailable([] { dist::Cauchy(0.0, 1.0).stddev(); }, {"Cauchy", "variance"})},
  };
}

Family half_cauchy_family() {
  const auto make = [](const Tensors& p) { return dist::HalfCauchy(p[0]); };
  return {
      .name = "HalfCauchy",
      .dist_name = "HalfCauchy",
      .make = make,
      .accessors = accessors(make, &dist::HalfCauchy::scale),
      .params = {{"scale", uniform_values(0.5, 2.0)}},
      .value = uniform_values(0.1, 3.0),
      .has_rsample = true,
      .reference = Reference{"HalfCauchy"},
      .sampler =
          Sampler{.seed = 1234,
                  .cases = {{0.8}},
                  .cdf = [](const Scalars& p,
                            double x) { return x <= 0 ? 0.0 : 2.0 * std::atan(x / p[0]) / kPi; },
                  .in_support = nonnegative},
      // SciPy's halfcauchy(scale=scale).entropy(); the moments are infinite.
      .moments = {{.params = {{0.5, 3.0}},
                   .mean = Expected{{INFINITY, INFINITY}},
                   .variance = Expected{{INFINITY, INFINITY}},
                   .entropy = Expected{{1.1447298858494, 2.9364893550774553}}}},
      .invalid = {invalid_value([] { dist::HalfCauchy(0.0); },
                                {"HalfCauchy", "scale", "positive", "0"}),
                  invalid_value(
                      [] {
                        dist::HalfCauchy(tensor({1.0, -3.0}));
                      },
                      {"scale", "-3", "[1]"}),
                  invalid_value([] { dist::HalfCauchy(1.0).log_prob(tensor({-0.25})); },
                                {"HalfCauchy.log_prob", "nonnegative", "-0.25"})},
      .support = Support{.params = {scalar(1.0)}, .edge = Array{0.0}, .outside = {-1.0}},
  };
}

Family laplace_family() {
  const auto make = [](const Tensors& p) { return dist::Laplace(p[0], p[1]); };
  return {
      .name = "Laplace",
      .dist_name = "Laplace",
      .make = make,
      .accessors = accessors(make, &dist::Laplace::loc, &dist::Laplace::scale),
      .params = {{"loc", normal_values()}, {"scale", uniform_values(0.5, 2.0)}},
      .value = normal_values(),  // off the kink at loc almost surely
      .has_rsample = true,
      .reference = Reference{"Laplace"},
      .sampler = Sampler{.seed = 1234,
                         .cases = {{1.5, 0.7}},
                         .cdf =
                             [](const Scalars& p, double x) {
                               const double z = (x - p[0]) / p[1];
                               return z < 0 ? 0.5 * std::exp(z) : 1.0 - 0.5 * std::exp(-z);
                             },
                         .mean = [](const Scalars& p) { return p[0]; },
                         .variance = [](const Scalars& p) { return 2 * p[1] * p[1]; },
                         .var_rtol = 0.08},
      // SciPy's laplace(loc, scale) mean, var and entropy.
      .moments = {{.params = {{1.0, -2.0}, {0.5, 3.0}},
                   .mean = Expected{{1.0, -2.0}},
                   .variance = Expected{{0.5, 18.0}},
                   .entropy = Expected{{1.0, 2.7917594692280554}}}},
      .invalid = {invalid_value([] { dist::Laplace(0.0, -2.0); },
                                {"Laplace", "scale", "positive", "-2"}),
                  invalid_value(
                      [] {
                        dist::Laplace(zeros({2}), tensor({1.0, 0.0}));
                      },
                      {"scale", "[1]"}),
                  invalid_shape([] { dist::Laplace(zeros({2}), ones({3})); },
                                {"Laplace", "(2)", "(3)"}),
                  invalid_value([] { dist::Laplace(0.0, 1.0).log_prob(tensor({NAN})); },
                                {"Laplace.log_prob", "support"})},
  };
}

Family uniform_family() {
  const auto make = [](const Tensors& p) { return dist::Uniform(p[0], p[1]); };
  return {
      .name = "Uniform",
      .dist_name = "Uniform",
      .make = make,
      .accessors = accessors(make, &dist::Uniform::low, &dist::Uniform::high),
      .params = {{"low", uniform_values(-2.0, -1.0)},
                 {"high", uniform_values(1.0, 2.0), uniform_values(0.0, 2.0)}},
      .value = uniform_values(-0.9, 0.9),  // inside every interval
      .has_rsample = true,
      .reference = Reference{"Uniform"},
      .sampler =
          Sampler{.seed = 1234,
                  .cases = {{-1.5, 4.0}},
                  .cdf = [](const Scalars& p,
                            double x) { return std::clamp((x - p[0]) / (p[1] - p[0]), 0.0, 1.0); },
                  .in_support = [](const Scalars& p, double x) { return p[0] < x && x < p[1]; },
                  .mean = [](const Scalars& p) { return 0.5 * (p[0] + p[1]); },
                  .variance = [](const Scalars& p) { return (p[1] - p[0]) * (p[1] - p[0]) / 12; },
                  .var_rtol = 0.05},
      // SciPy's uniform(low, high - low) mean, var and entropy.
      .moments = {{.params = {{0.0, -2.0}, {1.0, 3.0}},
                   .mean = Expected{{0.5, 0.5}},
                   .variance = Expected{{0.08333333333333333, 2.083333333333333}},
                   .entropy = Expected{{0.0, 1.6094379124341003}}}},
      .invalid = {invalid_value([] { dist::Uniform(1.0, 1.0); },
                                {"Uniform", "low", "less than high", "low 1", "high 1"}),
                  invalid_value([] { dist::Uniform(1.0, 0.0); }, {"Uniform", "low 1", "high 0"}),
                  invalid_value(
                      [] {
                        dist::Uniform(zeros({2}), tensor({1.0, -1.0}));
                      },
                      {"Uniform", "low 0", "high -1", "[1]"}),
                  invalid_value(
                      [] {
                        dist::Uniform(tensor({0.0, 3.0}).reshape({2, 1}), tensor({1.0, 2.0}));
                      },
                      {"low 3", "high 1", "[1, 0]"}),
                  invalid_shape([] { dist::Uniform(zeros({2}), ones({3})); },
                                {"Uniform", "(2)", "(3)"})},
      .support = Support{.params = {scalar(0.0), scalar(1.0)}, .outside = {-0.5, 2.0}},
  };
}

Family exponential_family() {
  const auto make = [](const Tensors& p) { return dist::Exponential(p[0]); };
  return {
      .name = "Exponential",
      .dist_name = "Exponential",
      .make = make,
      .accessors = accessors(make, &dist::Exponential::rate),
      .params = {{"rate", uniform_values(0.5, 2.0)}},
      .value = uniform_values(0.05, 3.0),
      .has_rsample = true,
      .reference = Reference{"Exponential"},
      .sampler = Sampler{
          .seed = 1234,
          .cases = {{2.5}},
          .cdf = [](const Scalars& p, double x) { return x <= 0 ? 0.0 : -std::expm1(-p[0] * x); },
          .in_support = positive,
          .mean = [](const Scalars& p) { return 1 / p[0]; },
          .variance = [](const Scalars& p) { return 1 / (p[0] * p[0]); },
          .var_rtol = 0.1},
      // SciPy's expon(scale=1/rate) mean, var and entropy.
      .moments = {{.params = {{0.5, 4.0}},
                   .mean = Expected{{2.0, 0.25}},
                   .variance = Expected{{4.0, 0.0625}},
                   .entropy = Expected{{1.6931471805599454, -0.3862943611198906}}}},
      .invalid = {invalid_value([] { dist::Exponential(-1.0); },
                                {"Exponential", "rate", "positive", "-1"}),
                  invalid_value(
                      [] {
                        dist::Exponential(tensor({1.0, 0.0}));
                      },
                      {"rate", "[1]"}),
                  invalid_value(
                      [] {
                        dist::Exponential(1.0).log_prob(tensor({2.0, -1.5}));
                      },
                      {"Exponential.log_prob", "nonnegative", "-1.5", "[1]"})},
      .support = Support{.params = {scalar(1.0)}, .edge = Array{0.0}, .outside = {-1.0}},
  };
}

// ---------------------------------------------------------------- Gamma-based ----
Family gamma_family() {
  const auto make = [](const Tensors& p) { return dist::Gamma(p[0], p[1]); };
  return {
      .name = "Gamma",
      .dist_name = "Gamma",
      .make = make,
      .accessors = accessors(make, &dist::Gamma::concentration, &dist::Gamma::rate),
      .params = {{"concentration", uniform_values(0.3, 4.0), uniform_values(0.3, 5.0)},
                 {"rate", uniform_values(0.5, 2.0)}},
      .value = uniform_values(0.2, 3.0),
      .has_rsample = true,
      // With the concentration fixed the Gamma(a, 1) draws do not move, so finite
      // differences in rate are valid (in it they are not: a perturbation may change the
      // accepted proposal; gamma_test.cpp checks expectations instead).
      .rsample_fixed = {0},
      // float32 rounds each term of the sum (lgamma(200) is 857): its tolerance scales with
      // their size.
      .reference = Reference{.family = "Gamma",
                             .f32_rtol = 1e-6,
                             .f32_scale =
                                 [](const ReferenceCase& c) {
                                   const double a = c.scalar("concentration"), b = c.scalar("rate"),
                                                x = c.value[0];
                                   return 1 + std::abs(a * std::log(b)) +
                                          std::abs((a - 1) * std::log(x)) + std::abs(b * x) +
                                          std::abs(std::lgamma(a));
                                 }},
      .sampler =
          Sampler{.seed = 1234,
                  .cases = {{0.1, 1.5}, {0.5, 1.5}, {1.0, 1.5}, {2.5, 1.5}, {50.0, 1.5}},
                  .cdf = [](const Scalars& p, double x) { return gamma_cdf(p[0], p[1] * x); },
                  .in_support = positive,
                  .slow = true},
      .moments = {{.params = {{2.5, 0.3}, {3.0, 0.5}},
                   .mean = Expected{{2.5 / 3.0, 0.3 / 0.5}},
                   .variance = Expected{{2.5 / 9.0, 0.3 / 0.25}},
                   .entropy = Expected{{0.6313356208369447, -0.3628217801620722}}}},  // SciPy
      .invalid = {invalid_value([] { dist::Gamma(-1.0, 1.0); },
                                {"Gamma", "concentration", "positive", "-1"}),
                  invalid_value(
                      [] {
                        dist::Gamma(tensor({1.0, 0.0}), 1.0);
                      },
                      {"concentration", "[1]"}),
                  invalid_value([] { dist::Gamma(1.0, -2.0); }, {"Gamma", "rate", "-2"}),
                  invalid_shape([] { dist::Gamma(ones({2}), ones({3})); }, {"Gamma", "(2)", "(3)"}),
                  invalid_value([] { dist::Gamma(2.0, 1.0).log_prob(tensor({-1.0})); },
                                {"Gamma.log_prob", "support"})},
      .support = Support{.params = {scalar(2.0), scalar(1.0)}, .outside = {-1.0}},
  };
}

Family beta_family() {
  const auto make = [](const Tensors& p) { return dist::Beta(p[0], p[1]); };
  return {
      .name = "Beta",
      .dist_name = "Beta",
      .make = make,
      .accessors = accessors(make, &dist::Beta::concentration1, &dist::Beta::concentration0),
      .params = {{"concentration1", uniform_values(0.3, 4.0)},
                 {"concentration0", uniform_values(0.3, 4.0)}},
      .value = uniform_values(0.05, 0.95),
      .has_rsample = true,
      .rsample_grad = false,  // both Gamma draws move: gamma_test.cpp checks expectations
      .reference = Reference{"Beta"},
      .sampler =
          Sampler{.seed = 77,
                  .cases = {{0.5, 0.5}, {2.0, 5.0}, {0.1, 3.0}, {40.0, 60.0}},
                  .cdf = [](const Scalars& p, double x) { return incomplete_beta(p[0], p[1], x); },
                  .in_support = [](const Scalars&, double x) { return 0 <= x && x <= 1; },
                  .slow = true},
      .moments = {{.params = {{2.0, 0.5}, {5.0, 0.7}},
                   .mean = Expected{{2.0 / 7.0, 0.5 / 1.2}},
                   .variance = Expected{{10.0 / (49.0 * 8.0), 0.35 / (1.44 * 2.2)}},
                   .entropy = Expected{{-0.48453071499548805, -0.19792388238665887}}}},  // SciPy
      .invalid = {invalid_value([] { dist::Beta(-1.0, 1.0); },
                                {"Beta", "concentration1", "positive", "-1"}),
                  invalid_value(
                      [] {
                        dist::Beta(1.0, tensor({1.0, 0.0}));
                      },
                      {"concentration0", "[1]"}),
                  invalid_shape([] { dist::Beta(ones({2}), ones({3})); }, {"Beta", "(2)", "(3)"}),
                  invalid_value([] { dist::Beta(2.0, 2.0).log_prob(tensor({1.5})); },
                                {"Beta.log_prob", "support"})},
      .support = Support{.params = {scalar(2.0), scalar(2.0)}, .outside = {1.5}},
  };
}

Family student_t_family() {
  const auto make = [](const Tensors& p) { return dist::StudentT(p[0], p[1], p[2]); };
  return {
      .name = "StudentT",
      .dist_name = "StudentT",
      .make = make,
      .accessors =
          accessors(make, &dist::StudentT::df, &dist::StudentT::loc, &dist::StudentT::scale),
      .params = {{"df", uniform_values(0.5, 20.0), uniform_values(1.0, 10.0)},
                 {"loc", normal_values()},
                 {"scale", uniform_values(0.5, 2.0)}},
      .value = normal_values(),
      .has_rsample = true,
      .rsample_fixed = {0},  // df holds the Gamma draws; gamma_test.cpp checks its gradient
      .reference = Reference{"StudentT"},
      .sampler = Sampler{.seed = 4321,
                         .cases = {{0.7, 1.0, 2.0}, {3.0, 1.0, 2.0}, {30.0, 1.0, 2.0}},
                         .cdf = [](const Scalars& p,
                                   double x) { return student_t_cdf(x, p[0], p[1], p[2]); },
                         .slow = true},
      // The mean is undefined (nan) for df <= 1; the variance infinite for 1 < df <= 2 and
      // undefined for df <= 1. The entropy is SciPy's.
      .moments = {{.params = {{3.5, 30.0, 1.5, 0.8}, {1.0, 0.0, 2.0, 2.0}, {2.0, 0.5, 1.0, 1.0}},
                   .mean = Expected{{1.0, 0.0, 2.0, NAN}, 0.0, 0.0},
                   .variance =
                       Expected{{4.0 * 3.5 / 1.5, 0.25 * 30.0 / 28.0, INFINITY, NAN}, 0.0, 1e-12}},
                  {.params = {{3.5, 30.0}, {1.0, 0.0}, {2.0, 0.5}},
                   .entropy = Expected{{2.4140373012424123, 0.7593961492272617}, 0.0, 1e-10}}},
      .invalid = {invalid_value([] { dist::StudentT(-1.0, 0.0, 1.0); },
                                {"StudentT", "df", "positive", "-1"}),
                  invalid_value(
                      [] {
                        dist::StudentT(2.0, 0.0, tensor({1.0, -3.0}));
                      },
                      {"scale", "-3", "[1]"}),
                  invalid_shape([] { dist::StudentT(ones({2}), ones({3}), 1.0); },
                                {"StudentT", "(2)", "(3)"}),
                  invalid_shape([] { dist::StudentT(ones({2}), 0.0, ones({3})); },
                                {"StudentT", "parameter scale of shape (3)",
                                 "does not broadcast with df, loc of shape (2)"}),
                  invalid_value([] { dist::StudentT(3.0).log_prob(tensor({NAN})); },
                                {"StudentT.log_prob", "support"})},
  };
}

Family dirichlet_family() {
  const auto make = [](const Tensors& p) { return dist::Dirichlet(p[0]); };
  return {
      .name = "Dirichlet",
      .dist_name = "Dirichlet",
      .make = make,
      .accessors = accessors(make, &dist::Dirichlet::concentration),
      .params = {{"concentration", uniform_values(0.3, 4.0)}},
      .param_event = {3},
      .event_shape = {3},
      .value = simplex_values(0.2, 1.0),
      .grad_off_validation = true,  // finite differences leave the simplex by 1e-6
      .has_rsample = true,
      .rsample_grad = false,  // the Gamma draws move: gamma_test.cpp checks expectations
      .reference = Reference{"Dirichlet"},
      .moments = {{.params = {{0.5, 2.0, 4.0}},
                   .mean = Expected{{0.5 / 6.5, 2.0 / 6.5, 4.0 / 6.5}},
                   .variance =
                       Expected{{0.5 * 6.0 / (6.5 * 6.5 * 7.5), 2.0 * 4.5 / (6.5 * 6.5 * 7.5),
                                 4.0 * 2.5 / (6.5 * 6.5 * 7.5)}},
                   .entropy = Expected{{-2.1961403447092005}}},  // SciPy
                  {.params = {{1.0, 1.0}}, .entropy = Expected{{0.0}, 1e-6, 1e-12}}},
      .invalid = {invalid_value(
                      [] {
                        dist::Dirichlet(tensor({1.0, -0.5}));
                      },
                      {"Dirichlet", "concentration", "positive", "-0.5"}),
                  invalid_shape([] { dist::Dirichlet(1.0); }, {"Dirichlet", "concentration"}),
                  invalid_value(
                      [] {
                        dist::Dirichlet(ones({3})).log_prob(tensor({0.5, 0.5, 0.5}));
                      },
                      {"Dirichlet.log_prob", "simplex"})},
  };
}

// -------------------------------------------------------------------- discrete ----
Family bernoulli_family() {
  const auto make = [](const Tensors& p) { return dist::Bernoulli(p[0]); };
  const auto h = bernoulli_entropy;
  return {
      .name = "Bernoulli",
      .dist_name = "Bernoulli",
      .make = make,
      .accessors = accessors(make, &dist::Bernoulli::probs),
      .params = {{"probs", uniform_values(0.1, 0.9)}},
      .value = integer_values(0, 1),
      .entropy_grad = true,
      .reference = Reference{"Bernoulli"},
      .sampler =
          Sampler{.seed = 99,
                  .cases = {{0.3}},
                  .pmf = [](const Scalars& p,
                            std::int64_t k) { return k == 0 ? 1 - p[0] : (k == 1 ? p[0] : 0.0); },
                  .max_k = [](const Scalars&) -> std::int64_t { return 1; },
                  .mean = [](const Scalars& p) { return p[0]; },
                  .variance = [](const Scalars& p) { return p[0] * (1 - p[0]); },
                  .mean_z = 5},
      .moments = {{.params = {{0.2, 0.5, 0.0}},
                   .mean = Expected{{0.2, 0.5, 0.0}},
                   .variance = Expected{{0.16, 0.25, 0.0}},
                   .entropy = Expected{{h(0.2), h(0.5), 0.0}}}},
      .invalid = {invalid_value([] { dist::Bernoulli(1.5); }, {"Bernoulli", "probs", "1.5"}),
                  invalid_value(
                      [] {
                        dist::Bernoulli(tensor({0.5, -0.1}));
                      },
                      {"probs", "-0.1", "[1]"}),
                  invalid_value([] { dist::Bernoulli(0.5).log_prob(tensor({0.5})); },
                                {"Bernoulli.log_prob", "support", "0.5"}),
                  invalid_value([] { dist::Bernoulli(0.5).log_prob(tensor({2.0})); },
                                {"Bernoulli.log_prob", "2"})},
      .support = Support{.params = {scalar(0.5)}, .outside = {1.5}},
      .enumeration = Enumeration{.params = {Array({3, 2}, Scalars(6, 0.4))}, .values = {0, 1}},
  };
}

Family bernoulli_logits_family() {
  const auto make = [](const Tensors& p) { return dist::Bernoulli::from_logits(p[0]); };
  const auto h = bernoulli_entropy;
  return {
      .name = "BernoulliLogits",
      .dist_name = "Bernoulli",
      .make = make,
      .accessors = accessors(make, &dist::Bernoulli::logits),
      .params = {{"logits", normal_values()}},
      .value = integer_values(0, 1),
      .entropy_grad = true,
      .reference = Reference{"BernoulliLogits"},
      .sampler =
          Sampler{.seed = 99,
                  .cases = {{logit(0.3)}},
                  .pmf =
                      [](const Scalars& p, std::int64_t k) {
                        const double q = sigmoid(p[0]);
                        return k == 0 ? 1 - q : (k == 1 ? q : 0.0);
                      },
                  .max_k = [](const Scalars&) -> std::int64_t { return 1; },
                  .mean = [](const Scalars& p) { return sigmoid(p[0]); },
                  .variance = [](const Scalars& p) { return sigmoid(p[0]) * sigmoid(-p[0]); },
                  .mean_z = 5},
      .moments = {{.params = {{std::log(0.25), 0.0}},
                   .mean = Expected{{0.2, 0.5}},
                   .variance = Expected{{0.16, 0.25}},
                   .entropy = Expected{{h(0.2), h(0.5)}}}},
      .invalid = {invalid_value(
          [] {
            dist::Bernoulli::from_logits(tensor({0.0, NAN}));
          },
          {"Bernoulli", "logits", "nan"})},
      .support = Support{.params = {scalar(0.0)}, .outside = {-0.5}},
      .enumeration = Enumeration{.params = {Array({3, 2}, Scalars(6, 0.4))}, .values = {0, 1}},
  };
}

// The moments by quadrature (SciPy's quad over [0, 1], tools/reference), at p = 0.2, 0.5,
// 0.97 and 0.5005 (logits 0.002, where the series take over).
const Moments kContinuousBernoulliMoments{
    .params = {{0.2, 0.5, 0.97, 0.5005}},
    .mean = Expected{{0.3880141871111483, 0.5, 0.7442360647839458, 0.5001666667111111}},
    .variance =
        Expected{{0.0758978008069575, 1.0 / 12.0, 0.049825654507162975, 0.0833333166666582}},
    .entropy = Expected{
        {-0.0764144528033586, 0.0, -0.38826611490414464, -1.6666676109280638e-07}, 1e-6, 1e-12}};

Family continuous_bernoulli_family() {
  const auto make = [](const Tensors& p) { return dist::ContinuousBernoulli(p[0]); };
  return {
      .name = "ContinuousBernoulli",
      .dist_name = "ContinuousBernoulli",
      .make = make,
      .accessors = accessors(make, &dist::ContinuousBernoulli::probs),
      .params = {{"probs", uniform_values(0.1, 0.9)}},
      .value = uniform_values(0.05, 0.95),
      .entropy_grad = true,
      .has_rsample = true,
      .reference = Reference{"ContinuousBernoulli"},
      .sampler =
          Sampler{.seed = 321,
                  .cases = {{0.2}, {0.5}, {0.97}, {0.5005}, {1e-7}},
                  .cdf = [](const Scalars& p, double x) { return cb_cdf(p[0], x); },
                  .in_support = [](const Scalars&, double x) { return 0 <= x && x <= 1; },
                  .mean = [](const Scalars& p) { return cb_mean(p[0], logit(p[0])); },
                  .variance = [](const Scalars& p) { return cb_variance(p[0], logit(p[0])); },
                  .var_rtol = 0.1},
      .moments = {kContinuousBernoulliMoments},
      .invalid = {invalid_value([] { dist::ContinuousBernoulli(1.5); },
                                {"ContinuousBernoulli", "probs", "1.5"}),
                  invalid_value(
                      [] {
                        dist::ContinuousBernoulli(0.5).log_prob(tensor({0.5, 1.25}));
                      },
                      {"ContinuousBernoulli.log_prob", "1.25", "[1]"})},
      .support = Support{.params = {scalar(0.3)}, .edge = Array{1.0}, .outside = {1.25}},
  };
}

Family continuous_bernoulli_logits_family() {
  const auto make = [](const Tensors& p) { return dist::ContinuousBernoulli::from_logits(p[0]); };
  Moments moments = kContinuousBernoulliMoments;
  for (double& p : moments.params[0].values) p = logit(p);
  return {
      .name = "ContinuousBernoulliLogits",
      .dist_name = "ContinuousBernoulli",
      .make = make,
      .accessors = accessors(make, &dist::ContinuousBernoulli::logits),
      .params = {{"logits", normal_values()}},
      .value = uniform_values(0.05, 0.95),
      .entropy_grad = true,
      .has_rsample = true,
      .reference = Reference{"ContinuousBernoulliLogits"},
      .sampler =
          Sampler{.seed = 322,
                  .cases = {{logit(0.3)}, {0.0}, {-40.0}, {0.004}, {30.0}},
                  .cdf = [](const Scalars& p, double x) { return cb_cdf(sigmoid(p[0]), x); },
                  .in_support = [](const Scalars&, double x) { return 0 <= x && x <= 1; },
                  .mean = [](const Scalars& p) { return cb_mean(sigmoid(p[0]), p[0]); },
                  .variance = [](const Scalars& p) { return cb_variance(sigmoid(p[0]), p[0]); },
                  .var_rtol = 0.1},
      .moments = {moments},
      .invalid = {invalid_value(
          [] {
            dist::ContinuousBernoulli::from_logits(tensor({0.0, NAN}));
          },
          {"ContinuousBernoulli", "logits", "nan"})},
      .support = Support{.params = {scalar(-2.0)}, .edge = Array{0.0}, .outside = {-0.25}},
  };
}

// The counts' partial is the lgamma continuation: finite differences step off the integers.
Family binomial_family() {
  const auto make = [](const Tensors& p) { return dist::Binomial(p[0], p[1]); };
  return {
      .name = "Binomial",
      .dist_name = "Binomial",
      .make = make,
      .accessors = accessors(make, &dist::Binomial::total_count, &dist::Binomial::probs),
      .params = {{"total_count", integer_values(6, 8)}, {"probs", uniform_values(0.1, 0.9)}},
      .value = integer_values(0, 5),  // below every count
      .grad_off_validation = true,
      // (10, 0.3) and (5, 0.95) take the inversion path; (1000, 0.02) and (200, 0.6) BTRS;
      // probs above 0.5 draw the complement.
      .reference = Reference{.family = "Binomial", .f64_rtol = 1e-11},
      .sampler = Sampler{
          .seed = 77,
          .cases = {{10, 0.3}, {1000, 0.02}, {200, 0.6}, {5, 0.95}, {100000, 0.45}},
          .pmf = [](const Scalars& p, std::int64_t k) { return binomial_pmf(p[0], p[1], k); },
          .max_k = [](const Scalars& p) { return static_cast<std::int64_t>(p[0]); },
          .mean = [](const Scalars& p) { return p[0] * p[1]; },
          .variance = [](const Scalars& p) { return p[0] * p[1] * (1 - p[1]); },
          .mean_z = 5},
      .moments = {{.params = {{10.0, 4.0}, {0.2, 0.5}},
                   .mean = Expected{{2.0, 2.0}},
                   .variance = Expected{{1.6, 1.0}}}},
      .invalid = {invalid_value([] { dist::Binomial(2.5, 0.5); },
                                {"Binomial", "total_count", "2.5"}),
                  invalid_value([] { dist::Binomial(-1, 0.5); }, {"Binomial", "total_count", "-1"}),
                  invalid_value(
                      [] {
                        dist::Binomial(10, tensor({0.5, 1.2}));
                      },
                      {"Binomial", "probs", "1.2", "[1]"}),
                  invalid_shape([] { dist::Binomial(ones({2}), ones({3})); },
                                {"Binomial", "(2)", "(3)"}),
                  invalid_value(
                      [] {
                        dist::Binomial(tensor({4.0, 6.0}), 0.5).log_prob(tensor({5.0, 5.0}));
                      },
                      {"Binomial.log_prob", "support", "5", "[0]"}),
                  invalid_value(
                      [] {
                        dist::Binomial(tensor({4.0, 6.0}), 0.5).log_prob(tensor({1.5, 0.0}));
                      },
                      {"Binomial.log_prob", "1.5"}),
                  unavailable([] { dist::Binomial(4.0, 0.5).entropy(); }, {"Binomial", "entropy"}),
                  unavailable(
                      [] {
                        dist::Binomial(tensor({2.0, 3.0}), 0.5).enumerate_support();
                      },
                      {"Binomial.enumerate_support", "total_count", "2", "3"})},
      .support = Support{.params = {{4.0, 6.0}, scalar(0.5)}, .outside = {5.0, -1.0}},
      .enumeration = Enumeration{.params = {Array({2, 3}, Scalars(6, 3.0)), {0.4, 0.4, 0.4}},
                                 .values = {0, 1, 2, 3}},
  };
}

Family binomial_logits_family() {
  const auto make = [](const Tensors& p) { return dist::Binomial::from_logits(p[0], p[1]); };
  return {
      .name = "BinomialLogits",
      .dist_name = "Binomial",
      .make = make,
      .accessors = accessors(make, &dist::Binomial::total_count, &dist::Binomial::logits),
      .params = {{"total_count", integer_values(6, 8)}, {"logits", normal_values()}},
      .value = integer_values(0, 5),
      .grad_off_validation = true,
      .reference = Reference{.family = "Binomial",
                             .f64_rtol = 1e-11,
                             .f32_rtol = 1e-4,
                             .params =
                                 [](const ReferenceCase& c, const TensorOptions& o) {
                                   return Tensors{scalar_tensor(c.scalar("total_count"), o),
                                                  scalar_tensor(logit(c.scalar("probs")), o)};
                                 }},
      .sampler = Sampler{
          .seed = 77,
          .cases = {{20, logit(0.3)}},
          .pmf = [](const Scalars& p,
                    std::int64_t k) { return binomial_pmf(p[0], sigmoid(p[1]), k); },
          .max_k = [](const Scalars& p) { return static_cast<std::int64_t>(p[0]); },
          .mean = [](const Scalars& p) { return p[0] * sigmoid(p[1]); },
          .variance = [](const Scalars& p) { return p[0] * sigmoid(p[1]) * sigmoid(-p[1]); },
          .mean_z = 5},
      .moments = {{.params = {{10.0, 4.0}, {std::log(0.25), 0.0}},
                   .mean = Expected{{2.0, 2.0}},
                   .variance = Expected{{1.6, 1.0}}}},
      .invalid = {invalid_value([] { dist::Binomial::from_logits(10, NAN); }, {"logits", "nan"})},
      .enumeration = Enumeration{.params = {Array({2, 3}, Scalars(6, 3.0)), {0.4, 0.4, 0.4}},
                                 .values = {0, 1, 2, 3}},
  };
}

// Failures before the first success.
Family geometric_family() {
  const auto make = [](const Tensors& p) { return dist::Geometric(p[0]); };
  const auto h = [](double p) { return bernoulli_entropy(p) / p; };
  return {
      .name = "Geometric",
      .dist_name = "Geometric",
      .make = make,
      .accessors = accessors(make, &dist::Geometric::probs),
      .params = {{"probs", uniform_values(0.1, 0.9)}},
      .value = integer_values(0, 8),
      .entropy_grad = true,
      .reference = Reference{"Geometric"},
      .sampler =
          Sampler{.seed = 5150,
                  .cases = {{0.3}, {0.05}, {0.9}},
                  .pmf = [](const Scalars& p, std::int64_t k) { return geometric_pmf(p[0], k); },
                  .max_k = [](const Scalars& p) { return static_cast<std::int64_t>(40 / p[0]); },
                  .mean = [](const Scalars& p) { return (1 - p[0]) / p[0]; },
                  .variance = [](const Scalars& p) { return (1 - p[0]) / (p[0] * p[0]); },
                  .mean_z = 5},
      .moments = {{.params = {{0.2, 0.5}},
                   .mean = Expected{{4.0, 1.0}},
                   .variance = Expected{{20.0, 2.0}},
                   .entropy = Expected{{h(0.2), h(0.5)}}},
                  {.params = {{1.0}}, .entropy = Expected{{0.0}}}},
      .invalid = {invalid_value([] { dist::Geometric(1.5); }, {"Geometric", "probs", "1.5"}),
                  invalid_value(
                      [] {
                        dist::Geometric(tensor({0.5, 0.0}));
                      },
                      {"Geometric", "probs", "positive", "[1]"}),
                  invalid_value([] { dist::Geometric(0.5).log_prob(tensor({-1.0})); },
                                {"Geometric.log_prob", "support", "-1"}),
                  invalid_value([] { dist::Geometric(0.5).log_prob(tensor({0.5})); },
                                {"Geometric.log_prob", "0.5"})},
      .support = Support{.params = {scalar(0.5)}, .outside = {0.5}},
  };
}

Family geometric_logits_family() {
  const auto make = [](const Tensors& p) { return dist::Geometric::from_logits(p[0]); };
  const auto h = [](double p) { return bernoulli_entropy(p) / p; };
  return {
      .name = "GeometricLogits",
      .dist_name = "Geometric",
      .make = make,
      .accessors = accessors(make, &dist::Geometric::logits),
      .params = {{"logits", normal_values()}},
      .value = integer_values(0, 8),
      .entropy_grad = true,
      .reference = Reference{.family = "Geometric",
                             .f32_rtol = 1e-4,
                             .params =
                                 [](const ReferenceCase& c, const TensorOptions& o) {
                                   return Tensors{scalar_tensor(logit(c.scalar("probs")), o)};
                                 }},
      .sampler = Sampler{
          .seed = 5150,
          .cases = {{logit(0.3)}, {logit(0.05)}, {logit(0.9)}},
          .pmf = [](const Scalars& p, std::int64_t k) { return geometric_pmf(sigmoid(p[0]), k); },
          .max_k = [](const Scalars& p) { return static_cast<std::int64_t>(40 / sigmoid(p[0])); },
          .mean = [](const Scalars& p) { return 1 / sigmoid(p[0]) - 1; },
          .variance =
              [](const Scalars& p) {
                const double q = sigmoid(p[0]);
                return (1 - q) / (q * q);
              },
          .mean_z = 5},
      .moments = {{.params = {{std::log(0.25), 0.0}},
                   .mean = Expected{{4.0, 1.0}},
                   .variance = Expected{{20.0, 2.0}},
                   .entropy = Expected{{h(0.2), h(0.5)}}}},
      .invalid = {invalid_value([] { dist::Geometric::from_logits(NAN); }, {"logits", "nan"})},
  };
}

// 0.5 and 4 take the inversion path, 30 and 500 PTRS.
Family poisson_family() {
  const auto make = [](const Tensors& p) { return dist::Poisson(p[0]); };
  return {
      .name = "Poisson",
      .dist_name = "Poisson",
      .make = make,
      .accessors = accessors(make, &dist::Poisson::rate),
      .params = {{"rate", uniform_values(0.5, 5.0)}},
      .value = integer_values(0, 6),
      .reference = Reference{"Poisson"},
      .sampler = Sampler{.seed = 2024,
                         .cases = {{0.5}, {4.0}, {30.0}, {500.0}},
                         .pmf =
                             [](const Scalars& p, std::int64_t k) {
                               return std::exp(k * std::log(p[0]) - p[0] - std::lgamma(k + 1.0));
                             },
                         .max_k =
                             [](const Scalars& p) {
                               return static_cast<std::int64_t>(p[0] + 20 * std::sqrt(p[0]) + 20);
                             },
                         .mean = [](const Scalars& p) { return p[0]; },
                         .variance = [](const Scalars& p) { return p[0]; },
                         .mean_z = 5},
      .moments = {{.params = {{0.5, 7.0}},
                   .mean = Expected{{0.5, 7.0}},
                   .variance = Expected{{0.5, 7.0}}}},
      .invalid = {invalid_value([] { dist::Poisson(-1.0); }, {"Poisson", "rate", "-1"}),
                  invalid_value(
                      [] {
                        dist::Poisson(tensor({1.0, -0.5}));
                      },
                      {"rate", "-0.5", "[1]"}),
                  invalid_value([] { dist::Poisson(2.0).log_prob(tensor({1.5})); },
                                {"Poisson.log_prob", "support", "1.5"}),
                  invalid_value([] { dist::Poisson(2.0).log_prob(tensor({-1.0})); },
                                {"Poisson.log_prob", "-1"}),
                  unavailable([] { dist::Poisson(2.0).entropy(); }, {"Poisson", "entropy"})},
      .support = Support{.params = {scalar(2.0)}, .outside = {1.5}},
  };
}

// Probs are normalized inside, so perturbations off the simplex are well defined.
Family categorical_family() {
  const auto make = [](const Tensors& p) { return dist::Categorical(p[0]); };
  const double h = -(0.2 * std::log(0.2) + 0.3 * std::log(0.3) + 0.5 * std::log(0.5));
  return {
      .name = "Categorical",
      .dist_name = "Categorical",
      .make = make,
      .accessors = accessors(make, &dist::Categorical::probs),
      .params = {{"probs", simplex_values(0.2, 1.0)}},
      .param_event = {3},
      .value = category_values(2),
      .grad_off_validation = true,
      .entropy_grad = true,
      .sample_dtype = kInt64,
      .reference = Reference{"Categorical"},
      .moments = {{.params = {Array({2, 3}, {0.2, 0.3, 0.5, 1.0, 0.0, 0.0})},
                   .mean = Expected{{1.3, 0.0}},
                   .variance = Expected{{0.3 + 4 * 0.5 - 1.3 * 1.3, 0.0}},
                   .entropy = Expected{{h, 0.0}}}},
      .invalid = {invalid_value(
                      [] {
                        dist::Categorical(tensor({0.5, 0.6}));
                      },
                      {"Categorical", "probs", "simplex"}),
                  invalid_value(
                      [] {
                        dist::Categorical(tensor({1.5, -0.5}));
                      },
                      {"Categorical", "probs", "simplex"}),
                  invalid_shape([] { dist::Categorical(0.5); }, {"Categorical", "probs", "shape"}),
                  invalid_value(
                      [] {
                        dist::Categorical(tensor({0.2, 0.3, 0.5})).log_prob(tensor({3.0}));
                      },
                      {"Categorical.log_prob", "support", "3"}),
                  invalid_value(
                      [] {
                        dist::Categorical(tensor({0.2, 0.3, 0.5})).log_prob(tensor({1.5}));
                      },
                      {"Categorical.log_prob", "1.5"}),
                  invalid_value(
                      [] {
                        dist::Categorical(tensor({0.2, 0.3, 0.5})).log_prob(tensor({-1.0}));
                      },
                      {"Categorical.log_prob", "-1"})},
      // Values outside 0..K-1 read no memory.
      .support = Support{.params = {{0.2, 0.3, 0.5}}, .outside = {3.0, -1.0, 1.5}},
      .enumeration = Enumeration{.params = {Array({2, 3, 4}, Scalars(24, 0.25))},
                                 .values = {0, 1, 2, 3},
                                 .dtype = kInt64},
  };
}

Family categorical_logits_family() {
  const auto make = [](const Tensors& p) { return dist::Categorical::from_logits(p[0]); };
  return {
      .name = "CategoricalLogits",
      .dist_name = "Categorical",
      .make = make,
      // Logits come back normalized (logsumexp 0): discrete_test.cpp checks their values.
      .accessors = accessors(make, &dist::Categorical::logits),
      .params = {{"logits", normal_values()}},
      .param_event = {3},
      .value = category_values(2),
      .entropy_grad = true,
      .sample_dtype = kInt64,
      .reference = Reference{"CategoricalLogits"},
      .invalid = {invalid_value(
          [] {
            dist::Categorical::from_logits(tensor({0.0, NAN}));
          },
          {"Categorical", "logits"})},
      .enumeration = Enumeration{.params = {Array({2, 3, 4}, Scalars(24, 0.0))},
                                 .values = {0, 1, 2, 3},
                                 .dtype = kInt64},
  };
}

}  // namespace

Tensor Draw::operator()(const Shape& shape, bool requires_grad) const {
  switch (kind) {
    case Kind::Normal:
      return random_normal(shape, requires_grad);
    case Kind::Uniform:
      return uniform(shape, lo, hi, requires_grad);
    case Kind::Simplex: {
      const Tensor raw = uniform(shape, lo, hi);
      Tensor rows = (raw / sum(raw, {-1}, true)).detach();
      return rows.requires_grad_(requires_grad);
    }
    case Kind::Integers: {
      Tensor counts = randint(shape, std::int64_t(lo), std::int64_t(hi)).to(kFloat64);
      return counts.requires_grad_(requires_grad);
    }
    case Kind::Categories:
      return randint(shape, static_cast<std::int64_t>(lo), static_cast<std::int64_t>(hi));
  }
  return {};
}

Tensor Array::tensor(bool requires_grad) const {
  return from_vector(values, shape, f64(requires_grad));
}

bool Family::has_mean() const {
  return std::any_of(moments.begin(), moments.end(), [](const Moments& m) { return m.mean; });
}
bool Family::has_variance() const {
  return std::any_of(moments.begin(), moments.end(), [](const Moments& m) { return m.variance; });
}
bool Family::has_entropy() const {
  return std::any_of(moments.begin(), moments.end(), [](const Moments& m) { return m.entropy; });
}

Tensors Family::draw_params(const std::vector<Shape>& batches, bool requires_grad,
                            bool for_rsample) const {
  Tensors out;
  for (std::size_t i = 0; i < params.size(); ++i) {
    Shape shape = batches[i % batches.size()];
    for (std::int64_t d : param_event) shape.push_back(d);
    const Draw& draw =
        for_rsample && params[i].rsample_draw ? *params[i].rsample_draw : params[i].draw;
    out.push_back(draw(shape, requires_grad));
  }
  return out;
}

const std::vector<Family>& families() {
  static const std::vector<Family> all = {normal_family(),
                                          log_normal_family(),
                                          half_normal_family(),
                                          cauchy_family(),
                                          half_cauchy_family(),
                                          laplace_family(),
                                          uniform_family(),
                                          exponential_family(),
                                          gamma_family(),
                                          beta_family(),
                                          student_t_family(),
                                          dirichlet_family(),
                                          bernoulli_family(),
                                          bernoulli_logits_family(),
                                          continuous_bernoulli_family(),
                                          continuous_bernoulli_logits_family(),
                                          binomial_family(),
                                          binomial_logits_family(),
                                          geometric_family(),
                                          geometric_logits_family(),
                                          poisson_family(),
                                          categorical_family(),
                                          categorical_logits_family()};
  return all;
}

std::vector<const Family*> families_where(const std::function<bool(const Family&)>& keep) {
  std::vector<const Family*> out;
  for (const Family& f : families())
    if (keep(f)) out.push_back(&f);
  return out;
}

}  // namespace ember::test
