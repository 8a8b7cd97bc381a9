"""Can the configured engine start? A daemon-level flag the adapters consult before they take a game.

At start the daemon starts the engine once and handshakes with it (as ``gamebridge check`` does, without the test
move), before the adapter goes live. While the engine cannot start (wrong binary, missing weights, a broken GPU
driver) the daemon takes no game: :meth:`bridge.daemon.Daemon.can_accept_game` is False, so every adapter stops
taking games, and :func:`bridge.events.engine_problem` tells an adapter why (OGS declines challenges with it). The
start is retried with capped exponential backoff, one log line per attempt with what the engine printed and what
to do; a game whose engine cannot start (:meth:`EngineHealth.report_failure`) turns the flag off again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge.errors import BridgeError

log = logging.getLogger("bridge.health")

MIN_DELAY = 1.0  # seconds before the first retry; doubled on each failure
MAX_DELAY = 60.0  # the cap


def probe_engine(config: Any) -> None:
    """Start the configured engine, handshake, stop it. Raises BridgeError (EngineError) saying why it failed."""
    cfg = config.engine
    env = dict(cfg.env) or None
    if cfg.protocol == "uci":
        from bridge.engines.uci import UciEngine

        UciEngine(cfg, name="probe").close()
        return
    if getattr(cfg, "manager", "per_game") == "kata_analysis":
        from bridge.games.go_kata import KataAnalysisEngine

        manager = KataAnalysisEngine(cfg)
        try:
            manager.ensure_started()
        finally:
            manager.close()
        return
    engine_cls: Any
    if cfg.protocol == "line":
        from bridge.engines.line import LineEngine

        engine_cls = LineEngine
    else:
        from bridge.engines.gtp import GtpEngine

        engine_cls = GtpEngine
    engine = engine_cls.start(list(cfg.command), name="probe", cwd=cfg.cwd, env=env,
                              startup_timeout=cfg.startup_timeout, quit_grace=min(cfg.quit_grace, 1.0))
    engine.close()


class EngineHealth:
    """``ready``: the engine started and handshook the last time it was tried. Thread-safe."""

    def __init__(self, config: Any, stop: threading.Event, *, probe: Callable[[Any], None] = probe_engine,
                 min_delay: float = MIN_DELAY, max_delay: float = MAX_DELAY) -> None:
        self.config = config
        self.stop = stop
        self.probe = probe
        self.min_delay = min_delay
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._problem: str | None = "the engine has not been started yet"
        self._thread: threading.Thread | None = None
        self.attempts = 0  # engine starts tried by this monitor

    @property
    def ready(self) -> bool:
        return self._problem is None

    @property
    def problem(self) -> str | None:
        """Why the engine cannot be used now, or None."""
        return self._problem

    def start(self) -> bool:
        """Try the engine once now (blocking); if it fails, keep retrying in the background. True if ready."""
        if self._try(0):
            return True
        self._start_retrying()
        return False

    def report_failure(self, why: str) -> None:
        """A game could not start its engine: take no game until a retry succeeds."""
        with self._lock:
            was_ready = self._problem is None
            self._problem = why
        if was_ready:
            log.error("the engine stopped starting (%s); taking no new game until it starts again", why)
            self._start_retrying()

    def join(self, timeout: float) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _start_retrying(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._retry_loop, name="engine-health", daemon=True)
            thread.start()  # started before it is published: join() never sees a thread that was not started
            self._thread = thread

    def _retry_loop(self) -> None:
        attempt = 1
        while not self.stop.is_set():
            delay = min(self.min_delay * 2 ** (attempt - 1), self.max_delay)
            if self.stop.wait(delay):
                return
            if self._try(attempt):
                return
            attempt += 1

    def _try(self, attempt: int) -> bool:
        self.attempts += 1
        started = time.monotonic()
        try:
            self.probe(self.config)
        except BridgeError as exc:
            delay = min(self.min_delay * 2 ** attempt, self.max_delay)
            with self._lock:
                self._problem = str(exc)
            log.error("the engine cannot start (attempt %d; games are declined meanwhile; next try in %.3g s): %s; "
                      "check engine.command with `gamebridge check CONFIG`", attempt + 1, delay, exc)
            return False
        with self._lock:
            self._problem = None
        if attempt:
            log.info("the engine is ready again (attempt %d, %.1f s); taking games", attempt + 1,
                     time.monotonic() - started)
        else:
            log.info("the engine is ready (started and handshook in %.1f s)", time.monotonic() - started)
        return True
