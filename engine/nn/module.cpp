// The Module base: parameter, buffer and sub-module registries, modes, device and dtype
// moves, and state dicts in memory and as safetensors files.
#include "ember/nn/module.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

#include "ember/error.hpp"
#include "engine/internal.hpp"
#include "engine/ppl/safetensors.hpp"

namespace ember::nn {
namespace {

std::string type_name(const Module& m) {
  const char* mangled = typeid(m).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && demangled != nullptr ? demangled : mangled;
  std::free(demangled);
  return out;
}

// A copy of `value` with the same role: a leaf that requires grad for a parameter, a
// detached tensor for a buffer.
Tensor remade(const Tensor& value, bool parameter) {
  Tensor t = value.detach();
  if (parameter) t.requires_grad_();
  return t;
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  throw ValueError(type_name(*this) +
                   " has no single-tensor forward: call it through its own operator()");
}

void Module::check_new_name(const std::string& name) const {
  EMBER_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: the name '", name,
              "' must be nonempty and without '.'");
  auto taken = [&](const auto& slots) {
    for (const Slot& s : slots)
      if (s.name == name) return true;
    return false;
  };
  bool child = false;
  for (const auto& [existing, m] : children_) child = child || existing == name;
  EMBER_CHECK(!taken(params_) && !taken(buffers_) && !child, "Module: '", name,
              "' is registered already");
}

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  EMBER_CHECK(value.defined(), "Module::register_parameter: '", name, "' is undefined");
  EMBER_CHECK_DTYPE(is_floating(value.dtype()), "Module::register_parameter: '", name,
                    "' must be floating, got ", value.dtype());
  check_new_name(name);
  params_.push_back({name, remade(value, true)});
  return params_.back().value;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  EMBER_CHECK(value.defined(), "Module::register_buffer: '", name, "' is undefined");
  check_new_name(name);
  buffers_.push_back({name, value.detach()});
  return buffers_.back().value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  EMBER_CHECK(m != nullptr, "Module::register_module: '", name, "' is null");
  EMBER_CHECK(m.get() != this, "Module::register_module: '", name, "' is the module itself");
  check_new_name(name);
  children_.emplace_back(name, std::move(m));
}

std::vector<std::pair<std::string, Tensor*>> Module::named_slots(std::deque<Slot> Module::*kind) {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (Slot& s : this->*kind) out.emplace_back(s.name, &s.value);
  for (auto& [prefix, child] : children_) {
    for (auto& [name, ptr] : child->named_slots(kind)) out.emplace_back(prefix + "." + name, ptr);
  }
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters() {
  return named_slots(&Module::params_);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  return named_slots(&Module::buffers_);
}

std::vector<Tensor> Module::parameters() {
  std::vector<Tensor> out;
  for (auto& [name, ptr] : named_parameters()) out.push_back(*ptr);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() {
  std::vector<std::pair<std::string, Module*>> out;
  for (auto& [name, child] : children_) out.emplace_back(name, child.get());
  return out;
}

std::int64_t Module::num_parameters() {
  std::int64_t n = 0;
  for (auto& [name, ptr] : named_parameters()) n += ptr->numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  for (auto& [name, ptr] : named_parameters())
    if (!(ptr->device() == device)) *ptr = remade(ptr->detach().to(device), true);
  for (auto& [name, ptr] : named_buffers())
    if (!(ptr->device() == device)) *ptr = ptr->to(device);
}

void Module::to(DType dtype) {
  EMBER_CHECK_DTYPE(is_floating(dtype), "Module::to: parameters are floating, got ", dtype);
  for (auto& [name, ptr] : named_parameters())
    if (ptr->dtype() != dtype) *ptr = remade(ptr->detach().to(dtype), true);
  for (auto& [name, ptr] : named_buffers())
    if (is_floating(ptr->dtype()) && ptr->dtype() != dtype) *ptr = ptr->to(dtype);
}

void Module::zero_grad() {
  for (auto& [name, ptr] : named_parameters()) ptr->zero_grad();
}

StateDict Module::state_dict() {
  StateDict out;
  for (auto& [name, ptr] : named_parameters()) out.emplace(name, ptr->detach());
  for (auto& [name, ptr] : named_buffers()) out.emplace(name, ptr->detach());
  return out;
}

void Module::load_checked(const StateDict& dict, bool strict, const std::string& file) {
  // From a file, what is missing, unexpected or of another dtype is a fault of the file.
  const bool from_file = !file.empty();
  const std::string where = from_file ? "Module::load: file '" + file + "': " : "load_state_dict: ";
  std::vector<std::pair<Tensor*, Tensor>> copies;
  std::map<std::string, bool> used;
  for (const auto& [name, t] : dict) used[name] = false;
  auto check = [&](const std::string& name, Tensor* slot) {
    auto it = dict.find(name);
    if (it == dict.end()) {
      if (strict) {
        if (from_file) throw IoError(where + "no tensor for key '" + name + "'");
        throw ValueError(where + "no tensor for key '" + name + "'");
      }
      return;
    }
    used[name] = true;
    const Tensor& src = it->second;
    EMBER_CHECK_SHAPE(src.shape() == slot->shape(), where, "key '", name, "' has shape ",
                      src.shape(), " but the module's is ", slot->shape());
    if (src.dtype() != slot->dtype()) {
      const std::string what = "key '" + name + "' has dtype " + dtype_name(src.dtype()) +
                               " but the module's is " + dtype_name(slot->dtype());
      if (from_file) throw IoError(where + what);
      throw DTypeError(where + what);
    }
    copies.emplace_back(slot, src);
  };
  for (auto& [name, ptr] : named_parameters()) check(name, ptr);
  for (auto& [name, ptr] : named_buffers()) check(name, ptr);
  if (strict) {
    for (const auto& [name, seen] : used) {
      if (seen) continue;
      if (from_file) throw IoError(where + "unexpected key '" + name + "'");
      throw ValueError(where + "unexpected key '" + name + "'");
    }
  }
  // In place, so that leaves shared with the param store (module()) take the values too.
  NoGradGuard no_grad;
  for (auto& [slot, src] : copies) {
    const Tensor from = src.device() == slot->device() ? src : src.to(slot->device());
    if (slot->numel() > 0) detail::backend(*slot).copy(detail::arg(*slot), detail::arg(from));
  }
}

void Module::load_state_dict(const StateDict& dict, bool strict) { load_checked(dict, strict, ""); }

void Module::save(const std::string& path) { save_safetensors(path, state_dict()); }

void Module::load(const std::string& path, bool strict) {
  load_checked(load_safetensors(path), strict, path);
}

StateDict load_safetensors(const std::string& path) {
  return detail::read_safetensors(path).tensors;
}

void save_safetensors(const std::string& path, const StateDict& tensors) {
  detail::SafetensorsFile file;
  file.tensors = tensors;
  file.metadata["format"] = "pt";  // what safetensors.torch.save_file writes
  detail::write_safetensors(path, file);
}

}  // namespace ember::nn
