"""The endurance benchmark's check as a test (scripts/endurance.py): one daemon plays games one batch after another
(per-game engines started and stopped each game), and between batches, once it holds no game, it holds what it held
after the first batch: the same threads, open file descriptors and no child process. A resource kept per game would
climb here with every batch, as it would over weeks under systemd."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

pytestmark = pytest.mark.e2e  # a sandbox and a daemon as processes, an engine process a game


def test_games_one_after_another_leave_no_thread_descriptor_or_process_behind(tmp_path: Path) -> None:
    from endurance import Endurance, report

    log = io.StringIO()
    run = Endurance(games=24, concurrent=3, sample_every=6, opponent="scripted", size=9, workdir=tmp_path, log=log)
    samples = run.run()
    text = report(samples, run.problems)
    assert not run.problems, text
    assert [s.games for s in samples] == [6, 12, 18, 24], text
    first = samples[0]
    assert all(s.children == 0 for s in samples), text
    assert all(s.threads <= first.threads for s in samples), text
    assert all(s.fds <= first.fds for s in samples), text
    # every game left its transcript and its record, and nothing else
    assert samples[-1].data_files == 2 * 24, text


@pytest.mark.long
def test_rbc_games_one_after_another_leave_no_thread_descriptor_or_process_behind(tmp_path: Path,
                                                                                 stockfish: str) -> None:
    """The same for RBC: each game starts Stockfish through python-chess (its own event loop thread) and builds a
    belief; once the games are over the daemon holds what it held after the first two."""
    from endurance import Endurance, report

    run = Endurance(games=4, concurrent=2, sample_every=2, opponent="random", size=9, workdir=tmp_path,
                    log=io.StringIO(), server="reconchess", stockfish=stockfish, rbc_seconds=10)
    samples = run.run()
    text = report(samples, run.problems)
    assert not run.problems, text
    assert [s.games for s in samples] == [2, 4], text
    first = samples[0]
    assert all(s.children == 0 and s.threads <= first.threads and s.fds <= first.fds for s in samples), text
