// ClippedAdam as Pyro's pyro.optim.ClippedAdam: at each step() call lr *= lrd (before the
// update, and also for a parameter without a gradient that step); g = clamp(g, -clip_norm,
// clip_norm) + weight_decay * p; m and v as Adam;
// p -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps).
// Pyro clamps p.grad in place; here the gradient is left as it was.
#include <cmath>

#include "engine/optim/optim_impl.hpp"

namespace ember::optim {
namespace {

class ClippedAdamAlgorithm final : public detail::AlgorithmWith<ClippedAdamOptions> {
 public:
  using AlgorithmWith::AlgorithmWith;
  const char* name() const override { return "ClippedAdam"; }
  kernels::OptimKind kind() const override { return kernels::OptimKind::ClippedAdam; }

  void check(const ClippedAdamOptions& o, const std::string& where) const override {
    const detail::OptionChecker c{name(), where};
    c.non_negative("lr", o.lr);
    c.unit_interval_open("betas[0]", o.betas.first);
    c.unit_interval_open("betas[1]", o.betas.second);
    c.non_negative("eps", o.eps);
    c.non_negative("weight_decay", o.weight_decay);
    c.positive("clip_norm", o.clip_norm);
    c.positive("lrd", o.lrd);
  }

  double lr_factor(std::size_t options, std::int64_t calls) const override {
    return std::pow(this->options(options).lrd, static_cast<double>(calls));
  }

  std::vector<Tensor> make_state(std::size_t, const Tensor& param) const override {
    std::vector<Tensor> state(kernels::kMaxOptimStates);
    state[0] = zeros_like(param);  // exp_avg
    state[1] = zeros_like(param);  // exp_avg_sq
    return state;
  }

  kernels::OptimScalars scalars(std::size_t options, double lr, std::int64_t t) const override {
    const ClippedAdamOptions& o = this->options(options);
    const double bias_correction1 = 1.0 - std::pow(o.betas.first, static_cast<double>(t));
    const double bias_correction2 = 1.0 - std::pow(o.betas.second, static_cast<double>(t));
    kernels::OptimScalars s{};
    s.clipped_adam = {.step_size = lr * std::sqrt(bias_correction2) / bias_correction1,
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

}  // namespace ember::optim
