#!/usr/bin/env bash
# Builds the libFuzzer targets of the file readers (fuzz/) with clang, ASan and UBSan, and
# runs each over a copy of its seed corpus (fuzz/corpus/<reader>/):
#   tools/fuzz.sh              a fixed amount of work: -seed=1 and a number of runs per target
#                              (about 40 s each on 2 cores; EMBER_FUZZ_RUNS sets one for all)
#   tools/fuzz.sh <seconds>    longer, random: -max_total_time=<seconds> each
# A crash, leak, sanitizer report, timeout, huge allocation or exception other than IoError
# fails the run; the input that caused it is left in build-fuzz/artifacts/. Times per target
# are printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tools/deps.sh"
ember_install_deps
dir=${EMBER_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${EMBER_JOBS:-$(nproc)}
targets=(safetensors csv npy npz idx)
declare -A runs=([safetensors]=50000 [csv]=150000 [npy]=25000 [npz]=30000 [idx]=150000)

case ${1:-} in
  "") budget=(-seed=1) ;;
  *[!0-9]*) echo "usage: tools/fuzz.sh [seconds per target]" >&2; exit 2 ;;
  *) budget=("-max_total_time=$1"); runs=() ;;
esac

# clang and its libFuzzer runtime (Debian: clang, libclang-rt-<version>-dev).
links_fuzzer() {
  echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
    clang++ -x c++ -fsanitize=fuzzer,address,undefined - -o /dev/null 2>/dev/null
}
if ! command -v clang++ >/dev/null || ! links_fuzzer; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends clang
  version=$(clang++ --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
  $sudo apt-get install -y -qq --no-install-recommends "libclang-rt-$version-dev" || true
  links_fuzzer || { echo "fuzz.sh: clang++ cannot link -fsanitize=fuzzer" >&2; exit 1; }
fi

start=$(date +%s)
CC=clang CXX=clang++ cmake -S "$root" -B "$dir" -G Ninja -DEMBER_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_BUILD_FUZZERS=ON -DEMBER_BUILD_TESTS=OFF \
  -DEMBER_BUILD_BENCHMARKS=OFF -DEMBER_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$dir" -j "$jobs" --target "${targets[@]/#/fuzz_}"
echo "=== build: $(($(date +%s) - start)) s"

mkdir -p "$dir/artifacts"
failed=()
for t in "${targets[@]}"; do
  # A copy: what the fuzzer adds to its corpus stays out of the repository.
  corpus=$dir/corpus/$t
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp "$root/fuzz/corpus/$t/"* "$corpus/"
  start=$(date +%s)
  status=ok
  limit=()
  [ ${#runs[@]} -gt 0 ] && limit=("-runs=${EMBER_FUZZ_RUNS:-${runs[$t]}}")
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/fuzz/fuzz_$t" "${budget[@]}" "${limit[@]}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "-artifact_prefix=$dir/artifacts/${t}-" "$corpus" \
    >"$dir/fuzz_$t.log" 2>&1 || status=FAILED
  echo "=== fuzz_$t: $(($(date +%s) - start)) s, $status" \
    "($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/fuzz_$t.log" | grep -o '[0-9]*$' || echo '?') inputs)"
  if [ "$status" != ok ]; then
    tail -n 40 "$dir/fuzz_$t.log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]} (logs and inputs in $dir)" >&2
  exit 1
fi
