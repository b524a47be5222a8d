// Uniform: fused log-density (kernels/math/distributions/continuous.hpp) and pathwise draws.
#include "ember/distributions/uniform.hpp"

#include <cmath>
#include <sstream>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {
namespace {

// While validation is on: low < high elementwise, else a ValueError naming both values and
// the first offending batch index.
void validate_bounds(const Tensor& low, const Tensor& high, const Shape& batch) {
  if (!validation_enabled()) return;
  const Tensor ok = lt(low, high).expand(batch);
  if (all(ok)) return;
  const auto bad = logical_not(ok).to(Device::cpu()).flatten().to_vector<std::uint8_t>();
  std::int64_t first = 0;
  while (!bad[static_cast<std::size_t>(first)]) ++first;
  const auto host = [&](const Tensor& t) {
    return t.detach().expand(batch).to(kFloat64).to(Device::cpu()).flatten().to_vector<double>();
  };
  std::ostringstream where;
  where << "[";
  std::int64_t rest = first;
  std::vector<std::int64_t> idx(batch.size());
  for (int d = batch.size() - 1; d >= 0; --d) {
    idx[d] = rest % batch[d];
    rest /= batch[d];
  }
  for (std::size_t d = 0; d < idx.size(); ++d) where << (d ? ", " : "") << idx[d];
  where << "]";
  detail::report_invalid_param(detail::concat(
      "Uniform: parameter low must be less than high, got low ", host(low)[first], " and high ",
      host(high)[first], " at index ", where.str(), " (", __FILE__, ":", __LINE__, ")"));
}

}  // namespace

class UniformImpl final : public DistributionImpl {
 public:
  UniformImpl(Tensor low, Tensor high, const Shape& batch)
      : DistributionImpl(batch, {}, low.dtype(), low.device()),
        low_(std::move(low)),
        high_(std::move(high)) {}

  std::string name() const override { return "Uniform"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Tensor u = detail::draw(kernels::SampleOp::Uniform, extended_shape(sample_shape), dtype_,
                                  device_, {}, gen);
    return low_ + (high_ - low_) * u;
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::Uniform, value, {low_, high_});
  }
  Tensor mean() const override { return (0.5 * (low_ + high_)).expand(batch_shape_); }
  Tensor variance() const override { return (square(high_ - low_) / 12.0).expand(batch_shape_); }
  Tensor entropy() const override { return log(high_ - low_).expand(batch_shape_); }
  constraints::Constraint support() const override { return constraints::interval(low_, high_); }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<UniformImpl>(low_.expand(batch), high_.expand(batch), batch);
  }

  const Tensor& low() const { return low_; }
  const Tensor& high() const { return high_; }

 private:
  Tensor low_, high_;
};

Uniform::Uniform(const ParamArg& low, const ParamArg& high) {
  auto p = detail::make_params("Uniform", {{"low", low}, {"high", high}});
  validate_bounds(p.tensors[0], p.tensors[1], p.batch_shape);
  impl_ = std::make_shared<UniformImpl>(p.tensors[0], p.tensors[1], p.batch_shape);
}

Tensor Uniform::low() const { return as<UniformImpl>()->low(); }
Tensor Uniform::high() const { return as<UniformImpl>()->high(); }

}  // namespace ember::dist
