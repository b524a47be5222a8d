// TensorArg: what a kernel sees of a tensor (pointer, dtype, sizes, strides), plain data
// that can be passed by value to a CUDA kernel. A TensorArg with a null pointer stands for
// a scalar broadcast to every element.
#pragma once

#include <cstdint>

#include "ember/dtype.hpp"
#include "ember/shape.hpp"
#include "kernels/common/macros.hpp"

namespace ember::kernels {

struct TensorArg {
  void* data = nullptr;  // first element (storage offset applied); null: a scalar
  double scalar = 0.0;   // the value when data is null
  DType dtype = DType::Float32;
  int ndim = 0;
  // Dims [0, ndim) only; the entries past them are left unset (an operand is made for every
  // call, and zeroing both arrays each time cost more than filling them).
  std::int64_t sizes[kMaxRank];
  std::int64_t strides[kMaxRank];  // in elements

  EMBER_HD std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= sizes[i];
    return n;
  }
  EMBER_HD bool is_scalar() const { return data == nullptr; }
  bool is_contiguous() const {
    std::int64_t expected = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (sizes[i] != 1 && strides[i] != expected) return false;
      expected *= sizes[i];
    }
    return true;
  }
  template <typename T>
  EMBER_HD T* ptr() const {
    return static_cast<T*>(data);
  }
};

inline TensorArg scalar_arg(double value, DType dtype) {
  TensorArg a;
  a.scalar = value;
  a.dtype = dtype;
  return a;
}

// Offsets of up to N operands that share one iteration shape: linear index -> element
// offset of each operand. Dims are stored innermost first for the div/mod walk.
template <int N>
struct OffsetCalc {
  int ndim = 0;
  unsigned scalars = 0;  // bit k: operand k is a scalar argument (stride 0 in every dim)
  // Dims [0, ndim) only, as in TensorArg: a walk reads no dim past ndim.
  std::int64_t sizes[kMaxRank];
  std::int64_t strides[N][kMaxRank];

  EMBER_HD void get(std::int64_t linear, std::int64_t (&out)[N]) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = 0; d < ndim; ++d) {
      const std::int64_t size = sizes[d];
      const std::int64_t idx = linear % size;
      linear /= size;
      for (int k = 0; k < N; ++k) out[k] += idx * strides[k][d];
    }
  }
};

// Builds an OffsetCalc for operands of the same sizes, merging dims that are contiguous in
// every operand and dropping size-1 dims, so that the common cases walk one or two dims.
// Scalar operands get stride 0.
template <int N>
OffsetCalc<N> make_offset_calc(const TensorArg* const (&args)[N]) {
  OffsetCalc<N> c;
  for (int k = 0; k < N; ++k)
    if (args[k]->is_scalar()) c.scalars |= 1u << k;
  const TensorArg& shape_src = *args[0];
  // Walk from innermost (last) dim outwards.
  for (int d = shape_src.ndim - 1; d >= 0; --d) {
    const std::int64_t size = shape_src.sizes[d];
    if (size == 1) continue;
    if (c.ndim > 0) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k) {
        const std::int64_t s = args[k]->is_scalar() ? 0 : args[k]->strides[d];
        if (s != c.strides[k][c.ndim - 1] * c.sizes[c.ndim - 1]) mergeable = false;
      }
      if (mergeable) {
        c.sizes[c.ndim - 1] *= size;
        continue;
      }
    }
    c.sizes[c.ndim] = size;
    for (int k = 0; k < N; ++k)
      c.strides[k][c.ndim] = args[k]->is_scalar() ? 0 : args[k]->strides[d];
    ++c.ndim;
  }
  return c;
}

}  // namespace ember::kernels
