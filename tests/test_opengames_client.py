"""The Open Games adapter against the Open Games sandbox over real HTTP on 127.0.0.1, run by the real daemon
with the reference Battleship engine (or a misbehaving wrapper of it) in subprocesses: whole games by polling
and by webhooks, two bridges against each other, lost answers, 5xx and 429, an invalid engine action, a
crashed engine, a turn about to expire and an expired one, refused webhooks, a wrong key, `gamebridge check`,
`gamebridge register`, and a daemon restarted mid-game."""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.adapters.opengames.client import GameResult, OpenGamesAdapter, TurnClock
from bridge.adapters.opengames.sandbox import OpenGamesSandbox
from bridge.adapters.opengames.webhook import WebhookReceiver
from bridge.config import load_config_text as _load_config_text
from bridge.daemon import Daemon
from bridge.errors import ConfigError

ROOT = Path(__file__).parent.parent
ENGINE = ROOT / "scripts" / "battleship_engine.py"
TOKEN = "hook-token-0123456789"

FLAKY = '''
"""The reference engine, misbehaving at chosen genmoves (counted across restarts in --state FILE)."""
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec); sys.modules["ref"] = ref; spec.loader.exec_module(ref)
opt = dict(zip(sys.argv[2::2], sys.argv[3::2]))
engine = ref.Engine(ref.Player(1))
for raw in sys.stdin:
    words = raw.split()
    if words[1:2] == ["genmove"]:
        n = int(open(opt["--state"]).read()) + 1 if os.path.exists(opt["--state"]) else 1
        open(opt["--state"], "w").write(str(n))
        if str(n) in opt.get("--at", "").split(",") or (opt.get("--from") and n >= int(opt["--from"])):
            if opt["--do"] == "crash":
                sys.stderr.write("flaky: crashing on purpose\\n"); sys.stderr.flush(); os._exit(3)
            if opt["--do"] == "hang":
                time.sleep(600)
            sys.stdout.write(f"={words[0]} {opt['--do']}\\n\\n"); sys.stdout.flush()
            continue
    reply = engine.handle(raw)
    if reply is not None:
        sys.stdout.write(reply + "\\n\\n"); sys.stdout.flush()
    if engine.quit:
        break
'''


# --- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture
def og() -> Iterator[OpenGamesSandbox]:
    """The sandbox on a free port: fast pairing, instant house players, no rate limit, seeded games."""
    server = OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, rate_limit=None, seed=1).start()
    yield server
    server.stop()


def load_config_text(text: str, source: str) -> Any:
    return _load_config_text(text, source)


def new_agent(og: OpenGamesSandbox, name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    agent = og.add_agent(name)
    monkeypatch.setenv(f"OG_KEY_{name.upper()}", agent["api_key"])
    return agent


def config_text(url: str, data_dir: Path, agent: str, *, mode: str = "polling", server: str = "",
                engine: list[str] | None = None, engine_extra: str = "", polite: bool = False) -> str:
    """A bridge's configuration; the request rate is raised far above the default (games against instant
    house players go faster) unless ``polite``."""
    command = engine or [sys.executable, str(ENGINE), "--seed", "1"]
    rate = "" if polite else "  max_request_rate: 200\n"
    hook = "  webhook: {listen_port: 0, token: {env: OG_TOKEN}, fallback_poll: 60}\n"
    if mode != "webhook":
        hook = ""
    return (f"server:\n  kind: opengames\n  url: {url}\n  agent: {agent}\n"
            f"  api_key: {{env: OG_KEY_{agent.upper()}}}\n  mode: {mode}\n{hook}"
            f"  poll_interval: 0.1\n  state_interval: 0.05\n  games: 1\n{rate}  retry_min_delay: 0.05\n"
            f"  retry_max_delay: 1.0\n{server}"
            f"engine:\n  protocol: line\n  command: {json.dumps(command)}\n  quit_grace: 0.3\n{engine_extra}"
            f"daemon:\n  data_dir: {data_dir}\n")


class Bridge:
    """The real daemon running in a thread (``server.games: 1`` makes it stop by itself after one game)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.daemon = Daemon(config)
        self.daemon.start()

    @property
    def adapter(self) -> OpenGamesAdapter:
        adapter = self.daemon.adapter
        assert isinstance(adapter, OpenGamesAdapter)
        return adapter

    def wait(self, timeout: float = 60.0) -> list[GameResult]:
        assert self.daemon.stop_event.wait(timeout), f"the daemon did not stop by itself in {timeout} s"
        self.daemon.shutdown()
        assert not self.daemon.failed, self.adapter.stopped_reason
        return list(self.adapter.results)

    def close(self) -> None:
        self.daemon.shutdown()


@pytest.fixture
def run_bridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Bridge]]:
    monkeypatch.setenv("OG_TOKEN", TOKEN)
    started: list[Bridge] = []

    def start(text: str) -> Bridge:
        bridge = Bridge(load_config_text(text, "test.yaml"))
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(("game-", "opengames-webhook"))]


@pytest.fixture
def flaky(tmp_path: Path) -> Callable[..., list[str]]:
    script = tmp_path / "flaky_engine.py"
    script.write_text(FLAKY)

    def make(*flags: str) -> list[str]:
        return [sys.executable, str(script), str(ENGINE), "--state", str(tmp_path / "genmoves"), *flags]

    return make


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="bridge")
    return caplog


def dataset(og: OpenGamesSandbox, game_id: str) -> dict[str, Any]:
    resp = requests.get(f"{og.api_url}/dataset/{game_id}.json", timeout=5)
    assert resp.status_code == 200, resp.text
    record: dict[str, Any] = resp.json()
    return record


def our_turns(record: dict[str, Any], name: str) -> list[dict[str, Any]]:
    role = 1 if record["agents"]["player1"]["name"] == name else 2
    return [t for t in record["turns"] if t["player"] == role]


def wait_for_game(og: OpenGamesSandbox, timeout: float = 10.0) -> str:
    """The id of the sandbox's first game, once it exists."""
    deadline = time.monotonic() + timeout
    while not og.games():
        assert time.monotonic() < deadline, "no game was matched"
        time.sleep(0.01)
    return str(og.games()[0]["game_id"])


def assert_no_secret(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text


# --- whole games ------------------------------------------------------------------------------------------
def test_a_polled_game_against_the_house_is_played_to_its_end(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Matchmaking by polling, then a whole game against hunt-target (which moves its ships): the outcome is
    the sandbox's, every action of ours is the engine's with its reasoning, the record is the platform's
    dataset record, the transcript holds the engine dialogue, and the key appears nowhere."""
    key = new_agent(og, "pollbot", monkeypatch)["api_key"]
    og.add_house("hunt-target", moves=True)
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "pollbot"))
    [result] = bridge.wait()
    assert result.error is None and result.fallbacks == 0 and result.rejected == 0
    record = dataset(og, result.game_id)
    winner = record["result"]["winner_name"]
    assert result.outcome == ("won" if winner == "pollbot" else "lost")
    ours = our_turns(record, "pollbot")
    assert len(ours) == result.turns and all(t.get("reasoning") for t in ours)
    assert result.record == tmp_path / "runs" / "records" / f"opengames-{result.game_id}.json"
    assert json.loads(result.record.read_text()) == record
    transcript = (tmp_path / "runs" / "transcripts" / f"opengames-{result.game_id}.log").read_text()
    assert "battleship-line-protocol 1" in transcript and "genmove" in transcript
    assert "record written" in transcript
    assert_no_secret(key, logs.text, transcript, result.record.read_text())
    assert "Authorization" not in logs.text


def test_a_webhook_game_is_driven_by_webhooks_and_forged_posts_are_refused(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mode: webhook with a 60 s fallback poll, so only webhooks can make the game go fast: match_found and
    your_turn arrive with the token; a POST with a wrong token gets 401 and an oversized one 413, each with
    one WARNING line, and the game goes on; the webhook is removed on the way out."""
    agent = new_agent(og, "hookbot", monkeypatch)
    og.add_house("random", moves=True)
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "hookbot", mode="webhook"))
    deadline = time.monotonic() + 10
    while bridge.adapter.receiver is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    url = bridge.adapter.receiver.url
    body = {"event": "your_turn", "game_id": "x", "turn": 99, "token": "guess"}
    forged = requests.post(url, json=body, timeout=5)
    assert forged.status_code == 401
    big = requests.post(url, data=b"x" * 70_000, headers={"Content-Type": "application/json"}, timeout=5)
    assert big.status_code == 413
    started = time.monotonic()
    [result] = bridge.wait(40)
    assert time.monotonic() - started < 30  # the fallback poll (60 s) never had to act
    assert result.error is None and result.outcome in ("won", "lost")
    deliveries = [d for d in og.webhook_deliveries() if d["agent_id"] == agent["agent_id"]]
    events = {d["event"] for d in deliveries}
    assert {"match_found", "your_turn", "game_over"} <= events
    assert all(d["delivered"] and d["http_status"] == 200 for d in deliveries)
    refused = [r.getMessage() for r in logs.records if "webhook receiver: refused" in r.getMessage()]
    assert len(refused) == 2 and "(HTTP 401)" in refused[0] and "(HTTP 413)" in refused[1]
    me = requests.get(f"{og.api_url}/webhooks/me", headers={"Authorization": f"Bearer {agent['api_key']}"},
                      timeout=5)
    assert me.json()["registered"] is False
    transcript = (tmp_path / "runs" / "transcripts" / f"opengames-{result.game_id}.log").read_text()
    assert_no_secret(TOKEN, logs.text, transcript)
    assert_no_secret(agent["api_key"], logs.text, transcript)


def test_two_bridges_play_each_other(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two agents, one bridge polling and one on webhooks, matched together: one game, opposite outcomes that
    match the sandbox's, and each side's record."""
    new_agent(og, "alpha", monkeypatch)
    new_agent(og, "beta", monkeypatch)
    a = run_bridge(config_text(og.url, tmp_path / "a", "alpha"))
    b = run_bridge(config_text(og.url, tmp_path / "b", "beta", mode="webhook",
                               engine=[sys.executable, str(ENGINE), "--seed", "2"]))
    [ra] = a.wait(60)
    [rb] = b.wait(60)
    assert ra.game_id == rb.game_id and {ra.player, rb.player} == {1, 2}
    assert {ra.outcome, rb.outcome} == {"won", "lost"}
    record = dataset(og, ra.game_id)
    assert (ra.outcome == "won") == (record["result"]["winner_name"] == "alpha")
    assert ra.fallbacks == rb.fallbacks == 0
    assert ra.record is not None and rb.record is not None and ra.record.exists() and rb.record.exists()


def test_games_are_played_one_after_another_until_server_games(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """games: 2 -- after its first game the agent joins the queue again (the platform still reports the
    finished game as its match), plays a second game, then the daemon stops by itself."""
    new_agent(og, "serial", monkeypatch)
    for _ in range(2):
        og.add_house("hunt-target", moves=True)
    text = config_text(og.url, tmp_path / "runs", "serial").replace("games: 1", "games: 2")
    bridge = run_bridge(text)
    results = bridge.wait(60)
    assert len(results) == 2 and results[0].game_id != results[1].game_id
    assert all(r.error is None and r.outcome in ("won", "lost") and r.record is not None for r in results)
    assert bridge.adapter.stats["queue_joins"] == 2


def test_without_a_dataset_record_the_bridge_writes_its_own(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform answers 404 for the dataset record: the bridge's own record holds every action of ours
    (cell, result, reasoning, whether the engine or the fallback chose it) and what it saw of the opponent."""
    new_agent(og, "archivist", monkeypatch)
    og.add_house("random", moves=True)
    og.fail(120, status=404, match="/dataset/")
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "archivist"))
    [result] = bridge.wait()
    assert result.record is not None
    record = json.loads(result.record.read_text())
    assert record["schema_version"] == "bridge-opengames-1" and record["game_id"] == result.game_id
    assert record["result"]["outcome"] == result.outcome and record["player"] == result.player
    ours = [t for t in record["turns"] if t.get("action_type")]
    assert len(ours) == result.turns and all(t["source"] == "engine" and t["reasoning"] for t in ours)
    shots = [t for t in ours if t["action_type"] == "shoot"]
    assert shots and all(t["coordinate"] and "hit" in t["result"] for t in shots)
    assert any("observed" in t for t in record["turns"])
    assert sorted(record["own_ships"]) == ["Battleship", "Carrier", "Cruiser", "Destroyer", "Submarine"]


# --- failures ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("after", [True, False])
def test_a_lost_action_answer_is_settled_from_the_state(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, after: bool,
) -> None:
    """The connection breaks instead of answering two actions, carried out (after) or not: the bridge reads
    the state and either counts them as played or sends them again -- never a second action in one turn."""
    new_agent(og, "lossy", monkeypatch)
    og.add_house("hunt-target", moves=False)
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "lossy"))
    game_id = wait_for_game(og)
    og.drop(match=f"POST /api/v1/mcp/game/{game_id}/action", count=2, after=after)
    [result] = bridge.wait()
    assert result.error is None
    record = dataset(og, result.game_id)
    players = [t["player"] for t in record["turns"]]
    assert len(players) > 1 and all(p != q for p, q in itertools.pairwise(players))  # one action per turn
    assert len(our_turns(record, "lossy")) == result.turns
    lost = [i for i in result.incidents if "was lost" in i]
    assert len(lost) == 2
    if after:
        assert result.settled == 2 and all("carried out" in i and "not carried" not in i for i in lost)
    else:
        assert result.settled == 0 and all("not carried out: sending it again" in i for i in lost)


def test_a_shot_met_by_plain_500s_is_sent_again_never_taken_for_a_refusal(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8, item 12: one shot meets two plain 500s (the platform did not carry it out). Each time the bridge
    reads the state, sees the shot was not carried out, and sends the same shot again; the third try is carried
    out. Nothing is taken for a refusal: no cell excluded, no fallback shot, one action per turn."""
    new_agent(og, "steady", monkeypatch)
    og.add_house("hunt-target", moves=False)
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "steady"))
    game_id = wait_for_game(og)
    og.fail_next(match=f"POST /api/v1/mcp/game/{game_id}/action", count=2, status=500)
    [result] = bridge.wait()
    assert result.error is None
    assert not [i for i in result.incidents if "refused" in i], result.incidents
    assert result.rejected == 0 and result.fallbacks == 0
    lost = [i for i in result.incidents if "was lost" in i]
    assert len(lost) == 2 and all("not carried out: sending it again" in i for i in lost)
    record = dataset(og, result.game_id)
    players = [t["player"] for t in record["turns"]]
    assert len(players) > 1 and all(p != q for p, q in itertools.pairwise(players))  # one action per turn
    turn, cell = lost[0].split(": the answer to '")[0].split()[-1], lost[0].split("'")[1]
    assert [t["coordinate"] for t in record["turns"] if t["turn"] == int(turn)] == [cell]  # that very shot
    assert not any(t["reasoning"].startswith("Fallback") for t in our_turns(record, "steady"))


def test_a_real_refusal_excludes_the_cell_and_a_fallback_shot_is_sent(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 400 (the platform says the shot is invalid) is a refusal: the cell is excluded this turn, the engine
    is asked again and, as it insists on the same cell, the fallback shot goes out instead; one incident says
    the platform refused it."""
    new_agent(og, "refused", monkeypatch)
    og.add_house("random", moves=False)
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "refused"))
    game_id = wait_for_game(og)
    og.fail_next(match=f"POST /api/v1/mcp/game/{game_id}/action", count=1, status=400)
    [result] = bridge.wait()
    assert result.error is None and result.rejected == 1 and result.fallbacks == 1
    assert len([i for i in result.incidents if "the platform refused" in i]) == 1
    assert not [i for i in result.incidents if "was lost" in i]


def test_the_turn_clock_keeps_the_engine_a_share_and_the_action_a_reserve() -> None:
    """TurnClock (unit): the platform's 180 s turn with the default 15 s margin; a 12 s turn (a turn seen late)
    where the margin would leave the engine nothing; and a turn all but over."""
    full = TurnClock(100.0, 280.0, 15.0)
    assert full.send_by == pytest.approx(278.5) and full.engine_by == pytest.approx(263.5)
    assert full.pre_engine_by == pytest.approx(116.35)
    late = TurnClock(100.0, 112.0, 15.0)
    assert late.send_by == pytest.approx(110.5) and late.engine_by == pytest.approx(105.25)
    nearly = TurnClock(100.0, 101.0, 15.0)
    assert 100.0 < nearly.engine_by < nearly.send_by < nearly.limit


def _arm_on_drop(og: OpenGamesSandbox, monkeypatch: pytest.MonkeyPatch, arm: Callable[[], None]) -> None:
    """Call ``arm`` (more faults) the moment the sandbox drops a connection (so that they follow that lost
    answer, whenever it comes)."""
    original = og.faults.take_drop

    def take_drop(method: str, path: str) -> Any:
        drop = original(method, path)
        if drop is not None:
            arm()
        return drop

    monkeypatch.setattr(og.faults, "take_drop", take_drop)


def _default_retries(text: str) -> str:
    """The configuration with the default retry policy (0.5 s doubling up to 30 s), as an operator has it."""
    return text.replace("  retry_min_delay: 0.05\n  retry_max_delay: 1.0\n", "")


def test_settling_a_lost_answer_is_bounded_by_the_turn(
    run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8, item 13: a 30 s turn, default retries; the answer to a shot is lost (not carried out) and the
    next 5 state reads fail. The state reads that settle it are retried within the turn's budget (before:
    0.5 + 1 + 2 + 4 + 8 s of backoff, 16.6 s of the turn); the shot is sent again and that turn, measured by
    the server, takes at most 12 s (the backoff within a turn is capped at a sixteenth of the time left)."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, seed=5, turn_timeout=30.0) as og:
        new_agent(og, "budget", monkeypatch)
        og.add_house("hunt-target", moves=False)
        bridge = run_bridge(_default_retries(config_text(og.url, tmp_path / "runs", "budget")))
        game_id = wait_for_game(og)
        _arm_on_drop(og, monkeypatch, lambda: og.fail_next(
            match=f"GET /api/v1/mcp/game/{game_id}/state", count=5, status=500))
        og.drop(match=f"POST /api/v1/mcp/game/{game_id}/action", count=1, after=False)
        [result] = bridge.wait(120)
        truth = og.game(game_id)
    assert result.error is None and result.fallbacks == 0 and result.rejected == 0
    assert truth["end_reason"] == "all_ships_sunk"
    [lost] = [i for i in result.incidents if "was lost" in i]
    turn = int(lost.split(": the answer to")[0].split()[-1])
    seconds = truth["turn_seconds"][turn - 1]
    assert seconds <= 12.0, f"settling took {seconds} s of the 30 s turn"


def test_late_in_its_turn_the_engine_keeps_its_share(
    run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8, item 13: a 20 s turn with the default 15 s margin, and the state read that shows our turn
    answered 8 s late: 12 s are left. Before, the margin took them all (the engine got 0 s and a fallback shot
    went out); now the engine gets its share of what is left and answers, in time."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, seed=6, turn_timeout=20.0) as og:
        new_agent(og, "share", monkeypatch)
        og.add_house("random", moves=False)
        bridge = run_bridge(config_text(og.url, tmp_path / "runs", "share"))
        game_id = wait_for_game(og)
        og.stall(8.0, match=f"GET /api/v1/mcp/game/{game_id}/state", count=1)
        [result] = bridge.wait(120)
        truth = og.game(game_id)
    assert truth["end_reason"] == "all_ships_sunk"
    assert result.error is None and result.fallbacks == 0, result.incidents
    assert max(truth["turn_seconds"]) < 20.0


def test_when_the_state_cannot_be_read_the_action_still_goes_out_before_the_limit(
    run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8, item 13: the answer to a shot is lost (not carried out) and the state cannot be read for 12 s,
    past the end of the 12 s turn. The bridge cannot settle it; before the turn limit it sends the action once
    more (had the first been carried out, the platform would refuse it as not our turn), so the turn is not
    forfeited and the game ends with all ships sunk."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, seed=7, turn_timeout=12.0) as og:
        new_agent(og, "blind", monkeypatch)
        og.add_house("hunt-target", moves=False)
        bridge = run_bridge(config_text(og.url, tmp_path / "runs", "blind", server="  turn_margin: 3\n"))
        game_id = wait_for_game(og)
        _arm_on_drop(og, monkeypatch, lambda: og.fail(12.0, status=500, match="/state"))
        og.drop(match=f"POST /api/v1/mcp/game/{game_id}/action", count=1, after=False)
        [result] = bridge.wait(150)
        truth = og.game(game_id)
    assert truth["end_reason"] == "all_ships_sunk", truth["end_reason"]
    assert result.error is None
    players = [t["player"] for t in truth["turns"]]
    assert len(players) > 1 and all(p != q for p, q in itertools.pairwise(players))


def test_server_errors_and_rate_limits_are_retried(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """429s (Retry-After: 1) on actions, then 503s on the state, for a second each: the calls are retried (the
    429 after its Retry-After, the 503 with backoff) and the game is played to its end without a fallback."""
    new_agent(og, "patient", monkeypatch)
    og.add_house("hunt-target", moves=True)
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "patient"))
    game_id = wait_for_game(og)
    og.fail(1.0, status=429, match=f"POST /api/v1/mcp/game/{game_id}/action", retry_after=1)
    time.sleep(1.2)  # (the sandbox keeps one fault rule at a time) the game waits on the 429 meanwhile
    og.fail(1.0, status=503, match="/state")
    [result] = bridge.wait()
    assert result.error is None and result.fallbacks == 0
    text = logs.text
    assert "HTTP 503" in text and "HTTP 429 (rate limited)" in text
    assert "retrying in 1.0 s" in text  # the Retry-After honoured
    assert "answered again after" in text


def test_polling_never_meets_a_limit_of_20_requests_per_2_s(
    run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8, item 15: the sandbox's rate limit on at 20 requests per 2 s per agent, and the bridge with its
    default request rate, configured to poll faster than the demo does (matchmaking every 0.1 s, the state
    every 0.05 s): a whole game against an instant opponent without a single 429."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, seed=8, rate_limit=10.0) as og:
        assert og.limiter.limit == 20
        new_agent(og, "polite", monkeypatch)
        og.add_house("random", moves=True)
        bridge = run_bridge(config_text(og.url, tmp_path / "runs", "polite", polite=True))
        [result] = bridge.wait(180)
        truth = og.game(result.game_id)
        refused = og.limiter.refused
    assert truth["end_reason"] == "all_ships_sunk" and result.error is None and result.fallbacks == 0
    assert refused == 0 and "HTTP 429" not in logs.text


@pytest.mark.e2e
def test_the_demo_game_never_meets_a_limit_of_20_requests_per_2_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture,
) -> None:
    """Issue 8, item 15: `gamebridge demo`'s Battleship game, as it is configured, on a sandbox whose rate limit
    is on at 20 requests per 2 s: played to its end without a single 429."""
    import bridge.adapters.opengames.sandbox as sandbox_module
    from bridge.adapters.opengames.demo import BS_KEY_ENV, run_battleship_demo

    made: list[OpenGamesSandbox] = []

    class Limited(OpenGamesSandbox):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "rate_limit": 10.0})
            made.append(self)

    monkeypatch.setattr(sandbox_module, "OpenGamesSandbox", Limited)
    monkeypatch.setenv(BS_KEY_ENV, "")  # the demo sets it; restored after the test
    out = io.StringIO()
    assert run_battleship_demo(data_dir=tmp_path / "demo", out=out, timeout=240) == 0, out.getvalue()
    [sandbox] = made
    assert sandbox.limiter.limit == 20 and sandbox.limiter.refused == 0
    assert "result:" in out.getvalue() and "HTTP 429" not in logs.text


@pytest.mark.e2e
def test_the_demo_never_draws_a_turn_with_a_later_shot_on_the_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen in CI's demo output: "turn 3: hunt-target shoots C3: miss" was drawn with the bridge's turn-4 miss
    already on hunt-target's grid: the demo drew the grids as they were when it looked, once for each turn that had
    come since, and the house answers within 50 ms. Looking only once a second (several turns a look), no grid may
    show a miss of a later turn, and a grid drawn after a miss of ours shows it."""
    from bridge.adapters.opengames.demo import BS_KEY_ENV, run_battleship_demo

    monkeypatch.setenv(BS_KEY_ENV, "")  # the demo sets it; restored after the test
    out = io.StringIO()
    assert run_battleship_demo(data_dir=tmp_path / "demo", out=out, timeout=240, poll=1.0) == 0, out.getvalue()
    lines = out.getvalue().splitlines()
    shots: list[tuple[int, str, str]] = []  # the bridge's: (turn, coordinate, result)
    grids: dict[int, dict[str, str]] = {}  # turn -> hunt-target's grid drawn after it: row letter -> row
    turn = 0
    for i, line in enumerate(lines):
        m = re.match(r"turn (\d+): (\S+) (shoots|moves) ?([A-J]\d+)?:? ?(\w+)?", line)
        if m:
            turn = int(m[1])
            if m[2] == "bridge" and m[3] == "shoots":
                shots.append((turn, m[4], m[5]))
        elif line.startswith("the bridge's fleet"):
            col = line.index("hunt-target's fleet")
            grids[turn] = {row[col]: row[col:] for row in lines[i + 2:i + 12]}
    assert shots and grids and any(r == "miss" for _, _, r in shots), out.getvalue()[-3000:]
    for t, grid in grids.items():
        before = {c for tt, c, _ in shots if tt <= t}
        for tt, c, result in shots:
            cell = grid[c[0]][2 * int(c[1:])]
            if tt > t and result == "miss" and c not in before:
                assert cell in ".#", f"the grid drawn after turn {t} shows turn {tt}'s miss at {c}"
            if tt == t and result == "miss":
                assert cell == "o", f"the grid drawn after turn {t} lacks that turn's miss at {c}"


def test_an_invalid_engine_action_is_replaced_by_a_fallback_shot(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, flaky: Callable[..., list[str]],
) -> None:
    """The engine answers 'Z99' at its 3rd genmove: one WARNING line says so, the fallback shot is sent with a
    reasoning that says why, and the game is played to its end with the same engine."""
    new_agent(og, "sloppy", monkeypatch)
    og.add_house("random", moves=False)
    engine = flaky("--do", "Z99", "--at", "3")
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "sloppy", engine=engine))
    [result] = bridge.wait()
    assert result.error is None and result.fallbacks == 1 and result.rejected == 0
    warnings = [r.getMessage() for r in logs.records if r.levelno >= logging.WARNING and r.name.startswith("bridge")]
    assert len(warnings) == 1 and "'Z99'" in warnings[0] and "fallback shot" in warnings[0]
    ours = our_turns(dataset(og, result.game_id), "sloppy")
    fallback = [t for t in ours if t["reasoning"].startswith("Fallback")]
    assert len(fallback) == 1 and "the engine's answer was not usable" in fallback[0]["reasoning"]
    assert str(ROOT) not in fallback[0]["reasoning"]  # the public reasoning shows no paths


def test_a_crashed_engine_is_restarted_mid_game(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, flaky: Callable[..., list[str]],
) -> None:
    """The engine dies at its 4th genmove: it is restarted, told the game so far, and answers the same turn;
    one WARNING line, no fallback, the game goes on to its end."""
    new_agent(og, "crashy", monkeypatch)
    og.add_house("hunt-target", moves=True)
    engine = flaky("--do", "crash", "--at", "4")
    bridge = run_bridge(config_text(og.url, tmp_path / "runs", "crashy", engine=engine))
    [result] = bridge.wait()
    assert result.error is None and result.fallbacks == 0
    warnings = [r.getMessage() for r in logs.records if r.levelno >= logging.WARNING and r.name.startswith("bridge")]
    assert len(warnings) == 1 and "exited with code 3" in warnings[0] and "it is restarted" in warnings[0]
    transcript = (tmp_path / "runs" / "transcripts" / f"opengames-{result.game_id}.log").read_text()
    assert "flaky: crashing on purpose" in transcript and "engine restarted (1 of 3 restart(s))" in transcript


def test_a_hung_engine_still_answers_before_the_turn_expires(
    run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, flaky: Callable[..., list[str]],
) -> None:
    """A 6 s turn limit, a 3 s margin, and an engine that hangs at its 2nd genmove: after 2.25 s (its share:
    half of the 4.5 s before the action must leave) the bridge gives up on it and sends the fallback shot, in
    time; the game ends with all ships sunk, not by a
    timeout."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, rate_limit=None, seed=2,
                          turn_timeout=6.0) as og:
        new_agent(og, "sleepy", monkeypatch)
        og.add_house("random", moves=False)
        bridge = run_bridge(config_text(og.url, tmp_path / "runs", "sleepy", server="  turn_margin: 3\n",
                                        engine=flaky("--do", "hang", "--at", "2")))
        [result] = bridge.wait(90)
        record = dataset(og, result.game_id)
    assert record["result"]["reason"] == "all_ships_sunk"
    assert result.error is None and result.fallbacks == 1
    warnings = [r.getMessage() for r in logs.records if r.levelno >= logging.WARNING and r.name.startswith("bridge")]
    assert len(warnings) == 1 and "did not answer '" in warnings[0], warnings
    # the engine's share is half of what is left before the action must leave: 2.25 s ("2.2") on an idle
    # machine, a little less when the turn reached the bridge late (a busy machine); more would miss the turn
    waited = re.search(r"within (\d+\.\d) s", warnings[0])
    assert waited is not None and 1.0 <= float(waited.group(1)) <= 2.3, warnings[0]
    assert "sending the fallback shot" in warnings[0]


def test_an_expired_turn_ends_the_game_with_one_clear_message(
    run_bridge: Callable[[str], Bridge], tmp_path: Path, logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, flaky: Callable[..., list[str]],
) -> None:
    """The turn expires on the server while the engine hangs (the sandbox's control API ends it at once; the
    bridge itself keeps time even with turn_margin 0): the fallback shot that follows is refused, the bridge
    says once that the turn ended without an action of ours, sees the game over (lost by timeout), writes the
    record and stops: nothing hangs."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, rate_limit=None, seed=3,
                          turn_timeout=8.0) as og:
        new_agent(og, "late", monkeypatch)
        og.add_house("random", moves=False)
        bridge = run_bridge(config_text(og.url, tmp_path / "runs", "late", server="  turn_margin: 3\n",
                                        engine=flaky("--do", "hang", "--at", "2")))
        game_id = wait_for_game(og)
        counter = tmp_path / "genmoves"
        deadline = time.monotonic() + 30
        while not (counter.exists() and counter.read_text() == "2"):  # the engine hangs in its 2nd genmove
            assert time.monotonic() < deadline
            time.sleep(0.02)
        og.force_timeout(game_id)
        [result] = bridge.wait(60)
        record = dataset(og, result.game_id)
    assert record["result"]["reason"] == "timeout" and result.outcome == "lost"
    assert result.error is None and result.record is not None and result.record.exists()
    warnings = [r.getMessage() for r in logs.records if r.levelno >= logging.WARNING and "bridge.opengames"
                in r.name and "sandbox" not in r.name]
    assert len(warnings) == 1 and "the turn ended before an action of ours was carried out" in warnings[0]


@pytest.mark.e2e
def test_a_refused_key_stops_the_daemon_with_one_clear_line(
    og: OpenGamesSandbox, tmp_path: Path, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A well-formed key the platform does not know: one ERROR line naming server.api_key; the daemon stops
    and reports failure; the key is not in the log."""
    wrong = "og_" + "ab" * 32
    monkeypatch.setenv("OG_KEY_NOBODY", wrong)
    daemon = Daemon(load_config_text(config_text(og.url, tmp_path / "runs", "nobody"), "t.yaml"))
    daemon.start()
    assert daemon.stop_event.wait(10)
    daemon.shutdown()
    assert daemon.failed
    errors = [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR]
    assert any("HTTP 401" in e and "server.api_key" in e for e in errors)
    assert wrong not in logs.text


def test_a_malformed_key_is_refused_without_showing_it(
    og: OpenGamesSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OG_KEY_SHAPELESS", "og_secretsecret")
    config = load_config_text(config_text(og.url, tmp_path / "runs", "shapeless"), "t.yaml")
    adapter = OpenGamesAdapter(config.server, config)
    [line] = adapter.check()
    assert not line.ok and "it has 15 characters, not 67" in line.what and "secretsecret" not in line.what
    with pytest.raises(ConfigError, match="not an Open Games API key") as err:
        config.server.resolve_key()
    assert "secretsecret" not in str(err.value)


@pytest.mark.e2e
def test_a_go_engine_is_refused_before_any_game(
    og: OpenGamesSandbox, tmp_path: Path, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """engine.protocol gtp for Battleship: one ERROR line saying what to set, before the agent even joins the
    queue (no game is matched only to be forfeited)."""
    new_agent(og, "gobot", monkeypatch)
    text = config_text(og.url, tmp_path / "runs", "gobot").replace("protocol: line", "protocol: gtp")
    config = load_config_text(text, "t.yaml")
    [line] = OpenGamesAdapter(config.server, config).check()
    assert not line.ok and "set engine.protocol: line" in line.what
    daemon = Daemon(config)
    daemon.start()
    assert daemon.stop_event.wait(10)
    daemon.shutdown()
    assert daemon.failed
    errors = [r.getMessage() for r in logs.records
              if r.levelno >= logging.ERROR and r.name == "bridge.opengames"]
    assert len(errors) == 1 and "engine.protocol is 'gtp'" in errors[0]
    assert requests.get(f"{og.api_url}/matchmaking/queue-info", timeout=5).json()["queue_size"] == 0


def test_check_reports_reachable_key_and_agent_name(
    og: OpenGamesSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = new_agent(og, "checked", monkeypatch)
    config = load_config_text(config_text(og.url, tmp_path / "runs", "checked"), "t.yaml")
    lines = OpenGamesAdapter(config.server, config).check()
    assert [line.ok for line in lines] == [True, True]
    assert "reachable" in lines[0].what and f"agent checked ({agent['agent_id']})" in lines[1].what
    monkeypatch.setenv("OG_KEY_SOMEONE", agent["api_key"])
    config = load_config_text(config_text(og.url, tmp_path / "runs", "someone"), "t.yaml")
    lines = OpenGamesAdapter(config.server, config).check()
    assert not lines[-1].ok and "fix server.agent" in lines[-1].what
    unreachable = config_text("http://127.0.0.1:9", tmp_path / "runs", "checked",
                              server="  request_timeout: 2\n")
    config = load_config_text(unreachable, "t.yaml")
    [line] = OpenGamesAdapter(config.server, config).check()
    assert not line.ok and line.what.startswith("cannot reach Open Games at http://127.0.0.1:9")


def test_a_restarted_daemon_resumes_its_game(
    run_bridge: Callable[[str], Bridge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon stops in the middle of a game; a new one finds the game through the matchmaking status,
    tells a fresh engine everything the state shows, and plays the game to its end."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.03, rate_limit=None, seed=4) as og:
        new_agent(og, "phoenix", monkeypatch)
        og.add_house("hunt-target", moves=False)
        text = config_text(og.url, tmp_path / "runs", "phoenix")
        first = run_bridge(text)
        deadline = time.monotonic() + 20
        while not og.games() or og.games()[0].get("turn", 0) < 12:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.close()
        [interrupted] = first.adapter.results
        assert interrupted.error == "the daemon stopped during the game"
        second = run_bridge(text)
        [resumed] = second.wait(60)
        record = dataset(og, resumed.game_id)
    assert resumed.game_id == interrupted.game_id and resumed.error is None
    assert record["result"]["reason"] == "all_ships_sunk"
    assert resumed.turns + interrupted.turns == len(our_turns(record, "phoenix"))
    assert resumed.fallbacks == 0


def _await_turn(og: OpenGamesSandbox, turn: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The id of the sandbox's game once it has reached ``turn`` (the bridge process still running)."""
    deadline = time.monotonic() + timeout
    while True:
        games = og.games()
        if games and games[0].get("turn", 0) >= turn:
            return str(games[0]["game_id"])
        assert proc.poll() is None, f"the bridge exited early ({proc.returncode})"
        assert time.monotonic() < deadline, f"the game did not reach turn {turn}"
        time.sleep(0.05)


@pytest.mark.e2e
@pytest.mark.parametrize(("sig", "forget"), [(signal.SIGKILL, True), (signal.SIGKILL, False),
                                             (signal.SIGTERM, True)],
                         ids=["sigkill-status-forgets", "sigkill", "sigterm-status-forgets"])
def test_a_restarted_daemon_process_finishes_its_game_without_losing_a_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, forget: bool,
) -> None:
    """Issue 8, item 11 on Open Games: `gamebridge run` (a real process, the reference engine) plays a house agent
    with a 30 s turn limit; in the middle of the game it is killed (SIGKILL), or stopped (SIGTERM: it stops at a
    turn boundary, exit 0, and says the game stays resumable). A new process finds the game -- also when the
    platform's matchmaking status no longer names it (``forget_match_on_join``): the game it was playing is
    kept under daemon.data_dir -- tells a fresh engine the game from the state, and plays it to its end: all
    ships sunk, one action per turn, no turn near its limit. The first engine did not outlive its daemon."""
    with OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.05, seed=9, turn_timeout=30.0,
                          forget_match_on_join=forget) as og:
        agent = og.add_agent("lazarus")
        og.add_house("hunt-target", moves=True)
        data = tmp_path / "runs"
        cfg = tmp_path / "lazarus.yaml"
        cfg.write_text(config_text(og.url, data, "lazarus") + "  log_level: DEBUG\n")
        env = {**os.environ, "OG_KEY_LAZARUS": agent["api_key"]}
        cmd = [sys.executable, "-m", "bridge.cli", "run", str(cfg)]
        with open(tmp_path / "first.log", "wb") as log1:
            first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log1, stderr=subprocess.STDOUT)
            try:
                game_id = _await_turn(og, 14, first)
                first.send_signal(sig)
                code = first.wait(30)
            finally:
                if first.poll() is None:
                    first.kill()
                    first.wait(10)
        first_log = (tmp_path / "first.log").read_text()
        if sig == signal.SIGTERM:
            assert code == 0, first_log
            assert "left unfinished at a turn boundary" in first_log and "resumes it" in first_log, first_log
        cut = og.game(game_id)["turn"]
        with open(tmp_path / "second.log", "wb") as log2:
            second = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log2, stderr=subprocess.STDOUT, timeout=150)
        second_log = (tmp_path / "second.log").read_text()
        truth = og.game(game_id)
    assert second.returncode == 0, second_log
    assert truth["end_reason"] == "all_ships_sunk", second_log
    players = [t["player"] for t in truth["turns"]]
    assert len(players) > 1 and all(p != q for p, q in itertools.pairwise(players))  # one action a turn, none forfeited
    assert truth["turn"] > cut + 2
    assert max(truth["turn_seconds"]) < 15.0, truth["turn_seconds"]  # the restart's turn, well inside 30 s
    assert f"game {game_id}" in second_log and "Traceback" not in first_log + second_log
    assert agent["api_key"] not in first_log + second_log
    record = data / "records" / f"opengames-{game_id}.json"
    assert json.loads(record.read_text())["game_id"] == game_id
    pids = [int(x) for x in re.findall(r"started pid (\d+): ", first_log)]
    assert pids, first_log
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids):  # an orphaned engine sees its stdin close and exits
        assert time.monotonic() < deadline, f"engine processes {pids} outlived the daemon"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


# --- the receiver and `gamebridge register` ---------------------------------------------------------------
def test_the_webhook_receiver_checks_tokens_sizes_and_turns(logs: pytest.LogCaptureFixture) -> None:
    receiver = WebhookReceiver("127.0.0.1", 0, TOKEN, max_body=2048).start()
    try:
        url = receiver.url

        def post(body: Any, **kw: Any) -> int:
            return requests.post(url, json=body, timeout=5, **kw).status_code

        assert post({"event": "your_turn", "game_id": "g", "turn": 3, "token": TOKEN}) == 200
        assert post({"event": "your_turn", "game_id": "g", "turn": 3, "token": TOKEN}) == 200  # repeated
        assert post({"event": "your_turn", "game_id": "g", "turn": 3, "token": TOKEN[:-1]}) == 401
        assert post({"event": "your_turn", "game_id": "g", "turn": 5}) == 401
        assert requests.post(url, data=b"{" * 5000, timeout=5).status_code == 413
        assert requests.post(url, data=b"not json", timeout=5).status_code == 400
        assert requests.get(url, timeout=5).status_code == 405
        first = receiver.wait_for(lambda e: e.game_id == "g", 1.0)
        assert first is not None and first.turn == 3 and "token" not in first.data
        assert receiver.wait_for(lambda e: e.game_id == "g", 0.2) is None  # the repeat was dropped
        receiver.played("g", 7)
        assert post({"event": "your_turn", "game_id": "g", "turn": 7, "token": TOKEN}) == 200  # late: dropped
        assert post({"event": "game_over", "game_id": "g", "you_won": True, "token": TOKEN}) == 200
        over = receiver.wait_for(lambda e: e.game_id == "g", 1.0)
        assert over is not None and over.event == "game_over"
        assert receiver.stats["late_your_turn"] == 2 and receiver.stats["unauthorized"] == 2
        assert receiver.stats["too_large"] == 1
    finally:
        receiver.stop()
    assert TOKEN not in logs.text


@pytest.mark.e2e
def test_bridge_register_stores_the_key_with_mode_600(og: OpenGamesSandbox, tmp_path: Path) -> None:
    """`gamebridge register opengames` as a user runs it: the key lands in a mode-600 file, the output says where
    and never shows the key, the key works, and an existing file is never overwritten."""
    key_file = tmp_path / "keys" / "reg.key"
    cmd = [sys.executable, "-m", "bridge.cli", "register", "opengames", "--name", "regbot", "--url", og.url,
           "--key-file", str(key_file)]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key.startswith("og_") and len(key) == 67
    assert str(key_file) in p.stdout and key not in p.stdout + p.stderr
    me = requests.get(f"{og.api_url}/agents/me", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert me.status_code == 200 and me.json()["name"] == "regbot"
    again = subprocess.run([*cmd[:6], "other", *cmd[7:]], capture_output=True, text=True, timeout=60, env=env)
    assert again.returncode == 2 and "already exists" in again.stderr and key_file.read_text().strip() == key
    taken = subprocess.run(cmd[:9], capture_output=True, text=True, timeout=60, env=env)
    assert taken.returncode == 2 and "the name 'regbot' is taken" in taken.stderr
    fresh = subprocess.run([*cmd[:6], "regbot2", *cmd[7:9]], capture_output=True, text=True, timeout=60,
                           env=env)
    stored = tmp_path / "home" / ".config" / "bridge" / "opengames-regbot2.key"
    assert fresh.returncode == 0, fresh.stderr
    assert stored.exists() and stat.S_IMODE(stored.stat().st_mode) == 0o600 and str(stored) in fresh.stdout


@pytest.mark.e2e
def test_register_retries_server_errors_and_reports_a_lost_key(og: OpenGamesSandbox, tmp_path: Path) -> None:
    """Issue 8, item 14. Two 500s before the agent is created: `register` learns from the platform that no
    agent of that name exists, tries again and stores the key. A 500 after the agent was created (the key
    lost with the answer): one clear message that the agent exists, that the platform shows a key only once
    and has no call to show or replace it, and the command to run; no file is left behind, no traceback."""
    env = {**os.environ, "HOME": str(tmp_path / "home")}

    def register(name: str, key_file: Path) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "bridge.cli", "register", "opengames", "--name", name, "--url", og.url,
               "--key-file", str(key_file)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env)

    og.fail_next(match="POST /api/v1/agents/register", count=2, status=500)
    first = register("retrier", tmp_path / "retrier.key")
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "retrier.key").read_text().strip()
    me = requests.get(f"{og.api_url}/agents/me", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert me.status_code == 200 and me.json()["name"] == "retrier"
    assert key not in first.stdout + first.stderr

    og.fail_next(match="POST /api/v1/agents/register", count=1, status=500, after=True)
    lost = register("unlucky", tmp_path / "unlucky.key")
    assert lost.returncode != 0 and "Traceback" not in lost.stderr
    [line] = [x for x in lost.stderr.splitlines() if x.strip()]
    unlucky = next(a for a in requests.get(f"{og.api_url}/agents", timeout=5).json() if a["name"] == "unlucky")
    assert "agent 'unlucky' was created" in line and unlucky["id"] in line
    assert "shows an API key only once" in line and "gamebridge register opengames --name" in line
    assert not (tmp_path / "unlucky.key").exists()

    taken = register("unlucky", tmp_path / "again.key")
    assert taken.returncode != 0 and "Traceback" not in taken.stderr
    assert "the name 'unlucky' is taken" in taken.stderr and "--name" in taken.stderr


SCHEMA = ROOT / "adapters" / "opengames" / "sandbox" / "dataset_record.schema.json"


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_two_bridges_in_one_mode_play_a_whole_game_and_the_record_validates(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    """Two bridges with the reference engine, both by polling or both by webhooks, play each other to the end; the
    game's dataset record validates against the seed's record schema, and each bridge kept that record."""
    import jsonschema

    new_agent(og, f"left{mode}", monkeypatch)
    new_agent(og, f"right{mode}", monkeypatch)
    a = run_bridge(config_text(og.url, tmp_path / "a", f"left{mode}", mode=mode))
    b = run_bridge(config_text(og.url, tmp_path / "b", f"right{mode}", mode=mode,
                               engine=[sys.executable, str(ENGINE), "--seed", "7"]))
    [ra] = a.wait(90)
    [rb] = b.wait(90)
    assert ra.game_id == rb.game_id and {ra.outcome, rb.outcome} == {"won", "lost"}
    assert ra.error is None and rb.error is None and ra.fallbacks == rb.fallbacks == 0
    record = dataset(og, ra.game_id)
    jsonschema.validate(record, json.loads(SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())
    assert record["game_type"] == "battleship" and record["total_turns"] == len(record["turns"]) > 0
    for result in (ra, rb):
        assert result.record is not None and json.loads(result.record.read_text()) == record


def test_seek_governs_when_the_agent_queues_pause_and_stop_after(
    og: OpenGamesSandbox, run_bridge: Callable[[str], Bridge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11, item 4: the seek vocabulary on Open Games, where the platform picks the opponent. seek.pause
    keeps the agent out of the queue for that long after a game; after seek.stop_after games it joins no more
    (the daemon stays up, unlike server.games)."""
    from bridge.adapters.opengames.api import OpenGamesApi

    new_agent(og, "seeker", monkeypatch)
    for _ in range(3):
        og.add_house("hunt-target", moves=True)
    joins: list[float] = []
    ends: list[float] = []
    join = OpenGamesApi.mm_join

    def timed_join(self: OpenGamesApi) -> Any:
        joins.append(time.monotonic())
        return join(self)

    monkeypatch.setattr(OpenGamesApi, "mm_join", timed_join)
    text = config_text(og.url, tmp_path / "runs", "seeker").replace(
        "  games: 1\n", "  games: 0\n  seek: {stop_after: 2, pause: 1.5, every: 1}\n")
    bridge = run_bridge(text)
    seeker = bridge.adapter.seeker
    assert seeker is not None
    ended = seeker.ended

    def timed_end(game: str) -> None:
        ends.append(time.monotonic())
        ended(game)

    monkeypatch.setattr(seeker, "ended", timed_end)
    deadline = time.monotonic() + 60
    while len(bridge.adapter.results) < 2:
        assert time.monotonic() < deadline, "two games were not played"
        time.sleep(0.05)
    time.sleep(2.5)  # longer than pause and every: a third join would have happened by now
    assert not bridge.daemon.stop_event.is_set()  # seek.stop_after stops the seeking, not the daemon
    bridge.close()
    assert len(joins) == 2 and bridge.adapter.stats["queue_joins"] == 2, joins
    assert joins[1] - ends[0] >= 1.5 - 0.05, (joins, ends)
    assert seeker.done and len(bridge.adapter.results) == 2


# --- reload (SIGHUP) --------------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_a_reload_applies_the_polling_rate_retry_and_game_count_keys_live(
    og: OpenGamesSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP (Daemon.reload) with changed server.poll_interval, max_request_rate, retry delays, messages and games:
    applied without a restart (the agent plays the second game the new games: 2 asks for, with the new request
    rate and retry policy); server.agent still names a restart."""
    new_agent(og, "reloader", monkeypatch)
    for _ in range(2):
        og.add_house("hunt-target", moves=True)
    path = tmp_path / "bot.yaml"
    text = config_text(og.url, tmp_path / "runs", "reloader")
    path.write_text(text)
    config = load_config_text(text, str(path))
    daemon = Daemon(config, config_path=path)
    caplog.set_level(logging.INFO, logger="bridge")
    try:
        path.write_text(text.replace("games: 1", "games: 2").replace("max_request_rate: 200", "max_request_rate: 150")
                        .replace("retry_min_delay: 0.05", "retry_min_delay: 0.1")
                        .replace("poll_interval: 0.1", "poll_interval: 0.12"))
        assert daemon.reload()
        adapter = daemon.adapter
        assert isinstance(adapter, OpenGamesAdapter)
        assert adapter.server.games == 2 and adapter.server.poll_interval == 0.12
        assert adapter.pacer.limit == 300 and adapter.retry.min_delay == 0.1  # 150 a second over its 2 s window
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("configuration reloaded"))
        assert "needs a restart" not in line, line
        daemon.start()
        assert daemon.stop_event.wait(60), "the agent did not stop after the two games the reload asked for"
        assert len(adapter.results) == 2 and all(r.error is None for r in adapter.results)
        path.write_text(text.replace("agent: reloader", "agent: other"))
        caplog.clear()
        assert daemon.reload()
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("configuration reloaded"))
        assert "needs a restart" in line and "server.agent" in line, line
    finally:
        daemon.shutdown()
