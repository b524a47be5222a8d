// Optimizers: in-place updates of parameters from their accumulated gradients, as Pyro's
// wrapped PyTorch optimizers do it, with learning-rate schedules. State (momentum, Adam's
// moments, step counts) is kept per parameter name and made the first time a name is seen,
// so parameters created during a run join automatically. See docs/optim.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::detail {
class OptimizerImpl;
class SVICore;
}  // namespace ember::detail

namespace ember::optim {

// The parameter list of step() (ember/tensor.hpp); the name optim::NamedTensor stays valid.
using ember::NamedTensor;

// ------------------------------------------------------------------ options ----
// Aggregates with PyTorch's (and Pyro's) defaults, for designated initializers:
// Adam(AdamOptions{.lr = 0.01}).

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0
  double weight_decay = 0.0;
};

struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
};

struct ClippedAdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
  double clip_norm = 10.0;  // each gradient element is clamped to [-clip_norm, clip_norm]
  double lrd = 1.0;         // the lr is multiplied by lrd at every step
};

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
};

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

// -------------------------------------------------------- learning-rate schedules ----
// torch.optim.lr_scheduler's closed forms; `epoch` is the number of schedule_step() calls.

// lr = base_lr * gamma^floor(epoch / step_size).
struct StepLR {
  std::int64_t step_size = 1;
  double gamma = 0.1;
};

// lr = base_lr * gamma^epoch.
struct ExponentialLR {
  double gamma = 1.0;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2.
struct CosineAnnealingLR {
  std::int64_t t_max = 1;
  double eta_min = 0.0;
};

// lr = base_lr * factor(epoch).
struct LambdaLR {
  std::function<double(std::int64_t epoch)> factor;
};

// One of the schedules above as a value; the default keeps every lr at its base value.
// Converting from a schedule checks its arguments (ValueError naming the schedule).
class LRSchedule {
 public:
  LRSchedule();
  // Implicit, so that set_schedule(StepLR{...}) reads as the schedule it sets.
  LRSchedule(StepLR s);
  LRSchedule(ExponentialLR s);
  LRSchedule(CosineAnnealingLR s);
  LRSchedule(LambdaLR s);

  // The learning rate at `epoch` of a parameter whose base lr is base_lr.
  double lr(double base_lr, std::int64_t epoch) const { return fn_(base_lr, epoch); }

 private:
  std::function<double(double, std::int64_t)> fn_;
};

// ---------------------------------------------------------------- optimizers ----

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(Optimizer&&) noexcept;
  Optimizer& operator=(Optimizer&&) noexcept;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every listed parameter that has a gradient, in place; parameters are
  // grouped by (dtype, device) and each group is one fused kernel launch. Does not zero the
  // gradients. Throws ValueError for a parameter that is not a contiguous floating leaf, a
  // name listed twice, or a name whose shape, dtype or device changed since its state was
  // made.
  void step(const std::vector<NamedTensor>& params);

  // Replaces the schedule and restarts it at epoch 0.
  void set_schedule(LRSchedule schedule);
  // Advances the schedule by one epoch (as torch's scheduler.step()).
  void schedule_step();
  std::int64_t epoch() const;

  // The effective lr of a parameter now: its base lr under the schedule at the current
  // epoch (times lrd^steps for ClippedAdam: the lr its last step used). A name not seen yet
  // gets the lr its options would give it.
  double lr(const std::string& name) const;
  // How many updates the parameter has had (0 for a name not seen yet).
  std::int64_t step_count(const std::string& name) const;
  // "SGD", "Adam", "ClippedAdam", "Adagrad" or "RMSprop".
  const char* name() const;

  // Saves the state of every parameter seen (its buffers, its step and update counts) and
  // the schedule's epoch as a safetensors file, written atomically. Buffers are named
  // "<param>.<buffer>" with PyTorch's names (momentum_buffer, exp_avg, exp_avg_sq, sum,
  // square_avg, grad_avg). Saved beside the param store (and with the generator's seed and
  // offset), a fit resumed from the files continues bit for bit as if it had not stopped.
  void save(const std::string& path) const;
  // Replaces the whole state with the file's, its buffers placed on `device` (the
  // parameters' device). The file must come from save of the same optimizer class, and
  // options callables are asked for the names it holds. A missing, corrupt or mismatched
  // file raises IoError naming the file and the fault, and leaves the state as it was. The
  // schedule itself is configuration, not state: set it again, then load (load restores
  // its epoch).
  void load(const std::string& path, Device device = Device::cpu());

 protected:
  explicit Optimizer(std::unique_ptr<detail::OptimizerImpl> impl);

 private:
  friend class detail::SVICore;  // a compiled step prepares the update once and reissues it
  std::unique_ptr<detail::OptimizerImpl> impl_;
};

// Each optimizer takes one options struct for every parameter, or a callable giving each
// parameter's options from its name (as Pyro's optimizers accept a callable). Options are
// checked when the optimizer is made (one struct) or when a name is first seen (callable):
// a bad value throws ValueError naming the optimizer, the option, the parameter and the value.

// PyTorch's SGD, with momentum, dampening, Nesterov momentum and L2 weight decay.
class SGD final : public Optimizer {
 public:
  explicit SGD(const SGDOptions& options = {});
  explicit SGD(std::function<SGDOptions(const std::string& param_name)> options_for);
};

// PyTorch's Adam: bias-corrected moments, L2 weight decay added to the gradient.
class Adam final : public Optimizer {
 public:
  explicit Adam(const AdamOptions& options = {});
  explicit Adam(std::function<AdamOptions(const std::string& param_name)> options_for);
};

// Pyro's ClippedAdam: Adam with each gradient element clipped to [-clip_norm, clip_norm]
// and the lr multiplied by lrd at every step.
class ClippedAdam final : public Optimizer {
 public:
  explicit ClippedAdam(const ClippedAdamOptions& options = {});
  explicit ClippedAdam(
      std::function<ClippedAdamOptions(const std::string& param_name)> options_for);
};

// PyTorch's Adagrad.
class Adagrad final : public Optimizer {
 public:
  explicit Adagrad(const AdagradOptions& options = {});
  explicit Adagrad(std::function<AdagradOptions(const std::string& param_name)> options_for);
};

// PyTorch's RMSprop, plain or centered, with optional momentum.
class RMSprop final : public Optimizer {
 public:
  explicit RMSprop(const RMSpropOptions& options = {});
  explicit RMSprop(std::function<RMSpropOptions(const std::string& param_name)> options_for);
};

}  // namespace ember::optim
