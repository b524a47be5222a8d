// Every distribution family on the CUDA backend against the CPU, its reference, in float64 and
// float32: seeded draws (sample and rsample), log_prob and the gradients of sum(log_prob) with
// respect to the value and every parameter, rsample gradients (pathwise and implicit), and
// mean / variance / entropy.
//
// Tolerances. Philox uniforms are integer arithmetic and one exact scaling, so ember::rand is
// compared bitwise. Everything downstream goes through the device math library (log, cos, tan,
// lgamma, ...), which may differ from glibc in the last ulp, and nvcc contracts a * b + c into
// an FMA; so values use last_ulp_tolerance, relative 1e-5 (float32) and 1e-12 (float64) with
// an equal absolute floor for results near zero. A log-density that is a small difference of
// large terms (lgamma(k + 1) and k log(rate) near 4e5 for a Poisson rate of 4e4, lgamma(1001)
// for a Binomial count of 1000) is off by ulps of those terms, not of the result: there each
// element's absolute floor grows with its largest |term| (Family::terms, kTermUlps). Where a
// last-ulp difference decides a branch (the rejection loops of the Gamma and Poisson /
// Binomial samplers, a uniform compared with a probability computed by exp, floor of a ratio,
// tan near +-pi/2 for the heavy-tailed families), a few draws may legitimately land elsewhere:
// those checks allow a tiny fraction of mismatching elements (kRareBranchFraction) out of tens
// of thousands of draws, rather than none; a wrong stream or formula mismatches nearly every
// element. Gradients summed over many broadcast elements are reduced in a different order on
// the device, so their tolerance grows with the square root of the number of terms and is
// taken relative to the largest entry of the gradient.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda_harness.hpp"

namespace ember::test {
namespace {

// At most this fraction of draws may differ where a last-ulp difference can flip a branch.
constexpr double kRareBranchFraction = 1e-3;

// How many ulps of its largest term a log-density may differ by: CUDA's lgamma is within 4
// ulp (float64) and 6 ulp (float32) away from the zeros on its negative axis (the CUDA Math
// API's table of maximum ulp errors) and glibc's within a few, and each side rounds the other
// terms and their sum as well.
constexpr double kTermUlps = 16;

double epsilon(DType t) {
  return t == kFloat64 ? std::numeric_limits<double>::epsilon()
                       : std::numeric_limits<float>::epsilon();
}

// Tolerance for a gradient whose entries are sums of `terms` contributions.
Tolerance for_sums(Tolerance t, std::int64_t terms) {
  return t.scaled(4.0 * std::sqrt(static_cast<double>(std::max<std::int64_t>(terms, 1))));
}

// ------------------------------------------------------------------ families ----
// One parameter: float64 values converted to the dtype under test on each device.
struct Param {
  Shape shape;
  std::vector<double> values;
  bool requires_grad = true;
};

using Builder = std::function<dist::Distribution(const std::vector<Tensor>&)>;

struct Family {
  std::string name;
  Builder make;
  std::vector<Param> params;
  Shape sample_shape;          // draws per sample / rsample check
  double draw_tol = 1.0;       // multiplies the base tolerance for draws
  double value_tol = 1.0;      // multiplies it for log_prob, gradients and moments
  bool rare_branches = false;  // the sampler may take another branch in rare cases
  bool continuous = true;      // log_prob is differentiable in the value
  // The largest |term| of each log_prob element, from float64 parameters and values on the
  // CPU, where the terms can outgrow the result (see the tolerances above).
  std::function<Tensor(const std::vector<Tensor>&, const Tensor&)> terms = nullptr;
};

Param uniform_param(const Shape& shape, double lo, double hi, bool requires_grad = true) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (double& x : v) x = dist(rng());
  return {shape, v, requires_grad};
}

Param fixed_param(const Shape& shape, std::vector<double> values, bool requires_grad = true) {
  return {shape, std::move(values), requires_grad};
}

// Lower-triangular (n, n) with a diagonal in [1, 2].
Param tril_param(std::int64_t n) {
  Param p = uniform_param({n, n}, -0.5, 0.5);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double& x = p.values[static_cast<std::size_t>(i * n + j)];
      if (j > i) x = 0.0;
      if (j == i) x = 1.0 + std::abs(x) * 2.0;
    }
  return p;
}

// A symmetric positive definite (n, n): A A^T + n I.
Param spd_param(std::int64_t n) {
  const Param a = uniform_param({n, n}, -1.0, 1.0);
  Param p{{n, n}, std::vector<double>(static_cast<std::size_t>(n * n)), true};
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = i == j ? static_cast<double>(n) : 0.0;
      for (std::int64_t k = 0; k < n; ++k)
        s += a.values[static_cast<std::size_t>(i * n + k)] *
             a.values[static_cast<std::size_t>(j * n + k)];
      p.values[static_cast<std::size_t>(i * n + j)] = s;
    }
  return p;
}

// The largest |term| of the discrete families' log-densities, elementwise (see
// check_log_prob): p are the parameters and k the values, in float64.
Tensor bernoulli_terms(const std::vector<Tensor>& p, const Tensor&) {
  return maximum(abs(log(p[0])), abs(log1p(-p[0])));
}

Tensor bernoulli_logits_terms(const std::vector<Tensor>& p, const Tensor&) {
  return abs(p[0]) + std::log(2.0);  // log sigmoid(+-l) = -softplus(-+l)
}

Tensor binomial_terms(const std::vector<Tensor>& p, const Tensor& k) {
  const Tensor& n = p[0];
  return maximum(maximum(lgamma(n + 1.0), maximum(lgamma(k + 1.0), lgamma(n - k + 1.0))),
                 maximum(abs(k * log(p[1])), abs((n - k) * log1p(-p[1]))));
}

Tensor categorical_terms(const std::vector<Tensor>& p, const Tensor&) {
  return max(abs(log(p[0] / sum(p[0], {-1}, true))), {-1});
}

Tensor categorical_logits_terms(const std::vector<Tensor>& p, const Tensor&) {
  return maximum(max(abs(p[0]), {-1}), abs(logsumexp(p[0], {-1})));
}

Tensor poisson_terms(const std::vector<Tensor>& p, const Tensor& k) {
  // k log(rate) is 0 at k = 0, rate 0 included.
  return maximum(maximum(where(k > 0.0, abs(k * log(p[0])), 0.0), p[0]), lgamma(k + 1.0));
}

Tensor geometric_terms(const std::vector<Tensor>& p, const Tensor& k) {
  return maximum(abs(log(p[0])), abs(k * log1p(-p[0])));
}

std::vector<Family> make_families() {
  namespace d = dist;
  namespace tr = transforms;
  std::vector<Family> f;
  // Broadcast batch (3, 4) from (3, 1) and (4) parameters throughout.
  f.push_back({.name = "Normal",
               .make = [](auto& p) { return d::Normal(p[0], p[1]); },
               .params = {uniform_param({3, 1}, -2, 2), uniform_param({4}, 0.5, 2)},
               .sample_shape = {2048}});
  f.push_back({.name = "LogNormal",
               .make = [](auto& p) { return d::LogNormal(p[0], p[1]); },
               .params = {uniform_param({3, 1}, -1, 1), uniform_param({4}, 0.3, 1)},
               .sample_shape = {2048}});
  f.push_back({.name = "HalfNormal",
               .make = [](auto& p) { return d::HalfNormal(p[0]); },
               .params = {uniform_param({3, 4}, 0.5, 2)},
               .sample_shape = {2048}});
  f.push_back({.name = "Cauchy",
               .make = [](auto& p) { return d::Cauchy(p[0], p[1]); },
               .params = {uniform_param({3, 1}, -2, 2), uniform_param({4}, 0.5, 2)},
               .sample_shape = {2048},
               .rare_branches = true});
  f.push_back({.name = "HalfCauchy",
               .make = [](auto& p) { return d::HalfCauchy(p[0]); },
               .params = {uniform_param({3, 4}, 0.5, 2)},
               .sample_shape = {2048},
               .rare_branches = true});
  f.push_back({.name = "Laplace",
               .make = [](auto& p) { return d::Laplace(p[0], p[1]); },
               .params = {uniform_param({3, 1}, -2, 2), uniform_param({4}, 0.5, 2)},
               .sample_shape = {2048}});
  f.push_back({.name = "Uniform",
               .make = [](auto& p) { return d::Uniform(p[0], p[1]); },
               .params = {uniform_param({3, 1}, -2, -1), uniform_param({4}, 0.5, 2)},
               .sample_shape = {2048}});
  f.push_back({.name = "Exponential",
               .make = [](auto& p) { return d::Exponential(p[0]); },
               .params = {uniform_param({3, 4}, 0.5, 3)},
               .sample_shape = {2048}});
  // Concentrations on both sides of 1 (the sampler boosts those below 1).
  f.push_back({.name = "Gamma",
               .make = [](auto& p) { return d::Gamma(p[0], p[1]); },
               .params = {fixed_param({3, 1}, {0.3, 1.0, 4.5}), uniform_param({4}, 0.5, 2)},
               .sample_shape = {2048},
               .rare_branches = true});
  f.push_back({.name = "Beta",
               .make = [](auto& p) { return d::Beta(p[0], p[1]); },
               .params = {fixed_param({3, 1}, {0.4, 1.0, 3.0}), uniform_param({4}, 0.5, 4)},
               .sample_shape = {2048},
               .rare_branches = true});
  f.push_back({.name = "Dirichlet",
               .make = [](auto& p) { return d::Dirichlet(p[0]); },
               .params = {fixed_param(
                   {3, 4}, {0.4, 1.0, 2.0, 5.0, 1.5, 1.5, 1.5, 1.5, 0.7, 3.0, 0.9, 8.0})},
               .sample_shape = {2048},
               .rare_branches = true});
  f.push_back({.name = "StudentT",
               .make = [](auto& p) { return d::StudentT(p[0], p[1], p[2]); },
               .params = {fixed_param({3, 1}, {0.8, 3.0, 12.0}), uniform_param({4}, -1, 1),
                          uniform_param({4}, 0.5, 2)},
               .sample_shape = {2048},
               .rare_branches = true});
  f.push_back({.name = "BernoulliProbs",
               .make = [](auto& p) { return d::Bernoulli(p[0]); },
               .params = {uniform_param({3, 4}, 0.05, 0.95)},
               .sample_shape = {2048},
               .continuous = false,
               .terms = bernoulli_terms});
  f.push_back({.name = "BernoulliLogits",
               .make = [](auto& p) { return d::Bernoulli::from_logits(p[0]); },
               .params = {uniform_param({3, 4}, -3, 3)},
               .sample_shape = {2048},
               .rare_branches = true,
               .continuous = false,
               .terms = bernoulli_logits_terms});
  // Logits from -30 to 30 and near 0, where the quantile and the moments switch to series.
  f.push_back({.name = "ContinuousBernoulliLogits",
               .make = [](auto& p) { return d::ContinuousBernoulli::from_logits(p[0]); },
               .params = {fixed_param({6}, {-30.0, -2.0, 1e-7, 0.004, 1.5, 30.0})},
               .sample_shape = {2048},
               .rare_branches = true});
  f.push_back({.name = "ContinuousBernoulliProbs",
               .make = [](auto& p) { return d::ContinuousBernoulli(p[0]); },
               .params = {uniform_param({3, 4}, 0.05, 0.95)},
               .sample_shape = {2048}});
  // Counts 0 to 1000 (inversion and rejection regimes of the sampler).
  f.push_back(
      {.name = "Binomial",
       .make = [](auto& p) { return d::Binomial(p[0], p[1]); },
       .params = {fixed_param({3, 1}, {0, 10, 1000}, false), uniform_param({4}, 0.05, 0.95)},
       .sample_shape = {2048},
       .rare_branches = true,
       .continuous = false,
       .terms = binomial_terms});
  f.push_back({.name = "Categorical",
               .make = [](auto& p) { return d::Categorical(p[0]); },
               .params = {fixed_param(
                   {3, 4}, {0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25, 0.7, 0.1, 0.1, 0.1})},
               .sample_shape = {4096},
               .rare_branches = true,
               .continuous = false,
               .terms = categorical_terms});
  f.push_back({.name = "CategoricalLogits",
               .make = [](auto& p) { return d::Categorical::from_logits(p[0]); },
               .params = {uniform_param({3, 5}, -2, 2)},
               .sample_shape = {4096},
               .rare_branches = true,
               .continuous = false,
               .terms = categorical_logits_terms});
  // Rates in the inversion (< 10) and the rejection regime.
  f.push_back({.name = "Poisson",
               .make = [](auto& p) { return d::Poisson(p[0]); },
               .params = {fixed_param(
                   {3, 4}, {0.0, 0.3, 1.0, 2.5, 5.0, 9.0, 12.0, 30.0, 80.0, 250.0, 1e3, 4e4})},
               .sample_shape = {2048},
               .rare_branches = true,
               .continuous = false,
               .terms = poisson_terms});
  f.push_back({.name = "Geometric",
               .make = [](auto& p) { return d::Geometric(p[0]); },
               .params = {uniform_param({3, 4}, 0.05, 0.95)},
               .sample_shape = {2048},
               .rare_branches = true,
               .continuous = false,
               .terms = geometric_terms});
  f.push_back({.name = "Delta",
               .make = [](auto& p) { return d::Delta(p[0], p[1]); },
               .params = {uniform_param({3, 4}, -2, 2), uniform_param({4}, -1, 1)},
               .sample_shape = {8}});
  f.push_back({.name = "MultivariateNormal",
               .make = [](auto& p) { return d::MultivariateNormal(p[0], p[1]); },
               .params = {uniform_param({2, 3}, -1, 1), tril_param(3)},
               .sample_shape = {2048}});
  f.push_back({.name = "MultivariateNormalCovariance",
               .make = [](auto& p) { return d::MultivariateNormal::from_covariance(p[0], p[1]); },
               .params = {uniform_param({2, 3}, -1, 1), spd_param(3)},
               .sample_shape = {2048},
               .draw_tol = 4.0,
               .value_tol = 4.0});
  f.push_back({.name = "LowRankMultivariateNormal",
               .make = [](auto& p) { return d::LowRankMultivariateNormal(p[0], p[1], p[2]); },
               .params = {uniform_param({2, 3}, -1, 1), uniform_param({3, 2}, -1, 1),
                          uniform_param({3}, 0.5, 1.5)},
               .sample_shape = {2048},
               .draw_tol = 4.0,
               .value_tol = 4.0});
  f.push_back({.name = "TransformedExpAffine",
               .make =
                   [](auto& p) {
                     return d::TransformedDistribution(
                         d::Normal(p[0], p[1]),
                         {tr::ExpTransform(), tr::AffineTransform(p[2], p[3])});
                   },
               .params = {uniform_param({3, 1}, -1, 1), uniform_param({4}, 0.3, 1),
                          uniform_param({4}, -1, 1), fixed_param({}, {1.7})},
               .sample_shape = {2048}});
  return f;
}

const std::vector<Family>& families() {
  static const std::vector<Family> all = make_families();
  return all;
}

// ------------------------------------------------------------------- harness ----
std::vector<Tensor> make_params(const Family& fam, DType dtype, Device device, bool with_grad) {
  std::vector<Tensor> out;
  for (const Param& p : fam.params) {
    Tensor t =
        from_vector(p.values, p.shape, TensorOptions{}.with_dtype(dtype)).to(device).detach();
    if (with_grad && p.requires_grad) t.requires_grad_();
    out.push_back(t);
  }
  return out;
}

// A moment or entropy, or undefined where the family has none (it throws).
Tensor try_eval(const std::function<Tensor()>& f) {
  try {
    return f().detach();
  } catch (const Error&) {
    return Tensor();
  }
}

Agreement draw_agreement(const Family& fam) {
  return {fam.rare_branches ? kRareBranchFraction : 0.0, false};
}

void check_draws(const Family& fam, DType dtype) {
  const Tolerance tol = last_ulp_tolerance(dtype).scaled(fam.draw_tol);
  const auto p_cpu = make_params(fam, dtype, Device::cpu(), false);
  const auto p_dev = make_params(fam, dtype, target(), false);
  const dist::Distribution d_cpu = fam.make(p_cpu), d_dev = fam.make(p_dev);
  ASSERT_TRUE(d_dev.device() == target());
  // Two draws in a row: the second checks that both advance the generator alike.
  Generator g_cpu(0x5eed), g_dev(0x5eed);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("sample, draw " + std::to_string(round));
    const Tensor s_cpu = d_cpu.sample(fam.sample_shape, g_cpu);
    const Tensor s_dev = d_dev.sample(fam.sample_shape, g_dev);
    EXPECT_FALSE(s_dev.requires_grad());
    EXPECT_TRUE(agree(s_dev, s_cpu, tol, draw_agreement(fam)));
    EXPECT_EQ(g_dev.offset(), g_cpu.offset());
  }
}

void check_rsample(const Family& fam, DType dtype) {
  const auto p_cpu = make_params(fam, dtype, Device::cpu(), true);
  const auto p_dev = make_params(fam, dtype, target(), true);
  const dist::Distribution d_cpu = fam.make(p_cpu), d_dev = fam.make(p_dev);
  ASSERT_EQ(d_dev.has_rsample(), d_cpu.has_rsample());
  if (!d_cpu.has_rsample()) return;
  SCOPED_TRACE("rsample");
  const Tolerance tol = last_ulp_tolerance(dtype).scaled(fam.draw_tol);
  Generator g_cpu(0xd1ff), g_dev(0xd1ff);
  const Tensor r_cpu = d_cpu.rsample(fam.sample_shape, g_cpu);
  const Tensor r_dev = d_dev.rsample(fam.sample_shape, g_dev);
  std::vector<double> mask;
  ASSERT_TRUE(agree(r_dev, r_cpu, tol, draw_agreement(fam), &mask));
  ASSERT_EQ(r_dev.requires_grad(), r_cpu.requires_grad());
  if (!r_cpu.requires_grad()) return;
  // Random weights, zero where a rare branch made the draws differ (their gradients would too).
  std::normal_distribution<double> normal;
  for (double& m : mask) m *= normal(rng());
  const Tensor w = from_vector(mask, r_cpu.shape(), TensorOptions{}.with_dtype(dtype));
  sum(r_cpu * w).backward();
  sum(r_dev * w.to(target())).backward();
  for (std::size_t i = 0; i < p_cpu.size(); ++i) {
    if (!p_cpu[i].requires_grad()) continue;
    const std::int64_t terms = r_cpu.numel() / std::max<std::int64_t>(p_cpu[i].numel(), 1);
    const Tolerance gtol = for_sums(last_ulp_tolerance(dtype).scaled(fam.value_tol), terms);
    EXPECT_TRUE(agree(p_dev[i].grad(), p_cpu[i].grad(), gtol, {0.0, true}))
        << "rsample gradient of parameter " << i;
  }
}

void check_log_prob(const Family& fam, DType dtype) {
  SCOPED_TRACE("log_prob");
  const auto p_cpu = make_params(fam, dtype, Device::cpu(), true);
  const auto p_dev = make_params(fam, dtype, target(), true);
  const dist::Distribution d_cpu = fam.make(p_cpu), d_dev = fam.make(p_dev);
  // Values in the support: CPU draws, the same on both devices.
  Generator gen(0x10b);
  const Tensor drawn = d_cpu.sample({3}, gen).detach();
  const bool value_grad = fam.continuous && is_floating(drawn.dtype());
  Tensor v_cpu = drawn.clone().detach(), v_dev = drawn.to(target()).detach();
  if (value_grad) {
    v_cpu.requires_grad_();
    v_dev.requires_grad_();
  }
  const Tolerance tol = last_ulp_tolerance(dtype).scaled(fam.value_tol);
  const Tensor lp_cpu = d_cpu.log_prob(v_cpu), lp_dev = d_dev.log_prob(v_dev);
  Agreement how;
  if (fam.terms) {
    std::vector<Tensor> p64;
    for (const Tensor& p : p_cpu) p64.push_back(p.detach().to(kFloat64));
    const Tensor largest = fam.terms(p64, drawn.to(kFloat64)).expand(lp_cpu.shape());
    how.atol_per_element = values(largest.contiguous() * (kTermUlps * epsilon(dtype)));
  }
  ASSERT_TRUE(agree(lp_dev, lp_cpu, tol, how)) << "log_prob values";
  ASSERT_EQ(lp_dev.requires_grad(), lp_cpu.requires_grad());
  if (!lp_cpu.requires_grad()) return;
  sum(lp_cpu).backward();
  sum(lp_dev).backward();
  if (value_grad) {
    const std::int64_t terms = drawn.numel() / std::max<std::int64_t>(lp_cpu.numel(), 1);
    EXPECT_TRUE(agree(v_dev.grad(), v_cpu.grad(), for_sums(tol, terms), {0.0, terms > 1}))
        << "gradient of the value";
  }
  for (std::size_t i = 0; i < p_cpu.size(); ++i) {
    if (!p_cpu[i].requires_grad()) continue;
    const std::int64_t terms = lp_cpu.numel() / std::max<std::int64_t>(p_cpu[i].numel(), 1);
    EXPECT_TRUE(agree(p_dev[i].grad(), p_cpu[i].grad(), for_sums(tol, terms), {0.0, true}))
        << "gradient of parameter " << i;
  }
}

void check_moments(const Family& fam, DType dtype) {
  const auto p_cpu = make_params(fam, dtype, Device::cpu(), false);
  const auto p_dev = make_params(fam, dtype, target(), false);
  const dist::Distribution d_cpu = fam.make(p_cpu), d_dev = fam.make(p_dev);
  const Tolerance tol = last_ulp_tolerance(dtype).scaled(fam.value_tol);
  EXPECT_TRUE(
      agree(try_eval([&] { return d_dev.mean(); }), try_eval([&] { return d_cpu.mean(); }), tol))
      << "mean";
  EXPECT_TRUE(agree(try_eval([&] { return d_dev.variance(); }),
                    try_eval([&] { return d_cpu.variance(); }), tol))
      << "variance";
  EXPECT_TRUE(agree(try_eval([&] { return d_dev.entropy(); }),
                    try_eval([&] { return d_cpu.entropy(); }), tol))
      << "entropy";
}

// --------------------------------------------------------------------- cases ----
class DistributionsCuda : public ::testing::TestWithParam<std::size_t> {};

TEST_P(DistributionsCuda, SameDrawsLogProbGradientsAndMomentsAsTheCpu) {
  EMBER_REQUIRE_CUDA();
  const Family& fam = families()[GetParam()];
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(fam.name + " " + dtype_name(dtype));
    check_draws(fam, dtype);
    check_rsample(fam, dtype);
    check_log_prob(fam, dtype);
    check_moments(fam, dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, DistributionsCuda,
                         ::testing::Range<std::size_t>(0, families().size()),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           return families()[info.param].name;
                         });

TEST(DistributionsCudaPhilox, UniformAndNormalStreamsMatch) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(dtype));
    Generator g_cpu(42), g_dev(42);
    const Shape shape{1000, 37};  // not a multiple of Philox's four lanes
    const Tensor u_cpu = rand(shape, TensorOptions{}.with_dtype(dtype), &g_cpu);
    const Tensor u_dev =
        rand(shape, TensorOptions{}.with_dtype(dtype).with_device(target()), &g_dev);
    // The uniforms are integer arithmetic and one exact scaling: bitwise equal.
    EXPECT_TRUE(agree(u_dev, u_cpu, kExact));
    const Tensor n_cpu = randn(shape, TensorOptions{}.with_dtype(dtype), &g_cpu);
    const Tensor n_dev =
        randn(shape, TensorOptions{}.with_dtype(dtype).with_device(target()), &g_dev);
    EXPECT_TRUE(agree(n_dev, n_cpu, last_ulp_tolerance(dtype)));
    EXPECT_EQ(g_dev.offset(), g_cpu.offset());
  }
}

// 2^20 elements, parameters of the full batch shape (every gradient is elementwise), so that
// every launch takes its multi-block path.
void check_large_batch(const Family& fam) {
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(fam.name + " 2^20 " + dtype_name(dtype));
    check_draws(fam, dtype);
    check_rsample(fam, dtype);
    check_log_prob(fam, dtype);
  }
}

constexpr std::int64_t kLarge = std::int64_t{1} << 20;

TEST(DistributionsCudaLarge, NormalOverTwoToTheTwenty) {
  EMBER_REQUIRE_CUDA();
  check_large_batch({"Normal",
                     [](auto& p) { return dist::Normal(p[0], p[1]); },
                     {uniform_param({1024, 1024}, -2, 2), uniform_param({1024, 1024}, 0.5, 2)},
                     {}});
}

TEST(DistributionsCudaLarge, GammaOverTwoToTheTwenty) {
  EMBER_REQUIRE_CUDA();
  Param conc = uniform_param({kLarge}, 0.2, 6.0);
  check_large_batch({"Gamma",
                     [](auto& p) { return dist::Gamma(p[0], p[1]); },
                     {conc, uniform_param({kLarge}, 0.5, 2)},
                     {},
                     1.0,
                     1.0,
                     true});
}

}  // namespace
}  // namespace ember::test
