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

}  // namespace ember::optim
