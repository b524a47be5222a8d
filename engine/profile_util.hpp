// Engine-side phase clocks of SVI steps (ember/profile.hpp reads them).
#pragma once

#include <chrono>

namespace ember::detail {

struct PhaseTimes {
  double guide = 0, model = 0, loss = 0, backward = 0, update = 0;
};
extern constinit thread_local PhaseTimes t_phases;
extern constinit thread_local bool t_phase_timing;

// Adds the time from construction to destruction to `slot`, when phase timing is on.
class PhaseClock {
 public:
  explicit PhaseClock(double PhaseTimes::*slot) : slot_(t_phase_timing ? slot : nullptr) {
    if (slot_ != nullptr) start_ = std::chrono::steady_clock::now();
  }
  ~PhaseClock() {
    if (slot_ != nullptr) {
      t_phases.*slot_ +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }
  }
  PhaseClock(const PhaseClock&) = delete;
  PhaseClock& operator=(const PhaseClock&) = delete;

 private:
  double PhaseTimes::*slot_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ember::detail
