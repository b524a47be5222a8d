// The per-element update of every optimizer, once, for host and device, and the slot that
// describes one parameter to the fused multi-tensor launch. The host folds everything that
// depends on the step (schedule, learning-rate decay, bias corrections) into a few scalars
// per parameter; a functor here applies them to one element of the parameter and its state.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>

#include "kernels/common/macros.hpp"

namespace ember::kernels {

#define EMBER_OPTIMIZERS(X) \
  X(Sgd)                    \
  X(Adam)                   \
  X(ClippedAdam)            \
  X(Adagrad)                \
  X(Rmsprop)

enum class OptimKind : std::uint8_t {
#define EMBER_ENUM_ENTRY(name) name,
  EMBER_OPTIMIZERS(EMBER_ENUM_ENTRY)
#undef EMBER_ENUM_ENTRY
};

inline const char* optim_kind_name(OptimKind kind) {
#define EMBER_NAME_OF(name) #name,
  constexpr const char* kNames[] = {EMBER_OPTIMIZERS(EMBER_NAME_OF)};
#undef EMBER_NAME_OF
  const auto i = static_cast<unsigned>(kind);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "?";
}

// The most state buffers any optimizer keeps per parameter (RMSprop's square average,
// momentum buffer and gradient average).
inline constexpr int kMaxOptimStates = 3;

// ---------------------------------------------------------- per-step scalars ----
// Plain data, computed in double on the host for one parameter and one step.

struct SgdScalars {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first_step;  // the momentum buffer starts as the first gradient, undampened
};

struct AdamScalars {
  double step_size;              // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  double beta1, beta2, eps, weight_decay;
};

struct ClippedAdamScalars {
  double step_size;  // lr * lrd^calls * sqrt(1 - beta2^t) / (1 - beta1^t)
  double beta1, beta2, eps, weight_decay, clip_norm;
};

struct AdagradScalars {
  double clr;  // lr / (1 + (t - 1) * lr_decay)
  double eps, weight_decay;
};

struct RmspropScalars {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
};

// Which member is live follows from the OptimKind of the call.
union OptimScalars {
  SgdScalars sgd;
  AdamScalars adam;
  ClippedAdamScalars clipped_adam;
  AdagradScalars adagrad;
  RmspropScalars rmsprop;
};

// One parameter of a fused step: contiguous param (updated in place), its contiguous
// gradient, the contiguous state buffers the optimizer uses (null where it keeps none), all
// of numel elements of the call's dtype.
struct OptimSlot {
  void* param;
  const void* grad;
  void* state[kMaxOptimStates];
  std::int64_t numel;
  OptimScalars scalars;
};

// A slot's pointers typed for the update functors.
template <typename T>
struct SlotPointers {
  T* param;
  const T* grad;
  T* state[kMaxOptimStates];

  EMBER_HD explicit SlotPointers(const OptimSlot& s)
      : param(static_cast<T*>(s.param)),
        grad(static_cast<const T*>(s.grad)),
        state{static_cast<T*>(s.state[0]), static_cast<T*>(s.state[1]),
              static_cast<T*>(s.state[2])} {}
};

// ------------------------------------------------------------ update functors ----
// Each is made once per slot (the scalars converted to T there, out of the element loop) and
// called for every element index i. They follow PyTorch's (and, for ClippedAdam, Pyro's)
// single-tensor loops line by line.

// SGD. state[0]: momentum buffer (only when momentum != 0).
template <typename T>
struct SgdUpdate {
  T lr, momentum, dampening, weight_decay;
  bool nesterov, first_step;

  EMBER_HD explicit SgdUpdate(const OptimScalars& s)
      : lr(T(s.sgd.lr)),
        momentum(T(s.sgd.momentum)),
        dampening(T(s.sgd.dampening)),
        weight_decay(T(s.sgd.weight_decay)),
        nesterov(s.sgd.nesterov),
        first_step(s.sgd.first_step) {}

  EMBER_HD void operator()(const SlotPointers<T>& s, std::int64_t i) const {
    const T p = s.param[i];
    T d = s.grad[i];
    if (weight_decay != T(0)) d += weight_decay * p;
    if (momentum != T(0)) {
      T& buf = s.state[0][i];
      buf = first_step ? d : momentum * buf + (T(1) - dampening) * d;
      d = nesterov ? d + momentum * buf : buf;
    }
    s.param[i] = p - lr * d;
  }
};

// Adam (L2 weight decay added to the gradient). state[0]: exp_avg m, state[1]: exp_avg_sq v.
template <typename T>
struct AdamUpdate {
  T step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay;

  EMBER_HD explicit AdamUpdate(const OptimScalars& s)
      : step_size(T(s.adam.step_size)),
        bias_correction2_sqrt(T(s.adam.bias_correction2_sqrt)),
        beta1(T(s.adam.beta1)),
        beta2(T(s.adam.beta2)),
        eps(T(s.adam.eps)),
        weight_decay(T(s.adam.weight_decay)) {}

  EMBER_HD void operator()(const SlotPointers<T>& s, std::int64_t i) const {
    const T p = s.param[i];
    T g = s.grad[i];
    if (weight_decay != T(0)) g += weight_decay * p;
    const T m = beta1 * s.state[0][i] + (T(1) - beta1) * g;
    const T v = beta2 * s.state[1][i] + (T(1) - beta2) * g * g;
    s.state[0][i] = m;
    s.state[1][i] = v;
    s.param[i] = p - step_size * m / (::sqrt(v) / bias_correction2_sqrt + eps);
  }
};

// Pyro's ClippedAdam: the gradient clamped to [-clip_norm, clip_norm] before weight decay,
// and eps added to sqrt(v) itself (the bias correction of v is folded into step_size).
// state[0]: exp_avg m, state[1]: exp_avg_sq v.
template <typename T>
struct ClippedAdamUpdate {
  T step_size, beta1, beta2, eps, weight_decay, clip_norm;

  EMBER_HD explicit ClippedAdamUpdate(const OptimScalars& s)
      : step_size(T(s.clipped_adam.step_size)),
        beta1(T(s.clipped_adam.beta1)),
        beta2(T(s.clipped_adam.beta2)),
        eps(T(s.clipped_adam.eps)),
        weight_decay(T(s.clipped_adam.weight_decay)),
        clip_norm(T(s.clipped_adam.clip_norm)) {}

  EMBER_HD void operator()(const SlotPointers<T>& s, std::int64_t i) const {
    const T p = s.param[i];
    T g = s.grad[i];
    // As torch.clamp: NaN stays NaN.
    g = g < -clip_norm ? -clip_norm : (g > clip_norm ? clip_norm : g);
    if (weight_decay != T(0)) g += weight_decay * p;
    const T m = beta1 * s.state[0][i] + (T(1) - beta1) * g;
    const T v = beta2 * s.state[1][i] + (T(1) - beta2) * g * g;
    s.state[0][i] = m;
    s.state[1][i] = v;
    s.param[i] = p - step_size * m / (::sqrt(v) + eps);
  }
};

// Adagrad. state[0]: the sum of squared gradients (starts at initial_accumulator_value).
template <typename T>
struct AdagradUpdate {
  T clr, eps, weight_decay;

  EMBER_HD explicit AdagradUpdate(const OptimScalars& s)
      : clr(T(s.adagrad.clr)), eps(T(s.adagrad.eps)), weight_decay(T(s.adagrad.weight_decay)) {}

  EMBER_HD void operator()(const SlotPointers<T>& s, std::int64_t i) const {
    const T p = s.param[i];
    T g = s.grad[i];
    if (weight_decay != T(0)) g += weight_decay * p;
    const T sum = s.state[0][i] + g * g;
    s.state[0][i] = sum;
    s.param[i] = p - clr * g / (::sqrt(sum) + eps);
  }
};

// RMSprop. state[0]: square_avg; state[1]: momentum buffer (momentum > 0); state[2]:
// grad_avg (centered).
template <typename T>
struct RmspropUpdate {
  T lr, alpha, eps, weight_decay, momentum;
  bool centered;

  EMBER_HD explicit RmspropUpdate(const OptimScalars& s)
      : lr(T(s.rmsprop.lr)),
        alpha(T(s.rmsprop.alpha)),
        eps(T(s.rmsprop.eps)),
        weight_decay(T(s.rmsprop.weight_decay)),
        momentum(T(s.rmsprop.momentum)),
        centered(s.rmsprop.centered) {}

  EMBER_HD void operator()(const SlotPointers<T>& s, std::int64_t i) const {
    const T p = s.param[i];
    T g = s.grad[i];
    if (weight_decay != T(0)) g += weight_decay * p;
    const T sq = alpha * s.state[0][i] + (T(1) - alpha) * g * g;
    s.state[0][i] = sq;
    T avg;
    if (centered) {
      const T ga = alpha * s.state[2][i] + (T(1) - alpha) * g;
      s.state[2][i] = ga;
      avg = ::sqrt(sq - ga * ga) + eps;
    } else {
      avg = ::sqrt(sq) + eps;
    }
    if (momentum > T(0)) {
      const T buf = momentum * s.state[1][i] + g / avg;
      s.state[1][i] = buf;
      s.param[i] = p - lr * buf;
    } else {
      s.param[i] = p - lr * g / avg;
    }
  }
};

}  // namespace ember::kernels
