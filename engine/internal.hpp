// Engine-internal helpers shared by the op implementations: making tensors and views,
// describing them to launchers, recording autograd nodes; and the distribution ops.
#pragma once

#include <array>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/ops.hpp"
#include "ember/random.hpp"
#include "ember/tensor.hpp"
#include "kernels/backend.hpp"
#include "kernels/common/tensor_arg.hpp"
#include "kernels/cpu/host_allocator.hpp"

namespace ember::detail {

// A shared object in a small block from the calling thread's free lists: a small model's step
// makes hundreds of tensors, storages and autograd nodes.
template <typename T, typename... Args>
std::shared_ptr<T> pooled(Args&&... args) {
  return std::allocate_shared<T>(kernels::cpu::SmallBlockAllocator<T>{},
                                 std::forward<Args>(args)...);
}

// A fresh contiguous tensor (uninitialized memory).
Tensor make_tensor(const Shape& shape, DType dtype, Device device);
// A fresh contiguous CPU tensor in page-locked memory for uploads to `upload_device`
// (Tensor::pin_memory).
Tensor make_pinned_tensor(const Shape& shape, DType dtype, Device upload_device);
// A view of base's storage with its own geometry; no autograd recording.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, std::int64_t offset);
// Tensor::permute from any list of dims (no vector to build: the enumeration's contractions
// permute at every time step).
Tensor permute_dims(const Tensor& t, std::span<const int> dims);

kernels::Backend& backend(const Tensor& t);
kernels::Backend& backend(Device d);

// Orders the next use of t's memory on the calling thread's current stream after the work of
// the stream that last used it (see ember/stream.hpp). arg() and broadcast_arg() do this; call
// it before handing a tensor's memory to a backend any other way (its data_ptr()).
void order_use(const Tensor& t);

// The kernel's picture of a tensor (its use ordered on the current stream).
kernels::TensorArg arg(const Tensor& t);
// The tensor seen with `shape` (it must broadcast to it): broadcast dims get stride 0.
kernels::TensorArg broadcast_arg(const Tensor& t, const Shape& shape);
// As broadcast_arg, except that a floating CPU tensor of one element spread over more elements
// (one element, or a view that repeats one: every stride 0) travels by value (a scalar
// argument): the CPU loop then reads it from a slot beside the contiguous operands in a flat
// loop that vectorizes, not through a stride-0 walk. For operands of elementwise ops and of
// the distribution kernels. The value is read when the op is issued: code that records ops to
// replay them later must pass such operands through memory (broadcast_arg) instead.
kernels::TensorArg operand_arg(const Tensor& t, const Shape& shape);

// sum_to(a * b, shape) in one pass over the broadcast operands, without the product's
// temporary (backend reduce_product). Not recorded for autograd.
Tensor mul_sum_to(const Tensor& a, const Tensor& b, const Shape& shape);

// True when every element of every tensor is finite: per device, one pass over all of them
// (on a GPU one launch and one read).
bool all_finite(std::span<const Tensor> tensors);

// Throws DeviceError naming op and both devices when they differ.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);

// True when grad mode is on and some input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// A sequence that keeps up to N elements inline and spills to a vector beyond: for the
// tape's per-node lists (a node's edges, the gradients its backward returns), which have one
// to four elements almost always and would otherwise cost a heap block each. Only the
// elements it holds are constructed: an empty list writes no element (a list that zeroed
// its whole inline array cost a `rep stos` per recorded op).
template <typename T, std::size_t N>
class InlineVector {
 public:
  InlineVector() noexcept {}  // NOLINT(modernize-use-equals-default): leaves the slots raw
  explicit InlineVector(std::size_t n) {
    if (n > N) {
      more_.resize(n);
    } else {
      for (std::size_t k = 0; k < n; ++k) new (slot(k)) T();
    }
    size_ = n;
  }
  InlineVector(std::initializer_list<T> items) { append(items.begin(), items.size()); }
  InlineVector(const InlineVector& other) { append(other.begin(), other.size_); }
  InlineVector(InlineVector&& other) noexcept { take(other); }
  InlineVector& operator=(const InlineVector& other) {
    if (this != &other) {
      clear();
      append(other.begin(), other.size_);
    }
    return *this;
  }
  InlineVector& operator=(InlineVector&& other) noexcept {
    if (this != &other) {
      clear();
      take(other);
    }
    return *this;
  }
  ~InlineVector() { clear(); }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* begin() { return size_ > N ? more_.data() : slot(0); }
  T* end() { return begin() + size_; }
  const T* begin() const { return size_ > N ? more_.data() : slot(0); }
  const T* end() const { return begin() + size_; }
  T& operator[](std::size_t k) { return begin()[k]; }
  const T& operator[](std::size_t k) const { return begin()[k]; }
  void push_back(T item) { emplace_back(std::move(item)); }
  // The element made from args at the end, made where it stays (while inline).
  template <typename... Args>
  T& emplace_back(Args&&... args) {
    T* made;
    if (size_ < N) {
      made = new (slot(size_)) T(std::forward<Args>(args)...);
    } else {
      if (size_ == N) {  // spill: the inline elements move to the vector
        more_.reserve(2 * N);
        for (std::size_t k = 0; k < N; ++k) more_.push_back(std::move(*slot(k)));
        destroy_inline(N);
      }
      made = &more_.emplace_back(std::forward<Args>(args)...);
    }
    ++size_;
    return *made;
  }
  void clear() {
    if (size_ > N) {
      more_.clear();
    } else {
      destroy_inline(size_);
    }
    size_ = 0;
  }

 private:
  T* slot(std::size_t k) { return std::launder(reinterpret_cast<T*>(slots_)) + k; }
  const T* slot(std::size_t k) const {
    return std::launder(reinterpret_cast<const T*>(slots_)) + k;
  }
  void destroy_inline(std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) slot(k)->~T();
  }
  // Copies n elements into this empty list.
  void append(const T* from, std::size_t n) {
    if (n > N) {
      more_.assign(from, from + n);
    } else {
      for (std::size_t k = 0; k < n; ++k) new (slot(k)) T(from[k]);
    }
    size_ = n;
  }
  // Moves other's elements into this empty list and leaves other empty.
  void take(InlineVector& other) noexcept {
    if (other.size_ > N) {
      more_ = std::move(other.more_);
    } else {
      for (std::size_t k = 0; k < other.size_; ++k) new (slot(k)) T(std::move(*other.slot(k)));
    }
    size_ = other.size_;
    other.clear();
  }

  alignas(T) unsigned char slots_[N * sizeof(T)];
  std::vector<T> more_;
  std::size_t size_ = 0;
};

// What a backward function returns: one gradient per input, in input order (an undefined
// Tensor where none flows).
using Grads = InlineVector<Tensor, 4>;

// The backward of one recorded op: output gradient -> the gradients of its inputs (Grads).
// A move-only callable whose closure lives in a
// small block of the thread's lists (kernels/cpu/host_allocator.hpp), as the tape's nodes do:
// std::function would put most closures on the heap, one malloc per recorded op.
class BackwardFn {
 public:
  BackwardFn() = default;
  BackwardFn(std::nullptr_t) {}
  template <typename F>
  requires(!std::is_same_v<std::decay_t<F>, BackwardFn> &&
           std::is_invocable_r_v<Grads, const std::decay_t<F>&, const Tensor&>)
      BackwardFn(F&& f) {  // NOLINT: converts from any closure, as std::function does
    using Fn = std::decay_t<F>;
    void* block = kernels::cpu::small_block_allocate(sizeof(Fn));
    try {
      closure_ = new (block) Fn(std::forward<F>(f));
    } catch (...) {
      kernels::cpu::small_block_free(block);
      throw;
    }
    call_ = [](const void* c, const Tensor& g) { return (*static_cast<const Fn*>(c))(g); };
    destroy_ = [](void* c) {
      static_cast<Fn*>(c)->~Fn();
      kernels::cpu::small_block_free(c);
    };
  }
  BackwardFn(BackwardFn&& other) noexcept { *this = std::move(other); }
  BackwardFn& operator=(BackwardFn&& other) noexcept {
    if (this != &other) {
      reset();
      closure_ = std::exchange(other.closure_, nullptr);
      call_ = other.call_;
      destroy_ = other.destroy_;
    }
    return *this;
  }
  BackwardFn& operator=(std::nullptr_t) {
    reset();
    return *this;
  }
  BackwardFn(const BackwardFn&) = delete;
  BackwardFn& operator=(const BackwardFn&) = delete;
  ~BackwardFn() { reset(); }

  explicit operator bool() const { return closure_ != nullptr; }
  Grads operator()(const Tensor& grad) const { return call_(closure_, grad); }

 private:
  void reset() {
    if (closure_ != nullptr) destroy_(std::exchange(closure_, nullptr));
  }
  void* closure_ = nullptr;
  Grads (*call_)(const void*, const Tensor&) = nullptr;
  void (*destroy_)(void*) = nullptr;
};

// Makes `out` the result of a recorded op with these inputs (call only if needs_grad).
// Save outputs in `fn` through saved(out), never `out` itself: a node holding its own
// output would form a reference cycle.
void record_many(const char* name, std::span<const Tensor> inputs, Tensor& out, BackwardFn fn);
inline void record(const char* name, std::initializer_list<Tensor> inputs, Tensor& out,
                   BackwardFn fn) {
  record_many(name, std::span<const Tensor>(inputs.begin(), inputs.size()), out, std::move(fn));
}
inline Tensor saved(const Tensor& out) { return out.detach(); }

// ---- the stick-breaking map (engine/ops/reduce.cpp) ----
// The pieces of a stick broken at the fractions z along the last dim (StickBreakingTransform's
// last step), (..., n) to (..., n + 1) on the simplex: y_k = z_k prod_{j<k} (1 - z_j), y_n =
// prod_j (1 - z_j). One line kernel, and its gradient one more (kernels/common/reduce_bodies.hpp).
Tensor stick_breaking(const Tensor& z);

// ---- distribution ops (engine/ops/distributions.cpp) ----

// The fused log-prob kernel of `family` over the broadcast of value and params: one pass
// computes the log-density and the partials of every operand that requires grad; the
// backward weights them by the incoming gradient and sums back to each operand's shape in
// one pass (mul_sum_to: no temporary for the product).
Tensor fused_log_prob(kernels::LogProbFamily family, const Tensor& value,
                      std::span<const Tensor> params);

// A fresh tensor of draws of `op` (no autograd), its params broadcast to `shape`, from gen.
Tensor draw(kernels::SampleOp op, const Shape& shape, DType dtype, Device device,
            std::initializer_list<Tensor> params, Generator& gen);

// Draws of Gamma(alpha, 1) with shape `shape` (alpha broadcasts to it), by the StandardGamma
// sampler (kernels/math/distributions/gamma.hpp). When alpha requires grad the draw is
// recorded with the implicit reparameterization gradient: grad_alpha = g * dx/dalpha, summed
// back to alpha's shape.
Tensor standard_gamma(const Tensor& alpha, const Shape& shape, Generator& gen);
// The logs of such draws (the LogStandardGamma sampler), which do not underflow at tiny
// concentrations, recorded likewise with d log(x) / dalpha.
Tensor log_standard_gamma(const Tensor& alpha, const Shape& shape, Generator& gen);
// A Beta draw from the logs a and b of two Gamma draws: sigmoid(a - b), the ratio
// x / (x + y), inside (tiny, 1 - eps), in one kernel.
Tensor gamma_ratio_of_logs(const Tensor& a, const Tensor& b);

// ---- argument errors held for their site (engine/distributions/distribution.cpp) ----

// While one is alive on a thread (an ELBO runs a program under it, validation on), a
// distribution built there with an invalid argument does not throw: the first such error is
// held until the sample site the distribution goes to takes it and throws it with the
// site's name; what no site takes is thrown by the ELBO when the program returns.
class HeldArgErrors {
 public:
  HeldArgErrors();
  ~HeldArgErrors();
  HeldArgErrors(const HeldArgErrors&) = delete;
  HeldArgErrors& operator=(const HeldArgErrors&) = delete;

 private:
  bool previous_;
};
bool arg_error_held();
// Throws the held error, if any, as a ValueError with `prefix` in front ("site 'x': ").
void throw_held_arg_error(const std::string& prefix);

// ---- random (engine/random.cpp) ----

// subsample_size distinct indices drawn uniformly from [0, size), in random order, on the
// host from the calling thread's generator (the same indices on every device for one seed).
Tensor random_subset(std::int64_t size, std::int64_t subsample_size, Device device);

// The indices 0..size-1 (int64) of a plate that is not subsampled. On the CPU the tensor is
// shared, from the calling thread's cache of its last few sizes, so a step does not rebuild
// it: callers must not write to it.
Tensor full_range(std::int64_t size, Device device);

}  // namespace ember::detail
