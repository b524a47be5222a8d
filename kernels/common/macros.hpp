// EMBER_HD marks math that compiles for both host and device; under a plain C++ compiler it
// is an inline (forced where the compiler allows), so host-only files can include the shared
// math.
#pragma once

#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__ __forceinline__
#define EMBER_DEVICE_CODE 1
#elif defined(__GNUC__)
// Forced inline on the host too: a per-element body left out of line costs a call per
// element and keeps its loop from vectorizing.
#define EMBER_HD inline __attribute__((always_inline))
#else
#define EMBER_HD inline
#endif
