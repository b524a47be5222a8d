#!/usr/bin/env bash
# Builds Ember (installing build dependencies if needed) and runs the main demo: SVI on the
# coin of Pyro's SVI Part I (against its exact Beta(16, 14) posterior), then the Dirichlet
# process mixture of Pyro's tutorial on the Old Faithful geyser data (both small models,
# which run on the CPU).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tools/deps.sh"
ember_install_deps
dir=$root/build
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j "${EMBER_JOBS:-$(nproc)}" --target svi_coin dp_mixture
echo "=== SVI Part I: the coin"
"$dir/examples/svi_coin"
echo
echo "=== Dirichlet process mixture on Old Faithful"
"$dir/examples/dp_mixture" --data faithful "$root/data/faithful.csv"
