#!/usr/bin/env bash
# Builds Ember (installing build dependencies if needed) and runs the main demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tools/deps.sh"
ember_install_deps
dir=$root/build
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j "${EMBER_JOBS:-$(nproc)}" --target tensor_basics
"$dir/examples/tensor_basics" "$root/data/faithful.csv"
