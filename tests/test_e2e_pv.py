"""End to end: the engine's thinking reaches the OGS sandbox's chat log as analysis messages (engine.analysis).

Each message's ``moves`` must decode to a variation that is legal from the position after ``from`` moves of the
real game, start with the move the bot played there, and come at most once a move."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import SHORT_GAME, challenge, sandbox_moves, transcript, wait_finished

from bridge.adapters.ogs.analysis import read_analysis_body
from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.daemon import Daemon
from bridge.games.gorules import GoBoard
from bridge.games.gotypes import Color, Move

pytestmark = pytest.mark.e2e

FAKES = Path(__file__).parent / "fakes"
FAKE_GTP = [sys.executable, str(FAKES / "fake_gtp.py")]
FAKE_KATA = [sys.executable, str(FAKES / "fake_kata_analysis.py")]
GARBAGE_LOG = "PV line that cannot be read"

Factory = Callable[..., Daemon]


@pytest.fixture
def bot(ogs_bot: Factory) -> Factory:
    """A bot playing with ``command``, its engine.analysis, server.transport and more engine lines as given."""

    def make(username: str, command: list[str], *, analysis: str = "main", transport: str = "websocket",
             engine_extra: str = "") -> Daemon:
        return ogs_bot(username, command, server=f"transport: {transport}",
                       engine=f"analysis: {analysis}\n{engine_extra}")

    return make


def analyses(game: dict[str, Any], username: str) -> list[tuple[int, list[Move], dict[str, Any]]]:
    """The bot's analysis messages, checked: (from, variation, engine_analysis)."""
    moves = sandbox_moves(game)
    out = []
    for line in game["chat"]:
        body = line["body"]
        if isinstance(body, dict) and body.get("type") == "analysis":
            assert line["username"] == username
            start, variation = read_analysis_body(body, len(moves))
            out.append((start, variation, body["engine_analysis"]))
    return out


def assert_legal_from(game: dict[str, Any], start: int, variation: list[Move]) -> None:
    """``variation`` is legal after the game's first ``start`` moves and starts with the move played there."""
    moves = sandbox_moves(game)
    board = GoBoard(game["width"], game["height"], ko="simple")
    color: Color = "black"
    for move in moves[:start]:
        board.play(color, move)
        color = "white" if color == "black" else "black"
    assert variation and variation[0] == moves[start], (start, variation, moves)
    for move in variation:
        board.play(color, move)  # raises IllegalMove
        color = "white" if color == "black" else "black"


def bot_move_numbers(game: dict[str, Any], bot_color: Color) -> list[int]:
    first = 0 if bot_color == "black" else 1
    return [i for i in range(first, len(game["moves"]), 2)]


@pytest.mark.parametrize(("transport", "manager"), [("websocket", "per_game"), ("socketio", "per_game"),
                                                    ("websocket", "pool")])
def test_kata_genmove_analyze_gives_one_legal_analysis_a_move(sandbox: SandboxServer, bot: Factory,
                                                              transport: str, manager: str) -> None:
    name = f"kata-{transport}-{manager}".replace("_", "-")
    d = bot(name, [*FAKE_GTP, "--kata-analyze"], transport=transport, engine_extra=f"manager: {manager}")
    c = challenge(sandbox, name, {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"])
    assert game["score"] == "B+R", game["score"]
    found = analyses(game, name)
    assert [start for start, _, _ in found] == bot_move_numbers(game, "black")  # one per move, the right number
    for start, variation, engine in found:
        assert_legal_from(game, start, variation)
        assert len(variation) == 4 and engine["visits"] == 60 and engine["score"] == 1.53
        assert 52 < engine["win_rate"] < 60
    text = transcript(d, c["game_id"])
    # the move and its analysis in one command
    assert re.search(r">> \d+ kata-genmove_analyze b 50", text) and not re.search(r">> \d+ genmove b", text)


def test_leela_zero_stderr_gives_analyses_and_a_garbage_line_is_logged_once(
        sandbox: SandboxServer, bot: Factory, caplog: pytest.LogCaptureFixture) -> None:
    d = bot("lz-like", [*FAKE_GTP, "--lz-stderr", "--garbage-pv", "2,4"], analysis="malkovich")
    with caplog.at_level(logging.WARNING, logger="bridge.session"):
        c = challenge(sandbox, "lz-like", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="black")
        game = wait_finished(sandbox, c["game_id"])
    assert game["score"] == "W+R", game["score"]  # the game went on to its normal end
    found = analyses(game, "lz-like")
    mine = bot_move_numbers(game, "white")
    # genmoves 2 and 4 printed a garbage first candidate: no analysis for them, one for every other move
    assert [start for start, _, _ in found] == [n for k, n in enumerate(mine, 1) if k not in (2, 4)]
    for start, variation, engine in found:
        assert_legal_from(game, start, variation)
        assert engine == {"win_rate": 57.5, "visits": 713, "playouts": 712}
    assert all(line["channel"] == "malkovich" for line in game["chat"] if isinstance(line["body"], dict))
    warnings = [r for r in caplog.records if GARBAGE_LOG in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert transcript(d, c["game_id"]).count("cannot be read is ignored") == 2  # both noted in the transcript


@pytest.mark.parametrize(("flag", "expected"), [
    ("--kata-stderr", {"win_rate": 55.12, "score": 1.5, "visits": 4005}),  # KataGo's ogsChatToStderr line
    ("--leela-stderr", {"win_rate": 55.0, "visits": 713}),  # Leela 0.11's summary line
])
def test_katago_and_leela_stderr_lines_give_one_analysis_a_move(sandbox: SandboxServer, bot: Factory, flag: str,
                                                               expected: dict[str, float]) -> None:
    """Engines run with plain genmove that print their thinking on stderr in KataGo's or Leela's format: one
    analysis message for every move of the bot, from the right move number, a legal variation."""
    name = "kata-stderr" if flag == "--kata-stderr" else "leela-stderr"
    d = bot(name, [*FAKE_GTP, flag])
    c = challenge(sandbox, name, {"house": "scripted", "moves": SHORT_GAME}, challenger_color="black")
    game = wait_finished(sandbox, c["game_id"])
    assert game["score"] == "W+R", game["score"]
    found = analyses(game, name)
    assert [start for start, _, _ in found] == bot_move_numbers(game, "white")
    for start, variation, engine in found:
        assert_legal_from(game, start, variation)
        assert engine == expected
    assert re.search(r">> \d+ genmove w", transcript(d, c["game_id"]))  # plain genmove: no analysis command


def test_analysis_off_sends_nothing_and_keeps_plain_genmove(sandbox: SandboxServer, bot: Factory) -> None:
    d = bot("kata-off", [*FAKE_GTP, "--kata-analyze", "--lz-stderr"], analysis="off")
    c = challenge(sandbox, "kata-off", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"])
    assert game["score"] == "B+R"
    assert analyses(game, "kata-off") == []
    text = transcript(d, c["game_id"])
    assert re.search(r">> \d+ genmove b", text) and not re.search(r">> \d+ kata-genmove_analyze", text)


def test_gnugo_with_analysis_on_plays_untouched_and_sends_none(sandbox: SandboxServer, bot: Factory,
                                                               gnugo_command: list[str]) -> None:
    d = bot("gnugo-pv", gnugo_command)
    c = challenge(sandbox, "gnugo-pv", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"])
    assert game["score"] == "B+R"
    assert analyses(game, "gnugo-pv") == []
    assert re.search(r">> \d+ genmove b", transcript(d, c["game_id"]))


def test_kata_analysis_manager_turns_its_best_move_info_into_an_analysis(sandbox: SandboxServer,
                                                                         bot: Factory) -> None:
    bot("kata-json", FAKE_KATA, engine_extra="manager: kata_analysis\nresign_winrate: 0")
    c = challenge(sandbox, "kata-json", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="black")
    game = wait_finished(sandbox, c["game_id"])
    found = analyses(game, "kata-json")
    assert [start for start, _, _ in found] == bot_move_numbers(game, "white")
    for start, variation, engine in found:
        assert_legal_from(game, start, variation)
        assert engine["win_rate"] == 50.0 and engine["visits"] == 10


def test_real_leela_zero_through_lz_genmove_analyze(sandbox: SandboxServer, bot: Factory,
                                                    leelaz_command: list[str]) -> None:
    d = bot("leela-pv", leelaz_command)
    house = ["dd", "pp", "dp", "pd", "jj", "resign"]
    c = challenge(sandbox, "leela-pv", {"house": "scripted", "moves": house}, width=19, height=19,
                  challenger_color="black")
    game = wait_finished(sandbox, c["game_id"])
    assert game["score"] == "W+R"
    found = analyses(game, "leela-pv")
    assert [start for start, _, _ in found] == bot_move_numbers(game, "white")
    for start, variation, engine in found:
        assert_legal_from(game, start, variation)
        assert 0 <= engine["win_rate"] <= 100 and engine["visits"] >= 1
    assert re.search(r">> \d+ lz-genmove_analyze w 50", transcript(d, c["game_id"]))
