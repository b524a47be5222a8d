// SGD as torch.optim.SGD: d = g + weight_decay * p; with momentum, buf = d at the first
// step and momentum * buf + (1 - dampening) * d after it, then d = buf (or d + momentum * buf
// with Nesterov momentum); p -= lr * d.
#include <cmath>

#include "engine/optim/optim_impl.hpp"

namespace ember::optim {
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

}  // namespace ember::optim
