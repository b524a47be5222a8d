// How the CPU launcher's loops read their operands (kernels/cpu/cpu_loops.hpp): a one-element
// operand spread over a large one (a scalar parameter, the seed of a sum's gradient) travels
// by value and is read from the loop's slot in blocks beside the contiguous operands; rows
// contiguous in every operand run as flat loops inside a strided walk. Whatever the path, the
// bits are those of the same op on operands laid out in full.
#include "kernels/cpu/cpu_loops.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/internal.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

// Sizes around the loop's block (64 elements) and its parallel grain (32,768 elements).
const std::vector<std::int64_t> kSizes = {1, 2, 63, 64, 65, 1000, 32769, 100003};

void expect_same_bits(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.shape(), want.shape());
  ASSERT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.to(kFloat64).to_vector<double>(), want.to(kFloat64).to_vector<double>());
}

// x op s for a one-element s (0-d, a (1) tensor, a broadcast view of one element), on either
// side, against the same op with s repeated in a contiguous tensor; with its gradients.
TEST(CpuLoops, OneElementOperandsGiveTheBitsOfFullOnes) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (int threads : {1, 2}) {
      const NumThreadsScope scope(threads);
      for (std::int64_t n : kSizes) {
        SCOPED_TRACE(::testing::Message() << dtype << ", " << threads << " threads, n = " << n);
        const Tensor x = random_normal({n}).to(dtype);
        const Tensor s = scalar_tensor(-0.7).to(dtype);
        const Tensor full = s.expand({n}).contiguous();
        for (const Tensor& one : {s, s.reshape({1}), s.expand({n})}) {
          expect_same_bits(x * one, x * full);
          expect_same_bits(one - x, full - x);
          expect_same_bits(x / one, x / full);
          expect_same_bits(maximum(one, x), maximum(full, x));
        }
        // d/dx sum(x * s) = s, through a one-element seed broadcast over n.
        const Tensor xg = x.detach().requires_grad_();
        sum(xg * s).backward();
        expect_same_bits(xg.grad(), full);
      }
    }
  }
}

// A log-density whose parameters are one element each (Normal(loc, 0.3) over a vector of
// observations) gives the values and partials of the same density with the parameters laid
// out in full, and draws with a one-element parameter equal those with a full one. (A
// one-element scale takes the Normal's hoisted form, NormalLogProbFixedScale: its reciprocal
// and log computed once; the bits must not change.)
TEST(CpuLoops, OneElementDistributionParametersGiveTheBitsOfFullOnes) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (std::int64_t n : kSizes) {
      SCOPED_TRACE(::testing::Message() << dtype << ", n = " << n);
      const Tensor y = random_normal({n}).to(dtype);
      const Tensor loc = random_normal({n}).to(dtype);
      const Tensor scale = scalar_tensor(0.3).to(dtype);
      auto score = [&](const Tensor& l, const Tensor& sc) {
        const Tensor lg = l.detach().requires_grad_(), sg = sc.detach().requires_grad_();
        const Tensor yg = y.detach().requires_grad_();
        const Tensor lp = dist::Normal(lg, sg).log_prob(yg);
        sum(lp).backward();
        return std::vector<Tensor>{lp.detach(), lg.grad(), sg.grad(), yg.grad()};
      };
      const std::vector<Tensor> one = score(loc, scale);
      const std::vector<Tensor> full = score(loc, scale.expand({n}).contiguous());
      expect_same_bits(one[0], full[0]);
      expect_same_bits(one[1], full[1]);
      expect_same_bits(one[3], full[3]);
      // Each element's value against the reference density, computed here in double.
      const std::vector<double> ys = y.to(kFloat64).to_vector<double>();
      const std::vector<double> ls = loc.to(kFloat64).to_vector<double>();
      const std::vector<double> lp = one[0].to(kFloat64).to_vector<double>();
      const double sd = scale.to(kFloat64).item();
      for (std::size_t i = 0; i < ys.size(); ++i) {
        const double z = (ys[i] - ls[i]) / sd;
        EXPECT_NEAR(lp[i], -0.5 * z * z - std::log(sd) - 0.5 * std::log(2 * M_PI),
                    dtype == kFloat32 ? 1e-4 * (1 + z * z) : 1e-12 * (1 + z * z))
            << i;
      }
      // The scale's gradient: n partials summed into one element, against the n partials of
      // a full scale (summed here, perhaps in another order).
      EXPECT_EQ(one[2].shape(), Shape{});
      expect_close(one[2].to(kFloat64), sum(full[2]).to(kFloat64), 1e-5, 1e-6);
      // A one-element value scored under full parameters.
      const Tensor v = scalar_tensor(0.25).to(dtype);
      expect_same_bits(dist::Normal(loc, scale).log_prob(v),
                       dist::Normal(loc, scale).log_prob(v.expand({n}).contiguous()));

      Generator a(11), b(11);
      expect_same_bits(dist::Normal(loc, scale).sample({}, a),
                       dist::Normal(loc, scale.expand({n}).contiguous()).sample({}, b));
    }
  }
}

// A broadcast bias added to rows (contiguous along the row in every operand, stride 0 down
// the rows for the bias) and a broadcast column (stride 0 along the row) give a plain loop's
// values.
TEST(CpuLoops, StridedWalksWithContiguousRowsMatchAPlainLoop) {
  // Rows shorter than the cloned loop's minimum (16) run inline, longer ones in it.
  for (const std::int64_t cols : {5, 16, 131}) {
    SCOPED_TRACE(cols);
    const std::int64_t rows = 37;
    const Tensor x = random_normal({rows, cols});
    const Tensor bias = random_normal({cols});
    const Tensor col = random_normal({rows, 1});
    const std::vector<double> xv = values(x), bv = values(bias), cv = values(col);
    const std::vector<double> by_row = values(x + bias), by_col = values(x * col);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(by_row[r * cols + c], xv[r * cols + c] + bv[c]) << r << ", " << c;
        ASSERT_EQ(by_col[r * cols + c], xv[r * cols + c] * cv[r]) << r << ", " << c;
      }
    }
    // A transposed operand: no dim is contiguous in both, the strided walk of before.
    const std::vector<double> mixed = values(x.t().contiguous().t() + x);
    for (std::int64_t i = 0; i < rows * cols; ++i) ASSERT_EQ(mixed[i], 2 * xv[i]) << i;
  }
}

// Records, for each element, the index the walk gave it.
struct IndexBody {
  static constexpr int kOperands = 2;
  double* out;
  EMBER_HD void operator()(std::int64_t i, const std::int64_t (&off)[kOperands]) const {
    out[off[0]] = static_cast<double>(i);
  }
};

// A walk whose rows are short and many ((200, 2) against a (200, 1) column, a transposed
// operand) runs down the columns instead: each element is still given its own index (the
// body sees the index of the walk in the output's order), a sampler's draws (counted by
// output offset) are those of the same draw over full parameters, and values those of a
// plain loop.
TEST(CpuLoops, ShortRowsWalkedDownTheColumnsKeepEachElementsIndex) {
  for (const std::int64_t cols : {2, 3, 15}) {
    SCOPED_TRACE(cols);
    const std::int64_t rows = 200;
    const Tensor index = zeros({rows, cols}, f64());
    const Tensor across = zeros({cols, rows}, f64()).t();
    const kernels::TensorArg o = detail::arg(index), t = detail::arg(across);
    const kernels::TensorArg* args[2] = {&o, &t};
    kernels::cpu::walk(kernels::make_offset_calc(args), rows * cols,
                       IndexBody{static_cast<double*>(index.data_ptr())});
    const std::vector<double> got_index = values(index);
    for (std::int64_t i = 0; i < rows * cols; ++i) ASSERT_EQ(got_index[i], static_cast<double>(i));

    const Tensor loc = random_normal({rows, 1});
    const Tensor scale = abs(random_normal({1, cols})) + 0.5;
    Generator a(5), b(5);
    expect_same_bits(
        dist::Normal(loc.expand({rows, cols}), scale.expand({rows, cols})).sample({}, a),
        dist::Normal(loc.expand({rows, cols}).contiguous(), scale.expand({rows, cols}).contiguous())
            .sample({}, b));
    const Tensor x = random_normal({cols, rows}).t();  // (rows, cols), column-major
    const std::vector<double> xv = values(x.contiguous()), lv = values(loc);
    const std::vector<double> got = values(x - loc);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        ASSERT_EQ(got[r * cols + c], xv[r * cols + c] - lv[r]) << r << ", " << c;
  }
}

// An operand broadcast along the row (a row's sum against the row, x / x.sum(-1, true)) is
// copied out in full for the loop (Loop::densify) up to 2^16 elements, read in place beyond:
// either way the bits are those of the op on the full operand, forward and backward, for
// floating, integer and comparison ops, with the column on either side, and with a column
// that is itself broadcast (a (1, 1) one against rows).
TEST(CpuLoops, OperandsBroadcastAlongTheRowGiveTheBitsOfFullOnes) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (std::int64_t rows : {3, 200, 70000}) {
      SCOPED_TRACE(::testing::Message() << dtype << ", rows = " << rows);
      const std::int64_t cols = 6;
      const Tensor x = (random_normal({rows, cols}) + 3.0).to(dtype).requires_grad_();
      const Tensor col = (random_normal({rows, 1}) + 3.0).to(dtype).requires_grad_();
      const Tensor full = col.detach().expand({rows, cols}).contiguous().requires_grad_();
      expect_same_bits(x / col, x / full);
      expect_same_bits(col - x, full - x);
      expect_same_bits(lt(x, col), lt(x, full));
      const Tensor one = col.detach().narrow(0, 0, 1).expand({rows, 1});
      expect_same_bits(x * one, x * one.expand({rows, cols}).contiguous());
      // Backward: the column's gradient is the full operand's summed along the row.
      const Tensor g = random_normal({rows, cols}).to(dtype);
      (x / col).backward(g);
      const Tensor gx = x.grad(), gcol = col.grad();
      x.zero_grad();
      (x / full).backward(g);
      expect_same_bits(gx, x.grad());
      expect_same_bits(gcol, sum(full.grad(), {-1}, true));
    }
  }
  const Tensor i = arange(12.0, TensorOptions{}.with_dtype(kInt64)).reshape({4, 3});
  const Tensor c = tensor({1.0, 2.0, 3.0, 4.0}).to(kInt64).reshape({4, 1});
  expect_same_bits(i * c, i * c.expand({4, 3}).contiguous());
}

// A binding that only captures (Backend::run_bound with `capture`, how a compiled step binds
// a call again at new addresses before running it) runs none of the call's work: the output
// keeps what it held, and the bound call does the work when it runs, each time (an
// accumulating product twice adds twice). For every kind of launcher that binds: an
// elementwise loop, a full sum, a sum along a dim, a scan along a dim, and matrix products
// narrow and wide. The operands outlive the bound call, as a plan's do.
TEST(CpuLoops, ABindingThatOnlyCapturesRunsNothing) {
  kernels::Backend& cpu = kernels::cpu_backend();
  const Tensor a = random_normal({300, 5}), b = random_normal({300, 5}), w = random_normal({5});
  const Tensor wide = random_normal({5, 40});
  const Tensor a3 = a.reshape({1, 300, 5});
  struct Case {
    std::string name;
    Tensor out, want;
    std::vector<Tensor> ins;
    std::function<void(const kernels::TensorArg* args)> call;  // args: out, then the inputs
  };
  const std::vector<Case> cases = {
      {"binary",
       zeros({300, 5}, f64()),
       a + b,
       {a, b},
       [&](const kernels::TensorArg* x) { cpu.binary(kernels::BinaryOp::Add, x[0], x[1], x[2]); }},
      {"full sum",
       zeros({1, 1}, f64()),
       sum(a).reshape({1, 1}),
       {a},
       [&](const kernels::TensorArg* x) { cpu.reduce(kernels::ReduceOp::Sum, x[0], x[1]); }},
      {"sum along a dim",
       zeros({300, 1}, f64()),
       sum(a, {1}, true),
       {a},
       [&](const kernels::TensorArg* x) { cpu.reduce(kernels::ReduceOp::Sum, x[0], x[1]); }},
      {"scan",
       zeros({300, 5}, f64()),
       cumsum(a, 1),
       {a},
       [&](const kernels::TensorArg* x) { cpu.scan(kernels::ScanOp::Sum, x[0], x[1], 1, false); }},
      {"narrow product",
       zeros({1, 300, 1}, f64()),
       matmul(a, w).reshape({1, 300, 1}),
       {a3, w.reshape({1, 5, 1})},
       [&](const kernels::TensorArg* x) { cpu.matmul(x[0], x[1], x[2], false); }},
      {"wide product",
       zeros({1, 300, 40}, f64()),
       matmul(a, wide).reshape({1, 300, 40}),
       {a3, wide.reshape({1, 5, 40})},
       [&](const kernels::TensorArg* x) { cpu.matmul(x[0], x[1], x[2], true); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<kernels::TensorArg> args{detail::arg(c.out)};
    for (const Tensor& t : c.ins) args.push_back(detail::arg(t));
    const std::vector<double> sentinel(c.out.numel(), 0.25);
    std::memcpy(c.out.data_ptr(), sentinel.data(), sentinel.size() * sizeof(double));
    const kernels::BoundCall bound = cpu.run_bound([&] { c.call(args.data()); }, /*capture=*/true);
    ASSERT_TRUE(bound.run);
    EXPECT_EQ(c.out.to_vector<double>(), sentinel);
    bound.run();
    if (c.name == "wide product") {
      // Accumulated into what out held, once per run.
      expect_close(c.out, c.want + 0.25, 1e-12, 1e-12);
      bound.run();
      expect_close(c.out, c.want * 2.0 + 0.25, 1e-12, 1e-12);
    } else {
      expect_same_bits(c.out, c.want);
    }
  }
}

// set_flush_denormal: a float32 product whose exact value is denormal (1e-30 * 1e-10) comes
// out denormal by default and zero while flushing; a denormal operand reads as zero while
// flushing. On one thread and split over the pool (100003 elements, two tasks): the workers
// run the caller's tasks in the caller's mode, and go back to keeping denormals with it.
TEST(CpuLoops, FlushDenormalHoldsForTheCallerAndThePoolsWorkers) {
  const bool supported = set_flush_denormal(false);
#if defined(__x86_64__) || defined(__i386__)
  ASSERT_TRUE(supported);
#else
  EXPECT_FALSE(supported);
  EXPECT_FALSE(set_flush_denormal(true));
  EXPECT_FALSE(flush_denormal());
  return;
#endif
  const TensorOptions f32 = TensorOptions{}.with_dtype(kFloat32);
  const float tiny = 1e-30f, small = 1e-10f;
  volatile float product = tiny * small;  // computed here, keeping denormals
  ASSERT_EQ(std::fpclassify(static_cast<float>(product)), FP_SUBNORMAL);
  const auto all_equal = [](const Tensor& t, float want) {
    for (const float v : t.to_vector<float>())
      if (v != want) return false;
    return true;
  };
  for (const int threads : {1, 2}) {
    const NumThreadsScope scope(threads);
    for (const std::int64_t n : {1000, 100003}) {
      SCOPED_TRACE(::testing::Message() << threads << " threads, " << n << " elements");
      const Tensor a = full({n}, tiny, f32), b = full({n}, small, f32);
      const Tensor denormal = full({n}, static_cast<float>(product), f32);
      // Rounds back to back, so that a worker, spinning between them, takes tasks.
      for (int round = 0; round < 20; ++round) {
        EXPECT_FALSE(flush_denormal());
        EXPECT_TRUE(all_equal(mul(a, b), product));
        {
          const FlushDenormalScope flush(true);
          EXPECT_TRUE(flush_denormal());
          EXPECT_TRUE(all_equal(mul(a, b), 0.0f));
          EXPECT_TRUE(all_equal(mul(denormal, full({n}, 1e30f, f32)), 0.0f));
        }
        EXPECT_FALSE(flush_denormal());
        EXPECT_TRUE(all_equal(mul(a, b), product));
        EXPECT_TRUE(all_equal(mul(denormal, full({n}, 1.0f, f32)), product));
      }
    }
  }
  EXPECT_TRUE(set_flush_denormal(true));
  EXPECT_TRUE(flush_denormal());
  EXPECT_TRUE(set_flush_denormal(false));
  EXPECT_FALSE(flush_denormal());
}

}  // namespace
}  // namespace ember::test
