// linear (cuBLAS with beta = 1), cholesky, triangular_solve and the multivariate normals on
// the CUDA backend against the CPU
// backend: values and gradients in float64 and float32, and the same draws for the same seed,
// within chain_tolerance.
#include "cuda_harness.hpp"

namespace ember::test {
namespace {

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

}  // namespace

TEST(LinalgCuda, LinearAddsTheProductToTheBiasAsTheCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tolerance tol = chain_tolerance(dtype);
    const Tensor x = random_normal({3, 5, 7}).to(dtype), w = random_normal({4, 7}).to(dtype),
                 b = random_normal({4}).to(dtype);
    EXPECT_TRUE(
        agree(linear(x.to(target()), w.to(target()), b.to(target())), linear(x, w, b), tol));
  }
}

TEST(LinalgCuda, CholeskyMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tolerance tol = chain_tolerance(dtype);
    const Tensor a = random_spd({3, 2}, 5).to(dtype);
    EXPECT_TRUE(agree(cholesky(a.to(target())), cholesky(a), tol));
    // Only the lower triangle is read, as on the CPU.
    const Tensor junk = a + 50.0 * triu(ones({5, 5}, TensorOptions{}.with_dtype(dtype)), 1);
    EXPECT_TRUE(agree(cholesky(junk.to(target())), cholesky(a), tol));
  }
  Tensor bad = random_spd({3}, 2);
  bad = cat({bad.narrow(0, 0, 2), tensor({{1.0, 2.0}, {2.0, 1.0}}, f64()).unsqueeze(0)}, 0);
  EMBER_EXPECT_THROW_WITH(cholesky(bad.to(target())), ValueError, "cholesky", "batch index [2]",
                          "not positive definite");
}

TEST(LinalgCuda, TriangularSolveMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {kFloat64, kFloat32}) {
    for (bool lower : {true, false}) {
      for (bool transpose : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + (lower ? " lower" : " upper") +
                     (transpose ? " transposed" : ""));
        const Tolerance tol = chain_tolerance(dtype);
        const Tensor l0 = random_lower({2}, 4);
        const Tensor l = (lower ? l0 : l0.transpose(-2, -1).contiguous()).to(dtype);
        const Tensor b = random_normal({3, 2, 4, 3}).to(dtype);
        const Tensor bd = b.to(target());
        EXPECT_TRUE(agree(triangular_solve(bd, l.to(target()), lower, transpose),
                          triangular_solve(b, l, lower, transpose), tol));
        // One shared factor (batch stride 0).
        const Tensor l1 = l.select(0, 0);
        EXPECT_TRUE(agree(triangular_solve(bd, l1.to(target()), lower, transpose),
                          triangular_solve(b, l1, lower, transpose), tol));
      }
    }
  }
}

TEST(LinalgCuda, GradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  const Tensor a = random_spd({2}, 3), b = random_normal({2, 3, 2}), l = random_lower({2}, 3);
  const auto run = [&](Device dev) {
    // Fresh leaves on each device (on the CPU, to() returns the tensor itself).
    Tensor ad = a.to(dev).detach().requires_grad_(), bd = b.to(dev).detach().requires_grad_(),
           ld = l.to(dev).detach().requires_grad_();
    const Tensor out = sum(square(cholesky(0.5 * (ad + ad.transpose(-2, -1))))) +
                       sum(square(triangular_solve(bd, tril(ld), true, true)));
    out.backward();
    return std::vector<Tensor>{ad.grad(), bd.grad(), ld.grad()};
  };
  const auto cpu = run(Device::cpu()), device = run(target());
  for (std::size_t i = 0; i < cpu.size(); ++i)
    EXPECT_TRUE(agree(device[i], cpu[i], chain_tolerance(kFloat64))) << "gradient " << i;
}

TEST(LinalgCuda, MultivariateNormalsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  const Tolerance tol = chain_tolerance(kFloat64);
  const Tensor loc = random_normal({3, 4}), cov = random_spd({3}, 4), x = random_normal({5, 3, 4});
  const Tensor xd = x.to(target());
  const auto cpu = dist::MultivariateNormal::from_covariance(loc, cov);
  const auto device = dist::MultivariateNormal::from_covariance(loc.to(target()), cov.to(target()));
  EXPECT_TRUE(agree(device.log_prob(xd), cpu.log_prob(x), tol));
  Generator g1(17), g2(17);
  EXPECT_TRUE(agree(device.rsample({6}, g1), cpu.rsample({6}, g2), tol));

  const Tensor w = random_normal({4, 2}), d = uniform({4}, 0.5, 2.0);
  const dist::LowRankMultivariateNormal low_cpu(loc, w, d);
  const dist::LowRankMultivariateNormal low_device(loc.to(target()), w.to(target()),
                                                   d.to(target()));
  EXPECT_TRUE(agree(low_device.log_prob(xd), low_cpu.log_prob(x), tol));
  Generator g3(23), g4(23);
  EXPECT_TRUE(agree(low_device.rsample({6}, g3), low_cpu.rsample({6}, g4), tol));
}

}  // namespace ember::test
