// Discrete latents summed out rather than sampled (Pyro's enumeration). Mark a model's
// discrete sites with infer.enumerate = Enumerate::Parallel (or wrap the model in
// config_enumerate) and fit with TraceEnum_ELBO (ember/infer.hpp): each such site takes all
// its values at once, along a dim of its own to the left of the plates, and the ELBO sums
// them out exactly by tensor variable elimination over the plates, and along markov chains
// in linear time. A guide's sites can be enumerated too (Enumerate::Parallel, or
// Enumerate::Sequential for one value per run): the estimate is then the exact expectation
// over their values. infer_discrete gives the MAP assignment (Viterbi) or posterior draws of
// the model's enumerated sites.
//
//   auto model = config_enumerate(gmm);                   // every discrete site enumerated
//   SVI svi(model, guide, optim::Adam({.lr = 0.05}), TraceEnum_ELBO({.max_plate_nesting = 1}));
//   ValueMap z = infer_discrete(model, guide, {.temperature = 0})(data);   // MAP assignments
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ember/handlers.hpp"
#include "ember/message.hpp"

namespace ember {

namespace handlers {

// Marks the latent sample sites with a finite support (has_enumerate_support) that reach it
// without an enumerate option (Pyro's config_enumerate).
class ConfigEnumerateHandler : public Messenger {
 public:
  explicit ConfigEnumerateHandler(Enumerate how = Enumerate::Parallel) : how_(how) {}
  void process_message(Message& msg) override;

 private:
  Enumerate how_;
};

// Gives every latent sample site marked Enumerate::Parallel that reaches it without a value all
// the values of its support, shaped (K, 1, ..., 1) + event shape with K at a dim of its own:
// the first at first_available_dim (negative, left of every plate), the next one further
// left. Inside a markov scope of history h the dims of a step are reused h + 1 steps later,
// so a chain of any length needs h + 1 dims per site of a step.
class EnumHandler : public Messenger {
 public:
  explicit EnumHandler(int first_available_dim);
  void process_message(Message& msg) override;

 private:
  int allocate(const Message& msg);
  int next_dim_;
  std::map<std::pair<std::int64_t, int>, int> markov_dims_;  // (step mod (h + 1), k) -> dim
  std::map<std::int64_t, int> per_step_;                     // enumerated sites seen per step
};

// Gives every latent sample site marked Enumerate::Sequential that reaches it without a value
// one value of its support per run, from a Schedule that walks every combination of those
// sites' values depth first across runs (which sites a run meets may depend on the values
// before them, as Pyro's queue of traces). Such a site takes one value at a time, so it must
// have a single element (batch shape of one element); TraceEnum_ELBO runs the guide under it.
class SequentialEnumHandler : public Messenger {
 public:
  class Schedule {
   public:
    // Moves to the next combination; false once every one has been run.
    bool advance();
    // How many sites the last run met.
    std::size_t sites() const { return next_; }

   private:
    friend class SequentialEnumHandler;
    struct Choice {
      std::string site;
      std::int64_t index, total;
    };
    std::vector<Choice> choices_;
    std::size_t next_ = 0;  // the choice the next site of a run takes
  };

  explicit SequentialEnumHandler(Schedule& schedule);
  void process_message(Message& msg) override;

 private:
  Schedule& schedule_;
};

template <typename F>
auto config_enumerate(F fn, Enumerate how = Enumerate::Parallel) {
  return ::ember::detail::wrap<ConfigEnumerateHandler>(std::move(fn), how);
}

}  // namespace handlers

using handlers::config_enumerate;

struct InferDiscreteOptions {
  // 0: the MAP assignment (max-product, Viterbi along chains); 1: a draw from the posterior
  // of the discrete sites given the others (forward filtering, backward sampling).
  int temperature = 1;
  // The model's plate dims; -1: found by tracing the model once.
  int max_plate_nesting = -1;
};

namespace detail {
// The discrete sites' values (site shapes, without enumeration dims). `guide` may be empty:
// then the model's continuous latents are drawn from their priors.
handlers::ValueMap infer_discrete_values(const std::function<void()>& model,
                                         const std::function<void()>& guide,
                                         const InferDiscreteOptions& options);
}  // namespace detail

// infer_discrete(model, guide, options)(args...): runs the guide (continuous latents), then
// the model with its enumerated sites summed out, and returns the enumerated sites' MAP
// values or posterior draws by name (Pyro's infer_discrete).
template <typename Model, typename Guide>
auto infer_discrete(Model model, Guide guide, InferDiscreteOptions options = {}) {
  return [model = std::move(model), guide = std::move(guide), options](auto&&... args) {
    const std::function<void()> m = [&] { model(args...); };
    const std::function<void()> g = [&] { guide(args...); };
    return detail::infer_discrete_values(m, g, options);
  };
}
// Without a guide: for models whose latents are all enumerated (or drawn from the prior).
template <typename Model>
auto infer_discrete(Model model, InferDiscreteOptions options = {}) {
  return [model = std::move(model), options](auto&&... args) {
    const std::function<void()> m = [&] { model(args...); };
    return detail::infer_discrete_values(m, nullptr, options);
  };
}

}  // namespace ember
