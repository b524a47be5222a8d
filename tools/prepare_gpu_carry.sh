#!/usr/bin/env bash
# Assembles .carry/: the third-party code that tools/gpu_check.sh needs on a GPU machine with
# no network and no Debian packages, taken from this (Debian) machine's packages:
#   .carry/googletest/   GoogleTest sources (libgtest-dev's /usr/src/googletest), built with Ember
#   .carry/eigen/        Eigen headers and CMake package (libeigen3-dev), as an install prefix
#   .carry/nlohmann/     nlohmann::json headers and CMake package (nlohmann-json3-dev), a prefix
#   .carry/zlib/         zlib's headers and static library (zlib1g-dev), as a prefix for
#                        -DZLIB_ROOT, used where the GPU machine has no zlib headers
#   .carry/benchmark/    Google Benchmark from libbenchmark-dev: headers, libbenchmark.so and
#                        its CMake package, as a prefix; or .carry/benchmark-src/ when GBENCH_SRC
#                        names a Google Benchmark source tree (then it is built there instead).
# Neither Debian's binary packages nor PyPI's google-benchmark sdist (a Python binding that
# fetches the C++ sources at build time) hold Google Benchmark's C++ sources, so the Debian
# binary is the default; .carry/benchmark/NEEDS records the glibc and libstdc++ symbol
# versions it needs on the GPU machine.
#   .carry/wheels/       pure-Python wheels from PyPI for bench/compare on the GPU machine, which
#                        has PyTorch, JAX and NumPyro but not Pyro or funsor (NumPyro's
#                        enumeration needs it): pyro-ppl, pyro-api, funsor and what they need.
#                        Skipped, with a message, when pip cannot reach PyPI (WHEELS=0: never).
# Links are copied as files (a device run may not carry links). .carry/ is git-ignored; the
# working tree that travels plus .carry/ must stay under 64 MiB, which this checks.
# Usage: tools/prepare_gpu_carry.sh
#   (env: GTEST_SRC, EIGEN_INCLUDE, EIGEN_CMAKE, ZLIB_INCLUDE, ZLIB_STATIC, GBENCH_SRC, WHEELS)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
carry="${root}/.carry"
gtest_src="${GTEST_SRC:-/usr/src/googletest}"
eigen_include="${EIGEN_INCLUDE:-/usr/include/eigen3}"
eigen_cmake="${EIGEN_CMAKE:-/usr/share/eigen3/cmake}"
zlib_include="${ZLIB_INCLUDE:-/usr/include}"
zlib_static="${ZLIB_STATIC:-/usr/lib/x86_64-linux-gnu/libz.a}"
gbench_src="${GBENCH_SRC:-}"
gbench_libdir="/usr/lib/x86_64-linux-gnu"
limit_mib=64

die() {
  echo "prepare_gpu_carry: $*" >&2
  exit 1
}

rm -rf "${carry}"
mkdir -p "${carry}"

# ---- GoogleTest: sources (tests/CMakeLists.txt builds them via EMBER_GTEST_SOURCE_DIR) ----
[[ -f "${gtest_src}/CMakeLists.txt" ]] || die "no GoogleTest sources at ${gtest_src} (set GTEST_SRC)"
cp -rL --preserve=timestamps "${gtest_src}" "${carry}/googletest"
echo "googletest: ${gtest_src}"

# ---- Eigen: headers + CMake package in prefix layout (its config finds include/ from share/) ----
[[ -f "${eigen_include}/Eigen/Core" ]] || die "no Eigen headers at ${eigen_include} (set EIGEN_INCLUDE)"
[[ -f "${eigen_cmake}/Eigen3Config.cmake" ]] || die "no Eigen3Config.cmake in ${eigen_cmake} (set EIGEN_CMAKE)"
mkdir -p "${carry}/eigen/include" "${carry}/eigen/share/eigen3"
cp -rL --preserve=timestamps "${eigen_include}" "${carry}/eigen/include/eigen3"
cp -rL --preserve=timestamps "${eigen_cmake}" "${carry}/eigen/share/eigen3/cmake"
echo "eigen: ${eigen_include}, ${eigen_cmake}"

# ---- nlohmann::json: headers + CMake package in prefix layout (<prefix>/share/cmake/...) ----
json_include="${JSON_INCLUDE:-/usr/include/nlohmann}"
json_cmake="${JSON_CMAKE:-/usr/share/cmake/nlohmann_json}"
[[ -f "${json_include}/json.hpp" ]] || die "no nlohmann/json.hpp at ${json_include} (set JSON_INCLUDE)"
[[ -f "${json_cmake}/nlohmann_jsonConfig.cmake" ]] ||
  die "no nlohmann_jsonConfig.cmake in ${json_cmake} (set JSON_CMAKE)"
mkdir -p "${carry}/nlohmann/include" "${carry}/nlohmann/share/cmake"
cp -rL --preserve=timestamps "${json_include}" "${carry}/nlohmann/include/nlohmann"
cp -rL --preserve=timestamps "${json_cmake}" "${carry}/nlohmann/share/cmake/nlohmann_json"
echo "nlohmann-json: ${json_include}, ${json_cmake}"
# ---- zlib: headers and the static library (position-independent on Debian) as a prefix ----
[[ -f "${zlib_include}/zlib.h" && -f "${zlib_static}" ]] ||
  die "no zlib at ${zlib_include}/zlib.h and ${zlib_static} (apt-get install zlib1g-dev, or set ZLIB_INCLUDE, ZLIB_STATIC)"
mkdir -p "${carry}/zlib/include" "${carry}/zlib/lib"
cp -L --preserve=timestamps "${zlib_include}/zlib.h" "${zlib_include}/zconf.h" "${carry}/zlib/include/"
cp -L --preserve=timestamps "${zlib_static}" "${carry}/zlib/lib/"
echo "zlib: ${zlib_include}/zlib.h, ${zlib_static}"

# ---- Google Benchmark: sources if given, else the Debian binary package as a prefix ----
if [[ -n "${gbench_src}" ]]; then
  [[ -f "${gbench_src}/CMakeLists.txt" ]] || die "GBENCH_SRC=${gbench_src} holds no CMakeLists.txt"
  cp -rL --preserve=timestamps "${gbench_src}" "${carry}/benchmark-src"
  echo "benchmark: sources from ${gbench_src}"
elif [[ -f /usr/include/benchmark/benchmark.h && -f "${gbench_libdir}/cmake/benchmark/benchmarkConfig.cmake" ]]; then
  # The CMake package computes its prefix four levels above lib/<triplet>/cmake/benchmark, so
  # the same layout is kept. A binary built on Debian: it needs a compatible glibc/libstdc++.
  prefix="${carry}/benchmark"
  mkdir -p "${prefix}/include" "${prefix}/lib/x86_64-linux-gnu/cmake"
  cp -rL --preserve=timestamps /usr/include/benchmark "${prefix}/include/"
  cp -L --preserve=timestamps "${gbench_libdir}"/libbenchmark.so* "${gbench_libdir}"/libbenchmark_main.a \
    "${prefix}/lib/x86_64-linux-gnu/"
  cp -rL --preserve=timestamps "${gbench_libdir}/cmake/benchmark" "${prefix}/lib/x86_64-linux-gnu/cmake/"
  echo "benchmark: Debian binary package (libbenchmark-dev)"
else
  echo "benchmark: not found; gpu_check.sh will build without benchmarks"
fi

# The newest glibc and libstdc++ symbol versions a carried binary needs.
record_needs() {
  local lib="$1" out="$2"
  command -v objdump >/dev/null || return 0
  objdump -T "${lib}" | grep -oE '(GLIBC|GLIBCXX|CXXABI)_[0-9.]+' | sort -uV |
    awk -F_ '{newest[$1] = $0} END {for (k in newest) print newest[k]}' | sort >"${out}"
  echo "benchmark: $(basename "${lib}") needs $(tr '\n' ' ' <"${out}")on the GPU machine"
}
if [[ -d "${carry}/benchmark" ]]; then
  record_needs "$(find "${carry}/benchmark/lib" -name 'libbenchmark.so.*.*' | head -n 1)" \
    "${carry}/benchmark/NEEDS"
fi

# Pyro and funsor for bench/compare (run_compare.sh installs them from here when the machine's
# Python lacks them). Pure Python: one wheel serves every platform.
if [[ "${WHEELS:-1}" != 0 ]]; then
  wheels=(pyro-ppl pyro-api funsor multipledispatch makefun opt-einsum tqdm)
  if python3 -m pip download -q --no-deps --only-binary=:all: -d "${carry}/wheels" \
      "${wheels[@]}" >/dev/null 2>&1; then
    echo "wheels: $(cd "${carry}/wheels" && ls | tr '\n' ' ')"
  else
    rm -rf "${carry}/wheels"
    echo "wheels: not downloaded (pip could not reach PyPI); bench/compare on the GPU machine" \
      "will show Pyro as not installed and skip NumPyro's HMM"
  fi
fi

# What a device run sends: the tracked and untracked-not-ignored files, plus .carry/.
carry_kib="$(du -sk "${carry}" | cut -f1)"
tree_kib="$(git -C "${root}" ls-files -z --cached --others --exclude-standard |
  (cd "${root}" && du -ck --files0-from=- 2>/dev/null) | tail -n 1 | cut -f1)"
total_kib=$((carry_kib + ${tree_kib:-0}))
echo "prepare_gpu_carry: ${carry} holds $((carry_kib / 1024)) MiB; with the working tree" \
  "$((total_kib / 1024)) MiB travel (limit ${limit_mib} MiB)"
((total_kib < limit_mib * 1024)) || die "over the ${limit_mib} MiB a device run may carry"
