// The table of distribution families that families_test.cpp checks, one entry per family
// and parameterization, as Stan's distribution tests have: how to build it, where its
// parameters and values lie, its SciPy reference, its sampler's test, its closed-form
// moments and its invalid arguments. Checks that fit no table stay in the group files
// (continuous_test.cpp, gamma_test.cpp, discrete_test.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "reference.hpp"
#include "test_util.hpp"

namespace ember::test {

using Tensors = std::vector<Tensor>;
using Scalars = std::vector<double>;

// How a test draws a tensor of values (a parameter, or a value in the support) from the
// process's seeded generator.
struct Draw {
  // Normal: standard normal; Uniform: in [lo, hi); Simplex: rows (the last dim) of
  // Uniform values normalized to sum to one; Integers: lo..hi as float64; Categories:
  // lo..hi as int64 (never requiring grad).
  enum class Kind { Normal, Uniform, Simplex, Integers, Categories };
  Kind kind = Kind::Normal;
  double lo = 0.0, hi = 0.0;
  Tensor operator()(const Shape& shape, bool requires_grad) const;
  // Whether its values may vary continuously (the value of a continuous family).
  bool continuous() const { return kind != Kind::Integers && kind != Kind::Categories; }
};

inline Draw normal_values() { return {Draw::Kind::Normal}; }
inline Draw uniform_values(double lo, double hi) { return {Draw::Kind::Uniform, lo, hi}; }
inline Draw simplex_values(double lo, double hi) { return {Draw::Kind::Simplex, lo, hi}; }
inline Draw integer_values(double lo, double hi) { return {Draw::Kind::Integers, lo, hi}; }
inline Draw category_values(double hi) { return {Draw::Kind::Categories, 0.0, hi}; }

struct Param {
  std::string name;  // the accessor's and the SciPy table's
  Draw draw;         // values inside the valid range, for the gradient and shape checks
  // Where the rsample gradient check needs a range other than `draw`'s.
  std::optional<Draw> rsample_draw = std::nullopt;
};

// A float64 tensor's shape and its values, row-major.
struct Array {
  Shape shape;
  Scalars values;
  Array(std::initializer_list<double> v)  // NOLINT(google-explicit-constructor): a vector
      : shape{static_cast<std::int64_t>(v.size())}, values(v) {}
  Array(Shape s, Scalars v) : shape(std::move(s)), values(std::move(v)) {}
  Tensor tensor(bool requires_grad = false) const;
};

inline Array scalar(double v) { return Array(Shape{}, {v}); }

// log_prob against SciPy (reference_log_prob.txt, made by tools/reference), in float64 and
// float32: within rtol * (1 + |log_prob|) of each case.
struct Reference {
  std::string family;  // the table's name for it
  double f64_rtol = 1e-12, f32_rtol = 1e-5;
  // What float32's tolerance is relative to where the terms outgrow the result.
  std::function<double(const ReferenceCase&)> f32_scale = nullptr;
  // The parameters from a case where they are not the table's by name (logits from probs).
  std::function<Tensors(const ReferenceCase&, const TensorOptions&)> params = nullptr;
};

// The sampler's test. Each case (scalar parameters) draws from a fresh Generator(seed) in
// float64 and then in float32: every draw in the support, a KS test against the CDF or a
// chi-square test against the pmf over 0..max_k at significance 0.001, the draws' mean
// within mean_z standard errors and their variance within var_rtol, where given.
struct Sampler {
  std::uint64_t seed = 0;
  std::vector<Scalars> cases;
  std::function<double(const Scalars&, double)> cdf = nullptr;
  std::function<double(const Scalars&, std::int64_t)> pmf = nullptr;
  std::function<std::int64_t(const Scalars&)> max_k = nullptr;
  std::function<bool(const Scalars&, double)> in_support = nullptr;
  std::function<double(const Scalars&)> mean = nullptr, variance = nullptr;
  double mean_z = 4.0, var_rtol = 0.0;
  bool slow = false;  // over 0.3 s: instantiated as SlowFamilies, for the label `slow`
};

struct Expected {
  Scalars values;
  double rtol = 1e-6, atol = 1e-9;
};

// mean, variance (and stddev, its root) and entropy at `params`, those given.
struct Moments {
  std::vector<Array> params;
  std::optional<Expected> mean = std::nullopt, variance = std::nullopt, entropy = std::nullopt;
};

// A statement that throws, the error's class and what its message names.
struct Invalid {
  enum class Error { Value, Shape };
  std::function<void()> statement;
  Error error = Error::Value;
  std::vector<std::string> fragments;
  // A validation check, which set_validation_enabled(false) turns off.
  bool validation = true;
};

// The support's edge for the distribution at `params`: log_prob accepts the `edge` values,
// and with validation off gives -inf at the `outside` ones, with zero partials.
struct Support {
  std::vector<Array> params;
  std::optional<Array> edge;
  Array outside;
};

// A finite support: enumerate_support at `params` gives `values`, in `dtype`.
struct Enumeration {
  std::vector<Array> params;
  Scalars values;
  DType dtype = kFloat64;
};

struct Family {
  std::string name;       // the entry's, e.g. "BernoulliLogits"
  std::string dist_name;  // Distribution::name(), e.g. "Bernoulli"
  std::function<dist::Distribution(const Tensors&)> make;
  // The parameters back from the family's accessors (loc(), scale(), ...).
  std::function<Tensors(const Tensors&)> accessors;
  std::vector<Param> params;
  Shape param_event = {};  // trailing dims of every parameter: K of Categorical, Dirichlet
  Shape event_shape = {};
  Draw value;                        // inside the support, for the gradient and shape checks
  bool grad_off_validation = false;  // finite differences step off the valid parameters
  bool entropy_grad = false;         // entropy is composed of ops; check its gradient too
  bool has_rsample = false;
  bool rsample_grad = true;  // false where every parameter can change the draw's path
  std::vector<std::size_t> rsample_fixed = {};  // parameters held fixed for that check
  DType sample_dtype = kFloat64;  // of draws that do not take the parameters' (kInt64)
  std::optional<Reference> reference = std::nullopt;
  std::optional<Sampler> sampler = std::nullopt;
  std::vector<Moments> moments = {};
  std::vector<Invalid> invalid = {};
  std::optional<Support> support = std::nullopt;
  std::optional<Enumeration> enumeration = std::nullopt;

  bool has_mean() const;
  bool has_variance() const;
  bool has_entropy() const;
  // Parameter i drawn at batch shape batches[i % size] followed by param_event.
  Tensors draw_params(const std::vector<Shape>& batches, bool requires_grad,
                      bool for_rsample = false) const;
};

// gtest prints a parameter of a failing case by this.
inline void PrintTo(const Family* f, std::ostream* os) { *os << f->name; }

const std::vector<Family>& families();

// The entries with a property, as pointers for INSTANTIATE_TEST_SUITE_P.
std::vector<const Family*> families_where(const std::function<bool(const Family&)>& keep);

}  // namespace ember::test
