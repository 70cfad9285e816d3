#!/usr/bin/env bash
# The test command: sets up a fresh machine, builds, and runs every test (unit, OS adapters in
# network namespaces, e2e with real peers). The output ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm test --silent -- "$@"
