// An optimizer's state as a safetensors file: every buffer as a tensor "<param>.<buffer>"
// (PyTorch's buffer names), and in the header's metadata the optimizer's class, the
// schedule's epoch and, per parameter, its step and update counts and the geometry its
// state was made for. Loading checks the whole file before it replaces anything.
#include <algorithm>
#include <charconv>
#include <sstream>
#include <string_view>

#include "engine/internal.hpp"
#include "engine/optim/optim_impl.hpp"
#include "engine/ppl/safetensors.hpp"

namespace ember::detail {
namespace {

constexpr const char* kFormatKey = "ember.format";
constexpr const char* kFormat = "ember optimizer state 1";
constexpr const char* kOptimizerKey = "ember.optimizer";
constexpr const char* kEpochKey = "ember.epoch";
constexpr std::string_view kParamPrefix = "param:";

// PyTorch's names for the buffers, in the order of kernels/math/optim.hpp.
std::vector<std::string> buffer_names(kernels::OptimKind kind) {
  switch (kind) {
    case kernels::OptimKind::Sgd:
      return {"momentum_buffer"};
    case kernels::OptimKind::Adam:
    case kernels::OptimKind::ClippedAdam:
      return {"exp_avg", "exp_avg_sq"};
    case kernels::OptimKind::Adagrad:
      return {"sum"};
    case kernels::OptimKind::Rmsprop:
      return {"square_avg", "momentum_buffer", "grad_avg"};
  }
  return {};
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("optimizer state file '" + path + "': " + what);
}

std::int64_t parse_count(const std::string& path, const std::string& key, std::string_view text) {
  std::int64_t v = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0)
    fail(path, "metadata '" + key + "': '" + std::string(text) + "' is not a count");
  return v;
}

// "calls=3 updates=2 dtype=float32 shape=2,3" (shape empty for a 0-d parameter).
std::string describe(const ParamState& s) {
  std::ostringstream os;
  os << "calls=" << s.calls << " updates=" << s.updates << " dtype=" << dtype_name(s.dtype)
     << " shape=";
  const char* sep = "";
  for (const std::int64_t d : s.shape) {
    os << sep << d;
    sep = ",";
  }
  return os.str();
}

// The fields of describe(), checked; the options index is left to the caller.
ParamState parse(const std::string& path, const std::string& key, const std::string& text) {
  ParamState s;
  std::istringstream is(text);
  std::string field;
  int seen = 0;
  while (is >> field) {
    const auto eq = field.find('=');
    if (eq == std::string::npos) fail(path, "metadata '" + key + "': no '=' in '" + field + "'");
    const std::string name = field.substr(0, eq);
    const std::string_view value = std::string_view(field).substr(eq + 1);
    if (name == "calls") {
      s.calls = parse_count(path, key, value);
    } else if (name == "updates") {
      s.updates = parse_count(path, key, value);
    } else if (name == "dtype") {
      if (value == dtype_name(kFloat32)) {
        s.dtype = kFloat32;
      } else if (value == dtype_name(kFloat64)) {
        s.dtype = kFloat64;
      } else {
        fail(path, "metadata '" + key + "': dtype '" + std::string(value) +
                       "' (optimizers keep float32 or float64 state)");
      }
    } else if (name == "shape") {
      std::size_t at = 0;
      while (at < value.size()) {
        const std::size_t comma = std::min(value.find(',', at), value.size());
        s.shape.push_back(parse_count(path, key, value.substr(at, comma - at)));
        at = comma + 1;
      }
    } else {
      fail(path, "metadata '" + key + "': unknown field '" + name + "'");
    }
    ++seen;
  }
  if (seen != 4) fail(path, "metadata '" + key + "': expected calls, updates, dtype and shape");
  if (s.updates > s.calls) fail(path, "metadata '" + key + "': more updates than step calls");
  return s;
}

}  // namespace

void OptimizerImpl::save(const std::string& path) const {
  const std::vector<std::string> names = buffer_names(algorithm_->kind());
  SafetensorsFile file;
  file.metadata[kFormatKey] = kFormat;
  file.metadata[kOptimizerKey] = algorithm_->name();
  file.metadata[kEpochKey] = std::to_string(epoch_);
  for (const auto& [param, state] : states_) {
    file.metadata[std::string(kParamPrefix) + param] = describe(state);
    for (std::size_t k = 0; k < state.buffers.size() && k < names.size(); ++k) {
      if (state.buffers[k].defined()) file.tensors[param + "." + names[k]] = state.buffers[k];
    }
  }
  write_safetensors(path, file);
}

void OptimizerImpl::load(const std::string& path, Device device) {
  SafetensorsFile file = read_safetensors(path);
  const auto meta = [&](const char* key) -> const std::string& {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end()) fail(path, std::string("no '") + key + "' in its metadata");
    return it->second;
  };
  if (meta(kFormatKey) != kFormat)
    fail(path, "its format is '" + meta(kFormatKey) + "', not an optimizer state");
  if (meta(kOptimizerKey) != algorithm_->name())
    fail(path, "it holds the state of " + meta(kOptimizerKey) + ", this optimizer is " +
                   algorithm_->name());
  const std::int64_t epoch = parse_count(path, kEpochKey, meta(kEpochKey));

  // Every parameter's state, checked against its buffers, before anything is replaced.
  const std::vector<std::string> names = buffer_names(algorithm_->kind());
  std::unordered_map<std::string, ParamState> states;
  std::size_t buffers_used = 0;
  for (const auto& [key, text] : file.metadata) {
    if (key.rfind(kParamPrefix, 0) != 0) continue;
    const std::string param = key.substr(kParamPrefix.size());
    ParamState s = parse(path, key, text);
    s.device = device;
    if (s.updates > 0) s.buffers.resize(kernels::kMaxOptimStates);
    for (std::size_t k = 0; k < names.size(); ++k) {
      const auto it = file.tensors.find(param + "." + names[k]);
      if (it == file.tensors.end()) continue;
      if (s.updates == 0) fail(path, "'" + it->first + "' belongs to a parameter never updated");
      const Tensor& b = it->second;
      if (b.shape() != s.shape || b.dtype() != s.dtype)
        fail(path, concat("'", it->first, "' is ", b.shape(), " ", b.dtype(), " but parameter '",
                          param, "' is ", s.shape, " ", s.dtype));
      s.buffers[k] = b.to(device);
      ++buffers_used;
    }
    states.emplace(param, std::move(s));
  }
  if (buffers_used != file.tensors.size()) {
    for (const auto& [name, t] : file.tensors) {
      bool known = false;
      for (const auto& [param, s] : states) {
        for (std::size_t k = 0; k < s.buffers.size() && k < names.size(); ++k) {
          known = known || (name == param + "." + names[k] && s.buffers[k].defined());
        }
      }
      if (!known) fail(path, "tensor '" + name + "' is no buffer of " + algorithm_->name());
    }
  }
  // A buffer the options need must be there (a momentum buffer saved without momentum, or
  // the other way round, would silently change the run).
  for (auto& [param, s] : states) {
    s.options = algorithm_->add(param);
    if (s.updates == 0) continue;
    const Tensor like = zeros(s.shape, TensorOptions{}.with_dtype(s.dtype));
    const std::vector<Tensor> expected = algorithm_->make_state(s.options, like);
    for (std::size_t k = 0; k < expected.size() && k < names.size(); ++k) {
      if (expected[k].defined() != s.buffers[k].defined())
        fail(path, concat("parameter '", param, "' ", s.buffers[k].defined() ? "has" : "lacks",
                          " a ", names[k], ", which its options ",
                          expected[k].defined() ? "need" : "do not use"));
    }
  }
  states_ = std::move(states);
  ++generation_;
  epoch_ = epoch;
}

}  // namespace ember::detail
