#!/usr/bin/env bash
# Set everything up on a fresh machine (Chromium for the browser tests, .venv, the package with its test
# extra, the JS bundle) and run the whole test suite: lint, unit, browser, notebooks and the real-Gemma lane.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || { echo "Chromium is required for the browser tests" >&2; exit 1; }
scripts/setup.sh test
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check .
ruff format --check .
lint-imports
python -m pytest "$@"
