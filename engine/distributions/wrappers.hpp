// The shape wrappers Independent and Masked, shared by the handle (distribution.cpp) and
// code that looks through them (the KL registry in kl.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ember/distributions/distribution.hpp"
#include "ember/ops.hpp"
#include "engine/internal.hpp"

namespace ember::dist {

class IndependentImpl final : public DistributionImpl {
 public:
  IndependentImpl(std::shared_ptr<const DistributionImpl> base, int n)
      : DistributionImpl(split_batch(*base, n, true), split_batch(*base, n, false), base->dtype(),
                         base->device()),
        base_(std::move(base)),
        n_(n) {}
  std::string name() const override {
    return "Independent(" + base_->name() + ", " + std::to_string(n_) + ")";
  }
  bool has_rsample() const override { return base_->has_rsample(); }
  bool has_enumerate_support() const override { return false; }
  Tensor rsample(const Shape& s, Generator& gen) const override { return base_->rsample(s, gen); }
  Tensor sample(const Shape& s, Generator& gen) const override { return base_->sample(s, gen); }
  Tensor log_prob(const Tensor& value) const override {
    return sum_rightmost(base_->log_prob(value), n_);
  }
  Tensor mean() const override { return base_->mean(); }
  Tensor variance() const override { return base_->variance(); }
  Tensor entropy() const override { return sum_rightmost(base_->entropy(), n_); }
  constraints::Constraint support() const override { return base_->support().independent(n_); }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch_shape) const override {
    // The reinterpreted dims lead the event shape; the base's own event dims follow them.
    Shape full = batch_shape;
    for (int i = 0; i < n_; ++i) full.push_back(event_shape_[i]);
    return std::make_shared<IndependentImpl>(base_->expand(full), n_);
  }
  const DistributionImpl& base() const { return *base_; }
  const std::shared_ptr<const DistributionImpl>& base_ptr() const { return base_; }
  int reinterpreted_batch_ndims() const { return n_; }

 private:
  static Shape split_batch(const DistributionImpl& base, int n, bool batch_part) {
    const Shape& b = base.batch_shape();
    EMBER_CHECK_SHAPE(n >= 0 && n <= b.size(), base.name(), ".to_event(", n, "): the batch shape ",
                      b, " has only ", b.size(), " dims");
    Shape out;
    if (batch_part) {
      for (int i = 0; i < b.size() - n; ++i) out.push_back(b[i]);
    } else {
      for (int i = b.size() - n; i < b.size(); ++i) out.push_back(b[i]);
      for (auto d : base.event_shape()) out.push_back(d);
    }
    return out;
  }
  static Tensor sum_rightmost(const Tensor& t, int n) {
    if (n == 0) return t;
    std::vector<int> dims;
    for (int i = 1; i <= n; ++i) dims.push_back(-i);
    return sum(t, dims);
  }

  std::shared_ptr<const DistributionImpl> base_;
  int n_;
};

// A wrapper that keeps its base's shapes and passes every query through to it; Masked and
// NonReparameterized override what they change.
class ForwardingImpl : public DistributionImpl {
 public:
  explicit ForwardingImpl(std::shared_ptr<const DistributionImpl> base)
      : DistributionImpl(base->batch_shape(), base->event_shape(), base->dtype(), base->device()),
        base_(std::move(base)) {}
  std::string name() const override { return base_->name(); }
  bool has_rsample() const override { return base_->has_rsample(); }
  bool has_enumerate_support() const override { return base_->has_enumerate_support(); }
  Tensor rsample(const Shape& s, Generator& gen) const override { return base_->rsample(s, gen); }
  Tensor sample(const Shape& s, Generator& gen) const override { return base_->sample(s, gen); }
  Tensor log_prob(const Tensor& value) const override { return base_->log_prob(value); }
  Tensor mean() const override { return base_->mean(); }
  Tensor variance() const override { return base_->variance(); }
  Tensor entropy() const override { return base_->entropy(); }
  constraints::Constraint support() const override { return base_->support(); }
  Tensor enumerate_support(bool expand) const override { return base_->enumerate_support(expand); }
  const std::shared_ptr<const DistributionImpl>& base_ptr() const { return base_; }

 protected:
  std::shared_ptr<const DistributionImpl> base_;
};

class MaskedImpl final : public ForwardingImpl {
 public:
  MaskedImpl(std::shared_ptr<const DistributionImpl> base, Tensor mask)
      : ForwardingImpl(std::move(base)), mask_(mask.to(kBool)) {
    detail::check_same_device("mask", mask_, zeros({}, TensorOptions{}.with_device(device_)));
    broadcast_shapes(mask_.shape(), batch_shape_, "mask");
  }
  Tensor log_prob(const Tensor& value) const override {
    return where(mask_, base_->log_prob(value), 0.0);
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch_shape) const override {
    return std::make_shared<MaskedImpl>(base_->expand(batch_shape), mask_);
  }
  const Tensor& mask() const { return mask_; }

 private:
  Tensor mask_;
};

// The base with its reparameterized sampler hidden (Pyro's has_rsample = False): draws are
// cut from the graph, so an ELBO treats its sites with the score-function estimator.
class NonReparameterizedImpl final : public ForwardingImpl {
 public:
  using ForwardingImpl::ForwardingImpl;
  bool has_rsample() const override { return false; }
  Tensor rsample(const Shape& s, Generator& gen) const override {
    return DistributionImpl::rsample(s, gen);  // not available: says so, naming the family
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch_shape) const override {
    return std::make_shared<NonReparameterizedImpl>(base_->expand(batch_shape));
  }
};

}  // namespace ember::dist
