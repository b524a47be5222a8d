// The math of every elementwise op, once, for host and device: the value (fwd) and the
// gradient of the input given the output gradient g, the input x and the output y (bwd).
// A new op is one struct here plus one entry in its list; both launchers pick it up.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/common/macros.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {

// ---------------------------------------------------------------- unary (floating) ----
// p0, p1: per-op parameters (clamp bounds, leaky_relu's slope, elu's alpha); unused elsewhere.
#define EMBER_UNARY_OPS(X) \
  X(Neg)                   \
  X(Exp)                   \
  X(Log)                   \
  X(Log1p)                 \
  X(Expm1)                 \
  X(Sqrt)                  \
  X(Abs)                   \
  X(Sigmoid)               \
  X(LogSigmoid)            \
  X(Softplus)              \
  X(Tanh)                  \
  X(Relu)                  \
  X(Lgamma)                \
  X(Digamma)               \
  X(Square)                \
  X(Reciprocal)            \
  X(Clamp)                 \
  X(Floor)                 \
  X(LeakyRelu)             \
  X(Elu)                   \
  X(Gelu)                  \
  X(GeluTanh)

enum class UnaryOp : std::uint8_t {
#define EMBER_ENUM_ENTRY(name) name,
  EMBER_UNARY_OPS(EMBER_ENUM_ENTRY)
#undef EMBER_ENUM_ENTRY
};

const char* unary_op_name(UnaryOp op);

template <typename T>
struct NegOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return -x; }
  EMBER_HD T bwd(T g, T, T) const { return -g; }
};
template <typename T>
struct ExpOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::exp(x); }
  EMBER_HD T bwd(T g, T, T y) const { return g * y; }
};
template <typename T>
struct LogOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::log(x); }
  EMBER_HD T bwd(T g, T x, T) const { return g / x; }
};
template <typename T>
struct Log1pOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::log1p(x); }
  EMBER_HD T bwd(T g, T x, T) const { return g / (T(1) + x); }
};
template <typename T>
struct Expm1Op {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::expm1(x); }
  EMBER_HD T bwd(T g, T, T y) const { return g * (y + T(1)); }
};
template <typename T>
struct SqrtOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::sqrt(x); }
  EMBER_HD T bwd(T g, T, T y) const { return g / (T(2) * y); }
};
template <typename T>
struct AbsOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::fabs(x); }
  EMBER_HD T bwd(T g, T x, T) const { return x > T(0) ? g : (x < T(0) ? -g : T(0)); }
};
template <typename T>
struct SigmoidOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return sigmoid(x); }
  EMBER_HD T bwd(T g, T, T y) const { return g * y * (T(1) - y); }
};
template <typename T>
struct LogSigmoidOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return log_sigmoid(x); }
  EMBER_HD T bwd(T g, T x, T) const { return g * sigmoid(-x); }
};
template <typename T>
struct SoftplusOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return softplus(x); }
  EMBER_HD T bwd(T g, T x, T) const { return g * sigmoid(x); }
};
template <typename T>
struct TanhOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::tanh(x); }
  EMBER_HD T bwd(T g, T, T y) const { return g * (T(1) - y * y); }
};
template <typename T>
struct ReluOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return x > T(0) ? x : T(0); }
  EMBER_HD T bwd(T g, T x, T) const { return x > T(0) ? g : T(0); }
};
template <typename T>
struct LgammaOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return log_gamma(x); }
  EMBER_HD T bwd(T g, T x, T) const { return g * digamma(x); }
};
template <typename T>
struct DigammaOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return digamma(x); }
  EMBER_HD T bwd(T g, T x, T) const { return g * trigamma(x); }
};
template <typename T>
struct SquareOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return x * x; }
  EMBER_HD T bwd(T g, T x, T) const { return T(2) * g * x; }
};
template <typename T>
struct ReciprocalOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return T(1) / x; }
  EMBER_HD T bwd(T g, T, T y) const { return -g * y * y; }
};
// p0 = lower bound, p1 = upper bound. NaN passes through, as in PyTorch.
template <typename T>
struct ClampOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return x < p0 ? p0 : (x > p1 ? p1 : x); }
  EMBER_HD T bwd(T g, T x, T) const { return (x >= p0 && x <= p1) ? g : T(0); }
};

// Piecewise constant: zero gradient (as in PyTorch).
template <typename T>
struct FloorOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return ::floor(x); }
  EMBER_HD T bwd(T, T, T) const { return T(0); }
};

// p0 = the slope for x < 0 (torch's negative_slope); the gradient at 0 is p0, as torch's.
template <typename T>
struct LeakyReluOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return x > T(0) ? x : p0 * x; }
  EMBER_HD T bwd(T g, T x, T) const { return x > T(0) ? g : p0 * g; }
};
// p0 = alpha: alpha * (exp(x) - 1) for x <= 0, whose derivative y + alpha needs no exp.
template <typename T>
struct EluOp {
  T p0, p1;
  EMBER_HD T fwd(T x) const { return x > T(0) ? x : p0 * ::expm1(x); }
  EMBER_HD T bwd(T g, T x, T y) const { return x > T(0) ? g : g * (y + p0); }
};
// x Phi(x) with the exact normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2; the derivative is
// Phi(x) + x phi(x).
template <typename T>
struct GeluOp {
  T p0, p1;
  static constexpr T kInvSqrt2 = static_cast<T>(0.70710678118654752440);
  static constexpr T kInvSqrt2Pi = static_cast<T>(0.39894228040143267794);
  EMBER_HD T fwd(T x) const { return T(0.5) * x * (T(1) + ::erf(x * kInvSqrt2)); }
  EMBER_HD T bwd(T g, T x, T) const {
    const T cdf = T(0.5) * (T(1) + ::erf(x * kInvSqrt2));
    return g * (cdf + x * kInvSqrt2Pi * ::exp(T(-0.5) * x * x));
  }
};
// torch's approximate="tanh": x (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3).
template <typename T>
struct GeluTanhOp {
  T p0, p1;
  static constexpr T kSqrt2OverPi = static_cast<T>(0.79788456080286535588);
  static constexpr T kCubic = static_cast<T>(0.044715);
  EMBER_HD T fwd(T x) const {
    return T(0.5) * x * (T(1) + ::tanh(kSqrt2OverPi * (x + kCubic * x * x * x)));
  }
  EMBER_HD T bwd(T g, T x, T) const {
    const T t = ::tanh(kSqrt2OverPi * (x + kCubic * x * x * x));
    const T du = kSqrt2OverPi * (T(1) + T(3) * kCubic * x * x);
    return g * T(0.5) * ((T(1) + t) + x * (T(1) - t * t) * du);
  }
};

// ---------------------------------------------------------------------- binary ----
// Arithmetic ops (float32, float64, int64) with their partial derivatives (floating only),
// then comparisons and logic with a bool result.
#define EMBER_BINARY_ARITH_OPS(X) \
  X(Add)                          \
  X(Sub)                          \
  X(Mul)                          \
  X(Div)                          \
  X(Pow)                          \
  X(Maximum)                      \
  X(Minimum)                      \
  X(GammaRatioOfLogs)

#define EMBER_BINARY_COMPARE_OPS(X) \
  X(Eq)                             \
  X(Ne)                             \
  X(Lt)                             \
  X(Le)                             \
  X(Gt)                             \
  X(Ge)                             \
  X(LogicalAnd)                     \
  X(LogicalOr)

enum class BinaryOp : std::uint8_t {
#define EMBER_ENUM_ENTRY(name) name,
  EMBER_BINARY_ARITH_OPS(EMBER_ENUM_ENTRY) EMBER_BINARY_COMPARE_OPS(EMBER_ENUM_ENTRY)
#undef EMBER_ENUM_ENTRY
};

const char* binary_op_name(BinaryOp op);
constexpr bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

template <typename T>
EMBER_HD T int_pow(T a, T b) {
  if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0);
  T r = 1;
  while (b > 0) {
    if (b & 1) r *= a;
    a *= a;
    b >>= 1;
  }
  return r;
}

// da/db: gradients of the inputs given the output gradient g, the inputs and output y.
template <typename T>
struct AddOp {
  EMBER_HD T fwd(T a, T b) const { return a + b; }
  EMBER_HD T da(T g, T, T, T) const { return g; }
  EMBER_HD T db(T g, T, T, T) const { return g; }
};
template <typename T>
struct SubOp {
  EMBER_HD T fwd(T a, T b) const { return a - b; }
  EMBER_HD T da(T g, T, T, T) const { return g; }
  EMBER_HD T db(T g, T, T, T) const { return -g; }
};
template <typename T>
struct MulOp {
  EMBER_HD T fwd(T a, T b) const { return a * b; }
  EMBER_HD T da(T g, T, T b, T) const { return g * b; }
  EMBER_HD T db(T g, T a, T, T) const { return g * a; }
};
// Integer division truncates; by zero it gives 0 (as NumPy's does) and INT64_MIN / -1 wraps
// to INT64_MIN, so neither traps on the CPU nor differs on the GPU.
template <typename T>
struct DivOp {
  EMBER_HD T fwd(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == T(0)) return T(0);
      if (b == T(-1)) return static_cast<T>(T(0) - static_cast<std::make_unsigned_t<T>>(a));
      return a / b;
    } else {
      return a / b;
    }
  }
  EMBER_HD T da(T g, T, T b, T) const { return g / b; }
  EMBER_HD T db(T g, T a, T b, T) const { return -g * a / (b * b); }
};
// a^b for floats. The exponents -2 to 3 that models use most (squares, reciprocals, the
// gradient of a square) are products and quotients, as in PyTorch: exact where the result is
// representable (integers stay integers), and the same on the CPU and the GPU, whose pow
// functions differ by an ulp or two (CUDA's pow(-3.0, 1.0) is -2.9999999999999996).
template <typename T>
EMBER_HD T float_pow(T a, T b) {
  if (b == T(2)) return a * a;
  if (b == T(1)) return a;
  if (b == T(0)) return T(1);
  if (b == T(-1)) return T(1) / a;
  if (b == T(3)) return a * a * a;
  if (b == T(-2)) return T(1) / (a * a);
  return ::pow(a, b);
}

template <typename T>
struct PowOp {
  EMBER_HD T fwd(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      return int_pow(a, b);
    } else {
      return float_pow(a, b);
    }
  }
  // Exponent 0 has zero gradient everywhere (also at a = 0), as in PyTorch.
  EMBER_HD T da(T g, T a, T b, T) const {
    return b == T(0) ? T(0) : g * b * float_pow(a, b - T(1));
  }
  // a = 0 with b >= 0 gives zero rather than 0 * -inf.
  EMBER_HD T db(T g, T a, T b, T y) const {
    return (a == T(0) && b >= T(0)) ? T(0) : g * y * ::log(a);
  }
};
// Ties share the gradient equally.
template <typename T>
struct MaximumOp {
  EMBER_HD T fwd(T a, T b) const { return (a != a || a > b) ? a : b; }  // NaN propagates
  EMBER_HD T da(T g, T a, T b, T) const { return a > b ? g : (a == b ? g / T(2) : T(0)); }
  EMBER_HD T db(T g, T a, T b, T) const { return b > a ? g : (a == b ? g / T(2) : T(0)); }
};
template <typename T>
struct MinimumOp {
  EMBER_HD T fwd(T a, T b) const { return (a != a || a < b) ? a : b; }
  EMBER_HD T da(T g, T a, T b, T) const { return a < b ? g : (a == b ? g / T(2) : T(0)); }
  EMBER_HD T db(T g, T a, T b, T) const { return b < a ? g : (a == b ? g / T(2) : T(0)); }
};

// A Beta draw from the logs a and b of two Gamma draws x and y: x / (x + y) = sigmoid(a - b),
// kept inside the open interval (tiny, 1 - eps) (as PyTorch does: on the boundary the
// log-density is infinite). The logs, unlike the draws, do not underflow at tiny
// concentrations. One pass for what would be a subtraction, a sigmoid and a clamp, with the
// gradient the three would give, operation for operation: the clamp's mask, then the sigmoid's
// s (1 - s), with its sign for b.
template <typename T>
struct GammaRatioOfLogsOp {
  EMBER_HD T fwd(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      return T(0);  // Beta draws are floating; integers never get here
    } else {
      return clamp().fwd(sigmoid(a - b));
    }
  }
  EMBER_HD T da(T g, T a, T b, T) const { return slope(g, a, b); }
  EMBER_HD T db(T g, T a, T b, T) const { return -slope(g, a, b); }

 private:
  // Clamped to [tiny, 1 - eps] of T.
  static EMBER_HD ClampOp<T> clamp() {
    return {tiny_normal<T>(), sizeof(T) == 4 ? static_cast<T>(0.99999988079071044921875)
                                             : static_cast<T>(0.99999999999999977795539507496869)};
  }
  // g times the derivative of the clamped sigmoid of a - b in a.
  static EMBER_HD T slope(T g, T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      return T(0);
    } else {
      const T s = sigmoid(a - b);
      return SigmoidOp<T>{}.bwd(clamp().bwd(g, s, T()), T(), s);
    }
  }
};

template <typename T>
struct EqOp {
  EMBER_HD bool fwd(T a, T b) const { return a == b; }
};
template <typename T>
struct NeOp {
  EMBER_HD bool fwd(T a, T b) const { return a != b; }
};
template <typename T>
struct LtOp {
  EMBER_HD bool fwd(T a, T b) const { return a < b; }
};
template <typename T>
struct LeOp {
  EMBER_HD bool fwd(T a, T b) const { return a <= b; }
};
template <typename T>
struct GtOp {
  EMBER_HD bool fwd(T a, T b) const { return a > b; }
};
template <typename T>
struct GeOp {
  EMBER_HD bool fwd(T a, T b) const { return a >= b; }
};
template <typename T>
struct LogicalAndOp {
  EMBER_HD bool fwd(T a, T b) const { return a != T(0) && b != T(0); }
};
template <typename T>
struct LogicalOrOp {
  EMBER_HD bool fwd(T a, T b) const { return a != T(0) || b != T(0); }
};

// ------------------------------------------------------------------ reductions ----
// Each combine functor also names itself for another accumulator type (As<U>), so a launcher
// may accumulate float32 in double with the same rule.
#define EMBER_REDUCE_OPS(X) \
  X(Sum)                    \
  X(Prod)                   \
  X(Max)                    \
  X(Min)

enum class ReduceOp : std::uint8_t {
#define EMBER_ENUM_ENTRY(name) name,
  EMBER_REDUCE_OPS(EMBER_ENUM_ENTRY)
#undef EMBER_ENUM_ENTRY
};

template <typename T>
struct SumReduce {
  template <typename U>
  using As = SumReduce<U>;
  static EMBER_HD T identity() { return T(0); }
  EMBER_HD T operator()(T a, T b) const { return a + b; }
};
template <typename T>
struct ProdReduce {
  template <typename U>
  using As = ProdReduce<U>;
  static EMBER_HD T identity() { return T(1); }
  EMBER_HD T operator()(T a, T b) const { return a * b; }
};
// NaN propagates through max and min.
template <typename T>
struct MaxReduce {
  template <typename U>
  using As = MaxReduce<U>;
  static EMBER_HD T identity() {
    if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(-9223372036854775807LL - 1);
    } else {
      return static_cast<T>(-INFINITY);
    }
  }
  EMBER_HD T operator()(T a, T b) const { return (a != a || a > b) ? a : b; }
};
template <typename T>
struct MinReduce {
  template <typename U>
  using As = MinReduce<U>;
  static EMBER_HD T identity() {
    if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(9223372036854775807LL);
    } else {
      return static_cast<T>(INFINITY);
    }
  }
  EMBER_HD T operator()(T a, T b) const { return (a != a || a < b) ? a : b; }
};

enum class ScanOp : std::uint8_t { Sum, Prod };

// Line maps along a dim, each line in one pass: log_normalize (same length) and the
// stick-breaking map (a line of n to one of n + 1).
enum class LineMap : std::uint8_t { LogNormalize, StickBreaking };

inline const char* line_map_name(LineMap op) {
  return op == LineMap::LogNormalize ? "log_normalize" : "stick_breaking";
}

// The line ops whose gradient is a line op of (g, x): cumprod, log_normalize and the
// stick-breaking map (whose g is one longer than x along the line).
enum class LineGrad : std::uint8_t { Cumprod, LogNormalize, StickBreaking };

// The name of a line op's gradient, for errors and plan listings.
inline const char* line_grad_name(LineGrad op) {
  switch (op) {
    case LineGrad::Cumprod:
      return "cumprod_backward";
    case LineGrad::LogNormalize:
      return "log_normalize_backward";
    case LineGrad::StickBreaking:
      return "stick_breaking_backward";
  }
  return "line_backward";
}

}  // namespace ember::kernels
