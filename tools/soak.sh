#!/usr/bin/env bash
# The soak run: 10^6 SVI steps of the coin with the resident memory read along the way
# (bench/svi_soak.cpp); fails when it grows past the allowed MiB after the warm-up.
#   tools/soak.sh [steps = 1000000] [allowed MiB = 8]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tools/deps.sh"
ember_install_deps
dir=$root/build-nocuda
cmake -S "$root" -B "$dir" -G Ninja -DEMBER_CUDA=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j "${EMBER_JOBS:-$(nproc)}" --target svi_soak
EMBER_NUM_THREADS=1 "$dir/bench/svi_soak" "${1:-1000000}" "${2:-8}"
