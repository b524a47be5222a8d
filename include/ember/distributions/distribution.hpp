// The distribution interface. A family implements DistributionImpl; users hold the value
// handle Distribution (cheap to copy, immutable), which each family's class derives from so
// that `dist::Normal(0.0, 1.0).to_event(1)` reads as in Pyro.
//
// Shapes follow Pyro: a draw with sample_shape S has shape S + batch_shape + event_shape;
// log_prob(value) has value's shape less the event dims, broadcast with the batch shape.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "ember/constraints.hpp"
#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::dist {

// A distribution parameter as given by the user: a tensor or a plain number.
class ParamArg {
 public:
  ParamArg(const Tensor& t) : tensor_(t) {}  // NOLINT: implicit by design
  ParamArg(double v) : value_(v) {}          // NOLINT: implicit by design
  ParamArg(int v) : value_(v) {}             // NOLINT: implicit by design
  bool is_tensor() const { return tensor_.defined(); }
  const Tensor& tensor() const { return tensor_; }
  double value() const { return value_; }

 private:
  Tensor tensor_;
  double value_ = 0.0;
};

class DistributionImpl {
 public:
  virtual ~DistributionImpl() = default;

  virtual std::string name() const = 0;
  const Shape& batch_shape() const { return batch_shape_; }
  const Shape& event_shape() const { return event_shape_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  virtual bool has_rsample() const { return false; }
  // A reparameterized draw (differentiable in the parameters); throws for families without.
  virtual Tensor rsample(const Shape& sample_shape, Generator& gen) const;
  // A draw cut from the graph; the default is a reparameterized draw under NoGradGuard.
  virtual Tensor sample(const Shape& sample_shape, Generator& gen) const;
  // log p(value), without the support check (the handle does that while validation is on).
  virtual Tensor log_prob(const Tensor& value) const = 0;
  virtual Tensor mean() const;
  virtual Tensor variance() const;
  virtual Tensor entropy() const;
  virtual constraints::Constraint support() const = 0;
  virtual bool has_enumerate_support() const { return false; }
  // All values of a finite discrete support, shaped (n,) + (1,) * batch rank, or expanded to
  // (n,) + batch_shape.
  virtual Tensor enumerate_support(bool expand) const;
  // log_prob of every value of a finite support at once, shaped (n,) + batch_shape: what
  // enumerate_support(false)'s values score, computed without reading them where the family
  // can (a Categorical's normalized log-probabilities, moved to the front).
  virtual Tensor log_prob_of_support() const;
  // The same family over a larger batch shape (its parameters broadcast, as views).
  virtual std::shared_ptr<const DistributionImpl> expand(const Shape& batch_shape) const = 0;

 protected:
  DistributionImpl(Shape batch_shape, Shape event_shape, DType dtype, Device device)
      : batch_shape_(batch_shape), event_shape_(event_shape), dtype_(dtype), device_(device) {}
  // sample_shape + batch_shape + event_shape.
  Shape extended_shape(const Shape& sample_shape) const;
  [[noreturn]] void not_available(const char* what) const;

  Shape batch_shape_;
  Shape event_shape_;
  DType dtype_;
  Device device_;
};

class Distribution {
 public:
  Distribution() = default;
  explicit Distribution(std::shared_ptr<const DistributionImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  std::string name() const { return impl().name(); }
  const Shape& batch_shape() const { return impl().batch_shape(); }
  const Shape& event_shape() const { return impl().event_shape(); }
  DType dtype() const { return impl().dtype(); }
  Device device() const { return impl().device(); }
  // sample_shape + batch_shape + event_shape.
  Shape shape(const Shape& sample_shape = {}) const;

  bool has_rsample() const { return impl().has_rsample(); }
  Tensor sample(const Shape& sample_shape = {}) const;
  Tensor sample(const Shape& sample_shape, Generator& gen) const;
  Tensor rsample(const Shape& sample_shape = {}) const;
  Tensor rsample(const Shape& sample_shape, Generator& gen) const;
  // While validation is on (validates_args()), a value outside the support throws a
  // ValueError naming the distribution and an offending value. Off, such a value scores
  // -inf, except that Bernoulli and Binomial score values between their counts by their
  // formula continued (PyTorch's validate_args=False).
  Tensor log_prob(const Tensor& value) const;

  // This distribution's own validation of the values it scores (PyTorch's validate_args):
  // on or off whatever validation_enabled() says; it carries over to expand, to_event, mask
  // and without_rsample. Its parameters were checked when it was made, under the thread's
  // setting: a ValidationScope around the constructor turns those checks off too.
  //   sample("x", dist::Bernoulli(p).validate_args(false), pixel_intensities);
  Distribution& validate_args(bool on) {
    validate_args_ = on;
    return *this;
  }
  bool validates_args() const;
  Tensor mean() const { return impl().mean(); }
  Tensor variance() const { return impl().variance(); }
  Tensor stddev() const;
  Tensor entropy() const { return impl().entropy(); }
  constraints::Constraint support() const { return impl().support(); }
  bool has_enumerate_support() const { return impl().has_enumerate_support(); }
  Tensor enumerate_support(bool expand = true) const { return impl().enumerate_support(expand); }
  Tensor log_prob_of_support() const { return impl().log_prob_of_support(); }

  // Broadcasts the batch shape to `batch_shape`.
  Distribution expand(const Shape& batch_shape) const;
  // Reinterprets the n rightmost batch dims as event dims (Pyro's Independent).
  Distribution to_event(int n = -1) const;
  // Zeroes log_prob where mask (bool, broadcastable to the batch shape) is false.
  Distribution mask(const Tensor& mask) const;
  Distribution mask(bool keep) const;
  // The same distribution without its reparameterized sampler (Pyro's has_rsample = False):
  // draws carry no gradient, so ELBOs use the score-function estimator for its sites.
  Distribution without_rsample() const;

  const DistributionImpl& impl() const;
  const std::shared_ptr<const DistributionImpl>& impl_ptr() const { return impl_; }
  // The family's implementation, or null when this is another family.
  template <typename Impl>
  const Impl* as() const {
    return dynamic_cast<const Impl*>(impl_.get());
  }

 protected:
  std::shared_ptr<const DistributionImpl> impl_;

 private:
  // A distribution of `impl` that keeps this one's validate_args.
  Distribution derived(std::shared_ptr<const DistributionImpl> impl) const;

  std::optional<bool> validate_args_;  // unset: validation_enabled()
};

std::ostream& operator<<(std::ostream& os, const Distribution& d);

// Independent: reinterprets batch dims of a base distribution as event dims.
class IndependentImpl;
// Masked: log_prob zeroed where the mask is false.
class MaskedImpl;

}  // namespace ember::dist
