// The ELBO base: running guide and model per particle, collecting parameters, the pieces
// every estimator shares, and the cost bookkeeping over plates.
#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <sstream>

#include "ember/enumerate.hpp"
#include "ember/error.hpp"
#include "ember/handlers.hpp"
#include "ember/infer.hpp"
#include "ember/ops.hpp"
#include "ember/primitives.hpp"
#include "engine/compile/plan.hpp"
#include "engine/infer/elbo_util.hpp"
#include "engine/internal.hpp"
#include "engine/profile_util.hpp"

namespace ember {
namespace {

// Records a failed check of `checked` in `out`, with the site at fault when the particle's
// estimate is not finite (the first such particle's site stays). The slow path alone reads
// more than the check's one flag.
void record_check(ElboResult& out, std::span<const Tensor> checked, const Tensor& particle_elbo,
                  const detail::TracePair& traces) {
  if (detail::all_finite(checked)) return;
  out.finite = false;
  if (!out.nonfinite_site.name.empty() ||
      detail::all_finite(std::span<const Tensor>(&particle_elbo, 1))) {
    return;
  }
  out.nonfinite_site = detail::first_nonfinite_site(traces);
}

}  // namespace

ELBO::ELBO(ElboOptions options) : options_(options), max_plate_nesting_(options.max_plate_nesting) {
  EMBER_CHECK(options.num_particles >= 1, "ELBO: num_particles must be at least 1, got ",
              options.num_particles);
  EMBER_CHECK(options.max_plate_nesting >= -1, "ELBO: max_plate_nesting must be -1 (find it) or ",
              "nonnegative, got ", options.max_plate_nesting);
}

ELBO::~ELBO() = default;

ElboResult ELBO::loss_and_grads(const std::function<void()>& model,
                                const std::function<void()>& guide, FiniteCheck check) {
  return run(model, guide, true, check);
}

ElboResult ELBO::loss(const std::function<void()>& model, const std::function<void()>& guide) {
  return run(model, guide, false, FiniteCheck::Off);
}

int ELBO::plate_nesting(const std::function<void()>& model, const std::function<void()>& guide) {
  if (max_plate_nesting_ >= 0) return max_plate_nesting_;
  // One traced run of each, as Pyro's guess_max_plate_nesting.
  NoGradGuard no_grad;
  max_plate_nesting_ = detail::plate_nesting_of(detail::trace_pair(model, guide));
  return max_plate_nesting_;
}

ElboResult ELBO::run(const std::function<void()>& model, const std::function<void()>& guide,
                     bool grads, FiniteCheck check) {
  const int n = options_.num_particles;
  const bool vectorized = options_.vectorize_particles && n > 1;
  std::optional<NoGradGuard> no_grad;
  if (!grads) no_grad.emplace();
  std::optional<detail::ParticlePlate> particle_plate;
  if (vectorized) particle_plate = detail::ParticlePlate{n, -(plate_nesting(model, guide) + 1)};
  // Enumeration dims start left of the plates (and of the particles' plate).
  const int enum_first_dim =
      enumerates() ? -(plate_nesting(model, guide) + (vectorized ? 2 : 1)) : 0;

  using detail::PhaseClock;
  using detail::PhaseTimes;
  ElboResult out;
  // Every param site's leaf, gathered run by run, then sorted by name with the first of each
  // name kept (a few blocks a step where a map took one per param).
  std::vector<NamedTensor>& params = out.params;
  params.reserve(8);
  Tensor total, last_elbo;
  detail::TracePair traces;
  const int runs = vectorized ? 1 : n;
  const int nesting = vectorized     ? -particle_plate->dim
                      : enumerates() ? plate_nesting(model, guide)
                                     : options_.max_plate_nesting;
  // Under enumeration each particle is one run per combination of the guide's sequentially
  // enumerated sites' values (one run when it has none).
  handlers::SequentialEnumHandler::Schedule schedule;
  const detail::EnumSetup enumerate{enum_first_dim, enumerates(),
                                    enumerates() ? &schedule : nullptr};
  bool last = false;
  for (int r = 0; !last;) {
    traces = detail::trace_pair(model, guide, particle_plate, enumerate);
    if (!schedule.advance()) ++r;
    last = r == runs;
    if (validation_enabled()) {
      const detail::PauseRecording checks_are_not_replayed;
      detail::validate_traces(traces, nesting);
    }
    for (const Trace* tr : {&traces.guide, &traces.model}) {
      for (const Site& s : *tr) {
        if (s.is_param() && s.unconstrained.defined()) params.push_back({s.name, s.unconstrained});
      }
    }
    Particle p;
    {
      PhaseClock clock(&PhaseTimes::loss);
      p = particle(traces.model, traces.guide, grads);
    }
    if (grads && p.surrogate.defined() && p.surrogate.requires_grad()) {
      PhaseClock clock(&PhaseTimes::backward);
      // The loss is -surrogate / n: seeding the sweep with that factor spares an op.
      p.surrogate.backward(
          full({}, -1.0 / n,
               TensorOptions{}.with_dtype(p.surrogate.dtype()).with_device(p.surrogate.device())));
    }
    total = total.defined() ? total + p.elbo : p.elbo;
    last_elbo = p.elbo;
    // A run is checked while its traces are alive; the last one below, with the rest.
    if (check == FiniteCheck::On && !last) {
      record_check(out, std::span<const Tensor>(&p.elbo, 1), p.elbo, traces);
    }
  }
  out.loss = (total * (-1.0 / n)).detach();
  auto by_name = [](const NamedTensor& a, const NamedTensor& b) { return a.name < b.name; };
  auto same_name = [](const NamedTensor& a, const NamedTensor& b) { return a.name == b.name; };
  if (params.size() <= 32) {
    // Stable and in place (std::stable_sort takes a buffer from the heap).
    for (std::size_t i = 1; i < params.size(); ++i)
      for (std::size_t j = i; j > 0 && by_name(params[j], params[j - 1]); --j)
        std::swap(params[j], params[j - 1]);
  } else {
    std::stable_sort(params.begin(), params.end(), by_name);
  }
  params.erase(std::unique(params.begin(), params.end(), same_name), params.end());
  if (check == FiniteCheck::On) {
    // One pass over the loss and every gradient: on a GPU one launch and one read.
    std::vector<Tensor> checked{out.loss};
    for (const NamedTensor& p : out.params) {
      if (p.param.grad().defined()) checked.push_back(p.param.grad());
    }
    record_check(out, checked, last_elbo, traces);
  }
  return out;
}

Tensor ELBO::reparam_surrogate(const Trace& model_trace, const Trace& guide_trace) {
  Tensor s;
  for (const Site& site : model_trace) {
    if (site.is_sample()) s = s.defined() ? s + site.log_prob_sum() : site.log_prob_sum();
  }
  for (const Site& site : guide_trace) {
    // Observed guide sites (factors) have fixed values: their gradient is pathwise too.
    if (site.is_sample() && (site.is_observed || site.fn.has_rsample())) {
      s = s.defined() ? s - site.log_prob_sum() : -site.log_prob_sum();
    }
  }
  return s.defined() ? s : scalar_tensor(0.0);
}

std::vector<const Site*> ELBO::score_sites(const Trace& guide_trace) {
  std::vector<const Site*> out;
  for (const Site& site : guide_trace) {
    if (site.is_stochastic() && !site.fn.has_rsample()) out.push_back(&site);
  }
  return out;
}

namespace detail {

std::string first_nonfinite(const Tensor& t) {
  const std::vector<double> v = t.detach().to(kFloat64).to_vector<double>();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isfinite(v[i])) continue;
    std::vector<std::int64_t> idx(t.dim());
    std::int64_t flat = static_cast<std::int64_t>(i);
    for (int d = t.dim() - 1; d >= 0; --d) {
      idx[d] = flat % t.size(d);
      flat /= t.size(d);
    }
    std::ostringstream os;
    os << "value " << v[i] << " at index [";
    for (std::size_t k = 0; k < idx.size(); ++k) os << (k ? ", " : "") << idx[k];
    os << "]";
    return os.str();
  }
  return "";
}

NonFiniteSite first_nonfinite_site(const TracePair& traces) {
  NoGradGuard no_grad;  // a log-density not cached yet (a closed-form KL's site) is not recorded
  for (const Trace* tr : {&traces.guide, &traces.model}) {
    for (const Site& s : *tr) {
      if (!s.is_sample()) continue;
      const std::string bad = first_nonfinite(s.log_prob());
      if (bad.empty()) continue;
      std::ostringstream details;
      details << "(" << (tr == &traces.guide ? "guide" : "model") << ", " << s.fn.name()
              << ", batch shape " << s.fn.batch_shape() << "): " << bad;
      return {s.name, details.str()};
    }
  }
  return {};
}

int plate_nesting_of(const TracePair& traces) {
  int nesting = 0;
  for (const Trace* tr : {&traces.guide, &traces.model}) {
    for (const Site& s : *tr) {
      for (const PlateFrame& f : s.cond_indep_stack) {
        if (f.vectorized()) nesting = std::max(nesting, -f.dim);
      }
    }
  }
  return nesting;
}

TracePair trace_pair(const std::function<void()>& model, const std::function<void()>& guide,
                     const std::optional<ParticlePlate>& particles, const EnumSetup& enumerate) {
  // Under the particle plate (when vectorized) both programs draw all particles at once.
  auto traced = [&particles, &enumerate](const std::function<void()>& program,
                                         const Trace* replayed, int enum_dim, const char* role) {
    // A distribution built with a bad argument throws at its sample site, which it names.
    std::optional<HeldArgErrors> held;
    if (validation_enabled()) held.emplace();
    handlers::TraceHandler tracer;
    // Outside the replay, so that a site the guide gives is not enumerated.
    std::optional<handlers::EnumHandler> parallel;
    if (enum_dim != 0) parallel.emplace(enum_dim);
    std::optional<handlers::SequentialEnumHandler> sequential;
    if (replayed == nullptr && enumerate.schedule != nullptr) {
      sequential.emplace(*enumerate.schedule);
    }
    std::optional<handlers::ReplayHandler> replay;
    if (replayed != nullptr) replay.emplace(*replayed);
    std::optional<Plate> plate;
    if (particles) {
      PlateOptions opts;
      opts.dim = particles->dim;
      plate.emplace(kParticlesPlate, particles->size, opts);
    }
    auto throw_held = [role] {
      if (arg_error_held()) throw_held_arg_error(std::string("the ") + role + ": ");
    };
    try {
      program();
    } catch (const Error&) {
      // A later failure of an invalid distribution (a Cholesky of its bad matrix) gives way
      // to the argument error it follows from.
      throw_held();
      throw;
    }
    throw_held();
    return tracer.take();
  };
  TracePair out;
  {
    PhaseClock clock(&PhaseTimes::guide);
    out.guide = traced(guide, nullptr, enumerate.guide ? enumerate.first_dim : 0, "guide");
  }
  {
    PhaseClock clock(&PhaseTimes::model);
    // The model's enumeration dims start left of the guide's.
    int model_dim = enumerate.first_dim;
    for (const Site& s : out.guide) model_dim = std::min(model_dim, s.infer.enum_dim - 1);
    out.model = traced(model, &out.guide, enumerate.first_dim == 0 ? 0 : model_dim, "model");
  }
  return out;
}

Tensor elbo_value(const Trace& model_trace, const Trace& guide_trace) {
  // The sites' sums are computed (and cached, for the surrogate) with the graph; only the
  // adding up happens without it.
  model_trace.compute_log_prob();
  guide_trace.compute_log_prob();
  for (const Trace* tr : {&model_trace, &guide_trace}) {
    for (const Site& site : *tr) {
      if (site.is_sample()) site.log_prob_sum();
    }
  }
  NoGradGuard no_grad;
  Tensor e;
  for (const Site& site : model_trace) {
    if (site.is_sample()) e = e.defined() ? e + site.log_prob_sum() : site.log_prob_sum();
  }
  for (const Site& site : guide_trace) {
    if (site.is_sample()) e = e.defined() ? e - site.log_prob_sum() : -site.log_prob_sum();
  }
  return e.defined() ? e.detach() : scalar_tensor(0.0);
}

std::vector<PlateFrame> vectorized_frames(const Site& site) {
  std::vector<PlateFrame> out;
  for (const PlateFrame& f : site.cond_indep_stack) {
    if (f.vectorized()) out.push_back(f);
  }
  return out;
}

void CostTerms::add(const Tensor& value, std::vector<PlateFrame> frames) {
  terms_.push_back({value.detach(), std::move(frames)});
}

Tensor CostTerms::sum_to(const std::vector<PlateFrame>& target) const {
  NoGradGuard no_grad;
  Tensor total;
  for (const Term& term : terms_) {
    Tensor v = term.value;
    for (const PlateFrame& f : term.frames) {
      const bool kept = std::find(target.begin(), target.end(), f) != target.end();
      if (!kept && v.dim() >= -f.dim && v.size(f.dim) != 1) v = sum(v, {f.dim}, true);
    }
    while (v.dim() > 0 && v.size(0) == 1) v = v.squeeze(0);
    total = total.defined() ? total + v : v;
  }
  return total.defined() ? total : scalar_tensor(0.0);
}

Tensor score_term(const Site& site, const Tensor& weight) {
  try {
    return sum(site.log_prob() * weight.detach());
  } catch (const ShapeError& err) {
    throw ShapeError("score-function term of site '" + site.name + "': its cost does not fit " +
                     "its log-density: " + err.what());
  }
}

}  // namespace detail
}  // namespace ember
