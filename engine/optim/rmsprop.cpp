// RMSprop as torch.optim.RMSprop: g += weight_decay * p; sq = alpha sq + (1 - alpha) g^2;
// centered: ga = alpha ga + (1 - alpha) g and avg = sqrt(sq - ga^2) + eps, else
// avg = sqrt(sq) + eps; with momentum, buf = momentum buf + g / avg and p -= lr * buf,
// else p -= lr * g / avg.
#include "engine/optim/optim_impl.hpp"

namespace ember::optim {
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
