// Runtime dtype -> C++ type dispatch for launchers: f.template operator()<T>() is called
// with the C++ type behind the dtype. Only the listed types are instantiated, which keeps
// the number of kernel instantiations (and build time) in check.
#pragma once

#include <cstdint>

#include "ember/dtype.hpp"
#include "ember/error.hpp"

namespace ember::kernels {

// Calls f<T>() for the one T of Ts whose dtype is t; a DTypeError names `what` and the
// accepted dtypes when t is none of them.
template <typename... Ts, typename F>
void dispatch_types(DType t, const char* what, const char* accepted, F&& f) {
  const bool found =
      ((t == dtype_of<Ts>::value ? (f.template operator()<Ts>(), true) : false) || ...);
  EMBER_CHECK_T(DTypeError, found, what, ": expected ", accepted, ", got ", dtype_name(t));
}

template <typename F>
void dispatch_floating(DType t, const char* what, F&& f) {
  dispatch_types<float, double>(t, what, "a floating dtype", f);
}

// float32, float64 and int64: the arithmetic dtypes.
template <typename F>
void dispatch_arith(DType t, const char* what, F&& f) {
  dispatch_types<float, double, std::int64_t>(t, what, "float32, float64 or int64", f);
}

// Every dtype; bool is stored as std::uint8_t.
template <typename F>
void dispatch_all(DType t, F&& f) {
  dispatch_types<float, double, std::int64_t, std::uint8_t>(t, "copy", "a known dtype", f);
}

// An index operand that is int64 or the floating dtype T of the data it indexes (a
// Categorical's value): f<std::int64_t>() or f<T>(), with a DTypeError naming `what` else.
template <typename T, typename F>
void dispatch_index_or(DType t, const char* what, F&& f) {
  dispatch_types<std::int64_t, T>(t, what, "int64 or the data's dtype", f);
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
