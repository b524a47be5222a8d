// StudentT: fused log-density (kernels/math/distributions/gamma.hpp) and draws
// loc + scale * Z * sqrt(df / V), V = 2 Gamma(df / 2, 1), reparameterized in all parameters.
#include "ember/distributions/student_t.hpp"

#include <cmath>
#include <limits>

#include "engine/distributions/dist_util.hpp"

namespace ember::dist {

class StudentTImpl final : public DistributionImpl {
 public:
  StudentTImpl(Tensor df, Tensor loc, Tensor scale, const Shape& batch)
      : DistributionImpl(batch, {}, df.dtype(), df.device()),
        df_(std::move(df)),
        loc_(std::move(loc)),
        scale_(std::move(scale)) {}

  std::string name() const override { return "StudentT"; }
  bool has_rsample() const override { return true; }
  Tensor rsample(const Shape& sample_shape, Generator& gen) const override {
    const Shape shape = extended_shape(sample_shape);
    const Tensor z = detail::draw(kernels::SampleOp::Normal, shape, dtype_, device_, {}, gen);
    const Tensor v = 2.0 * detail::standard_gamma(df_ * 0.5, shape, gen);
    return loc_ + scale_ * z * sqrt(df_ / v);
  }
  Tensor log_prob(const Tensor& value) const override {
    return detail::fused_log_prob(kernels::LogProbFamily::StudentT, value, {df_, loc_, scale_});
  }
  // loc where df > 1, else undefined (nan), as in PyTorch.
  Tensor mean() const override { return where(df_ > 1.0, loc_, kNaN).expand(batch_shape_); }
  // scale^2 df / (df - 2) where df > 2, inf where 1 < df <= 2, nan where df <= 1.
  Tensor variance() const override {
    const Tensor finite = square(scale_) * df_ / (df_ - 2.0);
    const Tensor v = where(df_ > 2.0, finite, std::numeric_limits<double>::infinity());
    return where(df_ > 1.0, v, kNaN).expand(batch_shape_);
  }
  // (v+1)/2 (psi((v+1)/2) - psi(v/2)) + log(sqrt(v) B(v/2, 1/2)) + log scale.
  Tensor entropy() const override {
    const Tensor h = (df_ + 1.0) * 0.5;
    const Tensor half = df_ * 0.5;
    const Tensor log_beta = lgamma(half) + 0.5 * std::log(M_PI) - lgamma(h);
    return (h * (digamma(h) - digamma(half)) + 0.5 * log(df_) + log_beta + log(scale_))
        .expand(batch_shape_);
  }
  constraints::Constraint support() const override { return constraints::real; }
  std::shared_ptr<const DistributionImpl> expand(const Shape& batch) const override {
    return std::make_shared<StudentTImpl>(df_.expand(batch), loc_.expand(batch),
                                          scale_.expand(batch), batch);
  }

  const Tensor& df() const { return df_; }
  const Tensor& loc() const { return loc_; }
  const Tensor& scale() const { return scale_; }

 private:
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  Tensor df_, loc_, scale_;
};

StudentT::StudentT(const ParamArg& df, const ParamArg& loc, const ParamArg& scale) {
  auto p = detail::make_params("StudentT", {{"df", df}, {"loc", loc}, {"scale", scale}});
  detail::validate_param("StudentT", "df", p.tensors[0], constraints::positive);
  detail::validate_param("StudentT", "scale", p.tensors[2], constraints::positive);
  impl_ = std::make_shared<StudentTImpl>(p.tensors[0], p.tensors[1], p.tensors[2], p.batch_shape);
}

Tensor StudentT::df() const { return as<StudentTImpl>()->df(); }
Tensor StudentT::loc() const { return as<StudentTImpl>()->loc(); }
Tensor StudentT::scale() const { return as<StudentTImpl>()->scale(); }

}  // namespace ember::dist
