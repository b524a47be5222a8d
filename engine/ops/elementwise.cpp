// Elementwise ops: dtype promotion, broadcasting, the launcher call, and the backward.
// The math and the derivatives themselves live in kernels/math/elementwise_ops.hpp.
#include <cmath>

#include "engine/internal.hpp"

namespace ember {
namespace {

using detail::arg;
using detail::broadcast_arg;
using kernels::BinaryOp;
using kernels::UnaryOp;

// Integer and bool inputs of floating math compute in float32.
Tensor as_floating(const Tensor& x) { return is_floating(x.dtype()) ? x : x.to(kFloat32); }

Tensor unary(UnaryOp op, const Tensor& input, double p0 = 0.0, double p1 = 0.0) {
  const Tensor x = as_floating(input);
  Tensor out = detail::make_tensor(x.shape(), x.dtype(), x.device());
  detail::backend(x).unary(op, arg(out), arg(x), p0, p1);
  if (detail::needs_grad({&x})) {
    detail::record(kernels::unary_op_name(op), {x}, out,
                   [op, x, y = detail::saved(out), p0, p1](const Tensor& g) {
                     Tensor gx = detail::make_tensor(x.shape(), x.dtype(), x.device());
                     detail::backend(x).unary_backward(op, arg(gx), arg(g), arg(x), arg(y), p0, p1);
                     return detail::Grads{gx};
                   });
  }
  return out;
}

// The dtype both operands compute in. Division and pow of integers are true division and
// real powers, so they compute in float32; bool arithmetic computes in int64.
DType arith_dtype(BinaryOp op, DType a, DType b) {
  DType t = promote(a, b);
  if ((op == BinaryOp::Div || op == BinaryOp::Pow) && !is_floating(t)) return kFloat32;
  if (t == kBool && !kernels::is_comparison(op)) return kInt64;
  return t;
}

// Gradient of one operand over the broadcast shape, summed back to the operand's shape.
Tensor reduce_grad(const Tensor& g, const Tensor& operand) { return sum_to(g, operand.shape()); }

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = kernels::binary_op_name(op);
  detail::check_same_device(name, a_in, b_in);
  const DType t = arith_dtype(op, a_in.dtype(), b_in.dtype());
  // Converted where the dtype differs; otherwise the operands themselves (no new handle).
  Tensor a_converted, b_converted;
  const Tensor& a = a_in.dtype() == t ? a_in : (a_converted = a_in.to(t));
  const Tensor& b = b_in.dtype() == t ? b_in : (b_converted = b_in.to(t));
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  const bool compare = kernels::is_comparison(op);
  Tensor out = detail::make_tensor(shape, compare ? kBool : t, a.device());
  detail::backend(a).binary(op, arg(out), detail::operand_arg(a, shape),
                            detail::operand_arg(b, shape));
  if (!compare && detail::needs_grad({&a, &b})) {
    EMBER_CHECK_DTYPE(is_floating(t), name, ": gradients need floating operands");
    const bool want_a = a.requires_grad(), want_b = b.requires_grad();
    if (op == BinaryOp::Add || op == BinaryOp::Sub) {
      // Only the shapes are needed: the tape keeps neither operand alive.
      detail::record(name, {a, b}, out,
                     [op, sa = a.shape(), sb = b.shape(), want_a, want_b](const Tensor& g) {
                       detail::Grads grads(2);
                       if (want_a) grads[0] = sum_to(g, sa);
                       if (want_b) grads[1] = sum_to(op == BinaryOp::Add ? g : -g, sb);
                       return grads;
                     });
      return out;
    }
    detail::record(
        name, {a, b}, out, [op, a, b, y = detail::saved(out), want_a, want_b](const Tensor& g) {
          detail::Grads grads(2);
          Tensor ga, gb;
          kernels::TensorArg ga_arg, gb_arg;
          if (want_a) {
            ga = detail::make_tensor(g.shape(), g.dtype(), g.device());
            ga_arg = arg(ga);
          }
          if (want_b) {
            gb = detail::make_tensor(g.shape(), g.dtype(), g.device());
            gb_arg = arg(gb);
          }
          detail::backend(g).binary_backward(
              op, want_a ? &ga_arg : nullptr, want_b ? &gb_arg : nullptr, arg(g),
              detail::operand_arg(a, g.shape()), detail::operand_arg(b, g.shape()), arg(y));
          if (want_a) grads[0] = reduce_grad(ga, a);
          if (want_b) grads[1] = reduce_grad(gb, b);
          return grads;
        });
  }
  return out;
}

// A tensor and a double: the double takes the tensor's dtype (or float32 for a fractional
// value with an integer tensor) and travels to the kernel by value, with no allocation.
Tensor binary_scalar(BinaryOp op, const Tensor& x_in, double s, bool scalar_first) {
  const char* name = kernels::binary_op_name(op);
  DType t = x_in.dtype();
  if (!is_floating(t) && s != std::floor(s)) t = kFloat32;
  t = arith_dtype(op, t, t);
  const Tensor x = x_in.to(t);
  const bool compare = kernels::is_comparison(op);
  Tensor out = detail::make_tensor(x.shape(), compare ? kBool : t, x.device());
  const kernels::TensorArg sa = kernels::scalar_arg(s, t);
  const kernels::TensorArg xa = arg(x);
  detail::backend(x).binary(op, arg(out), scalar_first ? sa : xa, scalar_first ? xa : sa);
  if (!compare && detail::needs_grad({&x})) {
    detail::record(name, {x}, out,
                   [op, x, s, scalar_first, y = detail::saved(out)](const Tensor& g) {
                     if (op == BinaryOp::Add) return detail::Grads{g};
                     if (op == BinaryOp::Sub) return detail::Grads{scalar_first ? -g : g};
                     Tensor gx = detail::make_tensor(g.shape(), g.dtype(), g.device());
                     const kernels::TensorArg gx_arg = arg(gx);
                     const kernels::TensorArg sa = kernels::scalar_arg(s, g.dtype());
                     const kernels::TensorArg xa = arg(x);
                     detail::backend(g).binary_backward(
                         op, scalar_first ? nullptr : &gx_arg, scalar_first ? &gx_arg : nullptr,
                         arg(g), scalar_first ? sa : xa, scalar_first ? xa : sa, arg(y));
                     return detail::Grads{gx};
                   });
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------- arithmetic ----
namespace detail {
Tensor gamma_ratio_of_logs(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::GammaRatioOfLogs, a, b);
}
}  // namespace detail

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Minimum, a, b); }
Tensor pow(const Tensor& a, double e) { return binary_scalar(BinaryOp::Pow, a, e, false); }
Tensor pow(double base, const Tensor& e) { return binary_scalar(BinaryOp::Pow, e, base, true); }
Tensor add(const Tensor& a, double b) { return binary_scalar(BinaryOp::Add, a, b, false); }
Tensor sub(const Tensor& a, double b) { return binary_scalar(BinaryOp::Sub, a, b, false); }
Tensor sub(double a, const Tensor& b) { return binary_scalar(BinaryOp::Sub, b, a, true); }
Tensor mul(const Tensor& a, double b) { return binary_scalar(BinaryOp::Mul, a, b, false); }
Tensor div(const Tensor& a, double b) { return binary_scalar(BinaryOp::Div, a, b, false); }
Tensor div(double a, const Tensor& b) { return binary_scalar(BinaryOp::Div, b, a, true); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return sub(a, b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }

// ----------------------------------------------------------------------------- math ----
Tensor neg(const Tensor& x) {
  // Integers stay integers.
  return is_floating(x.dtype()) ? unary(UnaryOp::Neg, x) : mul(x, -1.0);
}
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
Tensor log1p(const Tensor& x) { return unary(UnaryOp::Log1p, x); }
Tensor expm1(const Tensor& x) { return unary(UnaryOp::Expm1, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
Tensor log_sigmoid(const Tensor& x) { return unary(UnaryOp::LogSigmoid, x); }
Tensor softplus(const Tensor& x) { return unary(UnaryOp::Softplus, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
Tensor lgamma(const Tensor& x) { return unary(UnaryOp::Lgamma, x); }
Tensor digamma(const Tensor& x) { return unary(UnaryOp::Digamma, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::Square, x); }
Tensor reciprocal(const Tensor& x) { return unary(UnaryOp::Reciprocal, x); }
Tensor floor(const Tensor& x) { return unary(UnaryOp::Floor, x); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  EMBER_CHECK(!(lo > hi), "clamp: lower bound ", lo, " exceeds upper bound ", hi);
  return unary(UnaryOp::Clamp, x, lo, hi);
}
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return unary(UnaryOp::LeakyRelu, x, negative_slope);
}
Tensor elu(const Tensor& x, double alpha) { return unary(UnaryOp::Elu, x, alpha); }
Tensor gelu(const Tensor& x, GeluApproximation approximate) {
  return unary(approximate == GeluApproximation::Tanh ? UnaryOp::GeluTanh : UnaryOp::Gelu, x);
}
Tensor clamp_min(const Tensor& x, double lo) { return clamp(x, lo, INFINITY); }
Tensor clamp_max(const Tensor& x, double hi) { return clamp(x, -INFINITY, hi); }

// ------------------------------------------------------------------------- select ----
Tensor where(const Tensor& cond_in, const Tensor& a_in, const Tensor& b_in) {
  detail::check_same_device("where", cond_in, a_in);
  detail::check_same_device("where", a_in, b_in);
  const DType t = promote(a_in.dtype(), b_in.dtype());
  const Tensor cond = cond_in.to(kBool), a = a_in.to(t), b = b_in.to(t);
  const Shape shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor out = detail::make_tensor(shape, t, a.device());
  detail::backend(a).where(arg(out), broadcast_arg(cond, shape), broadcast_arg(a, shape),
                           broadcast_arg(b, shape));
  if (detail::needs_grad({&a, &b})) {
    detail::record("where", {a, b}, out, [cond, a, b](const Tensor& g) {
      detail::Grads grads(2);
      if (a.requires_grad()) grads[0] = sum_to(where(cond, g, 0.0), a.shape());
      if (b.requires_grad()) grads[1] = sum_to(where(cond, 0.0, g), b.shape());
      return grads;
    });
  }
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, double b) {
  return where(cond, a,
               scalar_tensor(b, TensorOptions{}.with_dtype(a.dtype()).with_device(a.device())));
}
Tensor where(const Tensor& cond, double a, const Tensor& b) {
  return where(cond,
               scalar_tensor(a, TensorOptions{}.with_dtype(b.dtype()).with_device(b.device())), b);
}

// -------------------------------------------------------------------- comparisons ----
Tensor eq(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Ge, a, b); }
Tensor eq(const Tensor& a, double b) { return binary_scalar(BinaryOp::Eq, a, b, false); }
Tensor ne(const Tensor& a, double b) { return binary_scalar(BinaryOp::Ne, a, b, false); }
Tensor lt(const Tensor& a, double b) { return binary_scalar(BinaryOp::Lt, a, b, false); }
Tensor le(const Tensor& a, double b) { return binary_scalar(BinaryOp::Le, a, b, false); }
Tensor gt(const Tensor& a, double b) { return binary_scalar(BinaryOp::Gt, a, b, false); }
Tensor ge(const Tensor& a, double b) { return binary_scalar(BinaryOp::Ge, a, b, false); }
Tensor logical_and(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::LogicalAnd, a.to(kBool), b.to(kBool));
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::LogicalOr, a.to(kBool), b.to(kBool));
}
Tensor logical_not(const Tensor& a) { return eq(a.to(kBool), 0.0); }
Tensor isnan(const Tensor& x) { return ne(x, x); }
Tensor isfinite(const Tensor& x) {
  if (!is_floating(x.dtype()))
    return ones(x.shape(), TensorOptions{}.with_dtype(kBool).with_device(x.device()));
  return lt(abs(x.detach()), INFINITY);
}
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }

// Through bool first: a fractional value such as 0.5 is true, not truncated to 0.
bool all(const Tensor& cond) {
  return cond.numel() == 0 || min(cond.to(kBool).to(kInt64)).item() != 0.0;
}
bool any(const Tensor& cond) {
  return cond.numel() > 0 && max(cond.to(kBool).to(kInt64)).item() != 0.0;
}

}  // namespace ember
