// How many CPU threads Ember's kernels may use. An op large enough to be worth splitting
// (more than 32768 elements, or a matrix product of as many multiply-adds) runs on up to this
// many threads of Ember's own pool; idle pool threads sleep, so a process that shares its
// machine is not slowed by Ember's spinning. A service that runs one fit per request thread
// wants each of them at 1 (NumThreadsScope), so requests do not compete for cores.
//
// Denormal floats (magnitudes below 1.2e-38 in float32) cost the CPU a microcode assist of
// about a hundred cycles per operation. A long fit can produce them on its own: an Adam
// state decaying where a gradient has died away, say. set_flush_denormal(true) makes the
// calling thread's CPU kernels treat them as zero, inputs and results (as
// torch.set_flush_denormal): faster, and no longer IEEE-exact below that magnitude. It is the
// calling thread's mode, like its thread limit; the pool's workers take it for the loops they
// run for that thread. A compiled step replays in the mode of the thread that runs it, so
// run its eager steps in the same mode to compare their bits. GPU kernels are not affected.
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

// Sets the calling thread's CPU kernels to flush denormals to zero (true) or to keep them
// (false, the default). Returns false, changing nothing, where the CPU has no such mode
// (only x86 has one in this build).
bool set_flush_denormal(bool on);
// Whether the calling thread flushes denormals.
bool flush_denormal();

// The calling thread's denormal mode while alive; restores the previous one.
class FlushDenormalScope {
 public:
  explicit FlushDenormalScope(bool on);
  ~FlushDenormalScope();
  FlushDenormalScope(const FlushDenormalScope&) = delete;
  FlushDenormalScope& operator=(const FlushDenormalScope&) = delete;

 private:
  unsigned previous_;
};

}  // namespace ember
