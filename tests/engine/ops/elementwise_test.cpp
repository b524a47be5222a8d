// Elementwise ops (engine/ops/elementwise.cpp over kernels/math): values against the C
// library and known constants, gradients against central differences (broadcasting,
// zero-size and non-contiguous operands), dtype promotion, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numbers>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

using Fn1 = std::function<Tensor(const Tensor&)>;

struct UnaryCase {
  const char* name;
  Fn1 op;
  double (*ref)(double);
  double lo, hi;  // the domain sampled for values and gradients
};

double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_log_sigmoid(double x) { return -std::log1p(std::exp(-x)); }
double ref_softplus(double x) { return std::log1p(std::exp(x)); }
double ref_relu(double x) { return x > 0 ? x : 0.0; }
double ref_square(double x) { return x * x; }
double ref_reciprocal(double x) { return 1.0 / x; }
double ref_neg(double x) { return -x; }
double ref_clamp(double x) { return std::min(0.5, std::max(-0.25, x)); }
double ref_clamp_min(double x) { return std::max(0.25, x); }
double ref_clamp_max(double x) { return std::min(-0.5, x); }
double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }
double ref_log1p(double x) { return std::log1p(x); }
double ref_expm1(double x) { return std::expm1(x); }
double ref_sqrt(double x) { return std::sqrt(x); }
double ref_abs(double x) { return std::fabs(x); }
double ref_tanh(double x) { return std::tanh(x); }
double ref_lgamma(double x) { return std::lgamma(x); }

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, ref_neg, -3, 3},
      {"exp", [](const Tensor& x) { return exp(x); }, ref_exp, -3, 3},
      {"log", [](const Tensor& x) { return log(x); }, ref_log, 0.1, 4},
      {"log1p", [](const Tensor& x) { return log1p(x); }, ref_log1p, -0.9, 4},
      {"expm1", [](const Tensor& x) { return expm1(x); }, ref_expm1, -3, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, ref_sqrt, 0.1, 4},
      {"abs", [](const Tensor& x) { return abs(x); }, ref_abs, -3, 3},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, ref_sigmoid, -6, 6},
      {"log_sigmoid", [](const Tensor& x) { return log_sigmoid(x); }, ref_log_sigmoid, -6, 6},
      {"softplus", [](const Tensor& x) { return softplus(x); }, ref_softplus, -6, 6},
      {"tanh", [](const Tensor& x) { return tanh(x); }, ref_tanh, -3, 3},
      {"relu", [](const Tensor& x) { return relu(x); }, ref_relu, -3, 3},
      {"lgamma", [](const Tensor& x) { return lgamma(x); }, ref_lgamma, 0.1, 8},
      {"lgamma_negative", [](const Tensor& x) { return lgamma(x); }, ref_lgamma, -2.9, -2.1},
      {"square", [](const Tensor& x) { return square(x); }, ref_square, -3, 3},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, ref_reciprocal, 0.3, 3},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.25, 0.5); }, ref_clamp, -1, 1},
      {"clamp_min", [](const Tensor& x) { return clamp_min(x, 0.25); }, ref_clamp_min, -1, 1},
      {"clamp_max", [](const Tensor& x) { return clamp_max(x, -0.5); }, ref_clamp_max, -1, 1},
  };
  return cases;
}

Tensor apply_ref(const Tensor& x, double (*ref)(double)) {
  std::vector<double> v = values(x);
  for (double& e : v) e = ref(e);
  return from_vector(v, x.shape(), f64());
}

}  // namespace

// ------------------------------------------------------------------- unary values ----
TEST(Unary, ValuesMatchTheCLibraryInFloat64AndFloat32) {
  for (const auto& c : unary_cases()) {
    SCOPED_TRACE(c.name);
    Tensor x = uniform({5, 7}, c.lo, c.hi);
    Tensor y = c.op(x);
    EXPECT_EQ(y.dtype(), kFloat64);
    EXPECT_EQ(y.shape(), x.shape());
    expect_close(y, apply_ref(x, c.ref), 1e-12, 1e-14);
    Tensor y32 = c.op(x.to(kFloat32));
    EXPECT_EQ(y32.dtype(), kFloat32);
    expect_close(y32, apply_ref(x.to(kFloat32), c.ref), 2e-5, 1e-6);
  }
}

TEST(Unary, GradientsMatchCentralDifferences) {
  for (const auto& c : unary_cases()) {
    SCOPED_TRACE(c.name);
    const auto f = [&](const std::vector<Tensor>& v) { return c.op(v[0]); };
    EMBER_EXPECT_GRAD(f, {uniform({3, 4}, c.lo, c.hi, true)});
  }
}

TEST(Unary, Float32GradientsMatchFloat64) {
  for (const auto& c : unary_cases()) {
    SCOPED_TRACE(c.name);
    Tensor x64 = uniform({4, 5}, c.lo, c.hi, true);
    Tensor x32 = x64.detach().to(kFloat32).to(kFloat64);  // the same values in both dtypes
    x64 = x32.detach().requires_grad_();
    Tensor leaf32 = x32.detach().to(kFloat32).requires_grad_();
    sum(c.op(x64) * x64.detach()).backward();
    sum(c.op(leaf32) * leaf32.detach()).backward();
    EXPECT_EQ(leaf32.grad().dtype(), kFloat32);
    expect_close(leaf32.grad(), x64.grad(), 1e-4, 1e-5);
  }
}

TEST(Unary, GradientsOfNonContiguousAndZeroSizeInputs) {
  for (const auto& c : unary_cases()) {
    SCOPED_TRACE(c.name);
    const auto transposed = [&](const std::vector<Tensor>& v) { return c.op(v[0].t()); };
    EMBER_EXPECT_GRAD(transposed, {uniform({3, 4}, c.lo, c.hi, true)});
    const auto stepped = [&](const std::vector<Tensor>& v) { return c.op(v[0].slice(1, 1, 6, 2)); };
    EMBER_EXPECT_GRAD(stepped, {uniform({2, 6}, c.lo, c.hi, true)});
    const auto empty = [&](const std::vector<Tensor>& v) { return c.op(v[0]); };
    EMBER_EXPECT_GRAD(empty, {uniform({0, 3}, c.lo, c.hi, true)});
  }
}

TEST(Unary, IntegerInputsComputeInFloat32) {
  Tensor i = tensor({1, 4, 9}, TensorOptions{}.with_dtype(kInt64));
  Tensor r = sqrt(i);
  EXPECT_EQ(r.dtype(), kFloat32);
  expect_values(r, {1, 2, 3});
  // neg keeps integers integral.
  Tensor n = -i;
  EXPECT_EQ(n.dtype(), kInt64);
  EXPECT_EQ(n.to_vector<std::int64_t>(), (std::vector<std::int64_t>{-1, -4, -9}));
}

TEST(Unary, StableAtExtremes) {
  Tensor x = tensor({-800.0, -40.0, 0.0, 40.0, 800.0}, f64(true));
  expect_values(sigmoid(x), {0, ref_sigmoid(-40), 0.5, 1, 1}, 1e-12, 0);
  expect_values(log_sigmoid(x),
                {-800, -40 - std::log1p(std::exp(-40.0)), -std::log(2.0), -std::exp(-40.0), 0},
                1e-12, 1e-300);
  expect_values(softplus(x), {0, std::exp(-40.0), std::log(2.0), 40 + std::exp(-40.0), 800}, 1e-12,
                1e-300);
  sum(sigmoid(x) + log_sigmoid(x) + softplus(x)).backward();
  // d/dx [sigmoid + log_sigmoid + softplus] = s(1-s) + (1-s) + s = s(1-s) + 1.
  std::vector<double> want;
  for (double v : {-800.0, -40.0, 0.0, 40.0, 800.0}) {
    const double s = ref_sigmoid(v);
    want.push_back(s * (1 - s) + 1);
  }
  expect_values(x.grad(), want, 1e-12, 1e-15);
}

TEST(Unary, KinksHaveTheDocumentedSubgradient) {
  Tensor x = tensor({0.0, -0.25, 0.5, 2.0}, f64(true));
  sum(abs(x) + relu(x) + clamp(x, -0.25, 0.5)).backward();
  // abs'(0) = 0, relu'(0) = 0; clamp passes the gradient at both bounds (inclusive).
  expect_values(x.grad(), {0 + 0 + 1, -1 + 0 + 1, 1 + 1 + 1, 1 + 1 + 0});
}

TEST(Unary, ClampMinMaxAndErrors) {
  Tensor x = tensor({-2.0, 0.0, 3.0}, f64());
  expect_values(clamp_min(x, -1.0), {-1, 0, 3});
  expect_values(clamp_max(x, 1.0), {-2, 0, 1});
  expect_values(clamp(x, 1.0, 1.0), {1, 1, 1});
  EMBER_EXPECT_THROW_WITH(clamp(x, 2.0, 1.0), ValueError, "clamp", "2", "1");
  Tensor nan = tensor({NAN}, f64());
  EXPECT_TRUE(std::isnan(clamp(nan, 0.0, 1.0).item()));
}

TEST(Unary, FloorRoundsDownAndHasAZeroGradient) {
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x =
        tensor({-2.5, -2.0, -0.25, -0.0, 0.0, 0.75, 1.0, 3.5, 123456.0, NAN, INFINITY, -INFINITY},
               TensorOptions{}.with_dtype(dtype).with_requires_grad(true));
    const Tensor y = floor(x);
    EXPECT_EQ(y.dtype(), dtype);
    expect_values(y, {-3, -2, -1, -0.0, 0, 0, 1, 3, 123456, NAN, INFINITY, -INFINITY}, 0, 0);
    EXPECT_TRUE(std::signbit(values(y)[3])) << "floor(-0) is -0";
    // Piecewise constant: the gradient is zero everywhere, NaN inputs included.
    sum(y * random_normal(x.shape(), false, dtype)).backward();
    EXPECT_EQ(x.grad().dtype(), dtype);
    EXPECT_EQ(values(x.grad()), std::vector<double>(12, 0.0));
  }
}

// ------------------------------------------------------------------ special values ----
TEST(Special, DigammaKnownValues) {
  constexpr double kEulerGamma = 0.5772156649015329;
  Tensor x = tensor({1.0, 0.5, 2.0, 10.0, -0.5, -1.5, 0.1, 30.0}, f64());
  expect_values(digamma(x),
                {-kEulerGamma, -1.9635100260214235, 1 - kEulerGamma, 2.251752589066721,
                 0.03648997397857652, 0.7031566406452432, -10.423754940411076, 3.3844381326855249},
                1e-10, 1e-12);
  // Poles at non-positive integers.
  EXPECT_TRUE(std::isnan(digamma(tensor({-2.0}, f64())).item()));
  // float32 too.
  EXPECT_NEAR(digamma(tensor({1.0})).item(), -kEulerGamma, 1e-6);
}

TEST(Special, TrigammaThroughDigammasGradient) {
  const double pi2 = std::numbers::pi * std::numbers::pi;
  Tensor x = tensor({1.0, 0.5, -0.5, 2.0, 0.1}, f64(true));
  sum(digamma(x)).backward();
  // psi'(1) = pi^2/6, psi'(1/2) = pi^2/2, psi'(-1/2) = psi'(1/2) + 4, psi'(2) = pi^2/6 - 1,
  // psi'(0.1) from the recurrence psi'(x) = psi'(x+1) + 1/x^2 and a reference value.
  expect_values(x.grad(), {pi2 / 6, pi2 / 2, pi2 / 2 + 4, pi2 / 6 - 1, 101.43329915079276}, 1e-9,
                1e-12);
}

TEST(Special, LgammaKnownValuesAndGradient) {
  Tensor x = tensor({0.5, 1.0, 2.0, 5.0, -0.5}, f64(true));
  expect_values(lgamma(x),
                {0.5 * std::log(std::numbers::pi), 0, 0, std::log(24.0),
                 std::log(2 * std::sqrt(std::numbers::pi))},
                1e-12, 1e-14);
  sum(lgamma(x)).backward();
  constexpr double g = 0.5772156649015329;
  expect_values(x.grad(), {-1.9635100260214235, -g, 1 - g, 25.0 / 12 - g, 0.03648997397857652},
                1e-10, 1e-12);
}

TEST(Special, DigammaGradientMatchesCentralDifferences) {
  const auto f = [](const std::vector<Tensor>& v) { return digamma(v[0]); };
  EMBER_EXPECT_GRAD(f, {uniform({6}, 0.2, 12, true)}, {.h = 1e-6, .rtol = 1e-6, .atol = 1e-6});
  EMBER_EXPECT_GRAD(f, {uniform({4}, -1.8, -1.2, true)});
}

// ------------------------------------------------------------------- binary values ----
TEST(Binary, ArithmeticValues) {
  Tensor a = tensor({6.0, -3.0, 2.5}, f64());
  Tensor b = tensor({2.0, 4.0, -0.5}, f64());
  expect_values(a + b, {8, 1, 2});
  expect_values(a - b, {4, -7, 3});
  expect_values(a * b, {12, -12, -1.25});
  expect_values(a / b, {3, -0.75, -5});
  expect_values(maximum(a, b), {6, 4, 2.5});
  expect_values(minimum(a, b), {2, -3, -0.5});
  expect_values(-a, {-6, 3, -2.5});
  expect_values(a + 1.0, {7, -2, 3.5});
  expect_values(1.0 + a, {7, -2, 3.5});
  expect_values(a - 1.0, {5, -4, 1.5});
  expect_values(1.0 - a, {-5, 4, -1.5});
  expect_values(a * 2.0, {12, -6, 5});
  expect_values(2.0 * a, {12, -6, 5});
  expect_values(a / 2.0, {3, -1.5, 1.25});
  expect_values(3.0 / b, {1.5, 0.75, -6});
  expect_values(add(a, b), {8, 1, 2});
  expect_values(sub(a, b), {4, -7, 3});
  expect_values(mul(a, b), {12, -12, -1.25});
  expect_values(div(a, b), {3, -0.75, -5});
}

TEST(Binary, PowInAllThreeForms) {
  Tensor a = tensor({2.0, 9.0, 0.5}, f64());
  Tensor e = tensor({3.0, 0.5, -1.0}, f64());
  expect_values(pow(a, e), {8, 3, 2});
  expect_values(pow(a, 2.0), {4, 81, 0.25});
  expect_values(pow(a, 0.0), {1, 1, 1});
  expect_values(pow(2.0, e), {8, std::sqrt(2.0), 0.5});
  Tensor i = tensor({2, 3, -2}, TensorOptions{}.with_dtype(kInt64));
  Tensor ie = tensor({10, 0, 3}, TensorOptions{}.with_dtype(kInt64));
  // Integer pow is a real power (float32), as is integer division.
  Tensor p = pow(i, ie);
  EXPECT_EQ(p.dtype(), kFloat32);
  expect_values(p, {1024, 1, -8});
}

TEST(Binary, BroadcastValues) {
  Tensor col = tensor({1, 2, 3}, f64()).reshape({3, 1});
  Tensor row = tensor({{10, 20, 30, 40}}, f64());  // (1, 4)
  Tensor s = col + row;
  EXPECT_EQ(s.shape(), (Shape{3, 4}));
  expect_values(s, {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43});
  Tensor x = arange(24.0, f64()).reshape({2, 3, 4});
  Tensor v = tensor({1.0, 0.0, -1.0, 2.0}, f64());
  Tensor p = x * v;
  EXPECT_EQ(p.shape(), (Shape{2, 3, 4}));
  const auto pv = values(p);
  const std::vector<double> vv{1, 0, -1, 2};
  for (int i = 0; i < 24; ++i) EXPECT_EQ(pv[i], i * vv[i % 4]);
  Tensor z = zeros({0, 3}, f64()) + ones({3}, f64());
  EXPECT_EQ(z.shape(), (Shape{0, 3}));
  Tensor sc = scalar_tensor(2.0, f64()) * x;
  EXPECT_EQ(sc.shape(), x.shape());
  EXPECT_EQ(sum(sc).item(), 2.0 * 276);
}

TEST(Binary, DtypePromotion) {
  const auto i64 = TensorOptions{}.with_dtype(kInt64);
  const auto b = TensorOptions{}.with_dtype(kBool);
  Tensor i = tensor({7, -7}, i64);
  Tensor j = tensor({2, 2}, i64);
  EXPECT_EQ((i + j).dtype(), kInt64);
  EXPECT_EQ((i * j).to_vector<std::int64_t>(), (std::vector<std::int64_t>{14, -14}));
  Tensor q = i / j;
  EXPECT_EQ(q.dtype(), kFloat32);
  expect_values(q, {3.5, -3.5});
  EXPECT_EQ((i + 1.0).dtype(), kInt64);
  EXPECT_EQ((i + 0.5).dtype(), kFloat32);
  expect_values(i + 0.5, {7.5, -6.5});
  EXPECT_EQ((i + ones({2})).dtype(), kFloat32);
  EXPECT_EQ((ones({2}) + ones({2}, f64())).dtype(), kFloat64);
  Tensor bt = tensor({1, 0}, b);
  Tensor bsum = bt + bt;
  EXPECT_EQ(bsum.dtype(), kInt64);
  EXPECT_EQ(bsum.to_vector<std::int64_t>(), (std::vector<std::int64_t>{2, 0}));
  EXPECT_EQ((ones({2}, f64()) * 3.0).dtype(), kFloat64);
}

TEST(Binary, MixedDtypeGradientsKeepTheLeafDtype) {
  Tensor a = tensor({1.0, 2.0}, TensorOptions{}.with_requires_grad());  // float32
  Tensor b = tensor({3.0, 4.0}, f64(true));
  sum(a * b).backward();
  EXPECT_EQ(a.grad().dtype(), kFloat32);
  EXPECT_EQ(b.grad().dtype(), kFloat64);
  expect_values(a.grad(), {3, 4});
  expect_values(b.grad(), {1, 2});
}

TEST(Binary, ShapeMismatchNamesBothShapes) {
  Tensor a = zeros({2, 3}), b = zeros({4});
  EMBER_EXPECT_THROW_WITH(a + b, ShapeError, "(2, 3)", "(4)", "Add");
  EMBER_EXPECT_THROW_WITH(a * b, ShapeError, "(2, 3)", "(4)");
  EMBER_EXPECT_THROW_WITH(pow(a, b), ShapeError, "(2, 3)", "(4)");
  EMBER_EXPECT_THROW_WITH(a < b, ShapeError, "(2, 3)", "(4)");
  EMBER_EXPECT_THROW_WITH(where(a > 0.0, a, b), ShapeError, "(2, 3)", "(4)", "where");
  EMBER_EXPECT_THROW_WITH(maximum(zeros({3, 2}), zeros({2, 3})), ShapeError, "(3, 2)", "(2, 3)");
}

// --------------------------------------------------------------- binary gradients ----
namespace {

using Fn2 = std::function<Tensor(const Tensor&, const Tensor&)>;
struct BinaryCase {
  const char* name;
  Fn2 op;
  double lo, hi;  // domain of both operands
};

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, -2, 2},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, -2, 2},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, -2, 2},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, 0.5, 2},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, 0.5, 2},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, -2, 2},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, -2, 2},
  };
  return cases;
}

}  // namespace

TEST(Binary, GradientsSameShape) {
  for (const auto& c : binary_cases()) {
    SCOPED_TRACE(c.name);
    const auto f = [&](const std::vector<Tensor>& v) { return c.op(v[0], v[1]); };
    EMBER_EXPECT_GRAD(f, {uniform({2, 3}, c.lo, c.hi, true), uniform({2, 3}, c.lo, c.hi, true)});
  }
}

TEST(Binary, GradientsWithBroadcasting) {
  for (const auto& c : binary_cases()) {
    SCOPED_TRACE(c.name);
    const auto f = [&](const std::vector<Tensor>& v) { return c.op(v[0], v[1]); };
    EMBER_EXPECT_GRAD(f, {uniform({3, 1}, c.lo, c.hi, true), uniform({1, 4}, c.lo, c.hi, true)});
    EMBER_EXPECT_GRAD(f, {uniform({2, 3, 4}, c.lo, c.hi, true), uniform({4}, c.lo, c.hi, true)});
    EMBER_EXPECT_GRAD(f, {uniform({4}, c.lo, c.hi, true), uniform({2, 3, 4}, c.lo, c.hi, true)});
    EMBER_EXPECT_GRAD(f, {uniform({}, c.lo, c.hi, true), uniform({2, 2}, c.lo, c.hi, true)});
    EMBER_EXPECT_GRAD(f, {uniform({2, 1, 3}, c.lo, c.hi, true), uniform({4, 1}, c.lo, c.hi, true)});
  }
}

TEST(Binary, GradientsWithOneConstantOperand) {
  for (const auto& c : binary_cases()) {
    SCOPED_TRACE(c.name);
    const auto f = [&](const std::vector<Tensor>& v) { return c.op(v[0], v[1]); };
    EMBER_EXPECT_GRAD(f, {uniform({3, 1}, c.lo, c.hi, true), uniform({1, 4}, c.lo, c.hi)});
    EMBER_EXPECT_GRAD(f, {uniform({3, 1}, c.lo, c.hi), uniform({1, 4}, c.lo, c.hi, true)});
  }
}

TEST(Binary, GradientsOfZeroSizeAndNonContiguousOperands) {
  for (const auto& c : binary_cases()) {
    SCOPED_TRACE(c.name);
    const auto f = [&](const std::vector<Tensor>& v) { return c.op(v[0], v[1]); };
    EMBER_EXPECT_GRAD(f, {uniform({0, 3}, c.lo, c.hi, true), uniform({3}, c.lo, c.hi, true)});
    EMBER_EXPECT_GRAD(f, {uniform({0, 1}, c.lo, c.hi, true), uniform({1, 4}, c.lo, c.hi, true)});
    const auto g = [&](const std::vector<Tensor>& v) {
      return c.op(v[0].t(), v[1].slice(0, 0, 5, 2));
    };
    EMBER_EXPECT_GRAD(g, {uniform({4, 3}, c.lo, c.hi, true), uniform({5, 4}, c.lo, c.hi, true)});
  }
}

TEST(Binary, ScalarFormsGradients) {
  const std::vector<std::pair<const char*, Fn1>> cases = {
      {"x+s", [](const Tensor& x) { return x + 1.5; }},
      {"s+x", [](const Tensor& x) { return 1.5 + x; }},
      {"x-s", [](const Tensor& x) { return x - 1.5; }},
      {"s-x", [](const Tensor& x) { return 1.5 - x; }},
      {"x*s", [](const Tensor& x) { return x * -2.5; }},
      {"s*x", [](const Tensor& x) { return -2.5 * x; }},
      {"x/s", [](const Tensor& x) { return x / 4.0; }},
      {"s/x", [](const Tensor& x) { return 3.0 / x; }},
      {"x^s", [](const Tensor& x) { return pow(x, 2.5); }},
      {"x^-s", [](const Tensor& x) { return pow(x, -1.5); }},
      {"s^x", [](const Tensor& x) { return pow(1.7, x); }},
  };
  for (const auto& [name, op] : cases) {
    SCOPED_TRACE(name);
    const auto f = [&](const std::vector<Tensor>& v) { return op(v[0]); };
    EMBER_EXPECT_GRAD(f, {uniform({2, 3}, 0.5, 2, true)});
    const auto t = [&](const std::vector<Tensor>& v) { return op(v[0].t()); };
    EMBER_EXPECT_GRAD(t, {uniform({3, 2}, 0.5, 2, true)});
  }
}

TEST(Binary, PowGradientEdgeCases) {
  // d/dx x^2 at 0 is 0; d/dx x^0 is 0 even at 0; d/de 0^e is 0 for e > 0.
  Tensor x = tensor({0.0, 0.0, 3.0}, f64(true));
  Tensor e = tensor({2.0, 0.0, 2.0}, f64(true));
  sum(pow(x, e)).backward();
  expect_values(x.grad(), {0, 0, 6});
  expect_values(e.grad(), {0, 0, 9 * std::log(3.0)});
  Tensor y = tensor({0.0, 2.0}, f64(true));
  sum(pow(y, 3.0) + pow(y, 0.0)).backward();
  expect_values(y.grad(), {0, 12});
  // Negative base with an integer exponent.
  Tensor n = tensor({-2.0}, f64(true));
  sum(pow(n, 3.0)).backward();
  expect_values(n.grad(), {12});
}

TEST(Binary, MaximumMinimumTiesShareTheGradient) {
  Tensor a = tensor({1.0, 2.0, 3.0}, f64(true));
  Tensor b = tensor({1.0, 5.0, 0.0}, f64(true));
  sum(maximum(a, b) * 2.0 + minimum(a, b)).backward();
  // tie: max 1/2 each, min 1/2 each -> (2 + 1) / 2 each.
  expect_values(a.grad(), {1.5, 1, 2});
  expect_values(b.grad(), {1.5, 2, 1});
}

TEST(Binary, NanPropagatesThroughMaximumAndMinimum) {
  Tensor a = tensor({NAN, 1.0}, f64());
  Tensor b = tensor({0.0, NAN}, f64());
  const auto mx = values(maximum(a, b)), mn = values(minimum(a, b));
  EXPECT_TRUE(std::isnan(mx[0]) && std::isnan(mx[1]));
  EXPECT_TRUE(std::isnan(mn[0]) && std::isnan(mn[1]));
}

TEST(Binary, SameTensorOnBothSides) {
  Tensor x = tensor({1.5, -2.0}, f64(true));
  sum(x * x + x / x - x - x).backward();
  expect_values(x.grad(), {3 - 2, -4 - 2}, 1e-12, 1e-12);
}

// ------------------------------------------------------------------------- where ----
TEST(Where, ValuesAndBroadcasting) {
  Tensor cond = tensor({1, 0}, TensorOptions{}.with_dtype(kBool)).reshape({2, 1});
  Tensor a = tensor({1.0, 2.0, 3.0}, f64());                           // (3)
  Tensor b = tensor({{-1.0, -2.0, -3.0}, {-4.0, -5.0, -6.0}}, f64());  // (2, 3)
  Tensor w = where(cond, a, b);
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  expect_values(w, {1, 2, 3, -4, -5, -6});
  expect_values(where(a > 1.5, a, 0.0), {0, 2, 3});
  expect_values(where(a > 1.5, 9.0, a), {1, 9, 9});
  // A non-bool condition is converted (nonzero is true).
  expect_values(where(tensor({0.0, 2.0, -1.0}), a, 0.0), {0, 2, 3});
}

TEST(Where, Gradients) {
  Tensor cond =
      tensor({{1, 0, 1, 1}, {0, 0, 1, 0}, {1, 1, 0, 0}}, TensorOptions{}.with_dtype(kBool));
  const auto f = [&](const std::vector<Tensor>& v) { return where(cond, v[0], v[1]); };
  EMBER_EXPECT_GRAD(f, {random_normal({3, 4}, true), random_normal({3, 4}, true)});
  EMBER_EXPECT_GRAD(f, {random_normal({3, 1}, true), random_normal({4}, true)});
  EMBER_EXPECT_GRAD(f, {random_normal({4}, true), random_normal({3, 4})});
  const auto s = [&](const std::vector<Tensor>& v) {
    return where(cond, v[0], 2.0) * where(cond.t().t(), -1.0, v[0]);
  };
  EMBER_EXPECT_GRAD(s, {random_normal({3, 4}, true)});
  const auto nc = [&](const std::vector<Tensor>& v) { return where(cond, v[0].t(), v[1]); };
  EMBER_EXPECT_GRAD(nc, {random_normal({4, 3}, true), random_normal({3, 4}, true)});
}

// ---------------------------------------------------------- comparisons and logic ----
TEST(Compare, ValuesAreBoolAndCarryNoGradient) {
  Tensor a = tensor({1.0, 2.0, 3.0}, f64(true));
  Tensor b = tensor({3.0, 2.0, 1.0}, f64());
  const auto u8 = [](const Tensor& t) {
    EXPECT_EQ(t.dtype(), kBool);
    EXPECT_FALSE(t.requires_grad());
    return t.to_vector<std::uint8_t>();
  };
  using V = std::vector<std::uint8_t>;
  EXPECT_EQ(u8(eq(a, b)), (V{0, 1, 0}));
  EXPECT_EQ(u8(ne(a, b)), (V{1, 0, 1}));
  EXPECT_EQ(u8(lt(a, b)), (V{1, 0, 0}));
  EXPECT_EQ(u8(le(a, b)), (V{1, 1, 0}));
  EXPECT_EQ(u8(gt(a, b)), (V{0, 0, 1}));
  EXPECT_EQ(u8(ge(a, b)), (V{0, 1, 1}));
  EXPECT_EQ(u8(a < b), (V{1, 0, 0}));
  EXPECT_EQ(u8(a <= b), (V{1, 1, 0}));
  EXPECT_EQ(u8(a > b), (V{0, 0, 1}));
  EXPECT_EQ(u8(a >= b), (V{0, 1, 1}));
  EXPECT_EQ(u8(eq(a, 2.0)), (V{0, 1, 0}));
  EXPECT_EQ(u8(ne(a, 2.0)), (V{1, 0, 1}));
  EXPECT_EQ(u8(lt(a, 2.0)), (V{1, 0, 0}));
  EXPECT_EQ(u8(le(a, 2.0)), (V{1, 1, 0}));
  EXPECT_EQ(u8(gt(a, 2.0)), (V{0, 0, 1}));
  EXPECT_EQ(u8(ge(a, 2.0)), (V{0, 1, 1}));
  EXPECT_EQ(u8(a < 2.5), (V{1, 1, 0}));
  EXPECT_EQ(u8(a <= 2.0), (V{1, 1, 0}));
  EXPECT_EQ(u8(a > 1.5), (V{0, 1, 1}));
  EXPECT_EQ(u8(a >= 3.0), (V{0, 0, 1}));
  // Broadcasting and mixed dtypes compare in the promoted dtype.
  Tensor i = tensor({2}, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(u8(eq(a, i)), (V{0, 1, 0}));
  EXPECT_EQ(u8(lt(tensor({0.5, 2.5}, f64()).reshape({2, 1}), a)), (V{1, 1, 1, 0, 0, 1}));
  // An integer tensor compared with a fractional scalar is not truncated.
  EXPECT_EQ(u8(lt(tensor({2, 3}, TensorOptions{}.with_dtype(kInt64)), 2.5)), (V{1, 0}));
}

TEST(Compare, LogicalOps) {
  const auto b = TensorOptions{}.with_dtype(kBool);
  Tensor p = tensor({1, 1, 0, 0}, b), q = tensor({1, 0, 1, 0}, b);
  using V = std::vector<std::uint8_t>;
  EXPECT_EQ(logical_and(p, q).to_vector<std::uint8_t>(), (V{1, 0, 0, 0}));
  EXPECT_EQ(logical_or(p, q).to_vector<std::uint8_t>(), (V{1, 1, 1, 0}));
  EXPECT_EQ(logical_not(p).to_vector<std::uint8_t>(), (V{0, 0, 1, 1}));
  // Non-bool operands: nonzero is true.
  Tensor f = tensor({0.0, -2.0, 0.5, 0.0});
  EXPECT_EQ(logical_and(f, p).to_vector<std::uint8_t>(), (V{0, 1, 0, 0}));
  EXPECT_EQ(logical_not(f).dtype(), kBool);
  EXPECT_EQ(logical_not(f).to_vector<std::uint8_t>(), (V{1, 0, 0, 1}));
}

TEST(Compare, IsnanIsfiniteAllAny) {
  Tensor x = tensor({1.0, NAN, INFINITY, -INFINITY, 0.0}, f64());
  using V = std::vector<std::uint8_t>;
  EXPECT_EQ(isnan(x).to_vector<std::uint8_t>(), (V{0, 1, 0, 0, 0}));
  EXPECT_EQ(isfinite(x).to_vector<std::uint8_t>(), (V{1, 0, 0, 0, 1}));
  Tensor i = tensor({3, 4}, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(isnan(i).to_vector<std::uint8_t>(), (V{0, 0}));
  EXPECT_EQ(isfinite(i).to_vector<std::uint8_t>(), (V{1, 1}));
  EXPECT_FALSE(all(isfinite(x)));
  EXPECT_TRUE(any(isnan(x)));
  EXPECT_TRUE(all(logical_or(eq(x, x), isnan(x))));
  EXPECT_FALSE(any(zeros({3})));
  EXPECT_TRUE(any(tensor({0.0, 0.0, 3.0})));
  EXPECT_TRUE(all(tensor({1.0, -1.0})));
  EXPECT_FALSE(all(tensor({1.0, 0.0})));
  // Fractional values are true (nonzero), not truncated.
  EXPECT_TRUE(all(tensor({0.5, -0.25})));
  EXPECT_TRUE(any(tensor({0.0, 0.25})));
  EXPECT_TRUE(all(tensor({NAN})));
  // Empty: all is vacuously true, any false.
  EXPECT_TRUE(all(zeros({0, 2})));
  EXPECT_FALSE(any(ones({0})));
}

// ------------------------------------------------------------------ large tensors ----
// Above the CPU launcher's parallel grain (32768 elements), so the OpenMP path runs.
TEST(Large, UnaryAndBinaryOnTheParallelPath) {
  const std::int64_t n = 70001;
  Tensor x = uniform({n}, 0.1, 3.0);
  const auto xv = values(x);
  const auto ev = values(exp(x));
  const auto lv = values(log(x.to(kFloat32)));
  for (std::int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(ev[i], std::exp(xv[i]), 1e-12 * std::exp(xv[i])) << i;
    ASSERT_NEAR(lv[i], std::log(static_cast<float>(xv[i])), 1e-6) << i;
  }
  // Broadcast (rows, cols) op (cols), transposed (strided walk) and scalar operands.
  Tensor m = uniform({300, 250}, -1, 1);
  Tensor r = uniform({250}, -1, 1);
  const auto mv = values(m), rv = values(r);
  const auto s = values(m * r + 1.0);
  const auto t = values(m.t() - r.unsqueeze(1));
  for (std::int64_t i = 0; i < 300; ++i)
    for (std::int64_t j = 0; j < 250; ++j) {
      ASSERT_DOUBLE_EQ(s[i * 250 + j], mv[i * 250 + j] * rv[j] + 1.0);
      ASSERT_DOUBLE_EQ(t[j * 300 + i], mv[i * 250 + j] - rv[j]);
    }
  const auto c = values(m.t() > 0.0);
  for (std::int64_t i = 0; i < 300; ++i)
    for (std::int64_t j = 0; j < 250; ++j) ASSERT_EQ(c[j * 300 + i], mv[i * 250 + j] > 0.0);
}

TEST(Large, BackwardOnTheParallelPath) {
  Tensor x = uniform({200, 200}, 0.5, 2.0, true);
  Tensor b = uniform({200}, 0.5, 2.0, true);
  sum(tanh(x.t()) * b + pow(x, b)).backward();
  const auto xv = values(x), bv = values(b), gx = values(x.grad()), gb = values(b.grad());
  for (int i = 0; i < 200; ++i) {
    double want_b = 0;
    for (int j = 0; j < 200; ++j) {
      const double xij = xv[i * 200 + j], xji = xv[j * 200 + i];
      // d/dx_ij: from tanh(x^T)[j][i] * b[i] and from x_ij^b_j.
      const double want =
          (1 - std::tanh(xij) * std::tanh(xij)) * bv[i] + bv[j] * std::pow(xij, bv[j] - 1);
      ASSERT_NEAR(gx[i * 200 + j], want, 1e-10 * (1 + std::abs(want))) << i << "," << j;
      want_b += std::tanh(xij) + std::pow(xji, bv[i]) * std::log(xji);
    }
    ASSERT_NEAR(gb[i], want_b, 1e-9 * (1 + std::abs(want_b))) << i;
  }
}

TEST(Large, PermutedRank3WalkSplitAcrossThreads) {
  // A permuted rank-3 view: the launcher's odometer walk starts mid-run on each thread.
  Tensor x = uniform({40, 30, 50}, -1, 1);
  const auto xv = values(x);
  const auto y = values(exp(x.permute({2, 0, 1})) + x.permute({2, 0, 1}));
  for (int k = 0; k < 50; ++k)
    for (int i = 0; i < 40; ++i)
      for (int j = 0; j < 30; ++j) {
        const double v = xv[(i * 30 + j) * 50 + k];
        ASSERT_DOUBLE_EQ(y[(k * 40 + i) * 30 + j], std::exp(v) + v) << k << "," << i << "," << j;
      }
}
