// matmul and linear (engine/ops/linalg.cpp over the launcher's batched GEMM): NumPy semantics
// for 1-d operands and batch broadcasting, strided operands, the bias added by the GEMM,
// gradients and errors.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

#include "kernels/math/log_matmul.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

// Reference (..., m, k) @ (..., k, n) for contiguous float64 operands of equal batch size.
std::vector<double> naive_bmm(const std::vector<double>& a, const std::vector<double>& b,
                              std::int64_t batch, std::int64_t m, std::int64_t k, std::int64_t n) {
  std::vector<double> out(batch * m * n, 0.0);
  for (std::int64_t z = 0; z < batch; ++z)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (std::int64_t p = 0; p < k; ++p)
          s += a[z * m * k + i * k + p] * b[z * k * n + p * n + j];
        out[z * m * n + i * n + j] = s;
      }
  return out;
}

}  // namespace

TEST(Matmul, VectorAndMatrixForms) {
  Tensor v = tensor({1, 2, 3}, f64());
  Tensor w = tensor({4, -5, 6}, f64());
  Tensor dot = matmul(v, w);
  EXPECT_EQ(dot.dim(), 0);
  EXPECT_EQ(dot.item(), 4 - 10 + 18);
  Tensor m = tensor({{1, 2}, {3, 4}, {5, 6}}, f64());  // (3, 2)
  Tensor vm = matmul(v, m);                            // (3) @ (3, 2) -> (2)
  EXPECT_EQ(vm.shape(), (Shape{2}));
  expect_values(vm, {1 + 6 + 15, 2 + 8 + 18});
  Tensor mv = matmul(m.t(), v);  // (2, 3) @ (3) -> (2)
  EXPECT_EQ(mv.shape(), (Shape{2}));
  expect_values(mv, {22, 28});
  Tensor mm = matmul(m, tensor({{1, 0, -1}, {2, 1, 0}}, f64()));  // (3, 2) @ (2, 3)
  EXPECT_EQ(mm.shape(), (Shape{3, 3}));
  expect_values(mm, {5, 2, -1, 11, 4, -3, 17, 6, -5});
  // Vector with a batched matrix: (3) @ (2, 3, 2) -> (2, 2); (2, 2, 3) @ (3) -> (2, 2).
  Tensor bm = stack({m, m * 2.0});
  expect_values(matmul(v, bm), {22, 28, 44, 56});
  expect_values(matmul(bm.transpose(1, 2), v), {22, 28, 44, 56});
}

// A matrix times a vector (and a row vector times a matrix) takes the BLAS's gemv: every
// layout of both operands (row-major, column-major, a strided vector) against a plain loop,
// in both precisions, with bands of rows on two threads and on one.
TEST(Matmul, MatrixVectorProductsInEveryLayout) {
  for (DType dtype : {kFloat32, kFloat64}) {
    const double tol = dtype == kFloat32 ? 1e-5 : 1e-12;
    const std::int64_t m = 300, k = 17;
    for (const bool a_cols : {false, true}) {
      const Tensor a =
          a_cols ? random_normal({k, m}).to(dtype).t() : random_normal({m, k}).to(dtype);
      // A contiguous column, and one of every other element (a row stride of 2).
      for (const bool strided : {false, true}) {
        const Tensor col = strided ? random_normal({k, 2}).to(dtype).narrow(1, 0, 1)
                                   : random_normal({k, 1}).to(dtype);
        const auto av = values(a.contiguous());
        const auto cv = values(col.contiguous());
        std::vector<double> ref(m, 0.0);
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < k; ++j) ref[i] += av[i * k + j] * cv[j];
        for (int threads : {1, 2}) {
          const NumThreadsScope scope(threads);
          expect_close(matmul(a, col).to(kFloat64), from_vector(ref, {m, 1}, f64()), tol, tol);
          // (1, k) @ (k, m): the row vector on the left.
          expect_close(matmul(col.t(), a.t()).to(kFloat64), from_vector(ref, {1, m}, f64()), tol,
                       tol);
        }
      }
    }
  }
}

// Matrix-vector products whose summed side (X w) or kept side (X^T r) is at most one vector
// wide (16 float32 values, 8 float64) run on the CPU's narrow kernels: every width up to one
// past that, row counts around a block of rows, rows in padded storage, both precisions,
// against a float64 loop; with a bias (linear: the product added into it). A row's value
// does not depend on where the row is (its block, or the partial block at the end).
TEST(Matmul, NarrowMatrixVectorProductsOfEveryWidth) {
  for (DType dtype : {kFloat32, kFloat64}) {
    const std::int64_t lanes = dtype == kFloat32 ? 16 : 8;
    const double tol = dtype == kFloat32 ? 2e-6 : 1e-14;
    for (std::int64_t k = 1; k <= lanes + 1; ++k) {
      for (std::int64_t m : {std::int64_t{1}, std::int64_t{5}, lanes, lanes + 1, std::int64_t{37},
                             std::int64_t{300}}) {
        for (const bool padded : {false, true}) {
          SCOPED_TRACE(::testing::Message()
                       << dtype << " m " << m << " k " << k << (padded ? " padded" : ""));
          // Rows of k values, in rows of k + 3 when padded (inf past each row's end: a
          // kernel that read them into a sum would show it).
          const Tensor store =
              padded ? cat({random_normal({m, k}), full({m, 3}, INFINITY, f64())}, 1).to(dtype)
                     : random_normal({m, k}).to(dtype);
          const Tensor x = store.narrow(1, 0, k);
          const Tensor w = random_normal({k}).to(dtype), r = random_normal({m}).to(dtype);
          const auto xv = values(x), wv = values(w), rv = values(r);
          std::vector<double> xw(m, 0.0), xtr(k, 0.0);
          for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < k; ++j) {
              xw[i] += xv[i * k + j] * wv[j];
              xtr[j] += xv[i * k + j] * rv[i];
            }
          const double scale = dtype == kFloat32 ? 1.0 + std::sqrt(static_cast<double>(m)) : 1.0;
          expect_close(matmul(x, w).to(kFloat64), from_vector(xw, {m}, f64()), tol * scale, tol);
          expect_close(matmul(x.t(), r).to(kFloat64), from_vector(xtr, {k}, f64()), tol * scale,
                       tol);
          expect_close(matmul(r, x).to(kFloat64), from_vector(xtr, {k}, f64()), tol * scale, tol);
          std::vector<double> biased = xw;
          for (double& v : biased) v += 0.5;
          expect_close(linear(x, w.unsqueeze(0), full({1}, 0.5, TensorOptions{}.with_dtype(dtype)))
                           .to(kFloat64),
                       from_vector(biased, {m, 1}, f64()), tol * scale, tol);
          if (m > 3 && k <= lanes) {
            const std::vector<double> all = values(matmul(x, w)),
                                      tail = values(matmul(x.narrow(0, 3, m - 3), w));
            for (std::int64_t i = 3; i < m; ++i) EXPECT_EQ(all[i], tail[i - 3]) << "row " << i;
          }
        }
      }
    }
  }
}

// X^T r over many rows adds its rows in slices, one per thread (as a long sum does), and the
// slices' sums in order: on 1, 2 and 3 threads, both precisions, against a float64 loop, with
// a bias added in (accumulate) too.
TEST(Matmul, LongNarrowColumnSumsAddTheirSlicesInOrder) {
  const std::int64_t m = 100003, k = 5;
  const Tensor x64 = random_normal({m, k}), r64 = random_normal({m});
  const auto xv = values(x64), rv = values(r64);
  std::vector<double> xtr(k, 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < k; ++j) xtr[j] += xv[i * k + j] * rv[i];
  for (DType dtype : {kFloat32, kFloat64}) {
    const double tol = dtype == kFloat32 ? 2e-6 * std::sqrt(static_cast<double>(m)) : 1e-12;
    const Tensor x = x64.to(dtype), r = r64.to(dtype);
    for (const int threads : {1, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << dtype << " on " << threads << " threads");
      const NumThreadsScope scope(threads);
      expect_close(matmul(x.t(), r).to(kFloat64), from_vector(xtr, {k}, f64()), tol, tol);
      std::vector<double> biased = xtr;
      for (double& v : biased) v += 0.5;
      expect_close(linear(r.unsqueeze(0), x.t(), full({k}, 0.5, TensorOptions{}.with_dtype(dtype)))
                       .to(kFloat64),
                   from_vector(biased, {1, k}, f64()), tol, tol);
    }
  }
}

TEST(Matmul, BatchedWithBroadcastBatchDims) {
  Tensor a = random_normal({2, 1, 3, 4});
  Tensor b = random_normal({5, 4, 2});
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 5, 3, 2}));
  const auto ae = values(a.expand({2, 5, 3, 4}));
  const auto be = values(b.expand({2, 5, 4, 2}));
  expect_close(c, from_vector(naive_bmm(ae, be, 10, 3, 4, 2), c.shape(), f64()), 1e-12, 1e-12);
  // A plain matrix broadcast against a batch.
  Tensor d = matmul(random_normal({3, 4}), random_normal({6, 4, 2}));
  EXPECT_EQ(d.shape(), (Shape{6, 3, 2}));
}

TEST(Matmul, StridedOperands) {
  Tensor base = random_normal({6, 8});
  const std::vector<std::pair<const char*, std::pair<Tensor, Tensor>>> cases = {
      {"transposed a", {base.slice(1, 0, 5).t(), random_normal({6, 3})}},  // column-major a
      {"transposed b",
       {random_normal({2, 8}), base.slice(0, 0, 3).t().t().t()}},  // (8, 3) col-major
      {"stepped", {base.slice(1, 0, 8, 2), base.slice(0, 0, 4).t().slice(0, 0, 8, 2)}},
      {"expanded rows",
       {tensor({1.0, 2.0, 3.0}, f64()).unsqueeze(0).expand({4, 3}), random_normal({3, 2})}},
      {"batched transposed",
       {random_normal({3, 4, 2}).transpose(1, 2), random_normal({3, 2, 4}).transpose(1, 2)}},
      {"permuted batch", {random_normal({2, 3, 4}).permute({1, 0, 2}), random_normal({3, 4, 2})}},
  };
  for (const auto& [name, ops] : cases) {
    SCOPED_TRACE(name);
    const Tensor& a = ops.first;
    const Tensor& b = ops.second;
    const Tensor c = matmul(a, b);
    const std::int64_t batch = a.dim() == 3 ? a.size(0) : 1;
    const std::int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
    expect_close(c, from_vector(naive_bmm(values(a), values(b), batch, m, k, n), c.shape(), f64()),
                 1e-12, 1e-12);
  }
}

TEST(Matmul, EmptyAndZeroInnerDims) {
  Tensor z = matmul(zeros({3, 0}, f64()), zeros({0, 4}, f64()));
  EXPECT_EQ(z.shape(), (Shape{3, 4}));
  expect_values(z, std::vector<double>(12, 0.0));
  EXPECT_EQ(matmul(zeros({0, 2}), zeros({2, 5})).shape(), (Shape{0, 5}));
  EXPECT_EQ(matmul(zeros({0, 2, 3}), zeros({3, 5})).shape(), (Shape{0, 2, 5}));
}

TEST(Matmul, Dtypes) {
  Tensor i = tensor({{1, 2}, {3, 4}}, TensorOptions{}.with_dtype(kInt64));
  Tensor r = matmul(i, i);
  EXPECT_EQ(r.dtype(), kFloat32);
  expect_values(r, {7, 10, 15, 22});
  EXPECT_EQ(matmul(ones({2, 2}), ones({2, 2}, f64())).dtype(), kFloat64);
  Tensor f = matmul(tensor({{1.5, 2}}), tensor({2, 0.25}).reshape({2, 1}));
  EXPECT_EQ(f.dtype(), kFloat32);
  expect_values(f, {3.5});
}

TEST(Matmul, Gradients) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3}, {3}},
      {{3}, {3, 2}},
      {{2, 3}, {3}},
      {{2, 3}, {3, 4}},
      {{3}, {2, 3, 2}},
      {{2, 2, 3}, {3}},
      {{2, 1, 2, 3}, {4, 3, 2}},
      {{3, 2}, {2, 2, 3}},
      {{0, 3}, {3, 2}},
      {{2, 0}, {0, 3}},
  };
  for (const auto& [sa, sb] : shapes) {
    SCOPED_TRACE(::testing::Message() << sa << " @ " << sb);
    const auto f = [](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); };
    EMBER_EXPECT_GRAD(f, {random_normal(sa, true), random_normal(sb, true)});
  }
  const auto only_a = [](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); };
  EMBER_EXPECT_GRAD(only_a, {random_normal({2, 3}, true), random_normal({3, 2})});
  EMBER_EXPECT_GRAD(only_a, {random_normal({2, 3}), random_normal({3, 2}, true)});
  const auto transposed = [](const std::vector<Tensor>& v) {
    return matmul(v[0].t(), v[1].transpose(-1, -2));
  };
  EMBER_EXPECT_GRAD(transposed, {random_normal({3, 2}, true), random_normal({2, 4, 3}, true)});
  const auto stepped = [](const std::vector<Tensor>& v) {
    return matmul(v[0].slice(1, 0, 5, 2), v[1].slice(0, 1, 4));
  };
  EMBER_EXPECT_GRAD(stepped, {random_normal({2, 5}, true), random_normal({5, 2}, true)});
  const auto same = [](const std::vector<Tensor>& v) { return matmul(v[0], v[0].t()); };
  EMBER_EXPECT_GRAD(same, {random_normal({3, 2}, true)});
}

TEST(Matmul, Errors) {
  EMBER_EXPECT_THROW_WITH(matmul(zeros({2, 3}), zeros({4, 2})), ShapeError, "(2, 3)", "(4, 2)");
  EMBER_EXPECT_THROW_WITH(matmul(zeros({3}), zeros({4})), ShapeError, "(3)", "(4)");
  EMBER_EXPECT_THROW_WITH(matmul(zeros({2, 3}), zeros({2})), ShapeError, "(2, 3)", "(2)");
  EMBER_EXPECT_THROW_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), ShapeError, "(2, 2, 3)",
                          "(3, 3, 2)");
  EMBER_EXPECT_THROW_WITH(matmul(scalar_tensor(1.0), zeros({2})), ShapeError, "()", "(2)");
}

// linear(x, W, b) = x W^T + b as one GEMM into the broadcast bias: the values of a plain loop
// for every input rank (a vector, rows, a batch of rows), in both precisions and at sizes where
// the product runs in bands on two threads; without a bias it is matmul(x, W^T).
TEST(Linear, MatchesAPlainLoopForEveryInputRank) {
  for (DType dtype : {kFloat32, kFloat64}) {
    const double tol = dtype == kFloat32 ? 2e-5 : 1e-12;
    for (const Shape& xs : {Shape{7}, Shape{5, 7}, Shape{2, 3, 7}, Shape{300, 7}}) {
      SCOPED_TRACE(::testing::Message() << dtype << " x " << xs);
      const Tensor x = random_normal(xs).to(dtype), w = random_normal({4, 7}).to(dtype),
                   b = random_normal({4}).to(dtype);
      const NumThreadsScope threads(2);
      const Tensor y = linear(x, w, b);
      Shape ys = xs;
      ys[ys.size() - 1] = 4;
      ASSERT_EQ(y.shape(), ys);
      EXPECT_EQ(y.dtype(), dtype);
      const std::vector<double> xv = values(x), wv = values(w), bv = values(b), yv = values(y);
      const std::int64_t rows = x.numel() / 7;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t o = 0; o < 4; ++o) {
          double want = bv[o];
          for (std::int64_t i = 0; i < 7; ++i) want += xv[r * 7 + i] * wv[o * 7 + i];
          EXPECT_NEAR(yv[r * 4 + o], want, tol * (1 + std::abs(want))) << r << ", " << o;
        }
      expect_close(linear(x, w), matmul(x, w.t()), 0, 0);
    }
  }
  // No inner dim: the bias alone; no rows: an empty result.
  expect_values(linear(zeros({2, 0}, f64()), zeros({3, 0}, f64()), tensor({1, 2, 3}, f64())),
                {1, 2, 3, 1, 2, 3});
  EXPECT_EQ(linear(zeros({0, 4}), zeros({3, 4}), zeros({3})).shape(), (Shape{0, 3}));
  // The bias is read, never written: a bias of one row and a one-row input share no storage.
  const Tensor bias = tensor({1.0, -1.0}, f64());
  const Tensor once = linear(ones({1, 2}, f64()), ones({2, 2}, f64()), bias);
  expect_values(once, {3, 1});
  expect_values(bias, {1, -1});
}

TEST(Linear, Gradients) {
  const auto f = [](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); };
  for (const Shape& xs : {Shape{3}, Shape{2, 3}, Shape{2, 2, 3}}) {
    SCOPED_TRACE(::testing::Message() << xs);
    EMBER_EXPECT_GRAD(
        f, {random_normal(xs, true), random_normal({4, 3}, true), random_normal({4}, true)});
  }
  // Each operand alone, a strided input, and no bias.
  EMBER_EXPECT_GRAD(f, {random_normal({2, 3}, true), random_normal({4, 3}), random_normal({4})});
  EMBER_EXPECT_GRAD(f, {random_normal({2, 3}), random_normal({4, 3}, true), random_normal({4})});
  EMBER_EXPECT_GRAD(f, {random_normal({2, 3}), random_normal({4, 3}), random_normal({4}, true)});
  const auto strided = [](const std::vector<Tensor>& v) { return linear(v[0].t(), v[1], v[2]); };
  EMBER_EXPECT_GRAD(strided, {random_normal({3, 5}, true), random_normal({4, 3}, true),
                              random_normal({4}, true)});
  const auto no_bias = [](const std::vector<Tensor>& v) { return linear(v[0], v[1]); };
  EMBER_EXPECT_GRAD(no_bias, {random_normal({2, 3}, true), random_normal({4, 3}, true)});
}

TEST(Linear, Errors) {
  EMBER_EXPECT_THROW_WITH(linear(zeros({2, 3}), zeros({4, 2}), zeros({4})), ShapeError, "linear",
                          "(2, 3)", "in_features = 2");
  EMBER_EXPECT_THROW_WITH(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})), ShapeError, "linear",
                          "bias of shape (3)", "out_features = 4");
  EMBER_EXPECT_THROW_WITH(linear(zeros({2, 3}), zeros({3}), zeros({3})), ShapeError, "linear",
                          "weight must be 2-d", "(3)");
  EMBER_EXPECT_THROW_WITH(linear(scalar_tensor(1.0), zeros({1, 1})), ShapeError, "linear", "()");
}

TEST(Large, BatchedMatmul) {
  Tensor a = random_normal({8, 40, 30});
  Tensor b = random_normal({8, 30, 50});
  Tensor c = matmul(a, b);
  expect_close(c, from_vector(naive_bmm(values(a), values(b), 8, 40, 30, 50), c.shape(), f64()),
               1e-11, 1e-11);
}

namespace ember::test {
namespace {

// Products from several threads at once (a service's request threads, and the CPU launcher's
// own workers) give exactly the values of the same product run alone. The shapes are a VAE's
// layers, where unsynchronized calls into a single-threaded BLAS were seen to go wrong.
TEST(Matmul, ConcurrentProductsMatchOneAtATimeBitForBit) {
  set_rng_seed(11);
  struct Case {
    Tensor a, b;
    std::vector<float> expected;
  };
  std::vector<Case> cases;
  for (const auto& [m, k, n] : std::vector<std::array<std::int64_t, 3>>{
           {64, 400, 20}, {64, 784, 400}, {128, 20, 400}, {200, 64, 392}}) {
    Case c{randn({m, k}), randn({n, k}).t(), {}};
    {
      const NumThreadsScope two(2);
      c.expected = matmul(c.a, c.b).to_vector<float>();
    }
    cases.push_back(std::move(c));
  }
  std::atomic<int> mismatches{0};
  // Each thread's products split into the same bands of rows as the reference's (a band
  // split is fixed by the thread count), run on the pool or, while it is busy, in place.
  auto work = [&] {
    const NumThreadsScope two(2);
    for (int r = 0; r < 60; ++r)
      for (const Case& c : cases)
        if (matmul(c.a, c.b).to_vector<float>() != c.expected) ++mismatches;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(work);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ------------------------------------------------------------- log-space products ----
// The composed reference: logsumexp over k of a[..., i, k, None] + b[..., None, k, j].
Tensor log_matmul_reference(const Tensor& a, const Tensor& b) {
  return logsumexp(add(a.unsqueeze(-1), b.unsqueeze(-3)), {-2});
}

TEST(LogMatmulExp, MatchesTheComposedLogsumexpWithBroadcastBatches) {
  const Tensor a = random_normal({2, 3, 4}), b = random_normal({4, 5});
  expect_close(log_matmul_exp(a, b), log_matmul_reference(a, b), 1e-12, 1e-12);
  const Tensor c = random_normal({3, 1, 2, 6}), d = random_normal({4, 6, 3});
  expect_close(log_matmul_exp(c, d), log_matmul_reference(c, d), 1e-12, 1e-12);
  EXPECT_EQ(log_matmul_exp(c, d).shape(), Shape({3, 4, 2, 3}));
}

TEST(LogMatmulExp, StableInFloat32AtLargeMagnitudes) {
  // Entries near -1000 (far past exp's float32 range) and near +80.
  for (double shift : {-1000.0, 80.0}) {
    const Tensor a64 = add(random_normal({3, 4}), shift), b64 = random_normal({4, 2});
    const Tensor want = log_matmul_reference(a64, b64);
    const Tensor got = log_matmul_exp(a64.to(kFloat32), b64.to(kFloat32));
    EXPECT_TRUE(all(isfinite(got))) << got;
    expect_close(got.to(kFloat64), want, 1e-6, 1e-3);
  }
}

TEST(LogMatmulExp, MinusInfinityIsAZeroOfTheProduct) {
  const double inf = INFINITY;
  const Tensor a = tensor({{0.0, -inf}, {-inf, -inf}}, f64());
  const Tensor b = tensor({{1.0, -inf}, {2.0, 3.0}}, f64());
  const Tensor out = log_matmul_exp(a, b);
  EXPECT_NEAR(out.select(0, 0).select(0, 0).item(), 1.0, 1e-12);
  EXPECT_EQ(out.select(0, 0).select(0, 1).item(), -inf);  // every term -inf
  EXPECT_EQ(out.select(0, 1).select(0, 0).item(), -inf);
  // Its gradient has no NaN where an output is -inf.
  const Tensor al = a.clone().requires_grad_(), bl = b.clone().requires_grad_();
  const Tensor y = log_matmul_exp(al, bl);
  sum(where(isfinite(y), y, 0.0)).backward();
  EXPECT_TRUE(all(logical_not(isnan(al.grad()))));
  EXPECT_TRUE(all(logical_not(isnan(bl.grad()))));
}

TEST(LogMatmulExp, GradientsMatchCentralDifferences) {
  const auto f = [](const std::vector<Tensor>& v) { return log_matmul_exp(v[0], v[1]); };
  EXPECT_TRUE(grad_check(f, {random_normal({2, 3, 4}, true), random_normal({4, 2}, true)}));
  EXPECT_TRUE(grad_check(f, {random_normal({1, 3}, true), random_normal({2, 3, 5}, true)}));
}

// The CPU takes a row's outputs side by side in vector lanes, and a row's gradients likewise;
// each output and each gradient still takes the steps, in the order, of the one-output bodies
// that the GPU runs once per thread (kernels/math/log_matmul.hpp). So the bits are those
// bodies', element by element: float32 (whose exp and log are polynomials that vectorize)
// and float64, rows wider than one block of outputs (64), a row of -inf (a zero of the
// product), single -inf terms, and for the forward pass +inf and NaN terms.
template <typename T>
void expect_log_matmul_bodies_bits(DType dtype) {
  constexpr std::int64_t kB = 2, kM = 3, kK = 7, kN = 70;
  std::normal_distribution<double> normal(0.0, 3.0);
  std::vector<double> av(kB * kM * kK), bv(kB * kK * kN), gw(kB * kM * kN);
  for (double& x : av) x = normal(rng());
  for (double& x : bv) x = normal(rng());
  for (double& x : gw) x = normal(rng());
  for (std::int64_t c = 0; c < kK; ++c) av[(0 * kM + 1) * kK + c] = -INFINITY;  // a row of -inf
  av[(1 * kM + 0) * kK + 2] = -INFINITY;
  bv[(0 * kK + 3) * kN + 5] = -INFINITY;
  const auto opts = TensorOptions{}.with_dtype(dtype);
  // Forward, with +inf and NaN terms too.
  std::vector<double> bf = bv;
  bf[(0 * kK + 4) * kN + 66] = INFINITY;
  bf[(1 * kK + 6) * kN + 9] = NAN;
  const Tensor a = from_vector(av, {kB, kM, kK}, opts);
  const std::vector<T> A = a.to_vector<T>(),
                       Bf = from_vector(bf, {kB, kK, kN}, opts).to_vector<T>();
  for (bool max_plus : {false, true}) {
    SCOPED_TRACE(max_plus ? "max_plus_matmul" : "log_matmul_exp");
    const Tensor b = from_vector(bf, {kB, kK, kN}, opts);
    const std::vector<T> got =
        (max_plus ? max_plus_matmul(a, b) : log_matmul_exp(a, b)).to_vector<T>();
    for (std::int64_t i = 0; i < kB; ++i)
      for (std::int64_t r = 0; r < kM; ++r)
        for (std::int64_t j = 0; j < kN; ++j) {
          const T want = kernels::log_matmul_exp_entry<T>(&A[(i * kM + r) * kK], 1,
                                                          &Bf[i * kK * kN + j], kN, kK, max_plus);
          const T at = got[(i * kM + r) * kN + j];
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(at)) << i << "," << r << "," << j;
          } else {
            EXPECT_EQ(at, want) << i << "," << r << "," << j;
          }
        }
  }
  // Gradients, with -inf terms (and a row of -inf outputs, whose gradient is 0).
  const Tensor ag =
      from_vector(av, {kB, kM, kK}, TensorOptions{}.with_dtype(dtype).with_requires_grad(true));
  const Tensor bg =
      from_vector(bv, {kB, kK, kN}, TensorOptions{}.with_dtype(dtype).with_requires_grad(true));
  const Tensor y = log_matmul_exp(ag, bg);
  const Tensor weights = from_vector(gw, {kB, kM, kN}, opts);
  sum(where(isfinite(y), y * weights, 0.0)).backward();
  const std::vector<T> B = bg.detach().to_vector<T>(), Y = y.detach().to_vector<T>();
  const std::vector<T> W = weights.to_vector<T>();
  const std::vector<T> ga = ag.grad().to_vector<T>(), gb = bg.grad().to_vector<T>();
  std::vector<T> g(W.size());
  for (std::size_t e = 0; e < g.size(); ++e) g[e] = std::isfinite(Y[e]) ? W[e] : T(0);
  for (std::int64_t i = 0; i < kB; ++i) {
    for (std::int64_t r = 0; r < kM; ++r)
      for (std::int64_t c = 0; c < kK; ++c) {
        const std::int64_t row = (i * kM + r) * kN;
        const T want = kernels::log_matmul_exp_grad_a<T>(
            A[(i * kM + r) * kK + c], &B[(i * kK + c) * kN], 1, &g[row], 1, &Y[row], 1, kN);
        EXPECT_EQ(ga[(i * kM + r) * kK + c], want) << "grad a " << i << "," << r << "," << c;
      }
    for (std::int64_t c = 0; c < kK; ++c)
      for (std::int64_t j = 0; j < kN; ++j) {
        T want = T(0);
        for (std::int64_t r = 0; r < kM; ++r) {
          const std::int64_t e = (i * kM + r) * kN + j;
          want += g[e] * kernels::log_matmul_exp_weight<T>(
                             A[(i * kM + r) * kK + c] + B[(i * kK + c) * kN + j], Y[e]);
        }
        EXPECT_EQ(gb[(i * kK + c) * kN + j], want) << "grad b " << i << "," << c << "," << j;
      }
  }
}

TEST(LogMatmulExp, CpuOutputsAndGradientsHaveTheOneOutputBodiesBits) {
  {
    SCOPED_TRACE("float32");
    expect_log_matmul_bodies_bits<float>(kFloat32);
  }
  {
    SCOPED_TRACE("float64");
    expect_log_matmul_bodies_bits<double>(kFloat64);
  }
}

TEST(MaxPlusMatmul, IsTheMaxOfTheSums) {
  const Tensor a = random_normal({2, 3, 4}), b = random_normal({2, 4, 5});
  expect_close(max_plus_matmul(a, b), max(add(a.unsqueeze(-1), b.unsqueeze(-3)), {-2}), 0, 0);
}

TEST(LogMatmulExp, ShapeErrorsNameBothShapes) {
  EMBER_EXPECT_THROW_WITH(log_matmul_exp(random_normal({2, 3}), random_normal({4, 2})), ShapeError,
                          "log_matmul_exp", "(2, 3)", "(4, 2)");
  EMBER_EXPECT_THROW_WITH(max_plus_matmul(random_normal({3}), random_normal({3, 2})), ShapeError,
                          "max_plus_matmul");
}

}  // namespace
}  // namespace ember::test

// What multiplies matrices on the CPU, and advice when OpenBLAS's kernels are older than the
// CPU. CTest runs this case three times: as found, and with OPENBLAS_CORETYPE set to
// Prescott (SSE3 kernels: advice on any CPU with AVX2) and to Haswell (AVX2 kernels: none).
TEST(CpuMatmulInfo, NamesTheLibraryAndAdvisesOnKernelsOlderThanTheCpu) {
  const CpuMatmulInfo info = cpu_matmul_info();
  ASSERT_FALSE(info.library.empty());
  EXPECT_FALSE(info.kernels.empty());
  if (!info.library.starts_with("OpenBLAS")) {
    EXPECT_TRUE(info.library.starts_with("Eigen ")) << info.library;
    EXPECT_TRUE(info.advice.empty()) << info.advice;
    return;
  }
  if (!info.advice.empty()) {
    EXPECT_NE(info.advice.find("OPENBLAS_CORETYPE="), std::string::npos) << info.advice;
    EXPECT_NE(info.advice.find(info.kernels), std::string::npos) << info.advice;
  }
#if defined(__x86_64__)
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced == nullptr) return;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  EXPECT_EQ(info.kernels, forced);
  if (std::string_view(forced) == "Prescott") {
    EXPECT_EQ(info.advice.empty(), !avx2) << info.advice;
  } else if (std::string_view(forced) == "Haswell") {
    EXPECT_TRUE(info.advice.empty()) << info.advice;
  }
#endif
}
