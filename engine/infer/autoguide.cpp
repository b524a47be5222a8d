// Autoguides (ember/autoguide.hpp): the init strategies, the prototype run, and the bodies of
// the local guides (one set of parameters per site) and the joint ones (one flat vector).
#include "ember/autoguide.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "ember/distributions.hpp"
#include "ember/error.hpp"
#include "ember/linalg.hpp"
#include "ember/nn/init.hpp"
#include "ember/ops.hpp"
#include "ember/param_store.hpp"
#include "ember/primitives.hpp"
#include "ember/random.hpp"
#include "ember/summary.hpp"

namespace ember::autoguide {
namespace {

TensorOptions options_of(const Tensor& t) { return TensorOptions{t.dtype(), t.device()}; }

// The elementwise median over dim 0 (infer::quantiles, on the host in float64), undefined when a
// draw is not finite.
Tensor median_over_draws(const Tensor& draws) {
  if (!all(isfinite(draws))) return Tensor();
  return infer::quantiles(draws, {0.5}).select(0, 0).to(draws.dtype()).to(draws.device());
}

bool usable(const Site& site, const Tensor& value) {
  return value.defined() && value.shape() == site.fn.shape() && all(isfinite(value)) &&
         site.fn.support().check_all(value);
}

// The prior's mean at the site's shape, or undefined where the family has none or it is not a
// valid point.
Tensor usable_mean(const Site& site) {
  try {
    const Tensor mean = site.fn.mean().expand(site.fn.shape()).contiguous();
    if (usable(site, mean)) return mean;
  } catch (const Error&) {
  }
  return Tensor();
}

// Whether biject_to(support) maps each element on its own, increasingly: then the quantiles
// of the unconstrained marginals map to those of the constrained ones.
bool monotone_elementwise(const LatentSite& s) {
  switch (s.support.kind()) {
    case constraints::Kind::Real:
    case constraints::Kind::Positive:
    case constraints::Kind::GreaterThan:
    case constraints::Kind::GreaterThanEq:
    case constraints::Kind::Interval:
      return true;
    default:
      return false;
  }
}

constexpr std::int64_t kQuantileDraws = 4000;

// The standard normal quantile: Acklam's rational approximation refined by one Halley step.
double normal_icdf(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

// Sums the rightmost n dims.
Tensor sum_rightmost(const Tensor& t, int n) {
  if (n <= 0) return t;
  std::vector<int> dims;
  for (int i = 1; i <= n; ++i) dims.push_back(-i);
  return sum(t, dims);
}

// The latent site's value x = T(u) as a sample site: a point mass carrying -log|det dT/du|, so
// that the guide's log-density is that of x (with u's own site, if any, beside it).
Tensor sample_pushed_forward(const LatentSite& s, const Tensor& u) {
  const Tensor x = s.transform.forward(u);
  const Tensor ladj =
      sum_rightmost(s.transform.log_abs_det_jacobian(u, x), s.event_dim - s.transform.event_dim());
  return sample(s.name, dist::Delta(x, neg(ladj), s.event_dim));
}

bool is_identity(const LatentSite& s) { return s.support.kind() == constraints::Kind::Real; }

// Draws one site from a distribution over its unconstrained value: directly when the support
// is the reals, else as an auxiliary site pushed onto the support.
Tensor sample_unconstrained(const LatentSite& s, const dist::Distribution& q) {
  if (is_identity(s)) return sample(s.name, q);
  SampleOptions aux;
  aux.infer.is_auxiliary = true;
  return sample_pushed_forward(s, sample(s.name + "_unconstrained", q, aux));
}

dist::Distribution normal_of(const Tensor& loc, const Tensor& scale, int event_dim) {
  dist::Distribution q = dist::Normal(loc, scale);
  return event_dim > 0 ? q.to_event(event_dim) : q;
}

// A parameter that must exist already (read after a fit).
Tensor fitted_param(const std::string& kind, const std::string& name) {
  EMBER_CHECK(current_param_store().contains(name), kind, ": parameter '", name,
              "' is not in the current param store: fit the guide first, or make the store it was ",
              "fitted in current (ParamStoreScope)");
  return current_param_store().get(name).detach();
}

// The plates of one latent site, entered around its draw. Indices drawn for a plate are kept
// by name for the rest of the guide's run, so every site of one plate sees one mini-batch; a
// plate of that name already active around the guide is used as it is.
class SitePlates {
 public:
  SitePlates(const std::string& kind, const LatentSite& s,
             std::unordered_map<std::string, Tensor>& drawn,
             const std::unordered_set<std::string>& explicit_plates) {
    for (const PlateFrame& f : s.plates) {
      if (const Plate* outer = active_plate(f.name)) {
        EMBER_CHECK_SHAPE(outer->size() == f.size && outer->dim() == f.dim, kind, ": plate '",
                          f.name, "' around the guide has size ", outer->size(), " at dim ",
                          outer->dim(), " but the model's has size ", f.size, " at dim ", f.dim);
        selected_.push_back(outer);
        continue;
      }
      EMBER_CHECK(!explicit_plates.contains(f.name), kind, ": the model's plate '", f.name,
                  "' takes its subsample indices from the model's arguments, which the guide ",
                  "cannot see: enter that plate (same name, size and indices) around the guide's ",
                  "call, so that the guide selects the same mini-batch");
      PlateOptions o;
      o.dim = f.dim;
      if (auto it = drawn.find(f.name); it != drawn.end()) {
        o.subsample = it->second;
      } else if (f.subsample_size != f.size) {
        o.subsample_size = f.subsample_size;
      }
      owned_.push_back(std::make_unique<Plate>(f.name, f.size, o));
      drawn.emplace(f.name, owned_.back()->indices());
      selected_.push_back(owned_.back().get());
    }
  }
  ~SitePlates() {
    while (!owned_.empty()) owned_.pop_back();  // innermost first
  }
  SitePlates(const SitePlates&) = delete;
  SitePlates& operator=(const SitePlates&) = delete;

  // t, at full plate sizes with `event_dim` event dims, at this pass's indices.
  Tensor select(const Tensor& t, int event_dim) const {
    Tensor out = t;
    for (const Plate* p : selected_) out = p->subsample(out, out.dim() - event_dim + p->dim());
    return out;
  }

 private:
  static const Plate* active_plate(const std::string& name) {
    for (Messenger* m : handler_stack()) {
      if (const auto* p = dynamic_cast<const Plate*>(m); p != nullptr && p->name() == name) {
        return p;
      }
    }
    return nullptr;
  }
  std::vector<std::unique_ptr<Plate>> owned_;
  std::vector<const Plate*> selected_;
};

// Notes the plates whose subsample indices the model gives itself (PlateOptions::subsample).
class ExplicitPlateFinder : public Messenger {
 public:
  void process_message(Message& msg) override {
    if (msg.type == SiteType::Subsample && msg.value.defined()) names.insert(msg.name);
  }
  std::unordered_set<std::string> names;
};

}  // namespace

// ------------------------------------------------------------------ init strategies ----
InitFn init_to_feasible() {
  return [](const Site& site) {
    const transforms::Transform t = transforms::biject_to(site.fn.support());
    return t.forward(
        zeros(t.inverse_shape(site.fn.shape()), TensorOptions{site.fn.dtype(), site.fn.device()}));
  };
}

InitFn init_to_median(int num_samples) {
  EMBER_CHECK(num_samples >= 1, "init_to_median: num_samples must be at least 1, got ",
              num_samples);
  return [num_samples](const Site& site) {
    const Tensor m = median_over_draws(site.fn.sample({static_cast<std::int64_t>(num_samples)}));
    if (usable(site, m)) return m;
    // An elementwise median can leave a support such as the simplex; its mean stays inside.
    if (const Tensor mean = usable_mean(site); mean.defined()) return mean;
    return init_to_feasible()(site);
  };
}

InitFn init_to_mean() {
  return [](const Site& site) {
    if (const Tensor mean = usable_mean(site); mean.defined()) return mean;
    return init_to_median()(site);
  };
}

InitFn init_to_sample() {
  return [](const Site& site) { return site.fn.sample(); };
}

InitFn init_to_value(ValueMap values, InitFn fallback) {
  EMBER_CHECK(fallback != nullptr, "init_to_value: the fallback strategy is empty");
  return [values = std::move(values), fallback = std::move(fallback)](const Site& site) {
    auto it = values.find(site.name);
    if (it == values.end()) return fallback(site);
    const Shape shape = site.fn.shape();
    EMBER_CHECK(it->second.defined(), "init_to_value: the value of site '", site.name,
                "' is undefined");
    Tensor v = it->second.detach().to(site.fn.device()).to(site.fn.dtype());
    EMBER_CHECK_SHAPE(broadcast_shapes(v.shape(), shape, "init_to_value") == shape,
                      "init_to_value: site '", site.name, "' has shape ", shape,
                      ", which the given value of shape ", v.shape(), " does not broadcast to");
    v = v.expand(shape).contiguous();
    EMBER_CHECK(site.fn.support().check_all(v), "init_to_value: the value of site '", site.name,
                "' lies outside its support ", site.fn.support().name());
    return v;
  };
}

void InitHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample || msg.is_observed || msg.done || msg.value.defined() ||
      msg.infer.is_auxiliary || msg.infer.deterministic) {
    return;
  }
  Tensor v;
  {
    const NoGradGuard no_grad;
    v = init_(Site(msg));
  }
  EMBER_CHECK_SHAPE(v.defined() && v.shape() == msg.fn.shape(), "init strategy: site '", msg.name,
                    "' has shape ", msg.fn.shape(), " but the strategy gave ",
                    v.defined() ? v.shape().str() : std::string("an undefined value"));
  msg.value = v.dtype() == msg.fn.dtype() ? v : v.to(msg.fn.dtype());
  msg.done = true;
}

// ------------------------------------------------------------------- the core ----
namespace detail {

AutoGuideCore::AutoGuideCore(std::string kind, AutoGuideOptions options)
    : kind_(std::move(kind)), options_(std::move(options)) {
  prefix_ = options_.prefix.empty() ? kind_ : options_.prefix;
  EMBER_CHECK(options_.init_scale > 0 && std::isfinite(options_.init_scale), kind_,
              ": init_scale must be positive, got ", options_.init_scale);
  EMBER_CHECK(options_.rank >= 0, kind_, ": rank must be nonnegative, got ", options_.rank);
  if (!options_.init_loc_fn) options_.init_loc_fn = init_to_median();
}

AutoGuideCore::~AutoGuideCore() = default;

bool AutoGuideCore::ready() const { return ready_.load(std::memory_order_acquire); }

void AutoGuideCore::require_ready(const char* what) const {
  EMBER_CHECK(ready(), kind_, ".", what,
              ": the guide has not seen its model yet: call it (or fit it) once first");
}

const std::vector<LatentSite>& AutoGuideCore::sites() const {
  require_ready("sites");
  return sites_;
}

const LatentSite& AutoGuideCore::site(const std::string& name) const {
  for (const LatentSite& s : sites_) {
    if (s.name == name) return s;
  }
  throw ValueError(kind_ + ": the model has no latent site '" + name + "'");
}

void AutoGuideCore::setup(const std::function<void()>& model) {
  const std::lock_guard lock(mutex_);
  if (ready()) return;
  Trace prototype;
  std::unordered_set<std::string> explicit_plates;
  {
    const NoGradGuard no_grad;
    const handlers::BlockHandler hide_from_outer_handlers;
    handlers::TraceHandler tracer;
    ExplicitPlateFinder finder;
    const InitHandler init(options_.init_loc_fn);
    model();
    prototype = tracer.take();
    explicit_plates = std::move(finder.names);
  }
  std::vector<LatentSite> sites;
  std::int64_t offset = 0;
  for (const Site& s : prototype) {
    if (!s.is_stochastic() || s.infer.is_auxiliary || s.infer.deterministic) continue;
    const constraints::Constraint support = s.fn.support();
    EMBER_CHECK(!support.is_discrete(), kind_, ": latent site '", s.name, "' (", s.fn.name(),
                ") has the discrete support ", support.name(),
                "; autoguides cover continuous latents: hide it with handlers::block and guide it ",
                "by hand (AutoGuideList)");
    LatentSite ls;
    ls.name = s.name;
    ls.prior = s.fn;
    ls.support = support;
    ls.transform = transforms::biject_to(support);
    ls.event_dim = static_cast<int>(s.fn.event_shape().size());
    Tensor init = s.value.detach();
    for (const PlateFrame& f : s.cond_indep_stack) {
      if (!f.vectorized()) {
        EMBER_CHECK(f.subsample_size == f.size, kind_, ": latent site '", s.name,
                    "' lies in the subsampled sequential plate '", f.name,
                    "': each step would meet sites the guide has not seen; vectorize the plate");
        continue;
      }
      ls.plates.push_back(f);
      if (f.subsample_size == f.size) continue;
      // The prototype saw a mini-batch: repeat its values periodically up to the full size.
      const int d = init.dim() - ls.event_dim + f.dim;
      EMBER_CHECK_SHAPE(d >= 0 && init.size(d) == f.subsample_size, kind_, ": latent site '",
                        s.name, "' has shape ", init.shape(), ", not size ", f.subsample_size,
                        " at plate '", f.name, "''s dim ", f.dim);
      std::vector<std::int64_t> idx(static_cast<std::size_t>(f.size));
      for (std::int64_t i = 0; i < f.size; ++i) idx[i] = i % f.subsample_size;
      init = index_select(init, d, from_vector(idx, {f.size}, {kInt64, init.device()}));
    }
    ls.init = init.contiguous();
    ls.shape = ls.init.shape();
    ls.unconstrained_shape = ls.transform.inverse_shape(ls.shape);
    ls.numel = ls.unconstrained_shape.numel();
    ls.offset = offset;
    offset += ls.numel;
    sites.push_back(std::move(ls));
  }
  EMBER_CHECK(!sites.empty(), kind_, ": the model has no latent sample site to guide");
  sites_ = std::move(sites);
  latent_dim_ = offset;
  explicit_plates_ = std::move(explicit_plates);
  try {
    prepare();
  } catch (...) {
    sites_.clear();
    latent_dim_ = 0;
    throw;
  }
  ready_.store(true, std::memory_order_release);
}

dist::Distribution AutoGuideCore::get_posterior() const {
  throw ValueError(kind_ + " keeps a posterior per site, not a joint one: use posterior(site)");
}

ValueMap AutoGuideCore::unpack_unconstrained(const Tensor& flat, bool align_to_plates) const {
  EMBER_CHECK_SHAPE(flat.dim() >= 1 && flat.size(-1) == latent_dim_, kind_,
                    ": a flat latent needs ", latent_dim_, " elements in its last dim, got shape ",
                    flat.shape());
  Shape batch;
  for (int i = 0; i + 1 < flat.dim(); ++i) batch.push_back(flat.size(i));
  ValueMap out;
  for (const LatentSite& s : sites_) {
    // Trailing unit dims of the batch (a sample plate outside the model's plates) give way to
    // the site's own batch dims, so that a particle dim stays left of the model's plates.
    Shape shape = batch;
    const int site_batch = static_cast<int>(s.unconstrained_shape.size()) - s.event_dim;
    for (int k = 0;
         align_to_plates && k < site_batch && !shape.empty() && shape[shape.size() - 1] == 1; ++k) {
      shape.erase(shape.size() - 1);
    }
    for (auto d : s.unconstrained_shape) shape.push_back(d);
    out.emplace(s.name, flat.slice(-1, s.offset, s.offset + s.numel).reshape(shape));
  }
  return out;
}

ValueMap AutoGuideCore::unpack(const Tensor& flat) const {
  ValueMap out = unpack_unconstrained(flat, false);
  for (const LatentSite& s : sites_) out.at(s.name) = s.transform.forward(out.at(s.name));
  return out;
}

ValueMap AutoGuideCore::quantiles(const std::vector<double>& qs) const {
  check_quantiles(qs);
  const NoGradGuard no_grad;
  ValueMap out = marginal_quantiles(qs);
  // Where a guide has no closed form, or the site's transform does not act elementwise and
  // increasingly (the simplex, Cholesky factors), the empirical quantiles of draws.
  bool need_draws = false;
  for (const LatentSite& s : sites_) {
    need_draws = need_draws || !out.contains(s.name) || !monotone_elementwise(s);
  }
  if (!need_draws) return out;
  const ValueMap draws = sample_posterior(kQuantileDraws);
  for (const LatentSite& s : sites_) {
    if (!out.contains(s.name) || !monotone_elementwise(s)) {
      const Tensor& d = draws.at(s.name);
      out.insert_or_assign(s.name, infer::quantiles(d, qs).to(d.dtype()).to(d.device()));
    }
  }
  return out;
}

void AutoGuideCore::check_quantiles(const std::vector<double>& qs) const {
  require_ready("quantiles");
  EMBER_CHECK(!qs.empty(), kind_, ".quantiles: no quantile asked for");
  for (double q : qs) {
    EMBER_CHECK(q > 0 && q < 1, kind_, ".quantiles: each quantile must lie in (0, 1), got ", q);
  }
}

void AutoGuideCore::check_count(std::int64_t n) const {
  require_ready("sample_posterior");
  EMBER_CHECK(n >= 1, kind_, ".sample_posterior: num_samples must be at least 1, got ", n);
}

namespace {

// ------------------------------------------------------------------ local guides ----
class LocalCore : public AutoGuideCore {
 public:
  using AutoGuideCore::AutoGuideCore;

  ValueMap forward() override {
    std::unordered_map<std::string, Tensor> drawn;
    ValueMap out;
    for (const LatentSite& s : sites_) {
      const SitePlates plates(kind_, s, drawn, explicit_plates_);
      out.emplace(s.name, sample_site(s, plates));
    }
    return out;
  }

 protected:
  virtual Tensor sample_site(const LatentSite& s, const SitePlates& plates) = 0;
};

class DeltaCore final : public LocalCore {
 public:
  explicit DeltaCore(AutoGuideOptions o) : LocalCore("AutoDelta", std::move(o)) {}

  ValueMap median() const override {
    require_ready("median");
    ValueMap out;
    for (const LatentSite& s : sites_) out.emplace(s.name, value(s));
    return out;
  }
  ValueMap marginal_quantiles(const std::vector<double>& qs) const override {
    ValueMap out;
    for (const LatentSite& s : sites_) {
      const Tensor v = value(s);
      out.emplace(s.name, stack(std::vector<Tensor>(qs.size(), v)));
    }
    return out;
  }
  ValueMap sample_posterior(std::int64_t n) const override {
    check_count(n);
    ValueMap out;
    for (const LatentSite& s : sites_) {
      Shape shape{n};
      for (auto d : s.shape) shape.push_back(d);
      out.emplace(s.name, value(s).expand(shape).contiguous());
    }
    return out;
  }
  dist::Distribution site_posterior(const std::string& name) const override {
    require_ready("posterior");
    const LatentSite& s = site(name);
    return dist::Delta(value(s), 0.0, s.event_dim);
  }

 protected:
  Tensor sample_site(const LatentSite& s, const SitePlates& plates) override {
    const Tensor v = param(param_name(s.name), s.init, s.support);
    return sample(s.name, dist::Delta(plates.select(v, s.event_dim), 0.0, s.event_dim));
  }

 private:
  Tensor value(const LatentSite& s) const { return fitted_param(kind_, param_name(s.name)); }
};

// The Normal family's summaries from unconstrained locations and standard deviations.
ValueMap normal_quantiles(const LatentSite& s, const Tensor& loc, const Tensor& sd,
                          const std::vector<double>& qs) {
  std::vector<Tensor> per_q;
  for (double q : qs) per_q.push_back(s.transform.forward(add(loc, mul(sd, normal_icdf(q)))));
  return ValueMap{{s.name, stack(per_q)}};
}

class NormalCore final : public LocalCore {
 public:
  explicit NormalCore(AutoGuideOptions o) : LocalCore("AutoNormal", std::move(o)) {}

  ValueMap median() const override {
    require_ready("median");
    ValueMap out;
    for (const LatentSite& s : sites_) out.emplace(s.name, s.transform.forward(loc(s)));
    return out;
  }
  ValueMap marginal_quantiles(const std::vector<double>& qs) const override {
    ValueMap out;
    for (const LatentSite& s : sites_) out.merge(normal_quantiles(s, loc(s), scale(s), qs));
    return out;
  }
  ValueMap sample_posterior(std::int64_t n) const override {
    check_count(n);
    const NoGradGuard no_grad;
    ValueMap out;
    for (const LatentSite& s : sites_) {
      out.emplace(s.name, s.transform.forward(dist::Normal(loc(s), scale(s)).sample({n})));
    }
    return out;
  }
  dist::Distribution site_posterior(const std::string& name) const override {
    require_ready("posterior");
    const LatentSite& s = site(name);
    const dist::Distribution q = normal_of(loc(s), scale(s), s.event_dim);
    if (is_identity(s)) return q;
    return dist::TransformedDistribution(q, {s.transform});
  }

 protected:
  Tensor sample_site(const LatentSite& s, const SitePlates& plates) override {
    const Tensor l = param(param_name("locs." + s.name),
                           [&s] { return s.transform.inverse(s.init).contiguous(); });
    const Tensor sc = param(
        param_name("scales." + s.name),
        [&s, init = options_.init_scale] {
          return full(s.unconstrained_shape, init, options_of(s.init));
        },
        constraints::positive);
    return sample_unconstrained(
        s, normal_of(plates.select(l, s.event_dim), plates.select(sc, s.event_dim), s.event_dim));
  }

 private:
  Tensor loc(const LatentSite& s) const {
    return fitted_param(kind_, param_name("locs." + s.name));
  }
  Tensor scale(const LatentSite& s) const {
    return fitted_param(kind_, param_name("scales." + s.name));
  }
};

// ------------------------------------------------------------------ joint guides ----
// The unconstrained latents as one flat vector, drawn by one auxiliary site and split into
// the sites' values (point masses carrying the Jacobians).
class JointCore : public AutoGuideCore {
 public:
  using AutoGuideCore::AutoGuideCore;

  ValueMap forward() override {
    SampleOptions aux;
    aux.infer.is_auxiliary = true;
    const Tensor u = sample("_" + prefix_ + "_latent", flat_posterior(), aux);
    return emit(u);
  }
  ValueMap median() const override {
    require_ready("median");
    const NoGradGuard no_grad;
    return unpack(flat_loc());
  }
  ValueMap marginal_quantiles(const std::vector<double>& qs) const override {
    const NoGradGuard no_grad;
    const Tensor loc = flat_loc(), sd = flat_sd();
    std::vector<Tensor> rows;
    for (double q : qs) rows.push_back(add(loc, mul(sd, normal_icdf(q))));
    return unpack(stack(rows));
  }
  ValueMap sample_posterior(std::int64_t n) const override {
    check_count(n);
    const NoGradGuard no_grad;
    return unpack(fitted_posterior().sample({n}));
  }
  dist::Distribution site_posterior(const std::string& name) const override {
    throw ValueError(kind_ + " keeps one joint posterior over every latent: use get_posterior() " +
                     "(over the flat unconstrained vector) or sample_posterior()");
  }
  dist::Distribution get_posterior() const override {
    require_ready("get_posterior");
    return fitted_posterior();
  }

 protected:
  void prepare() override {
    const DType dtype = sites_.front().init.dtype();
    const Device device = sites_.front().init.device();
    for (const LatentSite& s : sites_) {
      for (const PlateFrame& f : s.plates) {
        EMBER_CHECK(f.subsample_size == f.size || local_when_subsampled(), kind_, ": latent site '",
                    s.name, "' lies in plate '", f.name, "', subsampled to ", f.subsample_size,
                    " of ", f.size,
                    "; a joint guide needs every latent at full size: guide the local latents ",
                    "with AutoNormal (AutoGuideList with handlers::block)");
      }
      EMBER_CHECK_DTYPE(s.init.dtype() == dtype, kind_, ": latent site '", s.name, "' is ",
                        s.init.dtype(), " but '", sites_.front().name, "' is ", dtype,
                        "; a joint guide keeps every latent in one vector of one dtype");
      EMBER_CHECK_DEVICE(s.init.device() == device, kind_, ": latent site '", s.name, "' is on ",
                         s.init.device(), " but '", sites_.front().name, "' on ", device);
    }
  }
  // Whether subsampled plates are served by drawing each site on its own (the diagonal guide).
  virtual bool local_when_subsampled() const { return false; }
  // The posterior over the flat vector from the parameters (recorded for autograd).
  virtual dist::Distribution flat_posterior() = 0;
  // The same from the fitted parameters, detached.
  virtual dist::Distribution fitted_posterior() const = 0;
  virtual Tensor flat_loc() const = 0;
  virtual Tensor flat_sd() const = 0;

  TensorOptions flat_options() const { return options_of(sites_.front().init); }
  // The unconstrained init of every site, concatenated.
  Tensor init_loc() const {
    std::vector<Tensor> parts;
    for (const LatentSite& s : sites_) parts.push_back(s.transform.inverse(s.init).reshape({-1}));
    return cat(parts, 0).contiguous();
  }
  Tensor fitted(const std::string& part) const { return fitted_param(kind_, param_name(part)); }

  ValueMap emit(const Tensor& u) {
    ValueMap values = unpack_unconstrained(u, true);
    std::unordered_map<std::string, Tensor> drawn;
    ValueMap out;
    for (const LatentSite& s : sites_) {
      const SitePlates plates(kind_, s, drawn, explicit_plates_);
      out.emplace(s.name, sample_pushed_forward(s, values.at(s.name)));
    }
    return out;
  }
};

class DiagonalNormalCore final : public JointCore {
 public:
  explicit DiagonalNormalCore(AutoGuideOptions o) : JointCore("AutoDiagonalNormal", std::move(o)) {}

  ValueMap forward() override {
    if (!subsampled_) return JointCore::forward();
    // A subsampled plate: each site on its own, from its slice of the flat parameters.
    const Tensor l = loc_param(), sc = scale_param();
    std::unordered_map<std::string, Tensor> drawn;
    ValueMap out;
    for (const LatentSite& s : sites_) {
      const SitePlates plates(kind_, s, drawn, explicit_plates_);
      const Tensor ls = l.slice(0, s.offset, s.offset + s.numel).reshape(s.unconstrained_shape);
      const Tensor ss = sc.slice(0, s.offset, s.offset + s.numel).reshape(s.unconstrained_shape);
      out.emplace(s.name,
                  sample_unconstrained(s, normal_of(plates.select(ls, s.event_dim),
                                                    plates.select(ss, s.event_dim), s.event_dim)));
    }
    return out;
  }

 protected:
  void prepare() override {
    JointCore::prepare();
    subsampled_ = false;
    for (const LatentSite& s : sites_) {
      for (const PlateFrame& f : s.plates) subsampled_ = subsampled_ || f.subsample_size != f.size;
    }
  }
  bool local_when_subsampled() const override { return true; }
  dist::Distribution flat_posterior() override {
    return dist::Normal(loc_param(), scale_param()).to_event(1);
  }
  dist::Distribution fitted_posterior() const override {
    return dist::Normal(flat_loc(), flat_sd()).to_event(1);
  }
  Tensor flat_loc() const override { return fitted("loc"); }
  Tensor flat_sd() const override { return fitted("scale"); }

 private:
  Tensor loc_param() {
    return param(param_name("loc"), [this] { return init_loc(); });
  }
  Tensor scale_param() {
    return param(
        param_name("scale"),
        [this] { return full({latent_dim_}, options_.init_scale, flat_options()); },
        constraints::positive);
  }
  bool subsampled_ = false;
};

class MultivariateNormalCore final : public JointCore {
 public:
  explicit MultivariateNormalCore(AutoGuideOptions o)
      : JointCore("AutoMultivariateNormal", std::move(o)) {}
  // The Laplace approximation's: its parameters set in the store by the caller.
  MultivariateNormalCore(std::string prefix, const AutoGuideCore& from)
      : JointCore("AutoMultivariateNormal", from.options()) {
    prefix_ = std::move(prefix);
    sites_ = from.sites();
    latent_dim_ = from.latent_dim();
    explicit_plates_ = from.explicit_plates();
    mark_ready();
  }

 protected:
  dist::Distribution flat_posterior() override {
    const Tensor loc = param(param_name("loc"), [this] { return init_loc(); });
    const Tensor tril = param(
        param_name("scale_tril"),
        [this] { return mul(eye(latent_dim_, flat_options()), options_.init_scale); },
        constraints::lower_cholesky);
    return dist::MultivariateNormal(loc, tril);
  }
  dist::Distribution fitted_posterior() const override {
    return dist::MultivariateNormal(flat_loc(), fitted("scale_tril"));
  }
  Tensor flat_loc() const override { return fitted("loc"); }
  Tensor flat_sd() const override {
    const Tensor tril = fitted("scale_tril");
    return sqrt(sum(mul(tril, tril), {-1}));
  }
};

class LowRankCore final : public JointCore {
 public:
  explicit LowRankCore(AutoGuideOptions o)
      : JointCore("AutoLowRankMultivariateNormal", std::move(o)) {}

 protected:
  void prepare() override {
    JointCore::prepare();
    rank_ = options_.rank > 0
                ? options_.rank
                : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(latent_dim_))));
    EMBER_CHECK(rank_ <= latent_dim_, kind_, ": rank ", rank_, " exceeds the latent dim ",
                latent_dim_);
  }
  dist::Distribution flat_posterior() override {
    const Tensor loc = param(param_name("loc"), [this] { return init_loc(); });
    const Tensor factor = param(param_name("cov_factor"), [this] {
      return mul(randn({latent_dim_, rank_}, flat_options()), 1.0 / std::sqrt(double(rank_)));
    });
    const Tensor scale = param(
        param_name("scale"),
        [this] {
          return full({latent_dim_}, std::sqrt(0.5) * options_.init_scale, flat_options());
        },
        constraints::positive);
    return dist::LowRankMultivariateNormal(loc, mul(factor, scale.unsqueeze(-1)),
                                           mul(scale, scale));
  }
  dist::Distribution fitted_posterior() const override {
    const Tensor scale = fitted("scale");
    return dist::LowRankMultivariateNormal(
        flat_loc(), mul(fitted("cov_factor"), scale.unsqueeze(-1)), mul(scale, scale));
  }
  Tensor flat_loc() const override { return fitted("loc"); }
  Tensor flat_sd() const override {
    const Tensor scale = fitted("scale");
    const Tensor w = mul(fitted("cov_factor"), scale.unsqueeze(-1));
    return sqrt(add(sum(mul(w, w), {-1}), mul(scale, scale)));
  }

 private:
  int rank_ = 1;
};

class LaplaceCore final : public JointCore {
 public:
  explicit LaplaceCore(AutoGuideOptions o) : JointCore("AutoLaplaceApproximation", std::move(o)) {}
  Tensor fitted_loc() const { return flat_loc(); }

 protected:
  dist::Distribution flat_posterior() override {
    return dist::Delta(param(param_name("loc"), [this] { return init_loc(); }), 0.0, 1);
  }
  dist::Distribution fitted_posterior() const override { return dist::Delta(flat_loc(), 0.0, 1); }
  Tensor flat_loc() const override { return fitted("loc"); }
  Tensor flat_sd() const override { return zeros_like(flat_loc()); }
};

// An inverse autoregressive flow (Kingma et al. 2016) over the flat latents: base draws
// u0 ~ N(0, I) pass through num_transforms affine autoregressive layers, each
// x <- sigma * x + (1 - sigma) * m with (m, logit sigma) from a masked network (MADE, Germain
// et al. 2015) of x's earlier coordinates (Pyro's stable AffineAutoregressive, sigmoid bias
// 2), the order reversed between layers; then a learned location is added. The flow's
// log-determinant is carried by a point-mass auxiliary site, so the guide's density is exact.
class IafCore final : public JointCore {
 public:
  explicit IafCore(AutoGuideOptions o) : JointCore("AutoIAFNormal", std::move(o)) {}

  ValueMap forward() override {
    SampleOptions aux;
    aux.infer.is_auxiliary = true;
    const Tensor u0 = sample("_" + prefix_ + "_base", base(), aux);
    const auto [x, ladj] = flow(u0, [this](const std::string& part, const ParamInit& init) {
      return param(param_name(part), init);
    });
    sample("_" + prefix_ + "_jacobian", dist::Delta(ladj.detach(), neg(ladj)), aux);
    return emit(x);
  }
  ValueMap median() const override {
    require_ready("median");
    const NoGradGuard no_grad;
    return unpack(fitted_flow(zeros({latent_dim_}, flat_options())));
  }
  // No closed form: the base's quantiles draw them empirically.
  ValueMap marginal_quantiles(const std::vector<double>&) const override { return {}; }
  ValueMap sample_posterior(std::int64_t n) const override {
    check_count(n);
    const NoGradGuard no_grad;
    return unpack(fitted_flow(base().sample({n})));
  }
  dist::Distribution get_posterior() const override {
    throw ValueError(kind_ +
                     ": a flow has no closed-form posterior here; draw from it with "
                     "sample_posterior()");
  }

 protected:
  void prepare() override {
    JointCore::prepare();
    EMBER_CHECK(options_.num_transforms >= 1, kind_, ": num_transforms must be at least 1, got ",
                options_.num_transforms);
    EMBER_CHECK(options_.hidden_dim >= 0, kind_, ": hidden_dim must be nonnegative, got ",
                options_.hidden_dim);
    const std::int64_t n = latent_dim_;
    hidden_ = options_.hidden_dim > 0 ? options_.hidden_dim : 3 * n + 10;
    // MADE degrees: inputs 1..n, hidden units cycling through 1..max(1, n - 1); a hidden unit
    // sees inputs of degree <= its own, an output of degree d sees hidden units below d.
    std::vector<double> in_mask(static_cast<std::size_t>(hidden_ * n));
    std::vector<double> out_mask(static_cast<std::size_t>(2 * n * hidden_));
    for (std::int64_t k = 0; k < hidden_; ++k) {
      const std::int64_t degree = k % std::max<std::int64_t>(1, n - 1) + 1;
      for (std::int64_t i = 0; i < n; ++i) in_mask[k * n + i] = degree >= i + 1 ? 1.0 : 0.0;
      for (std::int64_t j = 0; j < 2 * n; ++j) {
        out_mask[j * hidden_ + k] = (j % n) + 1 > degree ? 1.0 : 0.0;
      }
    }
    in_mask_ = from_vector(in_mask, {hidden_, n}, flat_options());
    out_mask_ = from_vector(out_mask, {2 * n, hidden_}, flat_options());
    std::vector<std::int64_t> reversed(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) reversed[i] = n - 1 - i;
    reverse_ = from_vector(reversed, {n}, TensorOptions{kInt64, flat_options().device});
  }
  // Not used: forward, the summaries and the sampler are the flow's own.
  dist::Distribution flat_posterior() override { return base(); }
  dist::Distribution fitted_posterior() const override { return base(); }
  Tensor flat_loc() const override { return fitted("loc"); }
  Tensor flat_sd() const override { return ones_like(flat_loc()); }

 private:
  using ParamFn = std::function<Tensor(const std::string&, const ParamInit&)>;

  dist::Distribution base() const {
    return dist::Normal(zeros({latent_dim_}, flat_options()), 1.0).to_event(1);
  }
  // u0 through the flow, and the log-determinant of the map (batch shape).
  std::pair<Tensor, Tensor> flow(const Tensor& u0, const ParamFn& get) const {
    const std::int64_t n = latent_dim_;
    const TensorOptions o = flat_options();
    Tensor x = u0, ladj;
    for (int t = 0; t < options_.num_transforms; ++t) {
      const std::string layer = "arn." + std::to_string(t) + ".";
      const double in_bound = 1.0 / std::sqrt(static_cast<double>(n));
      const double out_bound = 1.0 / std::sqrt(static_cast<double>(hidden_));
      const Tensor w1 = get(layer + "w1", [&] {
        return nn::init::uniform({hidden_, n}, -in_bound, in_bound, o);
      });
      const Tensor b1 =
          get(layer + "b1", [&] { return nn::init::uniform({hidden_}, -in_bound, in_bound, o); });
      // The output layer starts small, so that each layer starts near x -> sigmoid(2) x.
      const Tensor w2 = get(layer + "w2", [&] {
        return nn::init::uniform({2 * n, hidden_}, -0.01 * out_bound, 0.01 * out_bound, o);
      });
      const Tensor b2 = get(layer + "b2", [&] { return zeros({2 * n}, o); });
      const Tensor h = relu(linear(x, mul(w1, in_mask_), b1));
      const Tensor out = linear(h, mul(w2, out_mask_), b2);
      const Tensor m = out.slice(-1, 0, n);
      const Tensor logit = add(out.slice(-1, n, 2 * n), 2.0);
      const Tensor sigma = sigmoid(logit);
      x = add(mul(sigma, x), mul(sub(1.0, sigma), m));
      const Tensor step = sum(log_sigmoid(logit), {-1});
      ladj = ladj.defined() ? add(ladj, step) : step;
      if (t + 1 < options_.num_transforms) x = index_select(x, -1, reverse_);
    }
    const Tensor loc = get("loc", [this] { return init_loc(); });
    return {add(x, loc), ladj};
  }
  Tensor fitted_flow(const Tensor& u0) const {
    return flow(u0, [this](const std::string& part, const ParamInit&) { return fitted(part); })
        .first;
  }

  std::int64_t hidden_ = 0;
  Tensor in_mask_, out_mask_, reverse_;
};

}  // namespace

std::shared_ptr<AutoGuideCore> make_auto_delta(AutoGuideOptions o) {
  return std::make_shared<DeltaCore>(std::move(o));
}
std::shared_ptr<AutoGuideCore> make_auto_normal(AutoGuideOptions o) {
  return std::make_shared<NormalCore>(std::move(o));
}
std::shared_ptr<AutoGuideCore> make_auto_diagonal_normal(AutoGuideOptions o) {
  return std::make_shared<DiagonalNormalCore>(std::move(o));
}
std::shared_ptr<AutoGuideCore> make_auto_multivariate_normal(AutoGuideOptions o) {
  return std::make_shared<MultivariateNormalCore>(std::move(o));
}
std::shared_ptr<AutoGuideCore> make_auto_low_rank_multivariate_normal(AutoGuideOptions o) {
  return std::make_shared<LowRankCore>(std::move(o));
}
std::shared_ptr<AutoGuideCore> make_auto_iaf_normal(AutoGuideOptions o) {
  return std::make_shared<IafCore>(std::move(o));
}
std::shared_ptr<AutoGuideCore> make_auto_laplace(AutoGuideOptions o) {
  return std::make_shared<LaplaceCore>(std::move(o));
}

void AutoGuideCore::mark_ready() { ready_.store(true, std::memory_order_release); }

// The gradient of the negative log joint in unconstrained space, -(log p(x, T(u)) +
// log|det dT/du|), at the flat float64 vector u: the model runs blocked, its latents
// substituted and its parameters held fixed (so that no gradient reaches them).
static std::vector<double> negative_log_joint_grad(const AutoGuideCore& core,
                                                   const std::function<void()>& model,
                                                   const Tensor& u0, const ValueMap& params) {
  const Tensor u = u0.detach().clone().requires_grad_();
  ValueMap values = params;
  Tensor ladj = zeros({}, TensorOptions{kFloat64, u.device()});
  for (const LatentSite& s : core.sites()) {
    const Tensor piece = u.slice(0, s.offset, s.offset + s.numel).reshape(s.unconstrained_shape);
    const Tensor x = s.transform.forward(piece);
    ladj = add(ladj, sum(s.transform.log_abs_det_jacobian(piece, x)));
    values.insert_or_assign(s.name, x);
  }
  Trace tr;
  {
    const handlers::BlockHandler hide_from_outer_handlers;
    handlers::TraceHandler tracer;
    const handlers::SubstituteHandler substitute(values);
    model();
    tr = tracer.take();
  }
  const Tensor f = neg(add(tr.log_prob_sum().to(kFloat64), ladj));
  EMBER_CHECK(all(isfinite(f)), core.kind(),
              ": the log joint is not finite at the point the Laplace approximation needs");
  f.backward();
  return u.grad().to(Device::cpu()).to(kFloat64).contiguous().to_vector<double>();
}

std::shared_ptr<AutoGuideCore> laplace_to_multivariate_normal(AutoGuideCore& laplace,
                                                              const std::function<void()>& model,
                                                              double step) {
  auto* core = dynamic_cast<LaplaceCore*>(&laplace);
  EMBER_CHECK(core != nullptr, "laplace_approximation needs an AutoLaplaceApproximation");
  laplace.sites();  // throws when the guide has not met its model
  const Tensor loc = core->fitted_loc().to(kFloat64).contiguous();
  const std::int64_t n = laplace.latent_dim();
  const std::vector<double> at = loc.to(Device::cpu()).to_vector<double>();

  // The model's parameters, held at their values.
  ValueMap params;
  {
    const NoGradGuard no_grad;
    const handlers::BlockHandler hide_from_outer_handlers;
    handlers::TraceHandler tracer;
    const handlers::SubstituteHandler substitute(laplace.unpack(loc));
    model();
    for (const Site* p : tracer.trace().param_nodes()) params.emplace(p->name, p->value.detach());
  }

  // H[:, j] = (g(u + h e_j) - g(u - h e_j)) / 2h, then symmetrized.
  std::vector<double> h(static_cast<std::size_t>(n * n));
  for (std::int64_t j = 0; j < n; ++j) {
    const double dj = step * std::max(1.0, std::abs(at[j]));
    std::vector<double> plus = at, minus = at;
    plus[j] += dj;
    minus[j] -= dj;
    const TensorOptions o{kFloat64, loc.device()};
    const std::vector<double> gp =
        negative_log_joint_grad(laplace, model, from_vector(plus, {n}, o), params);
    const std::vector<double> gm =
        negative_log_joint_grad(laplace, model, from_vector(minus, {n}, o), params);
    for (std::int64_t i = 0; i < n; ++i) h[i * n + j] = (gp[i] - gm[i]) / (2 * dj);
  }
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < i; ++j) {
      const double m = 0.5 * (h[i * n + j] + h[j * n + i]);
      h[i * n + j] = h[j * n + i] = m;
    }
  }
  const Tensor hessian = from_vector(h, {n, n}, TensorOptions{kFloat64, loc.device()});
  Tensor scale_tril;
  try {
    scale_tril = dist::MultivariateNormal::from_precision(loc, hessian).scale_tril();
  } catch (const Error& e) {
    throw ValueError(laplace.kind() +
                     ": the Hessian of the negative log joint at the fitted point is not positive "
                     "definite (has the fit reached a mode?): " +
                     e.what());
  }
  auto mvn = std::make_shared<MultivariateNormalCore>(laplace.prefix() + ".laplace", laplace);
  const DType dtype = laplace.sites().front().init.dtype();
  current_param_store().set(mvn->prefix() + ".loc", loc.to(dtype));
  current_param_store().set(mvn->prefix() + ".scale_tril", scale_tril.to(dtype),
                            constraints::lower_cholesky);
  return mvn;
}

}  // namespace detail
}  // namespace ember::autoguide
