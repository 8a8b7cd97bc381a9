"""End to end: the bridge daemon with real Stockfish plays Reconnaissance Blind Chess on the reconchess sandbox over
HTTP, against each house opponent, with short clocks."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chess
import pytest

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
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            if all(rbc_sandbox.game(g)["over"] for g in games.values()):
                break
            time.sleep(0.5)
        for opponent, gid in games.items():
            game = rbc_sandbox.game(gid)
            assert game["over"], f"the game against {opponent} did not finish: {game.get('phase')}"
            assert game["win_reason"] in ("KING_CAPTURE", "TIMEOUT", "RESIGN", "TURN_LIMIT", "MOVE_LIMIT", None)
            bot_white = game["white"] == "sf-bot"
            # the bridge never loses on time and never resigns by error
            if game["winner_color"] is not None and game["winner_color"] != bot_white:
                assert game["win_reason"] not in ("TIMEOUT", "RESIGN"), (opponent, game["win_reason"])
            pgn = tmp_path / "records" / f"reconchess-{gid}.pgn"
            for _ in range(50):
                if pgn.exists():
                    break
                time.sleep(0.1)
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


def test_a_server_answering_500_for_30_seconds_mid_game_is_survived(
        rbc_sandbox: ReconchessSandbox, stockfish: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = secrets.token_hex(10)
    rbc_sandbox.add_user("sf-bot", password)
    monkeypatch.setenv("TEST_RBC_PASSWORD", password)
    config = bot_config(rbc_sandbox.url, stockfish, tmp_path, games=1, extra="  retry_max_delay: 2\n")
    daemon = Daemon(config)
    daemon.start()
    try:
        gid = rbc_sandbox.invite("sf-bot", opponent="random", color=True, seconds_per_player=120,
                                 seconds_increment=5)["game_id"]
        deadline = time.monotonic() + 60
        while len(rbc_sandbox.game(gid)["moves"]) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(rbc_sandbox.game(gid)["moves"]) >= 4, "the game did not get going"
        rbc_sandbox.fail(30, status=500)
        time.sleep(30)
        deadline = time.monotonic() + 240
        while not rbc_sandbox.game(gid)["over"] and time.monotonic() < deadline:
            time.sleep(0.5)
        game = rbc_sandbox.game(gid)
        assert game["over"] and game["win_reason"] not in ("TIMEOUT", "RESIGN"), game["win_reason"]
        assert game["winner_color"] is True, game["win_reason"]  # the bridge (white) beats random
    finally:
        daemon.shutdown()
