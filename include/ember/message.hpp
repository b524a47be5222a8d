// The core of effect handling, as Pyro's poutine runtime: every `sample`, `param` and
// plate subsample becomes a Message that travels through the calling thread's stack of
// handlers (Messengers), innermost first, is given a value by the default behaviour unless a
// handler already did, and then goes to postprocess on the handlers it met, from the
// outermost of them in (Pyro's order: a handler that stopped it and those inside it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ember/constraints.hpp"
#include "ember/distributions/distribution.hpp"
#include "ember/tensor.hpp"

namespace ember {

class ParamStore;
namespace nn {
class Module;
}

enum class SiteType {
  Sample,     // sample(name, dist [, obs]) and what builds on it (factor, deterministic)
  Param,      // param(name, init, constraint)
  Subsample,  // the index tensor a plate draws (recorded so replay gives the model the
              // guide's mini-batch)
};
const char* site_type_name(SiteType type);

// The name of the plate of vectorized particles (ElboOptions::vectorize_particles), as Pyro's.
inline constexpr char kParticlesPlate[] = "num_particles_vectorized";

// One plate a site lies in (Pyro's CondIndepStackFrame). A vectorized plate owns a batch dim
// counted from the right; a sequential one has no dim and counts its iterations.
struct PlateFrame {
  std::string name;
  int dim = 0;                      // negative; 0 for a sequential plate
  std::int64_t size = 0;            // the full size
  std::int64_t subsample_size = 0;  // the size of this pass (== size without subsampling)
  std::int64_t counter = -1;        // the iteration of a sequential plate; -1 if vectorized

  bool vectorized() const { return dim != 0; }
  bool operator==(const PlateFrame& other) const {
    return name == other.name && dim == other.dim && counter == other.counter;
  }
};

// How an ELBO treats a non-reparameterized guide site's score-function term (Pyro's
// infer={"baseline": ...}): the baseline subtracted from its downstream cost.
struct BaselineConfig {
  // A decaying average of the downstream cost: b <- beta * b + (1 - beta) * cost.
  bool use_decaying_avg_baseline = false;
  double baseline_beta = 0.90;
  // A network mapping nn_baseline_input to the baseline, trained on (cost - b)^2 each step.
  // Register its parameters with module() in the guide so the optimizer updates them.
  std::shared_ptr<nn::Module> nn_baseline;
  Tensor nn_baseline_input;
  // A baseline given by the user (may depend on parameters: then it is trained too).
  Tensor baseline_value;

  bool any() const {
    return use_decaying_avg_baseline || nn_baseline != nullptr || baseline_value.defined();
  }
};

// How TraceEnum_ELBO treats a discrete latent site (Pyro's infer={"enumerate": ...}).
enum class Enumerate {
  None,      // drawn (and scored by the score function in a guide)
  Parallel,  // every value at once, along a dim of its own left of the plates: summed out
  // Guide sites only: one value per run of guide and model, each run weighted by the value's
  // probability (for a site with one element: a global switch, a model choice)
  Sequential,
};

// Per-site inference options.
struct InferConfig {
  BaselineConfig baseline;
  bool is_auxiliary = false;   // factor sites
  bool deterministic = false;  // deterministic sites
  Enumerate enumerate = Enumerate::None;
  // Set by the enumeration handler: the (negative) dim that holds the site's values.
  int enum_dim = 0;
  // Set by sequential enumeration: how many values the site takes, one per run (0: not).
  std::int64_t enum_total = 0;
  // Set by uncondition: the value the site was observed at.
  bool was_observed = false;
  Tensor obs;
};

struct Message {
  SiteType type = SiteType::Sample;
  std::string name;
  dist::Distribution fn;  // sample sites
  Tensor value;           // set by a handler or by the default behaviour
  bool is_observed = false;
  // The log-density's weight (plates' size / subsample_size, scale handlers) and mask.
  double scale = 1.0;
  Tensor mask;  // bool, broadcastable to the site's batch shape; undefined: keep all
  // Outermost plate first.
  std::vector<PlateFrame> cond_indep_stack;
  InferConfig infer;
  // Param sites: how to make the value on first use, its constraint, the store it lives in
  // and (after the default behaviour) the unconstrained leaf the optimizer updates.
  std::shared_ptr<const std::function<Tensor()>> init;
  constraints::Constraint constraint = constraints::real;
  ParamStore* store = nullptr;
  Tensor unconstrained;
  // Subsample sites: the plate's full size, the subsample size and the index device.
  std::int64_t plate_size = 0;
  std::int64_t subsample_size = 0;
  Device device;
  // Markov scopes around the site: the step of the innermost one, -1 outside any.
  std::int64_t markov_step = -1;
  int markov_history = 0;
  // The DoHandler that split this site (so it does not intervene on its own copy).
  const void* intervener = nullptr;
  // A handler sets done to keep the default behaviour from giving a value, stop to keep the
  // message from the handlers further out.
  bool done = false;
  bool stop = false;
};

// A handler. Override either hook; the default passes messages on unchanged.
//
// A handler is on the calling thread's stack from its construction to its destruction
// (RAII), so scopes nest naturally and no handler can be built and forget to enter: the base
// constructor enters and the destructor leaves, also when a derived constructor throws. A
// derived constructor therefore runs with its handler already on the stack: a message it
// sends (a plate's subsample) passes through the handler's own hooks, which must not rely on
// what the constructor has not set yet.
class Messenger {
 public:
  Messenger();
  virtual ~Messenger();
  Messenger(const Messenger&) = delete;
  Messenger& operator=(const Messenger&) = delete;

  virtual void process_message(Message& msg) {}
  virtual void postprocess_message(Message& msg) {}

  bool active() const { return active_; }

 protected:
  // For the handlers that are on the stack only while they are iterated (SequentialPlate,
  // Markov): the base is built off the stack, and the handler enters and exits per
  // iteration; the destructor still leaves.
  struct PerIteration {};
  explicit Messenger(PerIteration);

  // Pushes this handler onto the calling thread's stack / takes it off; each does nothing
  // when the handler already is where it would put it.
  void enter();
  void exit();

 private:
  bool active_ = false;
};

// The calling thread's handlers, outermost first.
const std::vector<Messenger*>& handler_stack();
// True when no handler is active (the primitives then act directly).
bool handler_stack_empty();

// Sends msg through the handler stack and gives it a value (Pyro's apply_stack).
void apply_stack(Message& msg);
// What happens to a message no handler finished: sample sites draw (rsample when the
// distribution has one), param sites read or create their store entry, subsample sites
// draw indices.
void default_process_message(Message& msg);

}  // namespace ember
