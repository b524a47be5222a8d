// How many CPU threads Ember's kernels may use. An op large enough to be worth splitting
// (more than 32768 elements, or a matrix product of as many multiply-adds) runs on up to this
// many threads of Ember's own pool; idle pool threads sleep, so a process that shares its
// machine is not slowed by Ember's spinning. A service that runs one fit per request thread
// wants each of them at 1 (NumThreadsScope), so requests do not compete for cores.
#pragma once

namespace ember {

// Process-wide; n <= 0 restores the default: EMBER_NUM_THREADS, else OMP_NUM_THREADS, else
// the number of cores.
void set_num_threads(int n);
// What an op started by the calling thread now may use.
int num_threads();

// The calling thread's own setting while alive (over the process-wide one); scopes nest.
class NumThreadsScope {
 public:
  explicit NumThreadsScope(int n);
  ~NumThreadsScope();
  NumThreadsScope(const NumThreadsScope&) = delete;
  NumThreadsScope& operator=(const NumThreadsScope&) = delete;

 private:
  int previous_;
};

}  // namespace ember
