// sample, param, the plates, factor, deterministic, module and markov.
#include "ember/primitives.hpp"

#include <algorithm>
#include <utility>

#include "ember/compile.hpp"
#include "ember/distributions/delta.hpp"
#include "ember/distributions/unit.hpp"
#include "ember/error.hpp"
#include "ember/nn/module.hpp"
#include "ember/ops.hpp"
#include "engine/compile/plan.hpp"
#include "engine/internal.hpp"
#include "engine/ppl/ppl_util.hpp"

namespace ember {
namespace {

void send(Message& msg) {
  if (handler_stack_empty()) {
    default_process_message(msg);
  } else {
    apply_stack(msg);
  }
}

// The batch dims owned by the vectorized plates the calling thread is inside.
struct DimOwner {
  int dim;
  std::string plate;
};
thread_local std::vector<DimOwner> t_dims;

int allocate_dim(const std::string& plate, std::optional<int> dim) {
  auto owner = [](int d) {
    return std::find_if(t_dims.begin(), t_dims.end(),
                        [d](const DimOwner& o) { return o.dim == d; });
  };
  int d = -1;
  if (dim) {
    d = *dim;
    EMBER_CHECK(d < 0, "plate '", plate, "': dim must be negative (counted from the right), got ",
                d);
    auto it = owner(d);
    EMBER_CHECK(it == t_dims.end(), "plate '", plate, "': dim ", d, " is already used by plate '",
                it->plate, "'");
  } else {
    while (owner(d) != t_dims.end()) --d;
  }
  EMBER_CHECK(d >= -kMaxRank, "plate '", plate, "': dim ", d, " lies beyond the ", kMaxRank,
              " dims a tensor may have", dim ? "" : " (too many plates nested)");
  t_dims.push_back({d, plate});
  return d;
}

void free_dim(int dim) {
  t_dims.erase(std::remove_if(t_dims.begin(), t_dims.end(),
                              [dim](const DimOwner& o) { return o.dim == dim; }),
               t_dims.end());
}

// The plate's index tensor: given, replayed, or drawn (a Subsample site).
Tensor plate_indices(const std::string& name, std::int64_t size, const PlateOptions& opts,
                     std::int64_t* subsample_size) {
  EMBER_CHECK(size >= 1, "plate '", name, "': size must be at least 1, got ", size);
  Message msg;
  msg.type = SiteType::Subsample;
  msg.name = name;
  msg.plate_size = size;
  msg.device = opts.device;
  if (opts.subsample.defined()) {
    const Tensor& idx = opts.subsample;
    EMBER_CHECK_DTYPE(idx.dtype() == kInt64, "plate '", name,
                      "': subsample indices must be int64, got ", idx.dtype());
    EMBER_CHECK_SHAPE(idx.dim() == 1 && idx.size(0) >= 1 && idx.size(0) <= size, "plate '", name,
                      "': subsample indices must be 1-d with 1 to ", size, " entries, got shape ",
                      idx.shape());
    if (validation_enabled()) {
      const detail::PauseRecording checks_are_not_replayed;
      EMBER_CHECK(all(logical_and(ge(idx, 0.0), lt(idx, static_cast<double>(size)))), "plate '",
                  name, "': subsample indices must lie in [0, ", size, ")");
    }
    msg.value = idx;
    msg.subsample_size = idx.size(0);
    msg.device = idx.device();
  } else {
    msg.subsample_size = opts.subsample_size < 0 ? size : opts.subsample_size;
    EMBER_CHECK(msg.subsample_size >= 1 && msg.subsample_size <= size, "plate '", name,
                "': subsample_size must lie in [1, ", size, "], got ", opts.subsample_size);
  }
  send(msg);
  EMBER_CHECK_SHAPE(msg.value.defined() && msg.value.dim() == 1, "plate '", name,
                    "': the subsample indices given by a handler must be 1-d");
  *subsample_size = msg.value.size(0);
  return msg.value;
}

void check_plate_size(const std::string& name, std::int64_t size, std::int64_t subsample_size) {
  EMBER_CHECK(subsample_size >= 1 && subsample_size <= size, "plate '", name, "': a subsample of ",
              subsample_size, " does not fit the size ", size);
}

}  // namespace

// ---------------------------------------------------------------------------- sample ----
Tensor sample(const std::string& name, const dist::Distribution& fn, const SampleOptions& opts) {
  EMBER_CHECK(fn.defined(), "sample site '", name, "': the distribution is undefined");
  if (handler_stack_empty()) {
    if (opts.obs.defined()) return opts.obs;
    return fn.has_rsample() ? fn.rsample() : fn.sample();
  }
  // An argument error held back while `fn` was built is (almost always) this site's.
  if (detail::arg_error_held()) detail::throw_held_arg_error("site '" + name + "': ");
  Message msg;
  msg.type = SiteType::Sample;
  msg.name = name;
  msg.fn = fn;
  msg.value = opts.obs;
  msg.is_observed = opts.obs.defined();
  msg.infer = opts.infer;
  apply_stack(msg);
  return msg.value;
}

Tensor sample(const std::string& name, const dist::Distribution& fn) {
  return sample(name, fn, SampleOptions{});
}

Tensor sample(const std::string& name, const dist::Distribution& fn, const Tensor& obs) {
  EMBER_CHECK(obs.defined(), "sample site '", name, "': the observed value is undefined");
  SampleOptions opts;
  opts.obs = obs;
  return sample(name, fn, opts);
}

// ----------------------------------------------------------------------------- param ----
namespace {
// A tensor given as a param's init and the function returning it, in one pooled block: the
// function holds a pointer to the tensor, which std::function keeps inline (a copy of the
// tensor in its closure would take a heap block at every param call).
struct TensorInit {
  Tensor value;
  std::function<Tensor()> fn;
  explicit TensorInit(const Tensor& t) : value(t), fn([this] { return value; }) {}
  TensorInit(const TensorInit&) = delete;
  TensorInit& operator=(const TensorInit&) = delete;
};
}  // namespace

ParamInit::ParamInit(const Tensor& t) {
  auto init = detail::pooled<TensorInit>(t);
  fn_ = std::shared_ptr<const std::function<Tensor()>>(init, &init->fn);
}
ParamInit::ParamInit(double v)
    : fn_(detail::pooled<std::function<Tensor()>>([v] { return scalar_tensor(v); })) {}
ParamInit::ParamInit(std::function<Tensor()> make)
    : fn_(detail::pooled<std::function<Tensor()>>(std::move(make))) {}

Tensor param(const std::string& name, const ParamInit& init,
             const constraints::Constraint& constraint) {
  Message msg;
  msg.type = SiteType::Param;
  msg.name = name;
  msg.init = init.fn();
  msg.constraint = constraint;
  msg.store = &current_param_store();
  send(msg);
  return msg.value;
}

Tensor param(const std::string& name) {
  return param(name, ParamInit(std::function<Tensor()>([name]() -> Tensor {
                 throw ValueError("param '" + name +
                                  "' is not in the param store and no initial value was given");
               })));
}

// ---------------------------------------------------------------------------- plates ----
Plate::Plate(std::string name, std::int64_t size, PlateOptions opts) {
  // The plate is on the stack already (Messenger's constructor entered it): its own
  // subsample message passes through process_message, which acts on sample sites alone.
  frame_.name = std::move(name);
  frame_.size = size;
  indices_ = plate_indices(frame_.name, size, opts, &frame_.subsample_size);
  check_plate_size(frame_.name, size, frame_.subsample_size);
  subsampled_ = frame_.subsample_size != size || opts.subsample.defined();
  // Last, so that a constructor that throws has taken no dim (the destructor, which frees
  // it, does not run then; the base still leaves the stack).
  frame_.dim = allocate_dim(frame_.name, opts.dim);
}

Plate::~Plate() { free_dim(frame_.dim); }

Tensor Plate::subsample(const Tensor& data, int dim) const {
  EMBER_CHECK_SHAPE(data.dim() > 0 && data.size(dim) == frame_.size, "plate '", frame_.name,
                    "': subsample needs data of size ", frame_.size, " at dim ", dim,
                    ", got shape ", data.shape());
  if (!subsampled_) return data;
  const Tensor idx = indices_.device() == data.device() ? indices_ : indices_.to(data.device());
  return index_select(data, dim, idx);
}

void Plate::process_message(Message& msg) {
  if (msg.type != SiteType::Sample) return;
  msg.cond_indep_stack.insert(msg.cond_indep_stack.begin(), frame_);
  if (frame_.subsample_size != frame_.size) {
    msg.scale *= static_cast<double>(frame_.size) / static_cast<double>(frame_.subsample_size);
  }
  // Broadcast the distribution's batch shape to the plate's size at its dim.
  Shape batch = msg.fn.batch_shape();
  const int need = -frame_.dim;
  if (batch.size() < need) {
    Shape padded;
    for (int i = batch.size(); i < need; ++i) padded.push_back(1);
    for (auto d : batch) padded.push_back(d);
    batch = padded;
  }
  std::int64_t& d = batch[batch.size() + frame_.dim];
  if (d == frame_.subsample_size && batch == msg.fn.batch_shape()) return;
  EMBER_CHECK_SHAPE(d == 1 || d == frame_.subsample_size, "sample site '", msg.name,
                    "': its batch shape ", msg.fn.batch_shape(), " has size ", d, " at dim ",
                    frame_.dim, ", which conflicts with plate '", frame_.name, "' of size ",
                    frame_.subsample_size, " at that dim");
  d = frame_.subsample_size;
  msg.fn = msg.fn.expand(batch);
}

SequentialPlate::SequentialPlate(std::string name, std::int64_t size, PlateOptions opts)
    : Messenger(PerIteration{}) {
  EMBER_CHECK(!opts.dim, "sequential_plate '", name, "': a sequential plate owns no dim");
  frame_.name = std::move(name);
  frame_.size = size;
  frame_.dim = 0;
  indices_ = plate_indices(frame_.name, size, opts, &frame_.subsample_size);
  check_plate_size(frame_.name, size, frame_.subsample_size);
  if (detail::recorder() == nullptr) {
    index_values_ = indices_.to_vector<std::int64_t>();
    return;
  }
  // Recording a compiled program: the indices steer the loop on the host, which a replay does
  // not run again. Over the full range they are 0, 1, ..., size - 1 at every step (a constant);
  // a subsample changes from step to step.
  EMBER_CHECK_T(CompileError, frame_.subsample_size == size, "compile: sequential_plate '",
                frame_.name, "' is subsampled (", frame_.subsample_size, " of ", size,
                "): its indices steer a loop on the host, which a compiled program does not run "
                "again; use a vectorized plate, or do not compile");
  {
    const detail::PauseRecording constant_indices;
    index_values_ = indices_.to_vector<std::int64_t>();
  }
  for (std::int64_t i = 0; i < size; ++i) {
    EMBER_CHECK_T(CompileError, index_values_[static_cast<std::size_t>(i)] == i,
                  "compile: sequential_plate '", frame_.name,
                  "' runs over a permutation of its range: its indices steer a loop on the host, "
                  "which a compiled program does not run again; do not compile");
  }
}

SequentialPlate::Iterator SequentialPlate::begin() {
  move_to(0);
  return Iterator(this, 0);
}
SequentialPlate::Iterator SequentialPlate::end() { return Iterator(this, index_values_.size()); }

SequentialPlate::Iterator& SequentialPlate::Iterator::operator++() {
  plate_->move_to(++pos_);
  return *this;
}

void SequentialPlate::move_to(std::size_t pos) {
  if (pos >= index_values_.size()) {
    exit();
    return;
  }
  frame_.counter = static_cast<std::int64_t>(pos);
  enter();
}

void SequentialPlate::process_message(Message& msg) {
  if (msg.type != SiteType::Sample) return;
  msg.cond_indep_stack.insert(msg.cond_indep_stack.begin(), frame_);
  if (frame_.subsample_size != frame_.size) {
    msg.scale *= static_cast<double>(frame_.size) / static_cast<double>(frame_.subsample_size);
  }
}

// ------------------------------------------------------------------------- relatives ----
void factor(const std::string& name, const Tensor& log_weight) {
  EMBER_CHECK(log_weight.defined(), "factor '", name, "': the log weight is undefined");
  SampleOptions opts;
  opts.obs =
      empty({0}, TensorOptions{}.with_dtype(log_weight.dtype()).with_device(log_weight.device()));
  opts.infer.is_auxiliary = true;
  sample(name, dist::Unit(log_weight), opts);
}

Tensor deterministic(const std::string& name, const Tensor& value, int event_dim) {
  EMBER_CHECK(value.defined(), "deterministic site '", name, "': the value is undefined");
  SampleOptions opts;
  opts.obs = value;
  opts.infer.deterministic = true;
  return sample(name, dist::Delta(value, 0.0, event_dim).mask(false), opts);
}

void module(const std::string& name, nn::Module& network) {
  for (auto& [pname, ptr] : network.named_parameters()) {
    const Tensor init = *ptr;
    *ptr = param(name + "$$$" + pname, ParamInit(init));
  }
}

// ---------------------------------------------------------------------------- markov ----
Markov::Markov(std::int64_t steps, int history)
    : Messenger(PerIteration{}), steps_(steps), history_(history) {
  EMBER_CHECK(steps >= 0, "markov: the number of steps must be nonnegative, got ", steps);
  EMBER_CHECK(history >= 0, "markov: history must be nonnegative, got ", history);
}

Markov::Iterator Markov::begin() {
  step_ = 0;
  if (steps_ > 0) enter();
  return Iterator(this, 0);
}
Markov::Iterator Markov::end() { return Iterator(this, steps_); }

Markov::Iterator& Markov::Iterator::operator++() {
  chain_->step_ = ++step_;
  if (step_ >= chain_->steps_) chain_->exit();
  return *this;
}

void Markov::process_message(Message& msg) {
  if (msg.type != SiteType::Sample || msg.markov_step >= 0) return;  // the innermost chain wins
  msg.markov_step = step_;
  msg.markov_history = history_;
}

}  // namespace ember
