// The soak run: a long SVI fit of Pyro's coin (SVI Part I), with the process's resident
// memory read at the start and every tenth of the run. A leak of even a few bytes a step
// shows as a steady climb over 10^6 steps; the run fails (exit 1) when the resident memory at
// the end exceeds the level after the warm-up by more than the allowed growth.
//
//   svi_soak [steps = 1000000] [allowed growth in MiB = 8]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ember/ember.hpp>
#include <fstream>

#include "examples/coin.hpp"

using namespace ember;

namespace {

// Resident set size in MiB, from /proc/self/statm (pages).
double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  long total = 0, resident = 0;
  statm >> total >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  const long steps = argc > 1 ? std::atol(argv[1]) : 1000000;
  const double allowed = argc > 2 ? std::atof(argv[2]) : 8.0;
  if (steps < 10) {
    std::fprintf(stderr, "svi_soak: at least 10 steps\n");
    return 2;
  }
  set_rng_seed(0);
  const Tensor flips = tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  SVI svi(coin::model, coin::guide, optim::Adam({.lr = 5e-4, .betas = {0.90, 0.999}}),
          Trace_ELBO());
  const double at_start = resident_mib();
  // Warm-up: the allocator caches and the param store reach their steady state.
  const long warmup = steps / 10;
  for (long i = 0; i < warmup; ++i) svi.step(flips);
  const double after_warmup = resident_mib();
  std::printf("step %8ld  resident %.2f MiB (start %.2f MiB)\n", warmup, after_warmup, at_start);
  double last = after_warmup;
  for (long i = warmup; i < steps; ++i) {
    svi.step(flips);
    if ((i + 1) % warmup == 0) {
      last = resident_mib();
      std::printf("step %8ld  resident %.2f MiB\n", i + 1, last);
      std::fflush(stdout);
    }
  }
  const double growth = last - after_warmup;
  std::printf("growth after the warm-up: %.2f MiB over %ld steps (allowed %.2f)\n", growth,
              steps - warmup, allowed);
  std::printf("fitted: alpha_q %.3f beta_q %.3f\n", param("alpha_q").item(),
              param("beta_q").item());
  return growth <= allowed ? 0 : 1;
}
