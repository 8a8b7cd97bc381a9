"""End to end: bridge daemons with real GNU Go engines play through the OGS sandbox over real sockets."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import (
    BYOYOMI_FAST,
    SHORT_GAME,
    api,
    assert_record_matches,
    challenge,
    sandbox_moves,
    transcript,
    wait_finished,
    wait_for,
)

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.daemon import Daemon

pytestmark = pytest.mark.e2e

GNUGO = "/usr/games/gnugo"

DaemonFactory = Callable[..., Daemon]


@pytest.fixture
def make_daemon(ogs_bot: DaemonFactory, gnugo_command: list[str]) -> DaemonFactory:
    """A bot with GNU Go (or ``engine``), two games at once at most."""

    def make(username: str, *, transport: str = "websocket", accept: str = "{}", go: str = "{}",
             engine: list[str] | None = None) -> Daemon:
        return ogs_bot(username, engine or gnugo_command, server=f"transport: {transport}\naccept: {accept}",
                       go=go, daemon="max_concurrent_games: 2")

    return make


FISCHER_FAST = {"system": "fischer", "time_control": "fischer", "speed": "live", "initial_time": 120,
                "time_increment": 5, "max_time": 300, "pause_on_weekends": False}
CANADIAN_FAST = {"system": "canadian", "time_control": "canadian", "speed": "live", "main_time": 60,
                 "period_time": 60, "stones_per_period": 10, "pause_on_weekends": False}


@pytest.mark.parametrize("transport", ["websocket", "socketio"])
def test_two_bridges_play_a_full_9x9_game(sandbox: SandboxServer, make_daemon: DaemonFactory,
                                          transport: str) -> None:
    a = make_daemon("gnugo-a", transport=transport)
    b = make_daemon("gnugo-b", transport=transport)
    c = challenge(sandbox, "gnugo-b", {"user": "gnugo-a"}, challenger_color="black")
    game = wait_finished(sandbox, c["game_id"])
    assert game["outcome"] and re.match(r"^[BW]\+", game["score"]), game
    assert len(game["moves"]) > 10
    for d in (a, b):
        assert_record_matches(d, game)


def test_19x19_fixed_handicap_4(sandbox: SandboxServer, make_daemon: DaemonFactory) -> None:
    bot = make_daemon("hcap-bot")
    script = ["qd", "dp", "cc", "qq", "jj", "resign"]  # the house (black, 4 stones) plays a little, then resigns
    c = challenge(sandbox, "hcap-bot", {"house": "scripted", "moves": script}, width=19, height=19, handicap=4,
                  komi=0.5, challenger_color="black", rules="japanese")
    game = wait_finished(sandbox, c["game_id"])
    assert len(game["initial_state"]["black"]) == 8  # four stones as two-letter coordinates
    assert game["score"] == "W+R"
    text = transcript(bot, c["game_id"])
    assert re.search(r">> \d+ set_free_handicap( [A-T]\d+){4}", text), "the handicap stones reach the engine"
    assert_record_matches(bot, game)


def test_free_handicap_engine_places_stones(sandbox: SandboxServer, make_daemon: DaemonFactory) -> None:
    bot = make_daemon("free-bot")
    c = challenge(sandbox, "free-bot", {"house": "scripted", "moves": ["resign"]}, width=9, height=9, handicap=3,
                  komi=0.5, challenger_color="white", rules="chinese", free_handicap=True)
    game = wait_finished(sandbox, c["game_id"])
    text = transcript(bot, c["game_id"])
    assert re.search(r">> \d+ place_free_handicap 3", text)
    assert all(m is not None for m in sandbox_moves(game)[:3])
    assert_record_matches(bot, game)


@pytest.mark.parametrize(("tc", "expected"), [
    (BYOYOMI_FAST, r">> \d+ time_settings 140 10 1"),  # GNU Go lacks kgs-time_settings: periods folded
    (FISCHER_FAST, r">> \d+ time_settings 115 5 1"),
    (CANADIAN_FAST, r">> \d+ time_settings 60 60 10"),
])
def test_clock_commands_reach_the_engine(sandbox: SandboxServer, make_daemon: DaemonFactory,
                                         tc: dict[str, Any], expected: str) -> None:
    bot = make_daemon(f"clock-{tc['system']}")
    c = challenge(sandbox, bot.config.server.username, {"house": "scripted", "moves": SHORT_GAME}, time_control=tc,
                  challenger_color="white")
    wait_finished(sandbox, c["game_id"])
    text = transcript(bot, c["game_id"])
    assert re.search(expected, text), expected
    lefts = [int(x) for x in re.findall(r">> \d+ time_left b(?:lack)? (\d+) \d+", text)]
    assert lefts, "time_left before each genmove"
    limit = {"byoyomi": 140, "fischer": 300, "canadian": 60}[tc["system"]]
    assert all(0 <= x <= limit for x in lefts), lefts


@pytest.mark.long
def test_dropped_connection_mid_game(sandbox: SandboxServer, make_daemon: DaemonFactory) -> None:
    bot = make_daemon("drop-bot")
    c = challenge(sandbox, "drop-bot", {"house": "random", "delay": 0.1, "seed": 5}, challenger_color="white")
    # seeded: GNU Go --level 1 passes in some early positions (e5, j9), which would end an unseeded game early
    gid = c["game_id"]
    wait_for(lambda: len(api(sandbox, "GET", f"/sandbox/games/{gid}")["moves"]) >= 6, 60, "six moves")
    for _ in range(2):
        before = time.time()
        assert api(sandbox, "POST", "/sandbox/drop", json={"username": "drop-bot"})["dropped"] >= 1
        wait_for(lambda: any(c["username"] == "drop-bot" and gid in c["games"] and c["connected_at"] > before  # noqa: B023
                             for c in api(sandbox, "GET", "/sandbox/connections")), 30,
                 "the bot to reconnect and rejoin its game")
    game = wait_finished(sandbox, gid)
    moves = sandbox_moves(game)
    assert_record_matches(bot, game)
    # no move sent twice: every move the bot sent was accepted (no out-of-turn errors recorded)
    assert game.get("errors", []) == [], game.get("errors")
    assert len(moves) > 10


def test_policy_rejects_with_reason_and_accepts_inside(sandbox: SandboxServer, make_daemon: DaemonFactory) -> None:
    make_daemon("picky-bot", accept="{board_sizes: [9], ranked: false}")
    bad = challenge(sandbox, "picky-bot", {"house": "random"}, width=13, height=13)
    wait_for(lambda: api(sandbox, "GET", f"/sandbox/challenges/{bad['challenge_id']}")["state"] == "rejected",
             30, "the rejection")
    info = api(sandbox, "GET", f"/sandbox/challenges/{bad['challenge_id']}")
    assert "13" in info["message"] or "board" in info["message"].lower(), info
    ranked = challenge(sandbox, "picky-bot", {"house": "random"}, ranked=True)
    wait_for(lambda: api(sandbox, "GET", f"/sandbox/challenges/{ranked['challenge_id']}")["state"] == "rejected",
             30, "the second rejection")
    assert "ranked" in api(sandbox, "GET", f"/sandbox/challenges/{ranked['challenge_id']}")["message"].lower()
    good = challenge(sandbox, "picky-bot", {"house": "scripted", "moves": SHORT_GAME})
    game = wait_finished(sandbox, good["game_id"])
    assert game["phase"] == "finished"


def test_engine_crash_mid_game_is_survived(sandbox: SandboxServer, make_daemon: DaemonFactory,
                                           fake_gtp_command: Callable[..., list[str]], tmp_path: Path) -> None:
    """A GTP engine that dies on its 3rd genmove: the bridge restarts it, replays, and finishes the game."""
    marker = tmp_path / "crashed-once"
    script = tmp_path / "flaky.sh"
    # the marker is made when the fake crashes (not when it starts: the daemon's start-up probe starts it too)
    script.write_text(f"#!/bin/sh\nif [ -e {marker} ]; then exec {GNUGO} --mode gtp --level 1; fi\n"
                      f"{' '.join(fake_gtp_command('--crash-on', 'genmove'))}\nrc=$?\n"
                      f"if [ $rc -ne 0 ]; then touch {marker}; fi\nexit $rc\n")
    os.chmod(script, 0o755)
    bot = make_daemon("flaky-bot", engine=[str(script)])
    c = challenge(sandbox, "flaky-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"])
    assert "restarting it and replaying the game (1 of 3 restart(s))" in transcript(bot, c["game_id"])
    assert_record_matches(bot, game)


def test_a_finished_game_is_one_line_in_the_journal(sandbox: SandboxServer, make_daemon: DaemonFactory,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Seen in a soak's journal: every game's end was logged twice at INFO, "game N finished: B+R (Resignation)"
    from the adapter and the same from the game's session. One game, one line (the session's, written with the
    result it acts on)."""
    caplog.set_level(logging.INFO, logger="bridge")
    bot = make_daemon("one-line-bot")
    c = challenge(sandbox, "one-line-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    wait_finished(sandbox, c["game_id"])
    sgf = Path(bot.config.daemon.data_dir) / "records" / f"ogs-{c['game_id']}.sgf"
    wait_for(sgf.exists, 20, "the SGF record (written after the session saw the game's end)")
    ends = [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if f"game {c['game_id']} finished" in r.getMessage() and not r.name.startswith("bridge.sandbox")]
    assert len(ends) == 1 and "B+R (Resignation)" in ends[0], ends


SLOW_GTP = Path(__file__).parent / "fakes" / "slow_gtp.py"


def slow_gnugo(delay: float, *stderr: str) -> list[str]:
    extra = [a for line in stderr for a in ("--stderr", line)]
    return [sys.executable, str(SLOW_GTP), "--delay", str(delay), *extra, "--", GNUGO, "--mode", "gtp", "--level", "1"]


@pytest.mark.parametrize("answer", ["accept", "reject"])
def test_undo_requests_are_answered_per_config(sandbox: SandboxServer, make_daemon: DaemonFactory,
                                               answer: str) -> None:
    bot = make_daemon(f"undo-{answer}", go=f"{{undo: {answer}}}", engine=slow_gnugo(1.5))
    script = ["cc", "gg", "cg", "gc", "ee", "resign"]
    c = challenge(sandbox, bot.config.server.username, {"house": "scripted", "moves": script, "delay": 0},
                  challenger_color="black")
    gid = c["game_id"]
    # black (the house) has played twice and the bot is thinking about its second move: ask to take back
    wait_for(lambda: len(api(sandbox, "GET", f"/sandbox/games/{gid}")["moves"]) == 3, 60, "three moves")
    api(sandbox, "POST", f"/sandbox/games/{gid}/undo", json={})
    game = wait_finished(sandbox, gid)
    requests_ = game["undo_requests"]
    assert len(requests_) == 1, requests_
    if answer == "accept":
        assert requests_[0]["state"] == "accepted", requests_
        assert "undo requested at move" in transcript(bot, gid) and "accepted" in transcript(bot, gid)
    else:
        assert requests_[0]["state"] in ("declined", "canceled"), requests_
    assert game["score"] == "W+R"
    assert_record_matches(bot, game)


def test_greeting_farewell_and_engine_stderr_reach_the_chat(sandbox: SandboxServer,
                                                            make_daemon: DaemonFactory) -> None:
    go = "{greeting: 'Hello, I am a bot', farewell: 'Thanks, bye', stderr_chat: [MAIN]}"
    bot = make_daemon("chatty", go=go, engine=slow_gnugo(0.0, "MAIN: I like this position", "DEBUG: noise"))
    c = challenge(sandbox, "chatty", {"house": "scripted", "moves": ["cc", "gg", "resign"]}, challenger_color="black")
    game = wait_finished(sandbox, c["game_id"])
    wait_for(lambda: any("Thanks, bye" in str(line)
                         for line in api(sandbox, "GET", f"/sandbox/games/{c['game_id']}")["chat"]), 10, "farewell")
    chat = [str(line) for line in api(sandbox, "GET", f"/sandbox/games/{c['game_id']}")["chat"]]
    assert any("Hello, I am a bot" in line for line in chat), chat
    assert any("I like this position" in line for line in chat), chat
    assert not any("noise" in line for line in chat), chat
    assert_record_matches(bot, game)


def test_the_same_opponent_can_play_again_after_a_game(sandbox: SandboxServer, make_daemon: DaemonFactory) -> None:
    """Regression: an accepted challenge kept counting as a game against its opponent after the game ended, so
    with max_games_per_opponent 1 the opponent's next challenge was refused."""
    make_daemon("again-bot", accept="{max_games_per_opponent: 1}")
    for _ in range(2):
        c = challenge(sandbox, "again-bot", {"house": "scripted", "moves": ["cc", "resign"]})
        path = f"/sandbox/challenges/{c['challenge_id']}"
        wait_for(lambda: api(sandbox, "GET", path)["state"] != "pending", 30, "the bot's answer")  # noqa: B023
        info = api(sandbox, "GET", path)
        assert info["state"] == "accepted", info
        game = wait_finished(sandbox, c["game_id"])
        assert game["score"] in ("W+R", "B+R"), game


def test_leela_zero_plays_a_whole_19x19_game_with_its_own_clock_command(sandbox: SandboxServer,
                                                                        make_daemon: DaemonFactory,
                                                                        leelaz_command: list[str]) -> None:
    """A second real GTP engine: Leela Zero (19x19 only, a tiny network) plays a whole game to the count. Its
    list_commands has kgs-time_settings, so the byo-yomi clock reaches it whole (GNU Go gets it folded into
    time_settings); when the house passes, Leela passes, and the dead stones come from its final_status_list."""
    bot = make_daemon("leela-bot", engine=leelaz_command, accept="{board_sizes: [19]}")
    house = ["dd", "pp", "dp", "pd", "jj"]  # black plays a little, then passes from then on
    c = challenge(sandbox, "leela-bot", {"house": "scripted", "moves": house}, width=19, height=19, komi=6.5,
                  challenger_color="black", rules="japanese", stone_removal_timeout=1)
    game = wait_finished(sandbox, c["game_id"])
    assert game["outcome"] != "Resignation" and re.match(r"^[BW]\+\d", game["score"]), game
    moves = sandbox_moves(game)
    assert moves[-2:] == [None, None] and len(moves) >= 2 * len(house), moves
    text = transcript(bot, c["game_id"])
    assert re.search(r">> \d+ kgs-time_settings byoyomi 120 10 3", text), "the clock in Leela Zero's own command"
    assert not re.search(r">> \d+ time_settings ", text)
    assert re.search(r">> \d+ genmove w", text) and re.search(r">> \d+ final_status_list dead", text)
    assert_record_matches(bot, game)


def test_after_a_disputed_removal_leela_zero_plays_on_with_kgs_genmove_cleanup(sandbox: SandboxServer,
                                                                               make_daemon: DaemonFactory,
                                                                               leelaz_command: list[str]) -> None:
    """Both pass, the house rejects the stone removal (a dispute), play resumes: the bridge asks Leela Zero
    kgs-genmove_cleanup, not genmove, and its moves reach the server; the game then ends normally."""
    bot = make_daemon("leela-cleanup", engine=leelaz_command, accept="{board_sizes: [19]}")
    house = {"house": "scripted", "moves": ["dd", "pp", "dp", "pd"], "reject_removals": 1}
    c = challenge(sandbox, "leela-cleanup", house, width=19, height=19, komi=6.5, challenger_color="black",
                  rules="japanese", stone_removal_timeout=None)
    game_id = c["game_id"]

    def played_on_after_the_dispute() -> bool:
        r = requests.get(f"{sandbox.url}/sandbox/games/{game_id}", timeout=10)
        if r.status_code != 200:
            return False
        moves = sandbox_moves(r.json())
        first = next((i for i in range(len(moves) - 1) if moves[i] is None and moves[i + 1] is None), None)
        return first is not None and any(m is not None for m in moves[first + 2:])

    wait_for(played_on_after_the_dispute, 120, "a move by the bot after the rejected removal")
    text = transcript(bot, game_id)
    cleanup = re.search(r">> \d+ kgs-genmove_cleanup w", text)
    assert cleanup is not None, "cleanup asked after the dispute"
    before = text[:cleanup.start()]
    assert re.search(r">> \d+ genmove w", before), "plain genmove before the dispute"
    api(sandbox, "POST", f"/sandbox/games/{game_id}/resign", json={})
    game = wait_finished(sandbox, game_id)
    assert game["score"] == "W+R"
    assert_record_matches(bot, game)


class _SteppedClock:
    """The ``time`` module as the OGS adapter sees it, with its wall clock stepped by ``shift`` seconds (NTP
    correcting a large offset, a virtual machine resumed); the server's clock and the monotonic clock are not."""

    def __init__(self) -> None:
        self.shift = 0.0

    def time(self) -> float:
        return time.time() + self.shift

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_a_step_of_the_wall_clock_does_not_touch_the_game_clocks(sandbox: SandboxServer, make_daemon: DaemonFactory,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Our wall clock steps an hour ahead in the middle of a game (the server's does not). The clock sent to the
    engine is what the server's clock says: the time since the opponent's move is measured on the server's clock,
    which the bridge keeps from the pongs on the monotonic clock. It was measured as our wall clock less the drift,
    and the drift is a median of nine pongs: for the next ~5 pongs the engine was told it had 0 s left."""
    from bridge.adapters.ogs import client as ogs_client

    stepped = _SteppedClock()
    monkeypatch.setattr(ogs_client, "time", stepped)
    bot = make_daemon("stepped-clock")
    sync = bot.adapter._sync  # type: ignore[attr-defined]
    wait_for(lambda: sync.count >= 3, 30, "three pongs")
    stepped.shift = 3600.0  # the game is played within the next few pongs
    c = challenge(sandbox, "stepped-clock", {"house": "scripted", "moves": SHORT_GAME, "delay": 1.0},
                  time_control=FISCHER_FAST, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"])
    assert game["outcome"] == "Resignation", game["outcome"]
    lefts = [int(x) for x in re.findall(r">> \d+ time_left b(?:lack)? (\d+) \d+", transcript(bot, c["game_id"]))]
    assert len(lefts) >= 3, lefts
    assert all(100 <= x <= 300 for x in lefts), lefts
