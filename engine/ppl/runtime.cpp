// The handler stack and apply_stack: the whole of Ember's effect handling, as minipyro's.
#include <algorithm>
#include <cstddef>
#include <iterator>

#include "ember/error.hpp"
#include "ember/message.hpp"
#include "ember/ops.hpp"
#include "ember/param_store.hpp"
#include "engine/internal.hpp"
#include "engine/ppl/ppl_util.hpp"

namespace ember {
namespace {

thread_local std::vector<Messenger*> t_stack;

}  // namespace

const char* site_type_name(SiteType type) {
  constexpr const char* kNames[] = {"sample", "param", "subsample"};  // in SiteType's order
  const auto i = static_cast<std::size_t>(type);
  return i < std::size(kNames) ? kNames[i] : "?";
}

Messenger::Messenger() { enter(); }
Messenger::Messenger(PerIteration) {}
Messenger::~Messenger() { exit(); }

void Messenger::enter() {
  if (active_) return;
  t_stack.push_back(this);
  active_ = true;
}

void Messenger::exit() {
  if (!active_) return;
  active_ = false;
  // Scopes leave in reverse order of entry, so this is the top; a handler kept alive past
  // its scope (on the heap) is taken out wherever it is.
  if (!t_stack.empty() && t_stack.back() == this) {
    t_stack.pop_back();
  } else {
    t_stack.erase(std::remove(t_stack.begin(), t_stack.end(), this), t_stack.end());
  }
}

const std::vector<Messenger*>& handler_stack() { return t_stack; }
bool handler_stack_empty() { return t_stack.empty(); }

void apply_stack(Message& msg) {
  // Innermost handler first; those that saw the message postprocess it, outermost first
  // (Pyro's order). Indices, not iterators: a handler may send messages of its own.
  const std::size_t n = t_stack.size();
  std::size_t seen = 0;
  for (std::size_t i = n; i-- > 0;) {
    ++seen;
    t_stack[i]->process_message(msg);
    if (msg.stop) break;
  }
  default_process_message(msg);
  for (std::size_t i = n - seen; i < n; ++i) t_stack[i]->postprocess_message(msg);
}

void default_process_message(Message& msg) {
  if (msg.done) return;
  switch (msg.type) {
    case SiteType::Sample:
      if (!msg.value.defined()) {
        msg.value = msg.fn.has_rsample() ? msg.fn.rsample() : msg.fn.sample();
      }
      break;
    case SiteType::Param:
      if (!msg.value.defined()) {
        ParamStore& store = msg.store != nullptr ? *msg.store : current_param_store();
        const ParamStore::Entry entry = store.get_or_create(msg.name, *msg.init, msg.constraint);
        msg.unconstrained = entry.unconstrained;
        msg.constraint = entry.constraint;
        msg.value = detail::constrained_value(entry);
      }
      break;
    case SiteType::Subsample:
      if (!msg.value.defined()) {
        msg.value = msg.subsample_size < msg.plate_size
                        ? detail::random_subset(msg.plate_size, msg.subsample_size, msg.device)
                        : detail::full_range(msg.plate_size, msg.device);
      }
      break;
  }
  msg.done = true;
}

}  // namespace ember
