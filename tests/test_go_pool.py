"""The engine pool (engine.manager: pool) with the scripted fake GTP engine as real subprocesses: leases and
returns, incremental replay vs full replay, a crashed engine restarted in its slot, and the bounded wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import wait_for

from bridge.config import EngineConfig
from bridge.errors import EngineError, EngineTerminatedError
from bridge.games.go_pool import GoEnginePool, PoolBusyError, PooledGoPlayer
from bridge.games.gotypes import GoSettings, GoState, Move

SETTINGS = GoSettings(width=9, height=9, komi=6.5, rules="chinese", my_color="black")
MOVES = "C3,D4,E5,F6,G7,C7,G3"


def state(game: str, moves: tuple[Move, ...]) -> GoState:
    return GoState(game_id=game, settings=SETTINGS, moves=moves, to_move="black" if len(moves) % 2 == 0 else "white")


def log_lines(path: Path) -> list[tuple[int, str]]:
    """(pid, command without its id) of every line the fake engines received."""
    out = []
    for line in path.read_text().splitlines():
        pid, _, rest = line.partition(" ")
        parts = rest.split()
        if parts and parts[0].isdigit():
            parts = parts[1:]
        out.append((int(pid), " ".join(parts)))
    return out

Players = Callable[[GoEnginePool, str], PooledGoPlayer]  # the game_player fixture (conftest.py)


@pytest.fixture
def make_pool(tmp_path: Path, fake_gtp_command: Callable[..., list[str]]) -> Iterator[Callable[..., GoEnginePool]]:
    pools: list[GoEnginePool] = []

    def make(*flags: str, size: int = 1, **cfg: object) -> GoEnginePool:
        command = fake_gtp_command("--moves", MOVES, "--log", str(tmp_path / "engine.log"), "--log-pid", *flags)
        pool = GoEnginePool(EngineConfig(command=command, manager="pool", pool_size=size,
                                         **cfg))
        pools.append(pool)
        return pool

    yield make
    for p in pools:
        p.close()


def test_leases_replay_incrementally_for_the_same_game_and_fully_for_another(
        make_pool: Callable[..., GoEnginePool], game_player: Players,
        tmp_path: Path) -> None:
    pool = make_pool(size=1)
    a, b = game_player(pool, "a"), game_player(pool, "b")
    first = a.genmove(state("a", ()))
    assert first == [(2, 6)]  # C3
    a_moves: tuple[Move, ...] = ((2, 6), (4, 4))
    a.genmove(state("a", a_moves))  # the same game again: only the opponent's move E5 is sent
    log = [cmd for _, cmd in log_lines(tmp_path / "engine.log")]
    assert log.count("clear_board") == 1
    assert log[-2:] == ["play white E5", "genmove b"], log
    assert (pool.full_replays, pool.incremental_replays) == (1, 1)

    b.genmove(state("b", ((0, 0),)))  # another game: replayed from clear_board
    a.genmove(state("a", (*a_moves, (3, 5), (6, 6))))  # back to a: the engine holds b's position, so a full replay
    log = [cmd for _, cmd in log_lines(tmp_path / "engine.log")]
    assert log.count("clear_board") == 3
    assert log[-7:] == ["komi 6.5", "time_settings 0 1 0", "play black C3", "play white E5", "play black D4",
                        "play white G3", "genmove b"], log
    assert (pool.full_replays, pool.incremental_replays) == (3, 1)
    assert len({pid for pid, _ in log_lines(tmp_path / "engine.log")}) == 1  # one engine served both games
    # each game's transcript shows the engine lines of its own moves, not the other game's
    ta, tb = (tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text()
    assert "play black A9" in tb and "play black A9" not in ta
    assert ta.count("genmove b") == 3 and tb.count("genmove w") == 1
    assert "leased from the pool" in ta and "only the new moves are sent" in ta


def test_a_crashed_engine_is_restarted_in_its_slot_and_the_retry_goes_on(
        make_pool: Callable[..., GoEnginePool], game_player: Players,
        tmp_path: Path) -> None:
    pool = make_pool("--crash-on", "genmove", "--once-file", str(tmp_path / "crashed"), size=1)
    a = game_player(pool, "a")
    with pytest.raises(EngineTerminatedError):
        a.genmove(state("a", ()))
    a.restart("crashed")  # what the session does: count it, then ask again
    assert a.restarts == 1
    assert a.genmove(state("a", ())) == [(2, 6)]  # on the restarted engine of the one slot
    wait_for(lambda: pool.engines_alive() == 1 and not any(s.busy for s in pool._slots), what="one idle engine")
    pids = [pid for pid, cmd in log_lines(tmp_path / "engine.log") if cmd == "protocol_version"]
    assert len(pids) == 2 and pool.restarted == 1  # the crashed one, then its restart in the slot
    assert "fake: crashing on genmove" in (tmp_path / "a.log").read_text()


def test_waiting_for_a_free_engine_is_bounded_by_the_move_limit(
        make_pool: Callable[..., GoEnginePool], game_player: Players,
        tmp_path: Path) -> None:
    # no clock: the hang limit is max_move_time + move_margin = 4 s; the wait may take what leaves MIN_THINK (2 s)
    pool = make_pool("--genmove-delay", "3", size=1, max_move_time=3.0, move_margin=1.0)
    a, b = game_player(pool, "a"), game_player(pool, "b")
    answers: list[object] = []
    holder = threading.Thread(target=lambda: answers.append(a.genmove(state("a", ()))))
    holder.start()
    try:
        wait_for(lambda: (tmp_path / "engine.log").exists()
                 and any(cmd == "genmove b" for _, cmd in log_lines(tmp_path / "engine.log")), what="a genmove")
        began = time.monotonic()
        with pytest.raises(PoolBusyError, match="no engine of the pool"):
            b.genmove(state("b", ((0, 0),)))
        waited = time.monotonic() - began
        assert 1.8 <= waited < 2.8, waited  # the wait stopped at its bound, before the engine came free
        b.restart("busy")
        assert b.restarts == 0  # a wait is not an engine failure
    finally:
        holder.join()
    assert answers == [[(2, 6)]]
    # once free, the engine serves b (a second waiter gets it as soon as it is given back)
    assert b.genmove(state("b", ((0, 0),))) == [(3, 5)]


def test_a_waiting_game_gets_the_engine_when_it_is_given_back(
        make_pool: Callable[..., GoEnginePool], game_player: Players,
        tmp_path: Path) -> None:
    pool = make_pool("--genmove-delay", "1", size=1)
    a, b = game_player(pool, "a"), game_player(pool, "b")
    holder = threading.Thread(target=lambda: a.genmove(state("a", ())))
    holder.start()
    try:
        wait_for(lambda: (tmp_path / "engine.log").exists()
                 and any(cmd == "genmove b" for _, cmd in log_lines(tmp_path / "engine.log")), what="a genmove")
        assert b.genmove(state("b", ((0, 0),))) == [(3, 5)]
    finally:
        holder.join()
    assert "leased from the pool after" in (tmp_path / "b.log").read_text()


def test_abort_stops_the_leased_engine_and_the_slot_restarts_it(
        make_pool: Callable[..., GoEnginePool], game_player: Players,
        tmp_path: Path) -> None:
    pool = make_pool("--hang-on", "genmove", "--once-file", str(tmp_path / "hung"), size=1)
    a, b = game_player(pool, "a"), game_player(pool, "b")
    errors: list[BaseException] = []

    def think() -> None:
        try:
            a.genmove(state("a", ()))
        except EngineError as exc:
            errors.append(exc)

    t = threading.Thread(target=think)
    t.start()
    wait_for((tmp_path / "hung").exists, what="the engine to hang")
    a.abort("the game is over")
    t.join(timeout=10)
    assert not t.is_alive() and errors
    assert b.genmove(state("b", ())) == [(2, 6)]  # the next lease starts the slot's engine again
    with pytest.raises(EngineError, match="the game is over"):
        a.genmove(state("a", ()))


# --- sessions on a pool -----------------------------------------------------------------------------------------
class Recorder:
    """The session tests' stand-in for an adapter's actions: what the session asked the server to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.played = threading.Event()

    def play(self, move: Move) -> None:
        self.calls.append(("play", move))
        self.played.set()

    def resign(self) -> None:
        self.calls.append(("resign", None))

    def set_removal(self, stones: object, removed: bool) -> None:
        self.calls.append(("set_removal", stones))

    def accept_removal(self, stones: object) -> None:
        self.calls.append(("accept_removal", stones))

    def answer_undo(self, accept: bool, move_number: int) -> None:
        self.calls.append(("answer_undo", accept))

    def chat(self, body: str, channel: str = "main") -> None:
        self.calls.append(("chat", body))


def _session_config(tmp_path: Path, command: list[str], extra: str = "") -> object:
    from bridge.config import load_config_text

    return load_config_text(f"""
server: {{kind: ogs, username: bot, api_key: {{env: HOME}}}}
engine:
  command: {command!r}
  manager: pool
  pool_size: 1
  quit_grace: 1
{extra}
daemon: {{data_dir: {tmp_path}, max_concurrent_games: 4}}
""")


def test_sessions_share_the_pool_without_holding_slots_and_a_busy_pool_moves_in_time(
        tmp_path: Path, fake_gtp_command: Callable[..., list[str]]) -> None:
    """Two games on a pool of one engine, with one daemon slot: both move (a pool game holds no slot). Then, while
    one game's engine thinks 3 s, the other game, with 8 s a move, cannot wait that long for the engine: it moves in
    time rather than lose on time (after the waits, the engine it gets at last has too little time to think: the
    bridge's own fallback move, not a pass)."""
    from bridge.games.go_events import StateUpdate
    from bridge.games.gotypes import ClockState, PlayerClock, TimeControl
    from bridge.session import GameSession, SlotPool

    command = fake_gtp_command("--moves", MOVES, "--genmove-delay", "3", "--log", str(tmp_path / "engine.log"),
                               "--log-pid")
    config = _session_config(tmp_path, command, "  move_margin: 1")
    pool = GoEnginePool(config.engine)  # type: ignore[attr-defined]
    slots = SlotPool(1)
    acts = [Recorder(), Recorder()]
    sessions = [GameSession(f"g{i}", "black", acts[i], config, server="test", slots=slots, engines=pool)
                for i in range(2)]
    try:
        for s in sessions:
            s.start()
        sessions[0].post(StateUpdate(state("g0", ())))
        wait_for(lambda: (tmp_path / "engine.log").exists()
                 and any(cmd == "genmove b" for _, cmd in log_lines(tmp_path / "engine.log")), what="a genmove")
        per_move = TimeControl("simple", per_move=8.0)
        clocked = GoState(game_id="g1", settings=GoSettings(width=9, height=9, komi=6.5, rules="chinese",
                                                            my_color="black", time_control=per_move),
                          clock=ClockState(to_move="black", black=PlayerClock(8.0), white=PlayerClock(8.0)))
        began = time.monotonic()
        sessions[1].post(StateUpdate(clocked))
        assert acts[1].played.wait(10)
        took = time.monotonic() - began
        kind, move = acts[1].calls[-1]
        assert kind == "play" and move is not None and took < 8.0, (acts[1].calls, took)  # inside the clock
        assert acts[0].played.wait(10) and acts[0].calls[-1] == ("play", (2, 6))
        assert ("resign", None) not in acts[1].calls
        assert "no engine of the pool was free in time" in sessions[1].transcript_path.read_text()
    finally:
        for s in sessions:
            s.stop()
        for s in sessions:
            s.join(10)
        pool.close()


def test_an_engine_that_cannot_start_is_reported_as_such(
        make_pool: Callable[..., GoEnginePool], game_player: Players) -> None:
    pool = make_pool("--crash-on", "protocol_version", size=1)
    a = game_player(pool, "a")
    with pytest.raises(EngineError, match="start-up handshake"):
        a.genmove(state("a", ()))
    assert a.start_failed  # the session tells the daemon's engine health, which stops taking games


def test_an_engine_that_died_while_idle_is_replaced_at_the_next_lease(
        make_pool: Callable[..., GoEnginePool], game_player: Players,
        tmp_path: Path) -> None:
    import os
    import signal

    pool = make_pool(size=1)
    a = game_player(pool, "a")
    a.genmove(state("a", ()))
    engine = pool._slots[0].player.engine
    assert engine is not None and engine.pid is not None
    os.kill(engine.pid, signal.SIGKILL)  # between two moves of the game
    engine.process._popen.wait(5)  # type: ignore[union-attr]
    assert a.genmove(state("a", ((2, 6), (4, 4)))) == [(2, 6)]  # no failure: a fresh engine, the game replayed
    assert a.restarts == 0
    log = [cmd for _, cmd in log_lines(tmp_path / "engine.log")]
    assert log.count("clear_board") == 2 and log.count("protocol_version") == 2
