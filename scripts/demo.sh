#!/usr/bin/env bash
# Sets everything up and runs the demo: a simulated Kabupaten Nunukan WAN in network
# namespaces, linkmon watching it, and a scripted outage scenario. Ctrl-C tears it all down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: the lab builds network namespaces; run as root (sudo)" >&2
  exit 1
fi
exec .venv/bin/linkmon lab demo "$@"
