// MultivariateNormal and LowRankMultivariateNormal: reference log-densities (SciPy), the
// parameterizations agreeing, gradients of log_prob and rsample against finite differences,
// draws by their moments, shapes with batch dims, and validation.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "reference.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

Tensor matrix_of(const std::vector<double>& v, std::int64_t rows, DType dtype = kFloat64) {
  return from_vector(v, {rows, static_cast<std::int64_t>(v.size()) / rows},
                     TensorOptions{}.with_dtype(dtype));
}

Tensor vector_of(const std::vector<double>& v, DType dtype = kFloat64) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, TensorOptions{}.with_dtype(dtype));
}

// Lower factors with diagonals in [0.5, 1.5].
Tensor random_scale_tril(const Shape& batch, std::int64_t n) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  return tril(0.5 * random_normal(s), -1) + uniform(s, 0.5, 1.5) * eye(n, f64());
}

Tensor sym(const Tensor& a) { return 0.5 * (a + a.transpose(-2, -1)); }

// Sample mean and covariance of draws (N, n), on the host.
void moments(const Tensor& draws, std::vector<double>& mean, std::vector<double>& cov) {
  const std::int64_t count = draws.size(0), n = draws.size(1);
  const auto v = draws.to_vector<double>();
  mean.assign(n, 0.0);
  cov.assign(n * n, 0.0);
  for (std::int64_t s = 0; s < count; ++s)
    for (std::int64_t i = 0; i < n; ++i) mean[i] += v[s * n + i] / count;
  for (std::int64_t s = 0; s < count; ++s)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        cov[i * n + j] += (v[s * n + i] - mean[i]) * (v[s * n + j] - mean[j]) / (count - 1);
}

void expect_moments(const Tensor& draws, const Tensor& loc, const Tensor& cov) {
  std::vector<double> m, c;
  moments(draws, m, c);
  const auto lv = loc.to_vector<double>(), cv = cov.to_vector<double>();
  const std::int64_t n = loc.numel();
  const double count = static_cast<double>(draws.size(0));
  for (std::int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(m[i], lv[i], 4 * std::sqrt(cv[i * n + i] / count)) << "mean " << i;
  for (std::int64_t k = 0; k < n * n; ++k) {
    const std::int64_t i = k / n, j = k % n;
    // The sample covariance's standard error is about sqrt((s_ii s_jj + s_ij^2) / N).
    const double se = std::sqrt((cv[i * n + i] * cv[j * n + j] + cv[k] * cv[k]) / count);
    EXPECT_NEAR(c[k], cv[k], 5 * se) << "covariance [" << i << ", " << j << "]";
  }
}

}  // namespace

// ------------------------------------------------------------------- MultivariateNormal ----
TEST(MultivariateNormal, LogProbMatchesSciPy) {
  for (const auto& c : reference_cases("MultivariateNormal")) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto& loc = c.param("loc");
      const auto d = dist::MultivariateNormal::from_covariance(
          vector_of(loc, dtype),
          matrix_of(c.param("covariance_matrix"), static_cast<std::int64_t>(loc.size()), dtype));
      const double lp = d.log_prob(vector_of(c.value, dtype)).item();
      EXPECT_NEAR(lp, c.log_prob, (dtype == kFloat64 ? 1e-12 : 1e-5) * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

TEST(MultivariateNormal, ParameterizationsAgree) {
  const Tensor loc = tensor({1.0, -2.0, 0.5}, f64());
  const Tensor cov = tensor({{2.0, 0.3, 0.1}, {0.3, 1.0, -0.2}, {0.1, -0.2, 0.5}}, f64());
  const auto by_cov = dist::MultivariateNormal::from_covariance(loc, cov);
  const Tensor precision = by_cov.precision_matrix();
  expect_close(matmul(precision, cov), eye(3, f64()), 1e-12, 1e-12);
  const auto by_tril = dist::MultivariateNormal::from_scale_tril(loc, cholesky(cov));
  const auto by_prec = dist::MultivariateNormal::from_precision(loc, precision);
  const Tensor x = random_normal({5, 3});
  expect_close(by_tril.log_prob(x), by_cov.log_prob(x), 1e-12, 1e-12);
  expect_close(by_prec.log_prob(x), by_cov.log_prob(x), 1e-10, 1e-12);
  expect_close(by_prec.scale_tril(), by_cov.scale_tril(), 1e-10, 1e-12);
  expect_close(by_prec.covariance_matrix(), cov, 1e-10, 1e-12);
  expect_close(by_tril.covariance_matrix(), cov, 1e-12, 1e-12);
  expect_close(by_tril.precision_matrix(), precision, 1e-10, 1e-12);
  expect_close(by_prec.entropy(), by_cov.entropy(), 1e-12, 1e-12);
  // The same seed gives the same draws whichever way the factor was given.
  Generator g1(3), g2(3);
  expect_close(by_prec.sample({4}, g1), by_cov.sample({4}, g2), 1e-10, 1e-12);
}

TEST(MultivariateNormal, LogProbGradientsMatchFiniteDifferences) {
  // value (4, 3, 2) against loc (3, 2) and one scale_tril (2, 2), then a batch of (3, 2, 2)
  // (the value's leading dim folded into the columns of the solve).
  const auto f = [](const std::vector<Tensor>& x) {
    return dist::MultivariateNormal(x[1], tril(x[2])).log_prob(x[0]);
  };
  EMBER_EXPECT_GRAD(f, {random_normal({4, 3, 2}, true), random_normal({3, 2}, true),
                        random_scale_tril({}, 2).requires_grad_()});
  EMBER_EXPECT_GRAD(f, {random_normal({4, 3, 2}, true), random_normal({2}, true),
                        random_scale_tril({3}, 2).requires_grad_()});
  // Through the covariance (its Cholesky factor's backward) and the precision.
  const Tensor m = random_normal({3, 3});
  const Tensor spd = (matmul(m, m.t()) + 3.0 * eye(3, f64())).requires_grad_();
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::MultivariateNormal::from_covariance(x[1], sym(x[2])).log_prob(x[0]);
      },
      {random_normal({2, 3}, true), random_normal({3}, true), spd});
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        return dist::MultivariateNormal::from_precision(x[1], sym(x[2])).log_prob(x[0]);
      },
      {random_normal({2, 3}, true), random_normal({3}, true), spd});
}

TEST(MultivariateNormal, RsampleGradientsMatchFiniteDifferences) {
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(11);
        return dist::MultivariateNormal(x[0], tril(x[1])).rsample({3}, gen);
      },
      {random_normal({2, 3}, true), random_scale_tril({2}, 3).requires_grad_()});
}

TEST(MultivariateNormal, DrawsHaveTheRightMoments) {
  const Tensor loc = tensor({1.0, -2.0, 0.5}, f64());
  const Tensor cov = tensor({{2.0, 0.6, 0.1}, {0.6, 1.0, -0.3}, {0.1, -0.3, 0.5}}, f64());
  Generator gen(2024);
  const auto d = dist::MultivariateNormal::from_covariance(loc, cov);
  expect_moments(d.sample({20000}, gen), loc, cov);
  // float32 draws too.
  const auto f = dist::MultivariateNormal::from_covariance(loc.to(kFloat32), cov.to(kFloat32));
  const Tensor draws = f.sample({20000}, gen);
  EXPECT_EQ(draws.dtype(), kFloat32);
  expect_moments(draws, loc, cov);
}

TEST(MultivariateNormal, ShapesWithBatchDims) {
  // loc (3, 2) with one scale_tril (2, 2).
  const dist::MultivariateNormal d(random_normal({3, 2}), random_scale_tril({}, 2));
  EXPECT_EQ(d.batch_shape(), (Shape{3}));
  EXPECT_EQ(d.event_shape(), (Shape{2}));
  EXPECT_EQ(d.sample({5}).shape(), (Shape{5, 3, 2}));
  EXPECT_EQ(d.rsample().shape(), (Shape{3, 2}));
  EXPECT_EQ(d.log_prob(zeros({5, 3, 2}, f64())).shape(), (Shape{5, 3}));
  EXPECT_EQ(d.log_prob(zeros({2}, f64())).shape(), (Shape{3}));
  EXPECT_EQ(d.mean().shape(), (Shape{3, 2}));
  EXPECT_EQ(d.variance().shape(), (Shape{3, 2}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3}));
  EXPECT_EQ(d.loc().shape(), (Shape{3, 2}));
  EXPECT_EQ(d.scale_tril().shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(d.covariance_matrix().shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(d.precision_matrix().shape(), (Shape{3, 2, 2}));
  // Batch dims of both broadcast: loc (4, 1, 2), scale_tril (3, 2, 2) -> batch (4, 3).
  const dist::MultivariateNormal e(random_normal({4, 1, 2}), random_scale_tril({3}, 2));
  EXPECT_EQ(e.batch_shape(), (Shape{4, 3}));
  const Tensor x = random_normal({6, 4, 3, 2});
  const Tensor lp = e.log_prob(x);
  EXPECT_EQ(lp.shape(), (Shape{6, 4, 3}));
  // Each element agrees with its own unbatched distribution.
  const dist::MultivariateNormal one(e.loc().select(0, 2).select(0, 1),
                                     e.scale_tril().select(0, 2).select(0, 1));
  expect_close(lp.select(1, 2).select(1, 1), one.log_prob(x.select(1, 2).select(1, 1)), 1e-12,
               1e-12);
  const dist::Distribution big = d.expand({4, 3});
  EXPECT_EQ(big.batch_shape(), (Shape{4, 3}));
  EXPECT_EQ(big.sample({2}).shape(), (Shape{2, 4, 3, 2}));
  EXPECT_EQ(d.to_event(1).log_prob(zeros({3, 2}, f64())).shape(), Shape{});
  EMBER_EXPECT_THROW_WITH(d.log_prob(zeros({3, 3}, f64())), ShapeError, "MultivariateNormal",
                          "(3, 3)");
}

TEST(MultivariateNormal, MomentsAndEntropyAreClosedForm) {
  const Tensor cov = tensor({{2.0, 0.6}, {0.6, 1.0}}, f64());
  const auto d = dist::MultivariateNormal::from_covariance(tensor({1.0, 2.0}, f64()), cov);
  expect_values(d.mean(), {1.0, 2.0});
  expect_values(d.variance(), {2.0, 1.0}, 1e-12);
  const double det = 2.0 - 0.36;
  expect_values(d.entropy(), {0.5 * std::log(std::pow(2 * M_PI * M_E, 2) * det)}, 1e-12);
  EXPECT_EQ(d.support().name(), constraints::real_vector.name());
}

TEST(MultivariateNormal, InvalidArgumentsNameTheDistributionAndParameter) {
  const Tensor loc = zeros({2}, f64());
  const Tensor indefinite = tensor({{1.0, 2.0}, {2.0, 1.0}}, f64());
  EMBER_EXPECT_THROW_WITH(dist::MultivariateNormal::from_covariance(loc, indefinite), ValueError,
                          "MultivariateNormal", "covariance_matrix", "positive_definite");
  EMBER_EXPECT_THROW_WITH(dist::MultivariateNormal::from_precision(loc, indefinite), ValueError,
                          "MultivariateNormal", "precision_matrix", "positive_definite");
  EMBER_EXPECT_THROW_WITH(dist::MultivariateNormal(loc, tensor({{1.0, 0.0}, {0.5, -1.0}}, f64())),
                          ValueError, "MultivariateNormal", "scale_tril", "lower_cholesky");
  EMBER_EXPECT_THROW_WITH(dist::MultivariateNormal(loc, tensor({{1.0, 0.3}, {0.5, 1.0}}, f64())),
                          ValueError, "MultivariateNormal", "scale_tril", "lower_cholesky");
  // A batch of covariances names the bad element.
  const Tensor batch = stack({eye(2, f64()), indefinite});
  EMBER_EXPECT_THROW_WITH(dist::MultivariateNormal::from_covariance(loc, batch), ValueError,
                          "covariance_matrix", "[1]");
  EMBER_EXPECT_THROW_WITH(dist::MultivariateNormal(zeros({3}, f64()), eye(2, f64())), ShapeError,
                          "MultivariateNormal", "scale_tril", "(2, 2)", "(3)");
  EMBER_EXPECT_THROW_WITH(
      dist::MultivariateNormal(zeros({2, 2}, f64()), eye(2, f64()).expand({3, 2, 2})), ShapeError,
      "MultivariateNormal", "do not broadcast");
  const dist::MultivariateNormal d(loc, eye(2, f64()));
  EMBER_EXPECT_THROW_WITH(d.log_prob(tensor({NAN, 0.0}, f64())), ValueError,
                          "MultivariateNormal.log_prob", "support");
  // With validation off, a factorization that fails still raises (from cholesky).
  set_validation_enabled(false);
  EMBER_EXPECT_THROW_WITH(dist::MultivariateNormal::from_covariance(loc, indefinite), ValueError,
                          "cholesky", "not positive definite");
  set_validation_enabled(true);
}

// ------------------------------------------------------------ LowRankMultivariateNormal ----
TEST(LowRankMultivariateNormal, LogProbMatchesSciPy) {
  for (const auto& c : reference_cases("LowRankMultivariateNormal")) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto n = static_cast<std::int64_t>(c.param("loc").size());
      const dist::LowRankMultivariateNormal d(vector_of(c.param("loc"), dtype),
                                              matrix_of(c.param("cov_factor"), n, dtype),
                                              vector_of(c.param("cov_diag"), dtype));
      const double lp = d.log_prob(vector_of(c.value, dtype)).item();
      EXPECT_NEAR(lp, c.log_prob, (dtype == kFloat64 ? 1e-12 : 1e-5) * (1 + std::abs(c.log_prob)))
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

TEST(LowRankMultivariateNormal, AgreesWithTheFullCovariance) {
  const Tensor loc = random_normal({2, 4});
  const Tensor w = random_normal({2, 4, 2});
  const Tensor d = uniform({4}, 0.5, 2.0);
  const dist::LowRankMultivariateNormal low(loc, w, d);
  const Tensor cov = low.covariance_matrix();
  EXPECT_EQ(cov.shape(), (Shape{2, 4, 4}));
  expect_close(cov, matmul(w, w.transpose(-2, -1)) + d.unsqueeze(-1) * eye(4, f64()), 1e-12, 1e-12);
  const auto full = dist::MultivariateNormal::from_covariance(loc, cov);
  const Tensor x = random_normal({3, 2, 4});
  expect_close(low.log_prob(x), full.log_prob(x), 1e-10, 1e-12);
  expect_close(low.entropy(), full.entropy(), 1e-10, 1e-12);
  expect_close(low.variance(), full.variance(), 1e-12, 1e-12);
  expect_close(low.mean(), loc, 0, 0);
}

TEST(LowRankMultivariateNormal, LogProbGradientsMatchFiniteDifferences) {
  const auto f = [](const std::vector<Tensor>& x) {
    return dist::LowRankMultivariateNormal(x[1], x[2], x[3]).log_prob(x[0]);
  };
  EMBER_EXPECT_GRAD(f, {random_normal({4, 3}, true), random_normal({3}, true),
                        random_normal({3, 2}, true), uniform({3}, 0.5, 2.0, true)});
  // A batch of factors against values with a leading sample dim.
  EMBER_EXPECT_GRAD(f, {random_normal({5, 2, 3}, true), random_normal({2, 3}, true),
                        random_normal({2, 3, 2}, true), uniform({3}, 0.5, 2.0, true)});
}

TEST(LowRankMultivariateNormal, RsampleGradientsMatchFiniteDifferences) {
  EMBER_EXPECT_GRAD(
      [](const std::vector<Tensor>& x) {
        Generator gen(5);
        return dist::LowRankMultivariateNormal(x[0], x[1], x[2]).rsample({3}, gen);
      },
      {random_normal({3}, true), random_normal({3, 2}, true), uniform({3}, 0.5, 2.0, true)});
}

TEST(LowRankMultivariateNormal, DrawsHaveTheRightMoments) {
  const dist::LowRankMultivariateNormal d(tensor({0.5, -1.0, 2.0}, f64()),
                                          tensor({{1.0, 0.2}, {0.5, -0.7}, {-0.3, 0.4}}, f64()),
                                          tensor({0.5, 1.0, 0.3}, f64()));
  Generator gen(99);
  expect_moments(d.sample({20000}, gen), d.loc(), d.covariance_matrix());
}

TEST(LowRankMultivariateNormal, ShapesAndValidation) {
  const dist::LowRankMultivariateNormal d(random_normal({3, 4}), random_normal({4, 2}),
                                          uniform({4}, 0.5, 1.0));
  EXPECT_EQ(d.batch_shape(), (Shape{3}));
  EXPECT_EQ(d.event_shape(), (Shape{4}));
  EXPECT_EQ(d.sample({5}).shape(), (Shape{5, 3, 4}));
  EXPECT_EQ(d.log_prob(zeros({5, 3, 4}, f64())).shape(), (Shape{5, 3}));
  EXPECT_EQ(d.cov_factor().shape(), (Shape{3, 4, 2}));
  EXPECT_EQ(d.cov_diag().shape(), (Shape{3, 4}));
  EXPECT_EQ(d.entropy().shape(), (Shape{3}));
  EXPECT_EQ(d.expand({2, 3}).sample().shape(), (Shape{2, 3, 4}));
  EMBER_EXPECT_THROW_WITH(dist::LowRankMultivariateNormal(zeros({2}, f64()), ones({2, 1}, f64()),
                                                          tensor({1.0, -1.0}, f64())),
                          ValueError, "LowRankMultivariateNormal", "cov_diag", "positive", "-1");
  EMBER_EXPECT_THROW_WITH(
      dist::LowRankMultivariateNormal(zeros({2}, f64()), ones({3, 1}, f64()), ones({2}, f64())),
      ShapeError, "LowRankMultivariateNormal", "cov_factor", "(3, 1)");
  EMBER_EXPECT_THROW_WITH(
      dist::LowRankMultivariateNormal(zeros({2}, f64()), ones({2, 1}, f64()), ones({3}, f64())),
      ShapeError, "LowRankMultivariateNormal", "cov_diag", "(3)");
}
