// Basic draws from the Philox stream (kernels/math/philox.hpp), for host and device: element
// `i` of a draw made at (seed, offset) uses counter element `i`, so the CPU and the GPU
// produce the same values. Families with their own samplers add them in their group headers.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/common/macros.hpp"
#include "kernels/math/philox.hpp"
#include "kernels/math/special.hpp"

namespace ember::kernels {

// Where a sampler draws from: the generator's seed and this draw's offset. When `base` is
// set (a generator whose offset lives in device memory, for CUDA Graph replay), the offset
// is relative to *base, read by the kernel at run time: a replayed graph whose launches
// carry fixed arguments still draws fresh numbers once the base has advanced.
struct RngState {
  std::uint64_t seed;
  std::uint64_t offset;
  const std::uint64_t* base = nullptr;

  EMBER_HD std::uint64_t draw_offset() const {
#if defined(__CUDA_ARCH__)
    return base != nullptr ? *base + offset : offset;
#else
    // A load through a chosen pointer rather than a branch: host loops over draws vectorize.
    static constexpr std::uint64_t kNoBase = 0;
    return *(base != nullptr ? base : &kNoBase) + offset;
#endif
  }
};

// Both uniforms of one Philox block: element `i` in round `round` (independent of each
// other; for double, each uses two of the block's four words).
template <typename T>
EMBER_HD void uniform_pair(RngState rng, std::int64_t i, std::uint32_t round, T* u0, T* u1) {
  block_to_uniform2<T>(
      philox_block(rng.seed, rng.draw_offset(), static_cast<std::uint64_t>(i), round), u0, u1);
}

// One uniform in (0, 1) for element `i` in round `round`.
template <typename T>
EMBER_HD T uniform01(RngState rng, std::int64_t i, std::uint32_t round = 0) {
  T u0, u1;
  uniform_pair<T>(rng, i, round, &u0, &u1);
  return u0;
}

// One standard normal for element `i` in round `round`, by Box-Muller on the block's two
// uniforms (the cosine branch; the sine branch is not reused, so each element stays
// independent of its neighbours' positions). Host floats take log and cos as polynomials, so
// that a loop of draws vectorizes; a sampler that draws inside a rejection loop, one element
// at a time, passes kVectorMath = false for the C library's, faster there.
template <typename T, bool kVectorMath = true>
EMBER_HD T normal01(RngState rng, std::int64_t i, std::uint32_t round = 0) {
  T u0, u1;
  uniform_pair<T>(rng, i, round, &u0, &u1);
  if constexpr (kVectorMath) {
    return ::sqrt(T(-2) * log_fast(u0)) * cos_two_pi_fast(u1);
  } else {
    return ::sqrt(T(-2) * ::log(u0)) * ::cos(kTwoPi<T> * u1);
  }
}

// Sampler functors: operator()(params, rng, element) -> value. kParams parameters are read
// per element (broadcast to the output's shape).
template <typename T>
struct UniformSampler {
  static constexpr int kParams = 0;
  EMBER_HD T operator()(const T*, RngState rng, std::int64_t i) const {
    return uniform01<T>(rng, i);
  }
};

template <typename T>
struct NormalSampler {
  static constexpr int kParams = 0;
  EMBER_HD T operator()(const T*, RngState rng, std::int64_t i) const {
    return normal01<T>(rng, i);
  }
};

#define EMBER_SAMPLERS_BASIC(X) \
  X(Uniform)                    \
  X(Normal)

}  // namespace ember::kernels
