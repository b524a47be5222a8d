#!/usr/bin/env bash
# Installs the Debian packages Ember's build needs when they are missing (as root, or via
# sudo). Sourced by tools/demo.sh and tools/test.sh; safe to run repeatedly.
set -euo pipefail

ember_missing_packages() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v ninja >/dev/null || missing+=(ninja-build)
  command -v g++ >/dev/null || missing+=(g++)
  command -v ccache >/dev/null || missing+=(ccache)
  [ -f /usr/include/eigen3/Eigen/Core ] || missing+=(libeigen3-dev)
  [ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
  [ -f /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
  [ -f /usr/include/nlohmann/json.hpp ] || missing+=(nlohmann-json3-dev)
  [ -f /usr/include/benchmark/benchmark.h ] || missing+=(libbenchmark-dev)
  local triplet
  triplet=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  [ -f "/usr/include/${triplet}/openblas-pthread/cblas.h" ] || missing+=(libopenblas-pthread-dev)
  echo "${missing[@]:-}"
}

ember_install_deps() {
  local missing
  missing=$(ember_missing_packages)
  [ -z "$missing" ] && return 0
  echo "ember: installing missing packages: $missing"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "ember: please install as root: apt-get install $missing" >&2
      return 1
    }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing
}

# nvcc is often installed outside PATH; CMake's CUDA detection needs to find it.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
