// The families built on Gamma draws (kernels/math/distributions/gamma.hpp), reparameterized
// through the implicit gradients of those draws.
#pragma once

#include "ember/distributions/distribution.hpp"

namespace ember::dist {

// Gamma(concentration, rate): density rate^a x^(a-1) e^(-rate x) / Gamma(a) on x > 0,
// reparameterized through implicit gradients of its Gamma(a, 1) draws.
class Gamma : public Distribution {
 public:
  // concentration and rate must be positive (checked while validation is on).
  Gamma(const ParamArg& concentration, const ParamArg& rate);
  Tensor concentration() const;
  Tensor rate() const;
};

// Beta(concentration1, concentration0) on [0, 1]: X / (X + Y) for independent
// X ~ Gamma(concentration1, 1), Y ~ Gamma(concentration0, 1).
class Beta : public Distribution {
 public:
  // Both concentrations must be positive (checked while validation is on).
  Beta(const ParamArg& concentration1, const ParamArg& concentration0);
  Tensor concentration1() const;
  Tensor concentration0() const;
};

// StudentT(df, loc, scale): loc + scale * T, T Student's t with df degrees of freedom,
// reparameterized as Z * rsqrt(V / df) with V = 2 * Gamma(df / 2, 1), so df gets gradients.
class StudentT : public Distribution {
 public:
  // df and scale must be positive (checked while validation is on).
  StudentT(const ParamArg& df, const ParamArg& loc = 0.0, const ParamArg& scale = 1.0);
  Tensor df() const;
  Tensor loc() const;
  Tensor scale() const;
};

// Dirichlet(concentration) over the simplex of the last dim (event dim 1): independent
// Gamma(concentration_k, 1) draws normalized to sum 1.
class Dirichlet : public Distribution {
 public:
  // concentration has at least one dim (the last is the event dim, of size >= 1) and is
  // positive (checked while validation is on).
  explicit Dirichlet(const ParamArg& concentration);
  Tensor concentration() const;
};

}  // namespace ember::dist
