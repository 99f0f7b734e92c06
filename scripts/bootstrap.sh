#!/usr/bin/env bash
# Sets up everything linkmon, its lab and its tests need on a fresh Debian 12 machine:
# the Debian packages (as root), a virtualenv in .venv with linkmon installed editable, and the
# npm packages the browser tests inject into the status page (tests/support/js, axe-core).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  python3-venv iproute2 nftables iputils-ping fping libcap2-bin procps
  prometheus prometheus-alertmanager prometheus-blackbox-exporter
  chromium
)
# node and npm for the browser tests' npm packages; any node that brings its own npm will do
# (Debian's npm conflicts with NodeSource's nodejs, which bundles npm).
command -v npm >/dev/null 2>&1 || DEBIAN_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing Debian packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Packaged services must not start on their own: the tests start their own instances.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.linkmon-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log=$(mktemp)
  if ! .venv/bin/python -m pip install --disable-pip-version-check -e '.[test]' >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: pip install failed" >&2
    exit 1
  fi
  rm -f "$log"
  touch "$stamp"
fi

# The browser tests' JavaScript (axe-core), exactly as locked; reinstalled when the lock changes.
js=tests/support/js
js_stamp=$js/node_modules/.linkmon-installed
if [ ! -f "$js_stamp" ] || [ "$js/package-lock.json" -nt "$js_stamp" ]; then
  log=$(mktemp)
  if ! npm ci --prefix "$js" --ignore-scripts --no-audit --no-fund >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: npm ci in $js failed" >&2
    exit 1
  fi
  rm -f "$log"
  touch "$js_stamp"
fi
