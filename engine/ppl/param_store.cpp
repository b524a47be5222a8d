// The parameter store: entries, the default and current stores, saving and loading.
#include "ember/param_store.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "engine/compile/plan.hpp"
#include "engine/distributions/dist_util.hpp"
#include "engine/ppl/ppl_util.hpp"
#include "engine/ppl/safetensors.hpp"

namespace ember {
namespace {

thread_local ParamStore* t_current_store = nullptr;

// A version no store has had: plans keyed by a store's address and version never take a new
// store for a destroyed one at the same address.
std::uint64_t fresh_version() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

constexpr const char* kConstraintKey = "ember.constraint.";
// For a constrained parameter, the tensor that holds its unconstrained leaf exactly (the
// constrained value does not round-trip through the transform bit for bit).
constexpr const char* kUnconstrainedKey = "ember.unconstrained.";
constexpr const char* kUnconstrainedTensor = "__ember_unconstrained__.";

// The unconstrained leaf for a constrained value, after checking it lies in the set.
ParamStore::Entry make_entry(const std::string& name, const Tensor& value,
                             const constraints::Constraint& constraint) {
  EMBER_CHECK(value.defined(), "param '", name, "': the initial value is undefined");
  EMBER_CHECK_DTYPE(is_floating(value.dtype()), "param '", name,
                    "': parameters must be floating point, got ", value.dtype());
  NoGradGuard no_grad;
  const Tensor v = value.detach();
  EMBER_CHECK_SHAPE(v.dim() >= constraint.event_dim(), "param '", name, "': a value of shape ",
                    v.shape(), " cannot lie in ", constraint.name(), " (event dims ",
                    constraint.event_dim(), ")");
  {
    // A parameter made while a compiled program is recorded (its first call with a new
    // store, or after clear()): the check reads its verdict on the host, which a recording
    // refuses. The program still runs as an eager one would, and the recording, made against a
    // store that changed under it, is dropped (a later call records).
    const detail::PauseRecording check_is_not_recorded;
    const Tensor ok = constraint.check(v);
    EMBER_CHECK(all(ok), "param '", name, "': the initial value is not in ", constraint.name(),
                ": ", detail::describe_first_violation(v, ok));
  }
  ParamStore::Entry e;
  e.constraint = constraint;
  e.transform = transforms::biject_to(constraint);
  e.unconstrained = e.transform.inverse(v).contiguous().clone();
  e.unconstrained.requires_grad_();
  return e;
}

// A loaded parameter's stored value against what its unconstrained copy maps to: they agree
// to within the rounding of the transform on another machine or device, unless the value was
// edited (or the copy damaged) after saving; either way the file no longer says which to use.
void check_copy_agrees(const Tensor& from_copy, const Tensor& stored, const std::string& key) {
  const Tensor a = from_copy.detach().to(Device::cpu()).to(kFloat64).contiguous();
  const Tensor b = stored.detach().to(Device::cpu()).to(kFloat64).contiguous();
  const bool single = stored.dtype() == kFloat32;
  const double rtol = single ? 1e-4 : 1e-9, atol = single ? 1e-6 : 1e-14;
  const double* pa = a.data<double>();
  const double* pb = b.data<double>();
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double diff = std::fabs(pa[i] - pb[i]);
    if (diff <= atol + rtol * std::max(std::fabs(pa[i]), std::fabs(pb[i]))) continue;
    std::ostringstream os;
    os.precision(9);
    os << "the stored value and its unconstrained copy disagree at element " << i << " (value "
       << pb[i] << ", the copy gives " << pa[i]
       << "): the value was changed or the copy damaged after saving; to load the value alone, "
          "remove the metadata entry '"
       << key << "'";
    throw ValueError(os.str());
  }
}

}  // namespace

ParamStore::ParamStore() : version_(fresh_version()) {}

namespace detail {

Tensor constrained_value(const ParamStore::Entry& entry) {
  if (entry.constraint.kind() == constraints::Kind::Real) return entry.unconstrained;
  return entry.transform.forward(entry.unconstrained);
}

std::string describe_plates(const std::vector<PlateFrame>& frames) {
  std::ostringstream os;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    os << (i ? ", " : "") << "'" << frames[i].name << "'";
    if (frames[i].vectorized())
      os << " (dim " << frames[i].dim << ", size " << frames[i].subsample_size << ")";
  }
  return os.str();
}

std::string constraint_to_string(const constraints::Constraint& c) {
  EMBER_CHECK(!c.lower_tensor().defined() && !c.upper_tensor().defined(), "the constraint ",
              c.name(), " has tensor bounds, which cannot be saved");
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%d:%d:%.17g:%.17g", static_cast<int>(c.kind()), c.event_dim(),
                c.lower(), c.upper());
  return c.name() + "|" + buf;
}

constraints::Constraint constraint_from_string(const std::string& s) {
  const auto bar = s.rfind('|');
  int kind = -1, event_dim = -1;
  double lo = 0, hi = 0;
  const bool ok =
      bar != std::string::npos &&
      std::sscanf(s.c_str() + bar + 1, "%d:%d:%lg:%lg", &kind, &event_dim, &lo, &hi) == 4 &&
      kind >= 0 && kind <= static_cast<int>(constraints::Kind::IntegerInterval) && event_dim >= 0;
  EMBER_CHECK_T(IoError, ok, "unreadable constraint '", s, "'");
  return constraints::Constraint(static_cast<constraints::Kind>(kind), event_dim, lo, hi);
}

}  // namespace detail

ParamStore::Entry ParamStore::get_or_create(const std::string& name,
                                            const std::function<Tensor()>& init,
                                            const constraints::Constraint& constraint) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(name);
    if (it != entries_.end()) return it->second;
  }
  // init runs unlocked: it may itself read the store.
  Entry e = make_entry(name, init(), constraint);
  std::lock_guard<std::mutex> lock(mutex_);
  version_.store(fresh_version(), std::memory_order_release);
  return entries_.emplace(name, std::move(e)).first->second;  // another thread may have won
}

bool ParamStore::contains(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.count(name) != 0;
}

std::size_t ParamStore::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

std::vector<std::string> ParamStore::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

namespace {
const ParamStore::Entry& find_entry(const std::map<std::string, ParamStore::Entry>& entries,
                                    const std::string& name) {
  auto it = entries.find(name);
  EMBER_CHECK(it != entries.end(), "param '", name, "' is not in the param store (", entries.size(),
              " parameters)");
  return it->second;
}
}  // namespace

Tensor ParamStore::get(const std::string& name) const {
  Entry e;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    e = find_entry(entries_, name);
  }
  return detail::constrained_value(e);
}

Tensor ParamStore::unconstrained(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return find_entry(entries_, name).unconstrained;
}

constraints::Constraint ParamStore::constraint(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return find_entry(entries_, name).constraint;
}

void ParamStore::set(const std::string& name, const Tensor& constrained_value,
                     const constraints::Constraint& constraint) {
  Entry e = make_entry(name, constrained_value, constraint);
  const std::lock_guard<std::recursive_mutex> between_steps(training_);
  std::lock_guard<std::mutex> lock(mutex_);
  entries_[name] = std::move(e);
  version_.store(fresh_version(), std::memory_order_release);
}

void ParamStore::erase(const std::string& name) {
  const std::lock_guard<std::recursive_mutex> between_steps(training_);
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(name);
  version_.store(fresh_version(), std::memory_order_release);
}

void ParamStore::clear() {
  const std::lock_guard<std::recursive_mutex> between_steps(training_);
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
  version_.store(fresh_version(), std::memory_order_release);
}

void ParamStore::save(const std::string& path) const {
  detail::SafetensorsFile file;
  {
    // The values as one step left them (copies, taken between steps), written after.
    const std::lock_guard<std::recursive_mutex> between_steps(training_);
    std::map<std::string, Entry> snapshot;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      snapshot = entries_;
    }
    NoGradGuard no_grad;
    for (const auto& [name, e] : snapshot) {
      file.tensors[name] = detail::constrained_value(e).clone();
      file.metadata[kConstraintKey + name] = detail::constraint_to_string(e.constraint);
      if (e.constraint.kind() != constraints::Kind::Real) {
        const std::string copy = kUnconstrainedTensor + name;
        EMBER_CHECK(snapshot.count(copy) == 0, "ParamStore.save: parameter '", copy,
                    "' takes the name of parameter '", name, "'s unconstrained copy");
        file.tensors[copy] = e.unconstrained.clone();
        file.metadata[kUnconstrainedKey + name] = copy;
      }
    }
  }
  file.metadata["format"] = "ember.param_store";
  detail::write_safetensors(path, file);
}

void ParamStore::load(const std::string& path, Device device) {
  const detail::SafetensorsFile file = detail::read_safetensors(path);
  // Every entry is built before any is stored, so a bad one leaves the store untouched.
  std::map<std::string, Entry> loaded;
  std::set<std::string> copies;  // tensors that are unconstrained copies, not parameters
  for (const auto& [key, copy] : file.metadata) {
    if (key.rfind(kUnconstrainedKey, 0) != 0) continue;
    const std::string name = key.substr(std::string_view(kUnconstrainedKey).size());
    // A copy is never a parameter itself: one named otherwise would hide a parameter.
    if (copy.rfind(kUnconstrainedTensor, 0) != 0 ||
        copy.size() == std::strlen(kUnconstrainedTensor))
      throw IoError("safetensors file '" + path + "': metadata '" + key + "' names '" + copy +
                    "' as parameter '" + name + "'s unconstrained copy; copies are named " +
                    kUnconstrainedTensor + "<name>");
    if (file.tensors.count(name) == 0)
      throw IoError("safetensors file '" + path + "': metadata '" + key +
                    "' gives an unconstrained copy of parameter '" + name +
                    "', which the file does not hold");
    copies.insert(copy);
  }
  for (const auto& [name, value] : file.tensors) {
    if (copies.count(name) != 0) continue;
    auto meta = file.metadata.find(kConstraintKey + name);
    try {
      const constraints::Constraint c = meta == file.metadata.end()
                                            ? constraints::real
                                            : detail::constraint_from_string(meta->second);
      Entry e = make_entry(name, value.to(device), c);
      // The exact leaf where the file has it (so that a resumed fit is bit-identical),
      // after the constrained value passed the checks above.
      const auto copy = file.metadata.find(kUnconstrainedKey + name);
      if (copy != file.metadata.end()) {
        const auto t = file.tensors.find(copy->second);
        EMBER_CHECK(t != file.tensors.end(), "the unconstrained copy '", copy->second,
                    "' is missing");
        EMBER_CHECK_SHAPE(t->second.shape() == e.unconstrained.shape() &&
                              t->second.dtype() == e.unconstrained.dtype(),
                          "the unconstrained copy is ", t->second.shape(), " ", t->second.dtype(),
                          ", the parameter ", e.unconstrained.shape(), " ",
                          e.unconstrained.dtype());
        Entry exact = e;
        exact.unconstrained = t->second.to(device).contiguous().clone();
        check_copy_agrees(detail::constrained_value(exact), value, copy->first);
        e.unconstrained = std::move(exact.unconstrained);
        e.unconstrained.requires_grad_();
      }
      loaded.emplace(name, std::move(e));
    } catch (const Error& err) {
      throw IoError("safetensors file '" + path + "': tensor '" + name + "': " + err.what());
    }
  }
  const std::lock_guard<std::recursive_mutex> between_steps(training_);
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [name, e] : loaded) entries_[name] = std::move(e);
  version_.store(fresh_version(), std::memory_order_release);
}

ParamStore& default_param_store() {
  static ParamStore store;
  return store;
}

ParamStore& current_param_store() {
  return t_current_store != nullptr ? *t_current_store : default_param_store();
}

ParamStoreScope::ParamStoreScope(ParamStore& store) : prev_(t_current_store) {
  t_current_store = &store;
}
ParamStoreScope::~ParamStoreScope() { t_current_store = prev_; }

}  // namespace ember
