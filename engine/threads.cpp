// The thread settings users see (ember/threads.hpp), over the CPU launcher's pool.
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

}  // namespace ember
