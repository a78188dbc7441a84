#!/usr/bin/env bash
# The project's test command (README, CI): set up .venv if needed, lint, then run every test.
# Pass pytest arguments to narrow it, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/ruff check samiam tests scripts benchmarks
.venv/bin/python -m pytest "$@"
