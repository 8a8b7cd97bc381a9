"""The daemon: starts the configured adapter, runs one session per game, caps the engines, shuts down cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.errors import BridgeError
from bridge.events import Adapter, GameContext, GameInbox, GoActions
from bridge.games.gotypes import Color
from bridge.registry import adapter_spec
from bridge.session import GameSession, SlotPool
from bridge.transcript import Transcript

log = logging.getLogger("bridge.daemon")


class DrivenGame:
    """The :class:`bridge.events.GameContext` of a game whose loop the adapter runs."""

    def __init__(self, game_id: str, config: Any, server: str, slots: SlotPool, stop: threading.Event) -> None:
        self.game_id = game_id
        self.config = config
        self.stop = stop
        self.slots = slots
        data_dir = Path(config.daemon.data_dir)
        self.records_dir = data_dir / "records"
        self.transcript = Transcript(data_dir / "transcripts" / f"{server}-{game_id}.log")

    @contextmanager
    def engine_slot(self) -> Iterator[None]:
        if not self.slots.acquire(self.stop):
            raise BridgeError("the daemon is shutting down")
        try:
            yield
        finally:
            self.slots.release()


class Daemon:
    """Implements :class:`bridge.events.Host` for the adapter."""

    def __init__(self, config: Any, adapter: Adapter | None = None) -> None:
        self.config = config
        self.kind: str = config.server.kind
        spec = adapter_spec(self.kind)
        self.adapter: Adapter = adapter if adapter is not None else spec.factory(config.server, config)
        self.slots = SlotPool(config.daemon.max_concurrent_games)
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self.sessions: dict[str, GameSession] = {}
        self.finished: list[GameSession] = []
        self._adapter_thread: threading.Thread | None = None
        self._driven: dict[str, threading.Thread] = {}  # games whose loop the adapter runs (run_game)
        self.finished_ids: list[str] = []
        self.failed = False  # the adapter gave up (bad credentials...): `bridge run` exits non-zero

    # --- Host -----------------------------------------------------------------------------------------------
    def open_game(self, game_id: str, my_color: Color, actions: GoActions) -> GameInbox:
        with self._lock:
            session = self.sessions.get(game_id)
            if session is not None and not session.finished:
                session.actions = actions
                return session
            session = GameSession(game_id, my_color, actions, self.config, server=self.kind, slots=self.slots,
                                  on_end=self._session_ended)
            self.sessions[game_id] = session
        session.start()
        return session

    def run_game(self, game_id: str, target: Callable[[GameContext], None]) -> bool:
        with self._lock:
            if self.stop_event.is_set() or game_id in self.sessions or game_id in self._driven:
                return False
            ctx = DrivenGame(game_id, self.config, self.kind, self.slots, self.stop_event)
            thread = threading.Thread(target=self._drive, args=(ctx, target), name=f"game-{game_id}", daemon=True)
            self._driven[game_id] = thread
        thread.start()
        return True

    def _drive(self, ctx: DrivenGame, target: Callable[[GameContext], None]) -> None:
        try:
            target(ctx)
        except Exception:
            log.exception("game %s: the game loop crashed", ctx.game_id)
            ctx.transcript.note("the game loop crashed; see the daemon log")
        finally:
            ctx.transcript.close()
            with self._lock:
                self._driven.pop(ctx.game_id, None)
                self.finished_ids.append(ctx.game_id)

    def active_games(self) -> int:
        with self._lock:
            return sum(1 for s in self.sessions.values() if not s.finished) + len(self._driven)

    def can_accept_game(self) -> bool:
        return not self.stop_event.is_set() and self.active_games() < self.config.daemon.max_concurrent_games

    def _session_ended(self, session: GameSession) -> None:
        with self._lock:
            if self.sessions.get(session.game_id) is session:
                del self.sessions[session.game_id]
            self.finished.append(session)

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the adapter in a background thread (for tests and the demo)."""
        self._adapter_thread = threading.Thread(target=self._run_adapter, name="adapter", daemon=True)
        self._adapter_thread.start()

    def _run_adapter(self) -> None:
        try:
            self.adapter.run(self, self.stop_event)
            if not self.stop_event.is_set():
                self.failed = True
                log.error("the %s adapter stopped (see the error above); the daemon stops too", self.kind)
        except Exception:
            self.failed = True
            log.exception("the %s adapter stopped with an error; the daemon stops too", self.kind)
        finally:
            self.stop_event.set()

    def run(self) -> None:
        """Run until :meth:`stop` (or a signal handler calling it); then shut down."""
        log.info("bridge daemon starting: server %s, up to %d games at once", self.kind,
                 self.config.daemon.max_concurrent_games)
        self.start()
        try:
            while not self.stop_event.wait(0.5):
                pass
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the adapter and every session; engines are stopped (quit, then signals). Games in progress stay
        on the server and are resumed from their gamedata at the next start."""
        self.stop_event.set()
        with self._lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            s.stop()
        for s in sessions:
            s.join(timeout)
        with self._lock:
            driven = list(self._driven.values())
        for t in driven:
            t.join(timeout)
        if self._adapter_thread is not None:
            self._adapter_thread.join(timeout)
        log.info("bridge daemon stopped")
