#!/usr/bin/env bash
# The main job: sets up a fresh machine (apt packages, npm ci, build), then runs the local lab.
#   sudo scripts/lab.sh        (or: up)   create the lab and leave it running
#   sudo scripts/lab.sh status            show its processes and hosts
#   sudo scripts/lab.sh down              stop it and remove everything it made
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-up}"
if [ "$(id -u)" -ne 0 ]; then echo "lab.sh: run as root (network namespaces)" >&2; exit 1; fi
if [ "$cmd" = up ]; then bash scripts/setup.sh; fi
exec node dist/test/lab/lab.js "$cmd"
