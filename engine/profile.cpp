// The thread's counters and the SVI phase clocks.
#include "ember/profile.hpp"

#include "engine/profile_util.hpp"
#include "kernels/common/counters.hpp"

namespace ember::detail {
thread_local PhaseTimes t_phases;
thread_local bool t_phase_timing = false;
}  // namespace ember::detail

namespace ember::profile {

Counters counters() {
  const auto& c = kernels::t_event_counters;
  const auto& p = detail::t_phases;
  Counters out;
  out.allocations = c.allocations;
  out.bytes_allocated = c.bytes_allocated;
  out.backend_calls = c.backend_calls;
  out.kernel_launches = c.kernel_launches;
  out.host_syncs = c.host_syncs;
  out.guide_seconds = p.guide;
  out.model_seconds = p.model;
  out.loss_seconds = p.loss;
  out.backward_seconds = p.backward;
  out.update_seconds = p.update;
  return out;
}

Counters operator-(const Counters& a, const Counters& b) {
  Counters d;
  d.allocations = a.allocations - b.allocations;
  d.bytes_allocated = a.bytes_allocated - b.bytes_allocated;
  d.backend_calls = a.backend_calls - b.backend_calls;
  d.kernel_launches = a.kernel_launches - b.kernel_launches;
  d.host_syncs = a.host_syncs - b.host_syncs;
  d.guide_seconds = a.guide_seconds - b.guide_seconds;
  d.model_seconds = a.model_seconds - b.model_seconds;
  d.loss_seconds = a.loss_seconds - b.loss_seconds;
  d.backward_seconds = a.backward_seconds - b.backward_seconds;
  d.update_seconds = a.update_seconds - b.update_seconds;
  return d;
}

void set_phase_timing(bool on) { detail::t_phase_timing = on; }
bool phase_timing() { return detail::t_phase_timing; }

}  // namespace ember::profile
