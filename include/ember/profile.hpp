// What the calling thread has done so far, for measuring a step's cost: tensor buffers
// allocated, operations dispatched to a launcher (CPU or CUDA), CUDA kernels launched and
// host waits on a device (a device-to-host read, a host-to-device copy, an explicit
// synchronize), plus time spent in the phases of SVI steps while phase timing is on.
// Take a snapshot before and after, and subtract.
#pragma once

#include <cstdint>

namespace ember::profile {

struct Counters {
  std::uint64_t allocations = 0;
  std::uint64_t bytes_allocated = 0;
  std::uint64_t backend_calls = 0;
  std::uint64_t kernel_launches = 0;  // CUDA kernels (cuBLAS/cuSOLVER calls not included)
  std::uint64_t host_syncs = 0;
  // Seconds in each phase of SVI steps (only while phase timing is on).
  double guide_seconds = 0, model_seconds = 0, loss_seconds = 0, backward_seconds = 0,
         update_seconds = 0;
};

Counters counters();
Counters operator-(const Counters& a, const Counters& b);
Counters operator+(const Counters& a, const Counters& b);

// Phase timing for SVI steps (off by default: it reads the clock a few times per step).
void set_phase_timing(bool on);
bool phase_timing();

}  // namespace ember::profile
