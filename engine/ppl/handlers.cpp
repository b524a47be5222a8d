// The effect handlers' message hooks.
#include "ember/handlers.hpp"

#include <algorithm>

#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::handlers {

void TraceHandler::process_message(Message& msg) {
  // A plate entered again in the same run (two blocks over the same data) takes the
  // indices it drew the first time, so both blocks see one mini-batch.
  if (msg.type != SiteType::Subsample || msg.value.defined()) return;
  const Site* first = trace_.find(msg.name);
  if (first != nullptr && first->type == SiteType::Subsample &&
      first->plate_size == msg.plate_size && first->subsample_size == msg.subsample_size) {
    msg.value = first->value;
    msg.done = true;
  }
}

void TraceHandler::postprocess_message(Message& msg) { trace_.add(Site(msg)); }

void ReplayHandler::process_message(Message& msg) {
  if (msg.type == SiteType::Param) return;
  const Site* recorded = trace_->find(msg.name);
  if (recorded == nullptr) return;
  if (msg.type == SiteType::Subsample) {
    EMBER_CHECK(recorded->type == SiteType::Subsample, "replay: plate '", msg.name, "' meets a ",
                site_type_name(recorded->type), " site of that name in the trace");
    EMBER_CHECK(recorded->plate_size == msg.plate_size, "replay: plate '", msg.name, "' has size ",
                msg.plate_size, " here but ", recorded->plate_size, " in the replayed trace");
    msg.value = recorded->value;
    msg.done = true;
    return;
  }
  if (msg.is_observed) return;
  EMBER_CHECK(recorded->type == SiteType::Sample && !recorded->is_observed, "replay: site '",
              msg.name, "' is latent here but ",
              recorded->type == SiteType::Sample ? "observed" : site_type_name(recorded->type),
              " in the replayed trace");
  msg.value = recorded->value;
  msg.infer = recorded->infer;
  msg.done = true;
}

void ConditionHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample) return;
  auto it = data_.find(msg.name);
  if (it == data_.end()) return;
  msg.value = it->second;
  msg.is_observed = it->second.defined();
}

void DoHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample || msg.intervener == this) return;
  auto it = data_.find(msg.name);
  if (it == data_.end() || !it->second.defined()) return;
  // The site itself is still sampled, through the whole stack, under its own name ...
  // Handlers inside this one have already seen msg; reset what they changed (a site
  // starts with scale 1, no mask, no plates) so they apply once.
  Message original = msg;
  original.intervener = this;
  original.cond_indep_stack.clear();
  original.scale = 1.0;
  original.mask = Tensor();
  original.markov_step = -1;
  original.markov_history = 0;
  apply_stack(original);
  // ... and the program goes on with the intervention, which no handler outside records.
  msg.name += "__CONDITIONED";
  msg.value = it->second;
  msg.is_observed = false;
  msg.intervener = this;
  msg.stop = true;
  msg.done = true;
}

BlockHandler::BlockHandler(BlockOptions opts) : opts_(std::move(opts)) {
  const bool hide_given = !opts_.hide.empty() || !opts_.hide_types.empty();
  const bool expose_given = !opts_.expose.empty() || !opts_.expose_types.empty();
  const int kinds = (opts_.hide_fn ? 1 : 0) + (opts_.expose_fn ? 1 : 0) + (hide_given ? 1 : 0) +
                    (expose_given ? 1 : 0);
  EMBER_CHECK(kinds <= 1, "block: give one of hide_fn, expose_fn, hide/hide_types or ",
              "expose/expose_types, not several");
  if (opts_.hide_fn) {
    mode_ = Mode::Fn;
  } else if (opts_.expose_fn) {
    mode_ = Mode::ExposeFn;
  } else if (hide_given) {
    mode_ = Mode::Hide;
    names_.insert(opts_.hide.begin(), opts_.hide.end());
  } else if (expose_given) {
    mode_ = Mode::Expose;
    names_.insert(opts_.expose.begin(), opts_.expose.end());
  } else {
    mode_ = Mode::All;
  }
}

bool BlockHandler::hides(const Message& msg) const {
  auto listed = [&](const std::vector<SiteType>& types) {
    return names_.count(msg.name) != 0 ||
           std::find(types.begin(), types.end(), msg.type) != types.end();
  };
  switch (mode_) {
    case Mode::Fn:
      return opts_.hide_fn(msg);
    case Mode::ExposeFn:
      return !opts_.expose_fn(msg);
    case Mode::Hide:
      return listed(opts_.hide_types);
    case Mode::Expose:
      return !listed(opts_.expose_types);
    case Mode::All:
      return true;
  }
  return true;
}

void BlockHandler::process_message(Message& msg) {
  if (hides(msg)) msg.stop = true;
}

ScaleHandler::ScaleHandler(double factor) : factor_(factor) {
  EMBER_CHECK(factor > 0.0, "scale: the factor must be positive, got ", factor);
}

void ScaleHandler::process_message(Message& msg) {
  if (msg.type == SiteType::Sample) msg.scale *= factor_;
}

MaskHandler::MaskHandler(Tensor mask) : mask_(std::move(mask)) {
  EMBER_CHECK(mask_.defined(), "mask: the mask is undefined");
  EMBER_CHECK_DTYPE(mask_.dtype() == kBool, "mask: the mask must be a bool tensor, got ",
                    mask_.dtype());
}

MaskHandler::MaskHandler(bool keep)
    : MaskHandler(full({}, keep ? 1.0 : 0.0, TensorOptions{}.with_dtype(kBool))) {}

void MaskHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample) return;
  Tensor m = mask_;
  if (msg.fn.defined() && m.device() != msg.fn.device()) m = m.to(msg.fn.device());
  msg.mask = msg.mask.defined() ? logical_and(msg.mask, m) : m;
}

void SubstituteHandler::process_message(Message& msg) {
  if (msg.type == SiteType::Subsample) return;
  auto it = data_.find(msg.name);
  if (it == data_.end() || !it->second.defined()) return;
  msg.value = it->second;
  msg.done = true;
}

void UnconditionHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample || !msg.is_observed) return;
  msg.is_observed = false;
  msg.infer.was_observed = true;
  msg.infer.obs = msg.value;
  msg.value = Tensor();
  msg.done = false;
}

void LiftHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Param) return;
  dist::Distribution prior = all_;
  if (!prior.defined()) {
    auto it = priors_.find(msg.name);
    if (it == priors_.end()) return;
    prior = it->second;
  }
  msg.type = SiteType::Sample;
  msg.fn = prior;
  msg.value = Tensor();
  msg.is_observed = false;
  msg.init.reset();
  msg.store = nullptr;
}

}  // namespace ember::handlers
