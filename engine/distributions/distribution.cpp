// The distribution handle, the base defaults, the shape wrappers (Independent, Masked)
// and the helpers every family uses.
#include <optional>
#include <sstream>
#include <string>

#include "engine/compile/plan.hpp"
#include "engine/distributions/dist_util.hpp"
#include "engine/distributions/wrappers.hpp"

namespace ember::dist {

// ------------------------------------------------------------------ base defaults ----
Shape DistributionImpl::extended_shape(const Shape& sample_shape) const {
  Shape s = sample_shape;
  for (auto d : batch_shape_) s.push_back(d);
  for (auto d : event_shape_) s.push_back(d);
  return s;
}

void DistributionImpl::not_available(const char* what) const {
  EMBER_CHECK(false, name(), ": ", what, " is not available for this distribution");
  std::abort();
}

Tensor DistributionImpl::rsample(const Shape&, Generator&) const {
  not_available("rsample (it has no reparameterized sampler; use sample)");
}

Tensor DistributionImpl::sample(const Shape& sample_shape, Generator& gen) const {
  NoGradGuard no_grad;
  return rsample(sample_shape, gen).detach();
}

Tensor DistributionImpl::mean() const { not_available("mean"); }
Tensor DistributionImpl::variance() const { not_available("variance"); }
Tensor DistributionImpl::entropy() const { not_available("entropy in closed form"); }
Tensor DistributionImpl::enumerate_support(bool) const {
  not_available("enumerate_support (its support is not finite)");
}

Tensor DistributionImpl::log_prob_of_support() const {
  const Tensor lp = log_prob(enumerate_support(false));
  Shape shape{lp.size(0)};
  for (auto d : batch_shape_) shape.push_back(d);
  return lp.expand(shape);
}

// ------------------------------------------------------------------ the handle ----
const DistributionImpl& Distribution::impl() const {
  EMBER_CHECK(impl_ != nullptr, "use of an undefined (default-constructed) Distribution");
  return *impl_;
}

Shape Distribution::shape(const Shape& sample_shape) const {
  Shape s = sample_shape;
  for (auto d : batch_shape()) s.push_back(d);
  for (auto d : event_shape()) s.push_back(d);
  return s;
}

Tensor Distribution::sample(const Shape& sample_shape) const {
  return sample(sample_shape, default_generator());
}
Tensor Distribution::sample(const Shape& sample_shape, Generator& gen) const {
  return impl().sample(sample_shape, gen);
}
Tensor Distribution::rsample(const Shape& sample_shape) const {
  return rsample(sample_shape, default_generator());
}
Tensor Distribution::rsample(const Shape& sample_shape, Generator& gen) const {
  return impl().rsample(sample_shape, gen);
}

Tensor Distribution::log_prob(const Tensor& value) const {
  const auto& d = impl();
  EMBER_CHECK_DEVICE(value.device() == d.device(), d.name(), ".log_prob: value is on ",
                     value.device(), " but the distribution is on ", d.device());
  if (validates_args()) {
    const detail::PauseRecording checks_are_not_replayed;
    if (!d.support().check_all(value)) {
      const Tensor ok = d.support().check(value);
      EMBER_CHECK(false, d.name(), ".log_prob: value outside the support ", d.support().name(),
                  ": ", detail::describe_first_violation(value, ok));
    }
  }
  return d.log_prob(value);
}

Tensor Distribution::stddev() const { return sqrt(variance()); }

bool Distribution::validates_args() const { return validate_args_.value_or(validation_enabled()); }

Distribution Distribution::derived(std::shared_ptr<const DistributionImpl> impl) const {
  Distribution d(std::move(impl));
  d.validate_args_ = validate_args_;
  return d;
}

Distribution Distribution::expand(const Shape& batch_shape) const {
  if (batch_shape == this->batch_shape()) return *this;
  return derived(impl().expand(batch_shape));
}

Distribution Distribution::to_event(int n) const {
  if (n < 0) n = batch_shape().size();
  if (n == 0) return *this;
  return derived(detail::pooled<IndependentImpl>(impl_ptr(), n));
}

Distribution Distribution::mask(const Tensor& m) const {
  return derived(detail::pooled<MaskedImpl>(impl_ptr(), m));
}

Distribution Distribution::without_rsample() const {
  if (!has_rsample()) return *this;
  return derived(detail::pooled<NonReparameterizedImpl>(impl_ptr()));
}

Distribution Distribution::mask(bool keep) const {
  if (keep) return *this;
  return mask(zeros({}, TensorOptions{}.with_dtype(kBool).with_device(device())));
}

std::ostream& operator<<(std::ostream& os, const Distribution& d) {
  return os << d.name() << "(batch_shape=" << d.batch_shape() << ", event_shape=" << d.event_shape()
            << ")";
}

}  // namespace ember::dist

// ------------------------------------------------------------------ helpers ----
namespace ember::detail {

Params make_params(const char* dist, std::initializer_list<NamedParam> params) {
  Params out;
  bool have_tensor = false;
  for (const auto& p : params) {
    if (!p.arg.is_tensor()) continue;
    const Tensor& t = p.arg.tensor();
    if (!have_tensor) {
      out.device = t.device();
      out.dtype = is_floating(t.dtype()) ? t.dtype() : kFloat32;
      have_tensor = true;
    }
    EMBER_CHECK_DEVICE(t.device() == out.device, dist, ": parameter ", p.name, " is on ",
                       t.device(), " but an earlier parameter is on ", out.device);
    if (is_floating(t.dtype())) out.dtype = promote(out.dtype, t.dtype());
  }
  for (const auto& p : params) {
    Tensor t = p.arg.is_tensor()
                   ? p.arg.tensor().to(out.dtype)
                   : scalar_tensor(p.arg.value(),
                                   TensorOptions{}.with_dtype(out.dtype).with_device(out.device));
    const Shape before = out.batch_shape;
    try {
      out.batch_shape = broadcast_shapes(out.batch_shape, t.shape(), dist);
    } catch (const ShapeError&) {
      std::string names;  // the parameters before this one
      for (const auto& q : params) {
        if (&q == &p) break;
        names += names.empty() ? q.name : std::string(", ") + q.name;
      }
      EMBER_CHECK_SHAPE(false, dist, ": parameter ", p.name, " of shape ", t.shape(),
                        " does not broadcast with ", names, " of shape ", before);
    }
    out.tensors.push_back(std::move(t));
  }
  std::size_t i = 0;
  for (const auto& p : params) {
    if (p.must_be) validate_param(dist, p.name, out.tensors[i], *p.must_be);
    ++i;
  }
  return out;
}

Tensor enumerate_values(std::int64_t n, const Shape& batch, DType dtype, Device device,
                        bool expand) {
  Shape shape{n};
  shape.resize(1 + batch.size(), 1);
  const Tensor run = arange(0.0, static_cast<double>(n), 1.0,
                            TensorOptions{}.with_dtype(dtype).with_device(device));
  if (dtype == kInt64) run.impl().storage->mark_iota();
  const Tensor values = run.reshape(shape);
  if (!expand) return values;
  Shape full{n};
  for (auto d : batch) full.push_back(d);
  return values.expand(full);
}

std::int64_t first_violation(const Tensor& ok) {
  const auto flags = logical_not(ok).to(Device::cpu()).flatten().to_vector<std::uint8_t>();
  for (std::size_t i = 0; i < flags.size(); ++i)
    if (flags[i]) return static_cast<std::int64_t>(i);
  return -1;
}

std::string format_index(std::int64_t flat, const Shape& shape) {
  std::vector<std::int64_t> idx(shape.size());
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < idx.size(); ++i) os << (i ? ", " : "") << idx[i];
  os << "]";
  return os.str();
}

std::string describe_first_violation(const Tensor& value, const Tensor& ok) {
  const std::int64_t first = first_violation(ok);
  if (first < 0) return "no violation";
  std::ostringstream os;
  os << "got ";
  if (ok.shape() == value.shape()) {
    os << value.detach().to(kFloat64).flatten().to_vector<double>()[first];
  } else {
    os << "an invalid element";
  }
  os << " at index " << format_index(first, ok.shape());
  return os.str();
}

namespace {

thread_local bool t_hold_arg_errors = false;
thread_local std::optional<std::string> t_held_arg_error;

// How a learnable parameter keeps to the constraint, for a value that is (or comes from) one.
std::string constraint_hint(const Tensor& value, const constraints::Constraint& constraint) {
  using constraints::Kind;
  if (!value.requires_grad() || constraint.is_discrete() || constraint.kind() == Kind::Real ||
      constraint.lower_tensor().defined() || constraint.upper_tensor().defined()) {
    return "";
  }
  return " (a learnable parameter? declare it with constraints::" + constraint.name() + ")";
}

}  // namespace

HeldArgErrors::HeldArgErrors() : previous_(t_hold_arg_errors) {
  t_hold_arg_errors = true;
  t_held_arg_error.reset();
}

HeldArgErrors::~HeldArgErrors() {
  t_hold_arg_errors = previous_;
  t_held_arg_error.reset();
}

bool arg_error_held() { return t_held_arg_error.has_value(); }

void throw_held_arg_error(const std::string& prefix) {
  if (!t_held_arg_error) return;
  std::string message = prefix + *t_held_arg_error;
  t_held_arg_error.reset();
  throw ValueError(message);
}

void validate_param(const char* dist, const char* param, const Tensor& value,
                    const constraints::Constraint& constraint) {
  if (!validation_enabled()) return;
  const PauseRecording checks_are_not_replayed;
  if (constraint.check_all(value)) return;
  const Tensor ok = constraint.check(value);
  report_invalid_param(concat(dist, ": parameter ", param, " must be ", constraint.name(), ", ",
                              describe_first_violation(value, ok),
                              constraint_hint(value, constraint), " (", __FILE__, ":", __LINE__,
                              ")"));
}

void report_invalid_param(std::string message) {
  if (!t_hold_arg_errors) throw ValueError(message);
  if (!t_held_arg_error) t_held_arg_error = std::move(message);
}

}  // namespace ember::detail
