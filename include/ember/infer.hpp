// ELBO estimators: each runs the guide under trace, the model under replay of the guide's
// trace, and turns the two traces into a loss (minus the ELBO estimate) and a surrogate whose
// gradient is an unbiased estimate of the ELBO's gradient, which it back-propagates into the
// parameters.
//
// Guide sites drawn by rsample carry pathwise gradients. Sites without rsample (discrete,
// or a family without a reparameterized sampler) add a score-function term
// log q(z) * stopgrad(cost - baseline): Trace_ELBO's cost is the whole ELBO restricted to
// the site's plate elements; TraceGraph_ELBO's is only what lies downstream of the site,
// with baselines.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ember/tensor.hpp"
#include "ember/trace.hpp"

namespace ember {

struct ElboOptions {
  // Monte Carlo samples per estimate; the loss is their mean.
  int num_particles = 1;
  // Draw the particles at once, in an outer plate of size num_particles at dim
  // -(max_plate_nesting + 1), instead of one run per particle.
  bool vectorize_particles = false;
  // How many plate dims model and guide use; -1: found by tracing them once.
  int max_plate_nesting = -1;
};

// Whether an estimate checks that its loss and gradients are finite (SVI asks for the check
// when SVIOptions::check_finite is on).
enum class FiniteCheck { Off, On };

// The first sample site of a particle, guide sites first and then the model's, whose
// log-density is not finite.
struct NonFiniteSite {
  std::string name;     // empty: no site's log-density is at fault
  std::string details;  // "(model, Normal, batch shape (3)): value -inf at index [1]"
};

// What one estimate produced.
struct ElboResult {
  Tensor loss;  // 0-d, minus the ELBO estimate (no graph)
  // The unconstrained leaves of every param site in model and guide, by name.
  std::vector<NamedTensor> params;
  // With FiniteCheck::On: whether the loss and every gradient are finite (true when not
  // checked), and the site at fault of the first particle whose estimate is not.
  bool finite = true;
  NonFiniteSite nonfinite_site;
};

class ELBO {
 public:
  explicit ELBO(ElboOptions options = {});
  virtual ~ELBO();
  virtual const char* name() const = 0;
  const ElboOptions& options() const { return options_; }

  // The loss, with the surrogate's gradient accumulated into the param leaves' .grad().
  // With FiniteCheck::On, each particle's estimate is checked while its traces are alive,
  // the last together with the loss and every gradient in the same pass: one device read per
  // step with one particle or vectorized particles, one per particle otherwise. Off: nothing
  // is checked, and nothing waits on the device.
  ElboResult loss_and_grads(const std::function<void()>& model, const std::function<void()>& guide,
                            FiniteCheck check = FiniteCheck::Off);
  // The loss alone (nothing is recorded for autograd).
  ElboResult loss(const std::function<void()>& model, const std::function<void()>& guide);

 protected:
  // One particle (or all, vectorized): the ELBO estimate and the differentiable surrogate
  // (both summed over the particles present in the traces).
  struct Particle {
    Tensor elbo;       // detached
    Tensor surrogate;  // differentiable; undefined when not wanted
  };
  virtual Particle particle(const Trace& model_trace, const Trace& guide_trace,
                            bool want_surrogate) = 0;
  // Whether the model runs under enumeration (its Enumerate::Parallel sites take all their
  // values, at dims left of the plates and of the particles' plate).
  virtual bool enumerates() const { return false; }

  // Σ model log p + Σ over reparameterized guide sites of -log q: the pathwise part of every
  // estimator's surrogate.
  static Tensor reparam_surrogate(const Trace& model_trace, const Trace& guide_trace);
  // The non-reparameterized latent guide sites, in guide order.
  static std::vector<const Site*> score_sites(const Trace& guide_trace);

 private:
  ElboResult run(const std::function<void()>& model, const std::function<void()>& guide, bool grads,
                 FiniteCheck check);
  int plate_nesting(const std::function<void()>& model, const std::function<void()>& guide);

  ElboOptions options_;
  int max_plate_nesting_ = -1;
};

// The standard estimator: pathwise gradients where the guide has rsample, score-function
// terms weighted by the ELBO of the site's plate elements elsewhere (as Pyro's Trace_ELBO).
class Trace_ELBO : public ELBO {  // NOLINT(readability-identifier-naming): Pyro's name
 public:
  explicit Trace_ELBO(ElboOptions options = {}) : ELBO(options) {}
  const char* name() const override { return "Trace_ELBO"; }

 protected:
  Particle particle(const Trace& model_trace, const Trace& guide_trace,
                    bool want_surrogate) override;
};

// Trace_ELBO with enumerated discrete sites (infer.enumerate, config_enumerate) summed out
// exactly (Pyro's TraceEnum_ELBO). The model's are contracted over their values by tensor
// variable elimination across plates (Obermeyer et al. 2019), and along markov scopes step by
// step (linear in the chain's length). The guide's parallel ones are summed over, weighted by
// their probabilities; its sequential ones take one value per run of guide and model, each run
// weighted the same way. The estimate is the expectation under the guide of what is left
// (Pyro's Dice): a gradient through a summed site has no score-function variance, and a guide
// site drawn without rsample gets a score-function term weighted by the terms in its plates.
// ElboOptions::max_plate_nesting fixes where the enumeration dims start (-1: found by tracing
// the programs once). See docs/enumerate.md.
// How TraceEnum_ELBO contracts a markov chain of enumerated sites (history 1, one site per
// step): step by step (the forward algorithm: T log-space vector-matrix products in a row),
// or by a parallel scan (the T transition matrices multiplied pairwise in log2(T) rounds of
// batched log-space matrix products: K times the arithmetic, but few, wide launches instead of
// T dependent ones). Auto: the parallel scan for chains of at least 64 steps on a GPU.
enum class ChainScan { Auto, Sequential, Parallel };

class TraceEnum_ELBO : public ELBO {  // NOLINT(readability-identifier-naming)
 public:
  explicit TraceEnum_ELBO(ElboOptions options = {}, ChainScan scan = ChainScan::Auto)
      : ELBO(options), scan_(scan) {}
  const char* name() const override { return "TraceEnum_ELBO"; }

 protected:
  Particle particle(const Trace& model_trace, const Trace& guide_trace,
                    bool want_surrogate) override;
  bool enumerates() const override { return true; }

 private:
  ChainScan scan_;
};

// KL(q || p) in closed form for latent sites whose guide and prior pair has one (see
// ember/kl.hpp), sampled log p - log q for the others. The guide must be reparameterized
// (a ValueError names a site that is not).
class TraceMeanField_ELBO : public ELBO {  // NOLINT(readability-identifier-naming)
 public:
  explicit TraceMeanField_ELBO(ElboOptions options = {}) : ELBO(options) {}
  const char* name() const override { return "TraceMeanField_ELBO"; }

 protected:
  Particle particle(const Trace& model_trace, const Trace& guide_trace,
                    bool want_surrogate) override;
};

// Rao-Blackwellized score-function terms: a non-reparameterized site's cost holds only the
// terms downstream of it (later sites it does not sit independently of, in guide order, and
// the model sites after those) and only from its own plate elements, less a baseline chosen
// per site through infer.baseline (a decaying average, a network, or a given value).
class TraceGraph_ELBO : public ELBO {  // NOLINT(readability-identifier-naming)
 public:
  explicit TraceGraph_ELBO(ElboOptions options = {}) : ELBO(options) {}
  const char* name() const override { return "TraceGraph_ELBO"; }

  // The decaying-average baseline of a site (undefined before its first step).
  Tensor average_baseline(const std::string& site) const;

 protected:
  Particle particle(const Trace& model_trace, const Trace& guide_trace,
                    bool want_surrogate) override;

 private:
  std::map<std::string, Tensor> avg_baselines_;
};

}  // namespace ember
