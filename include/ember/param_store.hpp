// The parameter store: named parameters kept unconstrained (as leaves the optimizers update)
// with the constraint that maps them back. param() reads and creates entries here.
//
// A process has one default store; a service holding several models gives each its own
// ParamStore and makes it current for a thread with ParamStoreScope (or hands it to SVI).
// A store may be shared between threads: its methods lock, and the SVI steps that use it take
// turns (training_mutex).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ember/constraints.hpp"
#include "ember/tensor.hpp"
#include "ember/transforms.hpp"

namespace ember {

class ParamStore {
 public:
  ParamStore();
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  // What param() needs: the entry's unconstrained leaf, created from init() under
  // `constraint` when the name is new. An existing entry keeps its value and constraint.
  struct Entry {
    Tensor unconstrained;  // a leaf that requires grad
    constraints::Constraint constraint = constraints::real;
    transforms::Transform transform;  // biject_to(constraint)
  };
  Entry get_or_create(const std::string& name, const std::function<Tensor()>& init,
                      const constraints::Constraint& constraint);

  bool contains(const std::string& name) const;
  std::size_t size() const;
  bool empty() const { return size() == 0; }
  // Names in sorted order.
  std::vector<std::string> names() const;
  // The constrained value (recorded for autograd from the unconstrained leaf). Throws a
  // ValueError naming the parameter when it does not exist.
  Tensor get(const std::string& name) const;
  Tensor unconstrained(const std::string& name) const;
  constraints::Constraint constraint(const std::string& name) const;
  // Sets (or replaces) a parameter from its constrained value.
  void set(const std::string& name, const Tensor& constrained_value,
           const constraints::Constraint& constraint = constraints::real);
  void erase(const std::string& name);
  void clear();

  // Saves every parameter's constrained value in the safetensors format (so Python's
  // safetensors.torch.load_file reads them by name), with the constraints in the header's
  // metadata; a constrained parameter's exact unconstrained leaf goes beside it as
  // "__ember_unconstrained__.<name>", so that a fit resumed from the file (with the
  // optimizer's saved state, Optimizer::save) is bit-identical to one never stopped. The file is
  // written beside `path` and renamed onto it, so a crash never leaves a half-written file where a
  // good one was.
  void save(const std::string& path) const;
  // Loads a file written by save (or any safetensors file of F32/F64 tensors: those without
  // Ember's constraint metadata load as unconstrained reals; other dtypes are refused, as
  // parameters are floating point), replacing parameters of the same names and keeping the
  // others. The whole file is read and checked first: a missing, truncated or corrupt file
  // throws an IoError naming the file and the fault, and leaves the store as it was.
  void load(const std::string& path, Device device = Device::cpu());

  // Changes whenever a parameter is added, replaced, erased or loaded (not when one is
  // updated in place): a compiled step re-records when the store it recorded with changed.
  // Every value is unique in the process: no two stores, and no store at two moments that
  // differ, share one (a store made where a destroyed one was is not taken for it).
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // Held for the whole of every SVI step and loss evaluation that uses this store: the
  // SVIs of several threads sharing it take turns, each step starting from the parameters the
  // one before left, instead of computing gradients into the same parameters at once. set,
  // erase, clear and load take it too, so they land between steps, and save copies the
  // values under it: a checkpoint written by another thread while a fit runs holds one
  // step's parameters. A training loop of one's own over shared parameters, or a reader that
  // wants several values of one step, may take it too; the thread holding it may take it
  // again.
  std::recursive_mutex& training_mutex() const { return training_; }

 private:
  mutable std::mutex mutex_;
  mutable std::recursive_mutex training_;
  std::map<std::string, Entry> entries_;
  std::atomic<std::uint64_t> version_{0};
};

// The process-wide default store.
ParamStore& default_param_store();
// The store param() uses in the calling thread: the innermost ParamStoreScope's, or the
// default one.
ParamStore& current_param_store();
// Pyro's names for the current store and clearing it.
inline ParamStore& get_param_store() { return current_param_store(); }
inline void clear_param_store() { current_param_store().clear(); }

// Makes `store` the calling thread's current store while alive (scopes nest).
class ParamStoreScope {
 public:
  explicit ParamStoreScope(ParamStore& store);
  ~ParamStoreScope();
  ParamStoreScope(const ParamStoreScope&) = delete;
  ParamStoreScope& operator=(const ParamStoreScope&) = delete;

 private:
  ParamStore* prev_;
};

}  // namespace ember
