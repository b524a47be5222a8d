// The harness of the GPU tests: which device plays the GPU, the skip where there is none,
// and how close the device's results must come to the CPU's, their reference.
//
// Every case begins with EMBER_REQUIRE_CUDA(), which skips it with the reason "no CUDA
// device" where there is none. Building with -DEMBER_CUDA_TEST_ON_CPU (the CMake option of
// the same name) makes the CPU play the device, so that every case runs on a machine
// without a GPU: that checks the harness itself, the comparisons then holding trivially.
#pragma once

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <vector>

#include "test_util.hpp"

namespace ember::test {

#if defined(EMBER_CUDA_TEST_ON_CPU)
inline bool have_device() { return true; }
inline Device target() { return Device::cpu(); }
#else
inline bool have_device() { return cuda_available(); }
inline Device target() { return Device::cuda(0); }
#endif

#define EMBER_REQUIRE_CUDA() \
  if (!::ember::test::have_device()) GTEST_SKIP() << "no CUDA device"

// |device - cpu| <= atol + rtol * |cpu| elementwise.
struct Tolerance {
  double rtol, atol;
  Tolerance scaled(double factor) const { return {rtol * factor, atol * factor}; }
};

inline constexpr Tolerance kExact{0.0, 0.0};

// One evaluation of the same formula on each side: the device's math library (log, tan,
// lgamma, ...) may differ from glibc's in the last ulp, and nvcc contracts a * b + c into
// an FMA.
inline Tolerance last_ulp_tolerance(DType t) {
  return t == kFloat64 ? Tolerance{1e-12, 1e-12} : Tolerance{1e-5, 1e-5};
}

// An op's result, whose terms the device may sum in another order (reductions, scans, GEMM,
// the gradients of broadcast operands).
inline Tolerance op_tolerance(DType t) {
  return t == kFloat64 ? Tolerance{1e-9, 1e-11} : Tolerance{2e-4, 2e-5};
}

// A chain of ops in which the last-ulp differences can grow: factorizations and triangular
// solves, and optimizer steps (Adam-like updates divide by sqrt(v)). A wrong formula is off
// in the leading digits.
inline Tolerance chain_tolerance(DType t) {
  return t == kFloat64 ? Tolerance{1e-10, 1e-10} : Tolerance{1e-4, 1e-4};
}

struct Agreement {
  // The fraction of elements allowed outside the tolerance (0: every element must agree).
  double max_mismatch_fraction = 0.0;
  // Takes the absolute floor relative to the largest |cpu| value (sums over many terms).
  bool atol_from_max = false;
  // Absolute floors per element, added to the tolerance's (see distributions_cuda_test.cpp).
  std::vector<double> atol_per_element = {};
};

// Compares a tensor from the device with the CPU's: definedness, device, shape, dtype, then
// values. `mask`, when given, receives 1 where an element agrees and 0 where it does not.
inline ::testing::AssertionResult agree(const Tensor& on_device, const Tensor& on_cpu,
                                        Tolerance tol, const Agreement& how = {},
                                        std::vector<double>* mask = nullptr) {
  if (on_device.defined() != on_cpu.defined())
    return ::testing::AssertionFailure()
           << "defined on device: " << on_device.defined() << ", on cpu: " << on_cpu.defined();
  if (!on_cpu.defined()) return ::testing::AssertionSuccess();
  if (!(on_device.device() == target()))
    return ::testing::AssertionFailure()
           << "result is on " << on_device.device() << ", not " << target();
  if (!(on_device.shape() == on_cpu.shape()))
    return ::testing::AssertionFailure()
           << "shape " << on_device.shape() << " vs cpu " << on_cpu.shape();
  if (on_device.dtype() != on_cpu.dtype())
    return ::testing::AssertionFailure()
           << "dtype " << on_device.dtype() << " vs cpu " << on_cpu.dtype();
  const auto a = on_device.to_vector<double>();
  const auto e = on_cpu.to_vector<double>();
  if (how.atol_from_max) {
    double largest = 1.0;
    for (double v : e)
      if (std::isfinite(v)) largest = std::max(largest, std::abs(v));
    tol.atol *= largest;
  }
  if (mask != nullptr) mask->assign(a.size(), 1.0);
  std::size_t mismatches = 0, first = a.size();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double floor = how.atol_per_element.empty() ? 0.0 : how.atol_per_element.at(i);
    if (close_value(a[i], e[i], tol.rtol, tol.atol + floor)) continue;
    if (mask != nullptr) (*mask)[i] = 0.0;
    if (mismatches++ == 0) first = i;
  }
  const double allowed = how.max_mismatch_fraction * static_cast<double>(a.size());
  if (mismatches == 0 || static_cast<double>(mismatches) <= allowed)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << mismatches << " of " << a.size() << " elements differ (allowed " << allowed
         << "); first at " << index_str(on_cpu.shape(), static_cast<std::int64_t>(first))
         << " of shape " << on_cpu.shape() << ": device " << std::setprecision(17) << a[first]
         << " vs cpu " << e[first] << " (rtol " << tol.rtol << ", atol " << tol.atol << ")";
}

}  // namespace ember::test
