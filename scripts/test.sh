#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite (unit and end-to-end with real engines), with the
# checkout's virtual environment that scripts/setup.sh makes.
#
# Without arguments the suite runs in three parts, each printing its own summary (the command fails if any fails):
#   1. the fast subset (-m "not e2e") on 6 pytest-xdist workers (tests/conftest.py FAST_WORKERS);
#   2. the end-to-end tests on TEST_E2E_WORKERS (default 3) workers, except those marked `alone`, the ones marked
#      `long` started first;
#   3. the `alone` tests one at a time (timing-sensitive under CPU contention: the soak, the benchmark smoke test,
#      hang limits on real clocks, the systemd watchdog's pace).
# Parts 2 and 3 list their slowest tests (12 at most, 5 s or more): where the suite's minutes go.
# With arguments, one plain pytest run with them, in file order (e.g. -x tests/test_cli.py).
# Environment: PYTHON, another interpreter that has the package and its test tools (default .venv/bin/python);
# TEST_E2E_WORKERS, the workers of part 2 (0: in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if ! [ -x "$PYTHON" ] && ! command -v "$PYTHON" >/dev/null; then
    echo "test: $PYTHON not found: run 'bash scripts/setup.sh' first (or set PYTHON=python3)" >&2
    exit 2
fi
"$PYTHON" -m ruff check .
"$PYTHON" -m mypy bridge tests
if [ "$#" -gt 0 ]; then
    exec "$PYTHON" -m pytest -q "$@"
fi

started=$SECONDS
status=0
part() {  # part NAME PYTEST-ARGS...: one pytest run; its status is kept, the next part runs anyway
    local name=$1 began=$SECONDS
    shift
    echo "test: $name: pytest $*"
    "$PYTHON" -m pytest -q "$@" || status=$?
    echo "test: $name: $((SECONDS - began)) s"
}
part "fast subset" -m "not e2e"
part "end to end" -m "e2e and not alone" -n "${TEST_E2E_WORKERS:-3}" --durations=12 --durations-min=5
part "timing-sensitive, one at a time" -m "e2e and alone" -n 0 --durations=12 --durations-min=5
echo "test: whole suite: $((SECONDS - started)) s$([ "$status" -eq 0 ] || echo ", FAILED (status $status)")"
exit "$status"
