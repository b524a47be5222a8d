// KL divergence between distributions: a registry of closed forms keyed by the families'
// names (Distribution::name()), as Pyro's/PyTorch's register_kl keyed by classes.
//
// kl_divergence(p, q) first looks through the shape wrappers: a masked p or q gives the KL of
// the unmasked pair, zeroed where a mask is false; Independent(p, n) against Independent(q, n)
// is the base pair's KL summed over the n reinterpreted dims. Otherwise it calls the entry for
// (p.name(), q.name()); a pair with none raises ValueError naming both distributions.
#pragma once

#include <functional>
#include <string>

#include "ember/distributions/distribution.hpp"
#include "ember/tensor.hpp"

namespace ember::dist {

// KL(p || q) of a registered pair, with p and q as given (their names match the entry's).
using KlFn = std::function<Tensor(const Distribution& p, const Distribution& q)>;

// KL(p || q) = E_p[log p(x) - log q(x)], shaped as the broadcast of the two batch shapes.
// Differentiable in both distributions' parameters.
Tensor kl_divergence(const Distribution& p, const Distribution& q);

// Adds (or replaces) the closed form for the families named p_name and q_name. Built in:
// Normal, LogNormal, Gamma, Beta, Dirichlet, Bernoulli, Categorical and MultivariateNormal,
// each against itself. Thread-safe.
void register_kl(const std::string& p_name, const std::string& q_name, KlFn fn);

// Whether kl_divergence(p, q) has a closed form for this pair.
bool has_kl(const Distribution& p, const Distribution& q);

}  // namespace ember::dist
