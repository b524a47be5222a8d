// Predictive: draws from a model's prior predictive, or its posterior predictive given a
// guide or posterior samples (Pyro's pyro.infer.Predictive). Each call returns named tensors
// with a leading dim of num_samples, ready for data::write_npz or a safetensors file.
//
//   Predictive predictive(model, guide, {.num_samples = 1000});
//   ValueMap draws = predictive(x_test, Tensor());   // "obs": (1000, n)
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/handlers.hpp"

namespace ember {

struct PredictiveOptions {
  // Draws per call. With posterior samples, 0 takes one draw per sample (their leading dim);
  // a positive count must equal it.
  std::int64_t num_samples = 0;
  // The sites to return; empty: every sample site of the model that the posterior does not
  // give (observed sites, deterministic ones, latents the guide does not cover). A name
  // that is no site of the model (or guide) throws.
  std::vector<std::string> return_sites;
  // Run the draws at once, inside an outer plate "_num_predictive_samples" of size
  // num_samples at dim -(max_plate_nesting + 1) (the model must broadcast, as for vectorized
  // particles); false runs them one by one.
  bool parallel = false;
  // Draw the model's observed sites afresh (handlers::uncondition), as a predictive check
  // wants; false keeps them at their observed values.
  bool resample_observed = true;
  // The model's plate dims; -1: found by tracing the model once.
  int max_plate_nesting = -1;
};

namespace detail {

// Where the latents come from: nothing (the prior), a guide, or samples.
struct PredictiveSource {
  const std::function<void()>* guide = nullptr;
  const handlers::ValueMap* samples = nullptr;
};
handlers::ValueMap predictive_draws(const std::function<void()>& model,
                                    const PredictiveSource& source,
                                    const PredictiveOptions& options);

}  // namespace detail

// Guide = std::nullptr_t: the prior predictive; Guide = ValueMap: posterior samples, each
// with a leading dim of draws; otherwise a guide callable with the model's arguments.
template <typename Model, typename Guide = std::nullptr_t>
class Predictive {
 public:
  Predictive(Model model, PredictiveOptions options) requires std::is_same_v<Guide, std::nullptr_t>
      : model_(std::move(model)), options_(std::move(options)) {}
  Predictive(Model model, Guide guide, PredictiveOptions options)
      : model_(std::move(model)), guide_(std::move(guide)), options_(std::move(options)) {}

  template <typename... Args>
  handlers::ValueMap operator()(Args&&... args) const {
    const std::function<void()> model = [&] { model_(args...); };
    if constexpr (std::is_same_v<Guide, std::nullptr_t>) {
      return detail::predictive_draws(model, {}, options_);
    } else if constexpr (std::is_same_v<Guide, handlers::ValueMap>) {
      return detail::predictive_draws(model, {nullptr, &guide_}, options_);
    } else {
      const std::function<void()> guide = [&] { guide_(args...); };
      return detail::predictive_draws(model, {&guide, nullptr}, options_);
    }
  }
  const PredictiveOptions& options() const { return options_; }

 private:
  Model model_;
  Guide guide_{};
  PredictiveOptions options_;
};

template <typename Model>
Predictive(Model, PredictiveOptions) -> Predictive<Model, std::nullptr_t>;
template <typename Model, typename Guide>
Predictive(Model, Guide, PredictiveOptions) -> Predictive<Model, Guide>;

}  // namespace ember
