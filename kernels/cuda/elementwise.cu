// Creation, copies and selection on the device: fill, fill_linear, copy with dtype
// conversion, where.
#include <cstdint>
#include <type_traits>

#include "kernels/common/dispatch.hpp"
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/cuda_loops.cuh"

namespace ember::kernels::cuda {
namespace {

template <typename T>
struct FillFn {
  T* out;
  T value;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[1]) const {
    out[off[0]] = value;
  }
};

template <typename T>
struct FillLinearFn {
  T* out;
  double start, step;
  // Computed in double and then converted, as on the CPU, so both give the same values.
  __device__ void operator()(std::int64_t i, const std::int64_t (&)[1]) const {
    out[i] = static_cast<T>(start + step * static_cast<double>(i));
  }
};

template <typename To, typename From>
struct CopyFn {
  To* out;
  const From* in;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[2]) const {
    const From v = in[off[1]];
    if constexpr (std::is_same_v<To, std::uint8_t>) {
      out[off[0]] = v != From(0) ? 1 : 0;
    } else {
      out[off[0]] = static_cast<To>(v);
    }
  }
};

template <typename T>
struct WhereFn {
  T* out;
  const std::uint8_t* cond;
  DeviceOperand<T> a, b;
  __device__ void operator()(std::int64_t, const std::int64_t (&off)[4]) const {
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
};

}  // namespace

void CudaBackend::fill(const TensorArg& out, double value) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_all(out.dtype, [&]<typename T>() {
    // A bool holds 0 or 1 whatever the value, as a converting copy gives.
    const T v = std::is_same_v<T, std::uint8_t> ? T(value != 0.0) : static_cast<T>(value);
    const TensorArg* args[1] = {&out};
    launch_elementwise(ctx_.stream(), args, FillFn<T>{out.ptr<T>(), v});
  });
}

void CudaBackend::fill_linear(const TensorArg& out, double start, double step) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_arith(out.dtype, "fill_linear", [&]<typename T>() {
    // out is contiguous: a flat walk.
    OffsetCalc<1> flat;
    flat.ndim = 1;
    flat.sizes[0] = n;
    flat.strides[0][0] = 1;
    launch_elementwise(ctx_.stream(), n, flat, FillLinearFn<T>{out.ptr<T>(), start, step});
  });
}

void CudaBackend::copy(const TensorArg& out, const TensorArg& in) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_all(out.dtype, [&]<typename To>() {
    dispatch_all(in.dtype, [&]<typename From>() {
      const TensorArg* args[2] = {&out, &in};
      launch_elementwise(ctx_.stream(), args,
                         CopyFn<To, From>{out.ptr<To>(), in.ptr<const From>()});
    });
  });
}

void CudaBackend::where(const TensorArg& out, const TensorArg& cond, const TensorArg& a,
                        const TensorArg& b) {
  if (out.numel() == 0) return;
  const DeviceGuard guard(ctx_.device());
  dispatch_all(out.dtype, [&]<typename T>() {
    const TensorArg* args[4] = {&out, &cond, &a, &b};
    launch_elementwise(ctx_.stream(), args,
                       WhereFn<T>{out.ptr<T>(), cond.ptr<const std::uint8_t>(), DeviceOperand<T>(a),
                                  DeviceOperand<T>(b)});
  });
}

}  // namespace ember::kernels::cuda
