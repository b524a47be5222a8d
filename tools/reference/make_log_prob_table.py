#!/usr/bin/env python3
"""Writes tests/engine/distributions/reference_log_prob.txt: log-densities of every distribution
family at fixed parameters and values, computed by SciPy (a reference tool, never a runtime
dependency of Ember). Run from the repository root:

    pip install scipy numpy && python3 tools/reference/make_log_prob_table.py

Line format: family|name=v v v|...|value=v v v|log_prob=v  (vectors and row-major matrices
as space-separated numbers). Parameter names and order are Ember's constructor arguments.
"""
import math
import pathlib

import numpy as np
from scipy import integrate, special, stats

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "engine" / "distributions" / "reference_log_prob.txt"


def fmt(v):
    return " ".join(repr(float(x)) for x in np.ravel(v))


rows = []


def add(family, params, value, log_prob):
    fields = [family] + [f"{k}={fmt(v)}" for k, v in params.items()]
    fields += [f"value={fmt(value)}", f"log_prob={repr(float(log_prob))}"]
    rows.append("|".join(fields))


# Elementwise continuous families: (params, value) grids over typical and extreme values.
for loc, scale, x in [(0.0, 1.0, 0.0), (0.5, 2.0, 1.5), (-3.0, 0.1, -2.5), (10.0, 5.0, -20.0)]:
    add("Normal", {"loc": loc, "scale": scale}, x, stats.norm.logpdf(x, loc, scale))
    add("Cauchy", {"loc": loc, "scale": scale}, x, stats.cauchy.logpdf(x, loc, scale))
    add("Laplace", {"loc": loc, "scale": scale}, x, stats.laplace.logpdf(x, loc, scale))
for loc, scale, x in [(0.0, 1.0, 1.0), (0.5, 0.3, 2.0), (-1.0, 2.0, 0.01), (2.0, 0.5, 30.0)]:
    add("LogNormal", {"loc": loc, "scale": scale}, x,
        stats.lognorm.logpdf(x, s=scale, scale=math.exp(loc)))
for scale, x in [(1.0, 0.0), (2.0, 1.5), (0.1, 0.3), (5.0, 20.0)]:
    add("HalfNormal", {"scale": scale}, x, stats.halfnorm.logpdf(x, scale=scale))
    add("HalfCauchy", {"scale": scale}, x, stats.halfcauchy.logpdf(x, scale=scale))
for df, loc, scale, x in [(1.0, 0.0, 1.0, 0.5), (3.5, 1.0, 2.0, -2.0), (30.0, -1.0, 0.5, 0.0),
                          (0.5, 0.0, 1.0, 10.0)]:
    add("StudentT", {"df": df, "loc": loc, "scale": scale}, x, stats.t.logpdf(x, df, loc, scale))
for low, high, x in [(0.0, 1.0, 0.5), (-2.0, 3.0, 2.9), (1.0, 1.5, 1.0)]:
    add("Uniform", {"low": low, "high": high}, x, stats.uniform.logpdf(x, low, high - low))
for rate, x in [(1.0, 0.0), (2.5, 1.2), (0.01, 300.0), (100.0, 0.001)]:
    add("Exponential", {"rate": rate}, x, stats.expon.logpdf(x, scale=1.0 / rate))
for conc, rate, x in [(1.0, 1.0, 0.5), (0.1, 2.0, 0.01), (5.0, 0.5, 12.0), (200.0, 10.0, 19.0),
                      (0.5, 1.0, 3.0)]:
    add("Gamma", {"concentration": conc, "rate": rate}, x,
        stats.gamma.logpdf(x, a=conc, scale=1.0 / rate))
for c1, c0, x in [(1.0, 1.0, 0.3), (0.5, 0.5, 0.01), (2.0, 5.0, 0.2), (30.0, 0.2, 0.999),
                  (0.1, 3.0, 0.5)]:
    add("Beta", {"concentration1": c1, "concentration0": c0}, x, stats.beta.logpdf(x, c1, c0))
for alpha, x in [([1.0, 1.0, 1.0], [0.2, 0.3, 0.5]), ([0.5, 2.0, 4.0, 1.5], [0.05, 0.25, 0.5, 0.2]),
                 ([10.0, 0.3], [0.9, 0.1])]:
    add("Dirichlet", {"concentration": alpha}, x, stats.dirichlet.logpdf(x, alpha))

# Discrete families.
for p, x in [(0.3, 1.0), (0.3, 0.0), (0.999, 1.0), (1e-4, 0.0)]:
    add("Bernoulli", {"probs": p}, x, stats.bernoulli.logpmf(x, p))
    logit = math.log(p) - math.log1p(-p)
    add("BernoulliLogits", {"logits": logit}, x, stats.bernoulli.logpmf(x, p))
# Large counts too: their terms cancel, which float32 arithmetic cannot afford.
for n, p, x in [(10.0, 0.3, 3.0), (1.0, 0.5, 1.0), (100.0, 0.01, 0.0), (50.0, 0.9, 50.0),
                (7.0, 0.25, 7.0), (1000.0, 0.3, 290.0), (1000.0, 0.5, 500.0),
                (20000.0, 0.7, 14100.0)]:
    add("Binomial", {"total_count": n, "probs": p}, x, stats.binom.logpmf(x, n, p))
for rate, x in [(1.0, 0.0), (3.5, 2.0), (0.01, 1.0), (250.0, 240.0), (1000.0, 1000.0),
                (1000.0, 950.0), (40000.0, 40000.0), (40000.0, 39800.0)]:
    add("Poisson", {"rate": rate}, x, stats.poisson.logpmf(x, rate))
for p, x in [(0.5, 0.0), (0.2, 3.0), (0.95, 1.0), (0.01, 150.0)]:
    # Ember (like Pyro) counts failures before the first success; SciPy counts trials.
    add("Geometric", {"probs": p}, x, stats.geom.logpmf(x + 1, p))
for probs, x in [([0.2, 0.3, 0.5], 2.0), ([0.1, 0.1, 0.1, 0.7], 0.0)]:
    add("Categorical", {"probs": probs}, x, math.log(probs[int(x)]))
    logits = np.log(probs) + 1.7  # unnormalized logits
    add("CategoricalLogits", {"logits": logits}, x, math.log(probs[int(x)]))

# ContinuousBernoulli: probs^x (1 - probs)^(1 - x) over its integral on [0, 1], the integral
# by adaptive quadrature (independent of the closed-form normalizer Ember uses).
for p, x in [(0.3, 0.2), (0.5, 0.7), (0.5000001, 0.5), (0.9, 1.0), (0.02, 0.0), (0.999, 0.4),
             (1e-6, 0.9)]:
    def unnormalized(t, p=p):
        return math.exp(t * math.log(p) + (1 - t) * math.log1p(-p))
    norm, _ = integrate.quad(unnormalized, 0.0, 1.0, epsabs=0.0, epsrel=1e-13, limit=200)
    lp = x * math.log(p) + (1 - x) * math.log1p(-p) - math.log(norm)
    add("ContinuousBernoulli", {"probs": p}, x, lp)
    add("ContinuousBernoulliLogits", {"logits": math.log(p) - math.log1p(-p)}, x, lp)

# Multivariate normals (loc, covariance row-major).
for loc, cov, x in [([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], [0.5, -0.5]),
                    ([1.0, -2.0, 0.5], [[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]],
                     [0.0, -1.0, 1.0])]:
    add("MultivariateNormal", {"loc": loc, "covariance_matrix": cov}, x,
        stats.multivariate_normal.logpdf(x, loc, cov))
for loc, w, d, x in [([0.0, 1.0, -1.0], [[1.0], [0.5], [-0.3]], [0.5, 1.0, 2.0], [0.2, 0.8, 0.1]),
                     ([1.0, 2.0], [[0.3, 0.1], [-0.2, 0.4]], [1.0, 0.5], [0.0, 3.0])]:
    cov = np.array(w) @ np.array(w).T + np.diag(d)
    add("LowRankMultivariateNormal", {"loc": loc, "cov_factor": w, "cov_diag": d}, x,
        stats.multivariate_normal.logpdf(x, loc, cov))

OUT.parent.mkdir(parents=True, exist_ok=True)
header = "# Generated by tools/reference/make_log_prob_table.py with SciPy " + \
    __import__("scipy").__version__ + "; do not edit.\n"
OUT.write_text(header + "\n".join(rows) + "\n")
print(f"wrote {len(rows)} cases to {OUT}")
