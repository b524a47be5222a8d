// Runtime dtype -> C++ type dispatch for launchers: f.template operator()<T>() is called
// with the C++ type behind the dtype. Only the listed types are instantiated, which keeps
// the number of kernel instantiations (and build time) in check.
#pragma once

#include <cstdint>

#include "ember/dtype.hpp"
#include "ember/error.hpp"

namespace ember::kernels {

template <typename F>
void dispatch_floating(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::Float32:
      f.template operator()<float>();
      return;
    case DType::Float64:
      f.template operator()<double>();
      return;
    default:
      break;
  }
  EMBER_CHECK_T(DTypeError, false, what, ": expected a floating dtype, got ", dtype_name(t));
}

// float32, float64 and int64: the arithmetic dtypes.
template <typename F>
void dispatch_arith(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::Float32:
      f.template operator()<float>();
      return;
    case DType::Float64:
      f.template operator()<double>();
      return;
    case DType::Int64:
      f.template operator()<std::int64_t>();
      return;
    default:
      break;
  }
  EMBER_CHECK_T(DTypeError, false, what, ": expected float32, float64 or int64, got ",
                dtype_name(t));
}

template <typename F>
void dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::Float32:
      f.template operator()<float>();
      return;
    case DType::Float64:
      f.template operator()<double>();
      return;
    case DType::Int64:
      f.template operator()<std::int64_t>();
      return;
    case DType::Bool:
      f.template operator()<std::uint8_t>();
      return;
  }
}

// Accumulator of a reduction: double for float32 on the CPU keeps long sums accurate.
template <typename T>
struct HostAcc {
  using type = T;
};
template <>
struct HostAcc<float> {
  using type = double;
};

}  // namespace ember::kernels
