// Posterior summaries (ember/summary.hpp): each site's draws are read to the host once as
// float64 and checked, then every statistic runs over one element's column of draws at a time,
// with NumPy's and NumPyro's definitions, so that the numbers agree with theirs to rounding.
#include "ember/summary.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <limits>
#include <numbers>
#include <sstream>
#include <utility>

#include "ember/error.hpp"

namespace ember::infer {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string format_index(std::int64_t flat, const Shape& shape, const char* sep) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(shape.size()));
  for (int d = shape.size() - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string out = "[";
  for (std::size_t i = 0; i < idx.size(); ++i) {
    if (i > 0) out += sep;
    out += std::to_string(idx[i]);
  }
  return out + "]";
}

// One tensor's draws on the host, row-major (S, E): element e of draw s at s * E + e.
struct Draws {
  std::string prefix;  // what messages start with: "summary: site 'x'" or "hpdi"
  Shape shape;         // the samples' shape, (S, ...)
  Shape event;         // (...)
  std::int64_t num_draws = 0;
  std::int64_t num_elems = 0;
  std::vector<double> values;

  std::vector<double> column(std::int64_t e) const {
    std::vector<double> col(static_cast<std::size_t>(num_draws));
    for (std::int64_t s = 0; s < num_draws; ++s) col[s] = values[s * num_elems + e];
    return col;
  }
};

// A float64 CPU tensor of `shape` from row-major values.
Tensor host_tensor(const std::vector<double>& v, const Shape& shape) {
  return from_vector(v, shape, TensorOptions{}.with_dtype(kFloat64));
}

// Reads and checks `t`: a sample dim, at least `min_draws_per_chain` draws in each of
// `num_chains` chains, finite values.
Draws load(std::string prefix, const Tensor& t, std::int64_t num_chains,
           std::int64_t min_draws_per_chain, const char* needed_for) {
  EMBER_CHECK(t.defined(), prefix, ": the samples tensor is undefined");
  Draws d;
  d.prefix = std::move(prefix);
  d.shape = t.shape();
  EMBER_CHECK_SHAPE(d.shape.size() >= 1, d.prefix, ": samples of shape ", d.shape,
                    " have no sample dim (dim 0 holds the draws)");
  d.event = d.shape;
  d.event.erase(0);
  d.num_draws = d.shape[0];
  d.num_elems = d.event.numel();
  EMBER_CHECK(d.num_draws > 0, d.prefix, ": samples of shape ", d.shape, " have no draws");
  EMBER_CHECK(d.num_draws % num_chains == 0, d.prefix, ": ", d.num_draws,
              " draws (samples of shape ", d.shape, ") do not split into num_chains = ", num_chains,
              " chains of equal length");
  const std::int64_t per_chain = d.num_draws / num_chains;
  EMBER_CHECK(per_chain >= min_draws_per_chain, d.prefix, ": samples of shape ", d.shape, " have ",
              per_chain, " draw(s) per chain (num_chains = ", num_chains, "); at least ",
              min_draws_per_chain, " are needed for ", needed_for);
  d.values = t.to_vector<double>();
  const auto bad =
      std::find_if(d.values.begin(), d.values.end(), [](double v) { return !std::isfinite(v); });
  EMBER_CHECK(bad == d.values.end(), d.prefix, ": samples of shape ", d.shape,
              " have a non-finite value ", *bad, " at index ",
              format_index(bad - d.values.begin(), d.shape, ", "));
  return d;
}

void check_num_chains(const char* fn, std::int64_t num_chains) {
  EMBER_CHECK(num_chains >= 1, fn, ": num_chains must be at least 1, got ", num_chains);
}

void check_prob(const char* fn, double prob) {
  EMBER_CHECK(prob > 0.0 && prob < 1.0, fn, ": prob must be in (0, 1), got ", prob);
}

// ---- the statistics of one column of draws ----

double mean_of(const double* x, std::int64_t n) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += x[i];
  return s / static_cast<double>(n);
}

// Variance with ddof 1, as NumPy's var(ddof=1): the squares of the deviations from the mean.
double var_of(const double* x, std::int64_t n, double mean) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += (x[i] - mean) * (x[i] - mean);
  return s / static_cast<double>(n - 1);
}

// NumPy's linear quantile of sorted draws, with its two-sided interpolation (from the nearer
// end) so that q = 1 gives the maximum exactly.
double quantile_of_sorted(const std::vector<double>& x, double q) {
  const auto n = static_cast<std::int64_t>(x.size());
  const double pos = static_cast<double>(n - 1) * q;
  if (pos >= static_cast<double>(n - 1)) return x[n - 1];
  const auto lo = static_cast<std::int64_t>(std::floor(pos));
  const double t = pos - static_cast<double>(lo);
  const double a = x[lo], b = x[lo + 1], diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

double median_of_sorted(const std::vector<double>& x) {
  const std::size_t n = x.size();
  return (x[(n - 1) / 2] + x[n / 2]) / 2.0;
}

std::pair<double, double> hpdi_of_sorted(const std::vector<double>& x, double prob) {
  const auto n = static_cast<std::int64_t>(x.size());
  const auto k = static_cast<std::int64_t>(prob * static_cast<double>(n));
  std::int64_t best = 0;
  for (std::int64_t i = 1; i < n - k; ++i)
    if (x[i + k] - x[i] < x[best + k] - x[best]) best = i;
  return {x[best], x[best + k]};
}

// Biased autocovariances of one chain (lag k: the sum over i of z_i z_{i+k}, divided by N)
// through a zero-padded FFT, O(N log N): the padding to at least 2N makes the circular
// correlation the linear one.
class Autocovariance {
 public:
  explicit Autocovariance(std::int64_t n) : n_(n) {
    std::size_t m = 1;
    while (m < static_cast<std::size_t>(2 * n)) m <<= 1;
    buf_.resize(m);
    twiddle_.resize(m / 2);
    for (std::size_t k = 0; k < m / 2; ++k)
      twiddle_[k] = std::polar(
          1.0, -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(m));
  }

  // Adds the autocovariances of x[0..N) (centered on `mean`) to acc[0..N).
  void accumulate(const double* x, double mean, std::vector<double>& acc) {
    std::fill(buf_.begin(), buf_.end(), std::complex<double>());
    for (std::int64_t i = 0; i < n_; ++i) buf_[i] = x[i] - mean;
    fft();
    for (auto& c : buf_) c = std::norm(c);
    // The power spectrum is real and even, so its forward transform is m times its inverse.
    fft();
    const double scale = 1.0 / (static_cast<double>(buf_.size()) * static_cast<double>(n_));
    for (std::int64_t k = 0; k < n_; ++k) acc[k] += buf_[k].real() * scale;
  }

 private:
  void fft() {
    const std::size_t m = buf_.size();
    for (std::size_t i = 1, j = 0; i < m; ++i) {
      std::size_t bit = m >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) std::swap(buf_[i], buf_[j]);
    }
    for (std::size_t len = 2; len <= m; len <<= 1) {
      const std::size_t stride = m / len, half = len / 2;
      for (std::size_t i = 0; i < m; i += len) {
        for (std::size_t j = 0; j < half; ++j) {
          const std::complex<double> u = buf_[i + j];
          const std::complex<double> v = buf_[i + j + half] * twiddle_[j * stride];
          buf_[i + j] = u + v;
          buf_[i + j + half] = u - v;
        }
      }
    }
  }

  std::int64_t n_;
  std::vector<std::complex<double>> buf_;
  std::vector<std::complex<double>> twiddle_;
};

// NaN-propagating as NumPy's clip and minimum, so that constant draws give NaN, not a number.
double clip_at_zero(double x) { return std::isnan(x) ? x : std::max(x, 0.0); }
double nan_min(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b);
}

// NumPyro's effective_sample_size of one element: `x` holds `c` chains of `n` draws, one after
// another.
double n_eff_of(const double* x, std::int64_t c, std::int64_t n, Autocovariance& acov) {
  std::vector<double> gamma(static_cast<std::size_t>(n), 0.0);
  std::vector<double> chain_mean(static_cast<std::size_t>(c));
  double var_within = 0.0;
  for (std::int64_t k = 0; k < c; ++k) {
    const double* chain = x + k * n;
    chain_mean[k] = mean_of(chain, n);
    var_within += var_of(chain, n, chain_mean[k]);
    acov.accumulate(chain, chain_mean[k], gamma);
  }
  var_within /= static_cast<double>(c);
  for (double& g : gamma) g /= static_cast<double>(c);
  double var_estimator = var_within * static_cast<double>(n - 1) / static_cast<double>(n);
  if (c > 1) {
    var_estimator += var_of(chain_mean.data(), c, mean_of(chain_mean.data(), c));
  } else {
    var_within = var_estimator;
  }
  // rho_k = 1 - (W - mean over chains of gamma_k) / var+, rho_0 = 1; then Geyer's initial
  // positive sequence: sums of pairs, the first kept, the rest clipped at 0 and made monotone.
  auto rho = [&](std::int64_t k) {
    return k == 0 ? 1.0 : 1.0 - (var_within - gamma[k]) / var_estimator;
  };
  double sum = rho(0) + rho(1);
  double running = kNaN;
  for (std::int64_t i = 1; i < n / 2; ++i) {
    const double pair = clip_at_zero(rho(2 * i) + rho(2 * i + 1));
    running = i == 1 ? pair : nan_min(running, pair);
    sum += running;
  }
  const double tau = -1.0 + 2.0 * sum;
  return static_cast<double>(c * n) / tau;
}

// NumPyro's split_gelman_rubin of one element; NaN with fewer than 4 draws per chain.
double r_hat_of(const double* x, std::int64_t c, std::int64_t n) {
  if (n < 4) return kNaN;
  const std::int64_t half = n / 2;
  std::vector<double> means;
  double var_within = 0.0;
  for (std::int64_t k = 0; k < c; ++k) {
    for (const double* part : {x + k * n, x + k * n + (n - half)}) {
      means.push_back(mean_of(part, half));
      var_within += var_of(part, half, means.back());
    }
  }
  const auto parts = static_cast<std::int64_t>(means.size());
  var_within /= static_cast<double>(parts);
  const double var_between = var_of(means.data(), parts, mean_of(means.data(), parts));
  const double var_estimator =
      var_within * static_cast<double>(half - 1) / static_cast<double>(half) + var_between;
  return std::sqrt(var_estimator / var_within);
}

SiteSummary summarize(const Draws& d, double prob, std::int64_t num_chains) {
  const auto e_count = static_cast<std::size_t>(d.num_elems);
  std::vector<double> mean(e_count), sd(e_count), median(e_count), low(e_count), high(e_count),
      n_eff(e_count), r_hat(e_count);
  const std::int64_t per_chain = d.num_draws / num_chains;
  Autocovariance acov(per_chain);
  for (std::int64_t e = 0; e < d.num_elems; ++e) {
    std::vector<double> col = d.column(e);
    mean[e] = mean_of(col.data(), d.num_draws);
    sd[e] = std::sqrt(var_of(col.data(), d.num_draws, mean[e]));
    n_eff[e] = n_eff_of(col.data(), num_chains, per_chain, acov);
    r_hat[e] = r_hat_of(col.data(), num_chains, per_chain);
    std::sort(col.begin(), col.end());
    median[e] = median_of_sorted(col);
    std::tie(low[e], high[e]) = hpdi_of_sorted(col, prob);
  }
  return {host_tensor(mean, d.event), host_tensor(sd, d.event),   host_tensor(median, d.event),
          host_tensor(low, d.event),  host_tensor(high, d.event), host_tensor(n_eff, d.event),
          host_tensor(r_hat, d.event)};
}

// Python's "{:>9.2f}": NaN and infinities spelled as Python does, without a sign on NaN.
std::string format_cell(double v) {
  char buf[64];
  if (std::isnan(v)) {
    std::snprintf(buf, sizeof(buf), "%9s", "nan");
  } else if (std::isinf(v)) {
    std::snprintf(buf, sizeof(buf), "%9s", v > 0 ? "inf" : "-inf");
  } else {
    std::snprintf(buf, sizeof(buf), "%9.2f", v);
  }
  return buf;
}

std::string percent_label(double percent) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", percent);
  return buf;
}

std::string right_aligned(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

std::map<std::string, SiteSummary> summary(const Samples& samples, const SummaryOptions& options) {
  check_prob("summary", options.prob);
  check_num_chains("summary", options.num_chains);
  EMBER_CHECK(!samples.empty(), "summary: no sites (the samples map is empty)");
  std::map<std::string, SiteSummary> out;
  for (const auto& [name, t] : samples) {
    const Draws d = load("summary: site '" + name + "'", t, options.num_chains, 2, "sd and n_eff");
    out.emplace(name, summarize(d, options.prob, options.num_chains));
  }
  return out;
}

std::map<std::string, SiteSummary> summary(const Samples& samples, double prob) {
  return summary(samples, SummaryOptions{.prob = prob});
}

std::string format_summary(const Samples& samples, const SummaryOptions& options) {
  const std::map<std::string, SiteSummary> stats = summary(samples, options);
  // NumPyro sizes the name column by "name[i,j]" with each index at its last value (and
  // "name[]" for a scalar site), at least 10 wide.
  std::size_t width = 10;
  for (const auto& [name, s] : stats) {
    const Shape& shape = s.mean.shape();
    std::string row = name + "[";
    for (int i = 0; i < shape.size(); ++i) {
      if (i > 0) row += ',';
      row += std::to_string(shape[i] - 1);
    }
    width = std::max(width, row.size() + 1);
  }
  const std::string columns[] = {"mean",
                                 "std",
                                 "median",
                                 percent_label(50.0 * (1.0 - options.prob)),
                                 percent_label(50.0 * (1.0 + options.prob)),
                                 "n_eff",
                                 "r_hat"};
  std::ostringstream os;
  os << "\n" << right_aligned("", width);
  for (const std::string& c : columns) os << ' ' << right_aligned(c, 9);
  os << '\n';
  for (const auto& [name, s] : stats) {
    const Tensor* fields[] = {&s.mean,      &s.sd,    &s.median, &s.hpdi_low,
                              &s.hpdi_high, &s.n_eff, &s.r_hat};
    std::vector<std::vector<double>> values;
    for (const Tensor* f : fields) values.push_back(f->to_vector<double>());
    const Shape& shape = s.mean.shape();
    for (std::int64_t e = 0; e < shape.numel(); ++e) {
      const std::string row = shape.empty() ? name : name + format_index(e, shape, ",");
      os << right_aligned(row, width);
      for (const auto& v : values) os << ' ' << format_cell(v[e]);
      os << '\n';
    }
  }
  os << '\n';
  return os.str();
}

std::string format_summary(const Samples& samples, double prob) {
  return format_summary(samples, SummaryOptions{.prob = prob});
}

void print_summary(const Samples& samples, const SummaryOptions& options, std::ostream& os) {
  os << format_summary(samples, options);
}

void print_summary(const Samples& samples, double prob, std::ostream& os) {
  print_summary(samples, SummaryOptions{.prob = prob}, os);
}

Tensor quantiles(const Tensor& samples, const std::vector<double>& qs) {
  for (std::size_t i = 0; i < qs.size(); ++i)
    EMBER_CHECK(qs[i] >= 0.0 && qs[i] <= 1.0, "quantiles: each q must be in [0, 1], got qs[", i,
                "] = ", qs[i]);
  const Draws d = load("quantiles", samples, 1, 1, "quantiles");
  const auto nq = static_cast<std::int64_t>(qs.size());
  std::vector<double> out(static_cast<std::size_t>(nq * d.num_elems));
  for (std::int64_t e = 0; e < d.num_elems; ++e) {
    std::vector<double> col = d.column(e);
    std::sort(col.begin(), col.end());
    for (std::int64_t i = 0; i < nq; ++i) out[i * d.num_elems + e] = quantile_of_sorted(col, qs[i]);
  }
  Shape shape = d.event;
  shape.insert(0, nq);
  return host_tensor(out, shape);
}

Tensor hpdi(const Tensor& samples, double prob) {
  check_prob("hpdi", prob);
  const Draws d = load("hpdi", samples, 1, 1, "hpdi");
  std::vector<double> out(static_cast<std::size_t>(2 * d.num_elems));
  for (std::int64_t e = 0; e < d.num_elems; ++e) {
    std::vector<double> col = d.column(e);
    std::sort(col.begin(), col.end());
    std::tie(out[e], out[d.num_elems + e]) = hpdi_of_sorted(col, prob);
  }
  Shape shape = d.event;
  shape.insert(0, 2);
  return host_tensor(out, shape);
}

Tensor effective_sample_size(const Tensor& samples, std::int64_t num_chains) {
  check_num_chains("effective_sample_size", num_chains);
  const Draws d = load("effective_sample_size", samples, num_chains, 2, "effective_sample_size");
  const std::int64_t per_chain = d.num_draws / num_chains;
  Autocovariance acov(per_chain);
  std::vector<double> out(static_cast<std::size_t>(d.num_elems));
  for (std::int64_t e = 0; e < d.num_elems; ++e)
    out[e] = n_eff_of(d.column(e).data(), num_chains, per_chain, acov);
  return host_tensor(out, d.event);
}

Tensor split_gelman_rubin(const Tensor& samples, std::int64_t num_chains) {
  check_num_chains("split_gelman_rubin", num_chains);
  const Draws d = load("split_gelman_rubin", samples, num_chains, 4, "split_gelman_rubin");
  const std::int64_t per_chain = d.num_draws / num_chains;
  std::vector<double> out(static_cast<std::size_t>(d.num_elems));
  for (std::int64_t e = 0; e < d.num_elems; ++e)
    out[e] = r_hat_of(d.column(e).data(), num_chains, per_chain);
  return host_tensor(out, d.event);
}

}  // namespace ember::infer
