// Validation of an estimate's model and guide traces, as Pyro's check_model_guide_match and
// check_site_shape: host-side name and shape logic, no tensor is read.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ember/error.hpp"
#include "engine/infer/elbo_util.hpp"
#include "engine/ppl/ppl_util.hpp"

namespace ember::detail {
namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The name among `names` that `name` is most likely a misspelling of (at most two edits,
// fewer than the name's length), or null.
const std::string* misspelling_of(const std::string& name, const std::vector<const Site*>& sites) {
  const std::string* best = nullptr;
  std::size_t best_d = 3;
  for (const Site* s : sites) {
    const std::size_t d = edit_distance(name, s->name);
    if (d < best_d && d < name.size()) {
      best = &s->name;
      best_d = d;
    }
  }
  return best;
}

std::string spelling_hint(const std::string& name, const std::vector<const Site*>& others,
                          const char* other_program) {
  const std::string* near = misspelling_of(name, others);
  if (near == nullptr) return "";
  return " (the " + std::string(other_program) + "'s site '" + *near +
         "' has no counterpart either: a misspelling?)";
}

// A random variable of its program: sample sites other than deterministic records.
bool is_variable(const Site& s) { return s.is_sample() && !s.infer.deterministic; }

// The sample shape (batch + event) of a site, less the dims left of `nesting` plate dims.
Shape site_shape(const Site& s, int nesting) {
  Shape out = s.fn.batch_shape();
  for (std::int64_t d : s.fn.event_shape()) out.push_back(d);
  const int keep = nesting + s.fn.event_shape().size();
  if (nesting < 0 || out.size() <= keep) return out;
  Shape trimmed;
  for (int i = out.size() - keep; i < out.size(); ++i) trimmed.push_back(out[i]);
  return trimmed;
}

void check_site_pair(const Site& m, const Site& g, int nesting) {
  const int me = m.fn.event_shape().size();
  const int ge = g.fn.event_shape().size();
  EMBER_CHECK_SHAPE(me == ge, "model and guide disagree on the event dims of site '", m.name,
                    "': ", me, " in the model (", m.fn.name(), ", event shape ", m.fn.event_shape(),
                    "), ", ge, " in the guide (", g.fn.name(), ", event shape ", g.fn.event_shape(),
                    ")");
  const Shape ms = site_shape(m, nesting);
  const Shape gs = site_shape(g, nesting);
  if (ms == gs) return;
  for (int k = 1; k <= std::max(ms.size(), gs.size()); ++k) {
    const std::int64_t a = k <= ms.size() ? ms[ms.size() - k] : 1;
    const std::int64_t b = k <= gs.size() ? gs[gs.size() - k] : 1;
    EMBER_CHECK_SHAPE(a == b, "model and guide disagree on the shape of site '", m.name, "': ", ms,
                      " in the model (", m.fn.name(), "), ", gs, " in the guide (", g.fn.name(),
                      ")");
  }
}

// The shape of the site's log-density, from the shapes alone (what log_prob() gives: the
// batch shape broadcast with the value's batch dims and the mask); nullopt when they do not
// broadcast, which log_prob() reports when it is computed.
std::optional<Shape> log_prob_shape(const Site& s) {
  const int event = s.fn.event_shape().size();
  if (!s.value.defined() || s.value.dim() < event) return std::nullopt;
  Shape value_batch;
  for (int i = 0; i < s.value.dim() - event; ++i) value_batch.push_back(s.value.size(i));
  try {
    Shape out = broadcast_shapes(s.fn.batch_shape(), value_batch, "log_prob");
    if (s.mask.defined()) out = broadcast_shapes(out, s.mask.shape(), "mask");
    return out;
  } catch (const ShapeError&) {
    return std::nullopt;
  }
}

void check_site_shape(const Site& s, const char* program, int nesting) {
  // expected[k]: what dim -(k + 1) may be; 0 where no plate owns it (any size). Dims left of
  // the outermost plate must be 1.
  std::vector<std::int64_t> expected;
  for (const PlateFrame& f : s.cond_indep_stack) {
    if (!f.vectorized()) continue;
    const std::size_t k = -f.dim - 1;
    if (expected.size() <= k) expected.resize(k + 1, 0);
    expected[k] = f.subsample_size;
  }
  const int depth = static_cast<int>(expected.size());
  EMBER_CHECK(nesting < 0 || depth <= nesting, "site '", s.name, "' (", program, ") lies in ",
              "plates down to dim ", -depth, " (", describe_plates(vectorized_frames(s)),
              ") but max_plate_nesting allows ", nesting, " plate dims; raise max_plate_nesting ",
              "to at least ", depth);
  const std::optional<Shape> actual = log_prob_shape(s);
  if (!actual) return;
  const int n = actual->size();
  const int checked = nesting < 0 ? std::max(n, depth) : std::min(std::max(n, depth), nesting);
  for (int k = 0; k < checked; ++k) {
    const std::int64_t a = k < n ? (*actual)[n - 1 - k] : 1;
    const std::int64_t e = k < depth ? expected[k] : 1;
    if (e == 0 || a == e) continue;
    std::ostringstream allowed;
    allowed << "(";
    for (int i = depth - 1; i >= 0; --i) {
      allowed << (expected[i] == 0 ? std::string("*") : std::to_string(expected[i]))
              << (i > 0 ? ", " : "");
    }
    allowed << ")";
    const std::string plates =
        depth == 0 ? std::string("it lies in no plate, which allows")
                   : "its plates " + describe_plates(vectorized_frames(s)) + " allow";
    EMBER_CHECK_SHAPE(false, "site '", s.name, "' (", program, ", ", s.fn.name(), ") has a ",
                      "log-density of shape ", *actual, " but ", plates, " ", allowed.str(),
                      " (* any size, dims further left 1); the value has shape ", s.value.shape(),
                      " and the distribution batch shape ", s.fn.batch_shape(), " and event shape ",
                      s.fn.event_shape(),
                      ": add a plate for the extra dim, declare event dims with to_event(n), or ",
                      "reshape the data");
  }
}

void check_model_guide_match(const TracePair& traces, int nesting) {
  std::vector<const Site*> guide_only, model_only;
  for (const Site& g : traces.guide) {
    if (g.type == SiteType::Subsample && !traces.model.contains(g.name)) {
      warn("the guide's plate '" + g.name + "' is not in the model");
      continue;
    }
    if (!is_variable(g)) continue;
    const Site* m = traces.model.find(g.name);
    const bool latent_in_model = m != nullptr && m->is_stochastic();
    if (g.infer.is_auxiliary) {
      if (latent_in_model) {
        warn("guide site '" + g.name + "' is marked auxiliary, but the model samples it too");
      }
      continue;
    }
    if (latent_in_model) {
      check_site_pair(*m, g, nesting);
    } else if (m != nullptr && m->is_sample()) {
      warn("guide site '" + g.name +
           "' is observed in the model: the guide's draw is not "
           "used there, and the model's density does not score it");
    } else {
      guide_only.push_back(&g);
    }
  }
  for (const Site& m : traces.model) {
    // An enumerated site is summed out in the model: no guide site is expected.
    if (m.is_stochastic() && m.infer.enum_dim == 0 && !traces.guide.contains(m.name)) {
      model_only.push_back(&m);
    }
  }
  for (const Site* g : guide_only) {
    warn("guide site '" + g->name + "' is not in the model: the model has no sample site of " +
         "that name, so nothing scores the guide's draw; the guide's sample sites must appear " +
         "in the model (check the spelling), or be marked infer.is_auxiliary" +
         spelling_hint(g->name, model_only, "model"));
  }
  for (const Site* m : model_only) {
    warn("model site '" + m->name + "' is not in the guide: it is drawn from its prior at " +
         "every step and not fitted" + spelling_hint(m->name, guide_only, "guide"));
  }
}

}  // namespace

void validate_traces(const TracePair& traces, int max_plate_nesting) {
  check_model_guide_match(traces, max_plate_nesting);
  for (const Trace* tr : {&traces.guide, &traces.model}) {
    const char* program = tr == &traces.guide ? "guide" : "model";
    for (const Site& s : *tr) {
      if (s.is_sample()) check_site_shape(s, program, max_plate_nesting);
    }
  }
}

}  // namespace ember::detail
