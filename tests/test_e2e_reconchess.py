"""End to end: the bridge daemon with real Stockfish plays Reconnaissance Blind Chess on the reconchess sandbox over
HTTP, against each house opponent, with short clocks."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chess
import pytest
from helpers import wait_for

from bridge.adapters.reconchess.sandbox import ReconchessSandbox
from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.games.rbc_records import read_pgn

pytestmark = pytest.mark.e2e



@pytest.fixture
def rbc_sandbox() -> Iterator[ReconchessSandbox]:
    sandbox = ReconchessSandbox("127.0.0.1", 0).start()
    yield sandbox
    sandbox.stop()


def bot_config(url: str, stockfish: str, data_dir: Path, *, games: int, extra: str = "") -> Any:
    """The daemon's config for the user sf-bot (password in TEST_RBC_PASSWORD) with Stockfish."""
    return load_config_text(f"""
server:
  kind: reconchess
  url: {url}
  username: sf-bot
  password: {{env: TEST_RBC_PASSWORD}}
  max_games: {games}
  poll_interval: 0.3
  status_interval: 0.05
{extra}engine:
  protocol: uci
  command: [{stockfish}]
  options: {{Threads: 1, Hash: 16}}
daemon:
  max_concurrent_games: {games}
  data_dir: {data_dir}
""", "<e2e>")


@pytest.mark.long
def test_bridge_with_stockfish_plays_each_house_opponent(rbc_sandbox: ReconchessSandbox, stockfish: str,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = secrets.token_hex(10)
    rbc_sandbox.add_user("sf-bot", password)
    monkeypatch.setenv("TEST_RBC_PASSWORD", password)
    config = bot_config(rbc_sandbox.url, stockfish, tmp_path, games=3)
    daemon = Daemon(config)
    daemon.start()
    try:
        games: dict[str, Any] = {}
        for i, opponent in enumerate(("random", "attacker", "trout")):
            inv = rbc_sandbox.invite("sf-bot", opponent=opponent, color=i % 2 == 0, seconds_per_player=60,
                                     seconds_increment=2)
            games[opponent] = inv["game_id"]
        wait_for(lambda: all(rbc_sandbox.game(g)["over"] for g in games.values()), 400,
                 f"the end of every game: {games}", step=0.5)
        for opponent, gid in games.items():
            game = rbc_sandbox.game(gid)
            assert game["over"], f"the game against {opponent} did not finish: {game.get('phase')}"
            assert game["win_reason"] in ("KING_CAPTURE", "TIMEOUT", "RESIGN", "TURN_LIMIT", "MOVE_LIMIT", None)
            bot_white = game["white"] == "sf-bot"
            # the bridge never loses on time and never resigns by error
            if game["winner_color"] is not None and game["winner_color"] != bot_white:
                assert game["win_reason"] not in ("TIMEOUT", "RESIGN"), (opponent, game["win_reason"])
            pgn = tmp_path / "records" / f"reconchess-{gid}.pgn"
            wait_for(pgn.exists, 5, f"the PGN record {pgn}")
            board = read_pgn(pgn.read_text()).end().board()
            assert board.board_fen() == chess.Board(game["fen"]).board_fen(), opponent
            assert (tmp_path / "records" / f"reconchess-{gid}.json").exists()
            transcript = (tmp_path / "transcripts" / f"reconchess-{gid}.log").read_text()
            assert password not in transcript
        wins = sum(1 for gid in games.values()
                   if rbc_sandbox.game(gid)["winner_color"] == (rbc_sandbox.game(gid)["white"] == "sf-bot"))
        assert wins >= 2, {o: rbc_sandbox.game(g)["win_reason"] for o, g in games.items()}
    finally:
        daemon.shutdown()


# a light player (the default's boards and engine time are covered by the test above): moves in ~0.1 s, not ~1 s
FAST_RBC = "rbc: {max_boards: 500, move_boards: 4, candidates: 4, engine_time: 0.02, safety_boards: 200, " \
           "sense_sample: 200}\n"
OUTAGE = 8.0  # seconds of 500s: four times the retry cap (retry_max_delay 2), so retries run at the cap a while


@pytest.mark.long
def test_a_server_answering_500_for_seconds_mid_game_is_survived(
        rbc_sandbox: ReconchessSandbox, stockfish: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mid-game the server answers every call with 500 for OUTAGE seconds: the bridge keeps retrying (past the
    retry cap, never giving up), does not resign or lose on time, and wins once the server is back."""
    password = secrets.token_hex(10)
    rbc_sandbox.add_user("sf-bot", password)
    monkeypatch.setenv("TEST_RBC_PASSWORD", password)
    config = bot_config(rbc_sandbox.url, stockfish, tmp_path, games=1, extra="  retry_max_delay: 2\n" + FAST_RBC)
    failed: list[float] = []  # when the sandbox answered a call with the outage's 500
    failing = rbc_sandbox.faults.failing

    def counted(method: str, path: str) -> tuple[int, int] | None:
        answer = failing(method, path)
        if answer is not None:
            failed.append(time.monotonic())
        return answer

    monkeypatch.setattr(rbc_sandbox.faults, "failing", counted)
    daemon = Daemon(config)
    daemon.start()
    try:
        gid = rbc_sandbox.invite("sf-bot", opponent="random", color=True, seconds_per_player=60,
                                 seconds_increment=2)["game_id"]
        wait_for(lambda: len(rbc_sandbox.game(gid)["moves"]) >= 4, 60, "the game to get going (4 moves)")
        started = time.monotonic()
        rbc_sandbox.fail(OUTAGE, status=500)
        wait_for(lambda: time.monotonic() - started >= OUTAGE and failed, OUTAGE + 10, "the end of the outage")
        assert not rbc_sandbox.game(gid)["over"], rbc_sandbox.game(gid)  # the outage hit the game mid-way
        # the bridge kept calling through the outage, to its end: retries at the cap, not a give-up
        assert len(failed) >= 4 and failed[-1] - started >= OUTAGE - 2 * 2 - 1, [t - started for t in failed]
        wait_for(lambda: rbc_sandbox.game(gid)["over"], 240, "the end of the game", step=0.5)
        game = rbc_sandbox.game(gid)
        assert game["over"] and game["win_reason"] not in ("TIMEOUT", "RESIGN"), game["win_reason"]
        assert game["winner_color"] is True, game["win_reason"]  # the bridge (white) beats random
    finally:
        daemon.shutdown()


ROOT = Path(__file__).parent.parent


def _daemon_process(config: Path, password: str) -> subprocess.Popen[str]:
    env = dict(os.environ, TEST_RBC_PASSWORD=password, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> str:
    """Signal the daemon, wait for it to exit (killing it if it does not) and return its log."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the daemon did not exit within {timeout} s of signal {sig}:\n{err[-3000:]}") from None
    return err


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGTERM+finish"])
def test_a_restart_mid_game_loses_nothing(rbc_sandbox: ReconchessSandbox, stockfish: str, tmp_path: Path,
                                          how: str) -> None:
    """Issue 8 item 11. A `gamebridge run` process plays Stockfish against the house bot `random`; mid-game it is
    killed (SIGKILL) or stopped (SIGTERM). The game stays on the server, not error-resigned; a new `gamebridge run`
    goes on with it from its state file (daemon.data_dir/state/reconchess-GAME.json) and it finishes with a
    result that is not a loss on time; the state file is removed at the end. With daemon.on_stop: finish, SIGTERM
    makes the daemon finish the game before it exits (no restart needed)."""
    password = secrets.token_hex(10)
    rbc_sandbox.add_user("sf-bot", password)
    on_stop = ", on_stop: finish" if how.endswith("+finish") else ""  # the default: resume
    config = tmp_path / "bot.yaml"
    config.write_text(f"""
server: {{kind: reconchess, url: {rbc_sandbox.url}, username: sf-bot, password: {{env: TEST_RBC_PASSWORD}},
         max_games: 1, poll_interval: 0.3, status_interval: 0.05}}
engine: {{protocol: uci, command: [{stockfish}], options: {{Threads: 1, Hash: 16}}}}
{FAST_RBC}daemon: {{max_concurrent_games: 1, data_dir: {tmp_path / 'runs'}{on_stop}}}
""")
    gid = rbc_sandbox.invite("sf-bot", opponent="random", color=True, seconds_per_player=60, seconds_increment=1,
                             full_turn_limit=14)["game_id"]
    state = tmp_path / "runs" / "state" / f"reconchess-{gid}.json"
    first = _daemon_process(config, password)
    try:
        # Interrupt after the first turn of each side: no king can be taken by then, so the game is surely still on
        # (after three turns each, Stockfish sometimes took random's king before the signal: CI, stop 16).
        wait_for(lambda: len(rbc_sandbox.game(gid)["moves"]) >= 2, 60, "one turn of each side")
        assert not rbc_sandbox.game(gid)["over"], rbc_sandbox.game(gid)
        log1 = _stop(first, signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM, timeout=90)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    game = rbc_sandbox.game(gid)
    assert "Traceback" not in log1 and " ERROR " not in log1, log1[-3000:]
    if how == "SIGTERM+finish":
        assert first.returncode == 0 and game["over"], log1[-3000:]
    else:
        if how == "SIGTERM":
            assert first.returncode == 0, log1[-3000:]
        assert not game["over"], (game["win_reason"], log1[-3000:])  # not error-resigned
        assert state.exists()
        second = _daemon_process(config, password)
        try:
            wait_for(lambda: rbc_sandbox.game(gid)["over"], 150, "the end of the resumed game")
            wait_for(lambda: not state.exists(), 30, "the bridge's own end of the game (records, state removed)")
            log2 = _stop(second)
        finally:
            if second.poll() is None:
                second.kill()
                second.communicate()
        assert second.returncode == 0 and "Traceback" not in log2, log2[-3000:]
        assert f"game {gid}: resuming" in log2, log2[-3000:]
    game = rbc_sandbox.game(gid)
    bot_white = game["white"] == "sf-bot"
    assert game["over"] and game["win_reason"] in ("KING_CAPTURE", "TURN_LIMIT", "TIMEOUT", "RESIGN")
    assert not (game["winner_color"] == (not bot_white) and game["win_reason"] in ("TIMEOUT", "RESIGN")), game
    assert not state.exists()
    assert (tmp_path / "runs" / "records" / f"reconchess-{gid}.pgn").exists()
    transcript = (tmp_path / "runs" / "transcripts" / f"reconchess-{gid}.log").read_text()
    assert password not in transcript
