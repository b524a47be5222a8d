// Constraints: the sets a distribution's parameters and values live in (Pyro's names).
// check(value) says, per batch element, whether the value lies in the set.
#pragma once

#include <string>

#include "ember/tensor.hpp"

namespace ember::constraints {

enum class Kind {
  Real,
  Positive,
  GreaterThan,       // value > lower
  GreaterThanEq,     // value >= lower
  Interval,          // lower <= value <= upper
  Simplex,           // nonnegative, summing to 1 over the last dim
  LowerCholesky,     // lower triangular with a positive diagonal
  PositiveDefinite,  // symmetric positive definite
  Boolean,
  NonnegativeInteger,
  IntegerInterval,  // integers in [lower, upper]
};

class Constraint {
 public:
  Constraint(Kind kind, int event_dim, double lower = 0.0, double upper = 0.0)
      : kind_(kind), event_dim_(event_dim), lower_(lower), upper_(upper) {}
  // Interval bounds given as tensors (a Uniform's support depends on its parameters).
  Constraint(Kind kind, int event_dim, Tensor lower, Tensor upper)
      : kind_(kind),
        event_dim_(event_dim),
        lower_t_(std::move(lower)),
        upper_t_(std::move(upper)) {}

  Kind kind() const { return kind_; }
  // Rightmost dims that form one element of the set (1 for simplex, 2 for matrices).
  int event_dim() const { return event_dim_; }
  bool is_discrete() const;
  std::string name() const;
  // Bool tensor of value's shape less event_dim rightmost dims: true where value is inside.
  Tensor check(const Tensor& value) const;
  // Whether every element of value lies inside (all(check(value)), with a host fast path).
  bool check_all(const Tensor& value) const;
  // The same set, with `n` more rightmost dims taken as one element (as Pyro's independent).
  Constraint independent(int n) const;

  double lower() const { return lower_; }
  double upper() const { return upper_; }
  const Tensor& lower_tensor() const { return lower_t_; }
  const Tensor& upper_tensor() const { return upper_t_; }

 private:
  Kind kind_;
  int event_dim_;
  double lower_ = 0.0, upper_ = 0.0;
  Tensor lower_t_, upper_t_;  // defined for parameter-dependent bounds
};

inline const Constraint real{Kind::Real, 0};
inline const Constraint real_vector{Kind::Real, 1};
inline const Constraint positive{Kind::Positive, 0};
inline const Constraint nonnegative{Kind::GreaterThanEq, 0, 0.0};
inline const Constraint unit_interval{Kind::Interval, 0, 0.0, 1.0};
inline const Constraint simplex{Kind::Simplex, 1};
inline const Constraint lower_cholesky{Kind::LowerCholesky, 2};
inline const Constraint positive_definite{Kind::PositiveDefinite, 2};
inline const Constraint boolean{Kind::Boolean, 0};
inline const Constraint nonnegative_integer{Kind::NonnegativeInteger, 0};
inline Constraint greater_than(double lower) { return {Kind::GreaterThan, 0, lower}; }
inline Constraint greater_than_eq(double lower) { return {Kind::GreaterThanEq, 0, lower}; }
inline Constraint interval(double lower, double upper) { return {Kind::Interval, 0, lower, upper}; }
inline Constraint interval(Tensor lower, Tensor upper) {
  return {Kind::Interval, 0, std::move(lower), std::move(upper)};
}
inline Constraint integer_interval(double lower, double upper) {
  return {Kind::IntegerInterval, 0, lower, upper};
}
inline Constraint integer_interval(Tensor lower, Tensor upper) {
  return {Kind::IntegerInterval, 0, std::move(lower), std::move(upper)};
}

}  // namespace ember::constraints
