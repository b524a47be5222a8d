// The network functions: activations against their definitions, their float64 gradients
// against finite differences, and softmax / log_softmax's values, stability and gradients.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

struct Activation {
  std::string name;
  std::function<Tensor(const Tensor&)> fn;
  std::function<double(double)> reference;
};

double gelu_exact(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh(double x) {
  const double pi = 3.14159265358979323846;
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / pi) * (x + 0.044715 * x * x * x)));
}

std::vector<Activation> activations() {
  return {
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); },
       [](double x) { return x > 0 ? x : 0.2 * x; }},
      {"leaky_relu default", [](const Tensor& x) { return leaky_relu(x); },
       [](double x) { return x > 0 ? x : 0.01 * x; }},
      {"elu", [](const Tensor& x) { return elu(x, 1.5); },
       [](double x) { return x > 0 ? x : 1.5 * (std::exp(x) - 1); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }, gelu_exact},
      {"gelu tanh", [](const Tensor& x) { return gelu(x, GeluApproximation::Tanh); }, gelu_tanh},
      {"softplus", [](const Tensor& x) { return softplus(x); },
       [](double x) { return std::log1p(std::exp(x)); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); },
       [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }},
  };
}

// Points on both sides of zero, away from the kinks (finite differences straddle them).
const std::vector<double> kPoints = {-4.0, -2.5, -1.3, -0.7, -0.21, 0.13, 0.6, 1.1, 2.2, 3.7};

TEST(Activations, MatchTheirDefinitions) {
  const Tensor x = from_vector(kPoints, {static_cast<std::int64_t>(kPoints.size())}, f64());
  for (const Activation& a : activations()) {
    SCOPED_TRACE(a.name);
    std::vector<double> expected;
    for (double v : kPoints) expected.push_back(a.reference(v));
    test::expect_values(a.fn(x), expected, 1e-14, 1e-15);
    // float32 computes the same function.
    test::expect_values(a.fn(x.to(kFloat32)), expected, 1e-6, 1e-6);
  }
}

TEST(Activations, GradientsMatchFiniteDifferences) {
  const Tensor x = from_vector(kPoints, {2, 5}, f64(true));
  for (const Activation& a : activations()) {
    SCOPED_TRACE(a.name);
    EMBER_EXPECT_GRAD([&](const std::vector<Tensor>& in) { return a.fn(in[0]); }, {x});
  }
}

TEST(Activations, GradientsAtZeroFollowTorch) {
  const Tensor x = zeros({1}, f64(true));
  sum(leaky_relu(x, 0.3) + elu(x, 2.0) + gelu(x) + gelu(x, GeluApproximation::Tanh)).backward();
  // leaky_relu'(0) = slope, elu'(0) = alpha (the x <= 0 branch), gelu'(0) = 1/2 for both.
  test::expect_values(x.grad(), {0.3 + 2.0 + 0.5 + 0.5});
}

TEST(Activations, TailsStayFinite) {
  const Tensor x = tensor({-800.0, 800.0}, f64());
  test::expect_values(elu(x), {-1.0, 800.0});
  test::expect_values(gelu(x), {0.0, 800.0});
  test::expect_values(gelu(x, GeluApproximation::Tanh), {0.0, 800.0});
  test::expect_values(softplus(x), {0.0, 800.0});
}

// ---------------------------------------------------------------------- softmax ----

std::vector<double> softmax_row(const std::vector<double>& row) {
  double total = 0;
  for (double v : row) total += std::exp(v);
  std::vector<double> out;
  for (double v : row) out.push_back(std::exp(v) / total);
  return out;
}

TEST(Softmax, MatchesTheDefinitionAlongEitherDim) {
  const std::vector<double> v = {0.1, -1.2, 2.0, 0.4, 1.5, -0.3};
  const Tensor x = from_vector(v, {2, 3}, f64());
  const auto r0 = softmax_row({v[0], v[1], v[2]}), r1 = softmax_row({v[3], v[4], v[5]});
  test::expect_values(softmax(x, -1), {r0[0], r0[1], r0[2], r1[0], r1[1], r1[2]}, 1e-14);
  test::expect_values(softmax(x, 1), {r0[0], r0[1], r0[2], r1[0], r1[1], r1[2]}, 1e-14);
  std::vector<double> logs;
  for (double p : {r0[0], r0[1], r0[2], r1[0], r1[1], r1[2]}) logs.push_back(std::log(p));
  test::expect_values(log_softmax(x, -1), logs, 1e-13);
  // Along dim 0 each column of two sums to one.
  const Tensor s0 = softmax(x, 0);
  test::expect_values(sum(s0, {0}), {1.0, 1.0, 1.0}, 1e-14);
  const auto c0 = softmax_row({v[0], v[3]});
  EXPECT_NEAR(s0.to_vector<double>()[0], c0[0], 1e-15);
}

TEST(Softmax, LargeInputsAreExact) {
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = tensor({1000.0, 0.0}, TensorOptions{}.with_dtype(dtype));
    test::expect_values(log_softmax(x, 0), {0.0, -1000.0}, 0, 0);
    test::expect_values(softmax(x, 0), {1.0, 0.0}, 0, 0);
    const Tensor big = tensor({3000.0, 3000.0, -3000.0}, TensorOptions{}.with_dtype(dtype));
    test::expect_values(softmax(big, 0), {0.5, 0.5, 0.0}, 0, 0);
    test::expect_values(log_softmax(big, 0),
                        {-std::log(2.0), -std::log(2.0), -6000 - std::log(2.0)}, 1e-6);
  }
}

TEST(Softmax, NegativeInfinityIsProbabilityZero) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = tensor({-inf, 0.0, 0.0}, f64());
  test::expect_values(softmax(x, 0), {0.0, 0.5, 0.5});
  test::expect_values(log_softmax(x, 0), {-inf, -std::log(2.0), -std::log(2.0)});
}

TEST(Softmax, GradientsMatchFiniteDifferences) {
  const Tensor x = test::random_normal({3, 4, 2}, true);
  for (int dim : {0, 1, -1}) {
    SCOPED_TRACE(dim);
    EMBER_EXPECT_GRAD([dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); }, {x});
    EMBER_EXPECT_GRAD([dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); },
                      {x});
  }
  // Through a strided view, and a large shift that must not matter.
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& in) { return log_softmax(in[0].transpose(0, 1) + 500.0, 1); },
      {x});
}

TEST(Softmax, ZeroDimAndErrors) {
  test::expect_values(softmax(scalar_tensor(3.0, f64()), 0), {1.0});
  test::expect_values(log_softmax(scalar_tensor(3.0, f64()), -1), {0.0});
  EXPECT_EQ(softmax(zeros({0, 3}, f64()), 1).shape(), (Shape{0, 3}));
  EMBER_EXPECT_THROW_WITH(softmax(zeros({2, 3}), 2), ShapeError, "softmax", "dim 2");
  // Integers compute in float32.
  EXPECT_EQ(softmax(arange(3.0, TensorOptions{}.with_dtype(kInt64)), 0).dtype(), kFloat32);
}

}  // namespace
}  // namespace ember
