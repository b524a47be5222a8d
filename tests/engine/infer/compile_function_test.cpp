// ember::compile: a function of tensors recorded once and replayed gives the eager function's
// bits for every input (rebound each call), draws, parameters that change between calls and
// several outputs; new input shapes record new plans; structure changes and host reads raise
// CompileError; compiled programs called inside one another run as part of the outer one.
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "compile_fit.hpp"
#include "engine/internal.hpp"
#include "test_util.hpp"

namespace ember {
namespace {

using test::expect_identical;
using test::f64;
using test::Fit;
using test::fit;

TEST(CompileFunction, ReplaysGiveTheEagerFunctionsBits) {
  Generator init(3);
  nn::Linear hidden(4, 8, true, f64(), &init), out(8, 2, true, f64(), &init);
  auto f = [&](const Tensor& x) { return out(softplus(hidden(x))); };
  auto compiled = compile(f);
  Generator data(5);
  for (int i = 0; i < 6; ++i) {
    const Tensor x = randn({5, 4}, f64(), &data);  // new memory every call
    const Tensor got = compiled(x);
    const Tensor want = f(x);
    EXPECT_EQ(got.to_vector<double>(), want.to_vector<double>()) << "call " << i;
    EXPECT_FALSE(got.requires_grad());
  }
  EXPECT_EQ(compiled.stats().recordings, 1);
  EXPECT_EQ(compiled.stats().replays, 4);
  // Another batch size: a plan of its own.
  const Tensor x3 = randn({3, 4}, f64(), &data);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(compiled(x3).to_vector<double>(), f(x3).to_vector<double>());
  EXPECT_EQ(compiled.stats().plans, 2u);
}

// The calls of `listing` (describe_plans()) marked as fused, and their runs' numbers.
std::vector<int> fused_runs(const std::string& listing) {
  std::vector<int> runs;
  for (std::size_t at = listing.find("(bound, fused "); at != std::string::npos;
       at = listing.find("(bound, fused ", at + 1))
    runs.push_back(std::stoi(listing.substr(at + 14)));
  return runs;
}

// Buffers share memory only once their last reader ran: in f below, exp(x) is read again at
// the end, so tanh(x), the product and its sum with sigmoid(x) each need memory of their own
// while it lives; sigmoid(x) is written after tanh(x) was read for the last time, and takes
// its memory.
// The eager function's bits, fused and call by call, with the buffer shared and without.
TEST(CompileFunction, ABufferTakesAnothersMemoryOnlyAfterItsLastReader) {
  const std::int64_t n = 20000;  // 160 KB a buffer, fused in tiles
  auto f = [](const Tensor& x) {
    const Tensor a = exp(x), b = tanh(x);
    const Tensor c = a * b, d = sigmoid(x);
    return (c + d) + a;
  };
  Generator gen(11);
  for (const bool fuse : {true, false}) {
    for (const bool share : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << (fuse ? "fused" : "call by call") << (share ? ", shared" : ", own buffers"));
      CompileOptions opts;
      opts.fuse = fuse;
      opts.share_buffers = share;
      auto compiled = compile(f, opts);
      for (int i = 0; i < 5; ++i) {
        const Tensor x = randn({n}, f64(), &gen);
        EXPECT_EQ(compiled(x).to_vector<double>(), f(x).to_vector<double>()) << "call " << i;
      }
      EXPECT_EQ(compiled.stats().replays, 3);
      EXPECT_EQ(compiled.stats().shared_buffers, share ? 1u : 0u);
      EXPECT_EQ(compiled.stats().shared_bytes, share ? n * sizeof(double) : 0u);
    }
  }
  // A buffer something outside the plan still holds when the recording ends keeps its memory:
  // here the caller keeps tanh(x), which after every call holds that call's values, never
  // sigmoid(x)'s.
  Tensor held;
  auto g = [&](const Tensor& x) {
    const Tensor a = exp(x);
    held = tanh(x);
    const Tensor c = a * held, d = sigmoid(x);
    return (c + d) + a;
  };
  auto compiled = compile(g);
  for (int i = 0; i < 5; ++i) {
    const Tensor x = randn({n}, f64(), &gen);
    const Tensor got = compiled(x);
    if (i >= 2) EXPECT_EQ(held.to_vector<double>(), tanh(x).to_vector<double>()) << "call " << i;
    EXPECT_EQ(got.to_vector<double>(), f(x).to_vector<double>()) << "call " << i;  // g's math
  }
  EXPECT_EQ(compiled.stats().shared_buffers, 0u);
}

// On the CPU a chain of elementwise calls over the same elements, and the sum it feeds, run
// tile by tile: the eager function's bits, in both precisions, with its input's values
// changed before every call (in place: the plan's input stays where it is).
TEST(CompileFunction, ElementwiseChainsAndTheirSumRunFused) {
  const NumThreadsScope one(1);
  for (DType dtype : {kFloat32, kFloat64}) {
    SCOPED_TRACE(::testing::Message() << dtype);
    const std::int64_t n = 100003;  // tiles of 2048, a last short one
    const Tensor x = zeros({n}, TensorOptions{}.with_dtype(dtype));
    auto f = [](const Tensor& x) { return sum(exp(x * 0.5 + 1.0) * x - 3.0); };
    auto compiled = compile(f);
    for (int i = 0; i < 6; ++i) {
      const Tensor values = randn({n}, TensorOptions{}.with_dtype(dtype)) * (0.5 + i);
      std::memcpy(x.data_ptr(), values.data_ptr(), n * element_size(dtype));
      EXPECT_EQ(compiled(x).item(), f(x).item()) << "call " << i;
    }
    // Mul, add, exp, mul, sub and the sum: one run.
    EXPECT_EQ(compiled.stats().fused_calls_per_replay, 6u) << compiled.describe_plans();
    EXPECT_EQ(fused_runs(compiled.describe_plans()), std::vector<int>(6, 1));
    // Not fused: the same values.
    auto plain = compile(f, CompileOptions{.fuse = false});
    for (int i = 0; i < 3; ++i) EXPECT_EQ(plain(x).item(), f(x).item());
    EXPECT_EQ(plain.stats().fused_calls_per_replay, 0u);
  }
}

// A call that reads, at other offsets, memory an earlier call of the chain writes (here the
// join of two halves, read from just before the second) would read elements of a later tile
// not yet written: the run is cut there, and the function keeps its eager values.
TEST(CompileFunction, ACallReadingAnotherTileOfAnEarlierOneStartsANewFusedRun) {
  const NumThreadsScope one(1);
  const std::int64_t n = 40000;
  const Tensor x = zeros({n});
  auto f = [n](const Tensor& x) { return sum(cat({x * 2.0, x + 1.0}).narrow(0, n - 1, n) * 3.0); };
  auto compiled = compile(f);
  for (int i = 0; i < 8; ++i) {
    float* p = static_cast<float*>(x.data_ptr());
    for (std::int64_t j = 0; j < n; ++j) p[j] = static_cast<float>((i + 1) * (j % 97)) * 1e-3f;
    EXPECT_EQ(compiled(x).item(), f(x).item()) << "call " << i;
  }
  // Two runs: the halves and their copies into the join, then the product and its sum.
  EXPECT_EQ(fused_runs(compiled.describe_plans()), (std::vector<int>{1, 1, 1, 1, 2, 2}))
      << compiled.describe_plans();
}

// A regression's pass over its data: X w, the residual, two sums and X^T r. The products
// run in parts too (X w's rows, X^T r's columns carried as one reduction), and the calls in
// between that do not touch the run move out of its way: one run reads X once, the same bits
// as eager in both precisions. The calls that read the sums' results come after the run. On
// several threads each thread takes one slice of the rows through the whole run, and the sums
// and X^T r add their slices' results in order, as the unfused calls do: the same bits.
TEST(CompileFunction, ARegressionsProductsResidualAndSumsReadTheMatrixOnce) {
  for (const auto& [threads, dtype] :
       {std::pair{1, kFloat32}, std::pair{1, kFloat64}, std::pair{2, kFloat32},
        std::pair{2, kFloat64}, std::pair{3, kFloat32}}) {
    SCOPED_TRACE(::testing::Message() << dtype << " on " << threads << " threads");
    const NumThreadsScope scope(threads);
    const std::int64_t n = 50001, d = 3;  // tiles of 2048, a last short one
    const TensorOptions opts = TensorOptions{}.with_dtype(dtype);
    const Tensor x = zeros({n, d}, opts), y = zeros({n}, opts), w = zeros({d}, opts),
                 other = zeros({5}, opts);
    auto f = [](const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& other) {
      const Tensor r = y - matmul(x, w);
      const Tensor sq = sum(r * r);
      const Tensor unrelated = exp(other);  // touches nothing of the run: moved before it
      const Tensor total = sum(r);
      const Tensor g = matmul(x.t(), r);
      return std::vector<Tensor>{sq * 0.5, g * total, unrelated};  // read after the run
    };
    auto compiled = compile(f);
    Generator gen(8);
    for (int i = 0; i < 6; ++i) {
      for (const Tensor* t : {&x, &y, &w, &other}) {
        const Tensor v = randn(t->shape(), opts, &gen) * (1.0 + i);
        std::memcpy(t->data_ptr(), v.data_ptr(), t->numel() * element_size(dtype));
      }
      const std::vector<Tensor> got = compiled(x, y, w, other), want = f(x, y, w, other);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t k = 0; k < got.size(); ++k)
        EXPECT_EQ(got[k].to_vector<double>(), want[k].to_vector<double>())
            << "call " << i << ", output " << k;
    }
    // X w, the subtraction, r * r, both sums and X^T r: one run.
    EXPECT_EQ(fused_runs(compiled.describe_plans()), std::vector<int>(6, 1))
        << compiled.describe_plans();
    EXPECT_EQ(compiled.stats().fused_calls_per_replay, 6u);
  }
}

// Two chains of different lengths, their calls recorded in turn: each becomes a run of its
// own (the second chain's calls move before the first's run, then gather in turn).
TEST(CompileFunction, InterleavedChainsEachRunFused) {
  const NumThreadsScope one(1);
  const Tensor a = zeros({30000}, f64()), b = zeros({20000}, f64());
  auto f = [](const Tensor& a, const Tensor& b) {
    const Tensor ea = exp(a * 2.0), eb = exp(b * 3.0);
    const Tensor pa = ea + 1.0, pb = eb + 1.0;
    return std::vector<Tensor>{sum(pa), sum(pb)};
  };
  auto compiled = compile(f);
  Generator gen(10);
  for (int i = 0; i < 5; ++i) {
    for (const Tensor* t : {&a, &b}) {
      const Tensor v = randn(t->shape(), f64(), &gen);
      std::memcpy(t->data_ptr(), v.data_ptr(), t->numel() * sizeof(double));
    }
    const std::vector<Tensor> got = compiled(a, b), want = f(a, b);
    for (std::size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k].item(), want[k].item());
  }
  // In recorded order (a * 2, its exp, b * 3, its exp, then the adds and the sums in turn):
  // b's run replays first.
  EXPECT_EQ(fused_runs(compiled.describe_plans()), (std::vector<int>{2, 2, 1, 1, 2, 1, 2, 1}))
      << compiled.describe_plans();
}

// Five sums of the same elements: a run holds at most four reductions (each carries its own
// accumulators); the fifth comes after it, in a run with the product that reads the first
// sum (which the first run writes only after its last tile). Every output keeps its eager bits.
TEST(CompileFunction, AFusedRunHoldsAtMostFourSumsAndNoReaderOfThem) {
  const NumThreadsScope one(1);
  const std::int64_t n = 30000;
  const Tensor x = zeros({n}, f64());
  auto f = [](const Tensor& x) {
    std::vector<Tensor> out;
    for (int k = 1; k <= 5; ++k) out.push_back(sum(x * static_cast<double>(k)));
    out.push_back(x * out[0]);
    return out;
  };
  auto compiled = compile(f);
  Generator gen(9);
  for (int i = 0; i < 5; ++i) {
    const Tensor v = randn({n}, f64(), &gen);
    std::memcpy(x.data_ptr(), v.data_ptr(), n * sizeof(double));
    const std::vector<Tensor> got = compiled(x), want = f(x);
    ASSERT_EQ(got.size(), 6u);
    for (std::size_t k = 0; k < got.size(); ++k)
      EXPECT_EQ(got[k].to_vector<double>(), want[k].to_vector<double>()) << "output " << k;
  }
  EXPECT_EQ(fused_runs(compiled.describe_plans()),
            (std::vector<int>{1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2}))
      << compiled.describe_plans();
}

// With the pool's threads a long sum is added in per-thread slices: fused, each thread takes
// its slice through the whole run and the slices' sums are added in the same order.
TEST(CompileFunction, ALongSumOnSeveralThreadsKeepsItsSlices) {
  const NumThreadsScope two(2);
  const std::int64_t n = 200000;
  Generator gen(4);
  // float64, values over many magnitudes: another order of the adds shows in the last bits.
  auto f = [](const Tensor& x) { return sum(exp(x * 8.0) + 1.0); };
  auto compiled = compile(f);
  for (int i = 0; i < 5; ++i) {
    const Tensor x = randn({n}, f64(), &gen);
    EXPECT_EQ(compiled(x).item(), f(x).item()) << "call " << i;
  }
  EXPECT_EQ(compiled.stats().fused_calls_per_replay, 4u) << compiled.describe_plans();
}

// What lives within one fused run alone (written whole by the run, read by no call after it
// and by nothing outside the replay) is kept to one tile per thread: each thread writes a
// tile of it over the one before, and it never goes out to memory. An intermediate that a
// call after the run reads (a scan, which runs on its own) and the function's outputs keep
// their memory. The eager function's bits on one thread and on two, in both precisions, with
// new values at every call; without fusing, or without shared buffers (whose analysis finds
// what may live in a tile), nothing is kept to a tile, and the bits are the same.
TEST(CompileFunction, WhatLivesWithinAFusedRunStaysInATilePerThread) {
  const std::int64_t n = 100003;  // tiles of 2048, a last short one
  auto f = [](const Tensor& x) {
    const Tensor y = exp(x * 0.5);  // read after the run, by the scan
    return std::vector<Tensor>{sum(y * 2.0 + x), cumsum(y, 0), y * 3.0};
  };
  Generator gen(9);
  for (const DType dtype : {kFloat32, kFloat64}) {
    for (const int threads : {1, 2}) {
      SCOPED_TRACE(::testing::Message() << dtype << ", " << threads << " threads");
      const NumThreadsScope scope(threads);
      auto compiled = compile(f);
      auto unfused = compile(f, CompileOptions{.fuse = false});
      auto unshared = compile(f, CompileOptions{.share_buffers = false});
      for (int i = 0; i < 5; ++i) {
        const Tensor x = randn({n}, TensorOptions{}.with_dtype(dtype), &gen);
        const std::vector<Tensor> want = f(x);
        for (auto* g : {&compiled, &unfused, &unshared}) {
          const std::vector<Tensor> got = (*g)(x);
          ASSERT_EQ(got.size(), want.size());
          for (std::size_t k = 0; k < want.size(); ++k) {
            EXPECT_TRUE(got[k].to(kFloat64).to_vector<double>() ==
                        want[k].to(kFloat64).to_vector<double>())
                << "call " << i << ", output " << k;
          }
        }
      }
      // x * 0.5 and y * 2.0 (one buffer: the first's last reader comes before the second's
      // writer), and y * 2.0 + x: two buffers of n elements in a tile; not y, nor the outputs.
      const CompileStats stats = compiled.stats();
      EXPECT_EQ(stats.tile_buffers, 2u) << compiled.describe_plans();
      EXPECT_EQ(stats.tile_bytes, 2u * n * element_size(dtype));
      EXPECT_GE(stats.fused_calls_per_replay, 5u) << compiled.describe_plans();
      EXPECT_EQ(unfused.stats().tile_buffers, 0u);
      EXPECT_EQ(unshared.stats().tile_buffers, 0u);
    }
  }
}

// A call that repeats an earlier one (the same kernel on the same memory, nothing written
// there in between) copies the earlier call's result at replay; once the memory it read is
// written (here in place, through the launcher, as an accumulation writes), the next such call
// computes again, and the one after copies that. The eager function's bits either way, with
// new values in the input at every call, in both precisions, for rows short and long enough
// that the elementwise calls (and the copies standing for them) run fused over tiles.
TEST(CompileFunction, ARepeatedCallCopiesTheEarlierResultUntilItsOperandChanges) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (std::int64_t cols : {7, 20000}) {
      SCOPED_TRACE(::testing::Message() << dtype << ", rows of " << cols);
      auto f = [](const Tensor& x) {
        const Tensor h = x * 2.0;
        const Tensor e1 = log_softmax(h, -1), e2 = log_softmax(h, -1);
        const Tensor s1 = exp(h), s2 = exp(h);
        detail::backend(h).binary(kernels::BinaryOp::Add, detail::arg(h), detail::arg(h),
                                  detail::arg(x));  // h += x, in place
        const Tensor e3 = log_softmax(h, -1), e4 = log_softmax(h, -1);
        const Tensor s3 = exp(h), s4 = exp(h);
        return stack({e1, e2 * 2.0, e3 * 3.0, e4 * 4.0, s1, s2 * 2.0, s3 * 3.0, s4 * 4.0});
      };
      auto compiled = compile(f);
      auto plain = compile(f, CompileOptions{.merge_repeats = false});
      for (int i = 0; i < 5; ++i) {
        const Tensor x = randn({3, cols}, TensorOptions{}.with_dtype(dtype)) * (0.5 + 0.2 * i);
        const Tensor want = f(x);
        EXPECT_EQ(compiled(x).to_vector<double>(), want.to_vector<double>()) << "call " << i;
        EXPECT_EQ(plain(x).to_vector<double>(), want.to_vector<double>()) << "call " << i;
      }
      // e2 copies e1, s2 s1, e4 e3 and s4 s3; e3 and s3 read h after the write, and compute.
      const std::string listing = compiled.describe_plans();
      EXPECT_EQ(compiled.stats().merged_calls_per_replay, 4u) << listing;
      std::size_t copies = 0;
      for (std::size_t at = listing.find("(copies "); at != std::string::npos;
           at = listing.find("(copies ", at + 1))
        ++copies;
      EXPECT_EQ(copies, 4u) << listing;
      if (cols > 7) EXPECT_GT(compiled.stats().fused_calls_per_replay, 0u) << listing;
      EXPECT_EQ(plain.stats().merged_calls_per_replay, 0u);
      EXPECT_EQ(plain.describe_plans().find("(copies "), std::string::npos);
    }
  }
}

TEST(CompileFunction, DrawsParamsAndSeveralOutputs) {
  ParamStore store;
  const ParamStoreScope scope(store);
  auto f = [](const Tensor& x) {
    const Tensor w = param("w", full({3}, 0.5, f64()));
    const Tensor noise = randn({3}, f64());
    return std::vector<Tensor>{x * w + noise, sum(x * w), x};
  };
  auto compiled = compile(f);
  set_rng_seed(11);
  std::vector<std::vector<double>> eager;
  for (int i = 0; i < 5; ++i) {
    const Tensor x = full({3}, 1.0 + i, f64());
    if (i == 3) store.unconstrained("w").data<double>()[0] = 2.0;  // changed in place
    for (const Tensor& t : f(x)) eager.push_back(t.to_vector<double>());
  }
  store.set("w", full({3}, 0.5, f64()));
  set_rng_seed(11);
  std::vector<std::vector<double>> replayed;
  for (int i = 0; i < 5; ++i) {
    const Tensor x = full({3}, 1.0 + i, f64());
    if (i == 3) store.unconstrained("w").data<double>()[0] = 2.0;
    const std::vector<Tensor> outs = compiled(x);
    ASSERT_EQ(outs.size(), 3u);
    for (const Tensor& t : outs) replayed.push_back(t.to_vector<double>());
  }
  EXPECT_EQ(replayed, eager);
  EXPECT_GE(compiled.stats().replays, 2);
}

// An optimizer step inside a compiled function would not be replayed (the update launches
// outside the plan, as SVI's does after each replay): the recording call says so, naming the
// optimizer, instead of replays that leave the parameters where they were.
TEST(CompileFunction, AnOptimizerStepInsideIsACompileError) {
  Tensor w = zeros({4}, f64()).requires_grad_();
  sum(w * 2.0).backward();
  optim::SGD opt({.lr = 0.1});
  auto compiled = compile([&](const Tensor& x) {
    opt.step({{"w", w}});
    return x * w;
  });
  const Tensor x = ones({4}, f64());
  EXPECT_EQ(compiled(x).to_vector<double>(), std::vector<double>(4, -0.2));  // eager, first
  EMBER_EXPECT_THROW_WITH(compiled(x), CompileError, "optim.SGD.step",
                          "an optimizer step inside a compiled function (ember::compile)");
  EXPECT_EQ(w.to_vector<double>(), std::vector<double>(4, -0.2));  // refused before updating
}

// Callers with param stores of their own (tenants of a service, each thread with its store
// current) each get a plan of their own for the same input shape, and replay it: calls
// alternating between two stores, on one thread and then on two at once, give each store's
// eager values, and after the first calls every call is a replay.
TEST(CompileFunction, EachParamStoreReplaysAPlanOfItsOwnOnEveryThread) {
  auto f = [](const Tensor& x) { return x * param("w", full({3}, 0.5, f64())) + 1.0; };
  ParamStore stores[2];
  stores[0].set("w", full({3}, 2.0, f64()));
  stores[1].set("w", full({3}, -3.0, f64()));
  auto compiled = compile(f);
  auto call = [&](int k, double v) {
    const ParamStoreScope scope(stores[k]);
    const Tensor x = full({3}, v, f64());
    EXPECT_EQ(compiled(x).to_vector<double>(), f(x).to_vector<double>()) << "store " << k;
  };
  for (int i = 0; i < 8; ++i) call(i % 2, 1.0 + i);
  EXPECT_EQ(compiled.stats().plans, 2u);
  EXPECT_EQ(compiled.stats().recordings, 2);
  EXPECT_EQ(compiled.stats().replays, 5);
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k)
    threads.emplace_back([&, k] {
      for (int i = 0; i < 20; ++i) call(k, 0.25 * i);
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(compiled.stats().recordings, 2);
  EXPECT_EQ(compiled.stats().replays, 45);
}

// A module trained outside the function (its weights updated in place between calls): what is
// computed from the weights alone is not frozen at the recording, since they require grad.
// Tensors captured without requiring grad are constants; an absent optional argument is part
// of the key.
TEST(CompileFunction, WeightsUpdatedInPlaceAndOptionalArguments) {
  Generator init(2);
  nn::Linear layer(3, 2, true, f64(), &init);
  auto f = [&](const Tensor& x, const Tensor& offset) {
    const Tensor y = layer(x) + sum(layer.weight());
    return offset.defined() ? y + offset : y;
  };
  auto compiled = compile(f);
  const Tensor x = ones({4, 3}, f64());
  for (int i = 0; i < 5; ++i) {
    layer.weight().data<double>()[0] += 0.25;  // as an optimizer step would
    EXPECT_EQ(compiled(x, Tensor()).to_vector<double>(), f(x, Tensor()).to_vector<double>()) << i;
  }
  const Tensor offset = full({2}, 3.0, f64());
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(compiled(x, offset).to_vector<double>(), f(x, offset).to_vector<double>()) << i;
  EXPECT_EQ(compiled.stats().plans, 2u);
}

// One compiled function shared by threads (a service's encoder): calls take turns, each
// returns its own input's result.
TEST(CompileFunction, CallsFromSeveralThreadsTakeTurns) {
  Generator init(6);
  nn::Linear layer(4, 3, true, f64(), &init);
  auto f = [&](const Tensor& x) { return tanh(layer(x)); };
  auto compiled = compile(f);
  std::vector<Tensor> inputs, expected;
  for (int t = 0; t < 4; ++t) {
    inputs.push_back(full({5, 4}, 0.1 * (t + 1), f64()));
    expected.push_back(f(inputs.back()));
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (compiled(inputs[t]).to_vector<double>() != expected[t].to_vector<double>())
          ++mismatches[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
  EXPECT_GT(compiled.stats().replays, 150);
}

// A compiled function called inside another runs as it is, so that the outer recording
// records its kernel calls: the outer replays give the eager values for every new input
// (before, the inner call replayed its own plan unseen by the outer recording, whose replays
// then returned the recorded call's values for good).
TEST(CompileFunction, AFunctionCalledInsideAnotherIsPartOfItsPlan) {
  auto inner = compile([](const Tensor& t) { return exp(t) * 2.0; });
  auto outer = compile([&](const Tensor& t) { return inner(t) + 1.0; });
  for (int i = 0; i < 6; ++i) {
    const Tensor x = full({3}, 0.5 * i, f64());
    EXPECT_EQ(outer(x).to_vector<double>(), (exp(x) * 2.0 + 1.0).to_vector<double>())
        << "call " << i;
  }
  EXPECT_EQ(outer.stats().recordings, 1);
  EXPECT_EQ(outer.stats().replays, 4);
  // The outer eager call and its recording ran the inner function as it is; its own plans
  // are untouched, and it compiles as usual when called on its own.
  EXPECT_EQ(inner.stats().inline_calls, 2);
  EXPECT_EQ(inner.stats().recordings, 0);
  const Tensor x = full({3}, 0.25, f64());
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(inner(x).to_vector<double>(), (exp(x) * 2.0).to_vector<double>());
  EXPECT_EQ(inner.stats().replays, 2);
  EXPECT_EQ(inner.stats().inline_calls, 2);
}

// One thread calls a compiled function on its own (its plan replays) while another calls it
// inside another compiled function (run as it is, part of the outer plan): the inner runs
// take no lock and touch none of its plans, so both threads get their eager values.
TEST(CompileFunction, AFunctionCalledInsideAnotherOnOneThreadAndAloneOnAnother) {
  auto inner = compile([](const Tensor& t) { return tanh(t) * 3.0; });
  auto outer = compile([&](const Tensor& t) { return inner(t * 0.5) - 1.0; });
  std::vector<int> wrong(2, 0);
  std::thread alone([&] {
    for (int i = 0; i < 200; ++i) {
      const Tensor x = full({6}, 0.01 * i, f64());
      if (inner(x).to_vector<double>() != (tanh(x) * 3.0).to_vector<double>()) ++wrong[0];
    }
  });
  std::thread nested([&] {
    for (int i = 0; i < 200; ++i) {
      const Tensor x = full({6}, -0.02 * i, f64());
      if (outer(x).to_vector<double>() != (tanh(x * 0.5) * 3.0 - 1.0).to_vector<double>())
        ++wrong[1];
    }
  });
  alone.join();
  nested.join();
  EXPECT_EQ(wrong, std::vector<int>(2, 0));
  EXPECT_EQ(outer.stats().replays, 198);
  EXPECT_EQ(inner.stats().replays, 198);
  EXPECT_EQ(inner.stats().inline_calls, 2);
}

// A compiled encoder (compiled to serve batches) called in a guide runs as part of the step,
// with the step's gradients: its weights train as the plain module's do, in an eager SVI and
// in a compiled one, to the same bits.
TEST(CompileFunction, ACompiledEncoderInAGuideTrainsAsThePlainModuleDoes) {
  Generator data(21);
  const std::int64_t n = 12;
  const Tensor xs = randn({n, 2}, f64(), &data);
  const Tensor ys = xs.select(1, 0) * 1.5 - xs.select(1, 1) * 0.5;
  auto args = [&](int) { return std::make_tuple(xs, ys); };
  auto model = [](const Tensor&, const Tensor& y) {
    auto points = plate("data", y.size(0));
    const Tensor z = sample("z", dist::Normal(zeros({y.size(0)}, f64()), 1.0));
    sample("y", dist::Normal(z, 0.5), y);
  };
  auto fit_with = [&](bool compiled_encoder, bool compiled_svi) {
    Generator init(4);
    nn::Linear encoder(2, 1, true, f64(), &init);
    const std::vector<double> before = encoder.weight().to_vector<double>();
    auto encode = compile([&](const Tensor& x) { return encoder(x); });
    auto guide = [&](const Tensor& x, const Tensor&) {
      module("encoder", encoder);
      auto points = plate("data", x.size(0));
      const Tensor loc = (compiled_encoder ? encode(x) : encoder(x)).squeeze(-1);
      sample("z", dist::Normal(loc, 0.3));
    };
    Fit f = fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), compiled_svi, 10, args);
    EXPECT_NE(encoder.weight().to_vector<double>(), before) << "the encoder did not train";
    if (compiled_encoder) EXPECT_GT(encode.stats().inline_calls, 0);
    return f;
  };
  const Fit plain = fit_with(false, false);
  const Fit eager = fit_with(true, false);  // an eager SVI: the same losses and weights
  EXPECT_EQ(plain.losses, eager.losses);
  EXPECT_EQ(plain.params, eager.params);
  expect_identical(plain, fit_with(true, true));
}

// A compiled function that calls itself (through a reference to the compiled object) runs
// its inner calls as they are, instead of waiting forever for its own lock.
TEST(CompileFunction, AFunctionCallingItselfRunsItsInnerCallsAsTheyAre) {
  std::function<Tensor(const Tensor&)> again;
  auto halves = compile([&](const Tensor& t) {
    const std::int64_t n = t.size(0);
    return n == 1 ? t * 2.0 : again(t.narrow(0, 0, n / 2)) + sum(t.narrow(0, n / 2, n - n / 2));
  });
  again = [&](const Tensor& t) { return halves(t); };
  auto expected = [](const std::vector<double>& v) {  // the recursion, by hand
    double r = v[0] * 2.0;
    for (std::size_t n = 2; n <= v.size(); n *= 2) {
      double tail = 0.0;
      for (std::size_t k = n / 2; k < n; ++k) tail += v[k];
      r += tail;
    }
    return r;
  };
  for (int i = 0; i < 5; ++i) {
    std::vector<double> v = {1.0 + i, 2.0, 3.0 * i, 4.0, -1.0, 0.5, 7.0, i - 2.0};
    const Tensor got = halves(from_vector(v, {8}, f64()));
    ASSERT_EQ(got.numel(), 1);
    EXPECT_DOUBLE_EQ(got.to_vector<double>()[0], expected(v)) << "call " << i;
  }
  EXPECT_EQ(halves.stats().recordings, 1);
  EXPECT_EQ(halves.stats().replays, 3);
  EXPECT_EQ(halves.stats().inline_calls, 6);  // three inner calls in each of the first two
}

// A compiled function the model calls (a feature transform) is part of a compiled SVI step:
// its kernel calls go into the step's plan, and the fit is the eager fit, bit for bit, with
// new data at every step.
TEST(CompileFunction, AFunctionCalledByACompiledModelIsPartOfTheStep) {
  auto standardize = compile([](const Tensor& x) { return (x - 1.0) * 0.5; });
  auto model = [&](const Tensor& x, const Tensor& y) {
    const Tensor w = sample("w", dist::Normal(zeros({}, f64()), 1.0));
    auto data = plate("data", x.size(0));
    sample("y", dist::Normal(standardize(x) * w, 1.0), y);
  };
  auto guide = [](const Tensor&, const Tensor&) {
    const Tensor loc = param("loc", zeros({}, f64()));
    const Tensor scale = param("scale", ones({}, f64()), constraints::positive);
    sample("w", dist::Normal(loc, scale));
  };
  Generator data(7);
  std::vector<Tensor> xs, ys;
  for (int i = 0; i < 12; ++i) {
    xs.push_back(randn({8}, f64(), &data) + 1.0);
    ys.push_back((xs.back() - 1.0) * 1.5 + randn({8}, f64(), &data) * 0.1);
  }
  auto args = [&](int i) { return std::make_tuple(xs[i], ys[i]); };
  const Fit eager = fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), false, 12, args);
  const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), true, 12, args);
  expect_identical(eager, compiled);
  // The model ran 12 times in the eager fit, and twice in the compiled one (its first step,
  // eager, and the recording); replays do not run it.
  EXPECT_EQ(standardize.stats().inline_calls, 14);
  EXPECT_EQ(standardize.stats().recordings, 0);
}

// An SVI step inside a compiled function would update the parameters at the recording call
// and never at a replay: the recording call says so, for an eager and a compiled SVI alike
// (the compiled one's step would otherwise replay its own plan unseen). A compiled SVI's
// loss evaluated inside a compiled function is part of its plan: the replays give the eager
// evaluations for new data.
TEST(CompileFunction, AnSviStepInsideIsACompileErrorAndALossEvaluationIsPartOfThePlan) {
  auto model = [](const Tensor& y) {
    const Tensor m = sample("m", dist::Normal(zeros({}, f64()), 1.0));
    auto data = plate("data", y.size(0));
    sample("y", dist::Normal(m, 1.0), y);
  };
  auto guide = [](const Tensor&) {
    sample("m", dist::Normal(param("loc", zeros({}, f64())), 0.5));
  };
  const Tensor y = full({4}, 0.5, f64());
  for (const bool compiled_svi : {false, true}) {
    SCOPED_TRACE(compiled_svi ? "compiled SVI" : "eager SVI");
    ParamStore store;
    SVI svi(model, guide, optim::SGD({.lr = 0.01}), Trace_ELBO(), {.param_store = &store});
    if (compiled_svi) svi.compile();
    for (int i = 0; i < 3; ++i) svi.step(y);
    auto stepping = compile([&](const Tensor& t) {
      svi.step(t);
      return t * 2.0;
    });
    EXPECT_EQ(stepping(y).to_vector<double>(), std::vector<double>(4, 1.0));  // eager
    const double loc = store.get("loc").to_vector<double>()[0];
    EMBER_EXPECT_THROW_WITH(stepping(y), CompileError, "SVI.step", "being recorded on this thread");
    EXPECT_EQ(store.get("loc").to_vector<double>()[0], loc);  // refused before any update
    EXPECT_NO_THROW(svi.step(y));                             // and usable after

    auto monitor = compile([&](const Tensor& t) { return svi.evaluate_loss(t).tensor(); });
    for (int i = 0; i < 5; ++i) {
      const Tensor batch = full({4}, 0.25 * i, f64());
      set_rng_seed(40 + i);
      const double got = monitor(batch).to_vector<double>()[0];
      set_rng_seed(40 + i);
      const double want = svi.evaluate_loss(batch).value();
      EXPECT_EQ(got, want) << "call " << i;
    }
    EXPECT_EQ(monitor.stats().replays, 3);
  }
}

// Inputs that are views of one storage (the same tensor passed twice, two halves of one
// tensor) are read by a plan through one another's pointers: the key says how they share
// memory, so a call with separate tensors records a plan of its own instead of replaying one
// that reads the first input's memory for both.
TEST(CompileFunction, InputsSharingMemoryAreKeyedByHowTheyShareIt) {
  auto f = [](const Tensor& a, const Tensor& b) { return a * 2.0 + b; };
  auto compiled = compile(f);
  const Tensor x = tensor({1.0, 2.0, 3.0}, f64());
  const Tensor halves = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, f64());
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(compiled(x, x).to_vector<double>(), f(x, x).to_vector<double>());
    for (int i = 0; i < 3; ++i) {
      const Tensor a = full({3}, 1.0 + i, f64()), b = full({3}, 10.0 * (i + 1), f64());
      EXPECT_EQ(compiled(a, b).to_vector<double>(), f(a, b).to_vector<double>()) << i;
      EXPECT_EQ(compiled(b, b).to_vector<double>(), f(b, b).to_vector<double>()) << i;
    }
    for (int i = 0; i < 3; ++i) {
      const Tensor a = halves.narrow(0, 0, 3), b = halves.narrow(0, 3, 3);
      EXPECT_EQ(compiled(a, b).to_vector<double>(), f(a, b).to_vector<double>()) << i;
    }
  }
  EXPECT_EQ(compiled.stats().plans, 3u);
}

// A captured tensor that the inputs are views of (batches sliced from the data set the
// program also reads whole) stays a constant of the plan: the replays read it where it is,
// not at the recorded distance from each new batch (which read other elements, and beyond
// its end).
TEST(CompileFunction, AnInputThatIsAViewOfACapturedTensorLeavesTheTensorConstant) {
  const Tensor data = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}, f64());
  auto f = [&](const Tensor& batch) { return batch * 2.0 + sum(data * data); };
  auto compiled = compile(f);
  for (int i = 0; i < 7; ++i) {
    const Tensor batch = data.narrow(0, i, 2);
    EXPECT_EQ(compiled(batch).to_vector<double>(), f(batch).to_vector<double>()) << "call " << i;
  }
  EXPECT_EQ(compiled.stats().replays, 5);
}

// The same in a compiled SVI step: the model reads the data set whole (to standardize the
// responses) and steps on batches sliced from it; the fit is the eager fit, bit for bit.
TEST(CompileFunction, BatchesSlicedFromDataTheModelReadsWholeReplayBitForBit) {
  Generator gen(12);
  const std::int64_t n = 64, batch = 16;
  const Tensor xs = randn({n}, f64(), &gen);
  const Tensor ys = xs * 3.0 + 5.0 + randn({n}, f64(), &gen) * 0.2;
  auto model = [&](const Tensor& x, const Tensor& y) {
    const Tensor w = sample("w", dist::Normal(zeros({}, f64()), 10.0));
    const Tensor center = sum(ys) * (1.0 / n);
    auto data = plate("data", x.size(0));
    sample("y", dist::Normal(x * w, 1.0), y - center);
  };
  auto guide = [](const Tensor&, const Tensor&) {
    const Tensor loc = param("loc", zeros({}, f64()));
    const Tensor scale = param("scale", full({}, 0.5, f64()), constraints::positive);
    sample("w", dist::Normal(loc, scale));
  };
  auto args = [&](int i) {
    const std::int64_t at = (i % (n / batch)) * batch;
    return std::make_tuple(xs.narrow(0, at, batch), ys.narrow(0, at, batch));
  };
  const Fit eager = fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), false, 16, args);
  const Fit compiled = fit(model, guide, optim::Adam({.lr = 0.05}), Trace_ELBO(), true, 16, args);
  expect_identical(eager, compiled);
}

// A function that makes a parameter, called with each of two stores current in turn: the
// first call in the second store makes it there as an eager call does, the recording it was
// part of is dropped, and a later call records (it was a CompileError at every call).
TEST(CompileFunction, AParamMadeInAnotherStoreIsMadeAsEagerlyAndALaterCallRecords) {
  auto f = [](const Tensor& x) {
    return x * param("w", full({3}, 0.5, f64())) +
           param("s", full({3}, 2.0, f64()), constraints::positive);
  };
  auto compiled = compile(f);
  ParamStore a, b;
  const Tensor x = full({3}, 2.0, f64());
  for (int i = 0; i < 4; ++i) {
    for (ParamStore* store : {&a, &b}) {
      const ParamStoreScope scope(*store);
      EXPECT_EQ(compiled(x).to_vector<double>(), std::vector<double>(3, 3.0)) << "call " << i;
    }
  }
  EXPECT_EQ(compiled.stats().plans, 2u);
  EXPECT_EQ(compiled.stats().discarded, 1);  // b's first call
  EXPECT_EQ(compiled.stats().replays, 4);
}

// An index passed to the function (or computed from one) is checked at every replay: out of
// range, the call throws the eager op's error instead of reading outside the table. An index
// the plan holds as a constant is checked once, when recorded (its check is hoisted).
TEST(CompileFunction, AnIndexOutOfRangeInAReplayThrowsTheEagerError) {
  const Tensor table = arange(0.0, 5.0, 1.0, f64());
  const auto i64 = TensorOptions{}.with_dtype(kInt64);
  auto compiled = compile([&](const Tensor& idx) { return index_select(table, 0, idx + 1); });
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(compiled(full({2}, double(i), i64)).to_vector<double>(),
              std::vector<double>(2, i + 1.0));
  for (const double bad : {4.0, 1e9, -2.0}) {
    const Tensor idx = full({2}, bad, i64);
    EMBER_EXPECT_THROW_WITH(index_select(table, 0, idx + 1), ValueError, "index_select: index ",
                            "is out of range for dim 0 of size 5 (tensor shape (5))");
    EMBER_EXPECT_THROW_WITH(compiled(idx), ValueError, "index_select: index ",
                            "is out of range for dim 0 of size 5 (tensor shape (5))");
  }
  EXPECT_EQ(compiled(full({2}, 3.0, i64)).to_vector<double>(), std::vector<double>(2, 4.0));
  EXPECT_EQ(compiled.stats().replays, 2);
  EXPECT_NE(compiled.describe_plans().find("index check"), std::string::npos);

  const Tensor picks = tensor({4.0, 0.0}, i64);
  auto constant = compile([&](const Tensor& x) { return index_select(table, 0, picks) * x; });
  for (int i = 0; i < 3; ++i) constant(full({2}, 2.0, f64()));
  const std::string listing = constant.describe_plans();
  EXPECT_NE(listing.find("(hoisted) index check"), std::string::npos) << listing;
  EXPECT_EQ(constant.stats().calls_per_replay, 1u) << listing;  // the product alone
}

// Handlers around a call (condition, trace) see the function's sites at every call: the
// function runs as it is, neither recorded nor replayed, and a call without them after does
// not keep what they did.
TEST(CompileFunction, UnderHandlersTheFunctionRunsAsItIs) {
  auto f = [](const Tensor& x) { return sample("z", dist::Normal(x, 1.0)); };
  auto compiled = compile(f);
  const Tensor x = zeros({2}, f64());
  const Tensor fixed = full({2}, 42.0, f64());
  auto conditioned =
      handlers::condition([&](const Tensor& a) { return compiled(a); }, {{"z", fixed}});
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(conditioned(x).to_vector<double>(), std::vector<double>(2, 42.0)) << "call " << i;
  EXPECT_EQ(compiled.stats().recordings, 0);
  set_rng_seed(8);
  const std::vector<double> want = f(x).to_vector<double>();
  for (int i = 0; i < 3; ++i) compiled(x);
  const std::int64_t replays = compiled.stats().replays;
  EXPECT_GE(replays, 1);
  set_rng_seed(8);
  EXPECT_EQ(compiled(x).to_vector<double>(), want);  // a draw, replayed
  EXPECT_EQ(compiled.stats().replays, replays + 1);
  for (int i = 0; i < 3; ++i) {
    const Trace tr = handlers::trace([&](const Tensor& a) { return compiled(a); }).get_trace(x);
    EXPECT_EQ(tr.size(), 1u) << "call " << i;
  }
  EXPECT_EQ(compiled.stats().replays, replays + 1);
}

// Every call returns tensors of its own, the first (eager) one too: an input returned as it
// is, or a tensor the function captured, is copied.
TEST(CompileFunction, EveryCallReturnsTensorsOfItsOwn) {
  const Tensor captured = full({2}, 3.0, f64());
  auto identity = compile([](const Tensor& x) { return x; });
  auto constant = compile([&](const Tensor&) { return captured; });
  const Tensor x = full({2}, 1.0, f64());
  for (int i = 0; i < 3; ++i) {
    const Tensor out = identity(x);
    EXPECT_NE(out.data_ptr(), x.data_ptr()) << "call " << i;
    EXPECT_EQ(out.to_vector<double>(), x.to_vector<double>());
    const Tensor c = constant(x);
    EXPECT_NE(c.data_ptr(), captured.data_ptr()) << "call " << i;
    EXPECT_EQ(c.to_vector<double>(), captured.to_vector<double>());
  }
}

TEST(CompileFunction, StructureChangesAndHostReadsAreCompileErrors) {
  bool doubled = false;
  auto f = [&](const Tensor& x) { return doubled ? x * 2.0 : x + 1.0; };
  auto compiled = compile(f, {.verify_every = 4});
  const Tensor x = ones({2}, f64());
  for (int i = 0; i < 3; ++i) compiled(x);
  doubled = true;
  EMBER_EXPECT_THROW_WITH(compiled(x), CompileError, "verify_every = 4",
                          "differs from its compiled plan");

  auto reads = compile([](const Tensor& t) { return t * (sum(t).item() > 0 ? 1.0 : -1.0); });
  reads(x);
  EMBER_EXPECT_THROW_WITH(reads(x), CompileError, "read a tensor's value on the host");
  EMBER_EXPECT_THROW_WITH(compile([](const Tensor& t) { return t; }, {.max_plans = 0}), ValueError,
                          "max_plans");
}

}  // namespace
}  // namespace ember
