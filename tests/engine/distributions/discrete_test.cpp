// What the family table (families_test.cpp) leaves out of the discrete families: log_prob at
// the edges of the parameters, degenerate draws, probs and logits given one and read as the
// other, and Categorical's batches of rows.
#include <cmath>

#include "reference.hpp"
#include "test_util.hpp"

namespace ember::test {
namespace {

Tensor bools(std::vector<std::uint8_t> v) {
  const auto n = static_cast<std::int64_t>(v.size());
  return from_vector(v, {n}, TensorOptions{}.with_dtype(kBool));
}

// ------------------------------------------------------------------ Bernoulli ----
TEST(Bernoulli, LogProbAtTheEdgesIsExactNotNan) {
  const Tensor value = tensor({0.0, 1.0}, f64());
  // probs 0 and 1: the certain outcome has log-probability 0, the impossible one -inf.
  expect_values(dist::Bernoulli(tensor({0.0, 0.0}, f64())).log_prob(value), {0.0, -INFINITY});
  expect_values(dist::Bernoulli(tensor({1.0, 1.0}, f64())).log_prob(value), {-INFINITY, 0.0});
  // Large logits neither overflow nor round to log(0).
  const auto big = dist::Bernoulli::from_logits(tensor({-100.0, 100.0}, f64()));
  expect_values(big.log_prob(tensor({1.0, 0.0}, f64())), {-100.0, -100.0}, 1e-12);
  expect_values(big.log_prob(tensor({0.0, 1.0}, f64())), {-std::exp(-100.0), -std::exp(-100.0)},
                1e-12);
  // Boolean values are accepted.
  expect_values(dist::Bernoulli(0.25).log_prob(bools({1, 0})), {std::log(0.25), std::log(0.75)},
                1e-6);
}

// With validation off a value between 0 and 1 is scored by the continued formula
// x log p + (1 - x) log(1 - p) (PyTorch's validate_args=False: pixel intensities in a VAE),
// and a value outside [0, 1] is impossible.
TEST(Bernoulli, WithoutValidationAValueBetweenZeroAndOneIsScoredByTheContinuedFormula) {
  const ValidationScope off(false);
  const double expected = 0.25 * std::log(0.2) + 0.75 * std::log(0.8);
  EXPECT_NEAR(dist::Bernoulli(0.2).log_prob(tensor({0.25})).item(), expected, 1e-6);
  EXPECT_NEAR(dist::Bernoulli::from_logits(std::log(0.25)).log_prob(tensor({0.25})).item(),
              expected, 1e-6);
  EXPECT_EQ(dist::Bernoulli(0.2).log_prob(tensor({1.5})).item(), -INFINITY);
  EXPECT_EQ(dist::Binomial(4, 0.5).log_prob(tensor({-0.5})).item(), -INFINITY);
}

TEST(Bernoulli, CertainProbsDrawTheirOutcomeAndAnUnbatchedSupportIsFlat) {
  Generator gen(99);
  const auto xs = dist::Bernoulli(tensor({0.0, 1.0})).sample({1000}, gen).to_vector<double>();
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(xs[i], i % 2 == 0 ? 0.0 : 1.0);
  EXPECT_EQ(dist::Bernoulli(0.5).enumerate_support().shape(), (Shape{2}));
}

TEST(Bernoulli, ProbsAndLogitsAreBothAvailable) {
  const dist::Bernoulli d(tensor({0.2, 0.5}, f64()));
  expect_values(d.probs(), {0.2, 0.5});
  expect_values(d.logits(), {std::log(0.25), 0.0});
  const auto l = dist::Bernoulli::from_logits(tensor({0.0, std::log(3.0)}, f64()));
  expect_values(l.logits(), {0.0, std::log(3.0)});
  expect_values(l.probs(), {0.5, 0.75});
}

// ------------------------------------------------------------------- Binomial ----
TEST(Binomial, LogProbAtTheEdgesIsExactNotNan) {
  const Tensor value = tensor({0.0, 3.0}, f64());
  expect_values(dist::Binomial(3, tensor({0.0, 0.0}, f64())).log_prob(value), {0.0, -INFINITY});
  expect_values(dist::Binomial(3, tensor({1.0, 1.0}, f64())).log_prob(value), {-INFINITY, 0.0});
  expect_values(dist::Binomial(0, 0.3).log_prob(zeros({1})), {0.0}, 1e-6);
  // Large logits: n * log sigmoid(-l) without overflow or cancellation.
  const auto big = dist::Binomial::from_logits(tensor({10.0}, f64()), tensor({-200.0}, f64()));
  expect_values(big.log_prob(tensor({0.0}, f64())), {-10 * std::exp(-200.0)}, 1e-12);
  expect_values(big.log_prob(tensor({1.0}, f64())), {std::log(10.0) - 200.0}, 1e-12);
}

TEST(Binomial, DegenerateProbsAndCountsDrawTheirOutcome) {
  Generator gen(77);
  const dist::Binomial edge(tensor({0.0, 4.0, 4.0}), tensor({0.5, 0.0, 1.0}));
  const auto xs = edge.sample({100}, gen).to_vector<double>();
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(xs[i], (i % 3 == 2) ? 4.0 : 0.0);
}

TEST(Binomial, ProbsAndLogitsAreBothAvailable) {
  const dist::Binomial d(tensor({10.0, 4.0}, f64()), tensor({0.2, 0.5}, f64()));
  expect_values(d.total_count(), {10, 4});
  expect_values(d.probs(), {0.2, 0.5});
  expect_values(d.logits(), {std::log(0.25), 0.0});
  const auto l =
      dist::Binomial::from_logits(tensor({10.0, 4.0}, f64()), tensor({std::log(0.25), 0.0}, f64()));
  expect_values(l.probs(), {0.2, 0.5});
}

// ------------------------------------------------------------------ Geometric ----
TEST(Geometric, LogProbAtTheEdgesIsExactNotNan) {
  const dist::Geometric one(tensor({1.0, 1.0}, f64()));
  expect_values(one.log_prob(tensor({0.0, 2.0}, f64())), {0.0, -INFINITY});
  const auto big = dist::Geometric::from_logits(tensor({-100.0, 100.0}, f64()));
  expect_values(big.log_prob(tensor({0.0, 1.0}, f64())), {-100.0, -100.0}, 1e-12);
}

TEST(Geometric, CertainSuccessDrawsZero) {
  Generator gen(5150);
  for (double x : dist::Geometric(1.0).sample({100}, gen).to_vector<double>()) EXPECT_EQ(x, 0.0);
}

TEST(Geometric, ProbsAndLogitsAreBothAvailable) {
  const dist::Geometric d(tensor({0.2, 0.5}, f64()));
  expect_values(d.probs(), {0.2, 0.5});
  expect_values(d.logits(), {std::log(0.25), 0.0});
  const auto l = dist::Geometric::from_logits(tensor({std::log(0.25), 0.0}, f64()));
  expect_values(l.probs(), {0.2, 0.5});
}

// -------------------------------------------------------------------- Poisson ----
TEST(Poisson, LogProbEdgeCases) {
  // rate 0: all mass at 0.
  const dist::Poisson zero(scalar_tensor(0.0, f64()));
  EXPECT_EQ(zero.log_prob(scalar_tensor(0.0, f64())).item(), 0.0);
  EXPECT_EQ(zero.log_prob(scalar_tensor(3.0, f64())).item(), -INFINITY);
  // Integer-typed values are accepted.
  const dist::Poisson d(tensor({2.0}, f64()));
  EXPECT_NEAR(d.log_prob(index_tensor({3})).item(), 3 * std::log(2.0) - 2 - std::log(6.0), 1e-12);
}

TEST(Poisson, DrawsAreReproducibleAndBroadcast) {
  const dist::Poisson d(tensor({0.0, 2.0, 50.0}, f64()));
  expect_values(d.rate(), {0.0, 2.0, 50.0});
  Generator a(3), b(3);
  const Tensor xa = d.sample({4}, a);
  EXPECT_EQ(xa.shape(), (Shape{4, 3}));
  EXPECT_EQ(xa.to_vector<double>(), d.sample({4}, b).to_vector<double>());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(xa.to_vector<double>()[i * 3], 0.0);  // rate 0
}

// ---------------------------------------------------------------- Categorical ----
// Chi-square of category draws against probs (every category with expected count >= 5).
void expect_fits(const std::vector<double>& xs, const std::vector<double>& probs) {
  std::vector<double> counts(probs.size(), 0.0);
  for (double x : xs) {
    ASSERT_TRUE(x >= 0 && x < probs.size() && std::floor(x) == x) << "draw " << x;
    counts[static_cast<std::size_t>(x)] += 1;
  }
  std::vector<double> kept_counts, kept_probs;
  for (std::size_t k = 0; k < probs.size(); ++k) {
    if (probs[k] == 0.0) {
      EXPECT_EQ(counts[k], 0.0) << "category " << k << " has probability 0";
      continue;
    }
    kept_counts.push_back(counts[k]);
    kept_probs.push_back(probs[k]);
  }
  EXPECT_LT(chi_square(kept_counts, kept_probs),
            chi_square_critical_001(static_cast<int>(kept_probs.size()) - 1));
}

Tensor row(const std::vector<double>& v, DType dtype = kFloat64) {
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, TensorOptions{}.with_dtype(dtype));
}

TEST(Categorical, LogProbBroadcastsValuesAgainstTheBatch) {
  // batch (2), K = 3; values (4, 1) broadcast to (4, 2); int64 and float values agree.
  const Tensor probs = tensor({{0.2, 0.3, 0.5}, {0.6, 0.0, 0.4}}, f64());
  const dist::Categorical d(probs);
  EXPECT_EQ(d.batch_shape(), (Shape{2}));
  EXPECT_EQ(d.num_categories(), 3);
  const Tensor v = from_vector(std::vector<std::int64_t>{0, 1, 2, 1}, {4, 1},
                               TensorOptions{}.with_dtype(kInt64));
  const Tensor lp = d.log_prob(v);
  EXPECT_EQ(lp.shape(), (Shape{4, 2}));
  expect_values(lp, {std::log(0.2), std::log(0.6), std::log(0.3), -INFINITY, std::log(0.5),
                     std::log(0.4), std::log(0.3), -INFINITY});
  expect_close(d.log_prob(v.to(kFloat64)), lp);
  // A zero-probability category does not make the gradient nan.
  Tensor p = probs.clone().requires_grad_();
  sum(dist::Categorical(p).log_prob(tensor({2.0, 0.0}, f64()))).backward();
  EXPECT_TRUE(all(isfinite(p.grad())));
  // With validation off, values outside 0..K-1 have probability zero beside valid ones.
  const ValidationScope off(false);
  expect_values(dist::Categorical(tensor({0.2, 0.3, 0.5})).log_prob(tensor({3.0, -1.0, 1.5, 1.0})),
                {-INFINITY, -INFINITY, -INFINITY, std::log(0.3)}, 1e-6);
}

// Unnormalized float32 probabilities across their range: log(p / sum), and where that ratio
// is below float32's normal range the difference of logs, each against double references
// (validation off: it would refuse lines that are not a simplex).
TEST(Categorical, Float32LogProbOfUnnormalizedProbsAtEveryScale) {
  const ValidationScope off(false);
  const std::vector<std::vector<double>> lines{{0.999999, 1e-6},  {3.0, 1.0, 4.0}, {1e-30, 1e10},
                                               {1e-38, 1.0, 2.0}, {0.0, 2.0},      {5e-44, 7.0}};
  for (const auto& line : lines) {
    double total = 0;
    for (double p : line) total += static_cast<double>(static_cast<float>(p));
    for (std::size_t k = 0; k < line.size(); ++k) {
      const double p = static_cast<float>(line[k]);
      const double want = p > 0 ? std::log(p / total) : -INFINITY;
      const double got = dist::Categorical(row(line, kFloat32))
                             .log_prob(scalar_tensor(static_cast<double>(k), TensorOptions{}))
                             .item();
      SCOPED_TRACE("category " + std::to_string(k) + " of a line of " +
                   std::to_string(line.size()) + ", p = " + std::to_string(p));
      if (std::isinf(want)) {
        EXPECT_EQ(got, want);
      } else {
        EXPECT_NEAR(got, want, 2e-6 * std::max(1.0, std::abs(want)));
      }
    }
  }
}

// Many float32 rows at once, whose logs the CPU takes a block of rows at a time: rows at
// every scale, rows whose ratio is below the normal range (the difference of logs), zero
// probabilities, values out of range, a table laid out transposed, and logits. Each row
// matches the double reference and, bit for bit, the same row scored alone.
TEST(Categorical, Float32LogProbOfManyRowsMatchesEachRowAlone) {
  const ValidationScope off(false);
  constexpr std::int64_t kRows = 150, kK = 5;  // more rows than one block, and a partial block
  std::vector<double> probs(kRows * kK), values(kRows);
  for (std::int64_t r = 0; r < kRows; ++r) {
    const double scale = std::pow(10.0, static_cast<double>(r % 9) * 8.0 - 36.0);
    for (std::int64_t k = 0; k < kK; ++k)
      probs[r * kK + k] = static_cast<double>(1 + (r * 7 + k * 3) % 11) * scale;
    if (r % 5 == 0) probs[r * kK] = 1e-40 * scale;  // a ratio below float32's normal range
    if (r % 7 == 0) probs[r * kK + 2] = 0.0;
    values[r] = r % 11 == 0 ? static_cast<double>(kK) : static_cast<double>(r % kK);
    if (r % 5 == 0 && r % 11 != 0) values[r] = 0.0;
  }
  const auto f32 = TensorOptions{}.with_dtype(kFloat32);
  const Tensor table = from_vector(probs, {kRows, kK}, f32);
  const Tensor v = from_vector(values, {kRows}, f64());
  const std::vector<double> lp =
      dist::Categorical(table).log_prob(v).to(kFloat64).to_vector<double>();
  const std::vector<double> transposed =
      dist::Categorical(table.t().contiguous().t()).log_prob(v).to(kFloat64).to_vector<double>();
  const Tensor logits = log(table.to(kFloat64)).to(kFloat32);
  const std::vector<double> from_logits =
      dist::Categorical::from_logits(logits).log_prob(v).to(kFloat64).to_vector<double>();
  const std::vector<float> table32 = table.to_vector<float>();
  const std::vector<float> logits32 = logits.to_vector<float>();
  for (std::int64_t r = 0; r < kRows; ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    double total = 0, max_logit = -INFINITY, exp_sum = 0;
    for (std::int64_t k = 0; k < kK; ++k) {
      total += table32[r * kK + k];
      max_logit = std::max(max_logit, static_cast<double>(logits32[r * kK + k]));
    }
    for (std::int64_t k = 0; k < kK; ++k) exp_sum += std::exp(logits32[r * kK + k] - max_logit);
    const auto k = static_cast<std::int64_t>(values[r]);
    const double p = k < kK ? static_cast<double>(table32[r * kK + k]) : 0.0;
    const double want = p > 0 ? std::log(p / total) : -INFINITY;
    if (std::isinf(want)) {
      EXPECT_EQ(lp[r], want);
      EXPECT_EQ(from_logits[r], want);
    } else {
      EXPECT_NEAR(lp[r], want, 2e-6 * std::max(1.0, std::abs(want)));
      const double want_logits = logits32[r * kK + k] - max_logit - std::log(exp_sum);
      // logit - logsumexp in float32 cancels: its error scales with the largest logit.
      EXPECT_NEAR(from_logits[r], want_logits, 1e-6 * (1.0 + std::abs(max_logit)));
    }
    EXPECT_EQ(transposed[r], lp[r]);
    const double alone = dist::Categorical(table.select(0, r)).log_prob(v.select(0, r)).item();
    EXPECT_EQ(alone, lp[r]);
  }
}

// One row of probabilities shared by every row (expanded, stride 0: a mixture's weights over a
// data plate), whose sum the CPU takes once for all rows: the log-densities, the gradient and
// the draws equal those of the same table copied out row by row, bit for bit. Unnormalized
// float32 weights (their sum rounds), a zero weight (never a value: its gradient would be 0 / 0),
// values out of range (-inf, no gradient), more rows than one block.
TEST(Categorical, SharedRowMatchesItsCopyBitForBit) {
  const ValidationScope off(false);
  constexpr std::int64_t kRows = 300, kK = 7;
  const auto f32 = TensorOptions{}.with_dtype(kFloat32);
  const Tensor weights = tensor({3.0, 0.0, 1e-3, 7.1, 2.5, 0.25, 11.3}, f32);
  std::vector<double> vals(kRows), scale(kRows);
  for (std::int64_t r = 0; r < kRows; ++r) {
    const std::int64_t k = (r * 5) % kK == 1 ? 3 : (r * 5) % kK;  // not the zero weight
    vals[r] = r % 13 == 0 ? static_cast<double>(kK) : static_cast<double>(k);
    scale[r] = 0.5 + static_cast<double>(r % 17) * 0.25;
  }
  const Tensor v = from_vector(vals, {kRows}, f64());
  const Tensor w = from_vector(scale, {kRows}, f32);
  struct Fit {
    std::vector<float> lp, grad;
    std::vector<std::int64_t> draws;
  };
  auto fit = [&](bool shared) {
    const Tensor row = weights.clone().requires_grad_();
    const Tensor table = shared ? row.expand({kRows, kK}) : row.expand({kRows, kK}).contiguous();
    const dist::Categorical d(table);
    const Tensor lp = d.log_prob(v);
    sum(where(isfinite(lp), lp, 0.0) * w).backward();
    Generator gen(11);
    return Fit{lp.to_vector<float>(), row.grad().to_vector<float>(),
               d.sample({4}, gen).to_vector<std::int64_t>()};
  };
  const Fit shared = fit(true), copied = fit(false);
  EXPECT_EQ(shared.lp, copied.lp);
  EXPECT_EQ(shared.grad, copied.grad);
  EXPECT_EQ(shared.draws, copied.draws);
  // And the numbers are right: the log-densities against the double reference, the draws
  // never the zero weight.
  const std::vector<float> w32 = weights.to_vector<float>();
  double total = 0;
  for (float x : w32) total += x;
  for (std::int64_t r = 0; r < kRows; ++r) {
    const auto k = static_cast<std::int64_t>(vals[r]);
    const double want = k < kK ? std::log(w32[k] / total) : -INFINITY;
    if (std::isinf(want)) {
      EXPECT_EQ(shared.lp[r], want) << "row " << r;
    } else {
      EXPECT_NEAR(shared.lp[r], want, 2e-6 * std::max(1.0, std::abs(want))) << "row " << r;
    }
  }
  for (std::int64_t x : shared.draws) EXPECT_NE(x, 1);
}

TEST(Categorical, DrawsFitTheProbs) {
  Generator gen(31337);
  const std::vector<double> probs{0.1, 0.2, 0.0, 0.3, 0.4};
  for (DType dtype : {kFloat64, kFloat32}) {
    for (const dist::Categorical& d :
         {dist::Categorical(row(probs, dtype)),
          dist::Categorical::from_logits(log(row(probs, dtype)) + 2.0)}) {
      const Tensor draws = d.sample({40000}, gen);
      EXPECT_EQ(draws.dtype(), kInt64);
      EXPECT_EQ(draws.shape(), (Shape{40000}));
      expect_fits(draws.to_vector<double>(), probs);
    }
  }
  // Each batch row draws from its own probs: batch (2, 3), sample shape (10000).
  const Tensor table = tensor({{0.7, 0.2, 0.1}, {0.1, 0.1, 0.8}}, f64());
  const dist::Distribution d = dist::Categorical(table.unsqueeze(1)).expand({2, 3});
  const Tensor draws = d.sample({10000}, gen);
  EXPECT_EQ(draws.shape(), (Shape{10000, 2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      const auto xs = draws.select(2, j).select(1, i).contiguous().to_vector<double>();
      expect_fits(xs, values(table.select(0, i)));
    }
}

// The draw walks each line's cumulative weights: unnormalized probabilities, zero weights at
// either end, logits far from 0 (weights exp(logit - max), no overflow) and a line without
// weight (validation off: it would refuse tables that are not a simplex).
TEST(Categorical, DrawsOfUnnormalizedTablesZeroWeightsAndLargeLogits) {
  const ValidationScope off(false);
  Generator gen(7);
  for (DType dtype : {kFloat64, kFloat32}) {
    SCOPED_TRACE(dtype == kFloat32 ? "float32" : "float64");
    const dist::Categorical scaled(row({0.0, 30.0, 10.0, 0.0}, dtype));
    expect_fits(scaled.sample({20000}, gen).to_vector<double>(), {0.0, 0.75, 0.25, 0.0});
    const auto large = dist::Categorical::from_logits(
        row({1000.0, 1000.0 - std::log(3.0), -INFINITY, 1000.0 - std::log(3.0)}, dtype));
    expect_fits(large.sample({20000}, gen).to_vector<double>(), {0.6, 0.2, 0.0, 0.2});
    // One category of all the weight, first or last.
    EXPECT_TRUE(all(eq(dist::Categorical(row({0.0, 0.0, 2.0}, dtype)).sample({500}, gen), 2.0)));
    EXPECT_TRUE(all(eq(dist::Categorical(row({5.0, 0.0, 0.0}, dtype)).sample({500}, gen), 0.0)));
  }
  // A line of all -inf logits draws category 0, not an index past the end.
  const auto none = dist::Categorical::from_logits(row({-INFINITY, -INFINITY}));
  EXPECT_TRUE(all(eq(none.sample({10}, gen), 0.0)));
}

TEST(Categorical, ProbsAndLogitsAreBothAvailableNormalized) {
  const dist::Categorical d(tensor({{0.2, 0.3, 0.5}, {1.0, 0.0, 0.0}}, f64()));
  expect_values(d.probs(), {0.2, 0.3, 0.5, 1.0, 0.0, 0.0});
  expect_values(d.logits(),
                {std::log(0.2), std::log(0.3), std::log(0.5), 0.0, -INFINITY, -INFINITY});
  // Logits are normalized: logsumexp 0 over the last dim.
  const auto l =
      dist::Categorical::from_logits(tensor({{1.0, 2.0, 3.0}, {0.0, -INFINITY, 5.0}}, f64()));
  expect_close(logsumexp(l.logits(), {-1}), zeros({2}, f64()));
  expect_close(sum(l.probs(), {-1}), ones({2}, f64()));
  EXPECT_TRUE(all(isfinite(l.entropy())));
  const auto ref = dist::Categorical(l.probs().select(0, 0));
  expect_close(l.entropy().select(0, 0), ref.entropy());
  EXPECT_EQ(dist::Categorical(tensor({0.5, 0.5})).enumerate_support().shape(), (Shape{2}));
}

}  // namespace
}  // namespace ember::test
