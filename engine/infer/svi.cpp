// The SVI loop: a step (ELBO gradients, the finite check's verdict, the optimizer update) and
// run() with its progress display.
#include "ember/svi.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "ember/ops.hpp"
#include "engine/compile/plan.hpp"
#include "engine/infer/elbo_util.hpp"
#include "engine/internal.hpp"
#include "engine/optim/optim_impl.hpp"
#include "engine/profile_util.hpp"

namespace ember {

double LossValue::value() const {
  if (has_value_) return value_;
  EMBER_CHECK(tensor_.defined(), "LossValue: no loss (default-constructed)");
  return tensor_.item();
}

Tensor LossValue::tensor() const {
  return has_value_ ? scalar_tensor(value_, TensorOptions{}.with_dtype(kFloat64)) : tensor_;
}

namespace detail {

SVICore::SVICore(std::shared_ptr<optim::Optimizer> optimizer, std::shared_ptr<ELBO> loss,
                 SVIOptions options)
    : optimizer_(std::move(optimizer)), loss_(std::move(loss)), options_(options) {
  if (options_.own_stream) {
    auto streams = std::make_shared<std::vector<Stream>>();
    for (int d = 0; d < cuda_device_count(); ++d) streams->emplace_back(Device::cuda(d));
    streams_ = std::move(streams);
  }
}

SVICore::Turn::Turn(const SVICore& svi)
    : store_(svi.options_.param_store != nullptr ? svi.options_.param_store->training_mutex()
                                                 : current_param_store().training_mutex()),
      svi_(*svi.mutex_) {
  ++detail::t_programs;  // compiled functions called by the model or guide run as they are
}

SVICore::Turn::~Turn() { --detail::t_programs; }

SVICore::Scope::Scope(const SVICore& svi) {
  if (svi.options_.param_store != nullptr) store_.emplace(*svi.options_.param_store);
  if (svi.streams_ != nullptr) {
    for (const Stream& s : *svi.streams_) streams_.push_back(std::make_unique<StreamGuard>(s));
  }
}

bool SVICore::check_finite(const ElboResult& r) {
  if (r.finite) return true;

  // The check failed: read the loss and name the culprit, the ELBO's site or else a param.
  std::ostringstream what;
  std::string culprit = r.nonfinite_site.name;
  const double loss = r.loss.item();
  what << "SVI step " << steps_ << " (" << loss_->name() << "): ";
  if (!std::isfinite(loss)) {
    what << "the loss is " << loss;
    if (!culprit.empty()) {
      what << "; the first site whose log-density is not finite is '" << culprit << "' "
           << r.nonfinite_site.details;
    }
  } else {
    what << "the loss is finite (" << loss << ") but a gradient is not";
  }
  for (std::size_t k = 0; culprit.empty() && k < r.params.size(); ++k) {
    const Tensor g = r.params[k].param.grad();
    const std::string bad = g.defined() ? first_nonfinite(g) : "";
    if (bad.empty()) continue;
    culprit = r.params[k].name;
    what << "; the first param whose gradient is not finite is '" << culprit << "': " << bad;
  }
  if (options_.skip_nonfinite) {
    ++skipped_;
    return false;
  }
  throw NonFiniteError(what.str(), culprit);
}

SVICore::~SVICore() = default;
SVICore::SVICore(SVICore&&) noexcept = default;

void StepInputs::check_visible(const char* where) const {
  if (opaque_ < 0) return;
  throw CompileError(concat(
      where, ": argument ", opaque_,
      " is of a type whose tensors a compiled program cannot see (it sees Tensor, "
      "std::vector<Tensor>, a DataLoader batch, numbers and strings); tensors inside it would "
      "be read as constants, the same at every replay. Pass the tensors themselves, or do not "
      "compile"));
}

LossValue SVICore::step(FunctionRef model, FunctionRef guide, const StepInputs* inputs) {
  const Turn turn(*this);
  return step_in_turn(model, guide, inputs);
}

LossValue SVICore::step_in_turn(FunctionRef model, FunctionRef guide, const StepInputs* inputs) {
  if (detail::recorder() != nullptr) {
    throw CompileError(
        "SVI.step: called while a compiled program is being recorded on this thread (a call of "
        "an ember::compile'd function, or a model or guide of a compiled SVI step): a step "
        "updates the parameters, which a replay of that program would not do. Step outside "
        "compiled functions, models and guides");
  }
  if (inputs != nullptr && compile_) {
    inputs->check_visible("SVI.compile");
    return compiled_step(model, guide, *inputs);
  }
  return eager_step(model, guide);
}

LossValue SVICore::eager_step(FunctionRef model, FunctionRef guide) {
  const Scope scope(*this);
  ElboResult r = loss_->loss_and_grads(model, guide,
                                       options_.check_finite ? FiniteCheck::On : FiniteCheck::Off);
  bool update = true;
  try {
    update = !options_.check_finite || check_finite(r);
  } catch (...) {
    for (const auto& p : r.params) p.param.zero_grad();
    throw;
  }
  {
    PhaseClock clock(&PhaseTimes::update);
    if (update) optimizer_->step(r.params);
    for (const auto& p : r.params) p.param.zero_grad();
  }
  ++steps_;
  return LossValue(r.loss);
}

LossValue SVICore::evaluate_loss(FunctionRef model, FunctionRef guide, const StepInputs* inputs) {
  const Turn turn(*this);
  // Inside a recording (a compiled function's, another SVI's), evaluated eagerly so that the
  // recording sees its kernel calls, where a replay of this SVI's plan would go unseen.
  if (inputs != nullptr && compile_ && detail::recorder() == nullptr) {
    inputs->check_visible("SVI.compile");
    return compiled_evaluate(model, guide, *inputs);
  }
  const Scope scope(*this);
  return LossValue(loss_->loss(model, guide).loss);
}

// ------------------------------------------------------------ compiled steps ----
namespace {

// The loss of a replayed plan: on the CPU the number itself (no tensor made); on a device a
// copy of the plan's buffer, which the next replay overwrites.
LossValue replayed_loss(const Tensor& loss) {
  if (!loss.device().is_cpu()) return LossValue(loss.clone());
  return LossValue(loss.dtype() == kFloat32 ? double{*static_cast<const float*>(loss.data_ptr())}
                                            : *static_cast<const double*>(loss.data_ptr()));
}

}  // namespace

void StepInputs::add_tensor(const Tensor& t) {
  if (!t.defined()) {
    // An absent tensor (an optional argument): part of the key, not an input slot.
    mix(0x756e646566696e65ULL);
  } else {
    add_defined(t);
  }
  if (count_ < kInline) {
    inline_[count_] = t;
  } else {
    more_.push_back(t);
  }
  ++count_;
}

void StepInputs::add_defined(const Tensor& t) {
  mix(static_cast<std::uint64_t>(t.dtype()));
  mix(static_cast<std::uint64_t>(t.device().is_cpu() ? 0 : 1 + t.device().index()));
  mix(t.requires_grad() ? 1 : 0);
  mix(static_cast<std::uint64_t>(t.dim()));
  for (int d = 0; d < t.dim(); ++d) {
    mix(static_cast<std::uint64_t>(t.shape()[d]));
    mix(static_cast<std::uint64_t>(t.strides()[d]));
  }
  // Views of one storage (the same tensor passed twice, a batch's columns): which earlier
  // input's storage this one shares and where it lies in it. A plan reads such inputs
  // through one another's pointers, right only where they lie the same way.
  for (std::size_t j = 0; j < count_; ++j) {
    const Tensor& u = (*this)[j];
    if (!u.defined() || u.impl().storage != t.impl().storage) continue;
    mix(0x616c696173ULL + j);
    mix(static_cast<std::uint64_t>(static_cast<const unsigned char*>(t.data_ptr()) -
                                   static_cast<const unsigned char*>(u.data_ptr())));
    break;
  }
}

void SVICore::compile(const CompileOptions& opts) {
  EMBER_CHECK(opts.verify_every >= 0, "SVI.compile: verify_every must be >= 0 (0: never), got ",
              opts.verify_every);
  EMBER_CHECK(opts.max_plans >= 1, "SVI.compile: max_plans must be >= 1, got ", opts.max_plans);
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  compile_ = opts;
  while (plans_.size() > opts.max_plans) {
    plans_.erase(std::min_element(
        plans_.begin(), plans_.end(),
        [](const CachedPlan& a, const CachedPlan& b) { return a.last_used < b.last_used; }));
  }
}

CompileStats SVICore::compile_stats() const {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  CompileStats s = stats_;
  s.plans = plans_.size();
  s.retained_bytes = 0;
  for (const CachedPlan& c : plans_) s.retained_bytes += c.plan->retained_bytes();
  return s;
}

std::string SVICore::describe_plans() const {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  std::string out;
  for (const CachedPlan& c : plans_)
    out += c.plan->listing(c.train ? "step plan" : "evaluate_loss plan", c.key);
  return out;
}

Plan* SVICore::find_plan(const StepInputs& inputs, bool train) {
  const ParamStore& store = current_param_store();
  for (auto it = plans_.begin(); it != plans_.end(); ++it) {
    if (it->key != inputs.key() || it->train != train) continue;
    if (it->store != &store || it->store_version != store.version() ||
        it->optimizer_generation != optimizer_->impl_->generation()) {
      plans_.erase(it);  // recorded against parameters or state that are gone
      return nullptr;
    }
    it->last_used = ++uses_;
    stats_.calls_per_replay = it->plan->replayed_calls();
    return it->plan.get();
  }
  return nullptr;
}

void SVICore::keep_plan(const StepInputs& inputs, bool train, std::unique_ptr<Plan> plan,
                        std::uint64_t store_version) {
  if (plans_.size() >= compile_->max_plans) {
    auto oldest = plans_.begin();
    for (auto it = plans_.begin(); it != plans_.end(); ++it)
      if (it->last_used < oldest->last_used) oldest = it;
    plans_.erase(oldest);
  }
  stats_.calls_per_replay = plan->replayed_calls();
  plans_.push_back(CachedPlan{inputs.key(), train, std::move(plan), ++uses_, &current_param_store(),
                              store_version, optimizer_->impl_->generation()});
}

LossValue SVICore::compiled_step(FunctionRef model, FunctionRef guide, const StepInputs& inputs) {
  const Scope scope(*this);
  Plan* plan = find_plan(inputs, true);
  const std::int64_t every = compile_->verify_every;
  const bool verify = plan != nullptr && every > 0 && (steps_ + 1) % every == 0;
  Generator& gen = default_generator();

  if (plan != nullptr && !verify) {
    const std::uint64_t start = gen.offset();
    const bool finite = plan->replay(inputs, gen);
    note_replay(stats_, *plan);
    if (!finite && options_.check_finite) {
      // Not finite: the step runs again eagerly from the same draws, which names the site or
      // param at fault and throws or skips exactly as an eager step does. Nothing was updated.
      gen.set_offset(start);
      ++stats_.eager_steps;
      return eager_step(model, guide);
    }
    plan->accumulate_input_grads(inputs);
    plan->update()->issue();
    ++steps_;
    ++stats_.replays;
    return replayed_loss(plan->loss());
  }
  const ParamStore& current_store = current_param_store();
  const bool state_changed =
      last_store_ != nullptr &&
      (&current_store != last_store_ || current_store.version() != last_store_version_ ||
       optimizer_->impl_->generation() != last_optimizer_generation_);
  struct NoteState {  // what this step leaves, however it ends
    SVICore& core;
    const ParamStore& store;
    ~NoteState() {
      core.last_store_ = &store;
      core.last_store_version_ = store.version();
      core.last_optimizer_generation_ = core.optimizer_->impl_->generation();
    }
  } note_state{*this, current_store};
  if (plan == nullptr && (steps_ == 0 || state_changed)) {
    // The first step makes the parameters and the optimizer state: recorded, it would make
    // them again at every replay. So may the first after the parameters or the optimizer's
    // state changed (the store cleared, another store made current, a file loaded).
    ++stats_.eager_steps;
    return eager_step(model, guide);
  }

  // Record: an eager step through the recording backends.
  const auto started = std::chrono::steady_clock::now();
  const ParamStore& store = current_param_store();
  const std::uint64_t version = store.version();
  const std::int64_t generation = optimizer_->impl_->generation();
  auto fresh = std::make_unique<Plan>(*compile_);
  std::optional<Recorder> rec;
  rec.emplace(*fresh, inputs, gen);
  ElboResult r = loss_->loss_and_grads(model, guide,
                                       options_.check_finite ? FiniteCheck::On : FiniteCheck::Off);
  rec->finish();
  {
    // What the pass gave inputs that require grad, added as an eager step adds it.
    const PauseRecording added_after_each_replay;
    fresh->accumulate_input_grads(inputs);
  }
  bool update = true;
  try {
    const PauseRecording diagnosis_is_not_replayed;
    update = !options_.check_finite || check_finite(r);
  } catch (...) {
    for (const auto& p : r.params) p.param.zero_grad();
    throw;
  }
  if (update) {
    // Inside the recording: the gradients' conversions for the update are replayed too.
    auto prepared = std::make_unique<PreparedUpdate>(optimizer_->impl_->prepare(r.params));
    const std::vector<const void*> written = prepared->written();
    rec->hoist(written);
    // Read after a replay: the loss, and the gradients by the update.
    std::vector<const void*> live_out = prepared->read();
    live_out.push_back(r.loss.data_ptr());
    for (const void* g : fresh->input_grad_buffers()) live_out.push_back(g);
    rec->share_buffers(written, live_out);
    rec.reset();  // the update itself is issued, not recorded: a replay issues it afresh
    prepared->issue();
    fresh->set_update(std::move(prepared));
  }
  rec.reset();
  for (const auto& p : r.params) p.param.zero_grad();
  ++steps_;
  fresh->set_loss(r.loss);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  if (verify) {
    ++stats_.verifications;
    if (auto diff = plan->difference(*fresh)) {
      throw CompileError(concat("SVI.compile (verify_every = ", every, "): at step ", steps_ - 1,
                                " the program's structure differs from its compiled plan: ", *diff,
                                ". A compiled step must make the same kernel calls on the same "
                                "shapes at every step with the same input shapes; pass what "
                                "varies as an argument of step(), or do not compile"));
    }
  } else if (update && store.version() == version &&
             optimizer_->impl_->generation() == generation) {
    ++stats_.recordings;
    stats_.last_recording_seconds = seconds;
    keep_plan(inputs, true, std::move(fresh), version);
  } else {
    ++stats_.discarded;  // parameters were made while recording: record again next step
  }
  return replayed_loss(r.loss);  // the plan's buffer: the next replay overwrites it
}

LossValue SVICore::compiled_evaluate(FunctionRef model, FunctionRef guide,
                                     const StepInputs& inputs) {
  const Scope scope(*this);
  Generator& gen = default_generator();
  if (Plan* plan = find_plan(inputs, false)) {
    plan->replay(inputs, gen);
    note_replay(stats_, *plan);
    ++stats_.replays;
    return replayed_loss(plan->loss());
  }
  const ParamStore& store = current_param_store();
  const std::uint64_t version = store.version();
  auto fresh = std::make_unique<Plan>(*compile_);
  ElboResult r;
  {
    Recorder rec(*fresh, inputs, gen);
    r = loss_->loss(model, guide);
    rec.finish();
    rec.hoist({});
    const void* const loss = r.loss.data_ptr();
    rec.share_buffers({}, std::span<const void* const>(&loss, 1));
  }
  fresh->set_loss(r.loss);
  if (store.version() == version) {
    ++stats_.recordings;
    keep_plan(inputs, false, std::move(fresh), version);
  } else {
    ++stats_.discarded;
  }
  return replayed_loss(r.loss);
}

namespace {

std::string clock_str(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

RunResult SVICore::run(std::int64_t num_steps, const RunOptions& opts, FunctionRef model,
                       FunctionRef guide, const StepInputs* inputs) {
  EMBER_CHECK(num_steps >= 0, "SVI.run: num_steps must be nonnegative, got ", num_steps);
  using Clock = std::chrono::steady_clock;
  std::ostream& out = opts.out != nullptr ? *opts.out : std::cerr;
  Progress mode = opts.progress;
  if (mode == Progress::Auto) {
    mode = (opts.out == nullptr || opts.out == &std::cerr) && ::isatty(STDERR_FILENO)
               ? Progress::Bar
               : Progress::Lines;
  }
  const std::int64_t every =
      opts.print_every > 0 ? opts.print_every : std::max<std::int64_t>(1, num_steps / 10);

  RunResult result;
  result.losses.reserve(static_cast<std::size_t>(num_steps));
  // Each step takes its turn on its own: other threads' steps, and readers of the compile
  // state, may come in between (and the callback runs between turns).
  std::int64_t skipped = 0;
  auto step_once = [&] {
    const Turn turn(*this);
    const std::int64_t before = skipped_;
    LossValue loss = step_in_turn(model, guide, inputs);
    skipped += skipped_ - before;
    return loss;
  };
  const auto start = Clock::now();
  auto last_draw = start;
  std::vector<Tensor> pending;  // losses not read yet: read in batches, one sync each
  double smoothed = 0.0, weight = 0.0;
  auto add_loss = [&](double x) {
    result.losses.push_back(x);
    if (std::isfinite(x)) {
      smoothed = 0.98 * smoothed + 0.02 * x;
      weight = 0.98 * weight + 0.02;
    }
  };
  auto resolve = [&] {
    if (pending.empty()) return;
    const std::vector<double> v = pending.size() == 1
                                      ? std::vector<double>{pending[0].item()}
                                      : stack(pending).to(kFloat64).to_vector<double>();
    for (double x : v) add_loss(x);
    pending.clear();
  };
  auto report = [&](std::int64_t done, bool final) {
    resolve();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double rate = elapsed > 0 ? done / elapsed : 0.0;
    const double loss = weight > 0 ? smoothed / weight : NAN;
    if (mode == Progress::Bar) {
      const int width = 24;
      const int filled = num_steps > 0 ? static_cast<int>(width * done / num_steps) : width;
      std::ostringstream line;
      line << '\r' << std::setw(std::to_string(num_steps).size()) << done << '/' << num_steps
           << " [" << std::string(filled, '=') << (filled < width ? ">" : "")
           << std::string(std::max(0, width - filled - 1), ' ') << "] " << std::fixed
           << std::setprecision(1) << rate << " steps/s, ETA "
           << clock_str(rate > 0 ? (num_steps - done) / rate : NAN) << ", loss "
           << std::setprecision(4) << std::defaultfloat << loss << "   ";
      out << line.str() << (final ? "\n" : "") << std::flush;
    } else if (mode == Progress::Lines) {
      out << "step " << done << '/' << num_steps << "  loss " << std::setprecision(6) << loss
          << " (smoothed)  " << std::fixed << std::setprecision(1) << rate << " steps/s  elapsed "
          << clock_str(elapsed) << std::defaultfloat << '\n'
          << std::flush;
    }
  };

  for (std::int64_t i = 0; i < num_steps; ++i) {
    const LossValue loss = step_once();
    if (loss.is_number()) {
      resolve();
      add_loss(loss.value());
    } else {
      pending.push_back(loss.tensor());
    }
    ++result.steps;
    const auto now = Clock::now();
    const bool last = i + 1 == num_steps;
    bool reported = false;
    if (mode == Progress::Bar && (now - last_draw > std::chrono::milliseconds(100) || last)) {
      report(i + 1, last);
      last_draw = now;
      reported = true;
    } else if (mode == Progress::Lines && ((i + 1) % every == 0 || last)) {
      report(i + 1, last);
      reported = true;
    }
    if (opts.callback && !opts.callback(StepInfo{i, num_steps, loss})) {
      result.stopped_early = !last;
      // The final state, unless this step was just shown (a bar still needs its newline).
      if (mode == Progress::Bar && !last) {
        report(i + 1, true);
      } else if (mode == Progress::Lines && !reported) {
        report(i + 1, true);
      }
      break;
    }
  }
  resolve();
  result.skipped_steps = skipped;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace detail
}  // namespace ember
