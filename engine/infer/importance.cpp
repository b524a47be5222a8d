// Importance sampling: one traced run of guide and model per sample, the log-weights they
// give, and the weighted values of the sites (ember/importance.hpp).
#include "ember/importance.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "ember/svi.hpp"
#include "engine/infer/elbo_util.hpp"

namespace ember {
namespace {

TensorOptions f64() { return TensorOptions{}.with_dtype(kFloat64); }

// A guide's latent site must be a latent site of the model, and the reverse: a site drawn by
// one program and not scored as a draw by the other leaves its density in only one of
// log p and log q, and every weight is then off by it.
void check_match(const detail::TracePair& traces) {
  for (const Site& g : traces.guide) {
    if (!g.is_stochastic()) continue;
    const Site* m = traces.model.find(g.name);
    EMBER_CHECK(m != nullptr && m->is_sample(), "Importance: guide site '", g.name,
                "' is not in the model: nothing scores the guide's draw (every latent site of the ",
                "guide must be a latent site of the model; check the spelling)");
    EMBER_CHECK(!m->is_observed, "Importance: guide site '", g.name,
                "' is observed in the model: the guide's draw is not used there");
    // The model scores the guide's value: a value of another shape broadcasts silently.
    Shape model_shape = m->fn.batch_shape();
    for (std::int64_t d : m->fn.event_shape()) model_shape.push_back(d);
    const Shape& drawn = g.value.shape();
    for (int k = 1; k <= std::max(model_shape.size(), drawn.size()); ++k) {
      const std::int64_t a = k <= model_shape.size() ? model_shape[model_shape.size() - k] : 1;
      const std::int64_t b = k <= drawn.size() ? drawn[drawn.size() - k] : 1;
      EMBER_CHECK_SHAPE(a == b, "Importance: model and guide disagree on the shape of site '",
                        g.name, "': the guide draws ", drawn, " (", g.fn.name(), "), the model's ",
                        m->fn.name(), " has batch + event shape ", model_shape);
    }
  }
  for (const Site& m : traces.model) {
    if (!m.is_stochastic()) continue;
    const Site* g = traces.guide.find(m.name);
    EMBER_CHECK(g != nullptr && g->is_stochastic(), "Importance: model site '", m.name,
                "' is not in the guide: it would be drawn from its prior and scored by the model ",
                "alone, which biases every weight (sample it in the guide, or propose from the ",
                "prior with Importance(model, num_samples))");
  }
}

// log p(x, z) - log q(z) of one sample, summed in float64 on the traces' device (not read).
// From the prior, q is the model's own prior on its latent sites, which cancels exactly: the
// weight is the observed sites' log-density alone.
Tensor log_weight(const detail::TracePair& traces, bool prior) {
  Tensor w;
  auto add = [&w](const Site& s, bool negate) {
    Tensor lp = s.log_prob_sum().to(kFloat64);
    if (negate) lp = -lp;
    w = w.defined() ? w + lp : lp;
  };
  for (const Site& s : traces.model) {
    if (s.is_sample() && (!prior || s.is_observed)) add(s, false);
  }
  if (!prior) {
    for (const Site& s : traces.guide) {
      if (s.is_sample()) add(s, true);
    }
  }
  return w.defined() ? w : scalar_tensor(0.0, f64());
}

std::string culprit(const NonFiniteSite& site) {
  if (site.name.empty()) {
    return "no single site's log-density is infinite or NaN, but their sum is not finite";
  }
  return "the first site whose log-density is not finite is '" + site.name + "' " + site.details;
}

// The values one site took, sample by sample.
struct SiteValues {
  std::vector<Tensor> values;
  std::int64_t count = 0;         // samples the site appeared in
  std::int64_t reshaped_at = -1;  // the first sample whose value changed shape, if any
  Shape first_shape, other_shape;
};

// The sites whose values a run reports: the latent ones and the model's deterministic records.
bool is_reported(const Site& s) {
  return s.is_stochastic() || (s.is_sample() && s.infer.deterministic);
}

// 'a', 'b', 'c' (or "none").
std::string quoted_list(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::ostringstream os;
  for (std::size_t i = 0; i < names.size(); ++i) os << (i ? ", " : "") << "'" << names[i] << "'";
  return os.str();
}

}  // namespace

// ------------------------------------------------------------------------ ImportanceResult ----

Tensor ImportanceResult::normalized_weights() const {
  return from_vector(weights_, {num_samples_}, f64());
}

bool ImportanceResult::contains(const std::string& site) const {
  return samples_.find(site) != samples_.end();
}

const Tensor& ImportanceResult::samples(const std::string& site) const {
  const auto it = samples_.find(site);
  if (it == samples_.end()) {
    const auto bad = unstacked_.find(site);
    EMBER_CHECK(bad == unstacked_.end(), "ImportanceResult: site '", site, "' ", bad->second);
  }
  EMBER_CHECK(it != samples_.end(), "ImportanceResult: no site '", site,
              "' among the sampled sites (", quoted_list(sites_), ")");
  return it->second;
}

Tensor ImportanceResult::mean(const std::string& site) const {
  const Tensor x = samples(site).to(kFloat64);
  Shape wshape = Shape::filled(x.dim(), 1);
  wshape[0] = num_samples_;
  const Tensor w = from_vector(weights_, wshape, f64()).to(x.device());
  return ember::sum(w * x, {0});
}

Tensor ImportanceResult::variance(const std::string& site) const {
  const Tensor x = samples(site).to(kFloat64);
  Shape wshape = Shape::filled(x.dim(), 1);
  wshape[0] = num_samples_;
  const Tensor w = from_vector(weights_, wshape, f64()).to(x.device());
  const Tensor m = ember::sum(w * x, {0}, true);
  return ember::sum(w * square(x - m), {0});
}

Tensor ImportanceResult::resample_indices(std::int64_t num, Generator& gen) const {
  EMBER_CHECK(num >= 0, "ImportanceResult::resample: the number of draws must be nonnegative, ",
              "got ", num);
  std::vector<double> cdf(weights_.size());
  double total = 0.0;
  for (std::size_t i = 0; i < weights_.size(); ++i) cdf[i] = total += weights_[i];
  const std::vector<double> u = rand({num}, f64(), &gen).to_vector<double>();
  std::vector<std::int64_t> idx(u.size());
  for (std::size_t j = 0; j < u.size(); ++j) {
    // The first index whose cumulative weight exceeds the draw: a zero weight never is.
    const auto pos = std::upper_bound(cdf.begin(), cdf.end(), u[j] * total) - cdf.begin();
    idx[j] = std::min<std::int64_t>(pos, num_samples_ - 1);
  }
  return from_vector(idx, {num}, TensorOptions{}.with_dtype(kInt64));
}

handlers::ValueMap ImportanceResult::resample(std::int64_t num, Generator& gen) const {
  const Tensor idx = resample_indices(num, gen);
  handlers::ValueMap out;
  for (const std::string& name : sites_) {
    const Tensor& x = samples_.at(name);
    out.emplace(name, index_select(x, 0, idx.to(x.device())));
  }
  return out;
}

handlers::ValueMap ImportanceResult::resample(std::int64_t num, std::uint64_t seed) const {
  Generator gen(seed);
  return resample(num, gen);
}

handlers::ValueMap ImportanceResult::resample(std::int64_t num) const {
  return resample(num, default_generator());
}

// -------------------------------------------------------------------------- ImportanceCore ----

namespace detail {

ImportanceCore::ImportanceCore(std::int64_t num_samples) : num_samples_(num_samples) {
  EMBER_CHECK(num_samples >= 1, "Importance: num_samples must be at least 1, got ", num_samples);
}

ImportanceResult ImportanceCore::run(const std::function<void()>& model,
                                     const std::function<void()>& guide) const {
  const bool prior = !guide;
  const std::function<void()> no_guide = [] {};
  NoGradGuard no_grad;

  std::vector<double> w(num_samples_);
  std::vector<std::string> order;
  std::unordered_map<std::string, SiteValues> values;
  std::int64_t first_zero = -1;  // the first sample of weight zero, and its culprit
  NonFiniteSite zero_culprit;
  for (std::int64_t i = 0; i < num_samples_; ++i) {
    const TracePair traces = trace_pair(model, prior ? no_guide : guide);
    if (!prior) check_match(traces);
    w[i] = log_weight(traces, prior).item();
    if (std::isnan(w[i]) || w[i] == std::numeric_limits<double>::infinity()) {
      const NonFiniteSite site = first_nonfinite_site(traces);
      throw NonFiniteError(concat("Importance: the log-weight of sample ", i, " is ",
                                  std::isnan(w[i]) ? "nan" : "+inf", "; ", culprit(site)),
                           site.name);
    }
    if (std::isinf(w[i]) && first_zero < 0) {
      first_zero = i;
      zero_culprit = first_nonfinite_site(traces);
    }
    for (const Site& s : traces.model) {
      if (!is_reported(s)) continue;
      auto [it, inserted] = values.try_emplace(s.name);
      if (inserted) order.push_back(s.name);
      SiteValues& v = it->second;
      ++v.count;
      if (v.reshaped_at >= 0) continue;
      if (v.count == 1) {
        v.first_shape = s.value.shape();
      } else if (s.value.shape() != v.first_shape) {
        v.reshaped_at = i;
        v.other_shape = s.value.shape();
        v.values.clear();
        continue;
      }
      v.values.push_back(s.value.detach());
    }
  }

  double top = -std::numeric_limits<double>::infinity();
  for (double x : w) top = std::max(top, x);
  if (std::isinf(top)) {
    throw NonFiniteError(
        concat("Importance: all ", num_samples_, " log-weights are -inf (every ",
               "sample has weight zero); in sample ", first_zero, " ", culprit(zero_culprit)),
        zero_culprit.name);
  }

  ImportanceResult r;
  r.num_samples_ = num_samples_;
  double total = 0.0;
  for (double x : w) total += std::exp(x - top);
  const double lse = top + std::log(total);
  r.log_evidence_ = lse - std::log(static_cast<double>(num_samples_));
  r.weights_.resize(w.size());
  double squares = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    r.weights_[i] = std::exp(w[i] - lse);
    squares += r.weights_[i] * r.weights_[i];
  }
  r.ess_ = 1.0 / squares;
  r.log_weights_ = from_vector(w, {num_samples_}, f64());

  for (const std::string& name : order) {
    SiteValues& v = values.at(name);
    if (v.count < num_samples_) {
      r.unstacked_.emplace(name, concat("is not in every sample (it is in ", v.count, " of ",
                                        num_samples_, "), so its values do not stack"));
    } else if (v.reshaped_at >= 0) {
      r.unstacked_.emplace(name, concat("changes shape between samples (", v.first_shape,
                                        " in the first, ", v.other_shape, " in sample ",
                                        v.reshaped_at, "), so its values do not stack"));
    } else {
      r.samples_.emplace(name, stack(v.values, 0));
      r.sites_.push_back(name);
    }
  }
  return r;
}

}  // namespace detail
}  // namespace ember
