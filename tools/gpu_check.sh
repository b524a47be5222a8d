#!/usr/bin/env bash
# The GPU check, in two calls that each fit one device command (10 minutes), on a machine with
# a GPU but no network and no Debian packages. Third-party code comes from .carry/ (made by
# tools/prepare_gpu_carry.sh). docs/gpu.md gives the exact device calls.
#
#   tools/gpu_check.sh tests [--cpu-tests]
#       configure and build the library and the tests (no benchmarks, no examples), run the
#       GPU tests (ctest -L gpu); with --cpu-tests, the rest of the suite after them.
#   tools/gpu_check.sh bench
#       build the benchmark programs in the same build directory and run their GPU variants
#       (BM_<What>/cuda/...), one bounded run per program, results merged into one JSON.
#
# Writes to $OUT (default: <build>/gpu-check-<mode>), at most 6 files:
#   tests: summary.txt machine.txt build.log ctest_gpu.log ctest_gpu.xml [ctest_cpu.log]
#   bench: summary.txt machine.txt build.log bench.log bench.json
# Exit status: 0 the GPU tests (benchmarks) ran and passed; 1 a build, a test or a benchmark
# failed; 2 a usage error or a missing tool or carried dependency; 3 they did not run (no
# usable CUDA device: the GPU tests skipped, the /cuda/ benchmarks were not registered).
# Environment:
#   EMBER_GPU_BUILD_DIR       build directory (default: build-gpu in the repository)
#   EMBER_CARRY_DIR           the carried dependencies (default: .carry in the repository)
#   EMBER_CUDA_ARCHITECTURES  CMAKE_CUDA_ARCHITECTURES (default: 90, the H100/H200)
#   EMBER_GPU_JOBS            build jobs (default: nproc)
#   EMBER_GPU_TEST_JOBS       GPU test processes at once (default: 8, or nproc if fewer)
#   EMBER_BENCH_FILTER        Google Benchmark filter (default: /cuda/)
#   EMBER_BENCH_MIN_TIME      seconds per benchmark (default: 0.05)
#   EMBER_BENCH_TIMEOUT       seconds per benchmark program before it is stopped (default: 100)
#   EMBER_GPU_CHECK_DEADLINE  seconds after its start by which the bench call stops running
#                             programs (default: 330, for a device command limit of 360)
set -euo pipefail
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:${PATH}"
fi

readonly EXIT_FAILED=1 EXIT_SETUP=2 EXIT_DID_NOT_RUN=3

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${EMBER_GPU_BUILD_DIR:-${root}/build-gpu}"
carry="${EMBER_CARRY_DIR:-${root}/.carry}"
jobs="${EMBER_GPU_JOBS:-$(nproc 2>/dev/null || echo 4)}"
mode=""
cpu_tests=0
logs=""
summary=""
status=0     # the worst exit status so far: 1 outranks 3
device=""    # the GPUs nvidia-smi -L listed, if any
no_device="" # else why none is visible
bench_deadline="${EMBER_GPU_CHECK_DEADLINE:-330}"  # seconds after the start: bench call's end
bench_failed=()  # benchmark programs that exited non-zero, were stopped or did not start

usage() {
  echo "usage: tools/gpu_check.sh tests [--cpu-tests] | tools/gpu_check.sh bench" >&2
  echo "(the header of tools/gpu_check.sh and docs/gpu.md say more)" >&2
  exit "${EXIT_SETUP}"
}

note() { echo "gpu_check: $*" | tee -a "${summary}"; }
result() { echo "RESULT: $*" | tee -a "${summary}"; }

# Records an exit status unless a worse one is already recorded (failure beats did-not-run).
record() {
  local code="$1"
  if ((status == 0)) || ((code == EXIT_FAILED)); then status="${code}"; fi
}

die_setup() {
  result "FAIL: $*"
  exit "${EXIT_SETUP}"
}

# Runs a named step with stdout and stderr appended to <logs>/<log>; returns its status.
step() {
  local name="$1" log="$2" start="${SECONDS}" rc=0
  shift 2
  note "== ${name}: $*"
  echo "==== ${name}: $*" >>"${logs}/${log}"
  "$@" >>"${logs}/${log}" 2>&1 || rc=$?
  if ((rc == 0)); then
    note "   ${name}: ok ($((SECONDS - start)) s)"
  else
    note "   ${name}: FAILED with status ${rc} after $((SECONDS - start)) s; see ${log}; last lines:"
    tail -n 30 "${logs}/${log}" | tee -a "${summary}"
  fi
  return "${rc}"
}

parse_args() {
  (($# >= 1)) || usage
  mode="$1"
  shift
  case "${mode}" in
    tests) ;;
    bench) (($# == 0)) || usage ;;
    *) usage ;;
  esac
  while (($#)); do
    case "$1" in
      --cpu-tests) cpu_tests=1 ;;
      *) usage ;;
    esac
    shift
  done
}

setup_logs() {
  logs="${OUT:-${build}/gpu-check-${mode}}"
  mkdir -p "${logs}"
  summary="${logs}/summary.txt"
  : >"${summary}"
}

# The machine, for the record: where the answer came from.
describe_machine() {
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "${root}" rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "host: $(uname -srm); $(nproc) cores"
    ldd --version 2>&1 | head -n 1 || true
    c++ --version 2>&1 | head -n 1 || true
    cmake --version 2>&1 | head -n 1 || true
    nvcc --version 2>&1 | tail -n 2 || true
    if command -v nvidia-smi >/dev/null; then nvidia-smi 2>&1 || true; else echo "nvidia-smi: not found"; fi
  } >"${logs}/machine.txt"
}

# nvcc, cmake and python3 are required. What nvidia-smi lists is recorded, not required: the
# verdict rests on what actually ran on the device (the GPU tests that were not skipped, the
# /cuda/ benchmarks that were registered), and the build is checked even without a GPU.
check_tools() {
  command -v cmake >/dev/null || die_setup "cmake not found"
  command -v python3 >/dev/null || die_setup "python3 not found (tools/gpu_check_report.py needs it)"
  command -v nvcc >/dev/null ||
    die_setup "nvcc not found (on PATH or in /usr/local/cuda/bin): the CUDA backend cannot be built"
  local version
  version="$(nvcc --version 2>&1)" ||
    die_setup "nvcc ($(command -v nvcc)) does not run: $(tail -n 1 <<<"${version}")"
  note "nvcc: $(command -v nvcc), $(grep -o 'release [0-9.]*' <<<"${version}" || echo 'version unknown')"
  if ! command -v nvidia-smi >/dev/null; then
    no_device="nvidia-smi not found"
  elif ! device="$(nvidia-smi -L 2>&1 | grep '^GPU ')"; then
    device=""
    no_device="nvidia-smi -L lists no GPU ($(nvidia-smi -L 2>&1 | head -n 1))"
  fi
  if [[ -n "${device}" ]]; then note "device: ${device}"; else note "no CUDA device visible: ${no_device}"; fi
}

# Says, after a "did not run" verdict, what nvidia-smi had listed.
explain_no_run() {
  ((status == EXIT_DID_NOT_RUN)) || return 0
  if [[ -n "${device}" ]]; then
    note "nvidia-smi listed ${device}, but the CUDA runtime found no usable device (driver too old for this nvcc? see machine.txt)"
  else
    note "no CUDA device is visible on this machine: ${no_device}"
  fi
}

configure_args() {
  local gtest="${carry}/googletest" eigen="${carry}/eigen/share/eigen3/cmake"
  local json="${carry}/nlohmann/share/cmake/nlohmann_json"
  local bench_src="${carry}/benchmark-src"
  local bench_pkg="${carry}/benchmark/lib/x86_64-linux-gnu/cmake/benchmark"
  [[ -f "${gtest}/CMakeLists.txt" ]] ||
    die_setup "no GoogleTest sources in ${gtest}: run tools/prepare_gpu_carry.sh and carry .carry"
  [[ -f "${eigen}/Eigen3Config.cmake" ]] ||
    die_setup "no Eigen in ${carry}/eigen: run tools/prepare_gpu_carry.sh and carry .carry"
  [[ -f "${json}/nlohmann_jsonConfig.cmake" ]] ||
    die_setup "no nlohmann-json in ${carry}/nlohmann: run tools/prepare_gpu_carry.sh and carry .carry"
  cmake_args=(-S "${root}" -B "${build}" -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc)"
    -DCMAKE_CUDA_ARCHITECTURES="${EMBER_CUDA_ARCHITECTURES:-90}"
    -DEMBER_BUILD_TESTS=ON -DEMBER_BUILD_EXAMPLES=OFF
    -DEMBER_GTEST_SOURCE_DIR="${gtest}" -DEigen3_DIR="${eigen}" -Dnlohmann_json_DIR="${json}")
  # zlib: the machine's where it has the headers, else the carried static library.
  if [[ ! -f /usr/include/zlib.h && -f "${carry}/zlib/include/zlib.h" ]]; then
    cmake_args+=(-DZLIB_ROOT="${carry}/zlib")
  fi
  if [[ ! -f "${build}/CMakeCache.txt" ]] && command -v ninja >/dev/null; then
    cmake_args+=(-G Ninja)
  fi
  if [[ "${mode}" == tests ]]; then
    cmake_args+=(-DEMBER_BUILD_BENCHMARKS=OFF)
  elif [[ -f "${bench_src}/CMakeLists.txt" ]]; then
    cmake_args+=(-DEMBER_BUILD_BENCHMARKS=ON -DEMBER_BENCHMARK_SOURCE_DIR="${bench_src}")
  elif [[ -f "${bench_pkg}/benchmarkConfig.cmake" ]]; then
    cmake_args+=(-DEMBER_BUILD_BENCHMARKS=ON -Dbenchmark_DIR="${bench_pkg}")
  else
    die_setup "no Google Benchmark in ${carry}: run tools/prepare_gpu_carry.sh and carry .carry"
  fi
}

# A build directory configured from another source tree (a copy at another path) cannot be
# reused: start it afresh.
reset_foreign_build() {
  [[ -f "${build}/CMakeCache.txt" ]] || return 0
  grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=${root}" "${build}/CMakeCache.txt" && return 0
  note "${build} was configured from another source tree: starting it afresh"
  rm -rf "${build}"
}

configure() {
  reset_foreign_build
  configure_args
  step configure build.log cmake "${cmake_args[@]}" || {
    result "FAIL: configuration failed"
    exit "${EXIT_FAILED}"
  }
}

# Builds the given targets (none: all), going on past a failing one so that the log shows
# every error.
build_targets() {
  local keep_going=(-k)
  [[ -f "${build}/build.ninja" ]] && keep_going=(-k 0)
  local targets=()
  (($# == 0)) || targets=(--target "$@")
  step build build.log cmake --build "${build}" --parallel "${jobs}" "${targets[@]}" \
    -- "${keep_going[@]}"
}

run_gpu_tests() {
  local test_jobs="${EMBER_GPU_TEST_JOBS:-$((jobs < 8 ? jobs : 8))}" rc=0
  rm -f "${logs}/ctest_gpu.xml"
  step ctest_gpu ctest_gpu.log ctest --test-dir "${build}" -L gpu --no-tests=error \
    --output-on-failure --timeout 120 --parallel "${test_jobs}" \
    --output-junit "${logs}/ctest_gpu.xml" || true
  python3 "${root}/tools/gpu_check_report.py" tests "${logs}/ctest_gpu.xml" |
    tee -a "${summary}" || rc=$?
  ((rc == 0)) || record "${rc}"
}

run_cpu_tests() {
  local rc=0
  step ctest_cpu ctest_cpu.log ctest --test-dir "${build}" -LE gpu --output-on-failure \
    --timeout 600 --parallel "${jobs}" || rc=$?
  grep -E "tests passed|tests failed" "${logs}/ctest_cpu.log" | tee -a "${summary}" || true
  if ((rc != 0)); then
    record "${EXIT_FAILED}"
    result "FAIL: the rest of the suite (ctest -LE gpu) failed (see ctest_cpu.log)"
  fi
}

tests_call() {
  local built=1
  build_targets || built=0
  run_gpu_tests
  if ((!built)); then
    record "${EXIT_FAILED}"
    result "FAIL: the build failed (see build.log); a GPU test that did not build is missing from ctest -L gpu"
  fi
  ((cpu_tests == 0)) || run_cpu_tests
}

# One bounded run of one benchmark program: at most EMBER_BENCH_TIMEOUT seconds, and none
# past the call's deadline (so that the results merged so far still come back). Its JSON goes
# to the build directory and is merged afterwards.
run_bench_program() {
  local bin="$1" json_dir="$2" name rc=0 limit
  local left=$((bench_deadline - SECONDS - 20))
  name="$(basename "${bin}")"
  limit="${EMBER_BENCH_TIMEOUT:-100}"
  ((left >= limit)) || limit="${left}"
  if ((left < 10)); then
    note "   ${name}: not started: the call's deadline (EMBER_GPU_CHECK_DEADLINE=${bench_deadline} s) is near"
    bench_failed+=("${name}")
    return 0
  fi
  step "${name}" bench.log timeout --kill-after=5 "${limit}" "${bin}" \
    --benchmark_filter="${EMBER_BENCH_FILTER:-/cuda/}" \
    --benchmark_min_time="${EMBER_BENCH_MIN_TIME:-0.05}" \
    --benchmark_out="${json_dir}/${name}.json" --benchmark_out_format=json || rc=$?
  if ((rc == 124 || rc == 137)); then
    note "   ${name}: stopped after ${limit} s (EMBER_BENCH_TIMEOUT, EMBER_GPU_CHECK_DEADLINE)"
  fi
  ((rc == 0)) || bench_failed+=("${name}")
}

bench_call() {
  local json_dir="${build}/gpu-bench-json" bins=() jsons=() bin rc=0
  build_targets benchmarks || {
    result "FAIL: the benchmarks did not build (see build.log)"
    exit "${EXIT_FAILED}"
  }
  for bin in "${build}"/bench/*_bench; do
    [[ -f "${bin}" && -x "${bin}" ]] && bins+=("${bin}")
  done
  ((${#bins[@]})) || {
    result "FAIL: no benchmark program in ${build}/bench"
    exit "${EXIT_FAILED}"
  }
  rm -rf "${json_dir}"
  mkdir -p "${json_dir}"
  for bin in "${bins[@]}"; do run_bench_program "${bin}" "${json_dir}"; done
  for bin in "${bins[@]}"; do
    [[ ! -f "${json_dir}/$(basename "${bin}").json" ]] || jsons+=("${json_dir}/$(basename "${bin}").json")
  done
  python3 "${root}/tools/gpu_check_report.py" bench "${logs}/bench.json" "${jsons[@]}" |
    tee -a "${summary}" || rc=$?
  ((rc == 0)) || record "${rc}"
  if ((${#bench_failed[@]})); then
    record "${EXIT_FAILED}"
    result "FAIL: benchmark programs that failed, were stopped or did not start: ${bench_failed[*]} (see bench.log)"
  fi
}

main() {
  parse_args "$@"
  setup_logs
  describe_machine
  check_tools
  note "${mode}: build ${build}, carry ${carry}, ${jobs} jobs, logs in ${logs}"
  configure
  if [[ "${mode}" == tests ]]; then tests_call; else bench_call; fi
  explain_no_run
  note "done: ${mode}, exit status ${status}, $((SECONDS / 60)) min $((SECONDS % 60)) s"
  exit "${status}"
}

main "$@"
