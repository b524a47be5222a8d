// Goodness of fit for integer-valued draws: Pearson's chi-square over bins of expected
// count >= 5, the upper tail lumped into the last bin.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "reference.hpp"

namespace ember::test {

// Expects the draws `xs` (nonnegative integers) to fit `pmf` at significance 0.001.
inline void expect_fits_pmf(const std::vector<double>& xs,
                            const std::function<double(std::int64_t)>& pmf, std::int64_t max_k) {
  const double n = static_cast<double>(xs.size());
  // bin_of[k] for k = 0..max_k; larger k fall in the last bin.
  std::vector<int> bin_of(static_cast<std::size_t>(max_k + 1));
  std::vector<double> probs;
  double open = 0.0, closed = 0.0;
  for (std::int64_t k = 0; k <= max_k; ++k) {
    bin_of[k] = static_cast<int>(probs.size());
    open += pmf(k);
    if (open * n >= 5.0 && (1.0 - closed - open) * n >= 5.0) {
      probs.push_back(open);
      closed += open;
      open = 0.0;
    }
  }
  probs.push_back(1.0 - closed);  // the last bin takes the rest, the tail included
  const int last = static_cast<int>(probs.size()) - 1;
  for (auto& b : bin_of) b = std::min(b, last);
  ASSERT_GE(probs.size(), 2u) << "too few draws for a chi-square test";
  std::vector<double> counts(probs.size(), 0.0);
  for (double x : xs) {
    ASSERT_TRUE(x >= 0 && std::floor(x) == x) << "draw " << x << " is not a count";
    const auto k = static_cast<std::int64_t>(x);
    counts[k > max_k ? last : bin_of[k]] += 1;
  }
  const double stat = chi_square(counts, probs);
  EXPECT_LT(stat, chi_square_critical_001(last)) << probs.size() << " bins";
}

inline double mean_of(const std::vector<double>& xs) {
  double m = 0.0;
  for (double x : xs) m += x;
  return m / static_cast<double>(xs.size());
}

}  // namespace ember::test
