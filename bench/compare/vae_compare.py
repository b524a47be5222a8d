#!/usr/bin/env python3
# The VAE step of Pyro's tutorial (784-400-20, softplus hidden layers, a Bernoulli likelihood
# on binarized digits, Adam 1e-3, float32) three ways in one run, side by side:
#   ember    bench/vae_bench's BM_VaeStep, eager and compiled (SVI::compile()) (run by this
#            script, its JSON read back)
#   pytorch  a hand-written PyTorch loop: the same networks, a one-sample reparameterized ELBO
#            written out, loss.backward(), torch.optim.Adam; on a GPU also the same step
#            captured once in a CUDA Graph and replayed (PyTorch's fastest form there)
#   pyro     pyro.infer.SVI with Trace_ELBO and the tutorial's model and guide
# Every step reads its loss back to the host (a training loop that logs does), so a GPU
# step's time includes finishing it. On the CPU each library runs at 1 and 2 threads.
#
#   python3 bench/compare/vae_compare.py --ember build/bench/vae_bench [--device cpu|cuda]
#       [--batches 128,256] [--threads 1,2] [--steps 50] [--repeat 5] [--json OUT]
#
# Figures from one run on a shared machine are ratios to compare, not absolute speeds.
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "..", "..", "data", "mnist10k-images-idx3-ubyte.gz")
Z_DIM, HIDDEN, PIXELS = 20, 400, 784


def binarized_digits(count):
    """The shipped digits binarized at 0.5 (as bench/vae_bench does), the first `count`."""
    with gzip.open(DIGITS, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, PIXELS)
    return (images[:count] > 127.5).astype(np.float32)


def step_ms(step, sync, args):
    """Median milliseconds per step, timed as pyro_svi.py and numpyro_svi.py time theirs."""
    return statistics.median(harness.time_steps(step, sync, args.steps, args.warmup,
                                                args.repeat)) / 1e3


# ---- PyTorch and Pyro ----

def torch_networks(torch, device):
    nn = torch.nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(PIXELS, HIDDEN)
            self.fc21 = nn.Linear(HIDDEN, Z_DIM)
            self.fc22 = nn.Linear(HIDDEN, Z_DIM)

        def forward(self, x):
            h = nn.functional.softplus(self.fc1(x))
            return self.fc21(h), torch.exp(self.fc22(h))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(Z_DIM, HIDDEN)
            self.fc21 = nn.Linear(HIDDEN, PIXELS)

        def forward(self, z):  # logits
            return self.fc21(nn.functional.softplus(self.fc1(z)))

    return Encoder().to(device), Decoder().to(device)


def negative_elbo(torch, encoder, decoder, x):
    """-[log p(x | z) + log p(z) - log q(z | x)] at one reparameterized draw z ~ q, summed over
    the batch: the estimator Trace_ELBO computes for this model."""
    loc, scale = encoder(x)
    eps = torch.randn_like(loc)
    z = loc + scale * eps
    log_lik = -torch.nn.functional.binary_cross_entropy_with_logits(
        decoder(z), x, reduction="sum")
    log_prior = -0.5 * (z * z).sum()
    log_q = -0.5 * (eps * eps).sum() - torch.log(scale).sum()
    # The 0.5 log(2 pi) terms of the prior and q cancel.
    return log_q - log_prior - log_lik


def pytorch_step_ms(torch, x, args, graph):
    encoder, decoder = torch_networks(torch, x.device)
    params = list(encoder.parameters()) + list(decoder.parameters())
    if not graph:
        opt = torch.optim.Adam(params, lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = negative_elbo(torch, encoder, decoder, x)
            loss.backward()
            opt.step()
            return loss.item()

        return step_ms(step, lambda: None, args)

    # Capture one whole step (forward, backward, Adam) in a CUDA Graph and replay it.
    opt = torch.optim.Adam(params, lr=1e-3, capturable=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss = negative_elbo(torch, encoder, decoder, x)
            loss.backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph_ = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph_):
        static_loss = negative_elbo(torch, encoder, decoder, x)
        static_loss.backward()
        opt.step()

    def step():
        graph_.replay()
        return static_loss.item()

    return step_ms(step, torch.cuda.synchronize, args)


def pyro_step_ms(torch, x, args):
    import pyro
    import pyro.distributions as dist

    pyro.clear_param_store()
    encoder, decoder = torch_networks(torch, x.device)

    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc = x.new_zeros(torch.Size((x.shape[0], Z_DIM)))
            z_scale = x.new_ones(torch.Size((x.shape[0], Z_DIM)))
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            pyro.sample("obs", dist.Bernoulli(logits=decoder(z), validate_args=False).to_event(1),
                        obs=x)

    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0]):
            loc, scale = encoder(x)
            pyro.sample("latent", dist.Normal(loc, scale).to_event(1))

    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), pyro.infer.Trace_ELBO())
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    return step_ms(lambda: svi.step(x), sync, args)


def python_rows(args, threads, batch):
    """{"pytorch": ms, "pytorch_graph": ms, "pyro": ms} for one configuration; a library that
    does not import gives its reason instead."""
    out = {}
    try:
        import torch
    except ImportError:
        return {"pytorch": "not installed", "pyro": "not installed"}
    if args.device == "cpu":
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.from_numpy(binarized_digits(batch)).to(args.device)
    out["pytorch"] = pytorch_step_ms(torch, x, args, graph=False)
    if args.device == "cuda":
        out["pytorch_graph"] = pytorch_step_ms(torch, x, args, graph=True)
    try:
        import pyro  # noqa: F401
        out["pyro"] = pyro_step_ms(torch, x, args)
    except ImportError:
        out["pyro"] = "not installed"
    return out


# ---- Ember ----

def ember_rows(args):
    """{(threads, batch, compiled): median ms per step} from one vae_bench run: the eager
    step and the compiled one (SVI::compile()), on a fixed batch (not the "fed" variants)."""
    filt = f"BM_VaeStep/{args.device}/({'|'.join(args.batches)})"
    if args.device == "cpu":
        filt += f"/threads({'|'.join(str(t) for t in args.threads)})"
    filt += "(/compiled)?/manual_time$"
    out_json = (os.path.splitext(args.json)[0] + ".ember.json" if args.json
                else os.path.join(tempfile.gettempdir(), "vae_compare.ember.json"))
    cmd = [args.ember, f"--benchmark_filter={filt}", f"--benchmark_repetitions={args.repeat}",
           "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.5",
           f"--benchmark_out={out_json}", "--benchmark_out_format=json"]
    print("== ember:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    with open(out_json) as f:
        data = json.load(f)
    rows = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        parts = b["run_name"].split("/")
        batch = int(parts[2])
        threads = int(parts[3][len("threads"):]) if parts[3].startswith("threads") else 0
        rows[(threads, batch, "compiled" in parts)] = b["ms_per_step"]
    return rows


def fmt(v):
    return f"{v:8.2f}" if isinstance(v, float) else f"{v:>8}"


def ratio(a, b):
    return f"{a / b:7.2f}x" if isinstance(a, float) and isinstance(b, float) else f"{'-':>8}"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ember", required=True, help="the vae_bench program")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batches", default="128,256")
    p.add_argument("--threads", default="1,2", help="CPU threads to compare at")
    p.add_argument("--steps", type=int, default=50, help="timed steps per Python repeat")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5, help="repeats; medians are reported")
    p.add_argument("--json", default="", help="write the table here (and the Ember JSON beside)")
    args = p.parse_args()
    args.batches = args.batches.split(",")
    args.threads = [int(t) for t in args.threads.split(",")] if args.device == "cpu" else [0]

    print(f"== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} device={args.device} "
          f"load average {open('/proc/loadavg').read().split()[:3]}", flush=True)
    ember = ember_rows(args)
    rows = []
    for threads in args.threads:
        for batch in (int(b) for b in args.batches):
            py = python_rows(args, threads, batch)
            rows.append({"device": args.device, "threads": threads, "batch": batch,
                         "ember": ember.get((threads, batch, False), "missing"),
                         "ember_compiled": ember.get((threads, batch, True), "missing"), **py})
            print(f"   measured threads={threads} batch={batch}", flush=True)

    graph = args.device == "cuda"
    print(f"\nVAE step 784-400-20, float32, ms per step (median of {args.repeat}); "
          "ratios > 1 mean Ember is slower (ember/pytorch; comp: Ember compiled) or faster "
          "(pyro/ember)")
    head = f"{'device':>6} {'threads':>7} {'batch':>5} {'ember':>8} {'compiled':>8} {'pytorch':>8}"
    head += f" {'pt graph':>8}" if graph else ""
    head += f" {'pyro':>8} {'ember/pt':>8} {'comp/pt':>8}"
    head += f" {'comp/ptg':>9}" if graph else ""
    head += f" {'pyro/ember':>10}"
    print(head)
    for r in rows:
        line = f"{r['device']:>6} {r['threads'] or '-':>7} {r['batch']:>5} {fmt(r['ember'])} "
        line += f"{fmt(r['ember_compiled'])} {fmt(r['pytorch'])}"
        line += f" {fmt(r['pytorch_graph'])}" if graph else ""
        line += f" {fmt(r['pyro'])} {ratio(r['ember'], r['pytorch'])}"
        line += f" {ratio(r['ember_compiled'], r['pytorch'])}"
        line += f"  {ratio(r['ember_compiled'], r['pytorch_graph'])}" if graph else ""
        line += f"   {ratio(r['pyro'], r['ember'])}"
        print(line)
    versions = {}
    for module in ("torch", "pyro"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": versions, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
