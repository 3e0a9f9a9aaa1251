#!/usr/bin/env bash
# Sets up capulator and runs its main job on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo
echo '$ ./bin/capulator abi map'
./bin/capulator abi map | head -20
