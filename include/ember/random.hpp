// Random number generation: counter-based Philox4x32-10 streams. A generator is a seed and
// an offset that advances once per draw; element i of a draw depends only on (seed, offset,
// i), so the CPU and the GPU produce the same values for the same seed.
#pragma once

#include <atomic>
#include <cstdint>

#include "ember/tensor.hpp"

namespace ember {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = kDefaultSeed) : seed_(seed), offset_(0) {}
  Generator(const Generator& other) : seed_(other.seed_), offset_(other.offset()) {}
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

 private:
  std::uint64_t seed_;
  std::atomic<std::uint64_t> offset_;
};

// The calling thread's default generator. Each thread's starts from a distinct seed; call
// set_rng_seed in a thread to make its draws reproducible.
Generator& default_generator();
void set_rng_seed(std::uint64_t seed);

// Uniform draws in (0, 1) and standard normal draws (floating dtypes).
Tensor rand(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);

}  // namespace ember
