// The thread's counters and the SVI phase clocks.
#include "ember/profile.hpp"

#include "engine/profile_util.hpp"
#include "kernels/common/counters.hpp"

namespace ember::detail {
constinit thread_local PhaseTimes t_phases;
constinit thread_local bool t_phase_timing = false;
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

namespace {

// Applies op to each field of a and b.
template <typename Op>
Counters combine(const Counters& a, const Counters& b, Op op) {
  Counters d;
  d.allocations = op(a.allocations, b.allocations);
  d.bytes_allocated = op(a.bytes_allocated, b.bytes_allocated);
  d.backend_calls = op(a.backend_calls, b.backend_calls);
  d.kernel_launches = op(a.kernel_launches, b.kernel_launches);
  d.host_syncs = op(a.host_syncs, b.host_syncs);
  d.guide_seconds = op(a.guide_seconds, b.guide_seconds);
  d.model_seconds = op(a.model_seconds, b.model_seconds);
  d.loss_seconds = op(a.loss_seconds, b.loss_seconds);
  d.backward_seconds = op(a.backward_seconds, b.backward_seconds);
  d.update_seconds = op(a.update_seconds, b.update_seconds);
  return d;
}

}  // namespace

Counters operator-(const Counters& a, const Counters& b) {
  return combine(a, b, [](auto x, auto y) { return x - y; });
}

Counters operator+(const Counters& a, const Counters& b) {
  return combine(a, b, [](auto x, auto y) { return x + y; });
}

void set_phase_timing(bool on) { detail::t_phase_timing = on; }
bool phase_timing() { return detail::t_phase_timing; }

}  // namespace ember::profile
