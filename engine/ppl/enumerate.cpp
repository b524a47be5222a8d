// The enumeration handlers (ember/enumerate.hpp): which sites are enumerated, and the dims
// their values take.
#include "ember/enumerate.hpp"

#include <algorithm>

#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::handlers {

void ConfigEnumerateHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample || msg.is_observed || msg.infer.is_auxiliary) return;
  if (msg.infer.enumerate != Enumerate::None || !msg.fn.has_enumerate_support()) return;
  msg.infer.enumerate = how_;
}

EnumHandler::EnumHandler(int first_available_dim) : next_dim_(first_available_dim) {
  EMBER_CHECK(first_available_dim < 0, "enumerate: first_available_dim must be negative, got ",
              first_available_dim);
}

int EnumHandler::allocate(const Message& msg) {
  if (msg.markov_step < 0) return next_dim_--;
  // Inside a markov scope: the k-th enumerated site of step t shares its dim with that of
  // step t - (h + 1), which no factor of step t or later reads.
  const int k = per_step_[msg.markov_step]++;
  const std::pair<std::int64_t, int> key{msg.markov_step % (msg.markov_history + 1), k};
  auto it = markov_dims_.find(key);
  if (it == markov_dims_.end()) it = markov_dims_.emplace(key, next_dim_--).first;
  return it->second;
}

void EnumHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample || msg.done || msg.is_observed || msg.value.defined()) return;
  if (msg.infer.enumerate != Enumerate::Parallel) return;
  EMBER_CHECK(msg.fn.has_enumerate_support(), "enumerate: site '", msg.name, "' (", msg.fn.name(),
              ") has no finite support to enumerate");
  const int dim = allocate(msg);
  EMBER_CHECK_SHAPE(-dim + static_cast<int>(msg.fn.event_shape().size()) <= kMaxRank,
                    "enumerate: site '", msg.name, "' would take dim ", dim,
                    ", past the tensor rank limit of ", kMaxRank,
                    ": every site enumerated outside a markov scope takes a dim of its own; put "
                    "repeated sites in a markov scope (markov(n)), whose steps reuse their dims");
  const Tensor support = msg.fn.enumerate_support(false);
  Shape shape{support.size(0)};
  for (int i = 1; i < -dim; ++i) shape.push_back(1);
  for (auto e : msg.fn.event_shape()) shape.push_back(e);
  EMBER_CHECK_SHAPE(support.numel() == shape.numel(), "enumerate: site '", msg.name,
                    "': its support of shape ", support.shape(),
                    " varies over the batch; enumeration needs one support for every element");
  msg.value = support.reshape(shape);
  msg.infer.enum_dim = dim;
  msg.done = true;
}

SequentialEnumHandler::SequentialEnumHandler(Schedule& schedule) : schedule_(schedule) {
  schedule_.next_ = 0;
}

void SequentialEnumHandler::process_message(Message& msg) {
  if (msg.type != SiteType::Sample || msg.done || msg.is_observed || msg.value.defined()) return;
  if (msg.infer.enumerate != Enumerate::Sequential) return;
  EMBER_CHECK(msg.fn.has_enumerate_support(), "enumerate: site '", msg.name, "' (", msg.fn.name(),
              ") has no finite support to enumerate");
  const Shape batch = msg.fn.batch_shape();
  for (const PlateFrame& f : msg.cond_indep_stack) {
    EMBER_CHECK_SHAPE(f.name != kParticlesPlate || f.size == 1, "enumerate: site '", msg.name,
                      "' is marked Enumerate::Sequential, which takes one value per run "
                      "for every particle: draw the particles one by one (vectorize_particles "
                      "off) or enumerate the site in parallel");
  }
  EMBER_CHECK_SHAPE(batch.numel() == 1, "enumerate: site '", msg.name,
                    "' is marked Enumerate::Sequential but has batch shape ", batch, " (",
                    batch.numel(),
                    " elements); a sequentially enumerated site takes one value "
                    "per run: enumerate it in parallel (Enumerate::Parallel) instead");
  const Tensor support = msg.fn.enumerate_support(false);
  const std::int64_t total = support.size(0);
  auto& choices = schedule_.choices_;
  if (schedule_.next_ < choices.size()) {
    EMBER_CHECK(choices[schedule_.next_].site == msg.name, "enumerate: sequential site '", msg.name,
                "' comes where an earlier run with the same values met site '",
                choices[schedule_.next_].site, "'; the program must be deterministic given them");
  } else {
    choices.push_back({msg.name, 0, total});
  }
  const std::int64_t index = choices[schedule_.next_++].index;
  Shape shape = batch;
  for (auto e : msg.fn.event_shape()) shape.push_back(e);
  msg.value = support.select(0, index).reshape(shape);
  msg.infer.enum_total = total;
  msg.done = true;
}

bool SequentialEnumHandler::Schedule::advance() {
  choices_.resize(std::min(choices_.size(), next_));
  while (!choices_.empty() && choices_.back().index + 1 == choices_.back().total) {
    choices_.pop_back();
  }
  next_ = 0;
  if (choices_.empty()) return false;
  ++choices_.back().index;
  return true;
}

}  // namespace ember::handlers
