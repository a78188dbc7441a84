#!/usr/bin/env bash
# Create .venv and install samiam with the pinned CPU/GPU-agnostic stack (see constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
echo "samiam installed in .venv ($(.venv/bin/samiam --version))"
