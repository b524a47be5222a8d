// The step loop every optimizer shares: per-name state made on first sight, the checks on
// each parameter, and the grouping of the parameters by (dtype, device) into one fused
// backend call per group.
#include <string_view>
#include <unordered_set>

#include "engine/compile/plan.hpp"
#include "engine/internal.hpp"
#include "engine/optim/optim_impl.hpp"
#include "kernels/backend.hpp"

namespace ember::detail {
namespace {

std::string geometry(const Shape& shape, DType dtype, Device device) {
  return concat(shape, " ", dtype, " on ", device);
}

constexpr std::size_t kNoGroup = ~std::size_t{0};

}  // namespace

void OptimizerImpl::step(const std::vector<NamedTensor>& params) {
  // The update launches outside the recording (its step count and learning rate change at
  // every step): a replay would skip it and keep the parameters where they were.
  EMBER_CHECK_T(CompileError, detail::recorder() == nullptr, "optim.", name(),
                ".step: an optimizer step inside a compiled function (ember::compile) is not "
                "replayed; step the optimizer outside the function, or compile the whole training "
                "step with SVI.compile(), which issues its update at every replay");
  // Into the kept update, whose vectors keep their capacity: a step of the same parameters
  // takes no heap block.
  prepare_into(params, scratch_);
  scratch_.issue();
  scratch_.grads_.clear();
}

PreparedUpdate OptimizerImpl::prepare(const std::vector<NamedTensor>& params) {
  PreparedUpdate u;
  prepare_into(params, u);
  return u;
}

namespace {

// True when a name is listed twice: a scan for a few parameters, a hash set for many.
bool has_duplicate(const std::vector<NamedTensor>& params, std::string* which) {
  constexpr std::size_t kScanned = 32;
  if (params.size() <= kScanned) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (params[i].name != params[j].name) continue;
        *which = params[i].name;
        return true;
      }
    }
    return false;
  }
  std::unordered_set<std::string_view> names(params.size());
  for (const NamedTensor& nt : params) {
    if (names.insert(nt.name).second) continue;
    *which = nt.name;
    return true;
  }
  return false;
}

}  // namespace

void OptimizerImpl::prepare_into(const std::vector<NamedTensor>& params, PreparedUpdate& u) {
  const NoGradGuard no_grad;
  const char* opt = algorithm_->name();
  u.owner_ = this;
  u.listed_.clear();
  u.updated_.clear();
  u.grads_.clear();
  for (PreparedUpdate::Group& g : u.groups_) g.slots.clear();

  // Every check runs before any state changes: a step that throws updates nothing.
  std::string twice;
  EMBER_CHECK(!has_duplicate(params, &twice), opt, ".step: parameter '", twice,
              "' is listed twice");
  std::vector<Pending>& pending = pending_;
  pending.clear();
  u.listed_.reserve(params.size());
  u.updated_.reserve(params.size());
  u.grads_.reserve(params.size());
  pending.reserve(params.size());
  for (const NamedTensor& nt : params) {
    EMBER_CHECK(nt.param.defined(), opt, ".step: parameter '", nt.name, "' is undefined");
    auto it = states_.find(nt.name);
    if (it == states_.end()) {
      ParamState fresh;
      fresh.options = algorithm_->add(nt.name);
      it = states_.emplace(nt.name, std::move(fresh)).first;
    }
    ParamState& state = it->second;
    u.listed_.push_back(&state);

    const Tensor& p = nt.param;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    EMBER_CHECK(p.is_leaf(), opt, ".step: parameter '", nt.name,
                "' is not a leaf (it is the result of an op); optimize the leaf it came from");
    EMBER_CHECK_DTYPE(is_floating(p.dtype()), opt, ".step: parameter '", nt.name, "' is ",
                      p.dtype(), "; optimizers update float32 and float64 parameters");
    EMBER_CHECK(p.is_contiguous(), opt, ".step: parameter '", nt.name,
                "' is not contiguous; optimizers update contiguous leaves in place");
    EMBER_CHECK_SHAPE(g.shape() == p.shape(), opt, ".step: the gradient of parameter '", nt.name,
                      "' has shape ", g.shape(), ", the parameter ", p.shape());
    EMBER_CHECK_DEVICE(g.device() == p.device(), opt, ".step: the gradient of parameter '", nt.name,
                       "' is on ", g.device(), ", the parameter on ", p.device());
    if (state.updates > 0) {
      EMBER_CHECK(
          state.shape == p.shape() && state.dtype == p.dtype() && state.device == p.device(), opt,
          ".step: parameter '", nt.name, "' is now ", geometry(p.shape(), p.dtype(), p.device()),
          " but was ", geometry(state.shape, state.dtype, state.device),
          " when its optimizer state was made");
    }
    if (g.dtype() != p.dtype()) g = g.to(p.dtype());
    if (!g.is_contiguous()) g = g.contiguous();
    pending.push_back({&state, &p, std::move(g)});
  }

  for (Pending& pu : pending) {
    ParamState& state = *pu.state;
    const Tensor& p = *pu.param;
    if (state.updates == 0) {
      state.buffers = algorithm_->make_state(state.options, p);
      state.shape = p.shape();
      state.dtype = p.dtype();
      state.device = p.device();
    }
    if (p.numel() == 0) {
      u.updated_.push_back({&state, kNoGroup, 0});
      continue;
    }

    kernels::OptimSlot slot{};
    ::ember::detail::order_use(p);
    ::ember::detail::order_use(pu.grad);
    slot.param = p.data_ptr();
    slot.grad = pu.grad.data_ptr();
    for (int k = 0; k < kernels::kMaxOptimStates; ++k) {
      const Tensor& b = state.buffers[static_cast<std::size_t>(k)];
      if (b.defined()) ::ember::detail::order_use(b);
      slot.state[k] = b.defined() ? b.data_ptr() : nullptr;
    }
    slot.numel = p.numel();

    std::size_t group = kNoGroup;
    for (std::size_t k = 0; k < u.groups_.size(); ++k) {
      if (u.groups_[k].dtype == p.dtype() && u.groups_[k].device == p.device()) group = k;
    }
    if (group == kNoGroup) {
      group = u.groups_.size();
      u.groups_.push_back({p.dtype(), p.device(), {}});
      u.groups_.back().slots.reserve(pending.size());
    }
    u.updated_.push_back({&state, group, u.groups_[group].slots.size()});
    u.groups_[group].slots.push_back(slot);
    u.grads_.push_back(std::move(pu.grad));
  }
  pending.clear();  // no tensor held past the step
}

std::vector<const void*> PreparedUpdate::written() const {
  std::vector<const void*> out;
  for (const Group& g : groups_) {
    for (const kernels::OptimSlot& slot : g.slots) {
      out.push_back(slot.param);
      for (const void* st : slot.state)
        if (st != nullptr) out.push_back(st);
    }
  }
  return out;
}

std::vector<const void*> PreparedUpdate::read() const {
  std::vector<const void*> out;
  for (const Group& g : groups_)
    for (const kernels::OptimSlot& slot : g.slots) out.push_back(slot.grad);
  return out;
}

void PreparedUpdate::issue() {
  for (ParamState* state : listed_) ++state->calls;
  for (const Updated& up : updated_) {
    ParamState& state = *up.state;
    ++state.updates;
    if (up.group == kNoGroup) continue;
    groups_[up.group].slots[up.slot].scalars =
        owner_->algorithm_->scalars(state.options, owner_->effective_lr(state), state.updates);
  }
  // The gradients' contiguous copies in grads_ outlive these calls; on a GPU their memory
  // goes back to the stream-ordered pool after the queued launches that read it.
  for (const Group& g : groups_) {
    // A kept update may hold a group that this step's parameters left empty.
    if (g.slots.empty()) continue;
    kernels::backend_for(g.device).optimizer_step(owner_->algorithm_->kind(), g.dtype, g.slots);
  }
}

double OptimizerImpl::effective_lr(const ParamState& s) const {
  return schedule_.lr(algorithm_->base_lr(s.options), epoch_) *
         algorithm_->lr_factor(s.options, s.calls);
}

double OptimizerImpl::lr(const std::string& name) const {
  const auto it = states_.find(name);
  if (it == states_.end()) return schedule_.lr(algorithm_->base_lr_for(name), epoch_);
  return effective_lr(it->second);
}

std::int64_t OptimizerImpl::step_count(const std::string& name) const {
  const auto it = states_.find(name);
  return it == states_.end() ? 0 : it->second.updates;
}

}  // namespace ember::detail

namespace ember::optim {

Optimizer::Optimizer(std::unique_ptr<detail::OptimizerImpl> impl) : impl_(std::move(impl)) {}
Optimizer::~Optimizer() = default;
Optimizer::Optimizer(Optimizer&&) noexcept = default;
Optimizer& Optimizer::operator=(Optimizer&&) noexcept = default;

void Optimizer::step(const std::vector<NamedTensor>& params) { impl_->step(params); }
void Optimizer::set_schedule(LRSchedule schedule) { impl_->set_schedule(std::move(schedule)); }
void Optimizer::schedule_step() { impl_->schedule_step(); }
std::int64_t Optimizer::epoch() const { return impl_->epoch(); }
double Optimizer::lr(const std::string& name) const { return impl_->lr(name); }
std::int64_t Optimizer::step_count(const std::string& name) const {
  return impl_->step_count(name);
}
const char* Optimizer::name() const { return impl_->name(); }
void Optimizer::save(const std::string& path) const { impl_->save(path); }
void Optimizer::load(const std::string& path, Device device) { impl_->load(path, device); }

}  // namespace ember::optim
