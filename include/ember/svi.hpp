// Stochastic variational inference: SVI(model, guide, optimizer, loss) fits the guide's
// parameters by gradient steps on an ELBO estimator. Model and guide are any callables
// taking the same arguments, which step(args...) passes to both.
//
//   SVI svi(model, guide, optim::Adam({.lr = 5e-4}), Trace_ELBO());
//   for (int i = 0; i < 5000; ++i) svi.step(data);
//   RunResult r = svi.run(5000, data);   // with a progress display and the loss history
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/compile.hpp"
#include "ember/error.hpp"
#include "ember/infer.hpp"
#include "ember/optim.hpp"
#include "ember/param_store.hpp"
#include "ember/stream.hpp"

namespace ember {

// A loss as a 0-d tensor, read (and so synchronized with its device) only when asked; or,
// from a compiled CPU step, the number itself.
class LossValue {
 public:
  LossValue() = default;
  explicit LossValue(Tensor t) : tensor_(std::move(t)) {}
  explicit LossValue(double value) : value_(value), has_value_(true) {}
  double value() const;
  operator double() const { return value(); }  // NOLINT: reads like a number by design
  // The loss as a 0-d tensor (a float64 CPU tensor made now where the loss is a number).
  Tensor tensor() const;
  // True when value() needs no read of a device.
  bool is_number() const { return has_value_; }

 private:
  Tensor tensor_;
  double value_ = 0.0;
  bool has_value_ = false;
};

// A step whose loss or gradient was not finite; the message names the first site at fault.
class NonFiniteError : public ValueError {
 public:
  NonFiniteError(const std::string& what, std::string site)
      : ValueError(what), site_(std::move(site)) {}
  const std::string& site() const { return site_; }

 private:
  std::string site_;
};

struct SVIOptions {
  // After each step, check the loss and every gradient in one pass (one device sync per step
  // on a GPU, plus one per further sequential particle); a non-finite one throws
  // NonFiniteError naming the first site whose log-density, or else the first param whose
  // gradient, is not finite. Off: nothing is checked and nothing syncs inside a step.
  bool check_finite = true;
  // With check_finite: skip such a step's update (and count it) instead of throwing.
  bool skip_nonfinite = false;
  // The store param() uses while model and guide run; null: the calling thread's current one.
  ParamStore* param_store = nullptr;
  // Queue every step's GPU work (guide, model, backward, update) on streams of this SVI's
  // own, one per device, so that fits in different threads of a service overlap on the GPU
  // and reading one fit's loss waits for that fit's work only. Results do not change: Ember
  // orders every use of a tensor shared with other streams. No effect on the CPU.
  bool own_stream = false;
};

// What run() tells the callback after each step.
struct StepInfo {
  std::int64_t step;  // 0-based
  std::int64_t num_steps;
  LossValue loss;
};

enum class Progress { Auto, Bar, Lines, None };

struct RunOptions {
  // Called after every step; return false to stop early (to checkpoint, or on convergence).
  std::function<bool(const StepInfo&)> callback;
  // Auto: a progress bar (steps/s, ETA, smoothed loss) when the output is a terminal,
  // periodic plain lines otherwise.
  Progress progress = Progress::Auto;
  std::ostream* out = nullptr;   // default std::cerr
  std::int64_t print_every = 0;  // Lines: every this many steps (0: a tenth of the run)
};

struct RunResult {
  std::vector<double> losses;  // one per step taken
  std::int64_t steps = 0;
  bool stopped_early = false;
  std::int64_t skipped_steps = 0;
  double seconds = 0.0;
};

namespace detail {

class Plan;

template <typename... Args>
inline constexpr bool starts_with_run_options = false;
template <typename First, typename... Rest>
inline constexpr bool starts_with_run_options<First, Rest...> =
    std::is_same_v<std::remove_cvref_t<First>, RunOptions>;

// The part of SVI that does not depend on the programs' types.
class SVICore {
 public:
  SVICore(std::shared_ptr<optim::Optimizer> optimizer, std::shared_ptr<ELBO> loss,
          SVIOptions options);
  ~SVICore();
  SVICore(SVICore&&) noexcept;
  // `inputs`: the step's arguments, for a compiled step (null when not compiled).
  LossValue step(FunctionRef model, FunctionRef guide, const StepInputs* inputs = nullptr);
  LossValue evaluate_loss(FunctionRef model, FunctionRef guide, const StepInputs* inputs = nullptr);
  RunResult run(std::int64_t num_steps, const RunOptions& opts, FunctionRef model,
                FunctionRef guide, const StepInputs* inputs = nullptr);

  void compile(const CompileOptions& opts);
  bool compiled() const { return compile_.has_value(); }
  CompileStats compile_stats() const;
  std::string describe_plans() const;

  optim::Optimizer& optimizer() { return *optimizer_; }
  ELBO& loss() { return *loss_; }
  std::int64_t num_steps_taken() const { return steps_; }
  std::int64_t skipped_steps() const { return skipped_; }

 private:
  // step() once its Turn is held (run() holds one for each of its steps).
  LossValue step_in_turn(FunctionRef model, FunctionRef guide, const StepInputs* inputs);
  // When the ELBO's check found the loss or a gradient not finite, throws NonFiniteError
  // naming the culprit (or counts a skip); returns whether the update may go ahead.
  bool check_finite(const ElboResult& r);
  LossValue eager_step(FunctionRef model, FunctionRef guide);
  LossValue compiled_step(FunctionRef model, FunctionRef guide, const StepInputs& inputs);
  LossValue compiled_evaluate(FunctionRef model, FunctionRef guide, const StepInputs& inputs);
  // The cached plan for `inputs` (of a step when `train`, else of evaluate_loss), or null.
  Plan* find_plan(const StepInputs& inputs, bool train);
  void keep_plan(const StepInputs& inputs, bool train, std::unique_ptr<Plan> plan,
                 std::uint64_t store_version);

  // While alive: the param store this SVI's steps use (its training_mutex), then this SVI
  // (mutex_), held by one step or loss evaluation.
  class Turn {
   public:
    explicit Turn(const SVICore& svi);
    ~Turn();
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;

   private:
    std::lock_guard<std::recursive_mutex> store_, svi_;
  };

  // While alive: the options' param store and (own_stream) this SVI's streams.
  class Scope {
   public:
    explicit Scope(const SVICore& svi);

   private:
    std::optional<ParamStoreScope> store_;
    std::vector<std::unique_ptr<StreamGuard>> streams_;
  };

  // Held by step(), evaluate_loss() and each step of run() (Turn), compile() and the
  // compile state's readers: one SVI serves one thread at a time (its ELBO, optimizer state
  // and plans are its own), other threads wait; the thread holding it may enter again.
  std::unique_ptr<std::recursive_mutex> mutex_ = std::make_unique<std::recursive_mutex>();
  std::shared_ptr<optim::Optimizer> optimizer_;
  std::shared_ptr<ELBO> loss_;
  SVIOptions options_;
  std::shared_ptr<const std::vector<Stream>> streams_;  // own_stream: one per CUDA device
  std::int64_t steps_ = 0;
  std::int64_t skipped_ = 0;

  // A plan and what it was recorded against: it is dropped when the param store it read
  // changed (a parameter added, replaced or loaded) or the optimizer's state was loaded.
  struct CachedPlan {
    std::uint64_t key;
    bool train;
    std::unique_ptr<Plan> plan;
    std::int64_t last_used;
    const ParamStore* store;
    std::uint64_t store_version;
    std::int64_t optimizer_generation;
  };
  std::optional<CompileOptions> compile_;
  std::vector<CachedPlan> plans_;
  CompileStats stats_;
  std::int64_t uses_ = 0;
  // The param store and the state the last compiled step left (no store before the first):
  // a step that finds them changed (parameters cleared, say) runs eagerly, since it may make
  // parameters again.
  const ParamStore* last_store_ = nullptr;
  std::uint64_t last_store_version_ = 0;
  std::int64_t last_optimizer_generation_ = 0;
};

}  // namespace detail

template <typename Model, typename Guide>
class SVI {
 public:
  template <typename Opt, typename Loss>
  requires std::derived_from<Opt, optim::Optimizer> && std::derived_from<Loss, ELBO> SVI(
      Model model, Guide guide, Opt optimizer, Loss loss, SVIOptions options = {})
      : model_(std::move(model)),
        guide_(std::move(guide)),
        core_(std::make_shared<Opt>(std::move(optimizer)), std::make_shared<Loss>(std::move(loss)),
              options) {}

  // One gradient step; the loss of the step (an estimate of minus the ELBO).
  template <typename... Args>
  LossValue step(Args&&... args) {
    auto model = [&] { model_(args...); };
    auto guide = [&] { guide_(args...); };
    if (!core_.compiled()) return core_.step(model, guide);
    const detail::StepInputs inputs = detail::StepInputs::of(args...);
    return core_.step(model, guide, &inputs);
  }
  // The loss without a gradient step.
  template <typename... Args>
  LossValue evaluate_loss(Args&&... args) {
    auto model = [&] { model_(args...); };
    auto guide = [&] { guide_(args...); };
    if (!core_.compiled()) return core_.evaluate_loss(model, guide);
    const detail::StepInputs inputs = detail::StepInputs::of(args...);
    return core_.evaluate_loss(model, guide, &inputs);
  }
  // num_steps steps with a progress display, the loss history returned.
  template <typename... Args>
  requires(!detail::starts_with_run_options<Args...>) RunResult
      run(std::int64_t num_steps, Args&&... args) {
    return run(num_steps, RunOptions{}, std::forward<Args>(args)...);
  }
  template <typename... Args>
  RunResult run(std::int64_t num_steps, const RunOptions& opts, Args&&... args) {
    auto model = [&] { model_(args...); };
    auto guide = [&] { guide_(args...); };
    if (!core_.compiled()) return core_.run(num_steps, opts, model, guide);
    const detail::StepInputs inputs = detail::StepInputs::of(args...);
    return core_.run(num_steps, opts, model, guide, &inputs);
  }

  // From now on, steps (and evaluate_loss) whose structure was seen before replay a plan of
  // kernel calls recorded from an eager step, instead of running model and guide
  // (docs/compile.md states the contract: the structure of model and guide may depend on the
  // shapes of the tensors and the values of the numbers passed to step(), not on the values
  // of tensors). Tensors passed to step() are the plan's inputs, rebound at every step;
  // tensors the programs capture otherwise are constants of the plan.
  SVI& compile(const CompileOptions& opts = {}) {
    core_.compile(opts);
    return *this;
  }
  bool compiled() const { return core_.compiled(); }
  CompileStats compile_stats() const { return core_.compile_stats(); }
  // The cached plans, one line per recorded call ("  12 (bound) binary Add float32 (1000),
  // ..."): "(hoisted)" marks a call that runs only when recorded, "(bound)" one that ran bound
  // at the last replay on the CPU, "(bound, fused N)" one that ran in the N-th fused run of
  // calls (docs/compile.md, "Recording and replay" and "Fusion").
  std::string describe_plans() const { return core_.describe_plans(); }

  optim::Optimizer& optimizer() { return core_.optimizer(); }
  ELBO& loss() { return core_.loss(); }
  std::int64_t num_steps_taken() const { return core_.num_steps_taken(); }
  std::int64_t skipped_steps() const { return core_.skipped_steps(); }

 private:
  Model model_;
  Guide guide_;
  detail::SVICore core_;
};

}  // namespace ember
