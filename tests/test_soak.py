"""The bounded soak (scripts/soak.py): 20 concurrent games across the three sandboxes with random faults — drops,
malformed frames, 5xx, 429, lost answers, engine kills and hangs, one daemon killed and restarted — and nothing
lost: every game finished with its result on the server, no move lost or doubled, no engine left running, no
secret in any file the run wrote."""

from __future__ import annotations

import io
import os
import random
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.alone]  # 20 games at once with faults on a timer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


@pytest.mark.timeout(420)
def test_soak_twenty_games_with_faults_lose_nothing(tmp_path: Path, gnugo_command: list[str],
                                                     stockfish: str) -> None:
    from soak import Soak

    seed = int(os.environ.get("SOAK_SEED", random.randrange(1 << 30)))
    log = io.StringIO()
    soak = Soak(go=10, rbc=4, battleship=6, seconds=270, seed=seed, out=tmp_path / "soak", fault_interval=2.0,
                restart="any", log=log)
    report = soak.run()
    summary = soak.summary()
    print(f"seed {seed}\n{summary}\n" + "\n".join(report.fault_log))
    assert sum(report.faults.values()) >= 20, f"too few faults injected to mean anything (seed {seed})\n{summary}"
    assert report.faults["daemon_kill_restart"] == 1, summary
    assert report.ok, f"seed {seed} (rerun with SOAK_SEED={seed})\n{summary}\n{log.getvalue()}"
