// Random number generation: counter-based Philox4x32-10 streams. A generator is a seed and
// an offset that advances once per draw; element i of a draw depends only on (seed, offset,
// i), so the CPU and the GPU produce the same values for the same seed.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <thread>

#include "ember/tensor.hpp"

namespace ember {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = kDefaultSeed) : seed_(seed), offset_(0) {}
  // Copies are independent: a device offset is copied, not shared.
  Generator(const Generator& other);
  Generator& operator=(const Generator& other);

  static constexpr std::uint64_t kDefaultSeed = 0x853c49e6748fea9bULL;

  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_.load(std::memory_order_relaxed); }
  // Restarts the stream from `seed` (offset 0).
  void manual_seed(std::uint64_t seed);
  void set_offset(std::uint64_t offset) { offset_.store(offset, std::memory_order_relaxed); }
  // Reserves the next draw: returns its offset and advances. Thread-safe.
  std::uint64_t next_offset() { return offset_.fetch_add(1, std::memory_order_relaxed); }
  // An independent generator whose seed is derived from this one's state (and advances it):
  // forks of one seed are reproducible and do not overlap.
  Generator fork();

  // Keeps the stream's position in memory on `device`, for CUDA Graph capture and replay:
  // kernels then read the base offset from that memory at run time, and each draw uses
  // base + its offset relative to the last commit. The current position moves to the base.
  // Such a generator belongs to the thread that called this: a draw's relative offset and
  // the base it is added to must come from the same side of a commit, which only one thread
  // can guarantee, so draws and commits from any other thread raise a ValueError.
  void use_device_offset(Device device);
  bool has_device_offset() const { return device_base_.defined(); }
  // Adds the draws made since the last commit to the base, as an operation queued on the
  // base's device (no host sync), and restarts the relative count. Call it between steps,
  // from the owning thread. A captured step replayed after a commit draws fresh numbers.
  void commit_device_offset();
  // Raises a ValueError naming `site` when this generator keeps a device offset and the
  // calling thread is not the one that called use_device_offset (or made this copy).
  void check_device_owner(std::string_view site) const;
  // The base offset (a 0-d int64 tensor on the device); undefined without a device offset.
  const Tensor& device_offset() const { return device_base_; }
  // Where kernels read the base; null without a device offset.
  const std::uint64_t* device_offset_ptr() const;

 private:
  std::uint64_t seed_;
  std::atomic<std::uint64_t> offset_;
  Tensor device_base_;
  std::thread::id device_owner_;
};

// The calling thread's default generator. Each thread's starts from a distinct seed; call
// set_rng_seed in a thread to make its draws reproducible. Inside a GeneratorScope it is the
// scope's generator instead.
Generator& default_generator();
void set_rng_seed(std::uint64_t seed);

// Makes `gen` the calling thread's default generator while alive (scopes nest); how the seed
// handler makes every draw of a model reproducible without touching the thread's own stream.
class GeneratorScope {
 public:
  explicit GeneratorScope(Generator& gen);
  ~GeneratorScope();
  GeneratorScope(const GeneratorScope&) = delete;
  GeneratorScope& operator=(const GeneratorScope&) = delete;

 private:
  Generator* prev_;
};

// Uniform draws in (0, 1) and standard normal draws (floating dtypes).
Tensor rand(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);

}  // namespace ember
