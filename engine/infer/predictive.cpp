// Predictive (ember/predictive.hpp): prior and posterior predictive draws, one by one or at
// once inside an outer plate.
#include "ember/predictive.hpp"

#include <algorithm>
#include <optional>
#include <unordered_set>

#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "ember/primitives.hpp"
#include "ember/trace.hpp"
#include "engine/infer/elbo_util.hpp"

namespace ember::detail {
namespace {

using handlers::ValueMap;

constexpr const char* kSamplePlate = "_num_predictive_samples";

Trace traced(const std::function<void()>& fn) {
  handlers::TraceHandler tracer;
  fn();
  return tracer.take();
}

// One run: the guide (if any) under trace, then the model under the handlers that give it
// the posterior's latents; `sample_plate` wraps both when the draws run at once.
using Run = TracePair;
Run run_once(const std::function<void()>& model, const PredictiveSource& source,
             const ValueMap* given, const PredictiveOptions& o,
             const std::optional<std::pair<std::int64_t, int>>& sample_plate) {
  std::optional<Plate> draws;
  if (sample_plate) {
    PlateOptions po;
    po.dim = sample_plate->second;
    draws.emplace(kSamplePlate, sample_plate->first, po);
  }
  Run r;
  if (source.guide != nullptr) r.guide = traced(*source.guide);
  r.model = traced([&] {
    std::optional<handlers::ReplayHandler> replay;
    if (source.guide != nullptr) replay.emplace(r.guide);
    std::optional<handlers::SubstituteHandler> substitute;
    if (given != nullptr) substitute.emplace(*given);
    std::optional<handlers::UnconditionHandler> uncondition;
    if (o.resample_observed) uncondition.emplace();
    model();
  });
  return r;
}

bool given_by_posterior(const Site& s, const Run& r, const PredictiveSource& source) {
  if (source.samples != nullptr) return source.samples->contains(s.name);
  if (source.guide != nullptr) {
    const Site* g = r.guide.find(s.name);
    return g != nullptr && g->is_stochastic();
  }
  return false;
}

}  // namespace

ValueMap predictive_draws(const std::function<void()>& model, const PredictiveSource& source,
                          const PredictiveOptions& o) {
  const NoGradGuard no_grad;
  EMBER_CHECK(o.num_samples >= 0, "Predictive: num_samples must be nonnegative, got ",
              o.num_samples);
  std::int64_t n = o.num_samples;
  if (source.samples != nullptr) {
    EMBER_CHECK(!source.samples->empty(), "Predictive: the posterior samples are empty");
    for (const auto& [name, v] : *source.samples) {
      EMBER_CHECK_SHAPE(v.defined() && v.dim() >= 1, "Predictive: posterior samples of site '",
                        name, "' need a leading dim of draws, got ",
                        v.defined() ? v.shape().str() : std::string("an undefined tensor"));
      if (n == 0) n = v.size(0);
      EMBER_CHECK_SHAPE(
          v.size(0) == n, "Predictive: posterior samples of site '", name, "' hold ", v.size(0),
          " draws but ", n,
          o.num_samples > 0 ? " were asked for (num_samples)" : " were given for another site");
    }
  }
  EMBER_CHECK(n >= 1, "Predictive: num_samples must be at least 1 (or given by the posterior ",
              "samples)");

  // A first run (blocked from outer handlers) finds the sites and their shapes; run one by
  // one, it is the first draw.
  Run proto;
  {
    const handlers::BlockHandler hide_from_outer_handlers;
    ValueMap first;
    if (source.samples != nullptr) {
      for (const auto& [name, v] : *source.samples) first.emplace(name, v.select(0, 0));
    }
    proto = run_once(model, source, source.samples != nullptr ? &first : nullptr, o, std::nullopt);
  }
  std::vector<std::string> names = o.return_sites;
  if (names.empty()) {
    for (const Site& s : proto.model) {
      if (s.is_sample() && !given_by_posterior(s, proto, source)) names.push_back(s.name);
    }
  }
  for (const std::string& name : names) {
    const Site* s = proto.model.find(name);
    if (s == nullptr) s = proto.guide.find(name);
    EMBER_CHECK(s != nullptr && s->type == SiteType::Sample, "Predictive: return site '", name,
                "' is no sample site of the model", source.guide != nullptr ? " or the guide" : "");
  }
  auto site_of = [&](const Run& r, const std::string& name) -> const Site& {
    const Site* s = r.model.find(name);
    if (s == nullptr) s = r.guide.find(name);
    EMBER_CHECK(s != nullptr, "Predictive: site '", name,
                "' appeared in the first run but not in a later one (the model's structure ",
                "changed between draws)");
    return *s;
  };

  ValueMap out;
  if (!o.parallel) {
    std::vector<std::vector<Tensor>> columns(names.size());
    for (std::int64_t i = 0; i < n; ++i) {
      ValueMap given;
      if (source.samples != nullptr) {
        for (const auto& [name, v] : *source.samples) given.emplace(name, v.select(0, i));
      }
      // The first run is the first draw.
      const Run r = i == 0 ? std::move(proto)
                           : run_once(model, source, source.samples != nullptr ? &given : nullptr,
                                      o, std::nullopt);
      for (std::size_t k = 0; k < names.size(); ++k) {
        columns[k].push_back(site_of(r, names[k]).value.detach());
      }
    }
    for (std::size_t k = 0; k < names.size(); ++k) out.emplace(names[k], stack(columns[k]));
    return out;
  }

  // At once: every latent and predicted site gains the sample dim at -(nesting + 1).
  const int nesting = o.max_plate_nesting >= 0 ? o.max_plate_nesting : plate_nesting_of(proto);
  const int dim = -(nesting + 1);
  ValueMap given;
  if (source.samples != nullptr) {
    for (const auto& [name, v] : *source.samples) {
      const Site* s = proto.model.find(name);
      EMBER_CHECK(s != nullptr, "Predictive: posterior samples name site '", name,
                  "', which the model does not have");
      const int batch = static_cast<int>(s->fn.defined() ? s->fn.batch_shape().size() : 0);
      EMBER_CHECK_SHAPE(batch <= nesting, "Predictive: site '", name, "' has ", batch,
                        " batch dims, more than max_plate_nesting ", nesting,
                        " allows in parallel mode");
      Shape shape{n};
      for (int k = batch; k < nesting; ++k) shape.push_back(1);
      for (int k = 1; k < v.dim(); ++k) shape.push_back(v.size(k));
      given.emplace(name, v.reshape(shape));
    }
  }
  const Run r = run_once(model, source, source.samples != nullptr ? &given : nullptr, o,
                         std::make_pair(n, dim));
  for (const std::string& name : names) {
    const Tensor v = site_of(r, name).value.detach();
    const Shape one = site_of(proto, name).value.shape();
    Shape shape{n};
    for (auto d : one) shape.push_back(d);
    if (v.numel() == shape.numel()) {
      out.emplace(name, v.reshape(shape));
    } else {
      // A site that does not depend on the draw (a constant deterministic value).
      EMBER_CHECK_SHAPE(v.numel() == one.numel(), "Predictive: site '", name, "' has shape ",
                        v.shape(), " in parallel mode, which does not hold ", n,
                        " draws of its shape ", one,
                        " (does the model broadcast over the sample plate?)");
      out.emplace(name, v.reshape(one).expand(shape).contiguous());
    }
  }
  return out;
}

}  // namespace ember::detail
