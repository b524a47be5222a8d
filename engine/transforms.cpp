// The transforms and biject_to; each is a few differentiable tensor ops, so autograd gives
// the gradients of forward, inverse and the log-det without hand-written backward passes
// (StickBreakingTransform's forward ends in a line op with its own backward).
#include "ember/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "ember/linalg.hpp"
#include "ember/ops.hpp"
#include "engine/internal.hpp"

namespace ember::transforms {
namespace {

using constraints::Constraint;
using constraints::Kind;

// Sums the n rightmost dims of t (none when n <= 0).
Tensor sum_rightmost(const Tensor& t, int n) {
  if (n <= 0) return t;
  std::vector<int> dims;
  for (int i = 1; i <= n; ++i) dims.push_back(-i);
  return sum(t, dims);
}

// The sigmoid's output range, kept off 0 and 1 so that its inverse stays finite.
double sigmoid_tiny(DType t) {
  return t == kFloat64 ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
}
double sigmoid_one_minus_eps(DType t) {
  return t == kFloat64 ? 1.0 - std::numeric_limits<double>::epsilon()
                       : 1.0 - std::numeric_limits<float>::epsilon();
}
Tensor clipped_sigmoid(const Tensor& x) {
  return clamp(sigmoid(x), sigmoid_tiny(x.dtype()), sigmoid_one_minus_eps(x.dtype()));
}

class ExpImpl final : public TransformImpl {
 public:
  std::string name() const override { return "ExpTransform"; }
  Tensor forward(const Tensor& x) const override { return exp(x); }
  Tensor inverse(const Tensor& y) const override { return log(y); }
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor&) const override { return x; }
  Constraint domain() const override { return constraints::real; }
  Constraint codomain() const override { return constraints::positive; }
};

class SoftplusImpl final : public TransformImpl {
 public:
  std::string name() const override { return "SoftplusTransform"; }
  Tensor forward(const Tensor& x) const override { return softplus(x); }
  // x = log(exp(y) - 1) = y + log(1 - exp(-y)).
  Tensor inverse(const Tensor& y) const override { return y + log(-expm1(-y)); }
  // dy/dx = sigmoid(x), log sigmoid(x) = -softplus(-x).
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor&) const override {
    return -softplus(-x);
  }
  Constraint domain() const override { return constraints::real; }
  Constraint codomain() const override { return constraints::positive; }
};

class SigmoidImpl final : public TransformImpl {
 public:
  std::string name() const override { return "SigmoidTransform"; }
  Tensor forward(const Tensor& x) const override { return clipped_sigmoid(x); }
  Tensor inverse(const Tensor& y) const override {
    const Tensor c = clamp(y, sigmoid_tiny(y.dtype()), sigmoid_one_minus_eps(y.dtype()));
    return log(c) - log1p(-c);
  }
  // dy/dx = sigmoid(x) (1 - sigmoid(x)).
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor&) const override {
    return -softplus(-x) - softplus(x);
  }
  Constraint domain() const override { return constraints::real; }
  Constraint codomain() const override { return constraints::unit_interval; }
};

// loc and scale are kept as given: a number stays a number, so it takes x's dtype.
class AffineImpl final : public TransformImpl {
 public:
  AffineImpl(dist::ParamArg loc, dist::ParamArg scale, int event_dim)
      : loc_(std::move(loc)), scale_(std::move(scale)), event_dim_(event_dim) {
    EMBER_CHECK(event_dim >= 0, "AffineTransform: event_dim must be >= 0, got ", event_dim);
  }
  std::string name() const override { return "AffineTransform"; }
  Tensor forward(const Tensor& x) const override { return plus(times(x, scale_), loc_); }
  Tensor inverse(const Tensor& y) const override { return over(minus(y, loc_), scale_); }
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor&) const override {
    Tensor per_element;
    if (scale_.is_tensor()) {
      const Tensor l = log(abs(scale_.tensor()));
      per_element = l.expand(broadcast_shapes(x.shape(), l.shape(), "AffineTransform"));
    } else {
      per_element = full_like(x, std::log(std::abs(scale_.value())));
    }
    return sum_rightmost(per_element, event_dim_);
  }
  Constraint domain() const override { return constraints::real.independent(event_dim_); }
  Constraint codomain() const override { return constraints::real.independent(event_dim_); }
  Shape forward_shape(const Shape& shape) const override { return broadcast_params(shape); }
  Shape inverse_shape(const Shape& shape) const override { return broadcast_params(shape); }

  Tensor loc() const { return as_tensor(loc_); }
  Tensor scale() const { return as_tensor(scale_); }

 private:
  static Tensor times(const Tensor& x, const dist::ParamArg& p) {
    return p.is_tensor() ? x * p.tensor() : x * p.value();
  }
  static Tensor over(const Tensor& x, const dist::ParamArg& p) {
    return p.is_tensor() ? x / p.tensor() : x / p.value();
  }
  static Tensor plus(const Tensor& x, const dist::ParamArg& p) {
    return p.is_tensor() ? x + p.tensor() : x + p.value();
  }
  static Tensor minus(const Tensor& x, const dist::ParamArg& p) {
    return p.is_tensor() ? x - p.tensor() : x - p.value();
  }
  static Tensor as_tensor(const dist::ParamArg& p) {
    return p.is_tensor() ? p.tensor()
                         : scalar_tensor(p.value(), TensorOptions{}.with_dtype(kFloat64));
  }
  Shape broadcast_params(Shape shape) const {
    if (loc_.is_tensor()) shape = broadcast_shapes(shape, loc_.tensor().shape(), "AffineTransform");
    if (scale_.is_tensor())
      shape = broadcast_shapes(shape, scale_.tensor().shape(), "AffineTransform");
    return shape;
  }

  dist::ParamArg loc_, scale_;
  int event_dim_;
};

class StickBreakingImpl final : public TransformImpl {
 public:
  std::string name() const override { return "StickBreakingTransform"; }
  // The fractions z = clipped_sigmoid(x - log_offsets) elementwise, then y = pad(z, {0, 1}, 1)
  // * pad(cumprod(1 - z), {1, 0}, 1) and its gradient each in one pass along the line
  // (detail::stick_breaking).
  Tensor forward(const Tensor& x) const override {
    check_rank(x, "forward");
    return detail::stick_breaking(clipped_sigmoid(x - log_offsets(x.size(-1), x)));
  }
  Tensor inverse(const Tensor& y) const override {
    check_rank(y, "inverse");
    const std::int64_t n = y.size(-1) - 1;
    const Tensor head = y.narrow(-1, 0, n);
    // The stick left after each piece, clamped since rounding can take it to 0 or below when
    // y's last entry is about 0. z_i = y_i / (y_i + rest_i), so logit(z_i) = log(y_i / rest_i).
    const Tensor rest = clamp_min(1.0 - cumsum(head, -1), sigmoid_tiny(y.dtype()));
    return log(head) - log(rest) + log_offsets(n, y);
  }
  // dy_i/dx_i = z_i (1 - z_i) left_i with the matrix triangular, so
  // log|det| = sum_i log(1 - z_i) + log y_i with log(1 - z) = -u + log sigmoid(u).
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor& y) const override {
    const Tensor u = x - log_offsets(x.size(-1), x);
    return sum(-u + log_sigmoid(u) + log(y.narrow(-1, 0, x.size(-1))), {-1});
  }
  Constraint domain() const override { return constraints::real_vector; }
  Constraint codomain() const override { return constraints::simplex; }
  Shape forward_shape(const Shape& shape) const override {
    EMBER_CHECK_SHAPE(shape.size() >= 1, "StickBreakingTransform: needs a vector, got shape ",
                      shape);
    Shape s = shape;
    s[s.size() - 1] += 1;
    return s;
  }
  Shape inverse_shape(const Shape& shape) const override {
    EMBER_CHECK_SHAPE(shape.size() >= 1 && shape[shape.size() - 1] >= 1,
                      "StickBreakingTransform: needs a nonempty vector, got shape ", shape);
    Shape s = shape;
    s[s.size() - 1] -= 1;
    return s;
  }

 private:
  static void check_rank(const Tensor& t, const char* what) {
    EMBER_CHECK_SHAPE(t.dim() >= 1, "StickBreakingTransform.", what,
                      ": needs at least one dim, got shape ", t.shape());
  }
  // log(K-1-i) for i = 0..n-1, n = K-1: the shift that maps x = 0 to the uniform simplex point.
  static Tensor log_offsets(std::int64_t n, const Tensor& like) {
    const auto opts = TensorOptions{}.with_dtype(like.dtype()).with_device(like.device());
    return log(static_cast<double>(n + 1) - arange(1.0, static_cast<double>(n + 1), 1.0, opts));
  }
};

class LowerCholeskyImpl final : public TransformImpl {
 public:
  std::string name() const override { return "LowerCholeskyTransform"; }
  Tensor forward(const Tensor& x) const override {
    check_square(x, "forward");
    return tril(x, -1) + diag_embed(exp(diagonal(x)), x);
  }
  Tensor inverse(const Tensor& y) const override {
    check_square(y, "inverse");
    return tril(y, -1) + diag_embed(log(diagonal(y)), y);
  }
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor&) const override {
    return sum(diagonal(x), {-1});
  }
  Constraint domain() const override { return constraints::real.independent(2); }
  Constraint codomain() const override { return constraints::lower_cholesky; }
  bool bijective() const override { return false; }

 private:
  static void check_square(const Tensor& t, const char* what) {
    EMBER_CHECK_SHAPE(t.dim() >= 2 && t.size(-1) == t.size(-2), "LowerCholeskyTransform.", what,
                      ": needs square matrices, got shape ", t.shape());
  }
  // Matrices with d (..., n) on their diagonals.
  static Tensor diag_embed(const Tensor& d, const Tensor& like) {
    const Tensor i =
        eye(like.size(-1), TensorOptions{}.with_dtype(d.dtype()).with_device(d.device()));
    return i * d.unsqueeze(-2);
  }
};

class ComposeImpl final : public TransformImpl {
 public:
  explicit ComposeImpl(std::vector<Transform> parts) : parts_(std::move(parts)) {
    for (const Transform& t : parts_) {
      EMBER_CHECK(t.defined(), "ComposeTransform: an undefined (default-constructed) part");
      event_dim_ = std::max(event_dim_, t.event_dim());
    }
  }
  std::string name() const override {
    std::string s = "ComposeTransform(";
    for (std::size_t i = 0; i < parts_.size(); ++i) s += (i ? ", " : "") + parts_[i].name();
    return s + ")";
  }
  Tensor forward(const Tensor& x) const override {
    Tensor y = x;
    for (const Transform& t : parts_) y = t.forward(y);
    return y;
  }
  Tensor inverse(const Tensor& y) const override {
    Tensor x = y;
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) x = it->inverse(x);
    return x;
  }
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor& y) const override {
    if (parts_.empty()) {
      return zeros(shape_less(x.shape(), event_dim_),
                   TensorOptions{}.with_dtype(x.dtype()).with_device(x.device()));
    }
    Tensor total, in = x;
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      const Transform& t = parts_[i];
      const Tensor out = i + 1 == parts_.size() ? y : t.forward(in);
      const Tensor term =
          sum_rightmost(t.log_abs_det_jacobian(in, out), event_dim_ - t.event_dim());
      total = total.defined() ? total + term : term;
      in = out;
    }
    return total;
  }
  Constraint domain() const override {
    if (parts_.empty()) return constraints::real;
    const Constraint d = parts_.front().domain();
    return d.independent(event_dim_ - d.event_dim());
  }
  Constraint codomain() const override {
    if (parts_.empty()) return constraints::real;
    const Constraint c = parts_.back().codomain();
    return c.independent(event_dim_ - c.event_dim());
  }
  int event_dim() const override { return event_dim_; }
  bool bijective() const override {
    return std::all_of(parts_.begin(), parts_.end(),
                       [](const Transform& t) { return t.bijective(); });
  }
  Shape forward_shape(const Shape& shape) const override {
    Shape s = shape;
    for (const Transform& t : parts_) s = t.forward_shape(s);
    return s;
  }
  Shape inverse_shape(const Shape& shape) const override {
    Shape s = shape;
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) s = it->inverse_shape(s);
    return s;
  }

  const std::vector<Transform>& parts() const { return parts_; }

 private:
  static Shape shape_less(const Shape& s, int n) {
    Shape out;
    for (int i = 0; i + n < static_cast<int>(s.size()); ++i) out.push_back(s[i]);
    return out;
  }

  std::vector<Transform> parts_;
  int event_dim_ = 0;
};

class IndependentImpl final : public TransformImpl {
 public:
  IndependentImpl(Transform base, int n) : base_(std::move(base)), n_(n) {
    EMBER_CHECK(base_.defined(), "IndependentTransform: an undefined base transform");
    EMBER_CHECK(n >= 0, "IndependentTransform: reinterpreted_batch_ndims must be >= 0, got ", n);
  }
  std::string name() const override {
    return "IndependentTransform(" + base_.name() + ", " + std::to_string(n_) + ")";
  }
  Tensor forward(const Tensor& x) const override { return base_.forward(x); }
  Tensor inverse(const Tensor& y) const override { return base_.inverse(y); }
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor& y) const override {
    return sum_rightmost(base_.log_abs_det_jacobian(x, y), n_);
  }
  Constraint domain() const override { return base_.domain().independent(n_); }
  Constraint codomain() const override { return base_.codomain().independent(n_); }
  int event_dim() const override { return base_.event_dim() + n_; }
  bool bijective() const override { return base_.bijective(); }
  Shape forward_shape(const Shape& shape) const override { return base_.forward_shape(shape); }
  Shape inverse_shape(const Shape& shape) const override { return base_.inverse_shape(shape); }

 private:
  Transform base_;
  int n_;
};

// A chain reported as mapping onto `onto` exactly (an affine map's own codomain is all of
// the reals; after exp or sigmoid it is the constraint biject_to was asked for).
class OntoImpl final : public TransformImpl {
 public:
  OntoImpl(Transform chain, Constraint onto) : chain_(std::move(chain)), onto_(std::move(onto)) {}
  std::string name() const override { return chain_.name(); }
  Tensor forward(const Tensor& x) const override { return chain_.forward(x); }
  Tensor inverse(const Tensor& y) const override { return chain_.inverse(y); }
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor& y) const override {
    return chain_.log_abs_det_jacobian(x, y);
  }
  Constraint domain() const override { return chain_.domain(); }
  Constraint codomain() const override { return onto_; }
  int event_dim() const override { return chain_.event_dim(); }
  bool bijective() const override { return chain_.bijective(); }
  Shape forward_shape(const Shape& shape) const override { return chain_.forward_shape(shape); }
  Shape inverse_shape(const Shape& shape) const override { return chain_.inverse_shape(shape); }

 private:
  Transform chain_;
  Constraint onto_;
};

Transform onto(std::vector<Transform> parts, const Constraint& c) {
  return Transform(std::make_shared<OntoImpl>(ComposeTransform(std::move(parts)), c));
}

// The event dims of one element of each kind of set, before any `independent`.
int base_event_dim(Kind kind) {
  switch (kind) {
    case Kind::Simplex:
      return 1;
    case Kind::LowerCholesky:
    case Kind::PositiveDefinite:
      return 2;
    default:
      return 0;
  }
}

// c with its base event_dim (biject_to adds the independent dims back around the transform).
Constraint base_of(const Constraint& c) {
  return c.independent(base_event_dim(c.kind()) - c.event_dim());
}

// The transform onto the set of `c`'s kind with its base event_dim.
Transform biject_to_base(const Constraint& c) {
  switch (c.kind()) {
    case Kind::Real:
      return ComposeTransform(std::vector<Transform>{});
    case Kind::Positive:
      return ExpTransform();
    case Kind::GreaterThan:
    case Kind::GreaterThanEq: {
      const dist::ParamArg lower =
          c.lower_tensor().defined() ? dist::ParamArg(c.lower_tensor()) : dist::ParamArg(c.lower());
      return onto({ExpTransform(), AffineTransform(lower, 1.0)}, base_of(c));
    }
    case Kind::Interval: {
      if (c.lower_tensor().defined() || c.upper_tensor().defined()) {
        EMBER_CHECK(c.lower_tensor().defined() && c.upper_tensor().defined(), "biject_to(",
                    c.name(), "): an interval needs both bounds as tensors");
        return onto({SigmoidTransform(),
                     AffineTransform(c.lower_tensor(), c.upper_tensor() - c.lower_tensor())},
                    base_of(c));
      }
      if (c.lower() == 0.0 && c.upper() == 1.0) return SigmoidTransform();
      return onto({SigmoidTransform(), AffineTransform(c.lower(), c.upper() - c.lower())},
                  base_of(c));
    }
    case Kind::Simplex:
      return StickBreakingTransform();
    case Kind::LowerCholesky:
      return LowerCholeskyTransform();
    default:
      EMBER_CHECK(false, "biject_to: no transform from the reals onto ", c.name(),
                  c.is_discrete() ? " (a discrete set)" : " is available");
      std::abort();
  }
}

}  // namespace

const TransformImpl& Transform::impl() const {
  EMBER_CHECK(impl_ != nullptr, "use of an undefined (default-constructed) Transform");
  return *impl_;
}

ExpTransform::ExpTransform() : Transform(std::make_shared<ExpImpl>()) {}
SoftplusTransform::SoftplusTransform() : Transform(std::make_shared<SoftplusImpl>()) {}
SigmoidTransform::SigmoidTransform() : Transform(std::make_shared<SigmoidImpl>()) {}

AffineTransform::AffineTransform(const dist::ParamArg& loc, const dist::ParamArg& scale,
                                 int event_dim)
    : Transform(std::make_shared<AffineImpl>(loc, scale, event_dim)) {}
Tensor AffineTransform::loc() const { return as<AffineImpl>()->loc(); }
Tensor AffineTransform::scale() const { return as<AffineImpl>()->scale(); }

StickBreakingTransform::StickBreakingTransform()
    : Transform(std::make_shared<StickBreakingImpl>()) {}
LowerCholeskyTransform::LowerCholeskyTransform()
    : Transform(std::make_shared<LowerCholeskyImpl>()) {}

ComposeTransform::ComposeTransform(std::vector<Transform> parts)
    : Transform(std::make_shared<ComposeImpl>(std::move(parts))) {}
const std::vector<Transform>& ComposeTransform::parts() const { return as<ComposeImpl>()->parts(); }

IndependentTransform::IndependentTransform(const Transform& base, int reinterpreted_batch_ndims)
    : Transform(std::make_shared<IndependentImpl>(base, reinterpreted_batch_ndims)) {}

Transform biject_to(const Constraint& constraint) {
  const int extra = constraint.event_dim() - base_event_dim(constraint.kind());
  const Transform base = biject_to_base(constraint);
  return extra > 0 ? IndependentTransform(base, extra) : base;
}

}  // namespace ember::transforms
