"""Go on the one game loop (:mod:`bridge.gameloop`): the two sides of a Go game whose server pushes its state.

A Go server (OGS) pushes the whole game as snapshots, plus a few events that are not snapshots (an undo request,
a chat line, a refusal of something we sent, the game abandoned); a move we send has no answer of its own: it
*lands* when a snapshot shows it. Both sides here are server-neutral: the adapter supplies a
:class:`bridge.events.GoActions` (what can be asked of the server) and posts the events into the session's
:class:`bridge.slot.Mailbox`.

- :class:`GoIO` is the loop's ``GameIO``. Its ``read`` is the newest snapshot in the mailbox's slot (no queue, no
  reordering); ``wait`` blocks until a newer version (or one of its own timers); ``send`` writes an action and, for
  a move, waits until a snapshot shows it (or the server refuses it, or a resync shows it missing: a lost answer
  that ``settle`` resolves by waiting :data:`RESEND_GRACE` for a move still in flight); ``stale`` tells the loop
  that the position changed while the engine thought. The turn number is the IO's own count of decision points:
  a new one each time the position (moves, or the stone removal proposal) changes.
- :class:`GoGame` is the loop's ``GamePlayer``: the engine's move (:class:`bridge.games.go.GoPlayer`, with its
  managers and roles), the dead stones at the end, the bridge's own move (:mod:`bridge.games.go_fallback`, not a
  pass: an opponent's answering pass would end the game) after repeated refusals or when too little time is left
  to restart a failed engine and think.

The session (:class:`bridge.session.GameSession`) owns what both share: the transcript, the engine (and its slot),
the config, the stop event.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bridge.errors import BridgeError, EngineError
from bridge.gameloop import Decision, Fault, FaultKind, Landed, Record, Settlement, Snapshot, Verdict
from bridge.games.go import MIN_THINK, RESIGN, clock_command
from bridge.games.go_engines import GoEngineUser
from bridge.games.go_events import (
    AcceptRemoval,
    ActionRejected,
    ChatReceived,
    GameAbandoned,
    GameEvent,
    GoAction,
    GoActions,
    Play,
    Resign,
    SetRemoval,
    UndoRequested,
)
from bridge.games.go_fallback import FallbackMove, fallback_move
from bridge.games.go_pv import PvRelay
from bridge.games.gotypes import Color, GoState, Move
from bridge.games.sgf import to_sgf
from bridge.slot import Mailbox
from bridge.transcript import Transcript


class GoSessionParts(Protocol):
    """What the two Go sides use of the session that hosts them (:class:`bridge.session.GameSession`): the game's
    names, its files, the server's actions, the engine, the inbox and the stop event."""

    game_id: str
    server: str
    my_color: Color
    config: Any
    actions: GoActions
    transcript: Transcript
    record_path: Path
    stop_event: threading.Event
    inbox: Mailbox[GoState, GameEvent]
    player: GoEngineUser  # the engine manager's, maybe wrapped by go.opening_engine / go.ending_engine
    pv: PvRelay | None
    io: GoIO
    state: GoState | None
    result_state: GoState | None
    game_over: bool
    on_engine_down: Callable[[str], None] | None

    def answer_undo(self, move_number: int) -> None: ...

    def refused(self, message: str, during_send: bool) -> None: ...

    def ensure_slot(self) -> None: ...

    def touch(self) -> None: ...

    def idle_check(self, now: float) -> None: ...

    def idle_due(self) -> float | None: ...

log = logging.getLogger("bridge.session")

MAX_REMOVAL_ROUNDS = 3
RESEND_GRACE = 2.0  # seconds a resync must keep showing our move missing before it is sent again
REJECT_SETTLE = 2.0  # seconds to let the server's state settle after it refused our action
MAX_REJECTIONS = 3  # refusals at one position before the bridge plays a move of its own there instead
MAX_FALLBACK_REJECTIONS = 2  # refusals of its own moves after which the bridge passes there (within the loop's 6)
FALLBACK_SECONDS = 1.0  # at most this long to choose the bridge's own move (a quarter of the clock left, if less)
PHASE_WAIT = 2.0  # seconds to wait for the stone removal phase after two passes in a row, before moving anyway
END_RESULT_WAIT = 10.0  # seconds to wait for the result after a bare "finished" phase
ECHO_WAIT = 30.0  # seconds a sent move may go without a snapshot showing it before it counts as lost
IDLE_WAKE = 3600.0  # the longest a wait sleeps without a reason (a stop or a write wakes it at once anyway)


@dataclass(frozen=True)
class GoSnapshot(Snapshot[GoState]):
    """A snapshot with the mailbox version it was read from (``wait`` returns once a newer one exists)."""

    version: int = 0


class SessionStopped(BridgeError):
    """The daemon is stopping: the game is left as it is on the server, for the next start."""


class _Refused(BridgeError):
    pass


class _Lost(BridgeError):
    """Whether a sent move landed is not known yet (no echo, a resync without it, the game moved on)."""


def is_over(state: GoState) -> bool:
    return state.result is not None or state.phase == "finished"


def _position(state: GoState) -> tuple[Any, ...]:
    """What a decision depends on (a clock tick changes none of it)."""
    return (state.moves, state.phase, state.to_move, state.removal, is_over(state))


class GoIO:
    """The server's side of one Go game, for :class:`bridge.gameloop.GameLoop` (see the module docstring)."""

    def __init__(self, session: GoSessionParts) -> None:
        self.s = session
        self.mailbox = session.inbox
        self.seen_version = 0  # the newest slot version taken
        self.state: GoState | None = None
        self._refusals: list[str] = []  # refusals that came while a move of ours was on its way
        self._greeted = False
        self._turn_no = 0
        self._turn_key: tuple[Any, ...] | None = None
        self._epoch = 0  # +1 each time moves are taken back (undo): the same move count is a new position
        self._longest = 0
        self._pass_hold: tuple[int, float] | None = None  # (move count, until): waiting for the removal phase
        self._pass_waited: set[int] = set()
        self._removal_seen_at: int | None = None
        self._end_seen: float | None = None
        self._pending_at = 0  # the move count when our last move was sent
        self._sending = False  # a move of ours is on its way (a refusal now is the loop's to report)

    # --- reading --------------------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Handle the side events in their order, then take the slot's snapshot if it is newer."""
        s = self.s
        for event in self.mailbox.take_events():
            if isinstance(event, UndoRequested):
                s.answer_undo(event.move_number)
            elif isinstance(event, ChatReceived):
                s.transcript.note(f"chat from {event.username}: {event.body}")
            elif isinstance(event, ActionRejected):
                self._refusals.append(event.message)
                s.refused(event.message, during_send=self._sending)
            elif isinstance(event, GameAbandoned):
                raise BridgeError(f"the adapter can no longer follow this game: {event.reason}")
        version, state = self.mailbox.snapshot.get()
        if version > self.seen_version and state is not None:
            self.seen_version = version
            if self.state is not None and is_over(self.state) and not is_over(state):
                s.transcript.note("an in-play snapshot after the game's end is ignored")
                return
            self._take(state)

    def _take(self, state: GoState) -> None:
        n = len(state.moves)
        if n < self._longest:
            self._epoch += 1
        self._longest = n
        self.state = state
        self.s.state = state
        if not self._greeted and not is_over(state):
            self._greeted = True
            if self.s.config.go.greeting:
                self._chat(self.s.config.go.greeting)
        if state.phase == "stone removal":
            self._removal_seen_at = n
        if state.phase == "finished" and state.result is None and self._end_seen is None:
            self._end_seen = time.monotonic()
            self.s.transcript.note("phase finished; waiting for the result")

    def _stop_check(self) -> None:
        if self.s.stop_event.is_set():
            raise SessionStopped("the daemon is stopping")

    def _snapshot(self) -> GoSnapshot:
        state = self.state
        assert state is not None
        me = self.s.my_color
        now = time.monotonic()
        over = state.result is not None or (
            state.phase == "finished" and self._end_seen is not None and now - self._end_seen > END_RESULT_WAIT)
        n = len(state.moves)
        our_turn = False
        time_left: float | None = None
        if state.phase == "stone removal":
            key: tuple[Any, ...] = ("removal", n, state.removal, me in state.removal_accepted)
            our_turn = me not in state.removal_accepted and not over
        else:
            key = ("play", self._epoch, n)
            if (state.phase == "play" and state.to_move == me and state.result is None
                    and not (state.clock is not None and state.clock.paused) and not self._holding(state, now)):
                our_turn = True
                budget = clock_command(state, me, now).budget
                time_left = budget if math.isfinite(budget) else None
        if key != self._turn_key:
            self._turn_key = key
            self._turn_no += 1
        label = "the stone removal phase" if state.phase == "stone removal" else f"move {n + 1}"
        return GoSnapshot(state, self._turn_no, our_turn, over, time_left, label, version=self.seen_version)

    def _holding(self, state: GoState, now: float) -> bool:
        """Two passes in a row end play: the server's phase event is on its way (it may come after the move's).
        Moving now would be refused: wait for it (PHASE_WAIT), and play on only if play really goes on."""
        n = len(state.moves)
        if n < 2 or state.moves[-1] is not None or state.moves[-2] is not None or self._removal_seen_at == n:
            return False
        if n not in self._pass_waited:
            self._pass_waited.add(n)
            self._pass_hold = (n, now + PHASE_WAIT)
            self.s.transcript.note("two passes in a row: waiting for the stone removal phase before moving")
        return self._pass_hold is not None and self._pass_hold[0] == n and now < self._pass_hold[1]

    def open(self) -> GoSnapshot:
        while True:
            self._stop_check()
            self._pump()
            if self.state is not None:
                return self._snapshot()
            self.mailbox.wait(IDLE_WAKE)

    def read(self, deadline: float | None = None) -> GoSnapshot:
        self._stop_check()
        self._pump()
        return self._snapshot()

    def wait(self, snapshot: Snapshot[GoState]) -> None:
        version = getattr(snapshot, "version", 0)
        while True:
            self._stop_check()
            self._pump()
            if self.seen_version > version:
                return
            now = time.monotonic()
            due = [t for t in self._timers() if t is not None]
            if due and min(due) <= now:
                self.s.idle_check(now)
                if self._timer_fired(now):
                    return
                due = [t for t in self._timers() if t is not None]
            self.mailbox.wait(min([IDLE_WAKE, *[max(t - now, 0.01) for t in due]]))

    def _timers(self) -> list[float | None]:
        hold = self._pass_hold[1] if self._pass_hold is not None else None
        end = self._end_seen + END_RESULT_WAIT + 0.01 if self._end_seen is not None else None
        return [hold, end, self.s.idle_due()]

    def _timer_fired(self, now: float) -> bool:
        """A timer that changes the snapshot (a hold over, the wait for the result over) fired."""
        if self._pass_hold is not None and now >= self._pass_hold[1]:
            self._pass_hold = None
            return True
        if self._end_seen is not None and now - self._end_seen > END_RESULT_WAIT:
            self._end_seen = now - END_RESULT_WAIT - 1.0  # stays over; no more wake-ups for it
            return True
        return False

    def freshest(self, state: GoState) -> GoState:
        """The newest snapshot when it shows the same position as ``state`` (a clock update that came after the
        move: its clock is the one to think with), else ``state``."""
        newest = self.mailbox.snapshot.get()[1]
        if newest is not None and newest is not state and _position(newest) == _position(state):
            return newest
        return state

    def options(self, snapshot: Snapshot[GoState], deadline: float) -> None:
        return None

    def stale(self, snapshot: Snapshot[GoState]) -> str | None:
        if self.s.config.go.undo == "accept" and self.mailbox.pending(UndoRequested):
            return "an undo request arrived while the engine thought"
        newest = self.mailbox.snapshot.newer_than(self.seen_version)
        if newest is not None and _position(newest) != _position(snapshot.state):
            return "the game changed while the engine thought"
        return None

    # --- sending --------------------------------------------------------------------------------------------
    def send(self, snapshot: Snapshot[GoState], action: GoAction, deadline: float) -> Landed:
        self._stop_check()
        actions = self.s.actions
        if isinstance(action, Play):
            return self._play(action, deadline)
        if isinstance(action, Resign):
            actions.resign()
            return Landed(over=True)
        if isinstance(action, SetRemoval):
            actions.set_removal(action.stones, action.removed)
        elif isinstance(action, AcceptRemoval):
            actions.accept_removal(action.stones)
        return Landed()  # OGS answers the removal calls with the next snapshot only

    def _play(self, action: Play, deadline: float) -> Landed:
        self._pump()
        state = self.state
        assert state is not None
        n, sync_id = len(state.moves), state.sync_id
        self._pending_at = n
        self._refusals.clear()
        self._sending = True
        try:
            return self._await_echo(action, n, sync_id, deadline)
        finally:
            self._sending = False

    def _await_echo(self, action: Play, n: int, sync_id: int, deadline: float) -> Landed:
        self.s.actions.play(action.move)
        self.s.transcript.flush()  # the turn's lines (held by the loop's turn_scope) go to disk now the move is out
        bound = max(deadline, time.monotonic() + 1.0) if math.isfinite(deadline) else math.inf
        bound = min(bound, time.monotonic() + ECHO_WAIT)
        while True:
            self._pump()
            if self._refusals:
                self._settle_after_refusal(deadline)
                raise _Refused(self._refusals[-1])
            landed = self._landed(action, n)
            if landed is not None:
                return landed
            state = self.state
            assert state is not None
            if state.sync_id > sync_id:
                raise _Lost("the connection was re-established and the server does not show it yet")
            now = time.monotonic()
            if now >= bound:
                raise _Lost("no state showed it in time")
            self._stop_check()
            self.mailbox.wait(bound - now)

    def _landed(self, action: Play, n: int) -> Landed | None:
        """Landed when the state shows the move; _Lost when it cannot any more (the game moved on); else None."""
        state = self.state
        assert state is not None
        if len(state.moves) > n:
            if state.moves[n] == action.move:
                return Landed(over=is_over(state))
            raise _Lost("another move stands where it was played")
        if len(state.moves) < n:
            raise _Lost("moves were taken back meanwhile")
        if is_over(state):
            raise _Lost("the game ended meanwhile")
        return None

    def _settle_after_refusal(self, deadline: float) -> None:
        """After a refusal (often out of turn: the opponent's move crossed ours), give the server's newer state a
        moment to arrive before the game is looked at again."""
        version = self.seen_version
        until = min(time.monotonic() + REJECT_SETTLE, deadline)
        while self.seen_version == version and time.monotonic() < until:
            self._stop_check()
            self.mailbox.wait(until - time.monotonic())
            self._pump()

    def settle(self, snapshot: Snapshot[GoState], action: GoAction, fault: Fault,
               deadline: float) -> Settlement[GoState]:
        """A move in flight when the connection dropped can still land after the new connection's snapshot: wait
        RESEND_GRACE (within the turn) before saying it did not."""
        if not isinstance(action, Play):
            return Settlement(Verdict.LANDED, self.read())
        n = self._pending_at
        until = min(time.monotonic() + RESEND_GRACE, deadline) if math.isfinite(deadline) else (
            time.monotonic() + RESEND_GRACE)
        while True:
            self._stop_check()
            self._pump()
            state = self.state
            assert state is not None
            after = self._snapshot()
            if len(state.moves) > n and state.moves[n] == action.move:
                return Settlement(Verdict.LANDED, after)
            if len(state.moves) != n or is_over(state) or state.to_move != self.s.my_color:
                return Settlement(Verdict.TURN_OVER, after)
            now = time.monotonic()
            if now >= until:  # the loop says it is sent again
                return Settlement(Verdict.NOT_LANDED, after)
            self.mailbox.wait(until - now)

    def classify(self, exc: BaseException) -> Fault:
        if isinstance(exc, SessionStopped):
            return Fault(FaultKind.STOPPED, str(exc))
        if isinstance(exc, _Refused):
            return Fault(FaultKind.REJECTED, str(exc), "refused")
        if isinstance(exc, _Lost):
            return Fault(FaultKind.LOST, str(exc))
        return Fault(FaultKind.FATAL, str(exc))

    def played(self, snapshot: Snapshot[GoState], decision: Decision[GoAction], action: GoAction, landed: Landed,
               after: Snapshot[GoState] | None) -> None:
        pass

    def _chat(self, body: str) -> None:
        try:
            self.s.actions.chat(body)
        except Exception as exc:  # chat is best effort
            log.debug("game %s: chat failed: %s", self.s.game_id, exc)

    def cancel(self) -> bool:
        cancel = getattr(self.s.actions, "cancel", None)
        if cancel is None or not self._never_moved():
            return False
        self._chat("My engine could not start; cancelling the game. Sorry!")
        cancel()
        return True

    def _never_moved(self) -> bool:
        """True while no move of ours stands in the game (OGS allows a cancel only then; free handicap stones
        placed by black do not count)."""
        state = self.state
        if state is None:
            return True
        s = state.settings
        me = self.s.my_color
        placed = s.handicap if (me == "black" and s.free_handicap and s.handicap > 1) else 0
        own = sum(1 for i in range(len(state.moves)) if state.color_of_move(i) == me)
        return own <= placed

    def resign(self) -> None:
        self._chat("My engine failed; resigning. Sorry!")
        self.s.actions.resign()

    def engine_slot(self) -> AbstractContextManager[Any]:
        return nullcontext()  # taken when the engine is first needed, given back when it idles (GoGame)

    # --- the end --------------------------------------------------------------------------------------------
    def game_over(self, final: Snapshot[GoState]) -> None:
        state = final.state
        self.s.result_state = state
        result = state.result
        log.info("game %s finished: %s (%s)", self.s.game_id, result.score if result else "?",
                 result.reason if result else "no result")
        self.s.transcript.note(f"game over: {result}")
        if self.s.config.go.farewell:
            self._chat(self.s.config.go.farewell)

    def records(self, final: Snapshot[GoState]) -> list[Record]:
        if not self.s.config.go.sgf:
            return []
        return [Record(self.s.record_path.name, to_sgf(final.state, server=self.s.server), "SGF")]

    def wrap_up(self, final: Snapshot[GoState], written: list[Path]) -> None:
        for path in written:
            log.info("game %s: SGF record written to %s", self.s.game_id, path)

    def stopped(self) -> None:
        self.s.transcript.note("the daemon stopped; the game resumes from the server's state at the next start")

    def abandoned(self, exc: BaseException) -> None:
        pass

    def close(self) -> None:
        pass

    def note(self, text: str) -> None:
        self.s.transcript.note(text)

    def incident(self, text: str, level: int = logging.WARNING) -> None:
        log.log(level, "game %s: %s", self.s.game_id, text)
        self.s.transcript.note(text)

    @property
    def stopping(self) -> bool:
        return self.s.stop_event.is_set()

    def pause(self, seconds: float) -> None:
        if self.s.stop_event.wait(max(seconds, 0.0)):
            raise SessionStopped("the daemon is stopping")


class GoGame:
    """The engine's side of one Go game, for :class:`bridge.gameloop.GameLoop` (see the module docstring)."""

    def __init__(self, session: GoSessionParts) -> None:
        self.s = session
        self._restarted = False
        self._removal_rounds = 0
        self._removal_sent: frozenset[Any] | None = None
        self._removal_accepted: frozenset[Any] | None = None

    def start(self, snapshot: Snapshot[GoState]) -> None:
        pass  # the engine starts when it is first asked (it takes an engine slot then)

    def observe(self, snapshot: Snapshot[GoState]) -> None:
        pass

    def decide(self, snapshot: Snapshot[GoState], deadline: float, options: Any,
               refused: Sequence[GoAction]) -> Decision[GoAction]:
        state = self.s.io.freshest(snapshot.state)  # the clock event may come after the move's snapshot
        if state.phase == "stone removal":
            return self._removal(state)
        n = len(state.moves)
        if len(refused) >= MAX_REJECTIONS:
            if len(refused) >= MAX_REJECTIONS + MAX_FALLBACK_REJECTIONS:
                log.warning("game %s: the server refused %d moves at move %d, the bridge's own too; passing there "
                            "instead", self.s.game_id, len(refused), n + 1)
                self.s.transcript.note(f"the server refused {len(refused)} moves here: passing instead")
                return Decision((Play(None),), "fallback", f"the server refused {len(refused)} moves here")
            return self._fallback(state, clock_command(state, self.s.my_color).budget,
                                  f"the server refused {len(refused)} moves here",
                                  exclude=[a.move for a in refused if isinstance(a, Play)])
        if self._restarted:
            self._restarted = False
            budget = clock_command(state, self.s.my_color).budget
            # a retry thinks for the hang limit of what is left, less the restart: worth it only if that leaves
            # MIN_THINK; else the bridge moves itself while the reserve is still on the clock
            player = self.s.player
            if player.hang_limit(budget) - player.start_seconds < MIN_THINK:
                return self._fallback(state, budget, f"{budget:.1f} s left on the clock, too little to restart the "
                                                     f"engine and move")
            if math.isfinite(budget):
                self.s.transcript.note(f"{budget:.1f} s left on the clock: asking the restarted engine again")
        pv = self.s.pv
        answer = self._engine(lambda: self.s.player.genmove(state), before=pv.thinking if pv else None)
        if answer is None:
            return Decision(())
        if answer == RESIGN:
            log.info("game %s: the engine resigns", self.s.game_id)
            self.s.transcript.note("engine resigned")
            return Decision((Resign(),))
        assert not isinstance(answer, str)
        return Decision(tuple(Play(m, state.settings.height) for m in answer))

    def _fallback(self, state: GoState, budget: float, why: str, exclude: Sequence[Move] = ()) -> Decision[GoAction]:
        """The bridge's own move instead of the engine's (:mod:`bridge.games.go_fallback`): never a pass while a
        sensible move is left (an opponent's answering pass would end the game on a half-played board)."""
        seconds = min(FALLBACK_SECONDS, budget / 4) if math.isfinite(budget) else FALLBACK_SECONDS
        try:
            choice = fallback_move(state, seconds, exclude=exclude)
        except Exception as exc:  # an emergency path must not take the game down with it: a pass then
            log.exception("game %s: the bridge's own move failed", self.s.game_id)
            choice = FallbackMove(None, f"passing: the bridge's own move failed ({type(exc).__name__}: {exc})")
        play = Play(choice.move, state.settings.height)
        log.warning("game %s: %s; playing a fallback move at move %d instead: %s (%s)", self.s.game_id, why,
                    len(state.moves) + 1, play, choice.why)
        self.s.transcript.note(f"{why}: playing a fallback move instead: {play} ({choice.why})")
        return Decision((play,), "fallback", why)

    def _engine(self, ask: Any, before: Any = None) -> Any:
        """``ask()`` the engine (taking an engine slot first); None when the bridge stopped the engine itself
        (the game ended while it thought); an engine failure is raised for the loop (restart and replay)."""
        s = self.s
        s.ensure_slot()
        s.touch()
        if before is not None:
            before()
        try:
            return ask()
        except EngineError as exc:
            if s.stop_event.is_set():
                raise SessionStopped("the daemon is stopping") from None
            if s.game_over or s.player.aborted is not None:
                s.transcript.note(f"engine stopped: {s.player.aborted or 'the game is over'}")
                s.player.close()
                return None
            if s.player.start_failed and s.on_engine_down is not None:
                s.on_engine_down(str(exc))
            raise
        finally:
            s.touch()

    def _removal(self, state: GoState) -> Decision[GoAction]:
        s = self.s
        me = s.my_color
        dead = self._engine(lambda: s.player.dead_stones(state))
        if s.game_over or s.player.aborted is not None:
            return Decision(())
        if dead is None or self._removal_rounds >= MAX_REMOVAL_ROUNDS or dead == state.removal:
            if me not in state.removal_accepted and self._removal_accepted != state.removal:
                why = "engine agrees" if dead == state.removal else (
                    "engine cannot list dead stones" if dead is None else "no agreement after several rounds")
                s.transcript.note(f"accepting the removal proposal ({why}): {len(state.removal)} stones")
                self._removal_accepted = state.removal
                return Decision((AcceptRemoval(state.removal),))
            return Decision(())
        if self._removal_sent == dead:
            return Decision(())  # already proposed; waiting for the server to reflect it
        self._removal_rounds += 1
        s.transcript.note(f"proposing the engine's dead stones ({len(dead)}) instead of the server's "
                          f"({len(state.removal)})")
        add, keep = dead - state.removal, state.removal - dead
        self._removal_sent = dead
        return Decision(tuple([SetRemoval(add, True)] * bool(add) + [SetRemoval(keep, False)] * bool(keep)))

    def restart(self, why: str) -> None:
        self._restarted = True
        self.s.player.restart(why)

    def fallback(self, snapshot: Snapshot[GoState], why: str,
                 refused: Sequence[GoAction]) -> Decision[GoAction] | None:
        return None  # no engine at all: the game is cancelled (no move of ours yet) or resigned

    def played(self, snapshot: Snapshot[GoState], decision: Decision[GoAction], action: GoAction, landed: Landed,
               after: Snapshot[GoState] | None) -> None:
        pv = self.s.pv
        if pv is not None and isinstance(action, Play) and len(decision.actions) == 1 and decision.source == "engine":
            pv.moved(len(snapshot.state.moves), action.move, getattr(self.s.player, "last_analysis", None))

    def rejected(self, action: GoAction, reason: str) -> None:
        pass  # the session re-synchronises the engine when the refusal arrives (GameSession.refused)

    def records(self, final: Snapshot[GoState]) -> list[Record]:
        return []

    def close(self) -> None:
        pass  # the session stops the engine and gives its slot back when the game's thread ends


def stop_engine_soon(session: GoSessionParts, why: str) -> None:
    """Stop the session's engine from a thread of its own (even in the middle of a genmove)."""
    threading.Thread(target=session.player.abort, args=(why,), daemon=True,
                     name=f"abort-{session.game_id}").start()
