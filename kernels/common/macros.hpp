// EMBER_HD marks math that compiles for both host and device; under a plain C++
// compiler it is empty, so host-only files can include the shared math.
#pragma once

#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__ __forceinline__
#define EMBER_DEVICE_CODE 1
#else
#define EMBER_HD inline
#endif
