#!/usr/bin/env bash
# Installs the pinned official A2A SDKs for the interop fixtures in this
# folder: a Python venv (requirements.txt) at $1, default
# /tmp/abacus-sdk-venv, and node_modules here from package-lock.json.
# Needs python3 with venv, node and npm on PATH.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-/tmp/abacus-sdk-venv}

python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"

# No package here needs an install script (protobufjs's only checks its own
# version), so none runs: the same tree whatever npm's script policy is.
cd "$HERE"
npm ci --ignore-scripts --no-audit --no-fund
