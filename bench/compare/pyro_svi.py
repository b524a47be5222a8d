#!/usr/bin/env python3
# Pyro's figures for bench/svi_bench.cpp: the same six models, guides, data shapes, Adam
# learning rates and Trace_ELBO, timed per SVI step. "fast" turns Pyro's validation off;
# "checked" keeps it on and checks that each step's loss is finite.
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import torch  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
from pyro.distributions import constraints  # noqa: E402
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO  # noqa: E402
from pyro.infer.autoguide import AutoNormal  # noqa: E402
from pyro.optim import Adam  # noqa: E402

D = 16  # regression features
T = 6  # stick-breaking truncation
N_MIX = 200  # mixture data points


def coin(dev):
    flips = torch.tensor([1.0] * 6 + [0.0] * 4, device=dev)
    prior = torch.tensor(10.0, device=dev)

    def model(x):
        f = pyro.sample("fairness", dist.Beta(prior, prior))
        with pyro.plate("data", x.size(0), device=dev):
            pyro.sample("obs", dist.Bernoulli(f), obs=x)

    def guide(x):
        a = pyro.param("alpha_q", torch.tensor(15.0, device=dev), constraint=constraints.positive)
        b = pyro.param("beta_q", torch.tensor(15.0, device=dev), constraint=constraints.positive)
        pyro.sample("fairness", dist.Beta(a, b))

    return model, guide, 5e-4, (flips,)


def blr(dev, n):
    g = torch.Generator(device=dev).manual_seed(7)
    x = torch.randn(n, D, device=dev, generator=g)
    w_true = torch.linspace(-1.0, 1.0, D, device=dev)
    y = x @ w_true + 0.5 + torch.randn(n, device=dev, generator=g) * 0.3
    zero = torch.zeros(D, device=dev)
    zero0 = torch.zeros((), device=dev)

    def model():
        w = pyro.sample("w", dist.Normal(zero, 1.0).to_event(1))
        b = pyro.sample("b", dist.Normal(zero0, 10.0))
        with pyro.plate("data", n, device=dev):
            pyro.sample("y", dist.Normal(x @ w + b, 0.3), obs=y)

    def guide():
        w_loc = pyro.param("w_loc", torch.zeros(D, device=dev))
        w_scale = pyro.param("w_scale", torch.full((D,), 0.1, device=dev),
                             constraint=constraints.positive)
        b_loc = pyro.param("b_loc", torch.zeros((), device=dev))
        b_scale = pyro.param("b_scale", torch.full((), 0.1, device=dev),
                             constraint=constraints.positive)
        pyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))
        pyro.sample("b", dist.Normal(b_loc, b_scale))

    return model, guide, 0.01, ()


def mix_weights(beta):
    rest = (1 - beta).cumprod(-1)
    return torch.nn.functional.pad(beta, (0, 1), value=1.0) * \
        torch.nn.functional.pad(rest, (1, 0), value=1.0)


def dp_mixture(dev):
    g = torch.Generator(device=dev).manual_seed(3)
    centers = torch.tensor([[-8.0, -8.0], [8.0, 8.0], [1.5, 2.0], [-0.5, 1.0]], device=dev)
    which = torch.div(torch.arange(N_MIX, device=dev), 50, rounding_mode="floor")
    data = centers[which] + torch.randn(N_MIX, 2, device=dev, generator=g)
    eye2 = torch.eye(2, device=dev)
    one = torch.ones((), device=dev)
    alpha = 0.1

    def model():
        with pyro.plate("beta_plate", T - 1, device=dev):
            beta = pyro.sample("beta", dist.Beta(one, alpha))
        with pyro.plate("mu_plate", T, device=dev):
            # The tutorial's prior covariance 5 I (svi_bench gives its factor sqrt(5) I).
            mu = pyro.sample("mu", dist.MultivariateNormal(torch.zeros(2, device=dev),
                                                           scale_tril=eye2 * 5.0 ** 0.5))
        with pyro.plate("data", N_MIX, device=dev):
            z = pyro.sample("z", dist.Categorical(mix_weights(beta)))
            pyro.sample("obs", dist.MultivariateNormal(mu[z], scale_tril=eye2), obs=data)

    def guide():
        kappa = pyro.param("kappa", lambda: torch.rand(T - 1, device=dev, generator=g) * 2.0,
                           constraint=constraints.positive)
        tau = pyro.param("tau", lambda: torch.randn(T, 2, device=dev, generator=g) * math.sqrt(3))
        phi = pyro.param("phi",
                         lambda: dist.Dirichlet(torch.full((N_MIX, T), 1.0 / T, device=dev)).sample(),
                         constraint=constraints.simplex)
        with pyro.plate("beta_plate", T - 1, device=dev):
            pyro.sample("beta", dist.Beta(torch.ones(T - 1, device=dev), kappa))
        with pyro.plate("mu_plate", T, device=dev):
            pyro.sample("mu", dist.MultivariateNormal(tau, scale_tril=eye2))
        with pyro.plate("data", N_MIX, device=dev):
            pyro.sample("z", dist.Categorical(phi))

    return model, guide, 0.05, ()


def autonormal_logreg(dev):
    """NumPyro's benchmark logistic regression (N = 1000, D = 10) with an AutoNormal guide."""
    g = torch.Generator(device=dev).manual_seed(5)
    x = torch.randn(1000, 10, device=dev, generator=g)
    logits = x @ torch.linspace(-1.0, 1.0, 10, device=dev)
    labels = torch.bernoulli(torch.sigmoid(logits), generator=g)
    zero = torch.zeros(10, device=dev)
    zero0 = torch.zeros((), device=dev)

    def model():
        coefs = pyro.sample("coefs", dist.Normal(zero, 1.0).to_event(1))
        intercept = pyro.sample("intercept", dist.Normal(zero0, 10.0))
        with pyro.plate("data", 1000, device=dev):
            pyro.sample("obs", dist.Bernoulli(logits=x @ coefs + intercept), obs=labels)

    return model, AutoNormal(model), 0.01, ()


def hmm_enum(dev):
    """An HMM (T = 1000 steps, K = 16 states) whose states TraceEnum_ELBO sums out along a
    markov chain; the transition matrix and state means are params of the model."""
    T, K = 1000, 16
    g = torch.Generator(device=dev).manual_seed(11)
    x = torch.floor(torch.arange(T, device=dev, dtype=torch.float32) / 100.0) + \
        torch.randn(T, device=dev, generator=g)

    def model():
        trans = pyro.param("trans", torch.full((K, K), 1.0 / K, device=dev),
                           constraint=constraints.simplex)
        locs = pyro.param("locs", torch.arange(K, device=dev, dtype=torch.float32))
        z = 0  # the chain starts from state 0 (z_{-1} = 0)
        for t in pyro.markov(range(T)):
            z = pyro.sample(f"z_{t}", dist.Categorical(trans[z]), infer={"enumerate": "parallel"})
            pyro.sample(f"x_{t}", dist.Normal(locs[z], 1.0), obs=x[t])

    def guide():
        pass

    return model, guide, 0.01, ()


def build(model_name, dev):
    if model_name == "coin":
        return coin(dev)
    if model_name == "autonormal_logreg":
        return autonormal_logreg(dev)
    if model_name == "hmm_enum":
        return hmm_enum(dev)
    if model_name.startswith("blr/"):
        return blr(dev, int(model_name.split("/")[1]))
    return dp_mixture(dev)


def main():
    args = harness.parse_args("Pyro")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("pyro_svi.py: --device cuda but torch sees no CUDA device")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    results = []
    for model_name in args.models:
        for mode in args.modes:
            checked = mode == "checked"
            pyro.enable_validation(checked)
            pyro.clear_param_store()
            model, guide, lr, data = build(model_name, dev)
            elbo = TraceEnum_ELBO(max_plate_nesting=0) if model_name == "hmm_enum" else Trace_ELBO()
            svi = SVI(model, guide, Adam({"lr": lr}), elbo)
            last = [float("nan")]

            def step():
                # svi.step returns the loss as a Python float: a host sync every step.
                last[0] = svi.step(*data)
                if checked and not math.isfinite(last[0]):
                    raise RuntimeError(f"{model_name}: loss is {last[0]}")

            steps = harness.steps_for(args, model_name)
            samples = harness.time_steps(step, sync, steps, harness.warmup_for(args, model_name),
                                         args.repeat)
            r = harness.result(args, model_name, mode, args.device, samples, steps, loss=last[0])
            harness.print_result(r)
            results.append(r)
    pyro.enable_validation(True)
    versions = {"pyro": pyro.__version__, "torch": torch.__version__}
    harness.write_json(args, "pyro", versions, args.device, results)


if __name__ == "__main__":
    main()
