"""The daemon's one way of hosting a game: a session fed by the adapter (``open_game``) and a loop the adapter runs
(``run_game``) get the same home (transcript, records folder, engine slot, stop event) and share one registry, so
the game cap, the shutdown and the list of finished games see both alike."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from test_go_faults import RecordingActions, _config_text

from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.events import GameContext, Host
from bridge.session import GameSession, HostedGame


class _IdleAdapter:
    def run(self, host: Host, stop: threading.Event) -> None:
        stop.wait()

    def check(self) -> list[Any]:
        return []


def test_both_kinds_of_game_share_one_home_and_one_registry(
        tmp_path: Path, fake_gtp_command: Callable[..., list[str]]) -> None:
    config = load_config_text(_config_text(tmp_path, fake_gtp_command(), max_games=3))
    daemon = Daemon(config, adapter=_IdleAdapter())
    gate = threading.Event()
    homes: list[HostedGame] = []

    def driven(home: GameContext) -> None:
        assert isinstance(home, HostedGame)
        homes.append(home)
        home.transcript.note("the adapter's loop runs")
        with home.engine_slot():
            gate.wait(10)

    try:
        session = daemon.open_game("g1", "black", RecordingActions())
        assert isinstance(session, GameSession)
        assert daemon.open_game("g1", "black", RecordingActions()) is session  # idempotent per game
        assert daemon.run_game("r1", driven)
        wait_for(lambda: bool(homes), 5, "the driven game to start")
        assert daemon.active_games() == 2
        assert not daemon.run_game("g1", driven), "a game id a session holds is not run twice"
        assert not daemon.run_game("r1", driven), "nor one the adapter already runs"
        # one home: the same folders for both kinds
        assert session.home.transcript_path == tmp_path / "transcripts" / "ogs-g1.log"
        assert session.record_path == tmp_path / "records" / "ogs-g1.sgf"
        assert homes[0].records_dir == session.home.records_dir
        assert homes[0].transcript_path == tmp_path / "transcripts" / "ogs-r1.log"
        gate.set()
        wait_for(lambda: "r1" in daemon.finished_ids, 10, "the driven game to end")
        assert daemon.active_games() == 1
        assert "the adapter's loop runs" in (tmp_path / "transcripts" / "ogs-r1.log").read_text()
        assert daemon.run_game("r1", lambda home: None), "an ended game's id can be hosted again"
    finally:
        gate.set()
        daemon.shutdown(timeout=10)
    wait_for(lambda: "g1" in daemon.finished_ids, 10, "the session to end")
    assert daemon.active_games() == 0
    assert "session for game g1" in (tmp_path / "transcripts" / "ogs-g1.log").read_text()


def test_a_game_whose_transcript_cannot_be_opened_is_still_hosted(
        tmp_path: Path, fake_gtp_command: Callable[..., list[str]], caplog: pytest.LogCaptureFixture) -> None:
    """``daemon.data_dir/transcripts`` is not a folder (or not writable, or the disk is full): the game is played
    without a transcript, with one error that says where and what to do. It used to raise out of the hosting, so
    the adapter never played the game it had accepted (an OGS game was lost on time)."""
    (tmp_path / "transcripts").write_text("a file where the folder should be")
    config = load_config_text(_config_text(tmp_path, fake_gtp_command()))
    daemon = Daemon(config, adapter=_IdleAdapter())
    ran: list[bool] = []
    caplog.set_level(logging.INFO)
    try:
        assert daemon.run_game("r1", lambda home: ran.append(home.transcript.enabled))
        wait_for(lambda: "r1" in daemon.finished_ids, 10, "the driven game to end")
        assert ran == [False]
        session = daemon.open_game("g1", "black", RecordingActions())
        assert isinstance(session, GameSession) and not session.transcript.enabled
    finally:
        daemon.shutdown(timeout=10)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(said) == 2, said
    for game, message in zip(("r1", "g1"), said, strict=True):
        assert f"game {game}" in message and str(tmp_path / "transcripts") in message, message
        assert "without a transcript" in message and "writable folder" in message and "daemon.data_dir" in message
