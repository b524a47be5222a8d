// What the family implementations share: turning user parameters into tensors of one dtype
// and device with a broadcast batch shape, validating them, shape and parameter helpers, and
// the base of the families scored by one fused kernel. The distribution ops they call
// (fused_log_prob, draw, standard_gamma) are declared in engine/internal.hpp.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
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
  // While validation is on, the parameter must satisfy this (no check when null).
  const constraints::Constraint* must_be = nullptr;
};

// A family's parameters, inline (kMaxDistParams at most): a distribution made at every step
// takes no heap block for them.
using ParamList = InlineVector<Tensor, kernels::kMaxDistParams>;
// The parameters as tensors: common floating dtype (float32 when all are numbers), the
// device of the tensor ones, and their broadcast shape (a ShapeError names the distribution
// and the parameters that do not broadcast); then each checked against its must_be.
struct Params {
  ParamList tensors;
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

// The flat index of the first element where ok is false, or -1.
std::int64_t first_violation(const Tensor& ok);
// A flat index of `shape` as its multi-index, "[i, j, ...]".
std::string format_index(std::int64_t flat, const Shape& shape);
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

// The values 0..n-1 of a finite discrete support, shaped (n,) + (1,) * batch rank, or
// expanded to (n,) + batch (DistributionImpl::enumerate_support).
Tensor enumerate_values(std::int64_t n, const Shape& batch, DType dtype, Device device,
                        bool expand);

// A family whose parameters broadcast to its batch shape, with a scalar event and one fused
// log-density kernel (kernels/math/distributions/families.hpp). It holds the parameters and
// does what all such families do alike (name, log-density, expand); a family adds its draws,
// moments and support.
template <class Derived>
class FamilyImpl : public dist::DistributionImpl {
 public:
  FamilyImpl(const char* name, kernels::LogProbFamily family, Params params)
      : DistributionImpl(std::move(params.batch_shape), {}, params.dtype, params.device),
        name_(name),
        family_(family),
        params_(std::move(params.tensors)) {}

  std::string name() const override { return name_; }
  Tensor log_prob(const Tensor& value) const override {
    return fused_log_prob(family_, value, std::span<const Tensor>(params_.begin(), params_.size()));
  }
  // A copy of the family (its other state included) over views of the parameters.
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    auto out = pooled<Derived>(static_cast<const Derived&>(*this));
    for (Tensor& p : out->params_) p = p.expand(batch);
    out->batch_shape_ = batch;
    return out;
  }

 protected:
  const Tensor& param(std::size_t i) const { return params_[i]; }
  const Tensor& last_param() const { return params_[params_.size() - 1]; }
  // t broadcast to the batch shape: a moment has one value per batch element.
  Tensor batched(const Tensor& t) const { return t.expand(batch_shape_); }
  // Draws of a parameter-free sampler (Uniform, Normal) of shape sample_shape + batch_shape.
  Tensor standard_draws(kernels::SampleOp op, const Shape& sample_shape, Generator& gen) const {
    return draw(op, extended_shape(sample_shape), dtype_, device_, {}, gen);
  }

 private:
  const char* name_;
  kernels::LogProbFamily family_;
  ParamList params_;
};

// A FamilyImpl whose last parameter is the success probability of a trial, held as given:
// probs, or logits. The other form is derived per call rather than cached: a cached tensor
// would keep one graph's history, which a backward pass releases.
template <class Derived>
class ProbsOrLogitsImpl : public FamilyImpl<Derived> {
 public:
  ProbsOrLogitsImpl(const char* name, kernels::LogProbFamily family, Params params, bool is_logits)
      : FamilyImpl<Derived>(name, family, std::move(params)), is_logits_(is_logits) {}

  Tensor probs() const { return is_logits_ ? sigmoid(given()) : given(); }
  Tensor logits() const { return is_logits_ ? given() : log(given()) - log1p(-given()); }

 protected:
  // The probability parameter as given.
  const Tensor& given() const { return this->last_param(); }
  // p (1 - p), from logits without cancellation.
  Tensor p_times_q() const {
    return is_logits_ ? sigmoid(given()) * sigmoid(-given()) : given() * (1.0 - given());
  }
  // -(p log p + (1 - p) log(1 - p)), the entropy of one trial.
  Tensor trial_entropy() const {
    if (!is_logits_) return -(xlogx(given()) + xlogx(1.0 - given()));
    const Tensor p = sigmoid(given());
    return -(p * log_sigmoid(given()) + (1.0 - p) * log_sigmoid(-given()));
  }

  bool is_logits_;
};

// The implementation of a FamilyImpl family from its named parameters (made and validated by
// make_params); extra goes to Impl's constructor after them.
template <class Impl, class... Extra>
std::shared_ptr<const Impl> make_family(const char* dist, kernels::LogProbFamily family,
                                        std::initializer_list<NamedParam> params, Extra... extra) {
  return pooled<Impl>(dist, family, make_params(dist, params), extra...);
}

}  // namespace ember::detail
