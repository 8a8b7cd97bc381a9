"""scripts/soak.py as a process: stopped with SIGTERM, it leaves nothing of its run behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import children_of, kill_all, processes_naming, stopped_by_sigterm, wait_for

pytestmark = pytest.mark.e2e  # a soak process with one Go game (GNU Go)


def test_sigterm_stops_the_soak_s_daemons_sandboxes_and_engines(tmp_path: Path, gnugo_command: list[str]) -> None:
    """Seen by hand: a soak stopped with SIGTERM (timeout, kill) left its daemons running with their engines (the
    run's cleanup was in a `finally` that SIGTERM's default action skips). Now SIGTERM stops the run like Ctrl-C."""
    out = tmp_path / "soak"
    run = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parent.parent / "scripts" / "soak.py"),
                            "--go", "1", "--rbc", "0", "--battleship", "0", "--seconds", "120", "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def daemons() -> list[int]:
        return processes_naming(str(out), but=run.pid)

    def children(pids: list[int]) -> list[int]:
        return [c for pid in pids for c in children_of(pid)]

    try:
        wait_for(lambda: children(daemons()), 60, "the soak's daemon and its game's engine", step=0.2)
        started = daemons()
        engines = children(started)
        assert started and engines, "the soak's daemon and its game's engine started"
        stopped_by_sigterm(run, started + engines, "soak", timeout=90)
    finally:
        kill_all(run, daemons())
