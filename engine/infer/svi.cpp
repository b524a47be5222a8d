// The SVI loop: a step (ELBO gradients, the finite check's verdict, the optimizer update) and
// run() with its progress display.
#include "ember/svi.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "ember/ops.hpp"
#include "engine/infer/elbo_util.hpp"
#include "engine/profile_util.hpp"

namespace ember {

double LossValue::value() const {
  EMBER_CHECK(tensor_.defined(), "LossValue: no loss (default-constructed)");
  return tensor_.item();
}

namespace detail {

SVICore::SVICore(std::shared_ptr<optim::Optimizer> optimizer, std::shared_ptr<ELBO> loss,
                 SVIOptions options)
    : optimizer_(std::move(optimizer)), loss_(std::move(loss)), options_(options) {
  if (options_.own_stream) {
    auto streams = std::make_shared<std::vector<Stream>>();
    for (int d = 0; d < cuda_device_count(); ++d) streams->emplace_back(Device::cuda(d));
    streams_ = std::move(streams);
  }
}

SVICore::Scope::Scope(const SVICore& svi) {
  if (svi.options_.param_store != nullptr) store_.emplace(*svi.options_.param_store);
  if (svi.streams_ != nullptr) {
    for (const Stream& s : *svi.streams_) streams_.push_back(std::make_unique<StreamGuard>(s));
  }
}

bool SVICore::check_finite(const ElboResult& r) {
  if (r.finite) return true;

  // The check failed: read the loss and name the culprit, the ELBO's site or else a param.
  std::ostringstream what;
  std::string culprit = r.nonfinite_site.name;
  const double loss = r.loss.item();
  what << "SVI step " << steps_ << " (" << loss_->name() << "): ";
  if (!std::isfinite(loss)) {
    what << "the loss is " << loss;
    if (!culprit.empty()) {
      what << "; the first site whose log-density is not finite is '" << culprit << "' "
           << r.nonfinite_site.details;
    }
  } else {
    what << "the loss is finite (" << loss << ") but a gradient is not";
  }
  for (std::size_t k = 0; culprit.empty() && k < r.params.size(); ++k) {
    const Tensor g = r.params[k].param.grad();
    const std::string bad = g.defined() ? first_nonfinite(g) : "";
    if (bad.empty()) continue;
    culprit = r.params[k].name;
    what << "; the first param whose gradient is not finite is '" << culprit << "': " << bad;
  }
  if (options_.skip_nonfinite) {
    ++skipped_;
    return false;
  }
  throw NonFiniteError(what.str(), culprit);
}

LossValue SVICore::step(const std::function<void()>& model, const std::function<void()>& guide) {
  const Scope scope(*this);
  ElboResult r = loss_->loss_and_grads(model, guide,
                                       options_.check_finite ? FiniteCheck::On : FiniteCheck::Off);
  bool update = true;
  try {
    update = !options_.check_finite || check_finite(r);
  } catch (...) {
    for (const auto& p : r.params) p.param.zero_grad();
    throw;
  }
  {
    PhaseClock clock(&PhaseTimes::update);
    if (update) optimizer_->step(r.params);
    for (const auto& p : r.params) p.param.zero_grad();
  }
  ++steps_;
  return LossValue(r.loss);
}

LossValue SVICore::evaluate_loss(const std::function<void()>& model,
                                 const std::function<void()>& guide) {
  const Scope scope(*this);
  return LossValue(loss_->loss(model, guide).loss);
}

namespace {

std::string clock_str(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

RunResult SVICore::run(std::int64_t num_steps, const RunOptions& opts,
                       const std::function<void()>& model, const std::function<void()>& guide) {
  EMBER_CHECK(num_steps >= 0, "SVI.run: num_steps must be nonnegative, got ", num_steps);
  using Clock = std::chrono::steady_clock;
  std::ostream& out = opts.out != nullptr ? *opts.out : std::cerr;
  Progress mode = opts.progress;
  if (mode == Progress::Auto) {
    mode = (opts.out == nullptr || opts.out == &std::cerr) && ::isatty(STDERR_FILENO)
               ? Progress::Bar
               : Progress::Lines;
  }
  const std::int64_t every =
      opts.print_every > 0 ? opts.print_every : std::max<std::int64_t>(1, num_steps / 10);

  RunResult result;
  result.losses.reserve(static_cast<std::size_t>(num_steps));
  const std::int64_t skipped_before = skipped_;
  const auto start = Clock::now();
  auto last_draw = start;
  std::vector<Tensor> pending;  // losses not read yet: read in batches, one sync each
  double smoothed = 0.0, weight = 0.0;
  auto resolve = [&] {
    if (pending.empty()) return;
    const std::vector<double> v = pending.size() == 1
                                      ? std::vector<double>{pending[0].item()}
                                      : stack(pending).to(kFloat64).to_vector<double>();
    for (double x : v) {
      result.losses.push_back(x);
      if (std::isfinite(x)) {
        smoothed = 0.98 * smoothed + 0.02 * x;
        weight = 0.98 * weight + 0.02;
      }
    }
    pending.clear();
  };
  auto report = [&](std::int64_t done, bool final) {
    resolve();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double rate = elapsed > 0 ? done / elapsed : 0.0;
    const double loss = weight > 0 ? smoothed / weight : NAN;
    if (mode == Progress::Bar) {
      const int width = 24;
      const int filled = num_steps > 0 ? static_cast<int>(width * done / num_steps) : width;
      std::ostringstream line;
      line << '\r' << std::setw(std::to_string(num_steps).size()) << done << '/' << num_steps
           << " [" << std::string(filled, '=') << (filled < width ? ">" : "")
           << std::string(std::max(0, width - filled - 1), ' ') << "] " << std::fixed
           << std::setprecision(1) << rate << " steps/s, ETA "
           << clock_str(rate > 0 ? (num_steps - done) / rate : NAN) << ", loss "
           << std::setprecision(4) << std::defaultfloat << loss << "   ";
      out << line.str() << (final ? "\n" : "") << std::flush;
    } else if (mode == Progress::Lines) {
      out << "step " << done << '/' << num_steps << "  loss " << std::setprecision(6) << loss
          << " (smoothed)  " << std::fixed << std::setprecision(1) << rate << " steps/s  elapsed "
          << clock_str(elapsed) << std::defaultfloat << '\n'
          << std::flush;
    }
  };

  for (std::int64_t i = 0; i < num_steps; ++i) {
    const LossValue loss = step(model, guide);
    pending.push_back(loss.tensor());
    ++result.steps;
    const auto now = Clock::now();
    const bool last = i + 1 == num_steps;
    bool reported = false;
    if (mode == Progress::Bar && (now - last_draw > std::chrono::milliseconds(100) || last)) {
      report(i + 1, last);
      last_draw = now;
      reported = true;
    } else if (mode == Progress::Lines && ((i + 1) % every == 0 || last)) {
      report(i + 1, last);
      reported = true;
    }
    if (opts.callback && !opts.callback(StepInfo{i, num_steps, loss})) {
      result.stopped_early = !last;
      // The final state, unless this step was just shown (a bar still needs its newline).
      if (mode == Progress::Bar && !last) {
        report(i + 1, true);
      } else if (mode == Progress::Lines && !reported) {
        report(i + 1, true);
      }
      break;
    }
  }
  resolve();
  result.skipped_steps = skipped_ - skipped_before;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace detail
}  // namespace ember
