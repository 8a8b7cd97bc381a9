"""One Go game: a thread that runs :class:`bridge.gameloop.GameLoop` with the two Go sides of
:mod:`bridge.games.go_game` (the server's, fed by the adapter through :meth:`GameSession.post`; the engine's, a
:class:`bridge.games.go.GoPlayer` from the configured engine manager). Nothing here knows a server.

The inbox is a :class:`bridge.slot.Mailbox`: the adapter overwrites the newest snapshot in its slot (each write a
new version) and pushes the other events (undo request, chat, refusal, abandon) into an ordered side channel; the
game reads the slot, never a queue of snapshots, so snapshots are never reordered, and "a newer snapshot arrived
while the engine thought" is a version comparison. The session owns what both sides share: the transcript, the
engine and its slot, the config, the stop event."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.datadir import advice
from bridge.errors import BridgeError
from bridge.gameloop import GameLoop, LoopSettings
from bridge.games.go_analysis import EngineAnalysis
from bridge.games.go_engines import GoEngines, PerGameEngines
from bridge.games.go_events import GameEvent, GoActions, StateUpdate
from bridge.games.go_game import GoGame, GoIO, is_over, stop_engine_soon
from bridge.games.go_pv import PvRelay
from bridge.games.go_roles import wrap_roles
from bridge.games.gotypes import Color, GoState
from bridge.redact import redact
from bridge.slot import Mailbox
from bridge.transcript import Transcript, transcript_cap

log = logging.getLogger("bridge.session")

STDERR_CHANNELS = {"MAIN": "main", "DISCUSSION": "main", "MALKOVICH": "malkovich"}
MAX_REJECTIONS_A_TURN = 6  # refused actions in one turn before the bridge waits for the server to move on


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


class HostedGame:
    """What the daemon gives every game it hosts (:class:`bridge.events.GameContext`), whether the adapter runs
    its loop (``Host.run_game``) or pushes its events to a session (``Host.open_game``): the transcript, where
    records go, an engine slot, the daemon's stop event. The one place that names a game's files."""

    def __init__(self, game_id: str, config: Any, server: str, slots: SlotPool, stop: threading.Event) -> None:
        self.game_id = game_id
        self.config = config
        self.server = server
        self.stop = stop
        self.slots = slots
        data_dir = Path(config.daemon.data_dir)
        self.records_dir = data_dir / "records"
        self.transcript_path = data_dir / "transcripts" / f"{server}-{game_id}.log"
        try:
            self.transcript = Transcript(self.transcript_path, max_bytes=transcript_cap(config))
        except BridgeError as exc:  # never lose the game for it (a full disk, a folder that cannot be written)
            log.error("game %s: %s: the game is played without a transcript; %s", game_id, exc,
                      advice(self.transcript_path.parent))
            self.transcript = Transcript(None)

    @contextmanager
    def engine_slot(self) -> Iterator[None]:
        if not self.slots.acquire(self.stop):
            raise BridgeError("the daemon is shutting down")
        try:
            yield
        finally:
            self.slots.release()


class GameSession(threading.Thread):
    def __init__(self, game_id: str, my_color: Color, actions: GoActions, config: Any, *, server: str,
                 slots: SlotPool, on_end: Callable[[GameSession], None] | None = None,
                 on_engine_down: Callable[[str], None] | None = None, engines: GoEngines | None = None,
                 home: HostedGame | None = None) -> None:
        super().__init__(name=f"game-{game_id}", daemon=True)
        # the game's files and slot (the daemon's; a session made alone, as in tests, gets its own)
        self.home = home if home is not None else HostedGame(game_id, config, server, slots, threading.Event())
        self.game_id = game_id
        self.my_color = my_color
        self.actions = actions  # replaced by the daemon when the adapter reconnects (the new connection's)
        self.config = config
        self.server = server
        self.slots = slots
        self.on_end = on_end
        self.on_engine_down = on_engine_down  # told when the engine cannot even start (the daemon's health)
        # the newest snapshot (a finished game is never replaced by an in-play one) + the other events in order
        self.inbox: Mailbox[GoState, GameEvent] = Mailbox(keep=_keeps_end)
        self.stop_event = threading.Event()
        self._finished = threading.Event()
        self.state: GoState | None = None
        self.result_state: GoState | None = None
        self.transcript_path = self.home.transcript_path
        self.record_path = self.home.records_dir / f"{server}-{game_id}.sgf"
        self.transcript = self.home.transcript
        # where the engine comes from (engine.manager): the game's own process, a lease from a pool, or a shared one
        self.engines: GoEngines = engines if engines is not None else PerGameEngines(config.engine)
        self.player = self.engines.player(name=f"{server}-{game_id}", transcript=self.transcript,
                                          on_stderr=self._on_stderr)
        # go.opening_engine / go.ending_engine / go.min_move_time, around the manager's player (none: as it is)
        self.player = wrap_roles(self.player, config.go, name=f"{server}-{game_id}", transcript=self.transcript,
                                 on_stderr=self._on_stderr)
        self._has_slot = False
        self._last_engine_use = time.monotonic()
        self.game_over = False  # a finished snapshot arrived (set from the adapter's thread)
        analysis = getattr(config.engine, "analysis", "off")  # engine.analysis: the engine's thinking as chat
        self.pv = PvRelay(game_id, self._send_analysis, self.transcript.note) if analysis != "off" else None
        self.io = GoIO(self)
        self.game = GoGame(self)
        self.loop: GameLoop[GoState, Any] | None = None

    # --- the inbox side (called from the adapter's threads) -----------------------------------------------
    def post(self, event: GameEvent) -> None:
        if not self._finished.is_set():
            if isinstance(event, StateUpdate) and is_over(event.state) and not self.game_over:
                # the game ended (opponent resigned, flag, cancellation): an engine still thinking is of no use
                # any more; stop it now rather than wait for its answer or its hang limit
                self.game_over = True
                stop_engine_soon(self, "the game is over")
            if isinstance(event, StateUpdate):
                state = event.state
                # our move to make: the reader lets this game's thread run first (bridge/slot.py yield_to_woken)
                self.inbox.put_snapshot(state, handoff=state.to_move == self.my_color and state.phase == "play")
            else:
                self.inbox.push(event)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def stop(self) -> None:
        """Ask the session to end; returns at once. Its engine is stopped in a thread of its own (even in the
        middle of a genmove), so that many sessions stop in parallel; the session's thread ends when it is gone."""
        self.stop_event.set()
        self.inbox.interrupt()
        stop_engine_soon(self, "the daemon is stopping")

    # --- the thread ---------------------------------------------------------------------------------------
    def run(self) -> None:
        log.info("game %s: session started, playing %s", self.game_id, self.my_color)
        self.transcript.note(f"session for game {self.game_id} on {self.server}, playing {self.my_color}")
        try:
            settings = LoopSettings(max_restarts=self.config.engine.max_restarts,
                                    max_rejections=MAX_REJECTIONS_A_TURN, server="the server",
                                    abandon="the bridge stops following this game")
            self.loop = GameLoop(self.io, self.game, self.home.records_dir, settings, name=f"game {self.game_id}",
                                 turn_scope=self.transcript.hold)
            self.loop.run()
        except Exception:  # a bug must not kill the daemon; the game resumes on the next snapshot after restart
            log.exception("game %s: the session crashed (a bug: please report it with this traceback and the "
                          "game's transcript); its engine is stopped, and the game is taken up again at its next "
                          "update from the server or at the next start", self.game_id)
        finally:
            self._close_engine()
            self.transcript.note("session ended")
            self.transcript.close()
            self._finished.set()
            if self.on_end is not None:
                self.on_end(self)

    # --- what both sides of the game share -------------------------------------------------------------------
    def answer_undo(self, move_number: int) -> None:
        accept = self.config.go.undo == "accept"
        self.transcript.note(f"undo requested at move {move_number}: {'accepted' if accept else 'declined'}")
        log.info("game %s: undo request %s", self.game_id, "accepted" if accept else "declined")
        self.actions.answer_undo(accept, move_number)

    def refused(self, message: str, during_send: bool) -> None:
        """The server refused our action (out of turn after a race, illegal under its rules, ...). Nothing is
        re-sent blindly: the engine is replayed from the server's state, and play resumes from there. A refusal of
        the move being sent is reported by the game loop (with the move and what comes next); any other once here."""
        if not during_send:
            log.warning("game %s: the server refused an earlier action of ours: %s; re-synchronising the engine "
                        "from the server's state", self.game_id, message)
            self.transcript.note(f"server refused an earlier action of ours: {message}")
        self.player.invalidate()

    def _send_analysis(self, analysis: EngineAnalysis, from_move: int) -> None:
        send = getattr(self.actions, "analysis", None)  # a server that shows analyses (OGS)
        if send is not None:
            send(analysis, from_move, self.config.engine.analysis)

    def _on_stderr(self, line: str) -> None:
        state = self.state
        if self.pv is not None and state is not None and not getattr(self.player, "analyzes", False):
            self.pv.stderr(line, state.settings.width, state.settings.height)
        prefix, sep, body = line.partition(":")
        if sep and prefix in self.config.go.stderr_chat and body.strip():
            try:  # redacted before the cut, so that no part of a secret survives it
                self.actions.chat(redact(body.strip())[:500], STDERR_CHANNELS[prefix])
            except Exception as exc:  # chat is best effort
                log.debug("game %s: chat failed: %s", self.game_id, exc)

    # --- engine slots ------------------------------------------------------------------------------------------
    def ensure_slot(self) -> None:
        if not self._has_slot and self.engines.uses_slots:
            if not self.slots.acquire(self.stop_event):
                raise BridgeError("shutting down")
            self._has_slot = True

    def touch(self) -> None:
        self._last_engine_use = time.monotonic()

    def idle_due(self) -> float | None:
        """When the running engine counts as idle (daemon.engine_idle_timeout), or None."""
        idle = self.config.daemon.engine_idle_timeout
        if idle > 0 and self.player.engine is not None:
            return self._last_engine_use + idle
        return None

    def idle_check(self, now: float) -> None:
        due = self.idle_due()
        if due is not None and now >= due:
            self.transcript.note(f"engine idle for {self.config.daemon.engine_idle_timeout:g}s: stopping it to "
                                 f"free its slot")
            self._close_engine()

    def _close_engine(self) -> None:
        self.player.close()
        if self._has_slot:
            self._has_slot = False
            self.slots.release()


def _keeps_end(current: GoState, new: GoState) -> bool:
    """The slot keeps a finished game rather than take an in-play snapshot after it (a game never comes back)."""
    return is_over(current) and not is_over(new)
