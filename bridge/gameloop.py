"""One turn-based game loop for every server and game, and the small contract it is driven by.

The loop (:class:`GameLoop`) runs one game in the calling thread (the daemon's game thread, ``Host.run_game``).
Two parties plug into it; neither sees the other, and the loop names no server and no game.

**The adapter side** (:class:`GameIO`, one object per game, written by the adapter) knows the server:

- ``open()`` joins the game and returns its first :class:`Snapshot` (waiting for the opponent if need be);
  ``read(deadline)`` reads the state again. A snapshot is the whole game as the server shows it, plus four
  neutral facts: ``turn`` (a number that grows as the game goes on: one decision of ours per turn number;
  where the server gives none, the adapter counts our turns itself, a new number each time our turn comes
  after one of ours ended), ``our_turn``, ``over`` and ``time_left`` (seconds left on our turn when it was
  read; None: no limit).
- ``wait(snapshot)`` returns when the game may have changed (a poll interval, a webhook, a pushed event).
- ``stale(snapshot)``, asked after each decision: why it no longer fits the game (a server that pushes its
  state may have changed the position while the engine thought), or None. A stale decision is dropped, the turn
  left unplayed, and the next state read decides again.
- ``options(snapshot, deadline)`` reads what the server offers this turn (the moves it lists, ...) for the
  decision; anything, passed through to the player. When it fails without a FATAL or STOPPED fault (the game
  ended meanwhile, ...), the turn is left and the next state read tells.
- ``send(snapshot, action, deadline)`` sends one action and returns :class:`Landed` (its result, and whether
  the answer says the game is over). An action is sent only by the loop, and never twice for one turn unless
  the server's state shows that the first did not land. An adapter that resumes games after a restart
  writes down here what it is about to send before sending it (a restart then sends the same action again
  rather than let the player choose another). ``Landed.settled``: the server refused a resend of the action
  as already carried out (its first answer was lost; the adapter's HTTP layer sent it again): it landed and
  its result is unknown; the loop counts it as settled and notes it.
- ``settle(snapshot, action, fault, deadline)``: the answer to an action was lost (or met an error that does not
  say whether it was carried out); the adapter finds out from the server, never by sending it again, and says
  :class:`Settlement`: it ``LANDED``, it did ``NOT_LAND`` (the loop may send it again) or the ``TURN_OVER``
  came without it. Raising means it could not find out in time.
- ``classify(exc)`` turns any exception of its calls into a :class:`Fault`: ``FATAL`` (credentials refused,
  a bug: the game ends), ``TRANSIENT`` (surely not carried out: sent again with backoff until the turn's
  deadline), ``LOST`` (maybe carried out: settled), ``REJECTED`` (the server refused it as invalid: the state
  is read again and the player decides again) or ``STOPPED`` (the daemon is stopping: the game is left at a
  turn boundary, on the server, for the next start).
- ``cancel()`` (False: this server cannot, or it failed) and ``resign()``: used when the engine cannot play.
- ``played``/``observed``-style bookkeeping of the adapter's own (a turn log kept on disk, ...) goes in
  ``played(...)``; ``game_over(final)``, ``records(final)``, ``wrap_up(final)``, ``stopped()``,
  ``abandoned(exc)`` and ``close()`` bracket the end; ``note``/``incident`` write the game's transcript (and
  log). See the Protocol for the signatures.

**The game-player side** (:class:`GamePlayer`, written once per game kind) knows the engine:

- ``start(snapshot)`` starts the engine and tells it the game; ``observe(snapshot)`` tells it what changed.
- ``decide(snapshot, deadline, options, refused)`` returns one :class:`Decision` for our turn: one or more
  actions sent in order, by ``deadline`` (``time.monotonic()``). ``Decision.more`` says the turn goes on after
  them (e.g. RBC: sense, then -- told the sense result through ``played`` -- move): ``decide`` is asked again
  within the same turn. ``refused``: the actions the server refused this turn. An engine that fails raises
  :class:`bridge.errors.EngineError`.
- ``restart(why)`` replaces a failed engine by a fresh one told the whole game again (a replay);
  ``fallback(snapshot, why, refused)`` is a safe decision without the engine (None: the game has none).
- ``played(snapshot, decision, action, landed, after)`` tells it what became of an action (before the adapter's
  ``played``, which may read the player's account of it -- e.g. to save it to a state file); a ``landed.result``
  of None means the result is not known (the player rebuilds it later from what the game shows, or goes on
  without it); ``rejected(action, reason)`` that the server refused one; ``records(final)`` tells it the game
  is over (after the adapter's ``game_over``) and asks for its records; ``close()`` stops the engine
  (idempotent, never raises).
- A player that resumes a game (its earlier observations replayed in ``start``) may be asked to decide a turn
  it had begun before the restart (the adapter counted it as the same turn): it decides what is left of it.

**Written once, here:** waiting for our turn; one decision per turn number; the turn's deadlines
(:class:`TurnClock`: the engine must answer by ``engine_by``, the action be on its way by ``send_by``); a
fallback when too little time is left to ask the engine (``LoopSettings.min_think``); a decision's remaining
actions dropped when an answer says the game is over; engine failures ->
restart and replay (``max_restarts`` a game) -> the player's fallback, else give up: cancel while no action of
ours has landed (where the server can), else resign; transient send failures retried with capped backoff until
the deadline; lost answers settled (at most one blind resend when the state cannot be read before the limit);
refusals: the state read again and the player asked again (``max_rejections`` a turn); transcript notes and
incidents; records written atomically (``records_dir/NAME`` via a temporary file, redacted); a clean end in
every case: the engine closed, the engine slot released, the adapter closed, never a wait without a bound.
"""

from __future__ import annotations

import enum
import logging
import math
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from bridge.datadir import advice
from bridge.errors import AuthError, BridgeError, EngineError
from bridge.redact import redact

log = logging.getLogger("bridge.gameloop")

S = TypeVar("S")  # the game's state as the adapter parses it
A = TypeVar("A")  # one action sent to the server

# A turn's time (TurnClock): the action is on its way SEND_RESERVE s before the turn limit (or by 3/4 of what
# was left when the turn was seen); the engine gets at least ENGINE_SHARE of the time until then, whatever the
# margin says; the calls before it (``GameIO.options``) at most PRE_ENGINE_SHARE of the engine's time.
SEND_RESERVE = 1.5
ENGINE_SHARE = 0.5
PRE_ENGINE_SHARE = 0.1
SETTLE_PAUSE = 0.5  # seconds before reading the state to settle an action whose answer was lost
LAST_CALL = 0.3  # seconds before the turn limit after which no action is sent any more
BACKOFF_MIN, BACKOFF_MAX = 0.2, 2.0  # seconds between tries of an action met by a transient failure
GIVE_UP_WAIT = 30.0  # seconds to wait for the game's end after the bridge resigned or cancelled it


# --- the messages -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot(Generic[S]):
    """The game as the server shows it (``state``, the adapter's own type) and the facts the loop reads."""

    state: S
    turn: int
    our_turn: bool
    over: bool = False
    time_left: float | None = None  # seconds left on our turn when it was read; None: no limit
    label: str = ""  # how notes and logs name this turn ("move 41"); empty: "turn N"


@dataclass(frozen=True)
class Decision(Generic[A]):
    """What we do now: ``actions`` sent in order; ``source`` "engine" or "fallback" (``why``: why the fallback);
    ``more``: the turn goes on after these (``GamePlayer.decide`` is asked again in the same turn)."""

    actions: tuple[A, ...]
    source: str = "engine"
    why: str = ""
    more: bool = False


@dataclass(frozen=True)
class Landed:
    """An action the server carried out: its ``result`` as the adapter read it from the answer (None: not
    known, e.g. when it was settled from the state), ``over``: the answer says the game is over."""

    result: Any = None
    over: bool = False
    settled: str | None = None  # the server refused a resend as already done (its text): landed, result unknown


class FaultKind(enum.Enum):
    FATAL = "fatal"
    TRANSIENT = "transient"
    LOST = "lost"
    REJECTED = "rejected"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Fault:
    """An exception classified by the adapter: ``reason`` (short, for the transcript); ``answered`` how the
    server answered (e.g. "HTTP 500"), None when the answer was lost."""

    kind: FaultKind
    reason: str
    answered: str | None = None


class Verdict(enum.Enum):
    LANDED = "landed"
    NOT_LANDED = "not landed"
    TURN_OVER = "turn over"


@dataclass(frozen=True)
class Settlement(Generic[S]):
    verdict: Verdict
    after: Snapshot[S]


@dataclass(frozen=True)
class Record:
    """One record of the game, written as ``records_dir/name``; ``source`` says where it came from."""

    name: str
    text: str
    source: str = ""


class Outcome(enum.Enum):
    DONE = "done"  # the action landed
    GONE = "gone"  # the turn is over without it
    UNKNOWN = "unknown"  # whether it landed could not be learnt in time (the next state read tells)
    REJECTED = "rejected"  # the server refused it


@dataclass
class LoopResult:
    turns: int = 0  # actions of ours that landed
    decisions: int = 0
    fallbacks: int = 0  # decisions made without the engine
    settled: int = 0  # actions whose lost answers were settled from the state
    rejected: int = 0
    restarts: int = 0  # engine restarts done by the loop
    gave_up: str | None = None  # "cancelled" or "resigned" when the engine could not play
    already_over: bool = False
    error: str | None = None
    final: Snapshot[Any] | None = None
    records: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class LoopSettings:
    margin: float = 0.0  # seconds the engine's answer is due before ``send_by`` (at most 1 - ENGINE_SHARE of it)
    max_restarts: int = 3  # engine.max_restarts
    max_rejections: int = 6  # refused actions in one turn before the bridge stops trying (the turn is then lost)
    min_think: float = 0.0  # below this many seconds for the engine, the fallback is used without asking it
    server: str = "the server"  # how notes name the server ("the platform")
    abandon: str = "the bridge stops following this game"  # what the adapter's ``abandoned`` does, for the log


# --- the turn's time ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TurnClock:
    """The time of one of our turns, in ``time.monotonic()`` terms, from the snapshot that showed it: ``limit``
    is when the server's turn limit passes (``math.inf``: none). Every call of the turn gets a deadline from it."""

    started: float
    limit: float
    margin: float

    @classmethod
    def of(cls, time_left: float | None, margin: float, now: float | None = None) -> TurnClock:
        now = time.monotonic() if now is None else now
        left = math.inf if time_left is None else max(time_left, 0.0)
        return cls(now, now + left, margin)

    @property
    def send_by(self) -> float:
        """The action must be on its way by then (retries and settling included)."""
        left = self.limit - self.started
        return self.started + max(left - SEND_RESERVE, 0.75 * left)

    @property
    def engine_by(self) -> float:
        """The engine must have answered by then: ``margin`` before ``send_by``, but the engine gets at least
        ENGINE_SHARE of the time until ``send_by`` (so a late turn leaves it something)."""
        window = self.send_by - self.started
        return self.started + max(window - self.margin, ENGINE_SHARE * window)

    @property
    def pre_engine_by(self) -> float:
        """The calls before the engine is asked are given up by then."""
        return self.started + PRE_ENGINE_SHARE * (self.engine_by - self.started)


def finite(deadline: float) -> float | None:
    """A deadline for a call: None when there is none."""
    return deadline if math.isfinite(deadline) else None


# --- the contract -------------------------------------------------------------------------------------------
class GameIO(Protocol[S, A]):
    """The adapter's side of one game (see the module docstring)."""

    def open(self) -> Snapshot[S]: ...

    def read(self, deadline: float | None = None) -> Snapshot[S]: ...

    def wait(self, snapshot: Snapshot[S]) -> None: ...

    def options(self, snapshot: Snapshot[S], deadline: float) -> Any: ...

    def stale(self, snapshot: Snapshot[S]) -> str | None:
        """Asked after the player decided: why the decision no longer fits the game (a pushed state changed the
        position while the engine thought; an undo request came meanwhile), or None. A server polled turn by turn
        answers None."""
        ...

    def send(self, snapshot: Snapshot[S], action: A, deadline: float) -> Landed: ...

    def settle(self, snapshot: Snapshot[S], action: A, fault: Fault, deadline: float) -> Settlement[S]: ...

    def classify(self, exc: BaseException) -> Fault: ...

    def played(self, snapshot: Snapshot[S], decision: Decision[A], action: A, landed: Landed,
               after: Snapshot[S] | None) -> None: ...

    def cancel(self) -> bool: ...

    def resign(self) -> None: ...

    def engine_slot(self) -> AbstractContextManager[Any]: ...

    def game_over(self, final: Snapshot[S]) -> None: ...

    def records(self, final: Snapshot[S]) -> list[Record]: ...

    def wrap_up(self, final: Snapshot[S], written: list[Path]) -> None: ...

    def stopped(self) -> None: ...

    def abandoned(self, exc: BaseException) -> None: ...

    def close(self) -> None: ...

    def note(self, text: str) -> None: ...

    def incident(self, text: str, level: int = logging.WARNING) -> None: ...

    @property
    def stopping(self) -> bool: ...

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the daemon stops meanwhile (then raise the adapter's stop exception)."""
        ...


class GamePlayer(Protocol[S, A]):
    """The game player's side of one game (see the module docstring)."""

    def start(self, snapshot: Snapshot[S]) -> None: ...

    def observe(self, snapshot: Snapshot[S]) -> None: ...

    def decide(self, snapshot: Snapshot[S], deadline: float, options: Any,
               refused: Sequence[A]) -> Decision[A]: ...

    def restart(self, why: str) -> None: ...

    def fallback(self, snapshot: Snapshot[S], why: str, refused: Sequence[A]) -> Decision[A] | None: ...

    def played(self, snapshot: Snapshot[S], decision: Decision[A], action: A, landed: Landed,
               after: Snapshot[S] | None) -> None: ...

    def rejected(self, action: A, reason: str) -> None: ...

    def records(self, final: Snapshot[S]) -> list[Record]:
        """The game is over (told after the adapter's ``game_over``): the player's last word and records."""
        ...

    def close(self) -> None: ...


class _GiveUp(Exception):
    pass


class _NoTime(Exception):
    """The engine failed with too little time left to restart it this turn: the fallback now, a restart at the
    next turn."""


# --- the loop -----------------------------------------------------------------------------------------------
class GameLoop(Generic[S, A]):
    """Plays one game from ``io.open()`` to its end in the calling thread; ``run`` never raises."""

    def __init__(self, io: GameIO[S, A], player: GamePlayer[S, A], records_dir: Path,
                 settings: LoopSettings | None = None, name: str = "",
                 turn_scope: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self.io = io
        # held around each turn, from the decision to the action on its way (e.g. the transcript's hold: its
        # lines go to disk once the action is sent, not between the engine's answer and the send)
        self.turn_scope = turn_scope or nullcontext
        self.player = player
        self.records_dir = Path(records_dir)
        self.settings = settings or LoopSettings()
        self.name = name or "game"
        self.result = LoopResult()
        self.last_played: int | None = None
        self.over_hint = False
        self._started = False
        self._engine_down: str | None = None  # the engine cannot play any more (restarts used up)
        self.now: Callable[[], float] = time.monotonic  # the loop's clock (tests replace it)

    # --- the whole game -------------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        io = self.io
        try:
            snap = io.open()
            if snap.over:  # a game we were told of after its end (a restart after a long stop)
                self.result.already_over = True
                final = snap
            else:
                with io.engine_slot():
                    try:
                        self._start(snap)
                        final = self._loop(snap)
                    finally:
                        self._close_player()
            self._end(final)
        except Exception as exc:
            self._failed(exc)
        finally:
            self._close_player()
            try:
                io.close()
            except Exception as exc:
                log.warning("%s: closing the server's side of the game failed (%s); the game's result stands, "
                            "nothing to do", self.name, exc)
        return self.result

    def _failed(self, exc: Exception) -> None:
        io = self.io
        try:
            fault = io.classify(exc)
        except Exception:
            fault = Fault(FaultKind.FATAL, str(exc))
        if fault.kind is FaultKind.STOPPED:
            self.result.error = "the daemon stopped during the game"
            io.stopped()
            return
        if not isinstance(exc, BridgeError):  # a bug: one line in the log, the details in the transcript
            self.result.error = f"{type(exc).__name__}: {exc}"
            log.error("%s: internal failure (%s); %s (traceback in the transcript)", self.name,
                      redact(self.result.error), self.settings.abandon)
            io.note(f"internal failure:\n{traceback.format_exc().rstrip()}")
        else:
            self.result.error = str(exc)
            if isinstance(exc, AuthError):  # says itself what to fix
                io.incident(str(exc), logging.ERROR)
            elif io.stopping:
                log.info("%s: left unfinished (%s)", self.name, exc)
            else:
                io.incident(f"{exc}; {self.settings.abandon}", logging.ERROR)
        try:
            io.abandoned(exc)
        except Exception as inner:
            log.warning("%s: after the failure, giving the game up (%s) failed too: %s; the game is left as it is "
                        "on %s", self.name, self.settings.abandon, inner, self.settings.server)

    def _close_player(self) -> None:
        try:
            self.player.close()
        except Exception as exc:
            log.warning("%s: closing the engine's side failed (%s); the game's result stands; if its engine "
                        "process is still running, stop it by hand", self.name, exc)

    def _start(self, snap: Snapshot[S]) -> None:
        self._started = True
        try:
            self.player.start(snap)
        except EngineError as exc:  # retried (restarted) at our first turn, within max_restarts
            self.io.incident(f"the engine failed to start: {exc}")
            self._engine_trouble(snap, str(exc), deadline=math.inf)

    def _loop(self, snap: Snapshot[S]) -> Snapshot[S]:
        gave_up_at: float | None = None
        while True:
            if snap.over:
                return snap
            if self.result.gave_up is not None:  # resigned or cancelled: wait (boundedly) for the end
                gave_up_at = gave_up_at or self.now()
                if self.now() - gave_up_at > GIVE_UP_WAIT:
                    self.io.note(f"the game did not end within {GIVE_UP_WAIT:.0f} s of giving it up; leaving it")
                    return snap
                self.io.wait(snap)
            elif snap.our_turn and (self.last_played is None or snap.turn > self.last_played):
                self.over_hint = False
                with self.turn_scope():
                    self._turn(snap)
                if not self.over_hint and self.result.gave_up is None:
                    self.io.wait(snap)  # the opponent plays now: no state read before it can have played
            else:
                self.io.wait(snap)
            snap = self.io.read(None)

    # --- one turn -------------------------------------------------------------------------------------------
    def _turn(self, snap: Snapshot[S]) -> None:
        clock = TurnClock.of(snap.time_left, self.settings.margin, self.now())
        self.player.observe(snap)
        try:
            options = self.io.options(snap, clock.pre_engine_by)
        except Exception as exc:
            fault = self.io.classify(exc)
            if fault.kind in (FaultKind.FATAL, FaultKind.STOPPED):
                raise
            self.io.note(f"{_name(snap)}: reading the turn's options failed ({fault.reason}); the next state "
                         f"read tells")
            return
        refused: list[A] = []
        while True:
            try:
                decision = self._decide(snap, clock, options, refused)
            except _GiveUp:
                return
            moved_on = self.io.stale(snap)
            if moved_on is not None:  # the next state read brings the newer game; this turn is decided again
                self.io.note(f"{_name(snap)}: {moved_on}; the {decision.source} decision is dropped")
                return
            self.result.decisions += 1
            if decision.source != "engine":
                self.result.fallbacks += 1
            outcome, after, reason, action = Outcome.DONE, None, "", None
            for action in decision.actions:
                outcome, after, reason = self._send(snap, decision, action, clock)
                if outcome is not Outcome.DONE or self.over_hint:  # the rest is not sent after the game's end
                    break
            if outcome is Outcome.DONE:
                if decision.more and not self.over_hint:
                    continue
                self.last_played = snap.turn
                return
            if outcome is Outcome.GONE:  # the turn is over without our action (expired, game over)
                self.io.incident(f"{_name(snap)}: the turn ended before an action of ours was carried out ("
                                 f"{decision.source} action '{action}': {reason})")
                return
            if outcome is Outcome.UNKNOWN:  # the next state read tells (played again if still ours)
                self.io.incident(f"{_name(snap)}: whether {decision.source} action '{action}' was carried "
                                 f"out is not known ({reason}); the next state read tells")
                return
            assert action is not None
            refused.append(action)
            self.result.rejected += 1
            if len(refused) >= self.settings.max_rejections:
                self.io.incident(f"{_name(snap)}: {len(refused)} actions refused; the bridge waits for "
                                 f"the server to move on", logging.ERROR)
                self.last_played = snap.turn
                return
            if after is not None:
                if after.over or not after.our_turn or after.turn != snap.turn:
                    return
                snap = after

    def _decide(self, snap: Snapshot[S], clock: TurnClock, options: Any, refused: list[A]) -> Decision[A]:
        """The player's decision; an engine that fails is restarted and asked again while restarts and time
        are left; then the fallback, else the game is given up (:class:`_GiveUp`)."""
        while True:
            if self._engine_down is not None:
                return self._fallback(snap, self._engine_down, refused)
            left = clock.engine_by - self.now()
            if self.settings.min_think > 0 and left < self.settings.min_think:
                return self._fallback(snap, f"only {max(left, 0.0):.1f} s were left for the engine", refused)
            try:
                return self.player.decide(snap, clock.engine_by, options, refused)
            except EngineError as exc:
                try:
                    self._engine_trouble(snap, str(exc), clock.engine_by)
                except _NoTime:
                    return self._fallback(snap, f"the engine failed with too little time left to restart it "
                                                f"({exc})", refused)

    def _engine_trouble(self, snap: Snapshot[S], why: str, deadline: float) -> None:
        """Restart the engine (a replay) if a restart is left and time allows; else mark it down."""
        restarts_left = self.settings.max_restarts - self.result.restarts
        time_left = deadline - self.now()
        if restarts_left <= 0:
            self._engine_down = (f"the engine failed {self.result.restarts + 1} times (engine.max_restarts="
                                 f"{self.settings.max_restarts}): {why}")
            return
        if time_left < self.settings.min_think:
            self.io.incident(f"the engine failed: {why}; too little time left to restart it this turn")
            raise _NoTime(why)
        self.result.restarts += 1
        self.io.incident(f"the engine failed: {why}; restarting it and replaying the game "
                         f"({self.result.restarts} of {self.settings.max_restarts} restart(s))")
        try:
            self.player.restart(why)
        except EngineError as exc:
            self._engine_trouble(snap, str(exc), deadline)

    def _fallback(self, snap: Snapshot[S], why: str, refused: list[A]) -> Decision[A]:
        decision = self.player.fallback(snap, why, refused)
        if decision is not None:
            return decision
        self._give_up(why)
        raise _GiveUp(why)

    def _give_up(self, why: str) -> None:
        """No engine and no fallback: cancel the game while no action of ours has landed, else resign."""
        io = self.io
        if self.result.turns == 0:
            try:
                if io.cancel():
                    log.error("%s: cancelling the game (no move of ours yet): %s", self.name, why)
                    io.note(f"cancelling the game (no move of ours yet): {why}")
                    self.result.gave_up = "cancelled"
                    return
            except Exception as exc:
                if io.classify(exc).kind is FaultKind.STOPPED:
                    raise
                log.error("%s: could not cancel: %s; resigning instead", self.name, exc)
        log.error("%s: resigning: %s", self.name, why)
        io.note(f"resigning: {why}")
        self.result.gave_up = "resigned"
        try:
            io.resign()
        except Exception as exc:
            if io.classify(exc).kind is FaultKind.STOPPED:
                raise
            log.error("%s: could not resign (%s); the game stays open on %s until our clock runs out: resign it "
                      "there by hand to end it sooner", self.name, exc, self.settings.server)

    # --- one action -----------------------------------------------------------------------------------------
    def _send(self, snap: Snapshot[S], decision: Decision[A], action: A,
              clock: TurnClock) -> tuple[Outcome, Snapshot[S] | None, str]:
        """Send ``action`` until it lands or is refused. A transient failure (surely not carried out) is sent
        again with backoff; a lost answer is settled from the state: landed, or sent again while the turn's time
        lasts. When the state cannot be read before the action must be on its way, the action is sent once more
        anyway rather than let the turn expire: had the first landed, the turn would have moved on and the
        server would refuse this one as out of turn."""
        io = self.io
        blind = False
        pause = BACKOFF_MIN
        while True:
            try:
                landed = io.send(snap, action, clock.send_by)
            except Exception as exc:
                fault = io.classify(exc)
                if fault.kind in (FaultKind.FATAL, FaultKind.STOPPED):
                    raise
                if fault.kind is FaultKind.REJECTED:
                    return self._rejected(snap, decision, action, fault.reason, clock)
                if fault.kind is FaultKind.TRANSIENT:
                    room = clock.send_by - self.now()
                    if room <= LAST_CALL:
                        return Outcome.GONE, None, f"it could not be sent in time ({fault.reason})"
                    wait = min(pause, max(room / 4, BACKOFF_MIN), room - LAST_CALL)
                    io.note(f"{_name(snap)}: sending '{action}' failed ({fault.reason}); trying again in "
                            f"{wait:.1f} s")
                    io.pause(wait)
                    pause = min(pause * 2, BACKOFF_MAX)
                    continue
                verdict, after = self._settle(snap, action, fault, clock, blind)
                if verdict is Verdict.LANDED:
                    self.result.settled += 1
                    self._played(snap, decision, action, Landed(), after)
                    return Outcome.DONE, None, ""
                if verdict is Verdict.TURN_OVER:
                    return Outcome.GONE, after, "its answer was lost" if after is not None else fault.reason
                if self.now() >= clock.limit - LAST_CALL:
                    return Outcome.UNKNOWN, None, "the turn limit came before it could be sent again"
                if verdict is None:
                    if blind:
                        return Outcome.UNKNOWN, None, "the state could not be read, even after it was sent once more"
                    blind = True
                continue
            self.over_hint = landed.over
            if landed.settled is not None:
                self.result.settled += 1
                self.io.note(f"{_name(snap)}: the answer to '{action}' was lost and {self.settings.server} says "
                             f"it was carried out ({_short(landed.settled, 80)}); its result is unknown")
            self._played(snap, decision, action, landed, None)
            return Outcome.DONE, None, ""

    def _played(self, snap: Snapshot[S], decision: Decision[A], action: A, landed: Landed,
                after: Snapshot[S] | None) -> None:
        self.result.turns += 1
        self.player.played(snap, decision, action, landed, after)
        self.io.played(snap, decision, action, landed, after)

    def _rejected(self, snap: Snapshot[S], decision: Decision[A], action: A, reason: str,
                  clock: TurnClock) -> tuple[Outcome, Snapshot[S] | None, str]:
        io = self.io
        self.player.rejected(action, reason)
        after: Snapshot[S] | None
        try:
            after = io.read(finite(clock.send_by))
        except Exception as exc:
            if io.classify(exc).kind in (FaultKind.FATAL, FaultKind.STOPPED):
                raise
            io.note(f"the state after a refusal could not be read ({exc}); going on from the last one")
            after = None
        if after is not None and (after.over or not after.our_turn or after.turn != snap.turn):
            return Outcome.GONE, after, f"{self.settings.server} refused it: {reason}"
        io.incident(f"{_name(snap)}: {self.settings.server} refused {decision.source} action '{action}': "
                    f"{reason}")
        return Outcome.REJECTED, after, reason

    def _settle(self, snap: Snapshot[S], action: A, fault: Fault, clock: TurnClock,
                blind: bool) -> tuple[Verdict | None, Snapshot[S] | None]:
        """Did an action whose answer was lost land? None: the state could not be read in time (the action is
        then sent once more; ``blind`` says whether it already was)."""
        io = self.io
        what = (f"the answer to '{action}' was lost" if fault.answered is None
                else f"'{action}' was answered {fault.answered}")
        io.pause(min(SETTLE_PAUSE, max(clock.send_by - self.now(), 0.0) / 4))
        try:
            settlement = io.settle(snap, action, fault, clock.send_by)
        except Exception as read_error:
            if io.classify(read_error).kind in (FaultKind.FATAL, FaultKind.STOPPED):
                raise
            verdict = ("the state could not be read in time either" if blind else
                       f"the state could not be read in time ({_short(str(read_error), 120)}): sending it once "
                       f"more before the turn limit")
            io.incident(f"{_name(snap)}: {what} ({fault.reason}); {verdict}")
            return None, None
        text = {Verdict.LANDED: "the state shows it was carried out",
                Verdict.NOT_LANDED: "the state shows it was not carried out: sending it again",
                Verdict.TURN_OVER: "the turn ended without it"}[settlement.verdict]
        if settlement.verdict is Verdict.TURN_OVER:  # the turn loop says so, once
            io.note(f"{_name(snap)}: {what} ({fault.reason}); {text}")
        else:
            io.incident(f"{_name(snap)}: {what} ({fault.reason}); {text}")
        return settlement.verdict, settlement.after

    # --- the end --------------------------------------------------------------------------------------------
    def _end(self, final: Snapshot[S]) -> None:
        self.result.final = final
        self.io.game_over(final)
        records = self.io.records(final)
        if self._started:
            records += self.player.records(final)
        for record in records:
            path = self.write_record(record)
            if path is not None:
                self.result.records.append(path)
        self.io.wrap_up(final, self.result.records)

    def write_record(self, record: Record) -> Path | None:
        """Write ``record`` whole, then rename it into place (a reader, or a crash, never sees half a record);
        secrets redacted."""
        path = self.records_dir / record.name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(redact(record.text), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            self.io.incident(f"could not write the record {path}: {exc.strerror or exc}; the game is not affected; "
                             f"{advice(path.parent)}")
            return None
        self.io.note(f"record written: {path}" + (f" ({record.source})" if record.source else ""))
        return path


def _name(snap: Snapshot[Any]) -> str:
    return snap.label or f"turn {snap.turn}"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
