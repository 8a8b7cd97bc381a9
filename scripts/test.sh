#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite (unit and end-to-end with real engines).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m ruff check .
python3 -m mypy bridge tests
python3 -m pytest -q "$@"
