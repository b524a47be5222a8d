// Trace_ELBO: pathwise gradients plus score-function terms weighted by the ELBO of the
// site's own plate elements (log r = log p - log q per site, summed over other plates).
#include "ember/error.hpp"
#include "ember/infer.hpp"
#include "ember/kl.hpp"
#include "ember/ops.hpp"
#include "engine/infer/elbo_util.hpp"

namespace ember {

ELBO::Particle Trace_ELBO::particle(const Trace& model_trace, const Trace& guide_trace,
                                    bool want_surrogate) {
  const std::vector<const Site*> sites = score_sites(guide_trace);
  if (want_surrogate && sites.empty()) {
    // Every guide site is pathwise: the surrogate is the ELBO itself.
    Tensor s = reparam_surrogate(model_trace, guide_trace);
    return {s.detach(), s};
  }
  Particle p{detail::elbo_value(model_trace, guide_trace), Tensor()};
  if (!want_surrogate) return p;
  p.surrogate = reparam_surrogate(model_trace, guide_trace);
  detail::CostTerms log_r;
  for (const Site& m : model_trace) {
    if (!m.is_sample()) continue;
    Tensor term = m.log_prob();
    if (!m.is_observed) {
      if (const Site* g = guide_trace.find(m.name)) term = term - g->log_prob();
    }
    log_r.add(term, detail::vectorized_frames(m));
  }
  for (const Site* s : sites) {
    p.surrogate = p.surrogate + detail::score_term(*s, log_r.sum_to(detail::vectorized_frames(*s)));
  }
  return p;
}

ELBO::Particle TraceMeanField_ELBO::particle(const Trace& model_trace, const Trace& guide_trace,
                                             bool want_surrogate) {
  Tensor elbo;
  auto add = [&elbo](const Tensor& t) { elbo = elbo.defined() ? elbo + t : t; };
  for (const Site& m : model_trace) {
    if (!m.is_sample()) continue;
    if (m.is_observed) {
      add(m.log_prob_sum());
      continue;
    }
    const Site* g = guide_trace.find(m.name);
    EMBER_CHECK(g != nullptr, "TraceMeanField_ELBO: the model's latent site '", m.name,
                "' has no guide site");
    EMBER_CHECK(g->fn.has_rsample(), "TraceMeanField_ELBO: guide site '", m.name, "' (",
                g->fn.name(), ") is not reparameterized; use Trace_ELBO or TraceGraph_ELBO");
    if (dist::has_kl(g->fn, m.fn)) {
      Tensor kl = dist::kl_divergence(g->fn, m.fn);
      if (g->mask.defined()) kl = where(g->mask, kl, 0.0);
      add(-sum(kl) * g->scale);
    } else {
      add(m.log_prob_sum() - g->log_prob_sum());
    }
  }
  for (const Site& g : guide_trace) {
    if (g.is_sample() && !model_trace.contains(g.name)) add(-g.log_prob_sum());
  }
  if (!elbo.defined()) elbo = scalar_tensor(0.0);
  return {elbo.detach(), want_surrogate ? elbo : Tensor()};
}

}  // namespace ember
