// The CPU worker pool: one job at a time, tasks claimed from an atomic counter, workers that
// spin briefly and then sleep on a condition variable.
#include "kernels/cpu/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace ember::kernels::cpu {
namespace {

#if defined(__x86_64__) || defined(__i386__)
constexpr unsigned kFlushBits = 0x8040u;  // MXCSR's FTZ (bit 15) and DAZ (bit 6)
#else
constexpr unsigned kFlushBits = 0u;
#endif

// How long an idle worker (or a caller waiting for the last tasks) spins before sleeping:
// long enough to span the serial host work between the parallel ops of a step, so that a
// worker is not woken from sleep (tens of microseconds) op after op, short enough to be
// harmless to a loaded machine. Measured on 2 cores, the VAE step (784-400-20, batch 256, 2
// threads) took 7.0 ms with 20 us, 5.6 ms with 300 us, and no less with 1 ms.
constexpr auto kSpin = std::chrono::microseconds(300);

// One turn of a spin: a pause lets a hyperthread sibling run.
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int env_threads(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return 0;
  const int n = std::atoi(v);
  return n > 0 ? n : 0;
}

int default_threads() {
  static const int n = [] {
    if (const int e = env_threads("EMBER_NUM_THREADS")) return e;
    if (const int o = env_threads("OMP_NUM_THREADS")) return o;
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }();
  return n;
}

std::atomic<int> g_process_threads{0};
thread_local int t_thread_threads = 0;
thread_local bool t_in_task = false;

class Pool {
 public:
  static Pool& instance() {
    // Never destroyed: workers block forever in their wait once the program ends.
    static Pool* pool = new Pool();
    return *pool;
  }

  void run(int n_tasks, TaskFn task, void* context) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) {  // another thread's job is running: do this one here
      run_here(n_tasks, task, context);
      return;
    }
    ensure_workers(n_tasks - 1);
    Job job;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      job = {generation_ + 1, task, context, n_tasks, denormal_mode()};
      job_ = job;
      remaining_.store(n_tasks, std::memory_order_relaxed);
      ticket_.store(job.generation << 32, std::memory_order_relaxed);
      generation_ = job.generation;
      published_.store(job.generation, std::memory_order_release);
    }
    wake_.notify_all();
    work(job);
    // Wait for the tasks other threads claimed.
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (remaining_.load(std::memory_order_acquire) != 0 &&
           std::chrono::steady_clock::now() < spin_until) {
      spin_pause();
    }
    if (remaining_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    }
  }

  static void run_here(int n_tasks, TaskFn task, void* context) {
    const bool was = t_in_task;
    t_in_task = true;
    for (int t = 0; t < n_tasks; ++t) task(context, t);
    t_in_task = was;
  }

 private:
  struct Job {
    std::uint64_t generation = 0;
    TaskFn task = nullptr;
    void* context = nullptr;
    int n_tasks = 0;
    unsigned mode = 0;  // the caller's denormal mode, which its tasks run in
  };

  // Claims and runs tasks of `job` until none is left. A ticket holds the generation of the
  // job it counts for (high bits) and the next task (low bits), so a thread that still holds
  // an earlier job claims nothing of a later one.
  void work(const Job& job) {
    const bool was = t_in_task;
    t_in_task = true;
    if (denormal_mode() != job.mode) set_denormal_mode(job.mode);
    std::uint64_t ticket = ticket_.load(std::memory_order_acquire);
    for (;;) {
      if ((ticket >> 32) != job.generation) break;
      const int t = static_cast<int>(ticket & 0xffffffffu);
      if (t >= job.n_tasks) break;
      if (!ticket_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_acq_rel)) continue;
      job.task(job.context, t);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        const std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
      ticket = ticket_.load(std::memory_order_acquire);
    }
    t_in_task = was;
  }

  void ensure_workers(int n) {
    while (workers_ < n) {
      std::thread([this] { worker_loop(); }).detach();
      ++workers_;
    }
  }

  void worker_loop() {
    std::uint64_t seen = published_.load(std::memory_order_acquire);
    for (;;) {
      const auto spin_until = std::chrono::steady_clock::now() + kSpin;
      while (published_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < spin_until) {
        spin_pause();
      }
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        job = job_;
        seen = generation_;
      }
      work(job);
    }
  }

  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;      // guards job_, generation_; the condition variables' lock
  std::condition_variable wake_, done_;
  int workers_ = 0;
  Job job_;
  std::uint64_t generation_ = 0;
  std::atomic<std::uint64_t> published_{0};  // generation_, for spinning without the lock
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<int> remaining_{0};
};

}  // namespace

int max_threads() {
  if (t_thread_threads > 0) return t_thread_threads;
  const int p = g_process_threads.load(std::memory_order_relaxed);
  return p > 0 ? p : default_threads();
}

void set_process_threads(int n) {
  g_process_threads.store(std::max(0, n), std::memory_order_relaxed);
}

int set_thread_threads(int n) {
  const int previous = t_thread_threads;
  t_thread_threads = std::max(0, n);
  return previous;
}

bool in_parallel_region() { return t_in_task; }

unsigned denormal_mode() {
#if defined(__x86_64__) || defined(__i386__)
  return _mm_getcsr() & kFlushBits;
#else
  return 0;
#endif
}

void set_denormal_mode(unsigned mode) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr((_mm_getcsr() & ~kFlushBits) | (mode & kFlushBits));
#else
  (void)mode;
#endif
}

unsigned flushing_denormal_mode() { return kFlushBits; }

void run_tasks(int n_tasks, TaskFn task, void* context) {
  if (n_tasks <= 0) return;
  if (n_tasks == 1 || t_in_task) {
    Pool::run_here(n_tasks, task, context);
    return;
  }
  Pool::instance().run(n_tasks, task, context);
}

}  // namespace ember::kernels::cpu
