"""The game loop (bridge/gameloop.py) with scripted fakes: no subprocess, no socket, no sleep.

The fake server is a turn-based game of ``length`` turns: we play the odd turns, the opponent the even ones
(played while we wait). Each test scripts what happens to our sends (landed, lost after landing, lost before
landing, a transient failure, a refusal, a fatal error) and to the engine (a crash, never starting), and
asserts what the server saw: every attempt, every action that landed, a cancel or a resignation."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import AuthError, BridgeError, EngineTerminatedError
from bridge.gameloop import (
    Decision,
    Fault,
    FaultKind,
    GameLoop,
    Landed,
    LoopSettings,
    Record,
    Settlement,
    Snapshot,
    TurnClock,
    Verdict,
)

State = tuple[tuple[int, str], ...]  # the actions that landed: (turn, action)
Snap = Snapshot[State]


class Lost(BridgeError):
    def __init__(self, landed: bool) -> None:
        super().__init__("connection dropped before the answer")
        self.landed = landed


class Busy(BridgeError):
    """Refused before it was carried out (503)."""


class Invalid(BridgeError):
    pass


class Stop(BridgeError):
    pass


class FakeServer:
    def __init__(self, length: int = 6, time_left: float | None = None) -> None:
        self.length = length
        self.turn = 1
        self.time_left = time_left
        self.landed: list[tuple[int, str]] = []
        self.attempts: list[str] = []
        self.cancelled = False
        self.resigned = False

    @property
    def over(self) -> bool:
        return self.turn > self.length or self.cancelled or self.resigned

    def snapshot(self) -> Snap:
        ours = self.turn % 2 == 1 and not self.over
        return Snapshot(tuple(self.landed), self.turn, ours, self.over, self.time_left if ours else None)

    def land(self, action: str) -> None:
        self.landed.append((self.turn, action))
        if not action.startswith("sense"):  # a sense does not end the turn (RBC-like)
            self.turn += 1

    def opponent(self) -> None:
        if not self.over and self.turn % 2 == 0:
            self.land("opp")


class FakeIO:
    """GameIO over FakeServer; ``script``: what happens to each send, in order ("ok" once the script is done):
    ok, lost-landed, lost-not-landed, transient, reject, fatal, stop."""

    def __init__(self, server: FakeServer, script: Sequence[str] = (), can_cancel: bool = True,
                 unreadable_settles: int = 0) -> None:
        self.server = server
        self.script = list(script)
        self.can_cancel = can_cancel
        self.unreadable_settles = unreadable_settles
        self.notes: list[str] = []
        self.incidents: list[str] = []
        self.pauses: list[float] = []
        self.reads = 0
        self.settles = 0
        self.slot_held = False
        self.slot_uses = 0
        self.played_log: list[tuple[int, str, str]] = []
        self.closed = False
        self.ended: list[str] = []

    # reading
    def open(self) -> Snap:
        return self.server.snapshot()

    def read(self, deadline: float | None = None) -> Snap:
        self.reads += 1
        return self.server.snapshot()

    def wait(self, snapshot: Snap) -> None:
        self.server.opponent()

    def stale(self, snapshot: Snap) -> str | None:
        return None  # polled turn by turn: nothing changes the game while the engine thinks

    def options(self, snapshot: Snap, deadline: float) -> Any:
        return [f"option-{snapshot.turn}"]

    # acting
    def send(self, snapshot: Snap, action: str, deadline: float) -> Landed:
        self.server.attempts.append(action)
        step = self.script.pop(0) if self.script else "ok"
        if step == "ok":
            self.server.land(action)
            return Landed(f"result of {action}", over=self.server.over)
        if step == "lost-landed":
            self.server.land(action)
            raise Lost(True)
        if step == "lost-not-landed":
            raise Lost(False)
        if step == "transient":
            raise Busy("503 busy")
        if step == "reject":
            raise Invalid(f"{action} is not allowed")
        if step == "stop":
            raise Stop("the daemon is stopping")
        raise AuthError("401: the key was refused")

    def settle(self, snapshot: Snap, action: str, fault: Fault, deadline: float) -> Settlement[State]:
        self.settles += 1
        if self.unreadable_settles > 0:
            self.unreadable_settles -= 1
            raise Lost(False)
        after = self.server.snapshot()
        if (snapshot.turn, action) in self.server.landed:
            return Settlement(Verdict.LANDED, after)
        if after.turn != snapshot.turn or after.over:
            return Settlement(Verdict.TURN_OVER, after)
        return Settlement(Verdict.NOT_LANDED, after)

    def classify(self, exc: BaseException) -> Fault:
        if isinstance(exc, Stop):
            return Fault(FaultKind.STOPPED, str(exc))
        if isinstance(exc, Lost):
            return Fault(FaultKind.LOST, str(exc))
        if isinstance(exc, Busy):
            return Fault(FaultKind.TRANSIENT, str(exc), "HTTP 503")
        if isinstance(exc, Invalid):
            return Fault(FaultKind.REJECTED, str(exc))
        return Fault(FaultKind.FATAL, str(exc))

    def played(self, snapshot: Snap, decision: Decision[str], action: str, landed: Landed,
               after: Snap | None) -> None:
        self.played_log.append((snapshot.turn, action, decision.source))

    def cancel(self) -> bool:
        if self.can_cancel:
            self.server.cancelled = True
        return self.can_cancel

    def resign(self) -> None:
        self.server.resigned = True

    @contextmanager
    def _slot(self) -> Iterator[None]:
        self.slot_held = True
        self.slot_uses += 1
        try:
            yield
        finally:
            self.slot_held = False

    def engine_slot(self) -> Any:
        return self._slot()

    # the end
    def game_over(self, final: Snap) -> None:
        self.ended.append("game_over")

    def records(self, final: Snap) -> list[Record]:
        return [Record("fake-game.txt", "\n".join(f"{t} {a}" for t, a in final.state) + "\n", "the server's")]

    def wrap_up(self, final: Snap, written: list[Path]) -> None:
        self.ended.append("wrap_up")

    def stopped(self) -> None:
        self.ended.append("stopped")

    def abandoned(self, exc: BaseException) -> None:
        self.ended.append(f"abandoned: {exc}")

    def close(self) -> None:
        self.closed = True

    def note(self, text: str) -> None:
        self.notes.append(text)

    def incident(self, text: str, level: int = logging.WARNING) -> None:
        self.incidents.append(text)
        self.notes.append(text)

    @property
    def stopping(self) -> bool:
        return False

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


class FakePlayer:
    """GamePlayer: decides ``move<turn>`` (``sense<turn>`` first if ``sense``); ``crash_at``: the decide calls
    (1-based) at which the engine fails; ``never_starts``: every start and restart fails."""

    def __init__(self, crash_at: Sequence[int] = (), never_starts: bool = False, has_fallback: bool = True,
                 sense: bool = False) -> None:
        self.crash_at = set(crash_at)
        self.never_starts = never_starts
        self.has_fallback = has_fallback
        self.sense = sense
        self.calls = 0
        self.observed: list[int] = []
        self.told: list[str] = []  # what the current engine was told (replayed after a restart)
        self.engines = 0
        self.replays: list[list[str]] = []
        self.refused_seen: list[list[str]] = []
        self.options_seen: list[Any] = []
        self.rejections: list[str] = []
        self.closed = 0
        self.alive = False

    def start(self, snapshot: Snap) -> None:
        self._new_engine()

    def _new_engine(self) -> None:
        self.engines += 1
        if self.never_starts:
            self.alive = False
            raise EngineTerminatedError("the engine exited at once (status 127)")
        self.alive = True

    def observe(self, snapshot: Snap) -> None:
        self.observed.append(snapshot.turn)

    def decide(self, snapshot: Snap, deadline: float, options: Any, refused: Sequence[str]) -> Decision[str]:
        self.calls += 1
        self.options_seen.append(options)
        self.refused_seen.append(list(refused))
        if not self.alive:
            raise EngineTerminatedError("the engine is not running")
        if self.calls in self.crash_at:
            self.alive = False
            raise EngineTerminatedError("the engine crashed")
        if self.sense and not any(t == snapshot.turn and a.startswith("sense") for t, a in snapshot.state) \
                and f"sense{snapshot.turn}" not in self.told:
            return Decision((f"sense{snapshot.turn}",), more=True)
        name = f"move{snapshot.turn}" + ("b" * len(refused))
        return Decision((name,))

    def restart(self, why: str) -> None:
        self._new_engine()
        self.replays.append(list(self.told))

    def fallback(self, snapshot: Snap, why: str, refused: Sequence[str]) -> Decision[str] | None:
        if not self.has_fallback:
            return None
        return Decision((f"fallback{snapshot.turn}",), "fallback", why)

    def played(self, snapshot: Snap, decision: Decision[str], action: str, landed: Landed,
               after: Snap | None) -> None:
        self.told.append(action)

    def rejected(self, action: str, reason: str) -> None:
        self.rejections.append(action)

    def records(self, final: Snap) -> list[Record]:
        return [Record("fake-game.notes", f"{len(self.told)} action(s) told\n")]

    def close(self) -> None:
        self.closed += 1


def play(tmp_path: Path, server: FakeServer, io: FakeIO, player: FakePlayer,
         clock: Any = None, **settings: Any) -> GameLoop[State, str]:
    loop: GameLoop[State, str] = GameLoop(io, player, tmp_path / "records", LoopSettings(**settings), name="g1")
    if clock is not None:
        loop.now = clock
    loop.run()
    assert io.closed and player.closed >= 1 and not io.slot_held  # a clean end, whatever happened
    return loop


def ours(server: FakeServer) -> list[tuple[int, str]]:
    return [(t, a) for t, a in server.landed if a != "opp"]


# --- tests ----------------------------------------------------------------------------------------------------
def test_a_normal_game_is_played_to_its_end_and_its_records_written(tmp_path: Path) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server), FakePlayer()
    loop = play(tmp_path, server, io, player)
    assert server.landed == [(1, "move1"), (2, "opp"), (3, "move3"), (4, "opp"), (5, "move5"), (6, "opp")]
    assert server.attempts == ["move1", "move3", "move5"]  # one send per turn
    assert player.observed == [1, 3, 5] and player.options_seen == [["option-1"], ["option-3"], ["option-5"]]
    assert io.played_log == [(1, "move1", "engine"), (3, "move3", "engine"), (5, "move5", "engine")]
    r = loop.result
    assert (r.turns, r.decisions, r.settled, r.rejected, r.restarts, r.error) == (3, 3, 0, 0, 0, None)
    assert r.records == [tmp_path / "records" / "fake-game.txt", tmp_path / "records" / "fake-game.notes"]
    assert (tmp_path / "records" / "fake-game.txt").read_text() == "1 move1\n2 opp\n3 move3\n4 opp\n5 move5\n6 opp\n"
    assert not list((tmp_path / "records").glob("*.tmp"))
    assert io.ended == ["game_over", "wrap_up"] and io.slot_uses == 1 and not io.incidents


def test_a_decision_of_several_actions_goes_on_within_the_turn(tmp_path: Path) -> None:
    """RBC-like: sense, then (told its result) move; both in one turn, the turn ended by the move."""
    server = FakeServer(length=4)
    io, player = FakeIO(server), FakePlayer(sense=True)
    loop = play(tmp_path, server, io, player)
    assert ours(server) == [(1, "sense1"), (1, "move1"), (3, "sense3"), (3, "move3")]
    assert server.attempts == ["sense1", "move1", "sense3", "move3"]
    assert loop.result.turns == 4 and loop.result.decisions == 4 and player.observed == [1, 3]


def test_the_turn_scope_is_held_from_each_turn_s_decision_until_its_action_is_sent(tmp_path: Path) -> None:
    """GameLoop(turn_scope=...) (the Go session passes its transcript's hold: the turn's lines go to disk once the
    move is on its way): entered once per turn, around the decision and the send, and left before the wait."""
    server = FakeServer(length=4)
    events: list[str] = []

    class ScopedIO(FakeIO):
        def send(self, snapshot: Snap, action: str, deadline: float) -> Landed:
            events.append(f"send {action}")
            return super().send(snapshot, action, deadline)

        def wait(self, snapshot: Snap) -> None:
            events.append("wait")
            super().wait(snapshot)

    @contextmanager
    def scope() -> Iterator[None]:
        events.append("enter")
        yield
        events.append("leave")

    io, player = ScopedIO(server), FakePlayer()
    loop: GameLoop[State, str] = GameLoop(io, player, tmp_path / "records", LoopSettings(), name="g1",
                                          turn_scope=scope)
    loop.run()
    assert events == ["enter", "send move1", "leave", "wait", "enter", "send move3", "leave", "wait"]
    assert loop.result.turns == 2


def test_an_engine_crash_mid_game_restarts_it_and_replays_the_game(tmp_path: Path) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server), FakePlayer(crash_at=[2])
    loop = play(tmp_path, server, io, player, max_restarts=3)
    assert player.engines == 2 and player.replays == [["move1"]]  # the fresh engine was told the game
    assert ours(server) == [(1, "move1"), (3, "move3"), (5, "move5")]  # the engine's moves, one a turn
    assert server.attempts == ["move1", "move3", "move5"]
    assert loop.result.restarts == 1 and loop.result.fallbacks == 0
    assert any("the engine crashed; restarting it" in i for i in io.incidents)


def test_restarts_used_up_mid_game_the_fallback_plays_on(tmp_path: Path) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server), FakePlayer(crash_at=[2, 3])
    loop = play(tmp_path, server, io, player, max_restarts=1)
    assert ours(server) == [(1, "move1"), (3, "fallback3"), (5, "fallback5")]
    assert loop.result.restarts == 1 and loop.result.fallbacks == 2 and not server.resigned


@pytest.mark.parametrize("can_cancel", [True, False])
def test_an_engine_that_never_starts_cancels_the_game_or_else_resigns(tmp_path: Path, can_cancel: bool) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server, can_cancel=can_cancel), FakePlayer(never_starts=True, has_fallback=False)
    loop = play(tmp_path, server, io, player, max_restarts=2)
    assert server.attempts == [] and ours(server) == []  # nothing was ever sent
    assert player.engines == 3  # the start and two restarts
    assert server.cancelled is can_cancel and server.resigned is (not can_cancel)
    assert loop.result.gave_up == ("cancelled" if can_cancel else "resigned")
    assert loop.result.error is None and io.ended == ["game_over", "wrap_up"]


def test_an_engine_lost_after_our_first_move_resigns_rather_than_cancels(tmp_path: Path) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server), FakePlayer(crash_at=[2, 3], has_fallback=False)
    loop = play(tmp_path, server, io, player, max_restarts=1)
    assert ours(server) == [(1, "move1")] and server.attempts == ["move1"]
    assert server.resigned and not server.cancelled and loop.result.gave_up == "resigned"


@pytest.mark.parametrize("landed", [True, False])
def test_a_lost_answer_is_settled_from_the_state_and_never_sent_twice(tmp_path: Path, landed: bool) -> None:
    server = FakeServer(length=4)
    script = ["lost-landed"] if landed else ["lost-not-landed"]
    io, player = FakeIO(server, script), FakePlayer()
    loop = play(tmp_path, server, io, player)
    assert ours(server) == [(1, "move1"), (3, "move3")]  # landed once, whatever happened to its answer
    assert io.settles == 1
    if landed:
        assert server.attempts == ["move1", "move3"] and loop.result.settled == 1
        assert any("the state shows it was carried out" in i for i in io.incidents)
    else:
        assert server.attempts == ["move1", "move1", "move3"] and loop.result.settled == 0
        assert any("not carried out: sending it again" in i for i in io.incidents)
    assert player.told == ["move1", "move3"]


def test_a_lost_answer_that_cannot_be_settled_is_sent_once_more_then_left_to_the_next_read(tmp_path: Path) -> None:
    server = FakeServer(length=4)
    io, player = FakeIO(server, ["lost-not-landed", "lost-not-landed"], unreadable_settles=2), FakePlayer()
    play(tmp_path, server, io, player)
    # sent, unsettled -> sent once more (blind), unsettled -> the next state read shows it still our turn: again
    assert server.attempts == ["move1", "move1", "move1", "move3"] and ours(server) == [(1, "move1"), (3, "move3")]
    assert any("is not known" in i for i in io.incidents)


def test_a_rejected_action_rereads_the_state_and_the_player_decides_again(tmp_path: Path) -> None:
    server = FakeServer(length=4)
    io, player = FakeIO(server, ["reject"]), FakePlayer()
    loop = play(tmp_path, server, io, player)
    assert server.attempts == ["move1", "move1b", "move3"]
    assert ours(server) == [(1, "move1b"), (3, "move3")]
    assert player.rejections == ["move1"] and player.refused_seen[1] == ["move1"]
    assert loop.result.rejected == 1 and io.reads >= 1
    assert any("the server refused engine action 'move1'" in i for i in io.incidents)


def test_refusals_stop_at_max_rejections_and_the_loop_waits_for_the_server(tmp_path: Path) -> None:
    server = FakeServer(length=2)
    io, player = FakeIO(server, ["reject"] * 3), FakePlayer()

    def wait(snapshot: Snap) -> None:  # the server gives our turn up (expired) and the opponent plays
        if server.turn == 1:
            server.turn = 2
        server.opponent()

    io.wait = wait  # type: ignore[method-assign]
    loop = play(tmp_path, server, io, player, max_rejections=3)
    assert server.attempts == ["move1", "move1b", "move1bb"] and ours(server) == []
    assert loop.result.rejected == 3 and any("3 actions refused" in i for i in io.incidents)


def test_transient_failures_are_retried_with_backoff(tmp_path: Path) -> None:
    server = FakeServer(length=2)
    io, player = FakeIO(server, ["transient", "transient", "transient"]), FakePlayer()
    loop = play(tmp_path, server, io, player)
    assert server.attempts == ["move1"] * 4 and ours(server) == [(1, "move1")]
    assert io.settles == 0 and loop.result.settled == 0
    assert io.pauses == [0.2, 0.4, 0.8]  # doubling


def test_transient_failures_end_at_the_turns_deadline(tmp_path: Path) -> None:
    server = FakeServer(length=2, time_left=2.0)  # the action is due on its way within 1.5 s
    io, player = FakeIO(server, ["transient"] * 1000), FakePlayer()
    clock_now = [0.0]

    def pause(seconds: float) -> None:
        io.pauses.append(seconds)
        clock_now[0] += seconds

    def wait(snapshot: Snap) -> None:  # the server moves on when our turn's time is up
        if server.turn == 1:
            server.turn = 2
        server.opponent()

    io.pause = pause  # type: ignore[method-assign]
    io.wait = wait  # type: ignore[method-assign]
    loop = play(tmp_path, server, io, player, clock=lambda: 1000.0 + clock_now[0])
    assert 1 < len(server.attempts) < 10 and ours(server) == []
    assert sum(io.pauses) <= 1.5 - 0.3 + 1e-9  # never past the last call before send_by
    assert any("the turn ended before an action of ours was carried out" in i for i in io.incidents)
    assert loop.result.error is None


def test_a_fatal_error_ends_the_game_cleanly(tmp_path: Path) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server, ["ok", "fatal"]), FakePlayer()
    loop = play(tmp_path, server, io, player)
    assert server.attempts == ["move1", "move3"] and ours(server) == [(1, "move1")]  # nothing after it
    assert loop.result.error == "401: the key was refused"
    assert io.incidents == ["401: the key was refused"]
    assert io.ended == ["abandoned: 401: the key was refused"] and not loop.result.records


def test_a_stop_leaves_the_game_at_a_turn_boundary(tmp_path: Path) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server, ["ok", "stop"]), FakePlayer()
    loop = play(tmp_path, server, io, player)
    assert loop.result.error == "the daemon stopped during the game" and io.ended == ["stopped"]
    assert not server.resigned and not server.cancelled


def test_a_bug_in_the_player_ends_the_game_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(length=6)
    io, player = FakeIO(server), FakePlayer()

    def broken(*args: Any) -> Decision[str]:
        raise KeyError("oops")

    player.decide = broken  # type: ignore[method-assign, assignment]
    loop = play(tmp_path, server, io, player)
    assert server.attempts == [] and loop.result.error == "KeyError: 'oops'"
    assert [r.levelname for r in caplog.records if "internal failure" in r.getMessage()] == ["ERROR"]
    assert any("Traceback" in n for n in io.notes)


def test_too_little_time_for_the_engine_sends_the_fallback(tmp_path: Path) -> None:
    server = FakeServer(length=2, time_left=0.5)
    io, player = FakeIO(server), FakePlayer()
    loop = play(tmp_path, server, io, player, min_think=1.0)
    assert player.calls == 0  # the engine was not asked
    assert server.attempts == ["fallback1"] and ours(server) == [(1, "fallback1")]
    assert loop.result.fallbacks == 1 and io.played_log == [(1, "fallback1", "fallback")]


def test_an_engine_failing_with_too_little_time_to_restart_sends_the_fallback_then_restarts(tmp_path: Path) -> None:
    """The engine hangs 25 s of a 30 s turn, then fails: no time to restart it and think 5 s, so the fallback goes
    out; at the next turn the engine is restarted (and replayed) and plays."""
    server = FakeServer(length=4, time_left=30.0)
    io, player = FakeIO(server), FakePlayer(crash_at=[1])
    now = [1000.0]
    decide = player.decide

    def hanging(*args: Any) -> Decision[str]:
        if player.calls == 0:
            now[0] += 25.0
        return decide(*args)

    player.decide = hanging  # type: ignore[method-assign, assignment]
    loop = play(tmp_path, server, io, player, clock=lambda: now[0], min_think=5.0)
    assert ours(server) == [(1, "fallback1"), (3, "move3")] and server.attempts == ["fallback1", "move3"]
    assert any("too little time left to restart it" in i for i in io.incidents)
    assert player.replays == [["fallback1"]] and loop.result.restarts == 1
    assert not server.resigned and loop.result.error is None


def test_turn_clock_shares() -> None:
    clock = TurnClock.of(180.0, 15.0, now=100.0)
    assert clock.send_by == pytest.approx(278.5) and clock.engine_by == pytest.approx(263.5)
    unlimited = TurnClock.of(None, 15.0, now=100.0)
    assert unlimited.send_by == float("inf") and unlimited.engine_by == float("inf")


# --- the contract's small parts, on the fakes ----------------------------------------------------------------
class SettlingIO(FakeIO):
    """A send whose answer says the game is over (``over_at``), or that it was already done (``done``: the
    resend of a lost answer refused as done: landed, result unknown)."""

    def __init__(self, server: FakeServer, over_at: str = "", done: str = "") -> None:
        super().__init__(server)
        self.over_at, self.done = over_at, done

    def send(self, snapshot: Snap, action: str, deadline: float) -> Landed:
        self.server.attempts.append(action)
        self.server.land(action)
        if action == self.over_at:
            self.server.cancelled = True  # the game is over (e.g. a flag fell) with this action
            return Landed(None, over=True, settled="already done" if action == self.done else None)
        if action == self.done:
            return Landed(None, settled="400 already done")
        return Landed(f"result of {action}", over=self.server.over)


def test_an_action_refused_as_already_done_is_settled_with_its_result_unknown(tmp_path: Path) -> None:
    server = FakeServer(length=4)
    io = SettlingIO(server, done="move1")
    player = FakePlayer()
    loop = play(tmp_path, server, io, player)
    assert server.attempts == ["move1", "move3"] and loop.result.settled == 1
    assert any("the answer to 'move1' was lost and the server says it was carried out (400 already done)" in n
               for n in io.notes)


def test_an_answer_saying_the_game_is_over_drops_the_rest_of_the_decision(tmp_path: Path) -> None:
    """A decision of two actions (RBC: move, then end turn): the first one's answer says the game is over, the
    second is not sent."""

    class TwoActions(FakePlayer):
        def decide(self, snapshot: Snap, deadline: float, options: Any, refused: Sequence[str]) -> Decision[str]:
            return Decision((f"move{snapshot.turn}", f"end{snapshot.turn}"))

    server = FakeServer(length=6)
    io = SettlingIO(server, over_at="move3")
    loop = play(tmp_path, server, io, TwoActions())
    assert server.attempts == ["move1", "end1", "move3"] and loop.result.final is not None
    assert loop.result.final.over


# --- RBC on the loop: the reconchess adapter's side and a reconchess.Player, over a scripted fake API --------
class FakeRbcApi:
    """The reconchess API of one game (``RbcApi``'s calls the game uses) over reconchess's own ``LocalGame``,
    without a socket. The opponent plays its whole turn (no sense, a random move) when the status is read.
    ``lose``: POSTs ("sense", "move", "end_turn") whose answer is lost after the server carried them out: the
    HTTP layer's resend is refused (400 "already ...", ``maybe_done``). ``stop_after``: the POST after which
    the daemon stops (the answer is lost with it: the game is left to the next run)."""

    def __init__(self, color: bool = True, turns: int = 4, seed: int = 7) -> None:
        import random

        import reconchess

        self.game = reconchess.LocalGame(seconds_per_player=900, seconds_increment=0, full_turn_limit=turns)
        self.game.store_players("bot" if color else "opp", "opp" if color else "bot")
        self.game.start()
        self.our_color = color
        self.rng = random.Random(seed)
        self.calls: list[str] = []
        self.lose: set[str] = set()
        self.stop_after = ""
        self.stop: Any = None
        self.done: set[str] = set()  # what we did this turn
        self.error_resigned = False
        self.finished: list[int] = []

    def _post(self, name: str) -> None:
        from bridge.adapters.reconchess.api import ApiError, Stopped

        self.calls.append(name)
        if self.stop is not None and self.stop.is_set():
            raise Stopped("the daemon is stopping")
        if name in self.done:
            raise ApiError(f"{name}: 400", 400, f"already {name}")

    def _after(self, name: str) -> None:
        from bridge.adapters.reconchess.api import ApiError, Stopped

        self.done.add(name)
        if name == self.stop_after:
            self.stop_after = ""
            self.stop.set()
            raise Stopped("the daemon is stopping")
        if name in self.lose:
            self.lose.discard(name)
            raise ApiError(f"{name}: 400 after a lost answer", 400, f"already {name}", maybe_done=True)

    def _opponent(self) -> None:
        game = self.game
        if game.is_over() or game.turn == self.our_color:
            return
        game.opponent_move_results()
        game.sense(None)
        game.move(self.rng.choice(sorted(game.move_actions(), key=str)))
        game.end_turn()
        self.done = set()

    def color(self, g: int) -> bool:
        return self.our_color

    def starting_board(self, g: int) -> Any:
        import chess

        return chess.Board()

    def opponent_name(self, g: int) -> str:
        return "opp"

    def ready(self, g: int) -> None:
        self.calls.append("ready")

    def game_status(self, g: int) -> Any:
        from bridge.adapters.reconchess.api import GameStatus, Stopped

        if self.stop is not None and self.stop.is_set():
            raise Stopped("the daemon is stopping")
        self._opponent()
        over = self.game.is_over()
        return GameStatus(is_my_turn=not over and self.game.turn == self.our_color, is_over=over)

    def sense_actions(self, g: int) -> list[int]:
        return self.game.sense_actions()

    def move_actions(self, g: int) -> list[Any]:
        return self.game.move_actions()

    def opponent_move_results(self, g: int) -> int | None:
        return self.game.opponent_move_results()

    def seconds_left(self, g: int) -> float:
        return self.game.get_seconds_left()

    def sense(self, g: int, square: int | None) -> Any:
        self._post("sense")
        result = self.game.sense(square)
        self._after("sense")
        return result

    def move(self, g: int, move: Any) -> Any:
        self._post("move")
        result = self.game.move(move)
        self._after("move")
        return result

    def end_turn(self, g: int) -> None:
        self._post("end_turn")
        self.game.end_turn()
        self._after("end_turn")

    def winner_color(self, g: int) -> bool | None:
        return self.game.get_winner_color()

    def win_reason(self, g: int) -> Any:
        return self.game.get_win_reason()

    def game_history(self, g: int) -> Any:
        return self.game.get_game_history()

    def error_resign(self, g: int) -> None:
        self.error_resigned = True

    def resign(self, g: int) -> None:
        self.game.resign()

    def finish(self, invitation_id: int) -> None:
        self.finished.append(invitation_id)

    def close(self) -> None:
        pass


class FakeRbcAdapter:
    """What ``ReconchessGame`` uses of ``ReconchessAdapter``."""

    url = "http://rbc.invalid"

    def __init__(self, api: FakeRbcApi, root: Path) -> None:
        import types

        self.api = api
        self.root = root
        self.server = types.SimpleNamespace(status_interval=0.0, username="bot")
        self.stats: dict[str, int] = {}

    def make_api(self, stop: Any) -> FakeRbcApi:
        self.api.stop = stop
        return self.api

    def state_file(self, game_id: int) -> Path:
        return self.root / "state" / f"reconchess-{game_id}.json"

    def state_identity(self, invitation_id: int | None) -> dict[str, Any]:
        return {"url": self.url, "username": "bot", "invitation_id": invitation_id}

    def forget_accept(self, invitation_id: int | None) -> None:
        pass

    def count(self, stat: str, n: int = 1) -> None:
        self.stats[stat] = self.stats.get(stat, 0) + n


class TellingPlayer:
    """A reconchess.Player that senses the first square offered, plays the first move offered, and keeps
    what it was told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def handle_game_start(self, color: bool, board: Any, opponent_name: str) -> None:
        self.told.append(f"start {opponent_name}")

    def handle_opponent_move_result(self, captured_my_piece: bool, capture_square: int | None) -> None:
        self.told.append("opponent")

    def choose_sense(self, sense_actions: list[int], move_actions: list[Any], seconds_left: float) -> int:
        self.told.append("choose_sense")
        return sorted(sense_actions)[0]

    def handle_sense_result(self, sense_result: list[Any]) -> None:
        self.told.append(f"sensed {len(sense_result)}")

    def choose_move(self, move_actions: list[Any], seconds_left: float) -> Any:
        self.told.append("choose_move")
        return sorted(move_actions, key=str)[0]

    def handle_move_result(self, requested: Any, taken: Any, captured: bool, square: int | None) -> None:
        self.told.append(f"moved {taken}")

    def handle_game_end(self, winner: Any, reason: Any, history: Any) -> None:
        self.told.append(f"end {reason.name if reason is not None else None}")


class _RbcCtx:
    def __init__(self, root: Path, stop: Any) -> None:
        self.game_id = "9"
        self.config = None
        self.records_dir = root / "records"
        self.stop = stop
        self.notes: list[str] = []
        ctx = self

        class _Transcript:
            def note(self, text: str, source: str = "") -> None:
                ctx.notes.append(text)

        self.transcript = _Transcript()


def rbc_game(tmp_path: Path, api: FakeRbcApi, saved: Any = None) -> tuple[Any, TellingPlayer, _RbcCtx]:
    import threading

    from bridge.adapters.reconchess.play import ReconchessGame

    ctx = _RbcCtx(tmp_path, threading.Event())
    player = TellingPlayer()
    game = ReconchessGame(FakeRbcAdapter(api, tmp_path), ctx, 5, 9, lambda c: player, saved,  # type: ignore[arg-type]
                          resumed=saved is not None)
    return game.run(), player, ctx


def test_rbc_a_turn_is_a_sense_then_a_move_and_the_end_of_the_turn(tmp_path: Path) -> None:
    api = FakeRbcApi(turns=3)
    result, player, ctx = rbc_game(tmp_path, api)
    assert result.error is None and result.turns == 3 and result.settled == 0
    assert api.calls == ["ready"] + ["sense", "move", "end_turn"] * 3
    turn = ["opponent", "choose_sense", "sensed 4", "choose_move"]  # a1: 4 squares
    assert player.told[:6] == ["start opp", *turn, player.told[5]] and player.told[5].startswith("moved ")
    assert player.told[-1] == "end TURN_LIMIT"
    assert sum(n.startswith("turn ") for n in ctx.notes) == 3 and "game over: a draw (TURN_LIMIT)" in ctx.notes[-3]
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["reconchess-9.json", "reconchess-9.pgn"]
    assert api.finished == [5] and not (tmp_path / "state" / "reconchess-9.json").exists()


def test_rbc_a_lost_sense_answer_is_settled_and_the_player_told_it_saw_nothing(tmp_path: Path) -> None:
    api = FakeRbcApi(turns=2)
    api.lose = {"sense"}
    result, player, ctx = rbc_game(tmp_path, api)
    assert result.error is None and result.settled == 1
    assert api.calls.count("sense") == 2  # the first one, and the next turn's: never sent twice in one turn
    assert player.told[1:4] == ["opponent", "choose_sense", "sensed 0"]  # lost: "saw nothing"
    assert any("the answer to 'sense a1' was lost and the server says it was carried out (already sense)" in n
               for n in ctx.notes)
    assert not api.error_resigned


@pytest.mark.parametrize("killed", [False, True])
def test_rbc_a_restart_between_sense_and_move_goes_on_with_the_turn(tmp_path: Path, killed: bool) -> None:
    """The daemon stops right after turn 2's sense: its move, chosen, is on disk as "sent" (the stop refused
    its POST), the game left on the server. ``killed``: the process died between the sense and the choice of the
    move (the state file has the sense alone). The next run replays turns 1-2 into a fresh player, does not
    sense again, sends the same move (or, killed, has the move chosen now), and ends the game."""
    from bridge.games.rbc_state import load_state, save_state

    api = FakeRbcApi(turns=3)
    first, _, _ = rbc_game_stopping_after(tmp_path, api, after_call=5)  # ready, sense, move, end_turn, sense
    assert first.error == "the daemon stopped during the game" and not api.error_resigned
    state_path = tmp_path / "state" / "reconchess-9.json"
    saved = load_state(state_path)
    assert len(saved.turns) == 2 and saved.turns[-1].move == "sent" and not saved.turns[-1].ended
    sent = saved.turns[-1].requested
    assert api.finished == [] and api.calls == ["ready", "sense", "move", "end_turn", "sense", "move"]
    if killed:
        saved.turns[-1].requested = saved.turns[-1].move = None
        save_state(state_path, saved)
    api.stop = None
    result, player, ctx = rbc_game(tmp_path, api, load_state(state_path))
    assert result.error is None and result.turns == 3 and not api.error_resigned
    assert api.calls[6:] == ["move", "end_turn", "sense", "move", "end_turn"]  # turn 2 not sensed again
    replayed = ["start opp", "opponent", "sensed 4", player.told[3], "opponent", "sensed 4"]
    assert player.told[:6] == replayed and player.told[3].startswith("moved ")
    assert player.told[6:8] == (["choose_move", player.told[7]] if killed else [f"moved {sent}", "opponent"])
    assert any(n.startswith("resumed: the player was told the 2 turn(s)") and "turn 2 was under way" in n
               for n in ctx.notes)
    assert "turn 2: going on with the turn under way before the restart" in ctx.notes
    assert api.finished == [5] and not state_path.exists()


def rbc_game_stopping_after(tmp_path: Path, api: FakeRbcApi, after_call: int) -> tuple[Any, TellingPlayer, Any]:
    """``rbc_game`` with the daemon stopping once ``after_call`` POSTs were answered."""
    original = api._after

    def after(name: str) -> None:
        original(name)
        if len(api.calls) == after_call:
            api.stop.set()

    api._after = after  # type: ignore[method-assign]
    try:
        return rbc_game(tmp_path, api)
    finally:
        api._after = original  # type: ignore[method-assign]
