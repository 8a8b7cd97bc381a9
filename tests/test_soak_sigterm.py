"""scripts/soak.py as a process: stopped with SIGTERM, it leaves nothing of its run behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import children_of, gone_or_zombie, processes_naming

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
        deadline = time.monotonic() + 60
        while not children(daemons()) and time.monotonic() < deadline:  # a game's engine is running
            time.sleep(0.2)
        started = daemons()
        engines = children(started)
        assert started and engines, "the soak's daemon and its game's engine started"
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=90)
        assert run.returncode == 130, err[-2000:]
        assert "interrupted" in err
        left = [pid for pid in started + engines if not gone_or_zombie(pid)]
        assert not left, f"still running after the soak's SIGTERM: {left}"
    finally:
        if run.poll() is None:
            run.kill()
        for pid in daemons():
            os.kill(pid, signal.SIGKILL)
