"""Seeking on OGS (issue 11): the bot sends direct challenges (server.seek) to the sandbox's house opponents, over
real sockets, with GNU Go level 1; the opponents accept, decline by their rule, or never answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from helpers import wait_for

from bridge.adapters.ogs.client import OgsAdapter
from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.errors import ConfigError

pytestmark = pytest.mark.e2e

RESIGNS = {"house": "scripted", "moves": ["cc", "resign"], "delay": 0.05}  # plays one stone, then resigns
FAST = "{system: byoyomi, speed: live, main_time: 120, period_time: 10, periods: 3}"

Make = Callable[..., Daemon]


@pytest.fixture
def make_seeker(ogs_bot: Make, gnugo_command: list[str]) -> Make:
    """The bot "seeker" with GNU Go and the seek section ``seek``."""

    def make(seek: str, *, max_concurrent: int = 2, on_stop: str = "resume") -> Daemon:
        return ogs_bot("seeker", gnugo_command, server=f"request_timeout: 5\nseek: {seek}",
                       daemon=f"max_concurrent_games: {max_concurrent}\non_stop: {on_stop}")

    return make


def adapter_of(d: Daemon) -> OgsAdapter:
    assert isinstance(d.adapter, OgsAdapter)
    return d.adapter


def sent(sandbox: SandboxServer) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = requests.get(f"{sandbox.url}/sandbox/challenges", timeout=10).json()
    return [c for c in rows if c["challenger"] == "seeker"]


def game(sandbox: SandboxServer, game_id: int) -> dict[str, Any]:
    return sandbox.game(game_id)


def finished(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [g for c in sent(sandbox) if c["state"] == "accepted"
            for g in [game(sandbox, c["game_id"])] if g["phase"] == "finished"]


def finish_games(sandbox: SandboxServer, n: int, challenges: Callable[[SandboxServer], list[dict[str, Any]]]) -> int:
    """Wait for ``n`` finished games; the most of ``challenges`` that held a game slot at once meanwhile (pending,
    or accepted with the game not finished)."""
    most = 0

    def done() -> bool:
        nonlocal most
        rows = challenges(sandbox)
        busy = sum(1 for c in rows if c["state"] == "pending")
        busy += sum(1 for c in rows if c["state"] == "accepted" and game(sandbox, c["game_id"])["phase"] != "finished")
        most = max(most, busy)
        return len(finished(sandbox)) >= n

    wait_for(done, 120, f"{n} finished games", step=0.05)
    return most


def test_a_daemon_with_only_a_seek_section_plays_n_games_in_a_row_and_stops(
        sandbox: SandboxServer, make_seeker: Make) -> None:
    """No challenge comes in: the bot challenges the listed house opponents in turn, one game at a time
    (seek.max_games 1), alternating colours, offering the board sizes in turn, and after seek.stop_after (3) games
    it challenges nobody more."""
    sandbox.add_opponent(username="alice", **RESIGNS)
    sandbox.add_opponent(username="bob", **RESIGNS)
    d = make_seeker(f"{{opponents: [alice, bob], every: 1, max_games: 1, stop_after: 3, board_sizes: [9, 13], "
                    f"time_controls: [{FAST}]}}")
    most = finish_games(sandbox, 3, sent)
    time.sleep(2.5)  # longer than seek.every twice: a fourth challenge would have gone out by now
    rows = sent(sandbox)
    assert [c["target"] for c in rows] == ["alice", "bob", "alice"]
    assert [c["notification"]["width"] for c in rows] == [9, 13, 9]
    assert [c["challenger_color"] for c in rows] == ["white", "black", "white"]
    games = [game(sandbox, c["game_id"]) for c in rows]
    assert all(g["phase"] == "finished" for g in games)
    assert most == 1
    adapter = adapter_of(d)
    assert adapter.seeking is not None and adapter.seeking.seeker.done
    assert adapter.stats["challenges_sent"] == 3


def test_no_more_than_seek_max_games_at_once(sandbox: SandboxServer, make_seeker: Make) -> None:
    """Three opponents, seek.max_games 2: two games run side by side, never three (challenges in flight count)."""
    slow = {"house": "scripted", "moves": ["cc", "dd", "ee", "ff", "resign"], "delay": 0.4}
    for name in ("carol", "dave", "erin"):
        sandbox.add_opponent(username=name, **slow)
    make_seeker("{opponents: [carol, dave, erin], every: 1, max_games: 2, stop_after: 4, "
                f"time_controls: [{FAST}]}}", max_concurrent=3)
    most = finish_games(sandbox, 4, sent)
    assert most == 2


def test_a_decline_is_backed_off_and_logged_once_with_its_reason(
        sandbox: SandboxServer, make_seeker: Make, caplog: pytest.LogCaptureFixture) -> None:
    """A house opponent that declines ranked games: one challenge, one log line with the gtp2ogs rejection code,
    and no second challenge to it within decline_backoff, while the other opponent is still challenged."""
    caplog.set_level(logging.INFO, logger="bridge.seek")
    sandbox.add_opponent(username="picky", decline_ranked=True, **RESIGNS)
    sandbox.add_opponent(username="easy", **RESIGNS)
    d = make_seeker(f"{{opponents: [picky, easy], every: 1, max_games: 1, stop_after: 2, ranked: true, "
                    f"decline_backoff: 600, time_controls: [{FAST}]}}")
    wait_for(lambda: len(finished(sandbox)) >= 2, 120, "2 games with easy")
    rows = sent(sandbox)
    assert [c["target"] for c in rows] == ["picky", "easy", "easy"]
    assert rows[0]["state"] == "rejected"
    adapter = adapter_of(d)
    assert adapter.seeking is not None
    assert "ranked_not_allowed" in (adapter.seeking.seeker.backoff_reason("picky") or "")
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge.seek" and "picky" in r.getMessage()]
    assert len(lines) == 1 and "ranked_not_allowed" in lines[0] and "600 s" in lines[0], lines


LOST_ANSWER = {"lose_challenge_answers": 1}
LOST_AND_UNSEEN = {"lose_challenge_answers": 1, "quiet_seek_graph": True}
DIRECT = f"{{opponents: [taker], every: 1, max_games: 1, stop_after: 1, time_controls: [{FAST}]}}"
OPEN = f"{{open: true, every: 1, max_games: 1, stop_after: 1, time_controls: [{FAST}]}}"


@pytest.mark.parametrize(("seek", "opponent", "faults"), [
    # the bot lists its challenges and keeps the one it finds
    (DIRECT, {"answer_delay": 1.5}, LOST_ANSWER),
    # accepted at once, the challenge is no longer listed: the game that started against that opponent is its,
    # also when the game's start reaches the bot after the listing (seeking.LOST_GAME_WAIT;
    # tests/test_ogs_seek_unit.py has that order for certain)
    (DIRECT, {"answer_delay": 0}, LOST_ANSWER),
    # open: found on the seek graph, its own entry with the settings it sent
    (OPEN, {"accept_open": 5, "answer_delay": 1.5}, LOST_ANSWER),
    # open, taken at once: found as the game it started
    pytest.param(OPEN, {"accept_open": 5, "answer_delay": 0}, LOST_ANSWER, marks=pytest.mark.alone),
    # open, the seek graph silent and taken before the create call returns: the game that then starts for the bot,
    # explained by no incoming challenge, is the lost challenge's
    pytest.param(OPEN, {"accept_open": 5, "answer_delay": 0}, LOST_AND_UNSEEN, marks=pytest.mark.alone),
], ids=["direct-taken-later", "direct-taken-at-once", "open-taken-later", "open-taken-at-once",
        "open-taken-unseen"])
def test_a_lost_answer_never_makes_a_second_challenge(sandbox: SandboxServer, make_seeker: Make, seek: str,
                                                      opponent: dict[str, Any], faults: dict[str, Any]) -> None:
    """The server makes the challenge but its answer is lost (the connection is cut): the bot settles it as the
    case says, plays its game, counts it for seek.stop_after, and never sends a second challenge for it."""
    sandbox.add_opponent(username="taker", **opponent, **RESIGNS)
    requests.post(f"{sandbox.url}/sandbox/faults", json=faults, timeout=10)
    d = make_seeker(seek)
    wait_for(lambda: len(finished(sandbox)) >= 1, 60, "the game of the lost challenge")
    time.sleep(2.5)  # not synchronisation: a window (seek.every twice) in which a re-sent challenge would show
    rows = sent(sandbox)
    assert len(rows) == 1 and rows[0]["state"] == "accepted", rows
    assert rows[0].get("open", False) == (seek == OPEN)
    adapter = adapter_of(d)
    assert adapter.stats["challenges_settled"] == 1
    assert adapter.seeking is not None and adapter.seeking.seeker.done
    assert adapter.seeking.seeker.started_count == 1


def test_an_unanswered_challenge_is_cancelled_after_its_timeout(
        sandbox: SandboxServer, make_seeker: Make) -> None:
    """A house opponent that never answers: the challenge is cancelled after seek.timeout (5 s), the opponent is
    left alone (decline_backoff), and while it was pending it counted against the daemon's cap: an incoming
    challenge then was declined for lack of room."""
    sandbox.add_opponent(username="mute", silent=True, **RESIGNS)
    d = make_seeker(f"{{opponents: [mute], every: 1, max_games: 1, timeout: 5, decline_backoff: 600, "
                    f"time_controls: [{FAST}]}}", max_concurrent=1)
    wait_for(lambda: any(c["state"] == "pending" for c in sent(sandbox)), 30, "the challenge to mute")
    started = time.monotonic()
    incoming = sandbox.challenge(target="seeker", width=9, height=9, challenger=dict(RESIGNS))
    wait_for(lambda: sandbox.sandbox.challenges[incoming["challenge_id"]].state != "pending", 15,
             "the answer to the incoming challenge")
    ch = sandbox.sandbox.challenges[incoming["challenge_id"]]
    assert ch.state == "rejected" and "too_many" in str(ch.rejection_details), ch.rejection_details
    wait_for(lambda: all(c["state"] == "canceled" for c in sent(sandbox)), 15, "the cancel")
    assert time.monotonic() - started < 6.5
    time.sleep(2.0)
    rows = sent(sandbox)
    assert len(rows) == 1 and rows[0]["state"] == "canceled"
    adapter = adapter_of(d)
    assert adapter.stats["challenges_cancelled"] == 1
    assert adapter.seeking is not None
    assert "no answer within 5 s" in (adapter.seeking.seeker.backoff_reason("mute") or "")


@pytest.mark.parametrize(("seek", "message"), [
    ("{opponents: [a], board_sizes: [30]}", "server.seek"),
    ("{opponents: [a], timeout: 1}", "server.seek.timeout"),
    ("{any_active: true}", "any_active is not available on OGS"),
    ("{opponents: [a], time_controls: [{system: fischer, main_time: 0}]}", "server.seek.time_controls"),
    ("{opponents: [a], ranked: true, komi: 6.5}", "automatic komi"),
    ("{every: 5}", "set open: true"),
    ("{open: true, opponents: [a]}", "open: true offers challenges to anyone"),
    ("{open: true, min_ranking: 20, max_ranking: 10}", "min_ranking (20) is above max_ranking (10)"),
])
def test_a_bad_seek_section_is_an_error_at_load(seek: str, message: str) -> None:
    text = f"server:\n  kind: ogs\n  username: b\n  api_key: {{env: X}}\n  seek: {seek}\nengine:\n  command: [x]\n"
    with pytest.raises(ConfigError) as err:
        load_config_text(text, "t.yaml")
    assert message in str(err.value), str(err.value)


def test_a_waiting_challenge_is_withdrawn_when_the_bot_stops(sandbox: SandboxServer, make_seeker: Make) -> None:
    """Nobody would play the game of a challenge accepted after the bot stopped: stopping cancels it."""
    sandbox.add_opponent(username="slowpoke", silent=True, **RESIGNS)
    d = make_seeker(f"{{opponents: [slowpoke], every: 1, timeout: 600, time_controls: [{FAST}]}}")
    wait_for(lambda: any(c["state"] == "pending" for c in sent(sandbox)), 30, "the challenge to slowpoke")
    d.shutdown()
    rows = sent(sandbox)
    assert len(rows) == 1 and rows[0]["state"] == "canceled", rows


def test_a_seeking_bridge_challenges_another_bridge(sandbox: SandboxServer, make_seeker: Make, ogs_bot: Make,
                                                      gnugo_command: list[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Bot to bot through the sandbox as on OGS: the other bridge declines the 13x13 challenge by its
    server.accept (the gtp2ogs rejection code reaches the seeker as gameOfferRejected), and after the backoff
    accepts the 9x9 one; the two engines play it out."""
    caplog.set_level(logging.INFO, logger="bridge.seek")
    gate = ogs_bot("gatekeeper", gnugo_command, server="accept: {board_sizes: [9], speeds: {live: {}}}",
                   daemon="max_concurrent_games: 1")
    try:
        make_seeker(f"{{opponents: [gatekeeper], every: 1, stop_after: 1, decline_backoff: 1, board_sizes: [13, 9], "
                    f"time_controls: [{FAST}]}}")
        wait_for(lambda: len(finished(sandbox)) >= 1, 240, "the 9x9 game between the two bridges")
    finally:
        gate.shutdown()
    rows = sent(sandbox)
    assert [(c["target"], c["notification"]["width"], c["state"]) for c in rows] == \
        [("gatekeeper", 13, "rejected"), ("gatekeeper", 9, "accepted")]
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge.seek" and "gatekeeper" in r.getMessage()]
    assert len(lines) == 1 and "board_size_not_allowed" in lines[0], lines


def test_draining_withdraws_the_challenges_still_waiting(sandbox: SandboxServer, make_seeker: Make) -> None:
    """daemon.on_stop: finish: the first stop drains (the game in progress goes on); a challenge still waiting
    would start a new game, so it is withdrawn at once, and no new one is sent."""
    sandbox.add_opponent(username="steady", house="scripted", moves=["cc", "dd", "ee", "ff", "gg", "resign"],
                         delay=0.5)
    sandbox.add_opponent(username="sleepy", silent=True, **RESIGNS)
    d = make_seeker(f"{{opponents: [steady, sleepy], every: 1, max_games: 2, timeout: 600, "
                    f"time_controls: [{FAST}]}}", on_stop="finish")
    wait_for(lambda: [(c["target"], c["state"]) for c in sent(sandbox)] == [("steady", "accepted"),
                                                                            ("sleepy", "pending")],
             30, "a game with steady and a challenge waiting for sleepy")
    d.stop()
    assert d.draining
    wait_for(lambda: sent(sandbox)[1]["state"] == "canceled", 10, "the waiting challenge withdrawn")
    steady = game(sandbox, sent(sandbox)[0]["game_id"])
    assert steady["phase"] != "finished", "the game in progress was not drained but ended"
    wait_for(lambda: len(finished(sandbox)) == 1, 60, "the game in progress to end")
    assert len(sent(sandbox)) == 2


# --- open challenges (seek.open): POST /api/v1/challenges, the seek graph, house players that take them ----------
def opens(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [c for c in sent(sandbox) if c.get("open")]


def test_open_challenges_play_n_games_in_a_row_and_stop(sandbox: SandboxServer, make_seeker: Make) -> None:
    """seek.open: no opponent named; a house player that takes open challenges (accept_open) plays them. Two at
    once at most (seek.max_games 2), the board sizes in turn, the policy's settings on the wire, and after
    seek.stop_after (4) games no more open challenges."""
    sandbox.add_opponent(username="taker", accept_open=10, house="scripted",
                         moves=["cc", "dd", "ee", "resign"], delay=0.3)
    d = make_seeker(f"{{open: true, every: 1, max_games: 2, stop_after: 4, board_sizes: [9, 13], "
                    f"min_ranking: 5, max_ranking: 25, time_controls: [{FAST}]}}", max_concurrent=3)
    most = finish_games(sandbox, 4, opens)
    time.sleep(2.5)  # longer than seek.every twice: a fifth open challenge would have gone out by now
    rows = opens(sandbox)
    assert [(c["state"], c["accepted_by"]) for c in rows] == [("accepted", "taker")] * 4, rows
    assert [c["width"] for c in rows] == [9, 13, 9, 13]
    assert all((c["min_ranking"], c["max_ranking"], c["rules"], c["ranked"]) == (5, 25, "chinese", False)
               for c in rows)
    assert all(c["time_control"]["system"] == "byoyomi" for c in rows)
    assert most == 2
    adapter = adapter_of(d)
    assert adapter.seeking is not None and adapter.seeking.seeker.done
    assert adapter.stats["challenges_sent"] == 4 and adapter.stats["challenges_settled"] == 0


def test_an_open_challenge_nobody_takes_is_cancelled_after_its_timeout(
        sandbox: SandboxServer, make_seeker: Make) -> None:
    """Nobody takes it: cancelled after seek.timeout (5 s) with DELETE /api/v1/challenges/{id} (off the seek graph),
    and a new one is offered (an open challenge declines nobody: no backoff); never two pending at once."""
    d = make_seeker(f"{{open: true, every: 1, max_games: 1, timeout: 5, time_controls: [{FAST}]}}")
    wait_for(lambda: len(opens(sandbox)) >= 1, 30, "the first open challenge")
    started = time.monotonic()
    wait_for(lambda: opens(sandbox)[0]["state"] == "canceled", 15, "the cancel")
    assert 4.5 < time.monotonic() - started < 6.5
    wait_for(lambda: len(opens(sandbox)) >= 2, 15, "the next open challenge")
    rows = opens(sandbox)
    assert rows[0]["state"] == "canceled" and rows[1]["state"] == "pending"
    assert sum(1 for c in rows if c["state"] == "pending") == 1
    adapter = adapter_of(d)
    assert adapter.stats["challenges_cancelled"] >= 1
    d.shutdown()
    assert all(c["state"] == "canceled" for c in opens(sandbox)), "stopping withdraws the pending one"


def test_a_lost_open_challenge_never_seen_blocks_new_ones_until_the_timeout(sandbox: SandboxServer,
                                                                            make_seeker: Make) -> None:
    """Silent seek graph, lost answer, nobody takes it: the bot cannot find it, and offers nothing more for
    seek.timeout (5 s; with seek.every 1 a second one would otherwise follow within a second), then goes on."""
    requests.post(f"{sandbox.url}/sandbox/faults", json={"lose_challenge_answers": 1, "quiet_seek_graph": True},
                  timeout=10)
    make_seeker(f"{{open: true, every: 1, max_games: 1, timeout: 5, time_controls: [{FAST}]}}")
    wait_for(lambda: len(opens(sandbox)) >= 1, 30, "the first open challenge")
    first = time.monotonic()
    wait_for(lambda: len(opens(sandbox)) >= 2, 15, "the next open challenge, after the timeout")
    assert time.monotonic() - first > 4.0
