// ember::compile: a function of tensors recorded once and replayed (docs/compile.md).
#include <chrono>
#include <sstream>

#include "ember/compile.hpp"
#include "ember/message.hpp"
#include "ember/param_store.hpp"
#include "ember/random.hpp"
#include "engine/compile/plan.hpp"
#include "engine/internal.hpp"

namespace ember::detail {

struct FunctionCore::Cached {
  std::uint64_t key;
  std::unique_ptr<Plan> plan;
  std::int64_t last_used;
  const ParamStore* store;
  std::uint64_t store_version;
};

namespace {

// Fresh tensors holding a replay's results: the plan's buffers are overwritten by the next.
std::vector<Tensor> copies(const std::vector<Tensor>& outputs) {
  std::vector<Tensor> out;
  out.reserve(outputs.size());
  for (const Tensor& t : outputs) out.push_back(t.clone());
  return out;
}

void check_outputs(const std::vector<Tensor>& outputs) {
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    EMBER_CHECK(outputs[k].defined(), "ember::compile: output ", k,
                " of the function is an undefined Tensor");
  }
}

// An eager call's results, each a tensor of its own as a replay's are: an output whose memory
// something else holds too (an input, a tensor the function captured, another output) is
// copied.
std::vector<Tensor> own(std::vector<Tensor> outputs) {
  for (Tensor& t : outputs)
    if (t.impl_ptr().use_count() > 1 || t.impl().storage.use_count() > 1) t = t.clone();
  return outputs;
}

}  // namespace

FunctionCore::FunctionCore(const CompileOptions& opts) : options_(opts) {
  EMBER_CHECK(opts.verify_every >= 0, "ember::compile: verify_every must be >= 0 (0: never), got ",
              opts.verify_every);
  EMBER_CHECK(opts.max_plans >= 1, "ember::compile: max_plans must be >= 1, got ", opts.max_plans);
}

FunctionCore::~FunctionCore() = default;

std::vector<Tensor> FunctionCore::call(FunctionRefOf<std::vector<Tensor>> fn,
                                       const StepInputs& inputs) {
  inputs.check_visible("ember::compile");
  if (t_programs > 0) {
    // Inside another compiled program on this thread (a compiled function, this one
    // included, or an SVI step; every recording runs inside one): run as it is, as part of
    // that program, with gradients where it has them (a model's or guide's). A recording
    // around the call then records its kernel calls into its own plan, where a replay of ours
    // would go unseen, and a plan replaying it never calls it again.
    inline_calls_.fetch_add(1, std::memory_order_relaxed);
    std::vector<Tensor> out = fn();
    check_outputs(out);
    return out;
  }
  if (!handler_stack_empty()) {
    // Under handlers (condition, trace, ...): they act on the sites the function sends, which
    // a replay does not send, and a plan recorded under them would keep what they did. The
    // function runs as it is, neither recorded nor replayed.
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.eager_steps;
    }
    const NoGradGuard no_grad;
    std::vector<Tensor> out = fn();
    check_outputs(out);
    return own(std::move(out));
  }
  const ProgramScope program;
  const std::lock_guard<std::mutex> lock(mutex_);
  const NoGradGuard no_grad;
  const ParamStore& store = current_param_store();
  Generator& gen = default_generator();
  ++calls_;
  Plan* plan = nullptr;
  // One plan per input key and param store: threads (tenants) calling with stores of their
  // own each replay theirs.
  for (auto it = plans_.begin(); it != plans_.end(); ++it) {
    if (it->key != inputs.key() || it->store != &store) continue;
    if (it->store_version != store.version()) {
      plans_.erase(it);  // recorded against parameters that are gone
      break;
    }
    it->last_used = ++uses_;
    plan = it->plan.get();
    break;
  }
  const std::int64_t every = options_.verify_every;
  const bool verify = plan != nullptr && every > 0 && calls_ % every == 0;
  if (plan != nullptr && !verify) {
    plan->replay(inputs, gen);
    ++stats_.replays;
    note_replay(stats_, *plan);
    return copies(plan->outputs());
  }
  if (plan == nullptr && stats_.eager_steps == 0) {
    // The first call makes what the function makes once (parameters, caches).
    ++stats_.eager_steps;
    std::vector<Tensor> out = fn();
    check_outputs(out);
    return own(std::move(out));
  }

  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t version = store.version();
  auto fresh = std::make_unique<Plan>(options_);
  std::vector<Tensor> out;
  {
    Recorder rec(*fresh, inputs, gen);
    out = fn();
    check_outputs(out);
    for (Tensor& t : out) {
      // An output that is (a view of) an input: a recorded copy, which a replay makes from
      // that call's input.
      for (std::size_t k = 0; k < inputs.size(); ++k)
        if (inputs[k].defined() && t.impl().storage == inputs[k].impl().storage) t = t.clone();
      order_use(t);  // kept alive by the plan
    }
    rec.finish();
    rec.hoist({});
    std::vector<const void*> live_out;
    for (const Tensor& t : out) live_out.push_back(t.data_ptr());
    rec.share_buffers({}, live_out);
  }
  fresh->set_outputs(out);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (verify) {
    ++stats_.verifications;
    if (auto diff = plan->difference(*fresh)) {
      throw CompileError(concat("ember::compile (verify_every = ", every, "): at call ", calls_,
                                " the function's structure differs from its compiled plan: ", *diff,
                                ". A compiled function must make the same kernel calls on the "
                                "same shapes at every call with the same input shapes; pass what "
                                "varies as an argument, or do not compile"));
    }
  } else if (store.version() == version) {
    if (plans_.size() >= options_.max_plans) {
      auto oldest = plans_.begin();
      for (auto it = plans_.begin(); it != plans_.end(); ++it)
        if (it->last_used < oldest->last_used) oldest = it;
      plans_.erase(oldest);
    }
    ++stats_.recordings;
    stats_.last_recording_seconds = seconds;
    stats_.calls_per_replay = fresh->replayed_calls();
    plans_.push_back(Cached{inputs.key(), std::move(fresh), ++uses_, &store, version});
  } else {
    ++stats_.discarded;
  }
  return copies(out);  // the recorded outputs are the plan's buffers now
}

CompileStats FunctionCore::stats() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  CompileStats s = stats_;
  s.inline_calls = inline_calls_.load(std::memory_order_relaxed);
  s.plans = plans_.size();
  s.retained_bytes = 0;
  for (const Cached& c : plans_) s.retained_bytes += c.plan->retained_bytes();
  return s;
}

std::string FunctionCore::describe_plans() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const Cached& c : plans_) out += c.plan->listing("plan", c.key);
  return out;
}

}  // namespace ember::detail
