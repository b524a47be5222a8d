// The Tensor handle: an n-d strided view of device or host memory that can record the
// operations applied to it for reverse-mode automatic differentiation.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ember/device.hpp"
#include "ember/dtype.hpp"
#include "ember/shape.hpp"

namespace ember {

class Tensor;

namespace autograd {
class Node;
}

namespace detail {
class StreamUse;
}

// A block of memory on one device, freed through its device's allocator. On a device with
// streams it remembers the stream that last used it (see ember/stream.hpp): work on another
// stream waits for that one first, and memory used by several streams is freed after all.
// Pinned (page-locked) host memory remembers the stream of the last upload that read it, and
// is released only after that upload.
class Storage {
 public:
  Storage(Device device, std::size_t nbytes);
  // Page-locked host memory from which uploads to `device` run asynchronously: a CPU storage
  // that `device`'s backend allocates and frees (on the CPU, ordinary memory).
  struct PinnedFor {
    Device device;
  };
  Storage(PinnedFor pinned, std::size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // CPU memory of at most this many bytes lives in the storage object itself, which is one
  // heap block instead of two: a small model's step makes dozens of such tensors.
  static constexpr std::size_t kInlineBytes = 64;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool is_pinned() const { return pinned_; }
  // The device that allocated this memory: device(), or the upload target of pinned memory.
  Device allocator_device() const { return allocator_device_; }
  // Whether the memory holds the int64 run 0, 1, ..., n - 1 that nothing writes afterwards
  // (an enumerated support, marked by its maker): index_rows reads an index over it as the
  // identity, a view of the table instead of a gather.
  bool holds_iota() const { return iota_; }
  void mark_iota() { iota_ = true; }

 private:
  friend class detail::StreamUse;
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_;
  Device allocator_device_;
  bool pinned_ = false;
  bool iota_ = false;
  std::atomic<void*> stream_{nullptr};              // the last user's stream (opaque to the engine)
  std::atomic<bool> shared_{false};                 // used by more than one stream
  alignas(64) unsigned char inline_[kInlineBytes];  // data_ of small CPU memory
};

namespace detail {

struct TensorImpl {
  // Made in place by the tensor's maker, which sets every field: a user-provided constructor
  // keeps value-initialization (make_shared) from zeroing the whole object first.
  TensorImpl() {}  // NOLINT(modernize-use-equals-default)
  std::shared_ptr<Storage> storage;
  std::int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements; 0 for broadcast (expanded) dims
  DType dtype = DType::Float32;
  Device device;

  // Autograd state. A leaf that requires grad accumulates into `grad`; a non-leaf
  // result of a recorded op points at the node that made it.
  bool requires_grad = false;
  std::shared_ptr<Tensor> grad;
  std::shared_ptr<autograd::Node> grad_fn;
};

}  // namespace detail

// Options for creating a tensor: dtype (default float32), device (default CPU) and
// whether the new tensor is a leaf that requires grad.
struct TensorOptions {
  DType dtype = DType::Float32;
  Device device = Device::cpu();
  bool requires_grad = false;

  TensorOptions& with_dtype(DType d) {
    dtype = d;
    return *this;
  }
  TensorOptions& with_device(Device d) {
    device = d;
    return *this;
  }
  TensorOptions& with_requires_grad(bool r = true) {
    requires_grad = r;
    return *this;
  }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int dim() const { return impl().shape.size(); }
  // Size of one dim; negative dims count from the right.
  std::int64_t size(int dim) const;
  std::int64_t numel() const { return impl().shape.numel(); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  bool is_contiguous() const;
  // Pointer to the first element (on the tensor's device).
  void* data_ptr() const {
    const detail::TensorImpl& i = impl();
    return static_cast<char*>(i.storage->data()) + i.offset * element_size(i.dtype);
  }
  template <typename T>
  T* data() const;

  // ---- conversions and copies (recorded for autograd where differentiable) ----
  // non_blocking: an upload from pinned memory made for this device (pin_memory(device)) is
  // queued on the current stream and to() returns at once. Work on another stream that uses
  // the result waits for the upload on the device (ember/stream.hpp), and the pinned memory is
  // kept until the upload is done; do not write into it before. Any other copy waits as usual.
  Tensor to(Device device, bool non_blocking = false) const;
  Tensor to(DType dtype) const;
  Tensor contiguous() const;
  Tensor clone() const;
  // A copy in page-locked host memory, from which uploads to `device` run asynchronously
  // (to(device, true)); this tensor itself when it already is one. CPU tensors only; not
  // recorded for autograd (it is for data). With `device` the CPU (no GPU) the memory is
  // ordinary, so code written for a GPU runs unchanged.
  Tensor pin_memory(Device device = Device::best()) const;
  // True for memory made by pin_memory (or a view of it).
  bool is_pinned() const;
  // The single value of a one-element tensor (synchronizes with the device).
  double item() const;
  // All values, row-major, converted to T (synchronizes with the device).
  template <typename T>
  std::vector<T> to_vector() const;
  std::string str() const;

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as requiring grad; throws on a non-leaf or an integer tensor.
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // The accumulated gradient of a leaf; undefined until a backward reaches it.
  Tensor grad() const;
  void zero_grad() const;
  // Reverse-mode sweep from this tensor. A scalar needs no seed; otherwise pass one of
  // the same shape. The recorded graph's saved tensors are released afterwards.
  void backward(const Tensor& seed = Tensor()) const;
  // The same data, cut from the graph.
  Tensor detach() const;
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }

  // ---- views (share memory with this tensor; differentiable) ----
  Tensor reshape(const Shape& shape) const;  // one dim may be -1; copies if it must
  Tensor view(const Shape& shape) const;     // like reshape, but throws rather than copy
  Tensor flatten() const { return reshape({-1}); }
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor squeeze() const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim; new dims on the left
  Tensor transpose(int dim0, int dim1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor permute(const std::vector<int>& dims) const;
  Tensor slice(int dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor narrow(int dim, std::int64_t start, std::int64_t length) const {
    return slice(dim, start, start + length);
  }
  Tensor select(int dim, std::int64_t index) const;

  // Every accessor goes through here: inline, with the error for an undefined tensor out of
  // line.
  detail::TensorImpl& impl() const {
    if (impl_ == nullptr) [[unlikely]]
      throw_undefined();
    return *impl_;
  }
  const std::shared_ptr<detail::TensorImpl>& impl_ptr() const { return impl_; }

 private:
  [[noreturn]] static void throw_undefined();
  std::shared_ptr<detail::TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- creation ----
Tensor empty(const Shape& shape, const TensorOptions& opts = {});
Tensor zeros(const Shape& shape, const TensorOptions& opts = {});
Tensor ones(const Shape& shape, const TensorOptions& opts = {});
Tensor full(const Shape& shape, double value, const TensorOptions& opts = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar_tensor(double value, const TensorOptions& opts = {});
// Values start, start+step, ... below end (as NumPy's arange).
Tensor arange(double start, double end, double step = 1.0, const TensorOptions& opts = {});
Tensor arange(double end, const TensorOptions& opts = {});
// `steps` evenly spaced values from start to end inclusive.
Tensor linspace(double start, double end, std::int64_t steps, const TensorOptions& opts = {});
// A 1-d tensor from a list of values.
Tensor tensor(std::initializer_list<double> values, const TensorOptions& opts = {});
// A 2-d tensor from nested lists; rows must be of equal length.
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows,
              const TensorOptions& opts = {});
// A tensor of the given shape from row-major host values of any supported type.
template <typename T>
Tensor from_vector(std::span<const T> values, const Shape& shape, const TensorOptions& opts = {});
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                   const TensorOptions& opts = {}) {
  return from_vector(std::span<const T>(values), shape, opts);
}

// Disables recording of operations for autograd in the current thread while alive.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};
bool grad_enabled();

// Argument checks (distribution parameters and values, index bounds, subsample indices; on a
// GPU each costs a device sync) are on by default; switch them off for speed once a model is
// known to be good. set_validation_enabled is process-wide; a ValidationScope overrides it for
// the calling thread only while alive (scopes nest); a distribution's own validate_args(bool)
// overrides both for its values.
void set_validation_enabled(bool on);
// The calling thread's setting: its innermost ValidationScope, else the process-wide one.
bool validation_enabled();

class ValidationScope {
 public:
  explicit ValidationScope(bool on);
  ~ValidationScope();
  ValidationScope(const ValidationScope&) = delete;
  ValidationScope& operator=(const ValidationScope&) = delete;

 private:
  int previous_;  // the thread's override before: -1 none, 0 off, 1 on
};

// A parameter as it is handed between the ELBO, SVI and an optimizer: a contiguous leaf that
// requires grad, under its name. Its .grad() may be undefined; an optimizer skips such a
// parameter for that step.
struct NamedTensor {
  std::string name;
  Tensor param;
};

}  // namespace ember
