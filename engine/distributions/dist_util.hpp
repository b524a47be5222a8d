// What the family implementations share: turning user parameters into tensors of one dtype
// and device with a broadcast batch shape, validating them, and shape and parameter helpers.
// The distribution ops they call (fused_log_prob, draw, standard_gamma) are declared in
// engine/internal.hpp.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "ember/distributions/distribution.hpp"
#include "engine/internal.hpp"
#include "kernels/math/distributions/families.hpp"

namespace ember::detail {

struct NamedParam {
  const char* name;
  dist::ParamArg arg;
};

// The parameters as tensors: common floating dtype (float32 when all are numbers), the
// device of the tensor ones, and their broadcast shape (a ShapeError names the distribution
// and the parameters that do not broadcast).
struct Params {
  std::vector<Tensor> tensors;
  Shape batch_shape;
  DType dtype = kFloat32;
  Device device;
};
Params make_params(const char* dist, std::initializer_list<NamedParam> params);

// While validation is on: throws ValueError "<dist>: <param> must be <constraint>, got <v>"
// naming the first offending element.
void validate_param(const char* dist, const char* param, const Tensor& value,
                    const constraints::Constraint& constraint);

// Throws ValueError(message) for a bad parameter, or holds it for the site the distribution
// goes to while a HeldArgErrors is alive (engine/internal.hpp).
void report_invalid_param(std::string message);

// The first element (flat index and value) where ok is false, for error messages.
std::string describe_first_violation(const Tensor& value, const Tensor& ok);

// Shape helpers for event dims: s less its last n dims; s with dims appended.
inline Shape drop_last(const Shape& s, int n) {
  Shape out = s;
  out.resize(s.size() - n);
  return out;
}
inline Shape append(Shape s, std::initializer_list<std::int64_t> dims) {
  for (auto d : dims) s.push_back(d);
  return s;
}

// The probability of a binary outcome as given: probs, or logits. The other form is derived
// per call rather than cached: a cached tensor would keep one graph's history, which a
// backward pass releases.
inline Tensor probs_of(const Tensor& param, bool is_logits) {
  return is_logits ? sigmoid(param) : param;
}
inline Tensor logits_of(const Tensor& param, bool is_logits) {
  return is_logits ? param : log(param) - log1p(-param);
}

// x kept inside [tiny, 1 - eps] of its dtype, so that a draw on the boundary of the unit
// interval (or simplex) keeps a finite log-density.
inline Tensor clamp_to_open_unit(const Tensor& x) {
  const bool f32 = x.dtype() == kFloat32;
  const double tiny = f32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308;
  const double eps = f32 ? 1.1920928955078125e-07 : 2.220446049250313e-16;
  return clamp(x, tiny, 1.0 - eps);
}

// x log x, 0 at x = 0 (and no nan in its gradient there).
inline Tensor xlogx(const Tensor& x) { return x * log(where(gt(x, 0.0), x, 1.0)); }

}  // namespace ember::detail
