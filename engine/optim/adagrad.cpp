// Adagrad as torch.optim.Adagrad: g += weight_decay * p; clr = lr / (1 + (t - 1) lr_decay);
// sum += g^2 (sum starts at initial_accumulator_value); p -= clr * g / (sqrt(sum) + eps).
#include "engine/optim/optim_impl.hpp"

namespace ember::optim {
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

}  // namespace ember::optim
