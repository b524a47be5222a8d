// Autoguides: guides built from the model, with Pyro's names (pyro.infer.autoguide). A model
// is run once (its prototype, under an init strategy) to find its latent sites, their shapes,
// supports and plates; the guide then makes its parameters and samples every latent site.
//
//   auto guide = autoguide::AutoNormal(model);
//   SVI svi(model, guide, optim::Adam({.lr = 0.01}), Trace_ELBO());
//   for (int i = 0; i < 2000; ++i) svi.step(data);
//   ValueMap m = guide.median();   // constrained posterior medians, by site
//
// Local guides (AutoDelta, AutoNormal, AutoDiagonalNormal) keep one set of parameters per
// latent element, so local latents inside subsampled plates work as with hand-written guides:
// the guide draws the mini-batch and selects its parameters. Joint guides
// (AutoMultivariateNormal, AutoLowRankMultivariateNormal, AutoIAFNormal,
// AutoLaplaceApproximation) keep the
// unconstrained latents flattened into one vector, drawn by one sample site; they need every
// latent at full size (no subsampled plate). Constrained supports are reached through
// transforms::biject_to; discrete latents are refused (hide them with handlers::block and
// guide them by hand, with AutoGuideList).
//
// Copies of a guide share its state (the prototype and the parameters' names); parameters
// live in the current ParamStore, as param() does. Guides are safe to call from several
// threads; each thread reads its own current store.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ember/distributions/distribution.hpp"
#include "ember/handlers.hpp"
#include "ember/message.hpp"
#include "ember/trace.hpp"
#include "ember/transforms.hpp"

namespace ember::autoguide {

using handlers::ValueMap;

// ---- init strategies ----
// Where a guide starts: a value in the site's support, of the site's shape (batch + event),
// for a latent sample site met while the prototype runs.
using InitFn = std::function<Tensor(const Site& site)>;

// The median of `num_samples` prior draws (elementwise); init_to_feasible where those are
// not finite. Pyro's default.
InitFn init_to_median(int num_samples = 15);
// The prior mean; init_to_median where the family has none (or it is not finite).
InitFn init_to_mean();
// One prior draw.
InitFn init_to_sample();
// The point biject_to(support) maps zero to (1 for positive, 0.5 for unit_interval, ...).
InitFn init_to_feasible();
// The given value for the sites named in `values` (checked against the site's shape and
// support), `fallback` for the others.
InitFn init_to_value(ValueMap values, InitFn fallback = init_to_median());

// Gives every latent sample site that reaches it without a value the strategy's value
// (Pyro's InitMessenger).
class InitHandler : public Messenger {
 public:
  explicit InitHandler(InitFn init) : init_(std::move(init)) {}
  void process_message(Message& msg) override;

 private:
  InitFn init_;
};

struct AutoGuideOptions {
  // Where the locations start (unset: init_to_median()).
  InitFn init_loc_fn;
  // The initial scale of the Normal-family guides, in unconstrained space.
  double init_scale = 0.1;
  // AutoLowRankMultivariateNormal's rank (0: ceil(sqrt(latent dim))).
  int rank = 0;
  // AutoIAFNormal: the flow's layers, and the hidden units of each layer's masked network
  // (0: 3 * latent dim + 10).
  int num_transforms = 2;
  std::int64_t hidden_dim = 0;
  // The prefix of the parameters' names (empty: the guide's name, as "AutoNormal").
  std::string prefix;
};

// One latent site as the prototype saw it, with its plates' full sizes.
struct LatentSite {
  std::string name;
  dist::Distribution prior;  // as met in the prototype (plates applied)
  constraints::Constraint support = constraints::real;
  transforms::Transform transform;  // biject_to(support)
  Shape shape;                      // the value at full plate sizes (batch + event)
  Shape unconstrained_shape;
  int event_dim = 0;
  std::vector<PlateFrame> plates;  // the vectorized plates, outermost first
  Tensor init;                     // constrained, of `shape`
  std::int64_t offset = 0;         // where it lies in a joint guide's flat vector
  std::int64_t numel = 0;          // unconstrained elements
};

namespace detail {

// The part of an autoguide that does not depend on the model's type.
class AutoGuideCore {
 public:
  AutoGuideCore(std::string kind, AutoGuideOptions options);
  virtual ~AutoGuideCore();

  const std::string& kind() const { return kind_; }
  const std::string& prefix() const { return prefix_; }
  const AutoGuideOptions& options() const { return options_; }
  // Runs the model's prototype (blocked from outer handlers, without gradients) unless done.
  void setup(const std::function<void()>& model);
  bool ready() const;
  const std::vector<LatentSite>& sites() const;
  std::int64_t latent_dim() const { return latent_dim_; }
  const std::unordered_set<std::string>& explicit_plates() const { return explicit_plates_; }

  // The guide's body: samples every latent site; the constrained values by name.
  virtual ValueMap forward() = 0;
  // Constrained posterior medians at full plate sizes.
  virtual ValueMap median() const = 0;
  // Per site, the marginal quantiles qs stacked along a new leading dim: the guide's own
  // (marginal_quantiles) where its transform acts elementwise and increasingly, else the
  // empirical quantiles of 4000 draws.
  ValueMap quantiles(const std::vector<double>& qs) const;
  // `num_samples` draws of every latent site from the fitted guide (full plate sizes),
  // stacked along a new leading dim.
  virtual ValueMap sample_posterior(std::int64_t num_samples) const = 0;
  // The approximate posterior of one site, in constrained space.
  virtual dist::Distribution site_posterior(const std::string& name) const = 0;
  // Joint guides: the approximate posterior of the flat unconstrained latent vector.
  virtual dist::Distribution get_posterior() const;
  // Joint guides: the flat vector split into constrained values by site (a leading batch
  // shape of `flat` is kept).
  ValueMap unpack(const Tensor& flat) const;
  // The same without the transforms. align_to_plates: trailing unit dims of the batch (a
  // sample plate outside the model's plates) give way to the site's own batch dims.
  ValueMap unpack_unconstrained(const Tensor& flat, bool align_to_plates) const;

 protected:
  // After the prototype: checks the sites suit this guide; sets up what it needs.
  virtual void prepare() {}
  void require_ready(const char* what) const;
  void check_quantiles(const std::vector<double>& qs) const;
  // The marginal quantiles in closed form, by site (sites left out are drawn empirically).
  virtual ValueMap marginal_quantiles(const std::vector<double>& qs) const = 0;
  void check_count(std::int64_t num_samples) const;
  void mark_ready();
  const LatentSite& site(const std::string& name) const;
  std::string param_name(const std::string& part) const { return prefix_ + "." + part; }

  std::string kind_;
  AutoGuideOptions options_;
  std::string prefix_;
  std::vector<LatentSite> sites_;
  std::int64_t latent_dim_ = 0;
  // Plates whose subsample indices the model takes from its arguments.
  std::unordered_set<std::string> explicit_plates_;

 private:
  std::mutex mutex_;  // held while the prototype runs
  // Set once the prototype has run (sites_ is then read-only); read on every call unlocked.
  std::atomic<bool> ready_{false};
};

std::shared_ptr<AutoGuideCore> make_auto_delta(AutoGuideOptions options);
std::shared_ptr<AutoGuideCore> make_auto_normal(AutoGuideOptions options);
std::shared_ptr<AutoGuideCore> make_auto_diagonal_normal(AutoGuideOptions options);
std::shared_ptr<AutoGuideCore> make_auto_multivariate_normal(AutoGuideOptions options);
std::shared_ptr<AutoGuideCore> make_auto_low_rank_multivariate_normal(AutoGuideOptions options);
std::shared_ptr<AutoGuideCore> make_auto_iaf_normal(AutoGuideOptions options);
std::shared_ptr<AutoGuideCore> make_auto_laplace(AutoGuideOptions options);
// The Laplace approximation at the fitted MAP of `laplace` (an AutoLaplaceApproximation
// core): a multivariate normal core whose parameters are set in the current store.
std::shared_ptr<AutoGuideCore> laplace_to_multivariate_normal(AutoGuideCore& laplace,
                                                              const std::function<void()>& model,
                                                              double step);

}  // namespace detail

// An autoguide over `Model`: callable with the model's arguments (as SVI calls a guide).
template <typename Model>
class AutoGuide {
 public:
  AutoGuide(Model model, std::shared_ptr<detail::AutoGuideCore> core)
      : model_(std::make_shared<Model>(std::move(model))), core_(std::move(core)) {}

  // The guide: on the first call the model's prototype runs with these arguments.
  template <typename... Args>
  ValueMap operator()(Args&&... args) const {
    setup(args...);
    return core_->forward();
  }
  // Runs the prototype (if not yet) without sampling the guide.
  template <typename... Args>
  void setup(Args&&... args) const {
    if (!core_->ready()) core_->setup([&] { (*model_)(args...); });
  }

  ValueMap median() const { return core_->median(); }
  ValueMap quantiles(const std::vector<double>& qs) const { return core_->quantiles(qs); }
  ValueMap sample_posterior(std::int64_t num_samples) const {
    return core_->sample_posterior(num_samples);
  }
  dist::Distribution posterior(const std::string& site) const {
    return core_->site_posterior(site);
  }
  // The joint guides' posterior over the flat unconstrained latents (sites() order, each
  // site's elements row-major); the per-site guides and the flow throw a ValueError.
  dist::Distribution get_posterior() const { return core_->get_posterior(); }
  const std::vector<LatentSite>& sites() const { return core_->sites(); }
  std::int64_t latent_dim() const { return core_->latent_dim(); }
  const std::string& prefix() const { return core_->prefix(); }
  detail::AutoGuideCore& core() const { return *core_; }
  const Model& model() const { return *model_; }

 protected:
  std::shared_ptr<Model> model_;
  std::shared_ptr<detail::AutoGuideCore> core_;
};

// A point mass per latent site at a parameter in the site's support: MAP estimation
// (parameters "AutoDelta.<site>").
template <typename Model>
class AutoDelta : public AutoGuide<Model> {
 public:
  explicit AutoDelta(Model model, AutoGuideOptions options = {})
      : AutoGuide<Model>(std::move(model), detail::make_auto_delta(std::move(options))) {}
};

// An independent Normal per latent element in unconstrained space, pushed onto the support
// (parameters "AutoNormal.locs.<site>", "AutoNormal.scales.<site>").
template <typename Model>
class AutoNormal : public AutoGuide<Model> {
 public:
  explicit AutoNormal(Model model, AutoGuideOptions options = {})
      : AutoGuide<Model>(std::move(model), detail::make_auto_normal(std::move(options))) {}
};

// The same family with every site's location and scale in one flat vector each
// ("AutoDiagonalNormal.loc", ".scale"); its posterior is a Normal over the flat vector.
template <typename Model>
class AutoDiagonalNormal : public AutoGuide<Model> {
 public:
  explicit AutoDiagonalNormal(Model model, AutoGuideOptions options = {})
      : AutoGuide<Model>(std::move(model), detail::make_auto_diagonal_normal(std::move(options))) {}
};

// A full-covariance Gaussian over the flat unconstrained latents ("AutoMultivariateNormal.loc",
// ".scale_tril").
template <typename Model>
class AutoMultivariateNormal : public AutoGuide<Model> {
 public:
  explicit AutoMultivariateNormal(Model model, AutoGuideOptions options = {})
      : AutoGuide<Model>(std::move(model),
                         detail::make_auto_multivariate_normal(std::move(options))) {}
  AutoMultivariateNormal(Model model, std::shared_ptr<detail::AutoGuideCore> core)
      : AutoGuide<Model>(std::move(model), std::move(core)) {}
};

// A Gaussian whose covariance is W W^T + diag(D), W of rank options.rank
// ("AutoLowRankMultivariateNormal.loc", ".cov_factor", ".scale"; D = scale^2 and the factor
// is scaled by scale row-wise, as Pyro).
template <typename Model>
class AutoLowRankMultivariateNormal : public AutoGuide<Model> {
 public:
  explicit AutoLowRankMultivariateNormal(Model model, AutoGuideOptions options = {})
      : AutoGuide<Model>(std::move(model),
                         detail::make_auto_low_rank_multivariate_normal(std::move(options))) {}
};

// A normalizing flow over the flat unconstrained latents: N(0, I) draws through
// num_transforms inverse autoregressive layers (masked networks of hidden_dim units, Pyro's
// stable affine form), plus a location started at the init strategy's point (parameters
// "AutoIAFNormal.arn.<layer>.{w1,b1,w2,b2}", "AutoIAFNormal.loc"). median() is the image of
// the base's median, quantiles() empirical (4000 draws).
template <typename Model>
class AutoIAFNormal : public AutoGuide<Model> {
 public:
  explicit AutoIAFNormal(Model model, AutoGuideOptions options = {})
      : AutoGuide<Model>(std::move(model), detail::make_auto_iaf_normal(std::move(options))) {}
};

// Statistical Rethinking's quap: fit as a MAP (a point mass at "AutoLaplaceApproximation.loc"
// over the flat unconstrained latents), then laplace_approximation(args...) gives the
// Gaussian at the MAP whose precision is the Hessian of the negative log joint there (in
// unconstrained space, Jacobians included), taken by central differences of autodiff
// gradients in float64.
template <typename Model>
class AutoLaplaceApproximation : public AutoGuide<Model> {
 public:
  explicit AutoLaplaceApproximation(Model model, AutoGuideOptions options = {})
      : AutoGuide<Model>(std::move(model), detail::make_auto_laplace(std::move(options))) {}

  // The Laplace approximation, as an AutoMultivariateNormal whose parameters
  // ("<prefix>.laplace.loc", ".scale_tril") are set in the current store. `step`: the
  // finite-difference step, relative to max(1, |loc|).
  template <typename... Args>
  AutoMultivariateNormal<Model> laplace_approximation(Args&&... args) const {
    this->setup(args...);
    const Model& model = *this->model_;
    return AutoMultivariateNormal<Model>(model, detail::laplace_to_multivariate_normal(
                                                    *this->core_, [&] { model(args...); }, 1e-4));
  }
};

// Several guides as one: each part (an autoguide of a blocked model, or a hand-written guide)
// is called in turn with the guide's arguments; median(), quantiles() and sample_posterior()
// merge those of the autoguide parts.
//   auto guide = AutoGuideList(AutoNormal(handlers::block(model, {.hide = {"z"}})), guide_z);
template <typename... Parts>
class AutoGuideList {
 public:
  explicit AutoGuideList(Parts... parts) : parts_(std::move(parts)...) {}

  template <typename... Args>
  ValueMap operator()(Args&&... args) const {
    ValueMap out;
    std::apply([&](const Parts&... p) { (merge(out, call(p, args...)), ...); }, parts_);
    return out;
  }
  ValueMap median() const {
    return collect([](const auto& g) { return g.median(); });
  }
  ValueMap quantiles(const std::vector<double>& qs) const {
    return collect([&](const auto& g) { return g.quantiles(qs); });
  }
  ValueMap sample_posterior(std::int64_t num_samples) const {
    return collect([&](const auto& g) { return g.sample_posterior(num_samples); });
  }
  template <std::size_t I>
  const auto& part() const {
    return std::get<I>(parts_);
  }

 private:
  template <typename P, typename... Args>
  static ValueMap call(const P& part, Args&... args) {
    if constexpr (std::is_same_v<std::invoke_result_t<const P&, Args&...>, ValueMap>) {
      return part(args...);
    } else {
      part(args...);
      return {};
    }
  }
  static void merge(ValueMap& out, ValueMap in) {
    for (auto& [k, v] : in) out.insert_or_assign(k, std::move(v));
  }
  template <typename F>
  ValueMap collect(F f) const {
    ValueMap out;
    std::apply(
        [&](const Parts&... p) {
          (
              [&](const auto& part) {
                if constexpr (requires { part.median(); }) merge(out, f(part));
              }(p),
              ...);
        },
        parts_);
    return out;
  }
  std::tuple<Parts...> parts_;
};

}  // namespace ember::autoguide
