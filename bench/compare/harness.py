# The command line, timing loop and output shared by pyro_svi.py and numpyro_svi.py, so the
# two libraries are timed and reported the same way as each other and as bench/svi_bench.cpp.
import argparse
import json
import os
import platform
import statistics
import sys
import time

# The models, in svi_bench's order; names mirror BM_SviCoin/<backend>/<mode>,
# BM_SviBayesLinReg/<backend>/<n>/<mode>, BM_SviDpMixture/<backend>/<mode> and
# BM_SviAutoNormalLogReg/<backend>/<mode> and BM_SviHmmEnum/<backend>/<mode>.
MODELS = ("coin", "blr/1000", "blr/1000000", "dp_mixture", "autonormal_logreg", "hmm_enum")
# The slow steps (seconds in Pyro): timed over --steps-large steps, warmed up by two.
LARGE = ("blr/1000000", "hmm_enum")
MODES = ("fast", "checked")


def parse_args(library, extra=None):
    p = argparse.ArgumentParser(
        description=f"{library}: the SVI benchmarks of bench/svi_bench.cpp")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--steps", type=int, default=200,
                   help="timed steps per repeat (coin, blr/1000, dp_mixture)")
    p.add_argument("--steps-large", type=int, default=10,
                   help="timed steps per repeat for blr/1000000 and hmm_enum")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before timing")
    p.add_argument("--repeat", type=int, default=5,
                   help="timed repeats; the reported figure is their median")
    p.add_argument("--mode", choices=MODES + ("both",), default="both")
    p.add_argument("--only", default="",
                   help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--threads", type=int, default=0,
                   help="intra-op threads on the CPU (0: the library's default)")
    p.add_argument("--json", default="", help="write the results here")
    if extra is not None:
        extra(p)
    a = p.parse_args()
    pin_threads(a.threads if a.device == "cpu" else 0)
    a.models = [m for m in MODELS if not a.only or m in a.only.split(",")]
    a.modes = MODES if a.mode == "both" else (a.mode,)
    return a


def pin_threads(threads):
    """Keeps the process (and every thread it starts) on `threads` cores, before any library
    sizes its thread pools: whatever a library's own setting does, it then cannot use more.
    0 leaves the process as it is."""
    if threads <= 0 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if threads < len(cores):
        os.sched_setaffinity(0, set(cores[:threads]))


def steps_for(args, model):
    return args.steps_large if model in LARGE else args.steps


def warmup_for(args, model):
    return min(args.warmup, 2) if model == "hmm_enum" else args.warmup


def time_steps(step, sync, steps, warmup, repeat):
    """Runs `warmup` steps, then `repeat` timed loops of `steps` steps, each closed by a
    device sync; returns the microseconds per step of each loop."""
    for _ in range(warmup):
        step()
    sync()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        samples.append(1e6 * (time.perf_counter() - t0) / steps)
    return samples


def result(args, model, mode, backend, samples, steps, **extra):
    r = {
        "name": f"{model}/{mode}",
        "model": model,
        "mode": mode,
        "backend": backend,
        "us_per_step": statistics.median(samples),
        "us_per_step_min": min(samples),
        "samples_us_per_step": samples,
        "steps": steps,
        "repeat": args.repeat,
        "warmup": args.warmup,
    }
    r.update(extra)
    return r


def failed_result(model, mode, backend, exc):
    """The row of a model whose run raised: the table shows it as failed, the others run."""
    return {"name": f"{model}/{mode}", "model": model, "mode": mode, "backend": backend,
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]}


def print_result(r):
    if "error" in r:
        print(f"{r['name']} {r['backend']} failed: {r['error']}", flush=True)
        return
    extra = ""
    if r.get("compile_ms") is not None:
        extra += f" compile_ms={r['compile_ms']:.1f}"
    if r.get("loss") is not None:
        extra += f" loss={r['loss']:.6g}"
    if r.get("compiled_us_per_step") is not None:
        extra += (f" compiled_us_per_step={r['compiled_us_per_step']:.1f}"
                  f" compiled_compile_ms={r['compiled_compile_ms']:.1f}")
    print(f"{r['name']} {r['backend']} us_per_step={r['us_per_step']:.1f} "
          f"min={r['us_per_step_min']:.1f} steps={r['steps']} repeat={r['repeat']}{extra}",
          flush=True)


def write_json(args, library, versions, backend, results):
    if not args.json:
        return
    out = {
        "library": library,
        "versions": versions,
        "backend": backend,
        "threads": args.threads,
        "python": platform.python_version(),
        "host": platform.node(),
        "loadavg": os.getloadavg(),
        "argv": sys.argv,
        "results": results,
    }
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
