#!/usr/bin/env bash
# Ember's svi_bench next to the same five SVI benchmarks in Pyro and NumPyro, on one backend,
# and the table of all three (see docs/benchmarks.md, "SVI against Pyro and NumPyro").
#
#   bench/compare/run_compare.sh [BUILD_DIR]      # BUILD_DIR holds bench/svi_bench (default: build)
#
# Environment: DEVICE=cpu|cuda (default cpu), REPEAT (repeats, medians reported; default 5),
# STEPS and STEPS_LARGE (timed steps per Python repeat; default 200 and 10, the latter for the
# N = 10^6 regression), THREADS (CPU threads for every library, 0 = each library's default;
# default 1 on the CPU), PYTHON (default python3), EMBER_MIN_TIME (seconds per svi_bench
# repetition, default 0.5), OUT (where the JSON and logs go; default BUILD_DIR/compare),
# WHEELS (wheels of Pyro and funsor to install into OUT when the Python lacks them; default
# .carry/wheels, which tools/prepare_gpu_carry.sh makes for the GPU machine).
# A library that does not import, or whose script fails, is shown as such in the table; the
# exit status is non-zero only when svi_bench itself fails.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-build}"
device="${DEVICE:-cpu}"
repeat="${REPEAT:-5}"
steps="${STEPS:-200}"
steps_large="${STEPS_LARGE:-10}"
python="${PYTHON:-python3}"
min_time="${EMBER_MIN_TIME:-0.5}"
out="${OUT:-$build/compare}"
if [[ "$device" == cpu ]]; then threads="${THREADS:-1}"; else threads="${THREADS:-0}"; fi
case "$device" in cpu|cuda) ;; *) echo "run_compare: DEVICE must be cpu or cuda" >&2; exit 2 ;; esac
mkdir -p "$out"

bench="$build/bench/svi_bench"
if [[ ! -x "$bench" ]]; then
  echo "run_compare: $bench not found (build it: ninja -C $build svi_bench)" >&2
  exit 2
fi

# Every library is held to the same cores: Ember by its thread count and, where taskset is
# there, by affinity; the Python scripts pin themselves (harness.pin_threads).
thread_env=()
pin=()
if [[ "$threads" -gt 0 ]]; then
  thread_env=(OMP_NUM_THREADS="$threads")
  if command -v taskset >/dev/null; then pin=(taskset -c "0-$((threads - 1))"); fi
fi

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) device=$device repeat=$repeat threads=$threads"
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== ember $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')" \
     "$(git -C "$here" diff --quiet HEAD 2>/dev/null || echo '(working tree has changes)')"

echo "== ember: svi_bench"
env "${thread_env[@]}" "${pin[@]}" "$bench" --benchmark_filter="BM_Svi.*/$device/" \
  --benchmark_repetitions="$repeat" --benchmark_report_aggregates_only=true \
  --benchmark_min_time="$min_time" \
  --benchmark_out="$out/ember.json" --benchmark_out_format=json 2>&1 | tee "$out/ember.log"
rc=${PIPESTATUS[0]}
if [[ $rc -ne 0 ]]; then
  echo "run_compare: svi_bench failed (exit $rc)" >&2
  exit "$rc"
fi

# Pyro and funsor, where the machine's Python lacks them, from the wheels that
# tools/prepare_gpu_carry.sh carries (WHEELS: another folder of wheels), installed into OUT.
wheels="${WHEELS:-$here/../../.carry/wheels}"
if ! "$python" -c "import pyro, funsor" >/dev/null 2>&1 && compgen -G "$wheels/*.whl" >/dev/null; then
  site="$out/site-packages"
  if "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" \
      "$wheels"/*.whl >"$out/wheels.log" 2>&1; then
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    echo "== python: installed $(ls "$wheels" | wc -l) wheels from $wheels into $site"
  else
    echo "== python: the wheels in $wheels did not install (see $out/wheels.log)"
  fi
fi

# $1 library, $2 module that must import, $3 script
run_python() {
  local lib="$1" module="$2" script="$3"
  rm -f "$out/$lib.json"
  if ! "$python" -c "import $module" >/dev/null 2>&1; then
    echo "== $lib: not installed ($python cannot import $module)"
    echo '{"error": "not installed"}' >"$out/$lib.json"
    return
  fi
  echo "== $lib: $script"
  if ! "$python" "$here/$script" --device "$device" --repeat "$repeat" --steps "$steps" \
      --steps-large "$steps_large" --threads "$threads" --json "$out/$lib.json" \
      2>&1 | tee "$out/$lib.log"; then
    echo '{"error": "failed (see log)"}' >"$out/$lib.json"
  elif [[ ! -s "$out/$lib.json" ]]; then
    echo '{"error": "failed (see log)"}' >"$out/$lib.json"
  fi
}
set -o pipefail
run_python pyro pyro pyro_svi.py
run_python numpyro numpyro numpyro_svi.py

echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$python" "$here/table.py" --ember "$out/ember.json" --pyro "$out/pyro.json" \
  --numpyro "$out/numpyro.json" --out "$out/table.json" | tee "$out/table.md"
