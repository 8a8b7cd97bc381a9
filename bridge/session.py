"""One game: a thread with an inbox. It drives a :class:`GoPlayer` from the adapter's snapshots and answers
through the adapter's :class:`GoActions`. Nothing here knows a server.

The inbox is a :class:`bridge.slot.Mailbox`: the adapter overwrites the newest snapshot in its slot (each write a
new version) and pushes the other events (undo request, chat, refusal, abandon) into an ordered side channel; the
session reads the slot, never a queue of snapshots, so snapshots are never reordered, and "a newer snapshot arrived
while the engine thought" is a version comparison."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import BridgeError, EngineError
from bridge.events import (
    ActionRejected,
    ChatReceived,
    GameAbandoned,
    GameEvent,
    GoActions,
    StateUpdate,
    UndoRequested,
)
from bridge.games.go import MIN_THINK, RESIGN, clock_command
from bridge.games.go_analysis import EngineAnalysis
from bridge.games.go_engines import GoEngines, PerGameEngines
from bridge.games.go_pv import PvRelay
from bridge.games.go_roles import wrap_roles
from bridge.games.gotypes import Color, GoState, Move, Point
from bridge.games.sgf import to_sgf
from bridge.redact import redact
from bridge.slot import Mailbox
from bridge.transcript import Transcript, transcript_cap

log = logging.getLogger("bridge.session")

STDERR_CHANNELS = {"MAIN": "main", "DISCUSSION": "main", "MALKOVICH": "malkovich"}
MAX_REMOVAL_ROUNDS = 3
RESEND_GRACE = 2.0  # seconds a resync must keep showing our move missing before it is sent again
REJECT_SETTLE = 2.0  # seconds to wait for the server's state after it refused our action
MAX_REJECTIONS = 3  # refusals at one position before the bridge passes there instead
PHASE_WAIT = 2.0  # seconds to wait for the stone removal phase after two passes in a row, before moving anyway
END_RESULT_WAIT = 10.0  # seconds to wait for the result after a bare "finished" phase


@dataclass
class _Submitted:
    start: int  # move count when the move(s) were decided
    moves: list[Move]
    sync_id: int


class SlotPool:
    """Caps how many engine processes run at once across all games."""

    def __init__(self, size: int) -> None:
        self._sem = threading.BoundedSemaphore(size)

    def acquire(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self._sem.acquire(timeout=0.5):
                return True
        return False

    def release(self) -> None:
        self._sem.release()


class GameSession(threading.Thread):
    def __init__(self, game_id: str, my_color: Color, actions: GoActions, config: Any, *, server: str,
                 slots: SlotPool, on_end: Callable[[GameSession], None] | None = None,
                 on_engine_down: Callable[[str], None] | None = None, engines: GoEngines | None = None) -> None:
        super().__init__(name=f"game-{game_id}", daemon=True)
        self.game_id = game_id
        self.my_color = my_color
        self.actions = actions
        self.config = config
        self.server = server
        self.slots = slots
        self.on_end = on_end
        self.on_engine_down = on_engine_down  # told when the engine cannot even start (the daemon's health)
        # the newest snapshot (a finished game is never replaced by an in-play one) + the other events in order
        self.inbox: Mailbox[GoState, GameEvent] = Mailbox(keep=_keeps_end)
        self._seen_version = 0  # the version of the newest snapshot taken from the inbox's slot
        self._stop_event = threading.Event()
        self._finished = threading.Event()
        self.state: GoState | None = None
        self.result_state: GoState | None = None
        data_dir = Path(config.daemon.data_dir)
        self.transcript_path = data_dir / "transcripts" / f"{server}-{game_id}.log"
        self.record_path = data_dir / "records" / f"{server}-{game_id}.sgf"
        self.transcript = Transcript(self.transcript_path, max_bytes=transcript_cap(config))
        # where the engine comes from (engine.manager): the game's own process, a lease from a pool, or a shared one
        self.engines: GoEngines = engines if engines is not None else PerGameEngines(config.engine)
        self.player = self.engines.player(name=f"{server}-{game_id}", transcript=self.transcript,
                                          on_stderr=self._on_stderr)
        # go.opening_engine / go.ending_engine / go.min_move_time, around the manager's player (none: as it is)
        self.player = wrap_roles(self.player, config.go, name=f"{server}-{game_id}", transcript=self.transcript,
                                 on_stderr=self._on_stderr)
        self._has_slot = False
        self._submitted: _Submitted | None = None
        self._greeted = False
        self._removal_rounds = 0
        self._removal_sent: frozenset[Point] | None = None
        self._removal_accepted: frozenset[Point] | None = None
        self._last_engine_use = time.monotonic()
        self._end_seen: float | None = None
        self._resend_at: float | None = None  # when a move a resync shows missing may be sent again
        self._hold_until: float | None = None  # after a refusal: no new move at this position before then
        self._hold_count = -1
        self._rejections: dict[int, int] = {}  # move count -> refusals there
        self._removal_seen_at: int | None = None  # move count when a stone removal phase was last seen
        self._pass_wait_at: int | None = None  # move count at which we waited for the phase after two passes
        self._retry = False  # the engine failed: handle the newest snapshot again (never re-queue an old one)
        self._game_over = False  # a finished snapshot arrived (set from the adapter's thread too)
        analysis = getattr(config.engine, "analysis", "off")  # engine.analysis: the engine's thinking as chat
        self._pv = PvRelay(game_id, self._send_analysis, self.transcript.note) if analysis != "off" else None

    # --- the inbox side (called from the adapter's threads) -----------------------------------------------
    def post(self, event: GameEvent) -> None:
        if not self._finished.is_set():
            if isinstance(event, StateUpdate) and _is_over(event.state) and not self._game_over:
                # the game ended (opponent resigned, flag, cancellation): an engine still thinking is of no use
                # any more; stop it now rather than wait for its answer or its hang limit
                self._game_over = True
                threading.Thread(target=self.player.abort, args=("the game is over",), daemon=True,
                                 name=f"abort-{self.game_id}").start()
            if isinstance(event, StateUpdate):
                self.inbox.put_snapshot(event.state)
            else:
                self.inbox.push(event)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def stop(self) -> None:
        """Ask the session to end; returns at once. Its engine is stopped in a thread of its own (even in the
        middle of a genmove), so that many sessions stop in parallel; the session's thread ends when it is gone."""
        self._stop_event.set()
        self.inbox.interrupt()
        threading.Thread(target=self.player.abort, args=("the daemon is stopping",), daemon=True,
                         name=f"stop-{self.game_id}").start()

    # --- the thread ---------------------------------------------------------------------------------------
    def run(self) -> None:
        log.info("game %s: session started, playing %s", self.game_id, self.my_color)
        self.transcript.note(f"session for game {self.game_id} on {self.server}, playing {self.my_color}")
        try:
            while not self._stop_event.is_set() and not self._finished.is_set():
                state = self._next_state(timeout=0.0 if self._retry else 0.25)
                if state is None and self._retry and self.state is not None:
                    state = self.state  # after an engine failure: nothing newer came, so this one again
                self._retry = False
                if state is None:
                    self._maybe_idle()
                    if (self._end_seen is not None and self.state is not None
                            and time.monotonic() - self._end_seen > END_RESULT_WAIT):
                        self._finish(self.state)
                    if self.state is None or (self._resend_at is None and self._hold_until is None):
                        continue
                    state = self.state  # a timer is due: look at the game again
                self.state = state
                try:
                    self._handle(state)
                except EngineError as exc:
                    self._engine_failed(exc)
                except BridgeError as exc:
                    log.error("game %s: %s", self.game_id, exc)
        except Exception:  # a bug must not kill the daemon; the game resumes on the next snapshot after restart
            log.exception("game %s: session crashed; stopping its engine", self.game_id)
        finally:
            self._close_engine()
            self.transcript.note("session ended")
            self.transcript.close()
            self._finished.set()
            if self.on_end is not None:
                self.on_end(self)

    def _next_state(self, timeout: float) -> GoState | None:
        """Wait for news; handle the side events in their order, then return the slot's snapshot if it is newer
        than the last one taken (None: nothing new)."""
        if timeout > 0:
            self.inbox.wait(timeout)
        else:
            self.inbox.wake.clear()  # read at once; what is written from now on wakes the next wait
        newest: GoState | None = None
        for event in self.inbox.take_events():
            if isinstance(event, UndoRequested):
                self._answer_undo(event.move_number)
                newest = newest or self.state
            elif isinstance(event, ChatReceived):
                self.transcript.note(f"chat from {event.username}: {event.body}")
            elif isinstance(event, ActionRejected):
                self._rejected(event.message)
                newest = newest or self.state
            elif isinstance(event, GameAbandoned):
                log.warning("game %s: the adapter can no longer follow this game: %s", self.game_id, event.reason)
                self._stop_event.set()
                return None
        version, snapshot = self.inbox.snapshot.get()
        if version > self._seen_version and snapshot is not None:
            self._seen_version = version
            if _is_over(snapshot) or not self._over_seen(None):
                newest = snapshot
            else:  # a game never comes back from its end: an in-play snapshot after it is stale
                self.transcript.note("an in-play snapshot after the game's end is ignored")
        return newest

    def _over_seen(self, newest: GoState | None) -> bool:
        return ((newest is not None and _is_over(newest)) or self._end_seen is not None
                or (self.state is not None and _is_over(self.state)))

    def _handle(self, state: GoState) -> None:
        if state.result is not None:
            self._finish(state)
            return
        if state.phase == "finished":
            # the phase event can come before the final gamedata with the result: wait a little for it
            if self._end_seen is None:
                self._end_seen = time.monotonic()
                self.transcript.note("phase finished; waiting for the result")
            return
        if not self._greeted:
            self._greeted = True
            if self.config.go.greeting:
                self.actions.chat(self.config.go.greeting)
        if state.clock is not None and state.clock.paused:
            return
        if state.phase == "stone removal":
            self._removal_seen_at = len(state.moves)
            self._removal(state)
        elif state.phase == "play" and state.to_move == self.my_color:
            self._my_turn(state)

    # --- playing ---------------------------------------------------------------------------------------------
    def _my_turn(self, state: GoState) -> None:
        n = len(state.moves)
        now = time.monotonic()
        if self._hold_until is not None:
            if n == self._hold_count and now < self._hold_until:
                return  # the server just refused our action here: let its state settle first
            self._hold_until = None
        if (n >= 2 and state.moves[-1] is None and state.moves[-2] is None and self._removal_seen_at != n
                and self._pass_wait_at != n):
            # Two passes in a row end play: the server's phase event is on its way (it may come after the move's).
            # Moving now would be refused; wait for it, and play on only if play really goes on.
            self._pass_wait_at = n
            self._hold_until, self._hold_count = now + PHASE_WAIT, n
            self.transcript.note("two passes in a row: waiting for the stone removal phase before moving")
            return
        sub = self._submitted
        if sub is not None and sub.start <= n < sub.start + len(sub.moves):
            done = n - sub.start
            if state.sync_id > sub.sync_id and list(state.moves[sub.start:]) == sub.moves[:done]:
                # A resync shows our move(s) missing. A move in flight when the connection dropped can still
                # land after the new connection's snapshot, so wait a little before sending it again.
                if self._resend_at is None:
                    self._resend_at = now + RESEND_GRACE
                    return
                if now < self._resend_at:
                    return
                self._resend_at = None
                log.info("game %s: resending %d move(s) lost with the connection", self.game_id,
                         len(sub.moves) - done)
                self.transcript.note(f"resending {len(sub.moves) - done} move(s) lost with the connection")
                for move in sub.moves[done:]:
                    self.actions.play(move)
                sub.sync_id = state.sync_id
            return
        self._resend_at = None
        if self._rejections.get(n, 0) >= MAX_REJECTIONS:
            log.warning("game %s: the server refused %d moves at move %d; passing there instead", self.game_id,
                        self._rejections[n], n + 1)
            self.transcript.note(f"the server refused {self._rejections[n]} moves here: passing instead")
            self._submitted = _Submitted(n, [None], state.sync_id)
            self.actions.play(None)
            return
        self._ensure_slot()
        self._last_engine_use = time.monotonic()
        if self._pv is not None:
            self._pv.thinking()
        answer = self.player.genmove(state)
        self._last_engine_use = time.monotonic()
        if answer == RESIGN:
            log.info("game %s: the engine resigns", self.game_id)
            self.transcript.note("engine resigned")
            self.actions.resign()
            return
        assert not isinstance(answer, str)
        if self.config.go.undo == "accept" and self.inbox.pending(UndoRequested):
            # the opponent asked to take back their move while the engine thought: the undo wins over our reply
            self.transcript.note("an undo request arrived while the engine thought; its move is dropped")
            self.player.invalidate()
            return
        if self._peek_newer(state) is not None:  # it stays in the inbox, where the loop finds it next
            self.transcript.note("the game changed while the engine thought; its move is dropped")
            return
        self._submitted = _Submitted(n, list(answer), state.sync_id)
        for move in answer:
            self.actions.play(move)
        if self._pv is not None and len(answer) == 1:
            self._pv.moved(n, answer[0], getattr(self.player, "last_analysis", None))

    def _queued_state(self) -> GoState | None:
        """The slot's snapshot if it is newer than the one being handled (it stays in the slot for the loop)."""
        return self.inbox.snapshot.newer_than(self._seen_version)

    def _peek_newer(self, state: GoState) -> GoState | None:
        """A snapshot that arrived during genmove and makes the engine's move stale (undo, end, resync): a version
        newer than the one being handled whose game differs (a clock update alone does not)."""
        newest = self._queued_state()
        if newest is None:
            return None
        if (len(newest.moves) != len(state.moves) or newest.phase != "play" or newest.to_move != self.my_color
                or list(newest.moves) != list(state.moves)):
            return newest
        return None

    # --- stone removal -----------------------------------------------------------------------------------------
    def _removal(self, state: GoState) -> None:
        self._ensure_slot()
        dead = self.player.dead_stones(state)
        newer = self._queued_state()
        if newer is not None and (_is_over(newer) or newer.phase != state.phase or newer.removal != state.removal
                                  or list(newer.moves) != list(state.moves)):
            # the game moved on while the engine listed its dead stones (the server scored it, or the proposal
            # changed): decide again on the newest state rather than answer an old one
            self.transcript.note("the game changed while the engine listed its dead stones; its answer is dropped")
            return
        if dead is None or self._removal_rounds >= MAX_REMOVAL_ROUNDS or dead == state.removal:
            if self.my_color not in state.removal_accepted and self._removal_accepted != state.removal:
                why = "engine agrees" if dead == state.removal else (
                    "engine cannot list dead stones" if dead is None else "no agreement after several rounds")
                self.transcript.note(f"accepting the removal proposal ({why}): {len(state.removal)} stones")
                self.actions.accept_removal(state.removal)
                self._removal_accepted = state.removal
            return
        if self._removal_sent == dead:
            return  # already proposed; waiting for the server to reflect it
        self._removal_rounds += 1
        self.transcript.note(f"proposing the engine's dead stones ({len(dead)}) instead of the server's "
                             f"({len(state.removal)})")
        add = dead - state.removal
        keep = state.removal - dead
        if add:
            self.actions.set_removal(add, True)
        if keep:
            self.actions.set_removal(keep, False)
        self._removal_sent = dead

    def _rejected(self, message: str) -> None:
        """The server refused our action (out of turn after a race, illegal under its rules, ...). Nothing is
        re-sent blindly: the engine is replayed from the server's next state, and play resumes from there."""
        n = len(self.state.moves) if self.state is not None else -1
        self._rejections[n] = self._rejections.get(n, 0) + 1
        log.warning("game %s: the server refused our action: %s; re-synchronising from the server's state",
                    self.game_id, message)
        self.transcript.note(f"server refused our action ({self._rejections[n]} at this position): {message}")
        self._submitted = None
        self._resend_at = None
        self.player.invalidate()
        self._hold_until = time.monotonic() + REJECT_SETTLE
        self._hold_count = n

    # --- other events ------------------------------------------------------------------------------------------
    def _answer_undo(self, move_number: int) -> None:
        accept = self.config.go.undo == "accept"
        self.transcript.note(f"undo requested at move {move_number}: {'accepted' if accept else 'declined'}")
        log.info("game %s: undo request %s", self.game_id, "accepted" if accept else "declined")
        self.actions.answer_undo(accept, move_number)

    def _send_analysis(self, analysis: EngineAnalysis, from_move: int) -> None:
        send = getattr(self.actions, "analysis", None)  # a server that shows analyses (OGS)
        if send is not None:
            send(analysis, from_move, self.config.engine.analysis)

    def _on_stderr(self, line: str) -> None:
        state = self.state
        if self._pv is not None and state is not None and not getattr(self.player, "analyzes", False):
            self._pv.stderr(line, state.settings.width, state.settings.height)
        prefix, sep, body = line.partition(":")
        if sep and prefix in self.config.go.stderr_chat and body.strip():
            try:  # redacted before the cut, so that no part of a secret survives it
                self.actions.chat(redact(body.strip())[:500], STDERR_CHANNELS[prefix])
            except Exception as exc:  # chat is best effort
                log.debug("game %s: chat failed: %s", self.game_id, exc)

    def _engine_failed(self, exc: EngineError) -> None:
        if self._stop_event.is_set() or self._game_over or self.player.aborted is not None:
            # the bridge stopped the engine itself (shutdown, or the game ended while it thought): no failure
            self.transcript.note(f"engine stopped: {self.player.aborted or 'the session is ending'}")
            self.player.close()
            return
        log.error("game %s: engine failure: %s", self.game_id, exc)
        if self.player.start_failed and self.on_engine_down is not None:
            self.on_engine_down(str(exc))
        if self.player.restarts >= self.config.engine.max_restarts:  # no "restart 4 of 3": give up instead
            self.player.close()
            self._give_up(f"the engine failed {self.player.restarts + 1} times: {exc}")
            return
        self.player.restart(str(exc))
        state = self.state
        if state is None:
            return
        self._retry = True  # at once, with a fresh engine, on the newest snapshot (a newer one in the inbox wins)
        if state.phase == "play" and state.to_move == self.my_color and state.result is None:
            budget = clock_command(state, self.my_color).budget
            # a retry would think for the hang limit of what is left, less the restart: worth it only if that
            # leaves MIN_THINK; else pass while the reserve is still on the clock
            thinking = self.player.hang_limit(budget) - self.player.start_seconds
            if thinking < MIN_THINK:
                self._retry = False
                self._fallback(state, budget)
            elif math.isfinite(budget):
                self.transcript.note(f"{budget:.1f} s left on the clock: asking the restarted engine again")

    def _fallback(self, state: GoState, budget: float) -> None:
        """Too little time left to restart the engine and still move: pass now rather than lose on time; the
        engine is restarted for the next move."""
        n = len(state.moves)
        log.warning("game %s: %.1f s left on the clock, too little to restart the engine and move; passing at "
                    "move %d instead", self.game_id, budget, n + 1)
        self.transcript.note(f"{budget:.1f} s left: too little to restart the engine and move; passing instead")
        self._submitted = _Submitted(n, [None], state.sync_id)
        self.actions.play(None)

    def _give_up(self, why: str) -> None:
        cancel = getattr(self.actions, "cancel", None)
        if cancel is not None and self._never_moved():
            log.error("game %s: cancelling the game (the bot has not moved in it yet): %s", self.game_id, why)
            self.transcript.note(f"cancelling the game (no move of ours yet): {why}")
            try:
                self.actions.chat("My engine could not start; cancelling the game. Sorry!")
                cancel()
                return
            except Exception as exc:
                log.error("game %s: could not cancel: %s; resigning instead", self.game_id, exc)
        log.error("game %s: resigning: %s", self.game_id, why)
        self.transcript.note(f"resigning: {why}")
        try:
            self.actions.chat("My engine failed; resigning. Sorry!")
            self.actions.resign()
        except Exception as exc:
            log.error("game %s: could not resign: %s", self.game_id, exc)

    def _never_moved(self) -> bool:
        """True while no move of ours stands in the game or is on its way (OGS allows a cancel only then; free
        handicap stones placed by black do not count)."""
        state = self.state
        if state is None or self._submitted is not None:
            return state is None
        s = state.settings
        placed = s.handicap if (self.my_color == "black" and s.free_handicap and s.handicap > 1) else 0
        own = sum(1 for i in range(len(state.moves)) if state.color_of_move(i) == self.my_color)
        return own <= placed

    def _finish(self, state: GoState) -> None:
        self.result_state = state
        result = state.result
        log.info("game %s finished: %s (%s)", self.game_id, result.score if result else "?",
                 result.reason if result else "no result")
        self.transcript.note(f"game over: {result}")
        if self.config.go.farewell:
            try:
                self.actions.chat(self.config.go.farewell)
            except Exception as exc:
                log.debug("game %s: farewell failed: %s", self.game_id, exc)
        if self.config.go.sgf:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            # written whole, then renamed: a reader (or a crash) never sees half a record
            tmp = self.record_path.with_name(self.record_path.name + ".tmp")
            tmp.write_text(redact(to_sgf(state, server=self.server)), encoding="utf-8")
            os.replace(tmp, self.record_path)
            log.info("game %s: SGF record written to %s", self.game_id, self.record_path)
        self._finished.set()

    # --- engine slots ------------------------------------------------------------------------------------------
    def _ensure_slot(self) -> None:
        if not self._has_slot and self.engines.uses_slots:
            if not self.slots.acquire(self._stop_event):
                raise BridgeError("shutting down")
            self._has_slot = True

    def _maybe_idle(self) -> None:
        idle = self.config.daemon.engine_idle_timeout
        if (idle > 0 and self.player.engine is not None
                and time.monotonic() - self._last_engine_use > idle):
            self.transcript.note(f"engine idle for {idle:g}s: stopping it to free its slot")
            self._close_engine()

    def _close_engine(self) -> None:
        self.player.close()
        if self._has_slot:
            self._has_slot = False
            self.slots.release()


def _is_over(state: GoState) -> bool:
    return state.result is not None or state.phase == "finished"


def _keeps_end(current: GoState, new: GoState) -> bool:
    """The slot keeps a finished game rather than take an in-play snapshot after it (a game never comes back)."""
    return _is_over(current) and not _is_over(new)
