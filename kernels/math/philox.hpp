// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
// the counter-based generator cuRAND also implements, written once for host and device so
// the CPU and the GPU draw identical numbers for the same (seed, offset, element).
//
// Counter layout of one draw: {round, offset_lo, element_lo, element_hi}, key = seed.
// `offset` numbers the draws made from one generator (it advances once per sampling call);
// `element` is the flat index of the value being drawn; `round` counts extra blocks that one
// element may need (rejection samplers). Every value is therefore a pure function of
// (seed, offset, element, round): no state is shared between threads.
#pragma once

#include <cstdint>

#include "kernels/common/macros.hpp"

namespace ember::kernels {

struct PhiloxKey {
  std::uint32_t k0, k1;
};
struct Philox4 {
  std::uint32_t x, y, z, w;
};

EMBER_HD std::uint32_t mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t* hi) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  *hi = static_cast<std::uint32_t>(product >> 32);
  return static_cast<std::uint32_t>(product);
}

EMBER_HD Philox4 philox_round(Philox4 c, PhiloxKey k) {
  std::uint32_t hi0, hi1;
  const std::uint32_t lo0 = mulhilo32(0xD2511F53u, c.x, &hi0);
  const std::uint32_t lo1 = mulhilo32(0xCD9E8D57u, c.z, &hi1);
  return {hi1 ^ c.y ^ k.k0, lo1, hi0 ^ c.w ^ k.k1, lo0};
}

// Ten rounds with the Weyl key schedule.
EMBER_HD Philox4 philox4x32_10(Philox4 counter, PhiloxKey key) {
  for (int r = 0; r < 9; ++r) {
    counter = philox_round(counter, key);
    key.k0 += 0x9E3779B9u;
    key.k1 += 0xBB67AE85u;
  }
  return philox_round(counter, key);
}

// The four 32-bit words for one element of one draw.
EMBER_HD Philox4 philox_block(std::uint64_t seed, std::uint64_t offset, std::uint64_t element,
                              std::uint32_t round = 0) {
  const Philox4 counter{round, static_cast<std::uint32_t>(offset),
                        static_cast<std::uint32_t>(element),
                        static_cast<std::uint32_t>(element >> 32)};
  // The offset's high word is folded into the key, so 2^64 draws stay distinct.
  const PhiloxKey key{static_cast<std::uint32_t>(seed),
                      static_cast<std::uint32_t>(seed >> 32) ^
                          static_cast<std::uint32_t>(offset >> 32) * 0x9E3779B9u};
  return philox4x32_10(counter, key);
}

// Uniforms in the open interval (0, 1): never 0 (log-safe) and never 1.
EMBER_HD float uint_to_uniform_float(std::uint32_t v) {
  return (static_cast<float>(v >> 8) + 0.5f) * (1.0f / 16777216.0f);
}
EMBER_HD double uints_to_uniform_double(std::uint32_t a, std::uint32_t b) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(a) << 21) ^ (b >> 11);  // 53 bits
  return (static_cast<double>(bits & ((1ull << 53) - 1)) + 0.5) * (1.0 / 9007199254740992.0);
}

// Two uniforms of type T from one block (uses all four words for double).
template <typename T>
EMBER_HD void block_to_uniform2(const Philox4& b, T* u0, T* u1) {
  if constexpr (sizeof(T) == 4) {
    *u0 = uint_to_uniform_float(b.x);
    *u1 = uint_to_uniform_float(b.y);
  } else {
    *u0 = uints_to_uniform_double(b.x, b.y);
    *u1 = uints_to_uniform_double(b.z, b.w);
  }
}

}  // namespace ember::kernels
