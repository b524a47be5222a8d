// TraceGraph_ELBO: score-function terms with Rao-Blackwellized costs and baselines.
//
// The dependency graph is Pyro's "dense" one: a sample site depends on every earlier sample
// site of its trace, except those in another iteration of a sequential plate they share. A
// non-reparameterized guide site's cost holds the terms of its descendants in the guide, and
// the model sites that follow any of those in the model, each summed to the site's plates.
#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "ember/error.hpp"
#include "ember/infer.hpp"
#include "ember/nn/module.hpp"
#include "ember/ops.hpp"
#include "engine/infer/elbo_util.hpp"
#include "engine/internal.hpp"

namespace ember {
namespace {

// Whether `later` can depend on `earlier`: not when they sit in different iterations of one
// sequential plate (plate stacks compared position by position, as Pyro does).
bool can_depend(const Site& earlier, const Site& later) {
  const auto& a = earlier.cond_indep_stack;
  const auto& b = later.cond_indep_stack;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i].name == b[i].name && a[i].counter != b[i].counter) return false;
  }
  return true;
}

std::vector<const Site*> sample_sites(const Trace& tr) {
  std::vector<const Site*> out;
  for (const Site& s : tr) {
    if (s.is_sample()) out.push_back(&s);
  }
  return out;
}

}  // namespace

Tensor TraceGraph_ELBO::average_baseline(const std::string& site) const {
  auto it = avg_baselines_.find(site);
  return it == avg_baselines_.end() ? Tensor() : it->second;
}

ELBO::Particle TraceGraph_ELBO::particle(const Trace& model_trace, const Trace& guide_trace,
                                         bool want_surrogate) {
  Particle p{detail::elbo_value(model_trace, guide_trace), Tensor()};
  if (!want_surrogate) return p;
  p.surrogate = reparam_surrogate(model_trace, guide_trace);
  const std::vector<const Site*> scored = score_sites(guide_trace);
  if (scored.empty()) return p;

  const std::vector<const Site*> guide = sample_sites(guide_trace);
  const std::vector<const Site*> model = sample_sites(model_trace);
  const std::size_t ng = guide.size();
  std::unordered_map<std::string, std::size_t> model_pos;
  for (std::size_t i = 0; i < model.size(); ++i) model_pos.emplace(model[i]->name, i);

  // Descendants in the guide, from the last site backwards: desc[i] = {i} + desc of each
  // successor, as bit sets.
  const std::size_t words = ng / 64 + 1;  // (ng + 63) / 64 would do; this cannot overflow
  std::vector<std::vector<std::uint64_t>> desc(ng, std::vector<std::uint64_t>(words, 0));
  for (std::size_t i = ng; i-- > 0;) {
    desc[i][i / 64] |= std::uint64_t{1} << (i % 64);
    for (std::size_t j = i + 1; j < ng; ++j) {
      if (!can_depend(*guide[i], *guide[j])) continue;
      for (std::size_t w = 0; w < words; ++w) desc[i][w] |= desc[j][w];
    }
  }
  auto is_desc = [&](std::size_t i, std::size_t j) { return (desc[i][j / 64] >> (j % 64)) & 1; };
  std::unordered_map<const Site*, std::size_t> guide_pos;
  for (std::size_t i = 0; i < ng; ++i) guide_pos.emplace(guide[i], i);

  Tensor baseline_loss;
  for (const Site* site : scored) {
    const std::size_t k = guide_pos.at(site);
    detail::CostTerms cost;
    std::unordered_set<std::string> in_guide;
    std::vector<bool> model_child(model.size(), false);
    for (std::size_t j = 0; j < ng; ++j) {
      if (!is_desc(k, j)) continue;
      const Site& g = *guide[j];
      in_guide.insert(g.name);
      auto mp = model_pos.find(g.name);
      if (mp == model_pos.end()) {
        cost.add(-g.log_prob(), detail::vectorized_frames(g));
        continue;
      }
      const Site& m = *model[mp->second];
      cost.add(m.log_prob() - g.log_prob(), detail::vectorized_frames(m));
      for (std::size_t c = mp->second + 1; c < model.size(); ++c) {
        if (can_depend(m, *model[c])) model_child[c] = true;
      }
    }
    for (std::size_t c = 0; c < model.size(); ++c) {
      if (model_child[c] && in_guide.count(model[c]->name) == 0) {
        cost.add(model[c]->log_prob(), detail::vectorized_frames(*model[c]));
      }
    }
    const Tensor downstream = cost.sum_to(detail::vectorized_frames(*site));

    // Baselines, as Pyro's: a decaying average, plus a network's or a given value.
    const BaselineConfig& cfg = site->infer.baseline;
    EMBER_CHECK(!(cfg.nn_baseline && cfg.baseline_value.defined()), "TraceGraph_ELBO: site '",
                site->name, "' gives both nn_baseline and baseline_value; use one");
    Tensor baseline;
    if (cfg.use_decaying_avg_baseline) {
      EMBER_CHECK(cfg.baseline_beta >= 0.0 && cfg.baseline_beta < 1.0, "TraceGraph_ELBO: site '",
                  site->name, "': baseline_beta must lie in [0, 1), got ", cfg.baseline_beta);
      Tensor& avg = avg_baselines_[site->name];
      if (!avg.defined() || !(avg.shape() == downstream.shape()) ||
          avg.device() != downstream.device()) {
        avg = zeros_like(downstream);
      }
      NoGradGuard no_grad;
      baseline = avg.clone();
      // Updated in place: a compiled step's replay reads and writes the same memory.
      const Tensor next = avg * cfg.baseline_beta + downstream.detach() * (1.0 - cfg.baseline_beta);
      detail::backend(avg).copy(detail::arg(avg), detail::arg(next));
    }
    Tensor learned;
    if (cfg.nn_baseline) {
      EMBER_CHECK(cfg.nn_baseline_input.defined(), "TraceGraph_ELBO: site '", site->name,
                  "' has an nn_baseline but no nn_baseline_input");
      learned = cfg.nn_baseline->forward(cfg.nn_baseline_input);
    } else if (cfg.baseline_value.defined()) {
      learned = cfg.baseline_value;
    }
    if (learned.defined()) {
      // A one-element baseline (a network's (1,) output for a site outside any plate)
      // stands for the scalar it holds.
      if (learned.numel() == 1 && learned.dim() > downstream.dim()) learned = learned.reshape({});
      try {
        const Shape fit = broadcast_shapes(learned.shape(), downstream.shape(), "baseline");
        EMBER_CHECK_SHAPE(fit == downstream.shape(), "it broadcasts to ", fit);
      } catch (const ShapeError& err) {
        throw ShapeError("TraceGraph_ELBO: the baseline of site '" + site->name + "' has shape " +
                         learned.shape().str() + " but its cost has shape " +
                         downstream.shape().str() + " (" + err.what() + ")");
      }
      baseline = baseline.defined() ? baseline + learned : learned;
      if (learned.requires_grad()) {
        const Tensor l = sum(square(downstream - baseline));
        baseline_loss = baseline_loss.defined() ? baseline_loss + l : l;
      }
    }
    const Tensor weight = baseline.defined() ? downstream - baseline : downstream;
    p.surrogate = p.surrogate + detail::score_term(*site, weight);
  }
  // The surrogate is maximized; the baselines' squared error is minimized.
  if (baseline_loss.defined()) p.surrogate = p.surrogate - baseline_loss;
  return p;
}

}  // namespace ember
