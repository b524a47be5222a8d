#!/usr/bin/env python3
# Merges svi_bench's Google Benchmark JSON with the JSON of pyro_svi.py and numpyro_svi.py
# into one table: microseconds per SVI step and the ratios to Ember. A library whose file
# is missing, or holds {"error": ...} (as run_compare.sh writes), shows that reason instead.
# Ember's compiled steps (svi_bench's "compiled" mode: "fast" plus SVI::compile) sit in the
# "fast" row, beside NumPyro's compiled loop.
import argparse
import json
import os
import re
import statistics
import sys

# BM_SviCoin/<backend>/<mode>, BM_SviBayesLinReg/<backend>/<n>/<mode>, BM_SviDpMixture/...
EMBER_NAME = re.compile(
    r"^BM_Svi(Coin|BayesLinReg|DpMixture|AutoNormalLogReg|HmmEnum)/(\w+)/(?:(\d+)/)?(fast|checked|compiled)(?:/|$)")
MODEL_OF = {"Coin": "coin", "BayesLinReg": "blr", "DpMixture": "dp_mixture",
            "AutoNormalLogReg": "autonormal_logreg", "HmmEnum": "hmm_enum"}
ORDER = ["coin", "blr/1000", "blr/1000000", "dp_mixture", "dp_mixture_trace_elbo",
         "autonormal_logreg", "hmm_enum"]


def load(path):
    if not path:
        return None, "not run"
    if not os.path.exists(path):
        return None, "not run"
    with open(path) as f:
        data = json.load(f)
    if "error" in data:
        return None, data["error"]
    return data, None


def ember_rows(data):
    """(model, mode, backend) -> median us_per_step over svi_bench's repetitions."""
    medians, samples = {}, {}
    for b in data.get("benchmarks", []):
        m = EMBER_NAME.match(b.get("run_name", b["name"]))
        if not m or "us_per_step" not in b:
            continue
        what, backend, n, mode = m.groups()
        model = MODEL_OF[what] + (f"/{n}" if n else "")
        key = (model, mode, backend)
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[key] = b["us_per_step"]
        else:
            samples.setdefault(key, []).append(b["us_per_step"])
    for key, v in samples.items():
        medians.setdefault(key, statistics.median(v))
    return medians


def python_rows(data):
    return {(r["model"], r["mode"], r["backend"]): r for r in data["results"]}


def fmt_us(v):
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ember", default="")
    p.add_argument("--pyro", default="")
    p.add_argument("--numpyro", default="")
    p.add_argument("--out", default="", help="write the merged rows as JSON here")
    a = p.parse_args()

    ember, ember_why = load(a.ember)
    pyro, pyro_why = load(a.pyro)
    numpyro, numpyro_why = load(a.numpyro)
    e = ember_rows(ember) if ember else {}
    py = python_rows(pyro) if pyro else {}
    npy = python_rows(numpyro) if numpyro else {}

    keys = {k for k in set(e) | set(py) | set(npy) if k[1] != "compiled"}
    order = {m: i for i, m in enumerate(ORDER)}
    keys = sorted(keys, key=lambda k: (k[2], order.get(k[0], 99), k[1] != "fast"))

    def cell(rows, why, key, field="us_per_step"):
        if why is not None:
            return why
        r = rows.get(key)
        if r and "error" in r:
            return "failed (see log)"
        return fmt_us(r[field]) if r and r.get(field) is not None else "—"

    print("| model | mode | backend | Ember µs/step | Ember compiled µs/step | Pyro µs/step | "
          "NumPyro µs/step | NumPyro compiled loop µs/step | Pyro / Ember | NumPyro / Ember | "
          "NumPyro compiled / Ember | NumPyro compiled / Ember compiled | "
          "NumPyro first call (ms) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    merged = []
    for key in keys:
        model, mode, backend = key
        ev = e.get(key)
        pv = py[key].get("us_per_step") if key in py else None
        nv = npy[key].get("us_per_step") if key in npy else None
        # NumPyro's compiled loop (svi.run under one jit): timed in fast mode only.
        cv = npy[key].get("compiled_us_per_step") if key in npy else None
        compile_ms = npy[key].get("compile_ms") if key in npy else None
        # Ember's compiled step: timed in fast mode only, as NumPyro's compiled loop.
        ecv = e.get((model, "compiled", backend)) if mode == "fast" else None
        ember_cell = ember_why if ember_why is not None else fmt_us(ev)
        print(f"| {model} | {mode} | {backend} | {ember_cell} | {fmt_us(ecv)} | "
              f"{cell(py, pyro_why, key)} | {cell(npy, numpyro_why, key)} | "
              f"{cell(npy, numpyro_why, key, 'compiled_us_per_step')} | "
              f"{fmt_ratio(pv, ev)} | {fmt_ratio(nv, ev)} | {fmt_ratio(cv, ev)} | "
              f"{fmt_ratio(cv, ecv)} | {'—' if compile_ms is None else f'{compile_ms:,.0f}'} |")
        merged.append({"model": model, "mode": mode, "backend": backend, "ember_us": ev,
                       "ember_compiled_us": ecv, "pyro_us": pv, "numpyro_us": nv,
                       "numpyro_compiled_us": cv, "numpyro_compile_ms": compile_ms})
    for name, data in (("pyro", pyro), ("numpyro", numpyro)):
        if data:
            v = ", ".join(f"{k} {x}" for k, x in data["versions"].items())
            print(f"\n{name}: {v}; threads={data.get('threads') or 'default'}", end="")
    print()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(merged, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
