// Transforms: differentiable maps between constrained sets (Pyro/PyTorch's
// torch.distributions.transforms), and biject_to, which picks the map from the reals onto a
// constraint (how an unconstrained parameter or a guide's draw reaches a support).
//
// Every transform is built from differentiable tensor ops, so gradients flow through
// forward, inverse and log_abs_det_jacobian. A transform acts on its `event_dim` rightmost
// dims as one element; log_abs_det_jacobian(x, y) is summed over them, so its shape is x's
// (broadcast with the parameters) less event_dim dims.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ember/constraints.hpp"
#include "ember/distributions/distribution.hpp"
#include "ember/tensor.hpp"

namespace ember::transforms {

class TransformImpl {
 public:
  virtual ~TransformImpl() = default;

  virtual std::string name() const = 0;
  virtual Tensor forward(const Tensor& x) const = 0;
  virtual Tensor inverse(const Tensor& y) const = 0;
  // log |det dy/dx| at x (with y = forward(x) given, to spare recomputing it).
  virtual Tensor log_abs_det_jacobian(const Tensor& x, const Tensor& y) const = 0;
  virtual constraints::Constraint domain() const = 0;
  virtual constraints::Constraint codomain() const = 0;
  virtual int event_dim() const { return domain().event_dim(); }
  virtual bool bijective() const { return true; }
  // The shape of forward(x) for x of `shape` (stick-breaking adds one to the last dim).
  virtual Shape forward_shape(const Shape& shape) const { return shape; }
  virtual Shape inverse_shape(const Shape& shape) const { return shape; }
};

// A value handle (cheap to copy, immutable), as Distribution is for families.
class Transform {
 public:
  Transform() = default;
  explicit Transform(std::shared_ptr<const TransformImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  std::string name() const { return impl().name(); }
  Tensor forward(const Tensor& x) const { return impl().forward(x); }
  Tensor operator()(const Tensor& x) const { return forward(x); }
  Tensor inverse(const Tensor& y) const { return impl().inverse(y); }
  Tensor log_abs_det_jacobian(const Tensor& x, const Tensor& y) const {
    return impl().log_abs_det_jacobian(x, y);
  }
  constraints::Constraint domain() const { return impl().domain(); }
  constraints::Constraint codomain() const { return impl().codomain(); }
  int event_dim() const { return impl().event_dim(); }
  bool bijective() const { return impl().bijective(); }
  Shape forward_shape(const Shape& shape) const { return impl().forward_shape(shape); }
  Shape inverse_shape(const Shape& shape) const { return impl().inverse_shape(shape); }

  const TransformImpl& impl() const;
  const std::shared_ptr<const TransformImpl>& impl_ptr() const { return impl_; }
  template <typename Impl>
  const Impl* as() const {
    return dynamic_cast<const Impl*>(impl_.get());
  }

 protected:
  std::shared_ptr<const TransformImpl> impl_;
};

// y = exp(x): real -> positive.
class ExpTransform : public Transform {
 public:
  ExpTransform();
};

// y = log(1 + exp(x)): real -> positive.
class SoftplusTransform : public Transform {
 public:
  SoftplusTransform();
};

// y = 1 / (1 + exp(-x)), kept inside [tiny, 1 - eps] of the dtype so that logit(y) stays
// finite: real -> unit_interval.
class SigmoidTransform : public Transform {
 public:
  SigmoidTransform();
};

// y = loc + scale * x, elementwise; with event_dim > 0 the rightmost event_dim dims form one
// element (the log-det sums log|scale| over them). loc and scale broadcast with x.
class AffineTransform : public Transform {
 public:
  AffineTransform(const dist::ParamArg& loc, const dist::ParamArg& scale, int event_dim = 0);
  // The parameters as tensors (float64 scalars when given as numbers).
  Tensor loc() const;
  Tensor scale() const;
};

// real^(K-1) -> simplex^K by stick breaking, as Pyro/PyTorch: z_i = sigmoid(x_i - log(K-1-i)),
// y_i = z_i * prod_{j<i} (1 - z_j), y_{K-1} = prod_j (1 - z_j). x = 0 maps to the uniform
// point. The log-det is that of x -> y[:K-1].
class StickBreakingTransform : public Transform {
 public:
  StickBreakingTransform();
};

// An unconstrained square matrix -> a lower-triangular one with positive diagonal: the
// strictly upper part is dropped, the diagonal exponentiated. The log-det (of the lower
// entries) is the sum of x's diagonal. Not bijective on full matrices.
class LowerCholeskyTransform : public Transform {
 public:
  LowerCholeskyTransform();
};

// Applies `parts` in order (the first to x first); an empty list is the identity on the
// reals. event_dim is the largest of the parts'; each part's log-det is summed up to it.
class ComposeTransform : public Transform {
 public:
  explicit ComposeTransform(std::vector<Transform> parts);
  const std::vector<Transform>& parts() const;
};

// `base` with its `reinterpreted_batch_ndims` rightmost batch dims taken as event dims (the
// log-det is summed over them), as Independent is for distributions.
class IndependentTransform : public Transform {
 public:
  IndependentTransform(const Transform& base, int reinterpreted_batch_ndims);
};

// A transform from the reals (with the constraint's event_dim) onto `constraint`:
//   real -> identity, positive -> exp, greater_than(c) / greater_than_eq(c) -> exp then
//   affine(c, 1), unit_interval -> sigmoid, interval(a, b) -> sigmoid then affine(a, b - a)
//   (tensor bounds are used as tensors), simplex -> stick-breaking, lower_cholesky ->
//   LowerCholeskyTransform; independent constraints keep the base's transform with a larger
//   event_dim. Throws ValueError naming the constraint for those without one (discrete sets,
//   positive_definite).
Transform biject_to(const constraints::Constraint& constraint);

}  // namespace ember::transforms
