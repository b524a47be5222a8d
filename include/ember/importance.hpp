// Importance sampling, as Pyro's Importance and EmpiricalMarginal: num_samples runs of a
// proposal (the guide, or the model's prior), each weighted by log p(x, z) - log q(z), give an
// estimate of the log evidence log p(x) and a weighted sample of the posterior.
//
//   Importance is(model, guide, 1000);        // or Importance is(model, 1000): the prior
//   ImportanceResult r = is.run(data);
//   r.log_evidence(); r.effective_sample_size(); r.mean("z"); r.resample(500, gen);
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/handlers.hpp"
#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember {

namespace detail {
class ImportanceCore;
}  // namespace detail

// What one run produced: the log-weights and the weighted values of the sites.
class ImportanceResult {
 public:
  std::int64_t num_samples() const { return num_samples_; }

  // log p(x, z_i) - log q(z_i), one per sample (float64, CPU, shape (S)): each trace's
  // log_prob_sum, scales and masks applied. A sample whose weight is zero has -inf.
  const Tensor& log_weights() const { return log_weights_; }
  // log((1/S) sum_i exp(w_i)), computed as logsumexp(w) - log S (Pyro's get_log_normalizer):
  // its exp is an unbiased estimate of the evidence p(x).
  double log_evidence() const { return log_evidence_; }
  // exp(w_i - logsumexp(w)): the weights normalized to sum to one (float64, CPU, shape (S)).
  Tensor normalized_weights() const;
  // 1 / sum_i wbar_i^2 (Pyro's get_ESS): S when every weight is equal, 1 when one dominates.
  double effective_sample_size() const { return ess_; }

  // The model's latent sample sites and deterministic records present in every sample, in
  // the order they first ran.
  const std::vector<std::string>& sites() const { return sites_; }
  bool contains(const std::string& site) const;
  // The site's values, sample by sample, stacked along a new leading dim of size S (the
  // site's dtype and device). A ValueError names a site absent from the runs, or one that is
  // not in every sample or changes shape between samples (so its values do not stack).
  const Tensor& samples(const std::string& site) const;
  // The weighted mean and (biased) variance over the samples, as EmpiricalMarginal's mean and
  // variance: float64 tensors of the site's shape, on its device.
  Tensor mean(const std::string& site) const;
  Tensor variance(const std::string& site) const;

  // num draws of sample indices in [0, S), with probabilities the normalized weights
  // (multinomial resampling; int64, CPU). A sample of weight zero is never drawn.
  Tensor resample_indices(std::int64_t num, Generator& gen) const;
  // Unweighted draws from the weighted posterior: every site of sites() indexed by the same
  // resample_indices, so each draw is one joint sample (leading dim num).
  handlers::ValueMap resample(std::int64_t num, Generator& gen) const;
  handlers::ValueMap resample(std::int64_t num, std::uint64_t seed) const;
  // From the calling thread's current generator (ember::seed and set_rng_seed steer it).
  handlers::ValueMap resample(std::int64_t num) const;

 private:
  friend class detail::ImportanceCore;
  std::int64_t num_samples_ = 0;
  Tensor log_weights_;
  std::vector<double> weights_;  // normalized, on the host
  double log_evidence_ = 0.0;
  double ess_ = 0.0;
  std::vector<std::string> sites_;
  std::unordered_map<std::string, Tensor> samples_;
  // Sites that were seen but whose values do not stack, with the reason.
  std::unordered_map<std::string, std::string> unstacked_;
};

namespace detail {

// The program-independent part of Importance.
class ImportanceCore {
 public:
  // Throws a ValueError when num_samples < 1.
  explicit ImportanceCore(std::int64_t num_samples);
  std::int64_t num_samples() const { return num_samples_; }
  // guide empty: the prior (the model's own draws of its latent sites, weighted by its
  // observed sites' log-densities).
  ImportanceResult run(const std::function<void()>& model,
                       const std::function<void()>& guide) const;

 private:
  std::int64_t num_samples_;
};

// The guide of Importance(model, num_samples).
struct PriorProposal {};

}  // namespace detail

// Importance(model, guide, num_samples), or Importance(model, num_samples) to propose from
// the prior (the model's own draws of its latents, each weighted by its observed sites'
// log-density alone). Model and guide are any callables taking the same arguments, which
// run(args...) passes to both. Each sample runs the guide under trace and the model under
// trace and replay of the guide's trace, one sample after the other (no vectorized
// particles), with no autograd recording and one read of the device per sample. Draws come
// from the calling thread's generator: a handlers::SeedHandler or set_rng_seed makes a run
// reproducible.
//
// run throws a ValueError naming the site when a guide's latent site is not a latent site of
// the model (absent, or observed there) or a model latent site is absent from the guide, a
// ShapeError when the guide draws a site in a shape the model's distribution does not have,
// and a NonFiniteError (ember/svi.hpp) naming the first site whose log-density is not finite
// when a log-weight is NaN or +inf, or when every log-weight is -inf.
template <typename Model, typename Guide = detail::PriorProposal>
class Importance {
 public:
  Importance(Model model, Guide guide,
             std::int64_t num_samples) requires(!std::same_as<Guide, detail::PriorProposal>)
      : model_(std::move(model)), guide_(std::move(guide)), core_(num_samples) {}
  Importance(Model model,
             std::int64_t num_samples) requires(std::same_as<Guide, detail::PriorProposal>)
      : model_(std::move(model)), core_(num_samples) {}

  template <typename... Args>
  ImportanceResult run(Args&&... args) {
    auto model = [&] { model_(args...); };
    if constexpr (std::same_as<Guide, detail::PriorProposal>) {
      return core_.run(model, nullptr);
    } else {
      auto guide = [&] { guide_(args...); };
      return core_.run(model, guide);
    }
  }

  std::int64_t num_samples() const { return core_.num_samples(); }

 private:
  Model model_;
  [[no_unique_address]] Guide guide_;
  detail::ImportanceCore core_;
};

template <typename Model, typename Guide>
Importance(Model, Guide, std::int64_t) -> Importance<Model, Guide>;
template <typename Model>
Importance(Model, std::int64_t) -> Importance<Model>;

}  // namespace ember
