#!/usr/bin/env bash
# Sets everything up (Debian packages, .venv) and runs the whole test suite, lab end-to-end
# tests included, after ruff, the formatter check and mypy --strict. Extra arguments go to
# pytest, e.g. `-m "not lab"` for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the lab tests build network namespaces; run as root" >&2
  exit 1
fi
# House rules first: lint, formatting and types are part of passing, not advice.
.venv/bin/ruff check probes linkmon tests bench grafana
.venv/bin/ruff format --check probes linkmon tests bench grafana
.venv/bin/mypy --strict probes linkmon tests bench grafana
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -p no:cacheprovider --durations=15 "$@"
