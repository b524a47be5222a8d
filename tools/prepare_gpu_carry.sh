#!/usr/bin/env bash
# Assembles .carry/: the third-party code that tools/gpu_check.sh needs on a GPU machine with
# no network and no Debian packages, taken from this (Debian) machine's packages:
#   .carry/googletest/   GoogleTest sources (libgtest-dev's /usr/src/googletest), built with Ember
#   .carry/eigen/        Eigen headers and CMake package (libeigen3-dev), as an install prefix
#   .carry/benchmark/    Google Benchmark: its sources when GBENCH_SRC names a source tree,
#                        else libbenchmark-dev's headers, libraries and CMake package as a prefix
# Links are copied as files (a device run may not carry links). .carry/ is git-ignored and
# stays far below the 64 MiB a device run may carry.
# Usage: tools/prepare_gpu_carry.sh   (env: GTEST_SRC, EIGEN_INCLUDE, EIGEN_CMAKE, GBENCH_SRC)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
carry="${root}/.carry"
gtest_src="${GTEST_SRC:-/usr/src/googletest}"
eigen_include="${EIGEN_INCLUDE:-/usr/include/eigen3}"
eigen_cmake="${EIGEN_CMAKE:-/usr/share/eigen3/cmake}"
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
cp -rL "${gtest_src}" "${carry}/googletest"
echo "googletest: ${gtest_src}"

# ---- Eigen: headers + CMake package in prefix layout (its config finds include/ from share/) ----
[[ -f "${eigen_include}/Eigen/Core" ]] || die "no Eigen headers at ${eigen_include} (set EIGEN_INCLUDE)"
[[ -f "${eigen_cmake}/Eigen3Config.cmake" ]] || die "no Eigen3Config.cmake in ${eigen_cmake} (set EIGEN_CMAKE)"
mkdir -p "${carry}/eigen/include" "${carry}/eigen/share/eigen3"
cp -rL "${eigen_include}" "${carry}/eigen/include/eigen3"
cp -rL "${eigen_cmake}" "${carry}/eigen/share/eigen3/cmake"
echo "eigen: ${eigen_include}, ${eigen_cmake}"

# ---- Google Benchmark: sources if given, else the Debian binary package as a prefix ----
if [[ -n "${gbench_src}" ]]; then
  [[ -f "${gbench_src}/CMakeLists.txt" ]] || die "GBENCH_SRC=${gbench_src} holds no CMakeLists.txt"
  cp -rL "${gbench_src}" "${carry}/benchmark-src"
  echo "benchmark: sources from ${gbench_src}"
elif [[ -f /usr/include/benchmark/benchmark.h && -f "${gbench_libdir}/cmake/benchmark/benchmarkConfig.cmake" ]]; then
  # The CMake package computes its prefix four levels above lib/<triplet>/cmake/benchmark, so
  # the same layout is kept. A binary built on Debian: it needs a compatible glibc/libstdc++.
  prefix="${carry}/benchmark"
  mkdir -p "${prefix}/include" "${prefix}/lib/x86_64-linux-gnu/cmake"
  cp -rL /usr/include/benchmark "${prefix}/include/"
  cp -L "${gbench_libdir}"/libbenchmark.so* "${gbench_libdir}"/libbenchmark_main.a \
    "${prefix}/lib/x86_64-linux-gnu/"
  cp -rL "${gbench_libdir}/cmake/benchmark" "${prefix}/lib/x86_64-linux-gnu/cmake/"
  echo "benchmark: Debian binary package (libbenchmark-dev)"
else
  echo "benchmark: not found; gpu_check.sh will build without benchmarks"
fi

size_kib="$(du -sk "${carry}" | cut -f1)"
echo "prepare_gpu_carry: ${carry} holds $((size_kib / 1024)) MiB"
((size_kib < limit_mib * 1024)) || die ".carry is ${size_kib} KiB, over the ${limit_mib} MiB limit"
