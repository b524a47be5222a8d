// Learning-rate schedules: torch.optim.lr_scheduler's closed forms as functions of the base
// lr and the epoch, checked once when the schedule is made.
#include <cmath>
#include <numbers>

#include "ember/error.hpp"
#include "ember/optim.hpp"

namespace ember::optim {

LRSchedule::LRSchedule() : fn_([](double base_lr, std::int64_t) { return base_lr; }) {}

LRSchedule::LRSchedule(StepLR s) {
  EMBER_CHECK(s.step_size >= 1, "StepLR: step_size is ", s.step_size, ", but must be >= 1");
  EMBER_CHECK(s.gamma >= 0.0, "StepLR: gamma is ", s.gamma, ", but must be >= 0");
  fn_ = [s](double base_lr, std::int64_t epoch) {
    const std::int64_t decays = epoch / s.step_size;  // floor: epochs count from 0
    return base_lr * std::pow(s.gamma, static_cast<double>(decays));
  };
}

LRSchedule::LRSchedule(ExponentialLR s) {
  EMBER_CHECK(s.gamma >= 0.0, "ExponentialLR: gamma is ", s.gamma, ", but must be >= 0");
  fn_ = [s](double base_lr, std::int64_t epoch) {
    return base_lr * std::pow(s.gamma, static_cast<double>(epoch));
  };
}

LRSchedule::LRSchedule(CosineAnnealingLR s) {
  EMBER_CHECK(s.t_max >= 1, "CosineAnnealingLR: t_max is ", s.t_max, ", but must be >= 1");
  EMBER_CHECK(s.eta_min >= 0.0, "CosineAnnealingLR: eta_min is ", s.eta_min, ", but must be >= 0");
  fn_ = [s](double base_lr, std::int64_t epoch) {
    const double phase =
        std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(s.t_max);
    return s.eta_min + (base_lr - s.eta_min) * (1.0 + std::cos(phase)) / 2.0;
  };
}

LRSchedule::LRSchedule(LambdaLR s) {
  EMBER_CHECK(s.factor != nullptr, "LambdaLR: the factor function is empty");
  fn_ = [factor = std::move(s.factor)](double base_lr, std::int64_t epoch) {
    return base_lr * factor(epoch);
  };
}

}  // namespace ember::optim
