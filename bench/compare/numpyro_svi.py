#!/usr/bin/env python3
# NumPyro's figures for bench/svi_bench.cpp: the same six models, guides, data shapes and
# Adam learning rates, through numpyro.infer.SVI in its two forms:
#   per step  a jit-compiled `svi.update` called once a step (the whole step, guide + model +
#             gradient + Adam, is one XLA program), as a training loop that looks at each
#             step would;
#   compiled  NumPyro's fastest form: one `jax.jit` around `svi.run(..., progress_bar=False)`
#             of a fixed number of steps (a `lax.scan` over the update), compiled by an
#             untimed first call, then timed call by call (fast mode only: no per-step look).
# The first call of each, which traces and compiles, is reported apart from the steady state.
#
# "fast": validation off, no host sync inside the timed loop (the loop ends with
# block_until_ready). "checked": validation on and a host read of each step's loss to check
# that it is finite. NumPyro's validation does not look at traced values, so under jit it
# costs nothing once compiled; the check's cost is the per-step sync.
#
# The mixture's z is a Categorical in the guide, which has no reparameterized sampler.
# NumPyro's Trace_ELBO has no score-function term (it differentiates log q(z) at the drawn z
# only), so the row named dp_mixture uses TraceGraph_ELBO, NumPyro's ELBO with the
# score-function surrogate; dp_mixture_trace_elbo times the plain Trace_ELBO as well.
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def extra_args(p):
    p.add_argument("--no-trace-elbo-row", action="store_true",
                   help="skip the dp_mixture_trace_elbo row")


ARGS = harness.parse_args("NumPyro", extra_args)
# JAX picks its platform when first imported: JAX_PLATFORMS, if the caller set it, wins;
# otherwise --device chooses. XLA's CPU thread pool size is fixed the same way.
if "JAX_PLATFORMS" not in os.environ:
    os.environ["JAX_PLATFORMS"] = ARGS.device
# XLA has no flag for its CPU thread count (an unknown one is fatal): the harness has pinned
# the process to --threads cores, and Eigen's own pool is switched off.
if ARGS.threads > 0 and ARGS.device == "cpu":
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false").strip()

import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.distributions import constraints  # noqa: E402
from numpyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, TraceGraph_ELBO  # noqa: E402
from numpyro.infer.autoguide import AutoNormal  # noqa: E402
from numpyro.optim import Adam  # noqa: E402

D = 16  # regression features
T = 6  # stick-breaking truncation
N_MIX = 200  # mixture data points


def coin():
    flips = jnp.array([1.0] * 6 + [0.0] * 4)
    prior = jnp.array(10.0)

    def model(x):
        f = numpyro.sample("fairness", dist.Beta(prior, prior))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("obs", dist.Bernoulli(probs=f), obs=x)

    def guide(x):
        a = numpyro.param("alpha_q", jnp.array(15.0), constraint=constraints.positive)
        b = numpyro.param("beta_q", jnp.array(15.0), constraint=constraints.positive)
        numpyro.sample("fairness", dist.Beta(a, b))

    return model, guide, 5e-4, (flips,)


def blr(n):
    kx, ke = jax.random.split(jax.random.PRNGKey(7))
    x = jax.random.normal(kx, (n, D))
    w_true = jnp.linspace(-1.0, 1.0, D)
    y = x @ w_true + 0.5 + jax.random.normal(ke, (n,)) * 0.3

    # The data are arguments, not constants closed over: XLA would otherwise fold 64 MB of X
    # into the compiled program.
    def model(x, y):
        w = numpyro.sample("w", dist.Normal(jnp.zeros(D), 1.0).to_event(1))
        b = numpyro.sample("b", dist.Normal(0.0, 10.0))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("y", dist.Normal(x @ w + b, 0.3), obs=y)

    def guide(x, y):
        w_loc = numpyro.param("w_loc", jnp.zeros(D))
        w_scale = numpyro.param("w_scale", jnp.full((D,), 0.1), constraint=constraints.positive)
        b_loc = numpyro.param("b_loc", jnp.array(0.0))
        b_scale = numpyro.param("b_scale", jnp.array(0.1), constraint=constraints.positive)
        numpyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
        numpyro.sample("b", dist.Normal(b_loc, b_scale))

    return model, guide, 0.01, (x, y)


def mix_weights(beta):
    rest = jnp.cumprod(1 - beta, -1)
    return jnp.pad(beta, (0, 1), constant_values=1.0) * jnp.pad(rest, (1, 0), constant_values=1.0)


def dp_mixture():
    key = jax.random.PRNGKey(3)
    kd, kk, kt, kp = jax.random.split(key, 4)
    centers = jnp.array([[-8.0, -8.0], [8.0, 8.0], [1.5, 2.0], [-0.5, 1.0]])
    data = centers[jnp.arange(N_MIX) // 50] + jax.random.normal(kd, (N_MIX, 2))
    eye2 = jnp.eye(2)
    alpha = 0.1

    def model(data):
        with numpyro.plate("beta_plate", T - 1):
            beta = numpyro.sample("beta", dist.Beta(1.0, alpha))
        with numpyro.plate("mu_plate", T):
            # The tutorial's prior covariance 5 I (svi_bench gives its factor sqrt(5) I).
            mu = numpyro.sample("mu", dist.MultivariateNormal(jnp.zeros(2), scale_tril=eye2 * 5.0 ** 0.5))
        with numpyro.plate("data", N_MIX):
            z = numpyro.sample("z", dist.Categorical(probs=mix_weights(beta)))
            numpyro.sample("obs", dist.MultivariateNormal(mu[z], scale_tril=eye2), obs=data)

    def guide(data):
        kappa = numpyro.param("kappa", jax.random.uniform(kk, (T - 1,)) * 2.0,
                              constraint=constraints.positive)
        tau = numpyro.param("tau", jax.random.normal(kt, (T, 2)) * math.sqrt(3))
        phi = numpyro.param("phi", dist.Dirichlet(jnp.full((T,), 1.0 / T)).sample(kp, (N_MIX,)),
                            constraint=constraints.simplex)
        with numpyro.plate("beta_plate", T - 1):
            numpyro.sample("beta", dist.Beta(jnp.ones(T - 1), kappa))
        with numpyro.plate("mu_plate", T):
            numpyro.sample("mu", dist.MultivariateNormal(tau, scale_tril=eye2))
        with numpyro.plate("data", N_MIX):
            numpyro.sample("z", dist.Categorical(probs=phi))

    return model, guide, 0.05, (data,)


def autonormal_logreg():
    """NumPyro's benchmark logistic regression (N = 1000, D = 10) with an AutoNormal guide."""
    kx, ky = jax.random.split(jax.random.PRNGKey(5))
    x = jax.random.normal(kx, (1000, 10))
    labels = dist.Bernoulli(logits=x @ jnp.linspace(-1.0, 1.0, 10)).sample(ky)

    def model(x, labels):
        coefs = numpyro.sample("coefs", dist.Normal(jnp.zeros(10), 1.0).to_event(1))
        intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("obs", dist.Bernoulli(logits=x @ coefs + intercept), obs=labels)

    return model, AutoNormal(model), 0.01, (x, labels)


def hmm_enum():
    """An HMM (T = 1000 steps, K = 16 states) whose states TraceEnum_ELBO sums out along a
    markov chain; the transition matrix and state means are params of the model. The chain is
    a Python loop under `markov` (unrolled into the jitted step): NumPyro 0.22's `scan` form of
    this model gives a wrong ELBO (the states are not summed out; checked against the forward
    algorithm), so it is not used."""
    from numpyro.contrib.funsor import markov  # needs funsor: imported for this model only

    T, K = 1000, 16
    x = jnp.floor(jnp.arange(T) / 100.0) + jax.random.normal(jax.random.PRNGKey(11), (T,))

    def model(x):
        trans = numpyro.param("trans", jnp.full((K, K), 1.0 / K), constraint=constraints.simplex)
        locs = numpyro.param("locs", jnp.arange(K, dtype=jnp.float32))
        z = 0  # the chain starts from state 0 (z_{-1} = 0), as in svi_bench and pyro_svi.py
        for t in markov(range(T)):
            z = numpyro.sample(f"z_{t}", dist.Categorical(trans[z]),
                               infer={"enumerate": "parallel"})
            numpyro.sample(f"x_{t}", dist.Normal(locs[z], 1.0), obs=x[t])

    def guide(x):
        pass

    return model, guide, 0.01, (x,)


def build(name):
    if name == "coin":
        return coin()
    if name == "autonormal_logreg":
        return autonormal_logreg()
    if name == "hmm_enum":
        return hmm_enum()
    if name.startswith("blr/"):
        return blr(int(name.split("/")[1]))
    return dp_mixture()


def run_one(args, row, model_name, mode, elbo, backend):
    checked = mode == "checked"
    numpyro.enable_validation(checked)
    model, guide, lr, data = build(model_name)
    jax.block_until_ready(data)
    svi = SVI(model, guide, Adam(lr), elbo)
    t0 = time.perf_counter()
    state = svi.init(jax.random.PRNGKey(0), *data)
    jax.block_until_ready(state)
    init_ms = 1e3 * (time.perf_counter() - t0)
    update = jax.jit(svi.update)
    t0 = time.perf_counter()
    state, loss = update(state, *data)
    jax.block_until_ready(loss)
    compile_ms = 1e3 * (time.perf_counter() - t0)

    box = [state, loss]

    def step():
        box[0], box[1] = update(box[0], *data)
        if checked:
            v = float(box[1])  # a host read: the sync of a per-step finite check
            if not math.isfinite(v):
                raise RuntimeError(f"{model_name}: loss is {v}")

    def sync():
        jax.block_until_ready(box)

    steps = harness.steps_for(args, model_name)
    samples = harness.time_steps(step, sync, steps, harness.warmup_for(args, model_name),
                                 args.repeat)
    extra = {}
    if not checked:
        extra = compiled_loop(args, svi, box[0], data, steps)
    return harness.result(args, row, mode, backend, samples, steps, loss=float(box[1]),
                          compile_ms=compile_ms, init_ms=init_ms, elbo=type(elbo).__name__,
                          **extra)


def compiled_loop(args, svi, state, data, steps):
    """Microseconds per step of `steps` steps run as one compiled program: svi.run under one
    jax.jit from a given state, its first (compiling) call untimed, then `repeat` timed
    calls, each closed by block_until_ready."""
    run = jax.jit(lambda s, *d: svi.run(None, steps, *d, progress_bar=False, init_state=s))
    t0 = time.perf_counter()
    result = run(state, *data)
    jax.block_until_ready(result)
    compile_ms = 1e3 * (time.perf_counter() - t0)
    samples = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run(state, *data)
        jax.block_until_ready(result)
        samples.append(1e6 * (time.perf_counter() - t0) / steps)
    return {"compiled_us_per_step": statistics.median(samples),
            "compiled_samples_us": samples, "compiled_compile_ms": compile_ms,
            "compiled_loss": float(result.losses[-1])}


def main():
    args = ARGS
    backend = jax.default_backend()
    backend = "cuda" if backend == "gpu" else backend
    if backend != args.device:
        sys.exit(f"numpyro_svi.py: --device {args.device} but JAX's default backend is "
                 f"{jax.default_backend()} (JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS')})")
    results = []
    for model_name in args.models:
        if model_name == "hmm_enum" and not _has_funsor():
            print("numpyro_svi.py: hmm_enum skipped: NumPyro's enumeration needs funsor, "
                  "which is not installed (pip install funsor)", flush=True)
            continue
        rows = [(model_name, Trace_ELBO)]
        if model_name == "hmm_enum":
            rows = [(model_name, lambda: TraceEnum_ELBO(max_plate_nesting=0))]
        if model_name == "dp_mixture":
            rows = [("dp_mixture", TraceGraph_ELBO)]
            if not args.no_trace_elbo_row:
                rows.append(("dp_mixture_trace_elbo", Trace_ELBO))
        for row, elbo_cls in rows:
            for mode in args.modes:
                try:
                    r = run_one(args, row, model_name, mode, elbo_cls(), backend)
                except Exception as exc:  # noqa: BLE001 -- one model's failure is its row's
                    r = harness.failed_result(row, mode, backend, exc)
                harness.print_result(r)
                results.append(r)
    numpyro.enable_validation(False)
    versions = {"numpyro": numpyro.__version__, "jax": jax.__version__,
                "jaxlib": getattr(jax.lib, "__version__", None) or _jaxlib_version()}
    harness.write_json(args, "numpyro", versions, backend, results)


def _has_funsor():
    try:
        import funsor  # noqa: F401
        return True
    except ImportError:
        return False


def _jaxlib_version():
    try:
        import jaxlib
        return jaxlib.__version__
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    main()
