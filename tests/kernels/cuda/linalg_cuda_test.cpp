// cholesky, triangular_solve and the multivariate normals on the CUDA backend against the CPU
// backend: values and gradients in float64 and float32, and the same draws for the same seed.
// Every case skips with a reason where there is no CUDA device.
#include <gtest/gtest.h>

#include <ember/ember.hpp>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

#define EMBER_REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

Device gpu() { return Device::cuda(0); }

Tensor random_spd(const Shape& batch, std::int64_t n) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  const Tensor m = random_normal(s);
  return matmul(m, m.transpose(-2, -1)) + static_cast<double>(n) * eye(n, f64());
}

Tensor random_lower(const Shape& batch, std::int64_t n) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  return tril(0.5 * random_normal(s), -1) + uniform(s, 1.0, 2.0) * eye(n, f64());
}

double tol(DType dtype) { return dtype == kFloat64 ? 1e-10 : 1e-4; }

}  // namespace

TEST(LinalgCuda, CholeskyMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor a = random_spd({3, 2}, 5).to(dtype);
    const Tensor l = cholesky(a.to(gpu()));
    EXPECT_EQ(l.device(), gpu());
    expect_close(l.to(Device::cpu()), cholesky(a), tol(dtype), tol(dtype));
    // Only the lower triangle is read, as on the CPU.
    const Tensor junk = a + 50.0 * triu(ones({5, 5}, TensorOptions{}.with_dtype(dtype)), 1);
    expect_close(cholesky(junk.to(gpu())).to(Device::cpu()), cholesky(a), tol(dtype), tol(dtype));
  }
  Tensor bad = random_spd({3}, 2);
  bad = cat({bad.narrow(0, 0, 2), tensor({{1.0, 2.0}, {2.0, 1.0}}, f64()).unsqueeze(0)}, 0);
  EMBER_EXPECT_THROW_WITH(cholesky(bad.to(gpu())), ValueError, "cholesky", "batch index [2]",
                          "not positive definite");
}

TEST(LinalgCuda, TriangularSolveMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {kFloat64, kFloat32}) {
    for (bool lower : {true, false}) {
      for (bool transpose : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + (lower ? " lower" : " upper") +
                     (transpose ? " transposed" : ""));
        const Tensor l0 = random_lower({2}, 4);
        const Tensor l = (lower ? l0 : l0.transpose(-2, -1).contiguous()).to(dtype);
        const Tensor b = random_normal({3, 2, 4, 3}).to(dtype);
        const Tensor expected = triangular_solve(b, l, lower, transpose);
        expect_close(triangular_solve(b.to(gpu()), l.to(gpu()), lower, transpose).to(Device::cpu()),
                     expected, tol(dtype), tol(dtype));
        // One shared factor (batch stride 0).
        const Tensor l1 = l.select(0, 0);
        expect_close(
            triangular_solve(b.to(gpu()), l1.to(gpu()), lower, transpose).to(Device::cpu()),
            triangular_solve(b, l1, lower, transpose), tol(dtype), tol(dtype));
      }
    }
  }
}

TEST(LinalgCuda, GradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  const Tensor a = random_spd({2}, 3), b = random_normal({2, 3, 2}), l = random_lower({2}, 3);
  const auto run = [&](Device dev) {
    Tensor ad = a.to(dev).requires_grad_(), bd = b.to(dev).requires_grad_(),
           ld = l.to(dev).requires_grad_();
    const Tensor out = sum(square(cholesky(0.5 * (ad + ad.transpose(-2, -1))))) +
                       sum(square(triangular_solve(bd, tril(ld), true, true)));
    out.backward();
    return std::vector<Tensor>{ad.grad().to(Device::cpu()), bd.grad().to(Device::cpu()),
                               ld.grad().to(Device::cpu())};
  };
  const auto cpu = run(Device::cpu()), cuda = run(gpu());
  for (std::size_t i = 0; i < cpu.size(); ++i) expect_close(cuda[i], cpu[i], 1e-10, 1e-10);
}

TEST(LinalgCuda, MultivariateNormalsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  const Tensor loc = random_normal({3, 4}), cov = random_spd({3}, 4), x = random_normal({5, 3, 4});
  const auto cpu = dist::MultivariateNormal::from_covariance(loc, cov);
  const auto cuda = dist::MultivariateNormal::from_covariance(loc.to(gpu()), cov.to(gpu()));
  expect_close(cuda.log_prob(x.to(gpu())).to(Device::cpu()), cpu.log_prob(x), 1e-10, 1e-10);
  Generator g1(17), g2(17);
  expect_close(cuda.rsample({6}, g1).to(Device::cpu()), cpu.rsample({6}, g2), 1e-10, 1e-10);

  const Tensor w = random_normal({4, 2}), d = uniform({4}, 0.5, 2.0);
  const dist::LowRankMultivariateNormal low_cpu(loc, w, d);
  const dist::LowRankMultivariateNormal low_cuda(loc.to(gpu()), w.to(gpu()), d.to(gpu()));
  expect_close(low_cuda.log_prob(x.to(gpu())).to(Device::cpu()), low_cpu.log_prob(x), 1e-10, 1e-10);
  Generator g3(23), g4(23);
  expect_close(low_cuda.rsample({6}, g3).to(Device::cpu()), low_cpu.rsample({6}, g4), 1e-10, 1e-10);
}
