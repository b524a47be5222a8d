// Membership tests of the constraints; each reduces over the constraint's event dims.
#include "ember/constraints.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <vector>

#include "engine/internal.hpp"

namespace ember::constraints {
namespace {

// The bound as a tensor broadcastable against value: the tensor bound if given, else the
// double as a 0-d tensor of value's dtype.
Tensor bound(const Tensor& given, double fallback, const Tensor& value) {
  if (given.defined()) return given.detach().to(value.device());
  return scalar_tensor(fallback,
                       TensorOptions{}.with_dtype(value.dtype()).with_device(value.device()));
}

Tensor all_over_last(const Tensor& ok, int n) {
  if (n == 0) return ok;
  std::vector<int> dims;
  for (int i = 1; i <= n; ++i) dims.push_back(-i);
  // min over bools: true only if every element is true.
  return eq(sum(logical_not(ok), dims), 0.0);
}

Tensor is_integer(const Tensor& v) { return eq(floor(v), v); }

// Positive-definiteness by a Cholesky factorization of each matrix on the host (checks run
// only while validation is on, where a device sync is accepted).
Tensor positive_definite_check(const Tensor& value) {
  EMBER_CHECK_SHAPE(value.dim() >= 2 && value.size(-1) == value.size(-2),
                    "positive_definite: expected square matrices, got shape ", value.shape());
  const std::int64_t n = value.size(-1);
  const auto host = value.detach().to(kFloat64).contiguous().to_vector<double>();
  const std::int64_t count = n == 0 ? 0 : static_cast<std::int64_t>(host.size()) / (n * n);
  std::vector<std::uint8_t> ok(static_cast<std::size_t>(count));
  for (std::int64_t b = 0; b < count; ++b) {
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(
        host.data() + b * n * n, n, n);
    const bool symmetric =
        (m - m.transpose()).cwiseAbs().maxCoeff() <= 1e-6 * std::max(1.0, m.cwiseAbs().maxCoeff());
    Eigen::LLT<Eigen::MatrixXd> llt(m);
    ok[b] = symmetric && llt.info() == Eigen::Success;
  }
  Shape batch = value.shape();
  batch.resize(batch.size() - 2);
  return from_vector(ok, batch, TensorOptions{}.with_dtype(kBool)).to(value.device());
}

}  // namespace

bool Constraint::is_discrete() const {
  return kind_ == Kind::Boolean || kind_ == Kind::NonnegativeInteger ||
         kind_ == Kind::IntegerInterval;
}

std::string Constraint::name() const {
  // Bounds print as numbers (%g), or as the parameter names they stand for.
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  const std::string lo = lower_t_.defined() ? "low" : num(lower_);
  const std::string hi = upper_t_.defined() ? "high" : num(upper_);
  std::string base;
  switch (kind_) {
    case Kind::Real:
      base = "real";
      break;
    case Kind::Positive:
      base = "positive";
      break;
    case Kind::GreaterThan:
      base = "greater_than(" + lo + ")";
      break;
    case Kind::GreaterThanEq:
      base = !lower_t_.defined() && lower_ == 0.0 ? "nonnegative" : "greater_than_eq(" + lo + ")";
      break;
    case Kind::Interval:
      base = !lower_t_.defined() && !upper_t_.defined() && lower_ == 0.0 && upper_ == 1.0
                 ? "unit_interval"
                 : "interval(" + lo + ", " + hi + ")";
      break;
    case Kind::Simplex:
      base = "simplex";
      break;
    case Kind::LowerCholesky:
      base = "lower_cholesky";
      break;
    case Kind::PositiveDefinite:
      base = "positive_definite";
      break;
    case Kind::Boolean:
      base = "boolean";
      break;
    case Kind::NonnegativeInteger:
      base = "nonnegative_integer";
      break;
    case Kind::IntegerInterval:
      base = "integer_interval(" + lo + ", " + hi + ")";
      break;
  }
  // Simplex, Cholesky factors and matrices own 1 or 2 event dims; more came from independent().
  const int own = kind_ == Kind::Simplex                                              ? 1
                  : (kind_ == Kind::LowerCholesky || kind_ == Kind::PositiveDefinite) ? 2
                                                                                      : 0;
  return event_dim_ > own ? "independent(" + base + ", " + std::to_string(event_dim_ - own) + ")"
                          : base;
}

Constraint Constraint::independent(int n) const {
  Constraint c = *this;
  c.event_dim_ += n;
  return c;
}

Tensor Constraint::check(const Tensor& value_in) const {
  NoGradGuard no_grad;
  const Tensor value = is_floating(value_in.dtype()) ? value_in.detach() : value_in.to(kFloat64);
  EMBER_CHECK_SHAPE(value.dim() >= event_dim_, name(), ": a value of shape ", value.shape(),
                    " has fewer than ", event_dim_, " event dims");
  Tensor ok;
  int reduce = event_dim_;
  switch (kind_) {
    case Kind::Real:
      ok = eq(value, value);
      break;
    case Kind::Positive:
      ok = gt(value, 0.0);
      break;
    case Kind::GreaterThan:
      ok = gt(value, bound(lower_t_, lower_, value));
      break;
    case Kind::GreaterThanEq:
      ok = ge(value, bound(lower_t_, lower_, value));
      break;
    case Kind::Interval:
      ok = logical_and(ge(value, bound(lower_t_, lower_, value)),
                       le(value, bound(upper_t_, upper_, value)));
      break;
    case Kind::Simplex:
      ok = logical_and(all_over_last(ge(value, 0.0), 1),
                       lt(abs(sum(value, {-1}) - 1.0), 1e-6 * std::max<double>(1, value.size(-1))));
      reduce -= 1;
      break;
    case Kind::LowerCholesky: {
      const std::int64_t n = value.size(-1);
      EMBER_CHECK_SHAPE(value.dim() >= 2 && value.size(-2) == n,
                        "lower_cholesky: expected square matrices, got shape ", value.shape());
      const Tensor rows = arange(0.0, static_cast<double>(n), 1.0,
                                 TensorOptions{}.with_dtype(kInt64).with_device(value.device()));
      const Tensor upper = gt(rows.unsqueeze(0), rows.unsqueeze(1));  // strictly above the diagonal
      const Tensor diag = eq(rows.unsqueeze(0), rows.unsqueeze(1));
      const Tensor fine = logical_and(logical_or(logical_not(upper), eq(value, 0.0)),
                                      logical_or(logical_not(diag), gt(value, 0.0)));
      ok = all_over_last(fine, 2);
      reduce -= 2;
      break;
    }
    case Kind::PositiveDefinite:
      ok = positive_definite_check(value);
      reduce -= 2;
      break;
    case Kind::Boolean:
      ok = logical_or(eq(value, 0.0), eq(value, 1.0));
      break;
    case Kind::NonnegativeInteger:
      ok = logical_and(ge(value, 0.0), is_integer(value));
      break;
    case Kind::IntegerInterval:
      ok = logical_and(logical_and(ge(value, bound(lower_t_, lower_, value)),
                                   le(value, bound(upper_t_, upper_, value))),
                       is_integer(value));
      break;
  }
  return all_over_last(ok, reduce);
}

namespace {

// Whether x lies in an elementwise set with scalar bounds.
bool in_elementwise_set(Kind kind, double x, double lo, double hi) {
  switch (kind) {
    case Kind::Real:
      return x == x;
    case Kind::Positive:
      return x > 0.0;
    case Kind::GreaterThan:
      return x > lo;
    case Kind::GreaterThanEq:
      return x >= lo;
    case Kind::Interval:
      return x >= lo && x <= hi;
    case Kind::Boolean:
      return x == 0.0 || x == 1.0;
    case Kind::NonnegativeInteger:
      return x >= 0.0 && std::floor(x) == x;
    case Kind::IntegerInterval:
      return x >= lo && x <= hi && std::floor(x) == x;
    default:
      return false;
  }
}

// Whether every x[i] satisfies `in`, branch-free within blocks so that the loop vectorizes
// (into an unsigned flag: GCC does not vectorize a reduction into a bool).
template <typename T, typename In>
bool all_of_contiguous(const T* x, std::int64_t n, In in) {
  constexpr std::int64_t kBlock = 4096;
  for (std::int64_t lo = 0; lo < n; lo += kBlock) {
    const std::int64_t hi = std::min(n, lo + kBlock);
    unsigned bad = 0;
    for (std::int64_t i = lo; i < hi; ++i) bad |= static_cast<unsigned>(!in(x[i]));
    if (bad != 0) return false;
  }
  return true;
}

// The common sets of parameters (real, positive, intervals) on contiguous values, each
// with its own tight loop; nullopt for the others.
template <typename T>
std::optional<bool> scan_contiguous(const T* x, std::int64_t n, Kind kind, double lo, double hi) {
  switch (kind) {
    case Kind::Real:
      return all_of_contiguous(x, n, [](T v) { return v == v; });
    case Kind::Positive:
      return all_of_contiguous(x, n, [](T v) { return v > T(0); });
    case Kind::GreaterThan:
      return all_of_contiguous(x, n, [lo](T v) { return static_cast<double>(v) > lo; });
    case Kind::GreaterThanEq:
      return all_of_contiguous(x, n, [lo](T v) { return static_cast<double>(v) >= lo; });
    case Kind::Interval:
      return all_of_contiguous(x, n, [lo, hi](T v) {
        const auto d = static_cast<double>(v);
        return d >= lo && d <= hi;
      });
    case Kind::Boolean:
      return all_of_contiguous(x, n, [](T v) { return v == T(0) || v == T(1); });
    default:
      return std::nullopt;
  }
}

template <typename T>
bool scan_all(const Tensor& v, Kind kind, double lo, double hi) {
  const T* base = v.data<T>();
  if (v.is_contiguous()) {
    if (const std::optional<bool> r = scan_contiguous(base, v.numel(), kind, lo, hi)) return *r;
  }
  // Strided walk (broadcast dims have stride 0): an odometer over the dims.
  const int nd = v.dim();
  if (nd == 0) return in_elementwise_set(kind, static_cast<double>(*base), lo, hi);
  std::vector<std::int64_t> idx(nd, 0);
  const std::int64_t n = v.numel();
  std::int64_t off = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (!in_elementwise_set(kind, static_cast<double>(base[off]), lo, hi)) return false;
    for (int d = nd - 1; d >= 0; --d) {
      off += v.strides()[d];
      if (++idx[d] < v.shape()[d]) break;
      off -= v.strides()[d] * v.shape()[d];
      idx[d] = 0;
    }
  }
  return true;
}

}  // namespace

bool Constraint::check_all(const Tensor& value) const {
  // Elementwise sets with number bounds are checked on the host directly when the value
  // lives there: no temporaries, which matters for the many tiny checks of a small model.
  const bool elementwise = kind_ != Kind::Simplex && kind_ != Kind::LowerCholesky &&
                           kind_ != Kind::PositiveDefinite && !lower_t_.defined() &&
                           !upper_t_.defined();
  if (elementwise && value.device().is_cpu() && value.dim() >= event_dim_) {
    if (value.numel() == 0) return true;
    switch (value.dtype()) {
      case DType::Float32:
        return scan_all<float>(value, kind_, lower_, upper_);
      case DType::Float64:
        return scan_all<double>(value, kind_, lower_, upper_);
      case DType::Int64:
        return scan_all<std::int64_t>(value, kind_, lower_, upper_);
      case DType::Bool:
        return scan_all<std::uint8_t>(value, kind_, lower_, upper_);
    }
  }
  return all(check(value));
}

}  // namespace ember::constraints
