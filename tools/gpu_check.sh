#!/usr/bin/env bash
# The GPU check, in one command, on a machine with a GPU but no network and no Debian
# packages: configure and build Ember with its CUDA backend against the third-party code in
# .carry/ (made by tools/prepare_gpu_carry.sh), run the GPU tests (ctest -L gpu), then the
# rest of the suite, then the GPU benchmarks. Logs go to $OUT when it is set.
#
# Usage (from anywhere): tools/gpu_check.sh
# Environment:
#   OUT                       where logs and benchmark JSON go (default: <build>/gpu-check)
#   EMBER_GPU_BUILD_DIR       build directory (default: build-gpu in the repository)
#   EMBER_CARRY_DIR           the carried dependencies (default: .carry in the repository)
#   EMBER_CUDA_ARCHITECTURES  CMAKE_CUDA_ARCHITECTURES (default: the project's, 90)
#   EMBER_BENCH_FILTER        Google Benchmark filter (default: /cuda/, the GPU variants)
#   EMBER_BENCH_MIN_TIME      seconds per benchmark (default: 0.05)
#   EMBER_SKIP_BENCH=1        stop after the tests
# Exit status: non-zero when the build or a GPU test failed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${EMBER_GPU_BUILD_DIR:-${root}/build-gpu}"
carry="${EMBER_CARRY_DIR:-${root}/.carry}"
logs="${OUT:-${build}/gpu-check}"
bench_filter="${EMBER_BENCH_FILTER:-/cuda/}"
bench_min_time="${EMBER_BENCH_MIN_TIME:-0.05}"
mkdir -p "${logs}"
summary="${logs}/summary.txt"
: >"${summary}"

export PATH="/usr/local/cuda/bin:${PATH}"
jobs="$(nproc 2>/dev/null || echo 4)"
status=0

note() { echo "gpu_check: $*" | tee -a "${summary}"; }

# Runs a named step with its output in <logs>/<name>.log; records pass/fail.
step() {
  local name="$1"
  shift
  note "== ${name}: $*"
  if "$@" >"${logs}/${name}.log" 2>&1; then
    note "   ${name}: ok"
    return 0
  fi
  note "   ${name}: FAILED (see ${logs}/${name}.log); last lines:"
  tail -n 25 "${logs}/${name}.log" | tee -a "${summary}"
  return 1
}

# ---- the machine ----
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "${root}" rev-parse HEAD 2>/dev/null || echo unknown)"
  command -v nvidia-smi >/dev/null && nvidia-smi
  command -v nvcc >/dev/null && nvcc --version
  command -v cmake >/dev/null && cmake --version | head -1
} >"${logs}/machine.log" 2>&1
command -v nvcc >/dev/null || note "warning: nvcc not on PATH; configuring with EMBER_CUDA=ON will fail"
command -v cmake >/dev/null || { note "cmake not found"; exit 2; }

# ---- configure: everything third-party comes from the carry ----
cmake_args=(-S "${root}" -B "${build}" -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON
            -DEMBER_BUILD_TESTS=ON -DEMBER_BUILD_EXAMPLES=OFF)
command -v ninja >/dev/null && cmake_args+=(-G Ninja)
[[ -n "${EMBER_CUDA_ARCHITECTURES:-}" ]] && cmake_args+=(-DCMAKE_CUDA_ARCHITECTURES="${EMBER_CUDA_ARCHITECTURES}")
if [[ -f "${carry}/googletest/CMakeLists.txt" ]]; then
  cmake_args+=(-DEMBER_GTEST_SOURCE_DIR="${carry}/googletest")
fi
if [[ -f "${carry}/eigen/share/eigen3/cmake/Eigen3Config.cmake" ]]; then
  cmake_args+=(-DEigen3_DIR="${carry}/eigen/share/eigen3/cmake")
fi
bench_cmake="${carry}/benchmark/lib/x86_64-linux-gnu/cmake/benchmark"
if [[ "${EMBER_SKIP_BENCH:-0}" == 1 ]]; then
  cmake_args+=(-DEMBER_BUILD_BENCHMARKS=OFF)
elif [[ -f "${carry}/benchmark-src/CMakeLists.txt" ]]; then
  cmake_args+=(-DEMBER_BUILD_BENCHMARKS=ON -DEMBER_BENCHMARK_SOURCE_DIR="${carry}/benchmark-src")
elif [[ -f "${bench_cmake}/benchmarkConfig.cmake" ]]; then
  cmake_args+=(-DEMBER_BUILD_BENCHMARKS=ON -Dbenchmark_DIR="${bench_cmake}")
else
  note "no Google Benchmark in ${carry}; benchmarks are skipped"
  cmake_args+=(-DEMBER_BUILD_BENCHMARKS=OFF)
fi
step configure cmake "${cmake_args[@]}" || exit 1

# ---- build: keep going past a failing target (a carried benchmark binary that does not
# link here must not hide the test results) ----
if [[ -f "${build}/build.ninja" ]]; then keep_going=(-- -k 0); else keep_going=(-- -k); fi
step build cmake --build "${build}" --parallel "${jobs}" "${keep_going[@]}" || status=1

# ---- tests: the GPU label first (the point of this machine), then everything else ----
step ctest_gpu ctest --test-dir "${build}" -L gpu --output-on-failure --timeout 900 || status=1
grep -E "tests passed|tests failed" "${logs}/ctest_gpu.log" | tee -a "${summary}"
note "   $(grep -c '(Skipped)' "${logs}/ctest_gpu.log") GPU test(s) skipped"
step ctest_other ctest --test-dir "${build}" -LE gpu --output-on-failure --timeout 900 \
  --parallel "${jobs}" || note "   (non-GPU failures do not change the exit status)"
grep -E "tests passed|tests failed" "${logs}/ctest_other.log" | tee -a "${summary}"

# ---- benchmarks: the GPU variants (BM_<What>/cuda/<n>) of every program in bench/ ----
if [[ "${EMBER_SKIP_BENCH:-0}" != 1 && -d "${build}/bench" ]]; then
  found=0
  for bin in "${build}"/bench/*; do
    [[ -f "${bin}" && -x "${bin}" ]] || continue
    found=1
    name="$(basename "${bin}")"
    step "bench_${name}" "${bin}" --benchmark_filter="${bench_filter}" \
      --benchmark_min_time="${bench_min_time}" \
      --benchmark_out="${logs}/bench_${name}.json" --benchmark_out_format=json ||
      note "   (benchmark failures do not change the exit status)"
  done
  ((found)) || note "no benchmark programs under ${build}/bench"
fi

note "done: exit status ${status}; logs in ${logs}"
exit "${status}"
