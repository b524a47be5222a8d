// Shared test helpers: seeded random tensors, an elementwise closeness check that names the
// first mismatching index, and a float64 central-difference gradient checker.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ember/ember.hpp>
#include <functional>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace ember::test {

// One generator per test process; CTest runs each test case in its own process, so every
// case sees the same stream whatever else runs.
inline std::mt19937& rng() {
  static std::mt19937 gen(20240611);
  return gen;
}

// Reference values in plain double arithmetic, for brute-force marginals.
inline double log_normal(double x, double mu, double sd) {
  return -0.5 * std::pow((x - mu) / sd, 2) - std::log(sd) - 0.5 * std::log(2 * M_PI);
}
inline double logsumexp(const std::vector<double>& v) {
  double m = -INFINITY;
  for (double x : v) m = std::max(m, x);
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

inline TensorOptions f64(bool requires_grad = false) {
  return TensorOptions{}.with_dtype(kFloat64).with_requires_grad(requires_grad);
}

// Standard normal values.
inline Tensor random_normal(const Shape& shape, bool requires_grad = false,
                            DType dtype = kFloat64) {
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (double& x : v) x = dist(rng());
  return from_vector(v, shape, TensorOptions{}.with_dtype(dtype).with_requires_grad(requires_grad));
}

// Uniform values in [lo, hi).
inline Tensor uniform(const Shape& shape, double lo, double hi, bool requires_grad = false,
                      DType dtype = kFloat64) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (double& x : v) x = dist(rng());
  return from_vector(v, shape, TensorOptions{}.with_dtype(dtype).with_requires_grad(requires_grad));
}

// Random integers in [lo, hi] as an int64 tensor.
inline Tensor randint(const Shape& shape, std::int64_t lo, std::int64_t hi) {
  std::uniform_int_distribution<std::int64_t> dist(lo, hi);
  std::vector<std::int64_t> v(static_cast<std::size_t>(shape.numel()));
  for (auto& x : v) x = dist(rng());
  return from_vector(v, shape, TensorOptions{}.with_dtype(kInt64));
}

inline Tensor index_tensor(std::initializer_list<std::int64_t> values) {
  std::vector<std::int64_t> v(values);
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, TensorOptions{}.with_dtype(kInt64));
}

inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// Row-major multi-index of a flat position, as "[i, j, k]".
inline std::string index_str(const Shape& shape, std::int64_t flat) {
  std::vector<std::int64_t> idx(shape.size());
  for (int d = shape.size() - 1; d >= 0; --d) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < idx.size(); ++i) os << (i ? ", " : "") << idx[i];
  os << ']';
  return os.str();
}

// NaN matches NaN and an infinity matches the same infinity; otherwise
// |actual - expected| <= atol + rtol * |expected|.
inline bool close_value(double actual, double expected, double rtol, double atol) {
  if (std::isnan(expected) || std::isnan(actual)) return std::isnan(expected) && std::isnan(actual);
  if (std::isinf(expected) || std::isinf(actual)) return actual == expected;
  return std::abs(actual - expected) <= atol + rtol * std::abs(expected);
}

inline ::testing::AssertionResult close(const Tensor& actual, const Tensor& expected, double rtol,
                                        double atol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor (actual defined: " << actual.defined()
                                         << ", expected defined: " << expected.defined() << ")";
  if (!(actual.shape() == expected.shape()))
    return ::testing::AssertionFailure()
           << "shape " << actual.shape() << " != expected shape " << expected.shape();
  const auto a = values(actual), e = values(expected);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!close_value(a[i], e[i], rtol, atol)) {
      return ::testing::AssertionFailure()
             << "first mismatch at index " << index_str(actual.shape(), i) << " (flat " << i
             << "): actual " << std::setprecision(17) << a[i] << " vs expected " << e[i]
             << " (rtol " << rtol << ", atol " << atol << ", shape " << actual.shape() << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

inline void expect_close(const Tensor& actual, const Tensor& expected, double rtol = 1e-6,
                         double atol = 1e-9) {
  EXPECT_TRUE(close(actual, expected, rtol, atol));
}

// Values given row-major for the expected tensor of `actual`'s shape.
inline void expect_values(const Tensor& actual, const std::vector<double>& expected,
                          double rtol = 1e-6, double atol = 1e-9) {
  ASSERT_EQ(actual.numel(), static_cast<std::int64_t>(expected.size()))
      << "shape " << actual.shape();
  expect_close(actual, from_vector(expected, actual.shape(), f64()), rtol, atol);
}

// Whether `stmt` throws ErrorType whose what() contains every one of `parts`.
template <typename ErrorType>
::testing::AssertionResult throws_with(const std::function<void()>& stmt,
                                       const std::vector<std::string>& parts) {
  try {
    stmt();
  } catch (const ErrorType& e) {
    const std::string what = e.what();
    for (const std::string& part : parts)
      if (what.find(part) == std::string::npos)
        return ::testing::AssertionFailure() << "the message lacks \"" << part << "\": " << what;
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "nothing was thrown";
}

// Expects `stmt` to throw ErrorType whose what() contains every one of the fragments.
#define EMBER_EXPECT_THROW_WITH(stmt, ErrorType, ...)                              \
  EXPECT_TRUE(::ember::test::throws_with<ErrorType>([&] { stmt; }, {__VA_ARGS__})) \
      << "from: " << #stmt

struct GradCheckOptions {
  double h = 1e-6;
  double rtol = 1e-5;
  double atol = 1e-6;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Compares the analytic gradient of sum(f(x) * w), w a fixed random weight, with central
// differences (L(x + h e_i) - L(x - h e_i)) / 2h for every element of every floating input
// that requires grad. Inputs are copied to fresh contiguous float64 leaves first; inputs that
// do not require grad (and integer inputs such as indices) are passed through as constants.
inline ::testing::AssertionResult grad_check(const TensorFn& f, const std::vector<Tensor>& inputs,
                                             GradCheckOptions opt = {}) {
  std::vector<Tensor> leaves;
  std::vector<bool> wanted;
  for (const Tensor& in : inputs) {
    const bool want = is_floating(in.dtype()) && in.requires_grad();
    Tensor leaf = is_floating(in.dtype()) ? in.detach().to(kFloat64).clone() : in.detach();
    if (want) leaf.requires_grad_();
    leaves.push_back(leaf);
    wanted.push_back(want);
  }
  const Tensor y = f(leaves);
  if (!y.defined()) return ::testing::AssertionFailure() << "f returned an undefined tensor";
  const Tensor w = random_normal(y.shape());
  const auto loss_of = [&](const Tensor& out) { return sum(out.to(kFloat64) * w); };
  const Tensor loss = loss_of(y);
  if (!loss.requires_grad())
    return ::testing::AssertionFailure() << "f's result does not require grad";
  loss.backward();

  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (!wanted[i]) continue;
    const Tensor& x = leaves[i];
    const Tensor g = x.grad();
    std::vector<double> analytic(static_cast<std::size_t>(x.numel()), 0.0);
    if (g.defined()) {
      if (!(g.shape() == x.shape()))
        return ::testing::AssertionFailure() << "input " << i << ": gradient of shape " << g.shape()
                                             << " for an input of shape " << x.shape();
      if (g.dtype() != x.dtype())
        return ::testing::AssertionFailure() << "input " << i << ": gradient dtype " << g.dtype();
      analytic = values(g);
    }
    double* p = x.data<double>();
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      NoGradGuard no_grad;
      const double orig = p[j];
      p[j] = orig + opt.h;
      const double up = loss_of(f(leaves)).item();
      p[j] = orig - opt.h;
      const double down = loss_of(f(leaves)).item();
      p[j] = orig;
      const double numeric = (up - down) / (2 * opt.h);
      if (!close_value(analytic[j], numeric, opt.rtol, opt.atol)) {
        return ::testing::AssertionFailure()
               << "input " << i << " (shape " << x.shape() << "), element "
               << index_str(x.shape(), j) << ": analytic " << std::setprecision(12) << analytic[j]
               << " vs numeric " << numeric;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

#define EMBER_EXPECT_GRAD(f, ...) EXPECT_TRUE(::ember::test::grad_check(f, __VA_ARGS__))

}  // namespace ember::test
