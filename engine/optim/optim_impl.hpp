// What every optimizer shares behind the public classes: the per-name state, the step loop
// that groups parameters into fused launches (optimizer.cpp), and the interface through which
// one algorithm (sgd.cpp, adam.cpp, ...) resolves options, makes state and computes the
// scalars of each step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/error.hpp"
#include "ember/optim.hpp"
#include "ember/tensor.hpp"
#include "kernels/math/optim.hpp"

namespace ember::detail {

// What an optimizer keeps for one parameter name from the first step that lists it.
struct ParamState {
  std::size_t options = 0;   // index of the parameter's options in its Algorithm
  std::int64_t calls = 0;    // step() calls that listed it, with or without a gradient
  std::int64_t updates = 0;  // updates applied: the t of bias corrections
  // Made at the first update: the algorithm's buffers (undefined where unused), and the
  // geometry they were made for.
  std::vector<Tensor> buffers;
  Shape shape;
  DType dtype = kFloat32;
  Device device;
};

// One optimizer's rule. Options are resolved per parameter name and kept by index.
class Algorithm {
 public:
  virtual ~Algorithm() = default;
  virtual const char* name() const = 0;
  virtual kernels::OptimKind kind() const = 0;

  // First sight of a parameter: its options, checked; returns their index.
  virtual std::size_t add(const std::string& param) = 0;
  // The base lr the options of `param` would give it, without adding it.
  virtual double base_lr_for(const std::string& param) const = 0;
  virtual double base_lr(std::size_t options) const = 0;
  // Multiplies the scheduled lr after `calls` step() calls (ClippedAdam's lrd^calls).
  virtual double lr_factor(std::size_t /*options*/, std::int64_t /*calls*/) const { return 1.0; }
  // The state buffers of a parameter before its first update, kMaxOptimStates of them in
  // the order of kernels/math/optim.hpp; undefined for those the options do not use.
  virtual std::vector<Tensor> make_state(std::size_t options, const Tensor& param) const = 0;
  // The scalars of update t (1 for the first) at effective learning rate lr.
  virtual kernels::OptimScalars scalars(std::size_t options, double lr, std::int64_t t) const = 0;
};

// Checks one option: "Adam: betas[0] of parameter 'loc' is 1.5, but must be in [0, 1)".
// `where` is "parameter 'loc'", or "every parameter" for options given as one struct.
struct OptionChecker {
  const char* optimizer;
  const std::string& where;

  void operator()(bool ok, const char* option, double value, const char* must) const {
    EMBER_CHECK(ok, optimizer, ": ", option, " of ", where, " is ", value, ", but must be ", must);
  }
  void non_negative(const char* option, double value) const {
    (*this)(value >= 0.0, option, value, ">= 0");  // false for NaN too
  }
  void positive(const char* option, double value) const {
    (*this)(value > 0.0, option, value, "> 0");
  }
  void unit_interval_open(const char* option, double value) const {
    (*this)(value >= 0.0 && value < 1.0, option, value, "in [0, 1)");
  }
};

// What Adam and ClippedAdam share: the checks of their common options, the two moment
// buffers (state[0] exp_avg m, state[1] exp_avg_sq v) and the bias corrections at step t.
template <typename AdamLikeOptions>
void check_adam_options(const OptionChecker& c, const AdamLikeOptions& o) {
  c.non_negative("lr", o.lr);
  c.unit_interval_open("betas[0]", o.betas.first);
  c.unit_interval_open("betas[1]", o.betas.second);
  c.non_negative("eps", o.eps);
  c.non_negative("weight_decay", o.weight_decay);
}
std::vector<Tensor> adam_moments(const Tensor& param);
struct BiasCorrections {
  double first, second;  // 1 - beta1^t, 1 - beta2^t
};
BiasCorrections bias_corrections(std::pair<double, double> betas, std::int64_t t);

// The options bookkeeping of an algorithm whose options struct is Options (with an lr).
template <typename OptionsT>
class AlgorithmWith : public Algorithm {
 public:
  using Options = OptionsT;
  using OptionsFn = std::function<Options(const std::string&)>;

  explicit AlgorithmWith(OptionsFn options_for) : options_for_(std::move(options_for)) {}

  // Throws ValueError naming the optimizer, the option, `where` and the value.
  virtual void check(const Options& o, const std::string& where) const = 0;

  std::size_t add(const std::string& param) final {
    resolved_.push_back(resolve(param));
    return resolved_.size() - 1;
  }
  double base_lr_for(const std::string& param) const final { return resolve(param).lr; }
  double base_lr(std::size_t options) const final { return resolved_[options].lr; }

 protected:
  const Options& options(std::size_t index) const { return resolved_[index]; }

 private:
  Options resolve(const std::string& param) const {
    Options o = options_for_(param);
    check(o, "parameter '" + param + "'");
    return o;
  }

  OptionsFn options_for_;
  std::vector<Options> resolved_;
};

// One step's update over fixed parameters and gradients: the checks done, the state made and
// the slots' pointers set once by OptimizerImpl::prepare; issue() applies it (the step
// counts, the learning rate and the scalars computed afresh) as often as a compiled step
// replays it.
class PreparedUpdate {
 public:
  void issue();
  // The memory issue() writes: every parameter and state buffer it updates.
  std::vector<const void*> written() const;
  // The memory issue() reads besides: the gradients.
  std::vector<const void*> read() const;

 private:
  friend class OptimizerImpl;
  struct Group {
    DType dtype;
    Device device;
    std::vector<kernels::OptimSlot> slots;
  };
  struct Updated {
    ParamState* state;
    std::size_t group, slot;  // group == npos: an empty parameter (counted, not launched)
  };
  OptimizerImpl* owner_ = nullptr;
  std::vector<ParamState*> listed_;
  std::vector<Updated> updated_;
  std::vector<Group> groups_;
  std::vector<Tensor> grads_;  // the contiguous gradients the slots read
};

class OptimizerImpl {
 public:
  explicit OptimizerImpl(std::unique_ptr<Algorithm> algorithm) : algorithm_(std::move(algorithm)) {}

  void step(const std::vector<NamedTensor>& params);
  // step() in two halves: every check and the state of new parameters, then the update.
  PreparedUpdate prepare(const std::vector<NamedTensor>& params);
  // The same into `u`, whose vectors are reused.
  void prepare_into(const std::vector<NamedTensor>& params, PreparedUpdate& u);
  void set_schedule(optim::LRSchedule schedule) {
    schedule_ = std::move(schedule);
    epoch_ = 0;
  }
  void schedule_step() { ++epoch_; }
  std::int64_t epoch() const { return epoch_; }
  double lr(const std::string& name) const;
  std::int64_t step_count(const std::string& name) const;
  const char* name() const { return algorithm_->name(); }
  // Bumped by load(): updates prepared before it point at replaced state.
  std::int64_t generation() const { return generation_; }
  // The whole state as a safetensors file, and back (optim_state.cpp).
  void save(const std::string& path) const;
  void load(const std::string& path, Device device);

 private:
  friend class PreparedUpdate;
  double effective_lr(const ParamState& s) const;
  // A parameter a step updates, after the checks.
  struct Pending {
    ParamState* state;
    const Tensor* param;
    Tensor grad;  // contiguous, of the parameter's dtype
  };

  std::int64_t generation_ = 0;
  std::unique_ptr<Algorithm> algorithm_;
  std::unordered_map<std::string, ParamState> states_;
  optim::LRSchedule schedule_;
  std::int64_t epoch_ = 0;
  // step()'s update and list of pending parameters, kept for their capacity.
  PreparedUpdate scratch_;
  std::vector<Pending> pending_;
};

// The impl of an optimizer with one options struct for every parameter (checked now), or
// with a callable giving each parameter's options (checked as each name is first seen).
template <typename Algo>
std::unique_ptr<OptimizerImpl> make_optimizer(const typename Algo::Options& options) {
  auto algorithm = std::make_unique<Algo>([options](const std::string&) { return options; });
  algorithm->check(options, "every parameter");
  return std::make_unique<OptimizerImpl>(std::move(algorithm));
}

template <typename Algo>
std::unique_ptr<OptimizerImpl> make_optimizer(typename Algo::OptionsFn options_for) {
  const bool empty = options_for == nullptr;
  auto algorithm = std::make_unique<Algo>(std::move(options_for));
  EMBER_CHECK(!empty, algorithm->name(), ": the callable giving each parameter's options is empty");
  return std::make_unique<OptimizerImpl>(std::move(algorithm));
}

}  // namespace ember::detail
