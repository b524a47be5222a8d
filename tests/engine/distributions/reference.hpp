// Reads the SciPy reference table (tests/engine/distributions/reference_log_prob.txt, made by
// tools/reference/make_log_prob_table.py), takes a log-density with its partials at one point,
// and a few statistical tests for samplers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ember/ember.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ember::test {

struct ReferenceCase {
  std::string family;
  std::map<std::string, std::vector<double>> params;
  std::vector<double> value;
  double log_prob = 0.0;
  int line = 0;
  const std::vector<double>& param(const std::string& name) const {
    auto it = params.find(name);
    if (it == params.end())
      throw std::runtime_error("reference line " + std::to_string(line) + ": no parameter " + name);
    return it->second;
  }
  double scalar(const std::string& name) const { return param(name).at(0); }
};

inline std::vector<double> parse_numbers(const std::string& s) {
  std::vector<double> out;
  std::istringstream in(s);
  std::string tok;
  while (in >> tok)
    out.push_back(tok == "-inf" ? -INFINITY : (tok == "inf" ? INFINITY : std::stod(tok)));
  return out;
}

// Every case of `family` in the table; fails the test if there are none.
inline std::vector<ReferenceCase> reference_cases(const std::string& family) {
  const std::string path =
      std::string(EMBER_TEST_DIR) + "/engine/distributions/reference_log_prob.txt";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<ReferenceCase> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string f;
    while (std::getline(ss, f, '|')) fields.push_back(f);
    if (fields.empty() || fields[0] != family) continue;
    ReferenceCase c;
    c.family = fields[0];
    c.line = n;
    for (std::size_t i = 1; i < fields.size(); ++i) {
      const auto eq = fields[i].find('=');
      const std::string key = fields[i].substr(0, eq);
      const auto values = parse_numbers(fields[i].substr(eq + 1));
      if (key == "value")
        c.value = values;
      else if (key == "log_prob")
        c.log_prob = values.at(0);
      else
        c.params[key] = values;
    }
    out.push_back(std::move(c));
  }
  EXPECT_FALSE(out.empty()) << "no reference cases for " << family << " in " << path;
  return out;
}

// A log-density at one point and its partials: in the value, then in each parameter (all scalars
// of `dtype` that require grad).
struct PointLogProb {
  double log_prob;
  std::vector<double> partials;
};
using MakeDistribution = std::function<dist::Distribution(const std::vector<Tensor>&)>;
inline PointLogProb log_prob_at(const MakeDistribution& make, DType dtype, double value,
                                const std::vector<double>& params) {
  const TensorOptions o = TensorOptions{}.with_dtype(dtype).with_requires_grad(true);
  std::vector<Tensor> ps;
  for (double p : params) ps.push_back(scalar_tensor(p, o));
  const Tensor x = scalar_tensor(value, o);
  const Tensor lp = make(ps).log_prob(x);
  lp.backward();
  PointLogProb out{lp.item(), {x.grad().item()}};
  for (const Tensor& p : ps) out.partials.push_back(p.grad().item());
  return out;
}

// Checks the log-density at `x` of make(params) in `dtype`, and its partials (value, then
// parameters), against reference values, each within its relative tolerance.
inline void expect_log_prob_at(const MakeDistribution& make, DType dtype,
                               const std::vector<double>& params, double x, double log_prob,
                               const std::vector<double>& partials, double rtol,
                               double partial_rtol) {
  ::testing::Message where;
  where << dtype << ", params";
  for (double p : params) where << " " << p;
  SCOPED_TRACE(where << ", at " << x);
  const PointLogProb lp = log_prob_at(make, dtype, x, params);
  EXPECT_NEAR(lp.log_prob, log_prob, rtol * std::abs(log_prob));
  ASSERT_EQ(lp.partials.size(), partials.size());
  for (std::size_t k = 0; k < partials.size(); ++k)
    EXPECT_NEAR(lp.partials[k], partials[k], partial_rtol * std::abs(partials[k]))
        << "partial " << k;
}

// Kolmogorov-Smirnov statistic of samples against a CDF.
inline double ks_statistic(std::vector<double> xs, const std::function<double(double)>& cdf) {
  std::sort(xs.begin(), xs.end());
  const double n = static_cast<double>(xs.size());
  double d = 0.0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double f = cdf(xs[i]);
    d = std::max({d, f - i / n, (i + 1) / n - f});
  }
  return d;
}

// The KS critical value at significance 0.001 for n samples (asymptotic, n >= 100).
inline double ks_critical_001(std::size_t n) { return 1.95 / std::sqrt(static_cast<double>(n)); }

// Pearson's chi-square statistic of observed counts against expected probabilities.
inline double chi_square(const std::vector<double>& counts, const std::vector<double>& probs) {
  double total = 0.0;
  for (double c : counts) total += c;
  double stat = 0.0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    const double e = total * probs[k];
    stat += (counts[k] - e) * (counts[k] - e) / e;
  }
  return stat;
}

// Upper 0.001 quantile of chi-square with k degrees of freedom (Wilson-Hilferty).
inline double chi_square_critical_001(int k) {
  const double z = 3.090232306167813;
  const double a = 2.0 / (9.0 * k);
  return k * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

}  // namespace ember::test
