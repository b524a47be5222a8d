// A tour of ember::dist for Pyro users: families, seeded draws against analytic moments,
// log_prob and entropy, a KL divergence against Monte Carlo, batch/event shapes, a
// reparameterized gradient, and argument validation. Runs on Device::best().
#include <cmath>
#include <cstdio>
#include <ember/ember.hpp>
#include <ember/kl.hpp>
#include <utility>

namespace {

using namespace ember;

constexpr std::int64_t kDraws = 200000;

// Prints the Monte-Carlo mean of kDraws draws of d (over the sample dim) next to `exact`.
void compare_mean(const char* label, const dist::Distribution& d, const Tensor& exact,
                  Generator& gen) {
  const Tensor x = d.sample({kDraws}, gen).to(kFloat64);
  const auto mc = mean(x, {0}).to_vector<double>();
  const auto ex = exact.to(kFloat64).to_vector<double>();
  std::printf("  %-34s", label);
  for (std::size_t i = 0; i < mc.size(); ++i) std::printf(" %+.4f (exact %+.4f)", mc[i], ex[i]);
  std::printf("\n");
}

}  // namespace

int main() {
  const Device device = Device::best();
  const auto opts = TensorOptions{}.with_dtype(kFloat64).with_device(device);
  auto s = [&](double v) { return scalar_tensor(v, opts); };
  Generator gen(2024);  // every draw below comes from this seeded Philox stream
  std::printf("device: %s, %lld draws per Monte-Carlo estimate\n\n", device.str().c_str(),
              static_cast<long long>(kDraws));

  // Families, as in pyro.distributions.
  const dist::Normal normal(s(1.0), s(2.0));
  const dist::Gamma gamma(s(3.0), s(2.0));  // concentration, rate
  const dist::Beta beta(s(2.0), s(5.0));    // concentration1, concentration0
  const dist::Categorical cat(tensor({0.1, 0.2, 0.3, 0.4}, opts));
  const dist::MultivariateNormal mvn(tensor({1.0, -1.0}, opts),
                                     tensor({{1.0, 0.0}, {0.5, 1.0}}, opts));
  // exp(Normal(0, 0.5)): a LogNormal built by hand, mean exp(0.5^2 / 2).
  const dist::TransformedDistribution log_normal(dist::Normal(s(0.0), s(0.5)),
                                                 {transforms::ExpTransform()});

  std::printf("sample means vs analytic means\n");
  compare_mean("Normal(1, 2)", normal, normal.mean(), gen);
  compare_mean("Gamma(3, rate=2)", gamma, gamma.mean(), gen);
  compare_mean("Beta(2, 5)", beta, beta.mean(), gen);
  compare_mean("Categorical([.1, .2, .3, .4])", cat, cat.mean(), gen);
  compare_mean("MultivariateNormal([1, -1], L)", mvn, mvn.mean(), gen);
  compare_mean("exp(Normal(0, 0.5))", log_normal, s(std::exp(0.125)), gen);

  std::printf("\nlog_prob and entropy\n");
  std::printf("  Normal(1, 2).log_prob(0)          %+.6f (exact %+.6f)\n",
              normal.log_prob(s(0.0)).item(), -0.125 - std::log(2.0 * std::sqrt(2.0 * M_PI)));
  std::printf("  Categorical.log_prob(2)           %+.6f (exact log 0.3 = %+.6f)\n",
              cat.log_prob(s(2.0).to(kInt64)).item(), std::log(0.3));
  std::printf("  exp(Normal(0, .5)).log_prob(1)    %+.6f (exact %+.6f)\n",
              log_normal.log_prob(s(1.0)).item(), -std::log(0.5 * std::sqrt(2.0 * M_PI)));
  std::printf("  entropy: Normal %.4f  Gamma %.4f  Beta %.4f  Categorical %.4f  MVN %.4f\n",
              normal.entropy().item(), gamma.entropy().item(), beta.entropy().item(),
              cat.entropy().item(), mvn.entropy().item());

  // KL(p || q) in closed form against E_p[log p(x) - log q(x)] estimated from draws of p.
  std::printf("\nKL divergence, closed form vs Monte Carlo\n");
  auto kl_vs_mc = [&](const char* label, const dist::Distribution& p, const dist::Distribution& q) {
    const Tensor x = p.sample({kDraws}, gen);
    const double mc = mean(p.log_prob(x) - q.log_prob(x)).item();
    std::printf("  %-34s %.5f (Monte Carlo %.5f)\n", label, dist::kl_divergence(p, q).item(), mc);
  };
  kl_vs_mc("KL(Normal(1,2) || Normal(0,1))", normal, dist::Normal(s(0.0), s(1.0)));
  kl_vs_mc("KL(Gamma(3,2) || Gamma(2,1))", gamma, dist::Gamma(s(2.0), s(1.0)));

  // Shapes: sample_shape + batch_shape + event_shape, as in Pyro.
  std::printf("\nshapes\n");
  const dist::Distribution base = dist::Normal(zeros({3}, opts), ones({3}, opts));
  const dist::Distribution wide = base.expand({4, 3});
  const dist::Distribution indep = wide.to_event(1);
  for (const auto& [label, d] :
       {std::pair<const char*, dist::Distribution>{"Normal(zeros(3), 1)", base},
        {"  .expand({4, 3})", wide},
        {"  .expand({4, 3}).to_event(1)", indep}}) {
    const Tensor x = d.sample({5}, gen);
    std::printf("  %-30s batch_shape %-7s event_shape %-5s sample({5}) %-10s log_prob %s\n", label,
                d.batch_shape().str().c_str(), d.event_shape().str().c_str(),
                x.shape().str().c_str(), d.log_prob(x).shape().str().c_str());
  }

  // Reparameterized gradient: for x = loc + scale * eps, d/dloc E[x^2] = 2 loc.
  std::printf("\nreparameterized gradient\n");
  Tensor loc = s(1.5).requires_grad_();
  const Tensor x = dist::Normal(loc, s(0.5)).rsample({kDraws}, gen);
  mean(square(x)).backward();
  std::printf("  d/dloc E[x^2], x ~ Normal(1.5, 0.5): %.4f (exact 2 loc = %.4f)\n",
              loc.grad().item(), 2 * 1.5);

  // Validation: bad parameters and out-of-support values raise ValueError.
  std::printf("\nvalidation\n");
  try {
    const dist::Normal bad(s(0.0), s(-1.0));
  } catch (const ValueError& e) {
    std::printf("  caught ValueError: %s\n", e.what());
  }
  try {
    gamma.log_prob(s(-1.0));
  } catch (const ValueError& e) {
    std::printf("  caught ValueError: %s\n", e.what());
  }
  return 0;
}
