// The optimizers' algorithms, in the order of kernels/math/optim.hpp: each checks its options,
// makes its per-parameter state and turns its options and the step count into the scalars of
// the multi-tensor update kernel, whose math is in that header.
#include <cmath>

#include "engine/optim/optim_impl.hpp"

namespace ember::detail {

std::vector<Tensor> adam_moments(const Tensor& param) {
  std::vector<Tensor> state(kernels::kMaxOptimStates);
  state[0] = zeros_like(param);  // exp_avg
  state[1] = zeros_like(param);  // exp_avg_sq
  return state;
}

BiasCorrections bias_corrections(std::pair<double, double> betas, std::int64_t t) {
  return {1.0 - std::pow(betas.first, static_cast<double>(t)),
          1.0 - std::pow(betas.second, static_cast<double>(t))};
}

}  // namespace ember::detail

namespace ember::optim {

// --------------------------------------------------------------------- SGD ----

// SGD as torch.optim.SGD: d = g + weight_decay * p; with momentum, buf = d at the first
// step and momentum * buf + (1 - dampening) * d after it, then d = buf (or d + momentum * buf
// with Nesterov momentum); p -= lr * d.

namespace {

class SgdAlgorithm final : public detail::AlgorithmWith<SGDOptions> {
 public:
  using AlgorithmWith::AlgorithmWith;
  const char* name() const override { return "SGD"; }
  kernels::OptimKind kind() const override { return kernels::OptimKind::Sgd; }

  void check(const SGDOptions& o, const std::string& where) const override {
    const detail::OptionChecker c{name(), where};
    c.non_negative("lr", o.lr);
    c.non_negative("momentum", o.momentum);
    c(std::isfinite(o.dampening), "dampening", o.dampening, "finite");
    c.non_negative("weight_decay", o.weight_decay);
    EMBER_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0), "SGD: nesterov of ", where,
                " needs momentum > 0 and dampening 0, but momentum is ", o.momentum,
                " and dampening ", o.dampening);
  }

  std::vector<Tensor> make_state(std::size_t options, const Tensor& param) const override {
    std::vector<Tensor> state(kernels::kMaxOptimStates);
    if (this->options(options).momentum != 0.0) state[0] = zeros_like(param);
    return state;
  }

  kernels::OptimScalars scalars(std::size_t options, double lr, std::int64_t t) const override {
    const SGDOptions& o = this->options(options);
    kernels::OptimScalars s{};
    s.sgd = {.lr = lr,
             .momentum = o.momentum,
             .dampening = o.dampening,
             .weight_decay = o.weight_decay,
             .nesterov = o.nesterov,
             .first_step = t == 1};
    return s;
  }
};

}  // namespace

SGD::SGD(const SGDOptions& options) : Optimizer(detail::make_optimizer<SgdAlgorithm>(options)) {}
SGD::SGD(std::function<SGDOptions(const std::string&)> options_for)
    : Optimizer(detail::make_optimizer<SgdAlgorithm>(std::move(options_for))) {}

// -------------------------------------------------------------------- Adam ----

// Adam as torch.optim.Adam (L2 weight decay, no amsgrad): g += weight_decay * p;
// m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
// p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).

namespace {

class AdamAlgorithm final : public detail::AlgorithmWith<AdamOptions> {
 public:
  using AlgorithmWith::AlgorithmWith;
  const char* name() const override { return "Adam"; }
  kernels::OptimKind kind() const override { return kernels::OptimKind::Adam; }

  void check(const AdamOptions& o, const std::string& where) const override {
    detail::check_adam_options(detail::OptionChecker{name(), where}, o);
  }

  std::vector<Tensor> make_state(std::size_t, const Tensor& param) const override {
    return detail::adam_moments(param);
  }

  kernels::OptimScalars scalars(std::size_t options, double lr, std::int64_t t) const override {
    const AdamOptions& o = this->options(options);
    const detail::BiasCorrections bc = detail::bias_corrections(o.betas, t);
    kernels::OptimScalars s{};
    s.adam = {.step_size = lr / bc.first,
              .bias_correction2_sqrt = std::sqrt(bc.second),
              .beta1 = o.betas.first,
              .beta2 = o.betas.second,
              .eps = o.eps,
              .weight_decay = o.weight_decay};
    return s;
  }
};

}  // namespace

Adam::Adam(const AdamOptions& options)
    : Optimizer(detail::make_optimizer<AdamAlgorithm>(options)) {}
Adam::Adam(std::function<AdamOptions(const std::string&)> options_for)
    : Optimizer(detail::make_optimizer<AdamAlgorithm>(std::move(options_for))) {}

// ------------------------------------------------------------- ClippedAdam ----

// ClippedAdam as Pyro's pyro.optim.ClippedAdam: at each step() call lr *= lrd (before the
// update, and also for a parameter without a gradient that step); g = clamp(g, -clip_norm,
// clip_norm) + weight_decay * p; m and v as Adam;
// p -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps).
// Pyro clamps p.grad in place; here the gradient is left as it was.

namespace {

class ClippedAdamAlgorithm final : public detail::AlgorithmWith<ClippedAdamOptions> {
 public:
  using AlgorithmWith::AlgorithmWith;
  const char* name() const override { return "ClippedAdam"; }
  kernels::OptimKind kind() const override { return kernels::OptimKind::ClippedAdam; }

  void check(const ClippedAdamOptions& o, const std::string& where) const override {
    const detail::OptionChecker c{name(), where};
    detail::check_adam_options(c, o);
    c.positive("clip_norm", o.clip_norm);
    c.positive("lrd", o.lrd);
  }

  double lr_factor(std::size_t options, std::int64_t calls) const override {
    return std::pow(this->options(options).lrd, static_cast<double>(calls));
  }

  std::vector<Tensor> make_state(std::size_t, const Tensor& param) const override {
    return detail::adam_moments(param);
  }

  kernels::OptimScalars scalars(std::size_t options, double lr, std::int64_t t) const override {
    const ClippedAdamOptions& o = this->options(options);
    const detail::BiasCorrections bc = detail::bias_corrections(o.betas, t);
    kernels::OptimScalars s{};
    s.clipped_adam = {.step_size = lr * std::sqrt(bc.second) / bc.first,
                      .beta1 = o.betas.first,
                      .beta2 = o.betas.second,
                      .eps = o.eps,
                      .weight_decay = o.weight_decay,
                      .clip_norm = o.clip_norm};
    return s;
  }
};

}  // namespace

ClippedAdam::ClippedAdam(const ClippedAdamOptions& options)
    : Optimizer(detail::make_optimizer<ClippedAdamAlgorithm>(options)) {}
ClippedAdam::ClippedAdam(std::function<ClippedAdamOptions(const std::string&)> options_for)
    : Optimizer(detail::make_optimizer<ClippedAdamAlgorithm>(std::move(options_for))) {}

// ----------------------------------------------------------------- Adagrad ----

// Adagrad as torch.optim.Adagrad: g += weight_decay * p; clr = lr / (1 + (t - 1) lr_decay);
// sum += g^2 (sum starts at initial_accumulator_value); p -= clr * g / (sqrt(sum) + eps).

namespace {

class AdagradAlgorithm final : public detail::AlgorithmWith<AdagradOptions> {
 public:
  using AlgorithmWith::AlgorithmWith;
  const char* name() const override { return "Adagrad"; }
  kernels::OptimKind kind() const override { return kernels::OptimKind::Adagrad; }

  void check(const AdagradOptions& o, const std::string& where) const override {
    const detail::OptionChecker c{name(), where};
    c.non_negative("lr", o.lr);
    c.non_negative("lr_decay", o.lr_decay);
    c.non_negative("weight_decay", o.weight_decay);
    c.non_negative("initial_accumulator_value", o.initial_accumulator_value);
    c.non_negative("eps", o.eps);
  }

  std::vector<Tensor> make_state(std::size_t options, const Tensor& param) const override {
    std::vector<Tensor> state(kernels::kMaxOptimStates);
    state[0] = full_like(param, this->options(options).initial_accumulator_value);  // sum
    return state;
  }

  kernels::OptimScalars scalars(std::size_t options, double lr, std::int64_t t) const override {
    const AdagradOptions& o = this->options(options);
    kernels::OptimScalars s{};
    s.adagrad = {.clr = lr / (1.0 + static_cast<double>(t - 1) * o.lr_decay),
                 .eps = o.eps,
                 .weight_decay = o.weight_decay};
    return s;
  }
};

}  // namespace

Adagrad::Adagrad(const AdagradOptions& options)
    : Optimizer(detail::make_optimizer<AdagradAlgorithm>(options)) {}
Adagrad::Adagrad(std::function<AdagradOptions(const std::string&)> options_for)
    : Optimizer(detail::make_optimizer<AdagradAlgorithm>(std::move(options_for))) {}

// ----------------------------------------------------------------- RMSprop ----

// RMSprop as torch.optim.RMSprop: g += weight_decay * p; sq = alpha sq + (1 - alpha) g^2;
// centered: ga = alpha ga + (1 - alpha) g and avg = sqrt(sq - ga^2) + eps, else
// avg = sqrt(sq) + eps; with momentum, buf = momentum buf + g / avg and p -= lr * buf,
// else p -= lr * g / avg.

namespace {

class RmspropAlgorithm final : public detail::AlgorithmWith<RMSpropOptions> {
 public:
  using AlgorithmWith::AlgorithmWith;
  const char* name() const override { return "RMSprop"; }
  kernels::OptimKind kind() const override { return kernels::OptimKind::Rmsprop; }

  void check(const RMSpropOptions& o, const std::string& where) const override {
    const detail::OptionChecker c{name(), where};
    c.non_negative("lr", o.lr);
    c(o.alpha >= 0.0 && o.alpha <= 1.0, "alpha", o.alpha, "in [0, 1]");
    c.non_negative("eps", o.eps);
    c.non_negative("weight_decay", o.weight_decay);
    c.non_negative("momentum", o.momentum);
  }

  std::vector<Tensor> make_state(std::size_t options, const Tensor& param) const override {
    const RMSpropOptions& o = this->options(options);
    std::vector<Tensor> state(kernels::kMaxOptimStates);
    state[0] = zeros_like(param);                        // square_avg
    if (o.momentum > 0.0) state[1] = zeros_like(param);  // momentum_buffer
    if (o.centered) state[2] = zeros_like(param);        // grad_avg
    return state;
  }

  kernels::OptimScalars scalars(std::size_t options, double lr, std::int64_t) const override {
    const RMSpropOptions& o = this->options(options);
    kernels::OptimScalars s{};
    s.rmsprop = {.lr = lr,
                 .alpha = o.alpha,
                 .eps = o.eps,
                 .weight_decay = o.weight_decay,
                 .momentum = o.momentum,
                 .centered = o.centered};
    return s;
  }
};

}  // namespace

RMSprop::RMSprop(const RMSpropOptions& options)
    : Optimizer(detail::make_optimizer<RmspropAlgorithm>(options)) {}
RMSprop::RMSprop(std::function<RMSpropOptions(const std::string&)> options_for)
    : Optimizer(detail::make_optimizer<RmspropAlgorithm>(std::move(options_for))) {}

}  // namespace ember::optim
