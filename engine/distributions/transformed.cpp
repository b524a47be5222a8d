// TransformedDistribution: draws pushed through the transforms, log_prob by the change of
// variables (Pyro semantics, event dims included).
#include "ember/distributions/transformed.hpp"

#include <algorithm>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {
namespace {

Tensor sum_rightmost(const Tensor& t, int n) {
  if (n <= 0) return t;
  std::vector<int> dims;
  for (int i = 1; i <= n; ++i) dims.push_back(-i);
  return sum(t, dims);
}

Shape leading(const Shape& s, int n) {
  Shape out;
  for (int i = 0; i < n; ++i) out.push_back(s[i]);
  return out;
}

Shape trailing(const Shape& s, int n) {
  Shape out;
  for (int i = static_cast<int>(s.size()) - n; i < static_cast<int>(s.size()); ++i)
    out.push_back(s[i]);
  return out;
}

}  // namespace

class TransformedImpl final : public DistributionImpl {
 public:
  // base is already shaped for the transforms (see make); batch and event are the results'.
  TransformedImpl(Distribution base, std::vector<transforms::Transform> ts,
                  transforms::Transform chain, const Shape& batch, const Shape& event)
      : DistributionImpl(batch, event, base.dtype(), base.device()),
        base_(std::move(base)),
        transforms_(std::move(ts)),
        chain_(std::move(chain)) {}

  // Expands base so that the transforms' parameters broadcast into it, and reinterprets its
  // batch dims as event dims when the transforms act on more dims than its events.
  static std::shared_ptr<const TransformedImpl> make(Distribution base,
                                                     std::vector<transforms::Transform> ts) {
    EMBER_CHECK(base.defined(), "TransformedDistribution: an undefined base distribution");
    const transforms::ComposeTransform chain(ts);
    const int t_dim = chain.event_dim();
    const Shape base_shape = base.shape();
    EMBER_CHECK_SHAPE(static_cast<int>(base_shape.size()) >= t_dim,
                      "TransformedDistribution: the transforms act on ", t_dim,
                      " dims but the base ", base.name(), " has shape ", base_shape);
    const Shape forward = chain.forward_shape(base_shape);
    const Shape expanded = chain.inverse_shape(forward);
    const int base_event = base.event_shape().size();
    if (!(expanded == base_shape))
      base = base.expand(leading(expanded, static_cast<int>(expanded.size()) - base_event));
    if (t_dim > base_event) base = base.to_event(t_dim - base_event);
    const int event_dim = std::max(t_dim, base_event);
    const int batch_dims = static_cast<int>(forward.size()) - event_dim;
    return detail::pooled<TransformedImpl>(std::move(base), std::move(ts), chain,
                                           leading(forward, batch_dims),
                                           trailing(forward, event_dim));
  }

  std::string name() const override { return "TransformedDistribution"; }
  bool has_rsample() const override { return base_.has_rsample(); }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    return chain_.forward(base_.rsample(sample_shape, gen));
  }
  Tensor sample(const Shape& sample_shape, Generator& gen) const override {
    NoGradGuard no_grad;
    return chain_.forward(base_.sample(sample_shape, gen)).detach();
  }
  Tensor log_prob(const Tensor& value) const override {
    const int event_dim = event_shape_.size();
    Tensor y = value, log_det;
    for (auto it = transforms_.rbegin(); it != transforms_.rend(); ++it) {
      const Tensor x = it->inverse(y);
      const Tensor term =
          sum_rightmost(it->log_abs_det_jacobian(x, y), event_dim - it->event_dim());
      log_det = log_det.defined() ? log_det + term : term;
      y = x;
    }
    const int base_event = base_.event_shape().size();
    const Tensor lp = sum_rightmost(base_.impl().log_prob(y), event_dim - base_event);
    return log_det.defined() ? lp - log_det : lp;
  }
  constraints::Constraint support() const override {
    if (transforms_.empty()) return base_.support();
    const constraints::Constraint c = transforms_.back().codomain();
    return c.independent(static_cast<int>(event_shape_.size()) - c.event_dim());
  }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    // base_'s batch dims line up with ours (the transforms keep the rank).
    return make(base_.expand(batch), transforms_);
  }

  const Distribution& base() const { return base_; }
  const std::vector<transforms::Transform>& transforms() const { return transforms_; }

 private:
  Distribution base_;
  std::vector<transforms::Transform> transforms_;
  transforms::Transform chain_;
};

TransformedDistribution::TransformedDistribution(const Distribution& base,
                                                 std::vector<transforms::Transform> transforms) {
  impl_ = TransformedImpl::make(base, std::move(transforms));
}

Distribution TransformedDistribution::base_dist() const { return as<TransformedImpl>()->base(); }

const std::vector<transforms::Transform>& TransformedDistribution::transforms() const {
  return as<TransformedImpl>()->transforms();
}

}  // namespace ember::dist
