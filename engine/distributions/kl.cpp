// The KL registry and the closed forms of the built-in families.
//
// Entries receive plain Distribution handles. To read a family's parameters an entry binds
// the family's public class to the same implementation (`view_as`): a prototype instance of
// the class is copied and its implementation pointer replaced, so the class's own accessors
// answer for the distribution at hand. Dispatch is by name(), which every family sets, so
// the family implementations stay private to their .cpp files.
#include "ember/kl.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include "ember/distributions/continuous.hpp"
#include "ember/distributions/discrete.hpp"
#include "ember/distributions/gamma.hpp"
#include "ember/distributions/multivariate_normal.hpp"
#include "ember/linalg.hpp"
#include "engine/distributions/wrappers.hpp"

namespace ember::dist {
namespace {

// D sharing d's implementation; d.name() must be D's family (the registry key ensures it).
template <typename D>
class Rebound : public D {
 public:
  Rebound(const D& prototype, const Distribution& d) : D(prototype) { this->impl_ = d.impl_ptr(); }
};
template <typename D>
D view_as(const Distribution& d, const D& prototype) {
  return Rebound<D>(prototype, d);
}

Tensor sum_rightmost(const Tensor& t, int n) {
  if (n <= 0) return t;
  std::vector<int> dims;
  for (int i = 1; i <= n; ++i) dims.push_back(-i);
  return sum(t, dims);
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- closed forms ----

// Both Gaussian families: KL of the normals of (log) x.
Tensor kl_gaussian(const Tensor& loc_p, const Tensor& scale_p, const Tensor& loc_q,
                   const Tensor& scale_q) {
  const Tensor var_ratio = square(scale_p / scale_q);
  const Tensor t1 = square((loc_p - loc_q) / scale_q);
  return 0.5 * (var_ratio + t1 - 1.0 - log(var_ratio));
}

Tensor kl_normal_normal(const Distribution& p, const Distribution& q) {
  static const Normal proto(0.0, 1.0);
  const Normal a = view_as(p, proto), b = view_as(q, proto);
  return kl_gaussian(a.loc(), a.scale(), b.loc(), b.scale());
}

Tensor kl_log_normal_log_normal(const Distribution& p, const Distribution& q) {
  static const LogNormal proto(0.0, 1.0);
  const LogNormal a = view_as(p, proto), b = view_as(q, proto);
  return kl_gaussian(a.loc(), a.scale(), b.loc(), b.scale());
}

Tensor kl_gamma_gamma(const Distribution& p, const Distribution& q) {
  static const Gamma proto(1.0, 1.0);
  const Gamma a = view_as(p, proto), b = view_as(q, proto);
  const Tensor ap = a.concentration(), bp = a.rate(), aq = b.concentration(), bq = b.rate();
  return aq * log(bp / bq) + lgamma(aq) - lgamma(ap) + (ap - aq) * digamma(ap) +
         (bq - bp) * (ap / bp);
}

Tensor kl_beta_beta(const Distribution& p, const Distribution& q) {
  static const Beta proto(1.0, 1.0);
  const Beta a = view_as(p, proto), b = view_as(q, proto);
  const Tensor p1 = a.concentration1(), p0 = a.concentration0();
  const Tensor q1 = b.concentration1(), q0 = b.concentration0();
  const Tensor sp = p1 + p0, sq = q1 + q0;
  return lgamma(q1) + lgamma(q0) + lgamma(sp) - lgamma(p1) - lgamma(p0) - lgamma(sq) +
         (p1 - q1) * digamma(p1) + (p0 - q0) * digamma(p0) + (sq - sp) * digamma(sp);
}

Tensor kl_dirichlet_dirichlet(const Distribution& p, const Distribution& q) {
  static const Dirichlet proto(ones({2}));
  const Dirichlet a = view_as(p, proto), b = view_as(q, proto);
  const Tensor cp = a.concentration(), cq = b.concentration();
  const Tensor sp = sum(cp, {-1}), sq = sum(cq, {-1});
  return lgamma(sp) - lgamma(sq) - sum(lgamma(cp) - lgamma(cq), {-1}) +
         sum((cp - cq) * (digamma(cp) - digamma(sp).unsqueeze(-1)), {-1});
}

// p log(p/q) + (1-p) log((1-p)/(1-q)) through the logits: log p = -softplus(-logit),
// log(1-p) = -softplus(logit). Terms with p = 0 (or 1) vanish; q = 0 (or 1) against a
// positive p gives +inf.
Tensor kl_bernoulli_bernoulli(const Distribution& p, const Distribution& q) {
  static const Bernoulli proto(0.5);
  const Bernoulli a = view_as(p, proto), b = view_as(q, proto);
  const Tensor pp = a.probs(), qp = b.probs(), pl = a.logits(), ql = b.logits();
  Tensor t1 = pp * (softplus(-ql) - softplus(-pl));
  t1 = where(eq(pp, 0.0), 0.0, where(eq(qp, 0.0), kInf, t1));
  Tensor t2 = (1.0 - pp) * (softplus(ql) - softplus(pl));
  t2 = where(eq(pp, 1.0), 0.0, where(eq(qp, 1.0), kInf, t2));
  return t1 + t2;
}

Tensor kl_categorical_categorical(const Distribution& p, const Distribution& q) {
  static const Categorical proto(ones({2}) * 0.5);
  const Categorical a = view_as(p, proto), b = view_as(q, proto);
  const Tensor pp = a.probs(), qp = b.probs();
  Tensor t = pp * (a.logits() - b.logits());
  t = where(eq(pp, 0.0), 0.0, where(eq(qp, 0.0), kInf, t));
  return sum(t, {-1});
}

// 1/2 [tr(Sq^-1 Sp) + |Lq^-1 (mq - mp)|^2 - n] + log|Lq| - log|Lp|, with tr(Sq^-1 Sp) the
// squared Frobenius norm of Lq^-1 Lp.
Tensor kl_mvn_mvn(const Distribution& p, const Distribution& q) {
  static const MultivariateNormal proto(zeros({1}), ones({1, 1}));
  const MultivariateNormal a = view_as(p, proto), b = view_as(q, proto);
  EMBER_CHECK_SHAPE(p.event_shape() == q.event_shape(), "kl_divergence(", p.name(), ", ", q.name(),
                    "): event shapes ", p.event_shape(), " and ", q.event_shape(), " differ");
  const Tensor lp = a.scale_tril(), lq = b.scale_tril();
  const double n = static_cast<double>(p.event_shape()[0]);
  const Tensor half_log_det = sum(log(diagonal(lq)), {-1}) - sum(log(diagonal(lp)), {-1});
  const Tensor trace = sum(square(triangular_solve(lp, lq)), {-2, -1});
  const Tensor maha = batch_mahalanobis(lq, b.loc() - a.loc());
  return half_log_det + 0.5 * (trace + maha - n);
}

// ---- the registry ----

using Key = std::pair<std::string, std::string>;

struct Registry {
  std::mutex mutex;
  std::map<Key, KlFn> table;
};

Registry& registry() {
  static Registry r{{},
                    {
                        {{"Normal", "Normal"}, kl_normal_normal},
                        {{"LogNormal", "LogNormal"}, kl_log_normal_log_normal},
                        {{"Gamma", "Gamma"}, kl_gamma_gamma},
                        {{"Beta", "Beta"}, kl_beta_beta},
                        {{"Dirichlet", "Dirichlet"}, kl_dirichlet_dirichlet},
                        {{"Bernoulli", "Bernoulli"}, kl_bernoulli_bernoulli},
                        {{"Categorical", "Categorical"}, kl_categorical_categorical},
                        {{"MultivariateNormal", "MultivariateNormal"}, kl_mvn_mvn},
                    }};
  return r;
}

KlFn find(const std::string& p_name, const std::string& q_name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.table.find({p_name, q_name});
  return it == r.table.end() ? KlFn() : it->second;
}

}  // namespace

Tensor kl_divergence(const Distribution& p, const Distribution& q) {
  const Shape batch = broadcast_shapes(p.batch_shape(), q.batch_shape(), "kl_divergence");
  // Hiding the sampler changes nothing about the density.
  if (const auto* pn = p.as<NonReparameterizedImpl>()) {
    return kl_divergence(Distribution(pn->base_ptr()), q);
  }
  if (const auto* qn = q.as<NonReparameterizedImpl>()) {
    return kl_divergence(p, Distribution(qn->base_ptr()));
  }
  // Masks: the KL of the unmasked pair, zeroed where either mask is false.
  const auto* pm = p.as<MaskedImpl>();
  const auto* qm = q.as<MaskedImpl>();
  if (pm || qm) {
    const Distribution pb = pm ? Distribution(pm->base_ptr()) : p;
    const Distribution qb = qm ? Distribution(qm->base_ptr()) : q;
    Tensor kl = kl_divergence(pb, qb);
    if (pm) kl = where(pm->mask(), kl, 0.0);
    if (qm) kl = where(qm->mask(), kl, 0.0);
    return kl.expand(batch);
  }
  const auto* pi = p.as<IndependentImpl>();
  const auto* qi = q.as<IndependentImpl>();
  if (pi && qi) {
    const int n = pi->reinterpreted_batch_ndims();
    EMBER_CHECK(n == qi->reinterpreted_batch_ndims(), "kl_divergence(", p.name(), ", ", q.name(),
                "): the two reinterpret different numbers of batch dims");
    const Tensor base = kl_divergence(Distribution(pi->base_ptr()), Distribution(qi->base_ptr()));
    return sum_rightmost(base, n).expand(batch);
  }
  const KlFn fn = find(p.name(), q.name());
  EMBER_CHECK(fn != nullptr, "kl_divergence: no closed form is registered for KL(", p.name(),
              " || ", q.name(), ")");
  return fn(p, q).expand(batch);
}

void register_kl(const std::string& p_name, const std::string& q_name, KlFn fn) {
  EMBER_CHECK(fn != nullptr, "register_kl(", p_name, ", ", q_name, "): an empty function");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.table[{p_name, q_name}] = std::move(fn);
}

bool has_kl(const Distribution& p, const Distribution& q) {
  const auto* pm = p.as<MaskedImpl>();
  const auto* qm = q.as<MaskedImpl>();
  if (pm || qm)
    return has_kl(pm ? Distribution(pm->base_ptr()) : p, qm ? Distribution(qm->base_ptr()) : q);
  const auto* pi = p.as<IndependentImpl>();
  const auto* qi = q.as<IndependentImpl>();
  if (pi && qi)
    return pi->reinterpreted_batch_ndims() == qi->reinterpreted_batch_ndims() &&
           has_kl(Distribution(pi->base_ptr()), Distribution(qi->base_ptr()));
  return find(p.name(), q.name()) != nullptr;
}

}  // namespace ember::dist
