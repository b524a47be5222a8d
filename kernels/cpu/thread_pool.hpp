// The CPU launcher's worker threads. A parallel loop splits its range into tasks that the
// calling thread and the pool's workers share. Idle workers sleep: after a job they spin for
// a few microseconds (so the next op of a step starts without a wake-up) and then block, so
// an idle Ember costs other processes nothing, unlike a spinning OpenMP team.
//
// How many threads an op may use: the calling thread's limit (ThreadLimitScope, for a
// service running one fit per request thread), else the process-wide setting
// (set_num_threads), else EMBER_NUM_THREADS, else OMP_NUM_THREADS, else the cores. One job
// runs at a time: a thread that finds the pool busy runs its loop itself, so concurrent
// callers never wait on each other's work.
#pragma once

#include <cstdint>

namespace ember::kernels::cpu {

// The threads the calling thread's next parallel loop may use (at least 1).
int max_threads();
void set_process_threads(int n);  // 0: back to the default
// The calling thread's own limit (0: none); returns the previous one.
int set_thread_threads(int n);

// Runs task(t) for t in [0, n_tasks) on up to n_tasks threads, the caller among them, and
// returns when all are done. A task runs on one thread; nested calls run serially.
using TaskFn = void (*)(void* context, int task);
void run_tasks(int n_tasks, TaskFn task, void* context);

// True inside a task of run_tasks (a nested loop then stays on its thread).
bool in_parallel_region();

// The calling thread's handling of denormal floats: on x86, the flush-to-zero and
// denormals-are-zero bits of MXCSR (0 where the CPU has no such mode). A job's tasks run in
// the mode of the thread that started it, on whichever thread takes them.
unsigned denormal_mode();
void set_denormal_mode(unsigned mode);
// The mode that flushes denormals (FTZ and DAZ); 0 where there is none.
unsigned flushing_denormal_mode();

}  // namespace ember::kernels::cpu
