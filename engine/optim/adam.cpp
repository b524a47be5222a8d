// Adam as torch.optim.Adam (L2 weight decay, no amsgrad): g += weight_decay * p;
// m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
// p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
#include <cmath>

#include "engine/optim/optim_impl.hpp"

namespace ember::optim {
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
}  // namespace ember::optim

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

Adam::Adam(const AdamOptions& options)
    : Optimizer(detail::make_optimizer<AdamAlgorithm>(options)) {}
Adam::Adam(std::function<AdamOptions(const std::string&)> options_for)
    : Optimizer(detail::make_optimizer<AdamAlgorithm>(std::move(options_for))) {}

}  // namespace ember::optim
