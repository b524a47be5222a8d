// The thread settings users see (ember/threads.hpp), over the CPU launcher's pool: its
// thread counts and the denormal mode its loops run in.
#include "ember/threads.hpp"

#include "ember/error.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace ember {

void set_num_threads(int n) { kernels::cpu::set_process_threads(n); }

int num_threads() { return kernels::cpu::max_threads(); }

NumThreadsScope::NumThreadsScope(int n) {
  EMBER_CHECK(n >= 1, "NumThreadsScope: the number of threads must be at least 1, got ", n);
  previous_ = kernels::cpu::set_thread_threads(n);
}

NumThreadsScope::~NumThreadsScope() { kernels::cpu::set_thread_threads(previous_); }

bool set_flush_denormal(bool on) {
  const unsigned flushing = kernels::cpu::flushing_denormal_mode();
  if (flushing == 0) return false;
  kernels::cpu::set_denormal_mode(on ? flushing : 0u);
  return true;
}

bool flush_denormal() {
  const unsigned flushing = kernels::cpu::flushing_denormal_mode();
  return flushing != 0 && kernels::cpu::denormal_mode() == flushing;
}

FlushDenormalScope::FlushDenormalScope(bool on) : previous_(kernels::cpu::denormal_mode()) {
  set_flush_denormal(on);
}

FlushDenormalScope::~FlushDenormalScope() { kernels::cpu::set_denormal_mode(previous_); }

}  // namespace ember
