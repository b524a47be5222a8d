// The handler stack and apply_stack: the whole of Ember's effect handling, as minipyro's.
#include <algorithm>
#include <unordered_map>

#include "ember/error.hpp"
#include "ember/message.hpp"
#include "ember/ops.hpp"
#include "ember/param_store.hpp"
#include "engine/ppl/ppl_util.hpp"
#include "kernels/math/philox.hpp"

namespace ember {
namespace {

thread_local std::vector<Messenger*> t_stack;

}  // namespace

const char* site_type_name(SiteType type) {
  switch (type) {
    case SiteType::Sample:
      return "sample";
    case SiteType::Param:
      return "param";
    case SiteType::Subsample:
      return "subsample";
  }
  return "?";
}

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

namespace detail {

Tensor random_subset(std::int64_t size, std::int64_t subsample_size, Device device) {
  // A partial Fisher-Yates shuffle with the swaps kept sparse: O(subsample_size) work and
  // memory whatever the size, drawn on the host from the thread's generator so that every
  // device gets the same indices for the same seed.
  Generator& gen = default_generator();
  const std::uint64_t seed = gen.seed();
  const std::uint64_t offset = gen.next_offset();
  std::unordered_map<std::int64_t, std::int64_t> moved;
  moved.reserve(static_cast<std::size_t>(subsample_size) * 2);
  auto at = [&](std::int64_t i) {
    auto it = moved.find(i);
    return it == moved.end() ? i : it->second;
  };
  std::vector<std::int64_t> out(static_cast<std::size_t>(subsample_size));
  for (std::int64_t i = 0; i < subsample_size; ++i) {
    const kernels::Philox4 b = kernels::philox_block(seed, offset, static_cast<std::uint64_t>(i));
    const std::uint64_t r =
        static_cast<std::uint64_t>(b.x) | (static_cast<std::uint64_t>(b.y) << 32);
    const auto span = static_cast<unsigned __int128>(size - i);
    const std::int64_t j = i + static_cast<std::int64_t>((span * r) >> 64);
    const std::int64_t vj = at(j);
    moved[j] = at(i);
    out[static_cast<std::size_t>(i)] = vj;
  }
  return from_vector(out, {subsample_size}, TensorOptions{}.with_dtype(kInt64).with_device(device));
}

}  // namespace detail

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
                        : arange(static_cast<double>(msg.plate_size),
                                 TensorOptions{}.with_dtype(kInt64).with_device(msg.device));
      }
      break;
  }
  msg.done = true;
}

}  // namespace ember
