#!/usr/bin/env bash
# Create ./.venv (if needed) and install scopewidgets with the given extra (default: demo).
# torch is installed first, pinned, so that pip never pulls a multi-GB CUDA build by accident on CPU machines.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="${1:-demo}"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
command -v npm >/dev/null || { echo "npm (Node.js >= 18) is needed to build the widgets' JavaScript" >&2; exit 1; }
python -m pip install -q -e ".[${EXTRA}]"
