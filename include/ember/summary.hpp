// Posterior summaries of named sample tensors, as NumPyro's numpyro.diagnostics: mean, standard
// deviation, median, quantiles, HPDI, effective sample size, split R-hat, and the printed table.
#pragma once

#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::infer {

// Draws by site name. Each tensor holds its draws along dim 0: shape (S, ...), where S is
// num_chains chains of S / num_chains draws each, one chain after another (a tensor of shape
// (C, N, ...) from C chains is passed as its reshape to (C * N, ...)). Any dtype and device.
using Samples = std::map<std::string, Tensor>;

// Every statistic is computed in float64 on the host and returned as a float64 CPU tensor of
// the site's shape without the sample dim, (...).
struct SiteSummary {
  Tensor mean;
  Tensor sd;        // sample standard deviation, ddof 1 (NumPyro's "std")
  Tensor median;    // the mean of the two middle draws when S is even
  Tensor hpdi_low;  // the bounds of the narrowest interval holding `prob` of the draws
  Tensor hpdi_high;
  Tensor n_eff;  // effective sample size over all chains (NaN for constant draws)
  Tensor r_hat;  // split R-hat; NaN with fewer than 4 draws per chain
};

struct SummaryOptions {
  double prob = 0.9;            // the mass of the HPDI, in (0, 1)
  std::int64_t num_chains = 1;  // must divide each site's number of draws
};

// The summary of every site, as numpyro.diagnostics.summary. Throws ValueError (naming the
// site) for no sites, an undefined tensor, fewer than 2 draws per chain, a non-finite draw
// (with its index) or num_chains not dividing the draws, and ShapeError for a 0-d tensor.
std::map<std::string, SiteSummary> summary(const Samples& samples, const SummaryOptions& options);
std::map<std::string, SiteSummary> summary(const Samples& samples, double prob = 0.9);

// NumPyro's print_summary table: a row per scalar element ("x", "w[2]", "m[0,1]") and the
// columns mean, std, median, the HPDI bounds labelled as the percentiles they stand for at
// `prob` ("5.0%", "95.0%" for 0.9), n_eff and r_hat, with two decimals.
std::string format_summary(const Samples& samples, const SummaryOptions& options);
std::string format_summary(const Samples& samples, double prob = 0.9);
void print_summary(const Samples& samples, const SummaryOptions& options,
                   std::ostream& os = std::cout);
void print_summary(const Samples& samples, double prob = 0.9, std::ostream& os = std::cout);

// The statistics one at a time, over dim 0 of `samples` (shape (S, ...), as above), each a
// float64 CPU tensor. The checks are summary's, without a site name.

// Quantiles with NumPy's default linear interpolation between order statistics (the value at
// position q * (S - 1) of the sorted draws): shape (qs.size(), ...). Each q in [0, 1].
Tensor quantiles(const Tensor& samples, const std::vector<double>& qs);
// NumPyro's hpdi: with k = floor(prob * S), the pair of sorted draws (x[i], x[i + k]) of least
// width, the first such i on ties: shape (2, ...), the lower bound first.
Tensor hpdi(const Tensor& samples, double prob = 0.9);
// NumPyro's effective_sample_size: autocorrelations combined over chains as in Stan, summed
// with Geyer's initial monotone sequence estimator. At least 2 draws per chain.
Tensor effective_sample_size(const Tensor& samples, std::int64_t num_chains = 1);
// NumPyro's split_gelman_rubin: R-hat over the 2 * num_chains half chains. At least 4 draws
// per chain.
Tensor split_gelman_rubin(const Tensor& samples, std::int64_t num_chains = 1);

}  // namespace ember::infer
