// The checks that every entry of the family table (families.cpp) gets, each a suite
// instantiated over the entries it applies to: log_prob against SciPy, its gradients (and
// those of entropy and rsample) against finite differences, the sampler's statistical test,
// shapes through sample, expand and to_event, closed-form moments, errors that name the
// distribution, the argument, the value and the index, and the support's edge.
#include "families.hpp"

#include <algorithm>
#include <cmath>

#include "discrete_checks.hpp"

namespace ember::test {
namespace {

class FamilyTest : public ::testing::TestWithParam<const Family*> {
 protected:
  const Family& family() const { return *GetParam(); }
};

std::string entry_name(const ::testing::TestParamInfo<const Family*>& info) {
  return info.param->name;
}

#define EMBER_FAMILY_SUITE(suite, keep) \
  class suite : public FamilyTest {};   \
  INSTANTIATE_TEST_SUITE_P(Families, suite, ::testing::ValuesIn(families_where(keep)), entry_name)

Shape cat(std::initializer_list<Shape> parts) {
  Shape out;
  for (const Shape& p : parts)
    for (std::int64_t d : p) out.push_back(d);
  return out;
}

// The values of a reference case: a scalar, or a vector (an event or K categories).
Tensor case_tensor(const Scalars& v, bool is_scalar, const TensorOptions& o) {
  if (is_scalar) return scalar_tensor(v.at(0), o);
  return from_vector(v, {static_cast<std::int64_t>(v.size())}, o);
}

Tensors tensors_of(const std::vector<Array>& arrays, bool requires_grad = false) {
  Tensors out;
  for (const Array& a : arrays) out.push_back(a.tensor(requires_grad));
  return out;
}

// ------------------------------------------------------------------- log_prob ----
EMBER_FAMILY_SUITE(LogProbReference, [](const Family& f) { return f.reference.has_value(); });

TEST_P(LogProbReference, MatchesSciPy) {
  const Family& f = family();
  const Reference& ref = *f.reference;
  for (const ReferenceCase& c : reference_cases(ref.family)) {
    for (DType dtype : {kFloat64, kFloat32}) {
      const auto o = TensorOptions{}.with_dtype(dtype);
      Tensors params;
      if (ref.params) {
        params = ref.params(c, o);
      } else {
        for (const Param& p : f.params)
          params.push_back(case_tensor(c.param(p.name), f.param_event.empty(), o));
      }
      const Tensor value = case_tensor(c.value, f.event_shape.empty(), o);
      const double lp = f.make(params).log_prob(value).item();
      const bool f32_terms = dtype == kFloat32 && ref.f32_scale;
      const double scale = f32_terms ? ref.f32_scale(c) : 1 + std::abs(c.log_prob);
      EXPECT_NEAR(lp, c.log_prob, (dtype == kFloat64 ? ref.f64_rtol : ref.f32_rtol) * scale)
          << "reference line " << c.line << " in " << dtype;
    }
  }
}

EMBER_FAMILY_SUITE(LogProbGradient, [](const Family&) { return true; });

TEST_P(LogProbGradient, MatchesFiniteDifferences) {
  const Family& f = family();
  const ValidationScope validation(!f.grad_off_validation);
  const auto log_prob = [&f](const Tensors& x) {
    return f.make(Tensors(x.begin() + 1, x.end())).log_prob(x[0]);
  };
  const Shape value_shape = cat({{4, 3}, f.event_shape});
  // The value (4, 3) against parameters broadcast from (3) and (4, 1), both ways round.
  for (const auto& batches : {std::vector<Shape>{{3}, {4, 1}}, std::vector<Shape>{{4, 1}, {3}}}) {
    Tensors inputs = f.draw_params(batches, true);
    inputs.insert(inputs.begin(), f.value(value_shape, f.value.continuous()));
    EMBER_EXPECT_GRAD(log_prob, inputs);
  }
  // One parameter requiring grad at a time: the fused pass skips the others' partials.
  for (std::size_t i = 0; f.params.size() > 1 && i < f.params.size(); ++i) {
    SCOPED_TRACE("only " + f.params[i].name + " requires grad");
    Tensors inputs = f.draw_params({{3}, {4, 1}}, true);
    for (std::size_t j = 0; j < inputs.size(); ++j)
      if (j != i) inputs[j] = inputs[j].detach();
    inputs.insert(inputs.begin(), f.value(value_shape, false));
    EMBER_EXPECT_GRAD(log_prob, inputs);
  }
}

EMBER_FAMILY_SUITE(EntropyGradient, [](const Family& f) { return f.entropy_grad; });

TEST_P(EntropyGradient, MatchesFiniteDifferences) {
  const Family& f = family();
  const ValidationScope validation(!f.grad_off_validation);
  for (const auto& batches : {std::vector<Shape>{{3}}, std::vector<Shape>{{4, 1}}}) {
    EMBER_EXPECT_GRAD([&f](const Tensors& x) { return f.make(x).entropy(); },
                      f.draw_params(batches, true));
  }
}

// ------------------------------------------------------------------- sampling ----
EMBER_FAMILY_SUITE(RsampleGradient,
                   [](const Family& f) { return f.has_rsample && f.rsample_grad; });

TEST_P(RsampleGradient, MatchesFiniteDifferences) {
  const Family& f = family();
  Tensors params = f.draw_params({{5}}, true, /*for_rsample=*/true);
  for (std::size_t i : f.rsample_fixed) params[i] = params[i].detach();
  EMBER_EXPECT_GRAD(
      [&f](const Tensors& x) {
        Generator gen(7);  // the same noise on every evaluation
        return f.make(x).rsample({3}, gen);
      },
      params);
}

class Draws : public FamilyTest {};
INSTANTIATE_TEST_SUITE_P(Families, Draws, ::testing::ValuesIn(families_where([](const Family& f) {
                           return f.sampler && !f.sampler->slow;
                         })),
                         entry_name);
INSTANTIATE_TEST_SUITE_P(SlowFamilies, Draws,
                         ::testing::ValuesIn(families_where([](const Family& f) {
                           return f.sampler && f.sampler->slow;
                         })),
                         entry_name);

TEST_P(Draws, DrawsFitTheDistribution) {
  const Family& f = family();
  const auto& s = *f.sampler;
  for (const Scalars& c : s.cases) {
    Generator gen(s.seed);
    for (DType dtype : {kFloat64, kFloat32}) {
      SCOPED_TRACE(testing::Message()
                   << "parameters " << ::testing::PrintToString(c) << " in " << dtype);
      Tensors params;
      for (double v : c) params.push_back(scalar_tensor(v, TensorOptions{}.with_dtype(dtype)));
      const Tensor draws = f.make(params).sample({20000}, gen);
      EXPECT_EQ(draws.dtype(), dtype);
      const auto xs = draws.to_vector<double>();
      if (s.in_support) {
        const auto outside =
            std::find_if(xs.begin(), xs.end(), [&](double x) { return !s.in_support(c, x); });
        EXPECT_TRUE(outside == xs.end()) << "draw " << *outside << " is outside the support";
      }
      if (s.cdf) {
        EXPECT_LT(ks_statistic(xs, [&](double x) { return s.cdf(c, x); }),
                  ks_critical_001(xs.size()));
      }
      if (s.pmf)
        expect_fits_pmf(
            xs, [&](std::int64_t k) { return s.pmf(c, k); }, s.max_k(c));
      if (s.mean) {
        const double n = static_cast<double>(xs.size()), m = mean_of(xs);
        double v = 0;
        for (double x : xs) v += (x - m) * (x - m);
        v /= n - 1;
        const double var = s.variance(c);
        EXPECT_NEAR(m, s.mean(c), s.mean_z * std::sqrt(var / n));
        if (s.var_rtol > 0) EXPECT_NEAR(v, var, s.var_rtol * var);
      }
    }
  }
}

// --------------------------------------------------------------------- shapes ----
EMBER_FAMILY_SUITE(Shapes, [](const Family&) { return true; });

TEST_P(Shapes, FollowSampleBatchEventExpandAndToEvent) {
  const Family& f = family();
  const Shape& event = f.event_shape;
  // Parameters of batch shapes (3, 1) and (4) alternately.
  const std::vector<Shape> batches{{3, 1}, {4}};
  const Tensors params = f.draw_params(batches, false);
  const dist::Distribution d = f.make(params);
  const Shape batch = f.params.size() > 1 ? Shape{3, 4} : Shape{3, 1};
  EXPECT_EQ(d.name(), f.dist_name);
  EXPECT_EQ(d.batch_shape(), batch);
  EXPECT_EQ(d.event_shape(), event);
  EXPECT_EQ(d.has_rsample(), f.has_rsample);
  EXPECT_EQ(d.has_enumerate_support(), f.enumeration.has_value());
  const Tensor one = d.sample({2});
  EXPECT_EQ(one.shape(), cat({{2}, batch, event}));
  EXPECT_EQ(one.dtype(), f.sample_dtype == kInt64 ? kInt64 : d.dtype());
  if (f.has_rsample) EXPECT_EQ(d.rsample().shape(), cat({batch, event}));
  // A value of shape (4) broadcasts against the batch.
  EXPECT_EQ(d.log_prob(f.value(cat({{4}, event}), false)).shape(),
            broadcast_shapes(batch, {4}, "test"));
  if (f.has_mean()) EXPECT_EQ(d.mean().shape(), cat({batch, event}));
  if (f.has_variance()) EXPECT_EQ(d.variance().shape(), cat({batch, event}));
  if (f.has_entropy()) EXPECT_EQ(d.entropy().shape(), batch);
  // The accessors give the parameters back with the shapes they were given.
  const Tensors given = f.accessors(params);
  for (std::size_t i = 0; i < params.size(); ++i)
    EXPECT_EQ(given[i].shape(), params[i].shape()) << f.params[i].name;
  // A scalar last parameter broadcasts too.
  if (params.size() > 1) {
    Tensors with_scalar = params;
    with_scalar.back() = f.params.back().draw(f.param_event, false);
    Shape b{};
    for (std::size_t i = 0; i + 1 < params.size(); ++i)
      b = broadcast_shapes(b, batches[i % batches.size()], "test");
    EXPECT_EQ(f.make(with_scalar).batch_shape(), b);
    EXPECT_EQ(f.accessors(with_scalar).back().shape(), f.param_event);
  }

  // expand to a new leading dim and over the size-1 dims, with and without the new dim.
  Shape grown = batch;
  for (std::int64_t& n : grown)
    if (n == 1) n = 5;
  for (const Shape& to : {grown, cat({{2}, grown})}) {
    SCOPED_TRACE(testing::Message() << "expanded to " << to);
    const dist::Distribution e = d.expand(to);
    EXPECT_EQ(e.name(), f.dist_name);
    EXPECT_EQ(e.batch_shape(), to);
    EXPECT_EQ(e.sample({7}).shape(), cat({{7}, to, event}));
    if (f.has_rsample) EXPECT_EQ(e.rsample({7}).shape(), cat({{7}, to, event}));
    EXPECT_EQ(e.log_prob(f.value(cat({{7}, to, event}), false)).shape(), cat({{7}, to}));
    if (f.has_mean()) EXPECT_EQ(e.mean().shape(), cat({to, event}));
    if (f.has_variance()) EXPECT_EQ(e.variance().shape(), cat({to, event}));
    if (f.has_entropy()) EXPECT_EQ(e.entropy().shape(), to);
    // to_event(1) moves the last batch dim into the event.
    Shape outer = to;
    outer.erase(outer.size() - 1);
    EXPECT_EQ(e.to_event(1).log_prob(f.value(cat({to, event}), false)).shape(), outer);
  }
  // A distribution of scalar parameters expands to any batch, its elements drawn
  // independently rather than copied.
  const dist::Distribution s = f.make(f.draw_params({{}}, false)).expand({2, 5});
  EXPECT_EQ(s.batch_shape(), (Shape{2, 5}));
  const Tensor draws = s.sample({1000});
  EXPECT_EQ(draws.shape(), cat({{1000, 2, 5}, event}));
  EXPECT_NE(draws.select(2, 0).to_vector<double>(), draws.select(2, 1).to_vector<double>());
}

// -------------------------------------------------------------------- moments ----
EMBER_FAMILY_SUITE(ClosedForm, [](const Family& f) { return !f.moments.empty(); });

TEST_P(ClosedForm, AreClosedForm) {
  const Family& f = family();
  for (const auto& m : f.moments) {
    const dist::Distribution d = f.make(tensors_of(m.params));
    if (m.mean) expect_values(d.mean(), m.mean->values, m.mean->rtol, m.mean->atol);
    if (m.variance) {
      const Expected& v = *m.variance;
      expect_values(d.variance(), v.values, v.rtol, v.atol);
      Scalars root = v.values;
      for (double& x : root) x = std::sqrt(x);
      expect_values(d.stddev(), root, v.rtol, v.atol);
    }
    if (m.entropy) expect_values(d.entropy(), m.entropy->values, m.entropy->rtol, m.entropy->atol);
  }
}

// --------------------------------------------------------------------- errors ----
EMBER_FAMILY_SUITE(Errors, [](const Family&) { return true; });

TEST_P(Errors, NameTheDistributionArgumentValueAndIndex) {
  const Family& f = family();
  for (const Invalid& c : f.invalid) {
    if (c.error == Invalid::Error::Shape)
      EXPECT_TRUE(throws_with<ShapeError>(c.statement, c.fragments));
    else
      EXPECT_TRUE(throws_with<ValueError>(c.statement, c.fragments));
  }
  // What a family lacks, it names.
  const dist::Distribution d = f.make(f.draw_params({{}}, false));
  if (!f.has_rsample) EMBER_EXPECT_THROW_WITH(d.rsample(), ValueError, f.dist_name, "rsample");
  if (!f.enumeration)
    EMBER_EXPECT_THROW_WITH(d.enumerate_support(), ValueError, f.dist_name, "enumerate_support");
  // With validation off no check runs (and no device sync is paid).
  const ValidationScope off(false);
  for (const Invalid& c : f.invalid)
    if (c.validation) EXPECT_NO_THROW(c.statement()) << ::testing::PrintToString(c.fragments);
}

EMBER_FAMILY_SUITE(SupportEdge, [](const Family& f) { return f.support.has_value(); });

TEST_P(SupportEdge, OutsideItLogProbThrowsOrIsMinusInfinityWithZeroPartials) {
  const Family& f = family();
  const auto& s = *f.support;
  const Tensors params = tensors_of(s.params, true);
  const dist::Distribution d = f.make(params);
  if (s.edge) EXPECT_NO_THROW(d.log_prob(s.edge->tensor()));
  EMBER_EXPECT_THROW_WITH(d.log_prob(s.outside.tensor()), ValueError, f.dist_name + ".log_prob");
  const ValidationScope off(false);
  const Tensor lp = d.log_prob(s.outside.tensor());
  EXPECT_EQ(values(lp), Scalars(s.outside.values.size(), -INFINITY));
  sum(lp).backward();
  for (std::size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined()) << f.params[i].name;
    EXPECT_EQ(values(params[i].grad()), Scalars(params[i].numel(), 0.0)) << f.params[i].name;
  }
}

EMBER_FAMILY_SUITE(EnumeratedSupport, [](const Family& f) { return f.enumeration.has_value(); });

TEST_P(EnumeratedSupport, IsShapedAsPyroAndSumsToOne) {
  const Family& f = family();
  const auto& en = *f.enumeration;
  const dist::Distribution d = f.make(tensors_of(en.params));
  const Shape& batch = d.batch_shape();
  const auto n = static_cast<std::int64_t>(en.values.size());
  const Tensor flat = d.enumerate_support(false);
  EXPECT_EQ(flat.shape(), cat({{n}, Shape::filled(batch.size(), 1)}));
  EXPECT_EQ(flat.dtype(), en.dtype);
  expect_values(flat, en.values);
  const Tensor all = d.enumerate_support();
  EXPECT_EQ(all.shape(), cat({{n}, batch}));
  EXPECT_EQ(all.dtype(), en.dtype);
  Scalars repeated;
  for (double v : en.values) repeated.insert(repeated.end(), batch.numel(), v);
  expect_values(all, repeated);
  expect_close(sum(exp(d.log_prob(all)), {0}), ones(batch, f64()));
}

}  // namespace
}  // namespace ember::test
