#!/usr/bin/env bash
# Builds Ember and runs the whole test suite, installing build dependencies if needed.
# Two configurations are built and tested: EMBER_CUDA=AUTO (the CUDA backend whenever nvcc
# is found; GPU tests skip without a device) and EMBER_CUDA=OFF (plain C++ compiler only).
#   tools/test.sh            both configurations
#   EMBER_TEST_CONFIGS=auto tools/test.sh    just one (auto | off)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tools/deps.sh"
ember_install_deps

jobs=${EMBER_JOBS:-$(nproc)}
status=0
for config in ${EMBER_TEST_CONFIGS:-auto off}; do
  case $config in
    auto) dir=$root/build; flag=AUTO ;;
    off) dir=$root/build-nocuda; flag=OFF ;;
    *) echo "unknown configuration '$config' (auto | off)" >&2; exit 2 ;;
  esac
  echo "=== EMBER_CUDA=$flag: configure and build in $dir"
  cmake -S "$root" -B "$dir" -G Ninja -DEMBER_CUDA=$flag -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "=== EMBER_CUDA=$flag: tests"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" || status=1
done
exit $status
