// Per-thread event counters read by ember/profile.hpp: buffer allocations, calls into a
// launcher, CUDA kernel launches and host-device synchronizations. Plain thread-local
// integers, so counting costs an increment.
#pragma once

#include <cstdint>

namespace ember::kernels {

struct EventCounters {
  std::uint64_t allocations = 0;
  std::uint64_t bytes_allocated = 0;
  std::uint64_t backend_calls = 0;
  std::uint64_t kernel_launches = 0;
  std::uint64_t host_syncs = 0;
};

inline thread_local EventCounters t_event_counters;

}  // namespace ember::kernels
