#!/usr/bin/env bash
# Builds the CPU configuration with sanitizers and runs the tests under them:
#   tools/sanitize.sh            ASan + UBSan over the whole suite (build-asan/)
#   tools/sanitize.sh thread     TSan over the tests that run threads (build-tsan/)
#   tools/sanitize.sh all        both
# A report from a sanitizer fails the test it happens in. Times are printed per phase.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tools/deps.sh"
ember_install_deps
jobs=${EMBER_JOBS:-$(nproc)}

timed() {
  local label=$1 start
  shift
  start=$(date +%s)
  "$@"
  echo "=== $label: $(($(date +%s) - start)) s"
}

configure_build() {
  local dir=$1 sanitize=$2
  cmake -S "$root" -B "$dir" -G Ninja -DEMBER_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEMBER_SANITIZE="$sanitize" -DEMBER_BUILD_BENCHMARKS=OFF -DEMBER_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$dir" -j "$jobs"
}

run_asan() {
  local dir=$root/build-asan
  timed "ASan+UBSan build" configure_build "$dir" address,undefined
  # Leaks are errors too; the caching allocators keep blocks for reuse on purpose, and
  # free them at exit.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    timed "ASan+UBSan tests" ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE package
}

run_tsan() {
  local dir=$root/build-tsan
  timed "TSan build" configure_build "$dir" thread
  # The tests whose cases run several host threads (the pool runs under every large op).
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    timed "TSan tests" ctest --test-dir "$dir" --output-on-failure -j "$jobs" \
    -R 'Thread|thread|Parallel|Concurren|Pool|Stream|Large|Reduce'
}

case ${1:-address} in
  address) run_asan ;;
  thread) run_tsan ;;
  all) run_asan && run_tsan ;;
  *) echo "usage: tools/sanitize.sh [address|thread|all]" >&2; exit 2 ;;
esac
