// Tensor storage, geometry, creation, host transfer and printing.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iomanip>
#include <sstream>

#include "engine/autograd/node.hpp"
#include "engine/compile/plan.hpp"
#include "engine/internal.hpp"
#include "kernels/common/counters.hpp"

namespace ember {

// ------------------------------------------------------------------------ Storage ----
Storage::Storage(Device device, std::size_t nbytes)
    : data_(device.is_cpu() && nbytes <= kInlineBytes
                ? static_cast<void*>(inline_)
                : kernels::backend_for(device).allocate(nbytes)),
      nbytes_(nbytes),
      device_(device),
      allocator_device_(device) {
  ++kernels::t_event_counters.allocations;
  kernels::t_event_counters.bytes_allocated += nbytes;
  if (data_ == inline_) return;  // CPU memory: the CPU has no streams
  // Allocated in the order of the current stream: that is its first user.
  if (kernels::StreamControl* streams = kernels::backend_for(device).streams()) {
    stream_.store(streams->current(), std::memory_order_relaxed);
  }
}

// No stream has used pinned memory yet: it is first read by an upload (StreamUse::read_by).
Storage::Storage(PinnedFor pinned, std::size_t nbytes)
    : data_(kernels::backend_for(pinned.device).allocate_pinned(nbytes)),
      nbytes_(nbytes),
      device_(Device::cpu()),
      allocator_device_(pinned.device),
      pinned_(true) {
  ++kernels::t_event_counters.allocations;
  kernels::t_event_counters.bytes_allocated += nbytes;
}

Storage::~Storage() {
  if (data_ == nullptr || data_ == inline_) return;
  kernels::Backend& allocator = kernels::backend_for(allocator_device_);
  void* stream = stream_.load(std::memory_order_acquire);
  const bool shared = shared_.load(std::memory_order_relaxed);
  if (pinned_) {
    allocator.deallocate_pinned(data_, stream, shared);
  } else {
    allocator.deallocate(data_, stream, shared);
  }
}

namespace detail {

// Orders a use of the storage on the calling thread's current stream after its last user's
// work, when that was another stream (an event wait on the device, no host wait).
class StreamUse {
 public:
  static void order(Storage& s) {
    if (s.device_.is_cpu()) return;
    kernels::StreamControl* streams = kernels::backend_for(s.device_).streams();
    if (streams == nullptr) return;
    void* current = streams->current();
    void* last = s.stream_.load(std::memory_order_acquire);
    if (last == current) return;
    streams->wait(last);
    s.stream_.store(current, std::memory_order_release);
    s.shared_.store(true, std::memory_order_relaxed);
  }

  // Records that an asynchronous upload queued on `stream` reads the pinned host storage, so
  // that its memory is released only after that upload (and any earlier one on another
  // stream). The host needs no ordering: reads of host memory do not conflict.
  static void read_by(Storage& s, void* stream) {
    void* last = s.stream_.exchange(stream, std::memory_order_acq_rel);
    if (last != nullptr && last != stream) s.shared_.store(true, std::memory_order_relaxed);
  }
};

void order_use(const Tensor& t) {
  const std::shared_ptr<Storage>& storage = t.impl().storage;
  if (Recorder* r = recorder()) [[unlikely]]
    r->retain(storage, t.requires_grad(), t.requires_grad() && t.is_leaf());
  StreamUse::order(*storage);
}

}  // namespace detail

// -------------------------------------------------------------------------- Shape ----
std::string Shape::str() const {
  std::ostringstream os;
  os << '(';
  for (int i = 0; i < ndim_; ++i) os << (i ? ", " : "") << d_[i];
  os << ')';
  return os.str();
}

int wrap_dim(int dim, int ndim, const char* op) {
  const int lo = -std::max(ndim, 1), hi = std::max(ndim, 1) - 1;
  EMBER_CHECK_SHAPE(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for a tensor of ",
                    ndim, " dims (expected ", lo, " to ", hi, ")");
  return dim < 0 ? dim + std::max(ndim, 1) : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int n = std::max(a.size(), b.size());
  Shape out = Shape::filled(n, 1);
  for (int i = 0; i < n; ++i) {
    const int ia = a.size() - n + i, ib = b.size() - n + i;
    const std::int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
    EMBER_CHECK_SHAPE(sa == sb || sa == 1 || sb == 1, op, ": shapes ", a, " and ", b,
                      " do not broadcast (dim ", i - n, ": ", sa, " vs ", sb, ")");
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

Shape contiguous_strides(const Shape& shape) {
  Shape s = Shape::filled(shape.size(), 1);
  std::int64_t acc = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    s[i] = acc;
    // A zero dim leaves no elements, but the other dims' strides must still fit in int64.
    EMBER_CHECK_SHAPE(!__builtin_mul_overflow(acc, std::max<std::int64_t>(shape[i], 1), &acc),
                      "shape ", shape, " is too large: its strides overflow int64");
  }
  return s;
}

namespace detail {

namespace {

// A contiguous tensor of `shape` over fresh storage made by make_storage(nbytes).
template <typename MakeStorage>
Tensor make_contiguous(const Shape& shape, DType dtype, Device device, MakeStorage make_storage) {
  for (auto s : shape)
    EMBER_CHECK_SHAPE(s >= 0, "cannot create a tensor of shape ", shape, ": negative size");
  auto impl = pooled<TensorImpl>();
  impl->storage = make_storage(static_cast<std::size_t>(shape.numel()) * element_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  return Tensor(std::move(impl));
}

}  // namespace

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
  return make_contiguous(shape, dtype, device,
                         [device](std::size_t nbytes) { return pooled<Storage>(device, nbytes); });
}

Tensor make_pinned_tensor(const Shape& shape, DType dtype, Device upload_device) {
  return make_contiguous(shape, dtype, Device::cpu(), [upload_device](std::size_t nbytes) {
    return std::make_shared<Storage>(Storage::PinnedFor{upload_device}, nbytes);
  });
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides,
                 std::int64_t offset) {
  auto impl = pooled<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  impl->device = base.device();
  return Tensor(std::move(impl));
}

kernels::Backend& backend(const Tensor& t) { return backend(t.device()); }
kernels::Backend& backend(Device d) {
  ++kernels::t_event_counters.backend_calls;
  if (Recorder* r = recorder()) [[unlikely]]
    return r->backend(d);
  return kernels::backend_for(d);
}

kernels::TensorArg arg(const Tensor& t) {
  order_use(t);
  kernels::TensorArg a;
  a.data = t.data_ptr();
  a.dtype = t.dtype();
  a.ndim = t.dim();
  // Whole arrays, a few vector moves: a loop over the rank became two calls of memcpy.
  static_assert(sizeof(a.sizes) == kMaxRank * sizeof(std::int64_t));
  std::memcpy(a.sizes, t.shape().data(), sizeof(a.sizes));
  std::memcpy(a.strides, t.strides().data(), sizeof(a.strides));
  return a;
}

kernels::TensorArg broadcast_arg(const Tensor& t, const Shape& shape) {
  order_use(t);
  kernels::TensorArg a;
  a.data = t.data_ptr();
  a.dtype = t.dtype();
  a.ndim = shape.size();
  const int lead = shape.size() - t.dim();
  for (int i = 0; i < a.ndim; ++i) {
    a.sizes[i] = shape[i];
    const int j = i - lead;
    a.strides[i] = (j < 0 || t.shape()[j] == 1) ? 0 : t.strides()[j];
  }
  return a;
}

kernels::TensorArg operand_arg(const Tensor& t, const Shape& shape) {
  bool one_element = t.numel() >= 1;
  for (int d = 0; d < t.dim() && one_element; ++d)
    one_element = t.shape()[d] == 1 || t.strides()[d] == 0;
  if (!one_element || shape.numel() <= 1 || !t.device().is_cpu() || !is_floating(t.dtype())) {
    return broadcast_arg(t, shape);
  }
  order_use(t);
  const double value = t.dtype() == kFloat32 ? double{*static_cast<const float*>(t.data_ptr())}
                                             : *static_cast<const double*>(t.data_ptr());
  if (Recorder* r = recorder()) [[unlikely]]
    r->note_scalar_source(t.data_ptr(), t.dtype(), value);
  return kernels::scalar_arg(value, t.dtype());
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK_DEVICE(a.device() == b.device(), op, ": operands are on different devices (",
                     a.device(), " and ", b.device(), "); move one with .to(device)");
}

}  // namespace detail

namespace {
std::atomic<bool> g_validation{true};
thread_local int t_validation = -1;  // this thread's ValidationScope: -1 none, 0 off, 1 on
}  // namespace
void set_validation_enabled(bool on) { g_validation.store(on, std::memory_order_relaxed); }
bool validation_enabled() {
  return t_validation >= 0 ? t_validation == 1 : g_validation.load(std::memory_order_relaxed);
}

ValidationScope::ValidationScope(bool on) : previous_(t_validation) { t_validation = on ? 1 : 0; }
ValidationScope::~ValidationScope() { t_validation = previous_; }

// ------------------------------------------------------------------------- Tensor ----
void Tensor::throw_undefined() {
  EMBER_CHECK(false, "use of an undefined (default-constructed) Tensor");
  std::abort();  // not reached: the check throws
}

std::int64_t Tensor::size(int dim) const {
  return impl().shape[wrap_dim(dim, this->dim(), "size")];
}

bool Tensor::is_contiguous() const {
  const auto& s = impl().shape;
  const auto& st = impl().strides;
  std::int64_t expected = 1;
  for (int i = s.size() - 1; i >= 0; --i) {
    if (s[i] != 1 && st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

template <typename T>
T* Tensor::data() const {
  EMBER_CHECK_DTYPE(dtype_of<T>::value == dtype(), "data<T>: tensor holds ", dtype(),
                    ", not the requested type");
  return static_cast<T*>(data_ptr());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template std::int64_t* Tensor::data<std::int64_t>() const;
template std::uint8_t* Tensor::data<std::uint8_t>() const;

Tensor Tensor::clone() const {
  Tensor out = detail::make_tensor(shape(), dtype(), device());
  detail::backend(*this).copy(detail::arg(out), detail::arg(*this));
  if (detail::needs_grad({this})) {
    detail::record("clone", {*this}, out, [](const Tensor& g) { return detail::Grads{g}; });
  }
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = detail::make_tensor(shape(), target, device());
  detail::backend(*this).copy(detail::arg(out), detail::arg(*this));
  if (is_floating(target) && is_floating(dtype()) && detail::needs_grad({this})) {
    const DType from = dtype();
    detail::record("to(dtype)", {*this}, out,
                   [from](const Tensor& g) { return detail::Grads{g.to(from)}; });
  }
  return out;
}

Tensor Tensor::pin_memory(Device device) const {
  EMBER_CHECK_DEVICE(this->device().is_cpu(), "pin_memory: the tensor is on ", this->device(),
                     "; only CPU tensors can be pinned");
  if (device.is_cuda()) Device::cuda(device.index());  // validates the device
  const Storage& storage = *impl().storage;
  if (storage.is_pinned() && storage.allocator_device() == device) return *this;
  Tensor out = detail::make_pinned_tensor(shape(), dtype(), device);
  detail::backend(out).copy(detail::arg(out), detail::arg(*this));
  return out;
}

bool Tensor::is_pinned() const { return impl().storage->is_pinned(); }

Tensor Tensor::to(Device target, bool non_blocking) const {
  if (target == device()) return *this;
  if (target.is_cuda()) Device::cuda(target.index());  // validates the device
  const Tensor src = contiguous();
  Tensor out = detail::make_tensor(shape(), dtype(), target);
  const std::size_t nbytes = numel() * element_size(dtype());
  detail::order_use(src);
  detail::order_use(out);
  Storage& src_storage = *src.impl().storage;
  if (non_blocking && src_storage.is_pinned() && src_storage.allocator_device() == target) {
    kernels::Backend& uploader = detail::backend(target);
    uploader.copy_from_host_async(out.data_ptr(), src.data_ptr(), nbytes);
    if (kernels::StreamControl* streams = uploader.streams()) {
      detail::StreamUse::read_by(src_storage, streams->current());
    }
  } else if (device().is_cpu()) {
    detail::backend(target).copy_from_host(out.data_ptr(), src.data_ptr(), nbytes);
  } else if (target.is_cpu()) {
    detail::backend(*this).copy_to_host(out.data_ptr(), src.data_ptr(), nbytes);
  } else {
    // Between two GPUs, through the host: rare, and correct without peer access.
    Tensor host = src.to(Device::cpu());
    detail::backend(target).copy_from_host(out.data_ptr(), host.data_ptr(), nbytes);
  }
  if (detail::needs_grad({this})) {
    const Device from = device();
    detail::record("to(device)", {*this}, out,
                   [from](const Tensor& g) { return detail::Grads{g.to(from)}; });
  }
  return out;
}

namespace {
// The elements of t as Ts, into `out` (room for all of them).
template <typename T>
void copy_out(const Tensor& self, T* out) {
  if (detail::recorder() != nullptr) [[unlikely]]
    detail::throw_host_read();
  const Tensor t = self.detach().to(dtype_of<T>::value).contiguous();
  const auto n = static_cast<std::size_t>(t.numel());
  if (t.device().is_cpu()) {
    std::copy_n(static_cast<const T*>(t.data_ptr()), n, out);
  } else {
    detail::order_use(t);
    detail::backend(t).copy_to_host(out, t.data_ptr(), n * sizeof(T));
  }
}
}  // namespace

template <typename T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(static_cast<std::size_t>(numel()));
  copy_out(*this, out.data());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<std::uint8_t> Tensor::to_vector<std::uint8_t>() const;

double Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item(): tensor of shape ", shape(), " has ", numel(),
              " elements, expected exactly one");
  double value = 0.0;  // no vector: a loss read at every step takes no heap block
  copy_out(*this, &value);
  return value;
}

Tensor& Tensor::requires_grad_(bool on) {
  EMBER_CHECK(is_leaf(),
              "requires_grad_: only leaf tensors can change requires_grad; use "
              "detach() to make a new leaf");
  EMBER_CHECK_DTYPE(!on || is_floating(dtype()),
                    "requires_grad_: only floating tensors can require grad, this one is ",
                    dtype());
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& g = impl().grad;
  return g ? *g : Tensor();
}

void Tensor::zero_grad() const { impl().grad.reset(); }

void Tensor::backward(const Tensor& seed) const {
  EMBER_CHECK(requires_grad(),
              "backward: this tensor does not require grad (no input of the "
              "ops that made it requires grad, or it was made under NoGradGuard)");
  Tensor s = seed;
  if (!s.defined()) {
    EMBER_CHECK(numel() == 1,
                "backward: a seed gradient is needed for a non-scalar tensor of "
                "shape ",
                shape());
    s = ones(shape(), TensorOptions{}.with_dtype(dtype()).with_device(device()));
  }
  EMBER_CHECK_SHAPE(s.shape() == shape(), "backward: seed of shape ", s.shape(),
                    " does not match the tensor's shape ", shape());
  // The sweep hands the seed to kernels that read it as this tensor's dtype.
  autograd::run_backward(*this, s.detach().to(dtype()));
}

Tensor Tensor::detach() const {
  return detail::make_view(*this, shape(), strides(), impl().offset);
}

// ----------------------------------------------------------------------- creation ----
Tensor empty(const Shape& shape, const TensorOptions& opts) {
  Tensor t = detail::make_tensor(shape, opts.dtype, opts.device);
  if (opts.requires_grad) t.requires_grad_();
  return t;
}

Tensor full(const Shape& shape, double value, const TensorOptions& opts) {
  Tensor t = detail::make_tensor(shape, opts.dtype, opts.device);
  // A bool holds exactly 0 or 1, whatever nonzero value was asked for.
  if (opts.dtype == kBool) value = value != 0.0 ? 1.0 : 0.0;
  detail::backend(t).fill(detail::arg(t), value);
  if (opts.requires_grad) t.requires_grad_();
  return t;
}
Tensor zeros(const Shape& shape, const TensorOptions& opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, const TensorOptions& opts) { return full(shape, 1.0, opts); }

namespace {
TensorOptions like(const Tensor& t) {
  return TensorOptions{}.with_dtype(t.dtype()).with_device(t.device());
}
}  // namespace
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), like(t)); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), like(t)); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, like(t)); }
Tensor scalar_tensor(double value, const TensorOptions& opts) { return full({}, value, opts); }

namespace {
Tensor linear_fill(std::int64_t n, double start, double step, const TensorOptions& opts) {
  Tensor t = detail::make_tensor({n}, opts.dtype, opts.device);
  detail::backend(t).fill_linear(detail::arg(t), start, step);
  if (opts.requires_grad) t.requires_grad_();
  return t;
}
}  // namespace

Tensor arange(double start, double end, double step, const TensorOptions& opts) {
  EMBER_CHECK(step != 0.0, "arange: step must be non-zero");
  EMBER_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
              "arange: start, end and step must be finite");
  const double count = std::ceil((end - start) / step);
  return linear_fill(count > 0 ? static_cast<std::int64_t>(count) : 0, start, step, opts);
}
Tensor arange(double end, const TensorOptions& opts) { return arange(0.0, end, 1.0, opts); }

Tensor linspace(double start, double end, std::int64_t steps, const TensorOptions& opts) {
  EMBER_CHECK(steps >= 0, "linspace: steps must be non-negative, got ", steps);
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  return linear_fill(steps, start, step, opts);
}

template <typename T>
Tensor from_vector(std::span<const T> values, const Shape& shape, const TensorOptions& opts) {
  EMBER_CHECK_SHAPE(static_cast<std::int64_t>(values.size()) == shape.numel(),
                    "from_vector: ", values.size(), " values do not fill shape ", shape, " (",
                    shape.numel(), " elements)");
  // Build on the host in the source type, convert dtype there, then move to the device.
  Tensor host = detail::make_tensor(shape, dtype_of<T>::value, Device::cpu());
  std::copy(values.begin(), values.end(), static_cast<T*>(host.data_ptr()));
  Tensor t = host.to(opts.dtype).to(opts.device);
  if (opts.requires_grad) t.requires_grad_();
  return t;
}
template Tensor from_vector<float>(std::span<const float>, const Shape&, const TensorOptions&);
template Tensor from_vector<double>(std::span<const double>, const Shape&, const TensorOptions&);
template Tensor from_vector<std::int64_t>(std::span<const std::int64_t>, const Shape&,
                                          const TensorOptions&);
template Tensor from_vector<std::uint8_t>(std::span<const std::uint8_t>, const Shape&,
                                          const TensorOptions&);

Tensor tensor(std::initializer_list<double> values, const TensorOptions& opts) {
  return from_vector(std::span<const double>(values.begin(), values.size()),
                     {static_cast<std::int64_t>(values.size())}, opts);
}

Tensor tensor(std::initializer_list<std::initializer_list<double>> rows,
              const TensorOptions& opts) {
  const std::int64_t n_rows = static_cast<std::int64_t>(rows.size());
  const std::int64_t n_cols = n_rows ? static_cast<std::int64_t>(rows.begin()->size()) : 0;
  std::vector<double> flat;
  flat.reserve(n_rows * n_cols);
  std::int64_t r = 0;
  for (const auto& row : rows) {
    EMBER_CHECK_SHAPE(static_cast<std::int64_t>(row.size()) == n_cols, "tensor: row ", r, " has ",
                      row.size(), " values, row 0 has ", n_cols);
    flat.insert(flat.end(), row.begin(), row.end());
    ++r;
  }
  return from_vector(flat, {n_rows, n_cols}, opts);
}

// ----------------------------------------------------------------------- printing ----
std::string Tensor::str() const {
  std::ostringstream os;
  if (!defined()) return "Tensor(undefined)";
  // Integers print exactly, not through a rounded double.
  const bool integral = !is_floating(dtype());
  const auto values = integral ? std::vector<double>() : to_vector<double>();
  const auto ints = integral ? to_vector<std::int64_t>() : std::vector<std::int64_t>();
  os << "tensor(";
  const int nd = dim();
  // Nested brackets, row-major, with at most 6 values per innermost row shown in full.
  std::vector<std::int64_t> idx(nd, 0);
  std::function<void(int, std::int64_t)> rec = [&](int d, std::int64_t base) {
    if (d == nd) {
      if (integral) {
        os << ints[base];
      } else {
        os << std::setprecision(dtype() == DType::Float64 ? 10 : 6) << values[base];
      }
      return;
    }
    os << '[';
    const std::int64_t n = shape()[d];
    std::int64_t stride = 1;
    for (int k = d + 1; k < nd; ++k) stride *= shape()[k];
    for (std::int64_t i = 0; i < n; ++i) {
      if (n > 8 && i == 3) {
        os << "..., ";
        i = n - 4;
        continue;
      }
      rec(d + 1, base + i * stride);
      if (i + 1 < n) os << ", ";
    }
    os << ']';
  };
  rec(0, 0);
  os << ", shape=" << shape() << ", dtype=" << dtype();
  if (!device().is_cpu()) os << ", device=" << device();
  if (requires_grad()) os << ", requires_grad";
  os << ')';
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ember
