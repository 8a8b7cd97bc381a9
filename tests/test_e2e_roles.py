"""End to end on the OGS sandbox: engine roles (go.opening_engine, go.ending_engine), go.min_move_time and
server.hidden, with a real daemon, real GNU Go and scripted fake engines over real sockets."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import challenge, ended_transcript, wait_finished

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.daemon import Daemon

pytestmark = pytest.mark.e2e


@pytest.fixture
def make_daemon(ogs_bot: Callable[..., Daemon], gnugo_command: list[str]) -> Callable[..., Daemon]:
    """A bot with GNU Go, its go section ``go`` and more server lines ``server_extra``."""

    def make(username: str, go: str, server_extra: str = "") -> Daemon:
        return ogs_bot(username, gnugo_command, server=server_extra, go=go)

    return make


def play(sandbox: SandboxServer, target: str, challenger: dict[str, Any]) -> dict[str, Any]:
    """Challenge ``target`` (black) on 9x9 and wait for the game's end; the finished game."""
    c = challenge(sandbox, target, challenger, rules="chinese", challenger_color="white")
    game = wait_finished(sandbox, c["game_id"])
    game["id"] = c["game_id"]
    return game


def genmoves_by(text: str, source: str) -> int:
    return len(re.findall(rf" {re.escape(source)} >> \d+ genmove b\b", text))


def test_opening_engine_plays_the_first_moves_paced_and_hidden(sandbox: SandboxServer,
                                                              make_daemon: Callable[..., Daemon],
                                                              gnugo_command: list[str]) -> None:
    opening = [*gnugo_command[:-1], "0"]  # GNU Go at level 0: another process, told apart by its transcript name
    bot = make_daemon("roles-open", f"{{opening_engine: {{command: {opening!r}, moves: 4}}, min_move_time: 0.4}}",
                      "hidden: true")
    game = play(sandbox, "roles-open", {"house": "random", "seed": 7})
    gid = game["id"]
    text = ended_transcript(bot, gid)
    black = [m for i, m in enumerate(game["moves"]) if i % 2 == 0]
    assert len(black) > 8, game
    # exactly the bot's first 4 moves are the opening engine's, every other one the main engine's
    assert genmoves_by(text, f"ogs-{gid}-opening") == 4
    assert genmoves_by(text, f"ogs-{gid}") == len(black) - 4
    assert text.index("the opening engine has played") > text.rindex(f"ogs-{gid}-opening >>")
    # min_move_time, on the server's clock: each of the bot's moves came at least 0.4 s after the move before it
    used = [m[2] for m in black]
    assert min(used) >= 400, used
    # hidden reached the server in bot/config
    conns = requests.get(f"{sandbox.url}/sandbox/connections", timeout=10).json()
    configs = [c["bot_config"] for c in conns if c["username"] == "roles-open" and c["bot_config"]]
    assert configs and all(c["hidden"] is True for c in configs), configs


def test_ending_engine_resigns_after_its_votes(sandbox: SandboxServer, make_daemon: Callable[..., Daemon],
                                               fake_gtp_command: Callable[..., list[str]], tmp_path: Path) -> None:
    votes = tmp_path / "ending.log"
    ending = fake_gtp_command("--moves", "resign", "--log", str(votes))
    # consulted from move ceil(81 * 0.1) = 9 on: the bot (black) is asked at 10, 12, 14 moves; the third vote resigns
    bot = make_daemon("roles-end", f"{{ending_engine: {{command: {ending!r}, after: 0.1, resign_votes: 3}}}}")
    game = play(sandbox, "roles-end", {"house": "random", "seed": 3, "pass_after_pass": True})
    text = ended_transcript(bot, game["id"])
    assert game["score"] == "W+R", game.get("score")
    assert len(game["moves"]) == 14, len(game["moves"])  # 7 black moves (5 before, 2 while voting), then resign
    # three votes were counted, the first two did not resign (7 black moves), the third did
    assert re.findall(r"ending engine votes resign at move (\d+): (\d) in a row", text) == [
        ("11", "1"), ("13", "2"), ("15", "3")]
    assert sum(1 for line in votes.read_text().splitlines() if line.split()[1:2] == ["genmove"]) >= 3
