#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite (unit and end-to-end with real engines), with the
# checkout's virtual environment that scripts/setup.sh makes. Arguments go to pytest (e.g. -x tests/test_cli.py).
# Environment: PYTHON, another interpreter that has the package and its test tools (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if ! [ -x "$PYTHON" ] && ! command -v "$PYTHON" >/dev/null; then
    echo "test: $PYTHON not found: run 'bash scripts/setup.sh' first (or set PYTHON=python3)" >&2
    exit 2
fi
"$PYTHON" -m ruff check .
"$PYTHON" -m mypy bridge tests
"$PYTHON" -m pytest -q "$@"
