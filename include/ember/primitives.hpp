// The primitives of a probabilistic program: sample, param, plate and their relatives. A
// model or guide is any C++ callable that calls them, with arbitrary control flow and site
// names built at run time. Outside any handler they just act: sample draws, param reads or
// creates its entry in the current ParamStore.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/message.hpp"
#include "ember/param_store.hpp"

namespace ember {

// ---- sample ----
struct SampleOptions {
  Tensor obs;  // defined: an observed site with this value
  InferConfig infer;
};
// A latent site: a draw of `fn` (reparameterized when the distribution has rsample), or
// whatever value the handlers around give it.
Tensor sample(const std::string& name, const dist::Distribution& fn);
// An observed site with value `obs`.
Tensor sample(const std::string& name, const dist::Distribution& fn, const Tensor& obs);
Tensor sample(const std::string& name, const dist::Distribution& fn, const SampleOptions& opts);

// ---- param ----
// How a parameter is made on first use: a tensor, a number (a float32 0-d tensor on the
// CPU; give a tensor to choose dtype and device), or a function that makes one (called only
// when the parameter is new).
class ParamInit {
 public:
  ParamInit(const Tensor& t);               // NOLINT: implicit by design
  ParamInit(double v);                      // NOLINT: implicit by design
  ParamInit(std::function<Tensor()> make);  // NOLINT: implicit by design
  template <typename F>
  requires std::is_invocable_r_v<Tensor, F> ParamInit(F make)  // NOLINT: implicit by design
      : ParamInit(std::function<Tensor()>(std::move(make))) {}
  const std::shared_ptr<const std::function<Tensor()>>& fn() const { return fn_; }

 private:
  std::shared_ptr<const std::function<Tensor()>> fn_;
};
// The parameter's constrained value. Created on first use from `init` (which must lie in
// `constraint`), kept unconstrained in the current ParamStore; later calls return the
// stored value (init is then not evaluated).
Tensor param(const std::string& name, const ParamInit& init,
             const constraints::Constraint& constraint = constraints::real);
// An existing parameter; a ValueError names it when the store has none.
Tensor param(const std::string& name);

// ---- plates ----
struct PlateOptions {
  // Draw a random subset of this size each time the plate is entered (-1: the full size).
  std::int64_t subsample_size = -1;
  // Or use these indices (int64, 1-d) as the subset.
  Tensor subsample;
  // The batch dim it owns (negative); by default the rightmost dim free at entry.
  std::optional<int> dim;
  // Where the index tensor is made.
  Device device = Device::cpu();
};

// A vectorized plate: conditionally independent sites along one batch dim, as Pyro's
// `with pyro.plate(...)`. It is a scope: alive from construction to the end of the
// enclosing block (`auto data = plate("data", n);`). Sites inside broadcast their batch
// shape to the plate's size at its dim and have their log-densities scaled by
// size / subsample_size. A site whose batch shape conflicts throws a ShapeError naming the
// site, the plate, the dim and both sizes.
class Plate : public Messenger {
 public:
  Plate(std::string name, std::int64_t size, PlateOptions opts = {});
  ~Plate() override;  // frees the plate's dim

  const std::string& name() const { return frame_.name; }
  std::int64_t size() const { return frame_.size; }
  std::int64_t subsample_size() const { return frame_.subsample_size; }
  int dim() const { return frame_.dim; }
  // The indices of this pass (int64, length subsample_size; 0..size-1 without subsampling).
  const Tensor& indices() const { return indices_; }
  // data's entries at this pass's indices along `dim` (the mini-batch).
  Tensor subsample(const Tensor& data, int dim = 0) const;
  const PlateFrame& frame() const { return frame_; }

  void process_message(Message& msg) override;

 private:
  PlateFrame frame_;
  Tensor indices_;
  bool subsampled_ = false;  // indices_ is not simply 0..size-1
};

inline Plate plate(std::string name, std::int64_t size, PlateOptions opts = {}) {
  return Plate(std::move(name), size, std::move(opts));
}

// A sequential plate: iterate it to get the (subsampled) indices; the sites of each
// iteration are independent of the other iterations', and scaled by size / subsample_size.
//   for (std::int64_t i : sequential_plate("points", n)) sample("x_" + std::to_string(i), d);
class SequentialPlate : public Messenger {
 public:
  // On the handler stack only while iterated (from begin() to the end of the loop).
  SequentialPlate(std::string name, std::int64_t size, PlateOptions opts = {});

  class Iterator {
   public:
    std::int64_t operator*() const { return plate_->index_values_[pos_]; }
    Iterator& operator++();
    bool operator!=(const Iterator& other) const { return pos_ != other.pos_; }
    bool operator==(const Iterator& other) const { return pos_ == other.pos_; }

   private:
    friend class SequentialPlate;
    Iterator(SequentialPlate* plate, std::size_t pos) : plate_(plate), pos_(pos) {}
    SequentialPlate* plate_;
    std::size_t pos_;
  };
  Iterator begin();
  Iterator end();

  const Tensor& indices() const { return indices_; }
  void process_message(Message& msg) override;

 private:
  void move_to(std::size_t pos);
  PlateFrame frame_;
  Tensor indices_;
  std::vector<std::int64_t> index_values_;
};

inline SequentialPlate sequential_plate(std::string name, std::int64_t size,
                                        PlateOptions opts = {}) {
  return SequentialPlate(std::move(name), size, std::move(opts));
}

// ---- relatives of sample ----
// Adds log_weight (broadcast over the enclosing plates) to the log-density of the program:
// an observed site of a Unit distribution, as Pyro's factor.
void factor(const std::string& name, const Tensor& log_weight);
// Records `value` as a site of the trace (a masked Delta, so it adds nothing to the
// log-density) and returns it; event_dim rightmost dims form one event.
Tensor deterministic(const std::string& name, const Tensor& value, int event_dim = 0);

// Registers a network's parameters as params named "<name>$$$<parameter path>" and points
// the network at the stored leaves, so an optimizer updates them (Pyro's module).
void module(const std::string& name, nn::Module& network);

// ---- markov ----
// A Markov chain scope for sequential models: iterating markov(n) yields 0..n-1, and the
// sites of step t are annotated with it (Site::markov_step) and with the chain's history,
// the number of past steps a step depends on (what enumeration, not built yet, will use to
// reuse dims).
class Markov : public Messenger {
 public:
  // On the handler stack only while iterated (from begin() to the end of the loop).
  Markov(std::int64_t steps, int history = 1);

  class Iterator {
   public:
    std::int64_t operator*() const { return step_; }
    Iterator& operator++();
    bool operator!=(const Iterator& other) const { return step_ != other.step_; }
    bool operator==(const Iterator& other) const { return step_ == other.step_; }

   private:
    friend class Markov;
    Iterator(Markov* chain, std::int64_t step) : chain_(chain), step_(step) {}
    Markov* chain_;
    std::int64_t step_;
  };
  Iterator begin();
  Iterator end();

  void process_message(Message& msg) override;

 private:
  std::int64_t steps_;
  int history_;
  std::int64_t step_ = 0;
};

inline Markov markov(std::int64_t steps, int history = 1) { return Markov(steps, history); }

}  // namespace ember
