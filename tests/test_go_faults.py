"""Go faults that must never lose a game (issue 8, items 1, 3, 4, 6, 7): hung engines on a real clock, engines that
cannot start, secrets outside the logs, shutdown with hung engines, transcript caps.

Real parts throughout: engine processes (GNU Go, the scripted fakes), the OGS sandbox over real sockets; only the
session tests use a recording stand-in for the adapter's actions."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import api, wait_finished, wait_for

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.config import EngineConfig, load_config_text
from bridge.daemon import Daemon
from bridge.engines.gtp import GtpEngine
from bridge.engines.process import EngineProcess
from bridge.events import Host
from bridge.games.go_events import StateUpdate
from bridge.games.gotypes import GoResult, GoSettings, GoState, Move, Point
from bridge.redact import register_secret
from bridge.session import GameSession, SlotPool
from bridge.transcript import Transcript

GNUGO = "/usr/games/gnugo"
SLOW_GTP = Path(__file__).parent / "fakes" / "slow_gtp.py"
SHORT_GAME = ["cc", "gg", "cg", "gc", "ee", "resign"]
# 20 s + 5 s: long enough that the hang limit is the clock less the retry's reserve (not half the clock), short
# enough that a hung genmove is declared after ~12 s, not ~23 s
FISCHER_20_5 = {"system": "fischer", "time_control": "fischer", "speed": "live", "initial_time": 20,
                "time_increment": 5, "max_time": 40, "pause_on_weekends": False}


# --- helpers ----------------------------------------------------------------------------------------------------
def _config_text(data_dir: Path, engine: list[str], *, url: str = "http://127.0.0.1:9", username: str = "bot",
                 key_env: str = "UNUSED_KEY", go: str = "{}", engine_extra: str = "", daemon_extra: str = "",
                 max_games: int = 2) -> str:
    return f"""
server:
  kind: ogs
  url: {url}
  username: {username}
  api_key: {{env: {key_env}}}
  reconnect_min_delay: 0.2
  reconnect_max_delay: 1.0
  ping_interval: 2
engine:
  command: {json.dumps(engine)}
  quit_grace: 1
{engine_extra}
go: {go}
daemon:
  data_dir: {data_dir}
  max_concurrent_games: {max_games}
{daemon_extra}
"""


def challenge(sandbox: SandboxServer, target: str, challenger: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """helpers.challenge on the fischer 20 s + 5 s clock of these tests."""
    settings.setdefault("time_control", FISCHER_20_5)
    return helpers.challenge(sandbox, target, challenger, **settings)


def challenge_state(sandbox: SandboxServer, cid: int) -> dict[str, Any]:
    result: dict[str, Any] = api(sandbox, "GET", f"/sandbox/challenges/{cid}")
    return result


BotFactory = Callable[..., tuple[Daemon, str]]


@pytest.fixture
def make_bot(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BotFactory]:
    """A daemon playing on the sandbox as a fresh bot; returns (daemon, its API key)."""
    daemons: list[Daemon] = []

    def make(username: str, engine: list[str], **kw: Any) -> tuple[Daemon, str]:
        key = secrets.token_hex(12)
        sandbox.add_bot(username, key)
        env = f"TEST_KEY_{username.upper().replace('-', '_')}"
        monkeypatch.setenv(env, key)
        config = load_config_text(_config_text(tmp_path / username, engine, url=sandbox.url, username=username,
                                               key_env=env, **kw), f"<{username}>")
        d = Daemon(config)
        daemons.append(d)
        d.start()
        return d, key

    yield make
    for d in daemons:
        d.shutdown()


class RecordingActions:
    """What a session asked the server to do (the session tests' stand-in for an adapter)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _add(self, what: str, arg: Any = None) -> None:
        with self.lock:
            self.calls.append((what, arg))

    def play(self, move: Move) -> None:
        self._add("play", move)

    def resign(self) -> None:
        self._add("resign")

    def cancel(self) -> None:
        self._add("cancel")

    def set_removal(self, stones: Any, removed: bool) -> None:
        self._add("set_removal", (stones, removed))

    def accept_removal(self, stones: frozenset[Point]) -> None:
        self._add("accept_removal", stones)

    def answer_undo(self, accept: bool, move_number: int) -> None:
        self._add("answer_undo", (accept, move_number))

    def chat(self, body: str, channel: str = "main") -> None:
        self._add("chat", (body, channel))

    def kinds(self) -> list[str]:
        with self.lock:
            return [k for k, _ in self.calls]


def _state(moves: tuple[Move, ...] = (), **kw: Any) -> GoState:
    settings = GoSettings(width=9, height=9, komi=6.5, rules="japanese", my_color="black")
    return GoState("g1", settings, moves, to_move="black" if len(moves) % 2 == 0 else "white", **kw)


def _transcript_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


# --- item 1: a hung engine on a fischer 20 s + 5 s clock ----------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.alone  # hang limits on a real clock
def test_hung_engine_on_fischer_clock_restarts_and_moves_inside_the_clock(
        sandbox: SandboxServer, make_bot: BotFactory, tmp_path: Path) -> None:
    """The engine never answers its first genmove (default move_margin). The bridge gives up on it while there is
    still time on the clock, restarts it, replays and moves: the game is not lost on time, the SGF is written, and
    the game's slot is free for the next challenge (max_concurrent_games: 1)."""
    marker = tmp_path / "hung-once"
    engine = [sys.executable, str(SLOW_GTP), "--delay", "0", "--hang-once", str(marker), "--",
              GNUGO, "--mode", "gtp", "--level", "1"]
    bot, _ = make_bot("hang-bot", engine, max_games=1)
    c = challenge(sandbox, "hang-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"], 90)
    assert marker.exists(), "the engine hung on its first genmove"
    assert game["outcome"] != "Timeout", f"lost on time: {game['score']} {game['outcome']}"
    assert game["score"] == "B+R", game["score"]
    record = Path(bot.config.daemon.data_dir) / "records" / f"ogs-{c['game_id']}.sgf"
    wait_for(record.exists, 20, "the SGF record")
    wait_for(lambda: bot.active_games() == 0, 20, "the session to end and free its slot")
    nxt = challenge(sandbox, "hang-bot", {"house": "scripted", "moves": ["resign"]}, challenger_color="white")
    wait_for(lambda: challenge_state(sandbox, nxt["challenge_id"])["state"] != "pending", 30, "the next challenge")
    assert challenge_state(sandbox, nxt["challenge_id"])["state"] == "accepted"


@pytest.mark.e2e
@pytest.mark.alone  # hang limits on a real clock
def test_engine_that_always_hangs_gets_a_fallback_move_then_resigns_with_a_record(
        sandbox: SandboxServer, make_bot: BotFactory, fake_gtp_command: Callable[..., list[str]]) -> None:
    """An engine that never answers genmove (fischer 20 s + 5 s, default margins): when too little time is left to
    restart it and move, the bridge plays a move of its own instead of flagging (not a pass: see
    test_a_hang_with_too_little_time_left_plays_a_fallback_move_not_a_pass); when the restarts are used up it
    resigns. Never lost on time; the SGF is written and the slot freed."""
    bot, _ = make_bot("stuck-bot", fake_gtp_command("--hang-on", "genmove"), max_games=1)
    c = challenge(sandbox, "stuck-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"], 120)
    assert game["outcome"] != "Timeout", f"lost on time: {game['score']} {game['outcome']}"
    assert game["score"] == "W+R", game["score"]
    ours = game["move_strings"][::2]  # the bot is black
    assert ours and ".." not in ours, f"the bridge's own moves, no pass: {game['move_strings']}"
    text = (Path(bot.config.daemon.data_dir) / "transcripts" / f"ogs-{c['game_id']}.log").read_text()
    assert "playing a fallback move instead" in text
    record = Path(bot.config.daemon.data_dir) / "records" / f"ogs-{c['game_id']}.sgf"
    wait_for(record.exists, 20, "the SGF record")
    wait_for(lambda: bot.active_games() == 0, 20, "the session to end and free its slot")


# one 8 s byo-yomi period a move: a hang is declared after 4 s, and what is left cannot carry a restart and MIN_THINK
BYOYOMI_8 = {"system": "byoyomi", "time_control": "byoyomi", "speed": "live", "main_time": 0, "period_time": 8,
             "periods": 1, "pause_on_weekends": False}


@pytest.mark.e2e
@pytest.mark.alone  # hang limits on a real clock
def test_a_hang_with_too_little_time_left_plays_a_fallback_move_not_a_pass(
        sandbox: SandboxServer, make_bot: BotFactory, tmp_path: Path) -> None:
    """Seen in CI's soak (seed 787763532): a hang left too little time to restart the engine and move, so the bridge
    passed; the opponent (a bot that answers a pass with a pass) passed back and the game ended, lost W+6.5 on a
    nearly empty board. With too little time the bridge now plays a move of its own (legal, no own eye filled, no
    self-atari); the restarted engine plays on and the game is won."""
    marker = tmp_path / "hung-once"
    engine = [sys.executable, str(SLOW_GTP), "--delay", "0", "--hang-once", str(marker), "--",
              GNUGO, "--mode", "gtp", "--level", "1"]
    bot, _ = make_bot("fallback-bot", engine, max_games=1)
    c = challenge(sandbox, "fallback-bot", {"house": "random", "seed": 7, "delay": 0.05}, challenger_color="white",
                  time_control=BYOYOMI_8)
    game = wait_finished(sandbox, c["game_id"], 240)
    assert marker.exists(), "the engine hung on its first genmove"
    assert game["outcome"] != "Timeout", f"lost on time: {game['score']} {game['outcome']}"
    assert game["move_strings"][0] != "..", f"the first move was a pass: {game['move_strings'][:4]}"
    assert (game.get("winner") or {}).get("username") == "fallback-bot", (game["score"], game["outcome"],
                                                                          len(game["move_strings"]))
    text = (Path(bot.config.daemon.data_dir) / "transcripts" / f"ogs-{c['game_id']}.log").read_text()
    assert "playing a fallback move" in text, text[-2000:]


def test_result_during_a_hung_genmove_ends_the_session(tmp_path: Path, fake_gtp_command: Callable[..., list[str]],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """The game ends (the opponent resigns) while the engine hangs in genmove: the session finishes at once with
    its record; the stale in-play snapshot never revives the game (no move, no restart, no engine failure)."""
    config = load_config_text(_config_text(tmp_path, fake_gtp_command("--hang-on", "genmove"),
                                           engine_extra="  max_move_time: 60"))
    actions = RecordingActions()
    session = GameSession("g1", "black", actions, config, server="test", slots=SlotPool(1))
    session.start()
    try:
        session.post(StateUpdate(_state()))
        wait_for(lambda: _transcript_has(session.transcript_path, " genmove b"), 20, "the genmove to be sent")
        caplog.clear()
        session.post(StateUpdate(_state(phase="finished", result=GoResult("black", "Resignation", "B+R"))))
        wait_for(lambda: session.finished, 10, "the session to finish")
        session.join(10)
        assert not session.is_alive()
        assert "play" not in actions.kinds(), actions.calls
        assert session.record_path.exists()
        assert not [r for r in caplog.records if "engine fail" in r.getMessage()
                    or "restarting" in r.getMessage()], [r.getMessage() for r in caplog.records]
    finally:
        session.stop()
        session.join(10)


def test_an_engine_restart_is_one_warning_in_the_log_and_one_note_in_the_transcript(
        tmp_path: Path, fake_gtp_command: Callable[..., list[str]], caplog: pytest.LogCaptureFixture) -> None:
    """Seen in a soak's journal: one engine crash made two WARNING lines that said the same thing (the game loop's
    "the engine failed: ...; restarting it and replaying the game (1 of 3 restart(s))" and the player's "restarting
    the engine (...), restart 1 of 3"), and two notes in the transcript. An operator reading the journal counts
    faults by its lines: one fault, one line."""
    config = load_config_text(_config_text(tmp_path, fake_gtp_command(
        "--crash-on", "genmove", "--once-file", str(tmp_path / "crashed"))))
    actions = RecordingActions()
    session = GameSession("g1", "black", actions, config, server="test", slots=SlotPool(1))
    caplog.set_level(logging.WARNING, logger="bridge")
    session.start()
    try:
        session.post(StateUpdate(_state()))
        wait_for(lambda: "play" in actions.kinds(), 20, "the move after the restart")
        assert (tmp_path / "crashed").exists()
        restarts = [r.getMessage() for r in caplog.records
                    if r.levelno >= logging.WARNING and "restarting" in r.getMessage()]
        assert len(restarts) == 1, restarts
        assert "the engine failed" in restarts[0] and "(1 of 3 restart(s))" in restarts[0], restarts
        text = session.transcript_path.read_text()
        assert text.count("restarting") == 1, [line for line in text.splitlines() if "restarting" in line]
    finally:
        session.stop()
        session.join(10)


# --- item 3: an engine that exits at once ------------------------------------------------------------------------
@pytest.mark.e2e
def test_engine_that_cannot_start_declines_challenges_then_recovers(
        sandbox: SandboxServer, make_bot: BotFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The engine exits at once (missing weights): no challenge is accepted and resigned; each is declined with a
    reason, the start is retried with backoff, and once the engine can start the bot plays again."""
    fixed = tmp_path / "weights-installed"
    starts = tmp_path / "starts.log"
    script = tmp_path / "engine.sh"
    script.write_text(f"#!/bin/sh\necho start >> {starts}\nif [ -e {fixed} ]; then exec {GNUGO} --mode gtp "
                      f"--level 1; fi\necho 'error: cannot load weights file /nope.bin.gz' >&2\nexit 1\n")
    os.chmod(script, 0o755)
    caplog.set_level(logging.INFO)
    make_bot("broken-bot", [str(script)])
    cids = [challenge(sandbox, "broken-bot", {"house": "scripted", "moves": SHORT_GAME})["challenge_id"]
            for _ in range(3)]
    for cid in cids:
        def answered(cid: int = cid) -> bool:
            return bool(challenge_state(sandbox, cid)["state"] != "pending")

        wait_for(answered, 30, f"challenge {cid}")
        info = challenge_state(sandbox, cid)
        assert info["state"] == "rejected", info
        assert "engine" in (info["message"] or "").lower(), info
    # no game started: none was accepted (an accepted-then-resigned game would be listed, finished)
    assert api(sandbox, "GET", "/sandbox/games") == [], api(sandbox, "GET", "/sandbox/games")
    lines = [r.getMessage() for r in caplog.records if "cannot load weights" in r.getMessage()]
    assert lines, "the engine's own words are logged"
    assert starts.read_text().count("start") <= 6, "the start is retried with backoff, not per challenge"
    fixed.touch()
    wait_for(lambda: any("engine" in r.getMessage() and "ready" in r.getMessage() for r in caplog.records), 40,
             "the engine to be found ready")
    ok = challenge(sandbox, "broken-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, ok["game_id"], 60)
    assert game["score"] == "B+R"


@pytest.mark.e2e
def test_game_without_a_move_is_cancelled_not_resigned(sandbox: SandboxServer, make_bot: BotFactory,
                                                       fake_gtp_command: Callable[..., list[str]]) -> None:
    """The engine starts (handshake fine) but dies on every genmove: the game, in which the bot never moved, is
    cancelled (OGS game/cancel), not resigned."""
    make_bot("crash-bot", fake_gtp_command("--crash-on", "genmove"), engine_extra="  max_restarts: 1")
    c = challenge(sandbox, "crash-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"], 60)
    assert game["outcome"] == "Cancellation", (game["outcome"], game["score"])
    assert game["moves"] == []


# --- item 4: secrets outside the logs ----------------------------------------------------------------------------
def test_engine_environment_is_clean(tmp_path: Path, fake_gtp_command: Callable[..., list[str]],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    key = secrets.token_hex(16)
    monkeypatch.setenv("OGS_API_KEY_FOR_TEST", key)
    monkeypatch.setenv("SOME_OTHER_SECRET_TOKEN", "x" * 12)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    register_secret(key)
    dump = tmp_path / "env.json"
    proc = EngineProcess(fake_gtp_command("--env-file", str(dump)), name="envtest", env={"KATAGO_HOME": "/k"})
    proc.start()
    try:
        wait_for(dump.exists, 20, "the engine to write its environment")
        wait_for(lambda: dump.stat().st_size > 0 and dump.read_text().endswith("}"), 10, "the full dump")
    finally:
        proc.stop()
    env = json.loads(dump.read_text())
    assert "OGS_API_KEY_FOR_TEST" not in env
    assert key not in json.dumps(env)
    assert "SOME_OTHER_SECRET_TOKEN" not in env
    assert env["KATAGO_HOME"] == "/k"
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["LC_ALL"] == "C.UTF-8"
    assert env["PATH"] == os.environ["PATH"]
    assert env["GAMEBRIDGE_ENGINE"] == "envtest"  # which game (or pool slot) the process serves


@pytest.mark.e2e
def test_engine_stderr_with_the_key_never_reaches_the_chat(sandbox: SandboxServer, make_bot: BotFactory,
                                                           tmp_path: Path) -> None:
    """An engine prints the bot's API key on stderr with MAIN: forwarding to chat on: the sandbox's chat log never
    holds the key (the forwarded line arrives redacted)."""
    key = secrets.token_hex(12)
    sandbox.add_bot("leaky-bot", key)
    script = tmp_path / "leaky.py"
    script.write_text("import subprocess, sys\n"
                      f"sys.exit(subprocess.call([sys.executable, {str(SLOW_GTP)!r}, '--delay', '0', '--stderr', "
                      f"'MAIN: my key is {key} ok', '--', {GNUGO!r}, '--mode', 'gtp', '--level', '1']))\n")
    os.environ["TEST_KEY_LEAKY_BOT_PRESET"] = key
    try:
        config = load_config_text(_config_text(tmp_path / "leaky", [sys.executable, str(script)], url=sandbox.url,
                                               username="leaky-bot", key_env="TEST_KEY_LEAKY_BOT_PRESET",
                                               go="{stderr_chat: [MAIN]}"))
        d = Daemon(config)
        d.start()
        try:
            c = challenge(sandbox, "leaky-bot", {"house": "scripted", "moves": SHORT_GAME},
                          challenger_color="white")
            game = wait_finished(sandbox, c["game_id"], 60)
        finally:
            d.shutdown()
    finally:
        del os.environ["TEST_KEY_LEAKY_BOT_PRESET"]
    bodies = [json.dumps(line) for line in game["chat"]]
    assert any("my key is" in b for b in bodies), "the stderr line was forwarded"
    assert not [b for b in bodies if key in b], bodies


# --- item 6: shutdown with hung engines --------------------------------------------------------------------------
class _HungGamesAdapter:
    """Opens ``n`` games where it is the bot's turn, then waits for the stop."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sessions: list[Any] = []

    def run(self, host: Host, stop: threading.Event) -> None:
        for i in range(self.n):
            self.sessions.append(host.open_game(f"h{i}", "black", RecordingActions()))
            self.sessions[-1].post(StateUpdate(_state()))
        stop.wait()

    def check(self) -> list[Any]:
        return []


@pytest.mark.e2e
@pytest.mark.alone  # shut down within 5 s
def test_shutdown_with_three_hung_engines_is_parallel_and_quiet(
        tmp_path: Path, fake_gtp_command: Callable[..., list[str]], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    config = load_config_text(_config_text(tmp_path, fake_gtp_command("--hang-on", "genmove", "--ignore-sigterm"),
                                           max_games=3))
    adapter = _HungGamesAdapter(3)
    d = Daemon(config, adapter=adapter)
    d.start()
    transcripts = [tmp_path / "transcripts" / f"ogs-h{i}.log" for i in range(3)]
    wait_for(lambda: all(_transcript_has(p, " genmove b") for p in transcripts), 30, "three hung genmoves")
    pids = [int(line.split("started pid ")[1].split(":")[0]) for p in transcripts
            for line in p.read_text().splitlines() if "started pid " in line]
    assert len(pids) == 3
    caplog.clear()
    started = time.monotonic()
    d.shutdown()
    took = time.monotonic() - started
    # quit_grace 1 s and engines that ignore SIGTERM: one takes ~2 s to stop (quit, 1 s, SIGTERM, 1 s, SIGKILL),
    # so three take ~6 s one after another (on main: 10 s each, the session join timeout), ~2 s in parallel
    assert took < 5.0, f"shutdown took {took:.1f} s"
    stops = [datetime.fromisoformat(line.split()[0]) for p in transcripts for line in p.read_text().splitlines()
             if "## stopped pid" in line]
    assert len(stops) == 3, stops
    assert (max(stops) - min(stops)).total_seconds() < 1.0, f"the engines were stopped one after another: {stops}"
    assert not [s for s in adapter.sessions if s.is_alive()], "every session thread ended"
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], pid
    bad = [r.getMessage() for r in caplog.records
           if "engine fail" in r.getMessage() or "restart" in r.getMessage()]
    assert not bad, bad


# --- item 7: transcript cap -------------------------------------------------------------------------------------
def test_transcript_cap_drops_stderr_first_and_says_so(tmp_path: Path,
                                                       fake_gtp_command: Callable[..., list[str]]) -> None:
    path = tmp_path / "t.log"
    transcript = Transcript(path, max_bytes=200_000)
    engine = GtpEngine.start(fake_gtp_command("--stderr-flood", "2000000"), name="flood", transcript=transcript,
                             startup_timeout=20)
    try:
        assert engine.genmove("black", timeout=30) == "d4"
        engine.command("boardsize", "9")
        transcript.note("after the flood")
    finally:
        engine.close()
        transcript.close()
    text = path.read_text()
    assert path.stat().st_size < 260_000, path.stat().st_size
    assert "<< =" in text and "D4" in text, "the engine's answer is kept"
    assert ">> 6 boardsize 9" in text or "boardsize 9" in text
    assert "after the flood" in text, "bridge notes keep priority"
    assert "transcript cap" in text
    last = [line for line in text.splitlines() if "dropped" in line][-1]
    assert "stderr" in last and "lines" in last and "bytes" in last, last


def test_transcript_cap_keeps_the_bridges_notes_after_the_engines_lines_stop(tmp_path: Path) -> None:
    """A long game (an RBC game of 329 half-turns with Stockfish's output) filled the 10 MB cap with engine lines, and
    the bridge's own notes -- the turn summaries that explain the game's end -- were dropped with them. The engine's
    output and the commands to it stop before the cap (``ENGINE_SHARE``): the notes keep the rest."""
    path = tmp_path / "t.log"
    transcript = Transcript(path, max_bytes=60_000)
    for i in range(2000):  # ~270 KB of engine traffic: four times the cap
        transcript.write(">>", f"position fen rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 {i}", "stockfish")
        transcript.write("<<", "info string NNUE evaluation using nn-ad9b42354671.nnue enabled", "stockfish")
        if i % 100 == 0:
            transcript.note(f"turn {i // 100}: sense c4; move c4d4", "stockfish")
    transcript.note("game over: lost (KING_CAPTURE) after 20 turns", "stockfish")
    transcript.close()
    text = path.read_text()
    assert path.stat().st_size <= 60_000 + 800, path.stat().st_size  # the cap, its three notices and the summary
    notes = [line for line in text.splitlines() if " ## turn " in line]
    assert len(notes) == 20, f"{len(notes)} of 20 turn notes kept"
    assert "game over: lost (KING_CAPTURE) after 20 turns" in text
    assert "engine output is no longer recorded" in text and "commands to the engine is no longer recorded" in text
    assert "bridge notes is no longer recorded" not in text


def test_transcript_cap_from_the_config(tmp_path: Path) -> None:
    config: Any = load_config_text(_config_text(tmp_path, [GNUGO], daemon_extra="  transcript_max_mb: 0.5"))
    assert config.daemon.transcript_max_mb == 0.5
    default: Any = load_config_text(_config_text(tmp_path, [GNUGO]))
    assert default.daemon.transcript_max_mb == 10


@pytest.mark.parametrize("budget", [30.0, 35.0, 12.0, 5.0, 2.0])
def test_hang_limit_is_inside_the_clock(tmp_path: Path, budget: float) -> None:
    """Default config: the engine counts as hung while there is still time to restart it and move."""
    from bridge.games.go import GoPlayer

    with Transcript(None) as t:
        player = GoPlayer(EngineConfig(command=[GNUGO]), name="limit", transcript=t)
        limit = player._timeout(budget)
    assert limit < budget, (budget, limit)
    assert limit >= min(budget / 2, 1.0), (budget, limit)


def test_open_games_reasoning_and_message_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The free-text fields of an Open Games action go through the logs' redaction before they are sent."""
    from bridge.adapters.opengames.api import OpenGamesApi

    key = secrets.token_hex(16)
    api_ = OpenGamesApi("http://127.0.0.1:9/api", key)
    sent: list[Any] = []

    def call(endpoint: str, body: Any = None, **kw: Any) -> Any:
        sent.append(body)
        return {"success": True}

    monkeypatch.setattr(api_, "call", call)
    api_.shoot("g1", (0, 4), reasoning=f"my key is {key}", message=f"psst {key}")
    assert sent and key not in json.dumps(sent), sent
    assert "my key is ***" in json.dumps(sent)


# --- found by the soak: the move event of a second pass comes before the phase event -------------------------------
@pytest.mark.e2e
def test_two_passes_in_a_row_wait_for_the_removal_phase_instead_of_moving(
        tmp_path: Path, gnugo_command: list[str]) -> None:
    """Two passes in a row end play on OGS, but the server's move event can arrive before its phase event: the
    snapshot in between shows phase "play", our turn. The soak saw the bot move there and the server refuse it
    ("in the stone removal phase; no moves can be played"). The session now waits for the phase (a short hold),
    and plays on only if play really goes on (as after a rejected removal)."""
    config = load_config_text(_config_text(tmp_path, gnugo_command))
    actions = RecordingActions()
    session = GameSession("g1", "black", actions, config, server="test", slots=SlotPool(1))
    session.start()
    try:
        moves: tuple[Move, ...] = ((2, 2), (6, 6), None, None)  # black, white, black passes, white passes
        session.post(StateUpdate(_state(moves)))
        # what a race looks like from here: no phase event yet; the session holds, and sends nothing meanwhile
        wait_for(lambda: _transcript_has(session.transcript_path, "waiting for the stone removal phase"), 20,
                 "the session to hold after two passes")
        assert "play" not in actions.kinds(), actions.calls
        session.post(StateUpdate(_state(moves, phase="stone removal")))
        wait_for(lambda: "accept_removal" in actions.kinds() or "set_removal" in actions.kinds(), 20,
                 "the removal to be answered")
        assert "play" not in actions.kinds(), actions.calls
        assert _transcript_has(session.transcript_path, "waiting for the stone removal phase")
    finally:
        session.stop()
        session.join(10)


@pytest.mark.e2e
def test_after_two_passes_play_goes_on_when_no_removal_phase_comes(tmp_path: Path, gnugo_command: list[str]) -> None:
    """Where the server really wants a move after two passes (its phase never changes), the hold ends and the bot
    plays: a wrong guess costs seconds, never the game."""
    config = load_config_text(_config_text(tmp_path, gnugo_command))
    actions = RecordingActions()
    session = GameSession("g1", "black", actions, config, server="test", slots=SlotPool(1))
    session.start()
    try:
        session.post(StateUpdate(_state(((2, 2), (6, 6), None, None))))
        wait_for(lambda: "play" in actions.kinds(), 20, "a move after the hold")
        assert _transcript_has(session.transcript_path, "waiting for the stone removal phase"), "a hold came first"
    finally:
        session.stop()
        session.join(10)


@pytest.mark.e2e
def test_a_game_that_ends_while_the_engine_lists_dead_stones_gets_no_late_proposal(
        tmp_path: Path, gnugo_command: list[str]) -> None:
    """GNU Go's final_status_list took 10 s on a busy machine in the soak; the server scored the game meanwhile (its
    removal timeout), and the bot then proposed its dead stones to a finished game, which the server refused. A
    proposal is now dropped when a newer snapshot (here: the result) arrived while the engine worked."""
    engine = [sys.executable, str(SLOW_GTP), "--delay", "0.6", "--slow-command", "final_status_list", "--",
              *gnugo_command]
    config = load_config_text(_config_text(tmp_path, engine))
    actions = RecordingActions()
    session = GameSession("g1", "black", actions, config, server="test", slots=SlotPool(1))
    session.start()
    try:
        moves: tuple[Move, ...] = ((2, 2), (6, 6), (2, 6), None, None)
        session.post(StateUpdate(_state(moves, phase="stone removal")))
        wait_for(lambda: _transcript_has(session.transcript_path, "final_status_list dead"), 20,
                 "the engine to be asked for its dead stones")
        session.post(StateUpdate(_state(moves, phase="finished", result=GoResult("black", "7.5 points", "B+7.5"))))
        wait_for(lambda: session.finished, 20, "the session to finish")
        assert not {"set_removal", "accept_removal"} & set(actions.kinds()), actions.calls
    finally:
        session.stop()
        session.join(10)


@pytest.mark.parametrize(("budget", "margin"), [(68.0, 3.0), (30.0, 5.0), (35.0, 5.0), (68.0, 5.0), (12.0, 1.0)])
def test_a_hang_leaves_time_for_a_retry_that_can_still_think(tmp_path: Path, budget: float, margin: float) -> None:
    """The soak (byo-yomi 60 s + 3 x 10 s, move_margin 3) saw a hang declared with 2.8 s left: too little to restart
    and think, so the bot passed and the opponent's pass ended the game. What the hang limit keeps must let the
    restarted engine think MIN_THINK seconds within its own limit."""
    from bridge.games.go import MIN_THINK, GoPlayer

    with Transcript(None) as t:
        player = GoPlayer(EngineConfig(command=[GNUGO], move_margin=margin), name="limit", transcript=t)
        player.start_seconds = 0.1
        left = budget - player._timeout(budget)
        retry = player._timeout(left) - player.start_seconds
    assert retry >= MIN_THINK, (budget, margin, left, retry)


@pytest.mark.e2e
@pytest.mark.alone  # hang limits on a real clock
def test_an_engine_frozen_while_told_a_move_is_caught_inside_the_clock(
        tmp_path: Path, gnugo_command: list[str]) -> None:
    """The soak froze a restarted engine just after it moved, with one 10 s byo-yomi period left: the next `play`
    (telling it the opponent's move) waited the default 30 s, and the game was lost on time. Every command before a
    genmove now shares the move's hang limit."""
    import signal as _signal

    from bridge.games.gotypes import ClockState, PlayerClock, TimeControl

    config = load_config_text(_config_text(tmp_path, gnugo_command))
    tc = TimeControl(system="byoyomi", speed="live", main_time=0, period_time=10, periods=1)
    settings = GoSettings(width=9, height=9, komi=6.5, rules="japanese", my_color="black", time_control=tc)

    def state(moves: tuple[Move, ...]) -> GoState:
        clock = ClockState(to_move="black", black=PlayerClock(0.0, periods=1, period_time=10.0),
                           white=PlayerClock(0.0, periods=1, period_time=10.0))
        return GoState("g1", settings, moves, to_move="black" if len(moves) % 2 == 0 else "white", clock=clock)

    actions = RecordingActions()
    session = GameSession("g1", "black", actions, config, server="test", slots=SlotPool(1))
    session.start()
    frozen: int | None = None
    try:
        session.post(StateUpdate(state(())))
        wait_for(lambda: "play" in actions.kinds(), 20, "the first move")
        engine = session.player.engine
        assert engine is not None
        frozen = engine.process.pid
        assert frozen is not None
        os.kill(frozen, _signal.SIGSTOP)
        started = time.monotonic()
        session.post(StateUpdate(state((actions.calls[-1][1], (0, 0)))))
        wait_for(lambda: actions.kinds().count("play") >= 2, 30, "a second move")
        took = time.monotonic() - started
        assert took < 10.0, f"the second move came {took:.1f} s later, after the 10 s period"
    finally:
        if frozen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, _signal.SIGCONT)
        session.stop()
        session.join(10)


@pytest.mark.parametrize("budget", [20.0, 30.0, 64.6, 85.0, 300.0])
@pytest.mark.parametrize("margin", [0.0, 2.0, 5.0])
def test_a_hang_leaves_a_retry_its_time_even_when_the_clock_was_read_late(budget: float, margin: float) -> None:
    """Seen in the soak (seed 201758075): on a 60 s + 3x10 s byo-yomi clock with 64.6 s to the flag, a genmove hung
    for its 60.5 s limit; the restart found 1.7 s on the clock (the engine's stop, the restart and a clock read ~2 s
    early took the rest of the 4.1 s reserve) and passed after the opponent's pass, losing the game on points. What
    a hang leaves must carry the retry (its own hang limit of MIN_THINK after the engine's start) after 3 s of such
    losses."""
    from bridge.config import EngineConfig as Cfg
    from bridge.games.go import MIN_THINK, hang_limit

    cfg = Cfg(command=[GNUGO], move_margin=margin)
    start = 0.3
    left = budget - hang_limit(cfg, start, budget) - 3.0
    assert hang_limit(cfg, start, left) - start >= MIN_THINK, (budget, left)


@pytest.mark.e2e
def test_an_engine_flooding_its_output_without_line_breaks_is_restarted(
        sandbox: SandboxServer, make_bot: BotFactory, fake_gtp_command: Callable[..., list[str]],
        tmp_path: Path) -> None:
    """The engine answers its first genmove with 20 MB and no line break, then hangs. The read fails past
    MAX_LINE_BYTES (before, it kept everything waiting for a newline that never came, until the hang limit: a
    flood of gigabytes in that time took the daemon's memory), the engine counts as failed, is restarted, and the
    game goes on to its end."""
    d, _ = make_bot("flood-bot", fake_gtp_command("--flood-on", "genmove", "--once-file", str(tmp_path / "flooded"),
                                                  "--moves", "C3,G7,C7,G3,E5"))
    c = challenge(sandbox, "flood-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"], 90)
    assert game["outcome"] not in ("Timeout", "Cancellation"), (game["outcome"], game["score"])
    assert helpers.sandbox_moves(game)[:1] == [(2, 6)], "the restarted engine's C3 is the game's first move"
    text = helpers.ended_transcript(d, c["game_id"])
    assert "wrote more than 16 MB without a line break" in text and "replaying the game (1 of 3 restart(s))" in text
    assert "z" * 1000 not in text, "the flood is not copied into the transcript"


# --- the data folder: a transcript or a record that cannot be written loses no game ---------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("blocked", ["transcripts", "records"])
def test_a_data_dir_that_cannot_be_written_loses_no_game(sandbox: SandboxServer, make_bot: BotFactory,
                                                         tmp_path: Path, blocked: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """``daemon.data_dir/transcripts`` (or ``records``) cannot be written (here a file stands where the folder
    should be; a full disk or a read-only mount does the same). The daemon says so at its start, and again for the
    game, each time with the folder and what to do; the game is played to its end (it was lost on time when the
    transcript could not be opened) and what can be kept is kept."""
    caplog.set_level(logging.INFO)
    home = tmp_path / "disk-bot"
    home.mkdir()
    (home / blocked).write_text("a file where the folder should be")
    make_bot("disk-bot", [GNUGO, "--mode", "gtp", "--level", "1"])
    c = challenge(sandbox, "disk-bot", {"house": "scripted", "moves": SHORT_GAME}, challenger_color="white")
    game = wait_finished(sandbox, c["game_id"], 60)
    assert game["outcome"] == "Resignation", (game["outcome"], game["score"])
    folder = str(home / blocked)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and folder in r.getMessage()]
    assert any(m.startswith("daemon.data_dir: cannot write in") and "writable folder" in m for m in said), said
    assert any(f"game {c['game_id']}" in m and "writable folder" in m for m in said), said
    record = home / "records" / f"ogs-{c['game_id']}.sgf"
    transcript = home / "transcripts" / f"ogs-{c['game_id']}.log"
    if blocked == "transcripts":
        wait_for(record.exists, 10, "the SGF record")
        assert "RE[B+R]" in record.read_text()
    else:
        wait_for(lambda: _transcript_has(transcript, "could not write the record"), 10, "the transcript's note")
