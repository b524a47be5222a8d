// The base of every network: a Module owns named parameters (leaves an optimizer trains),
// buffers (state that is not trained, such as BatchNorm's running statistics) and named
// sub-modules, with PyTorch's dotted names ("fc1.weight", "bn.running_mean"), so a state
// dict saved here loads into torch and the other way round. module(name, m) registers a
// module's parameters with the param store, so models and guides can contain networks.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::nn {

// Parameters and buffers by dotted path, as torch's state_dict.
using StateDict = std::map<std::string, Tensor>;

// A single-tensor module overrides forward(const Tensor&), which operator() calls. A module
// with several inputs or outputs (an encoder's loc and scale) gives itself an operator() of
// its own signature, returning a struct of named tensors, which hides this one:
//   struct Out { Tensor loc, scale; };
//   Out operator()(const Tensor& x);   ...   auto [loc, scale] = encoder(x);
// Modules are moved, never copied: a layer refers to its own parameter slots.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = delete;

  // The single-tensor forward; the default throws a ValueError naming the module's type.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  // Every parameter, depth first: own ones by name, sub-modules' as "<sub>.<name>". The
  // pointers address the module's slots: assigning through one replaces the parameter.
  std::vector<std::pair<std::string, Tensor*>> named_parameters();
  std::vector<Tensor> parameters();
  // Buffers likewise (running statistics and counters; not trained, not params).
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  // The direct sub-modules, in registration order.
  std::vector<std::pair<std::string, Module*>> named_children();
  // The number of parameter elements (weights and biases), as sum(p.numel()) in torch.
  std::int64_t num_parameters();

  // Training mode (the default) or evaluation mode, for this module and every sub-module:
  // Dropout drops only in training, BatchNorm normalizes by batch statistics and updates its
  // running ones only in training.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves (copies) every parameter and buffer to `device`; parameters stay leaves that
  // require grad.
  void to(Device device);
  // Converts the floating parameters and buffers to `dtype` (integer buffers keep theirs).
  void to(DType dtype);
  // Clears every parameter's gradient.
  void zero_grad();

  // Parameters and buffers by dotted path (detached; they share the module's memory).
  StateDict state_dict();
  // Copies `dict` into the parameters and buffers, in place, so a module whose parameters
  // module() registered updates the param store too. strict: the keys must be exactly the
  // module's (a ValueError names the first missing or unexpected one); always: each shape
  // must match (ShapeError) and each dtype (DTypeError), both naming the key. Everything is
  // checked before anything is copied, so a failure leaves the module as it was.
  void load_state_dict(const StateDict& dict, bool strict = true);
  // The state dict as a safetensors file with torch's key names (written beside `path` and
  // renamed onto it): safetensors.torch.load_file and torch's load_state_dict read it.
  void save(const std::string& path);
  // Loads a safetensors file (one written by save, or by safetensors.torch.save_file from a
  // torch module of the same structure). All or nothing: a missing key, an unexpected key
  // (strict) or a dtype mismatch is an IoError, a shape mismatch a ShapeError, each naming
  // the file and the key; a failure leaves the module as it was.
  void load(const std::string& path, bool strict = true);

 protected:
  // Registers a parameter (made a leaf that requires grad) and returns its slot.
  Tensor& register_parameter(const std::string& name, Tensor value);
  // Registers a buffer (kept detached) and returns its slot.
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 private:
  struct Slot {
    std::string name;
    Tensor value;
  };
  std::vector<std::pair<std::string, Tensor*>> named_slots(std::deque<Slot> Module::*kind);
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name) const;
  void load_checked(const StateDict& dict, bool strict, const std::string& file);

  std::deque<Slot> params_;  // deques: slots keep their addresses as modules are built
  std::deque<Slot> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Reads every tensor of a safetensors file (on the CPU) by name, and writes one: what save
// and load use, for inspecting a checkpoint or writing tensors of one's own.
StateDict load_safetensors(const std::string& path);
void save_safetensors(const std::string& path, const StateDict& tensors);

}  // namespace ember::nn
