"""The daemon: starts the configured adapter, runs one session per game, caps the engines, shuts down cleanly."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge import datadir
from bridge.errors import EXIT_FATAL, ConfigError, FatalAdapterError
from bridge.events import Adapter, GameContext, GameInbox
from bridge.games.go_engines import make_go_engines
from bridge.games.go_events import GoActions
from bridge.games.gotypes import Color
from bridge.health import EngineHealth
from bridge.registry import adapter_spec
from bridge.session import GameSession, HostedGame, SlotPool
from bridge.systemd import Notifier

log = logging.getLogger("bridge.daemon")
FINISHED_KEPT = 1000  # ended games' ids the daemon remembers (for tests and the status)
PRUNE_INTERVAL = 600.0  # seconds between two looks at the transcripts' size and age (and one at the start)


class ResizableSlotPool(SlotPool):
    """A :class:`SlotPool` whose size a reload can change. Shrinking never takes a slot from a game that holds
    one: new acquisitions wait until fewer than the new size are in use."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._cond = threading.Condition()
        self._size = size
        self._used = 0

    @property
    def size(self) -> int:
        return self._size

    def acquire(self, stop: threading.Event) -> bool:
        with self._cond:
            while not stop.is_set():
                if self._used < self._size:
                    self._used += 1
                    return True
                self._cond.wait(0.5)
        return False

    def release(self) -> None:
        with self._cond:
            if self._used <= 0:
                raise ValueError("slot released more often than acquired")
            self._used -= 1
            self._cond.notify()

    def resize(self, size: int) -> None:
        with self._cond:
            self._size = size
            self._cond.notify_all()


# The adapter counts as stuck when its thread has not looked at the stop event (every adapter polls it or waits on
# it in its loops) for this long outside such a wait: longer than any call an adapter makes with a timeout
# (server.request_timeout is at most 600 s), far shorter than "never".
ADAPTER_STUCK_AFTER = 900.0


class ProgressEvent(threading.Event):
    """The daemon's stop event, which also notes, for the adapter's own thread, when it last looked at it and until
    when it is waiting on it: the adapter's pulse (every adapter polls its stop event or waits on it in its loops),
    with nothing to call in the adapter."""

    def __init__(self) -> None:
        super().__init__()
        self.thread: threading.Thread | None = None  # the adapter's thread (its calls are the ones noted)
        self.seen = time.monotonic()
        self.waiting_until = 0.0

    def is_set(self) -> bool:
        if threading.current_thread() is self.thread:
            self.seen = time.monotonic()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.current_thread() is not self.thread:
            return super().wait(timeout)
        now = time.monotonic()
        self.seen = now
        self.waiting_until = math.inf if timeout is None else now + max(timeout, 0.0)
        try:
            return super().wait(timeout)
        finally:
            self.waiting_until = 0.0
            self.seen = time.monotonic()

    def stalled_for(self, now: float) -> float:
        """Seconds the adapter's thread has gone without looking at the event (0 while it waits on it)."""
        return 0.0 if now < self.waiting_until else max(now - self.seen, 0.0)


class Daemon:
    """Implements :class:`bridge.events.Host` for the adapter."""

    def __init__(self, config: Any, adapter: Adapter | None = None, *, notifier: Notifier | None = None,
                 config_path: str | Path | None = None, secrets: dict[str, Any] | None = None) -> None:
        self.config = config
        self.kind: str = config.server.kind
        spec = adapter_spec(self.kind)
        self.adapter: Adapter = adapter if adapter is not None else spec.factory(config.server, config)
        self.slots = ResizableSlotPool(config.daemon.max_concurrent_games)
        self.go_engines = make_go_engines(config.engine)  # engine.manager: where each Go game's engine comes from
        # systemd: sd_notify (a no-op outside systemd), the file a reload reads, the secrets it compares with
        self.notifier = notifier if notifier is not None else Notifier({})
        self.config_path = Path(config_path) if config_path is not None else None
        self.secrets: dict[str, Any] = dict(secrets or {})
        self._reload_requested = threading.Event()
        self._next_prune = 0.0
        self._over_cap_said = False
        self._server_live = threading.Event()  # the adapter said it is connected and authenticated
        self._announced_ready = False
        self._last_status = ""
        self.stop_event = ProgressEvent()  # the adapter's progress is seen on it (healthy())
        self._stuck_said = False
        self._lock = threading.Lock()
        # every hosted game's thread by game id, whoever runs its loop: a session fed by the adapter (open_game,
        # also in `sessions` for its inbox) or the adapter's own loop (run_game); removed when it ends
        self._games: dict[str, threading.Thread] = {}
        self.sessions: dict[str, GameSession] = {}
        self._adapter_thread: threading.Thread | None = None
        # the last hosted games that ended, in order (bounded: a daemon runs for months)
        self.finished_ids: collections.deque[str] = collections.deque(maxlen=FINISHED_KEPT)
        self.failed = False  # the adapter gave up (bad credentials...): `gamebridge run` exits non-zero
        self.draining = False  # daemon.on_stop: finish, after the first stop(): no new games
        self.fatal: str | None = None  # the adapter's FatalAdapterError: `gamebridge run` exits with EXIT_FATAL
        self.health = EngineHealth(config, self.stop_event)  # can the engine start? (no game taken while not)

    # --- Host -----------------------------------------------------------------------------------------------
    def _home(self, game_id: str) -> HostedGame:
        return HostedGame(game_id, self.config, self.kind, self.slots, self.stop_event)

    def open_game(self, game_id: str, my_color: Color, actions: GoActions) -> GameInbox:
        with self._lock:
            session = self.sessions.get(game_id)
            if session is not None and not session.finished:
                session.actions = actions
                return session
            session = GameSession(game_id, my_color, actions, self.config, server=self.kind, slots=self.slots,
                                  on_end=self._session_ended, on_engine_down=self.health.report_failure,
                                  engines=self.go_engines, home=self._home(game_id))
            self.sessions[game_id] = session
            self._games[game_id] = session
            session.start()  # under the lock: shutdown() never finds a session it cannot join
            if self.stop_event.is_set():
                session.stop()
        return session

    def run_game(self, game_id: str, target: Callable[[GameContext], None]) -> bool:
        with self._lock:
            if self.stop_event.is_set() or game_id in self._games:
                return False
            home = self._home(game_id)
            thread = threading.Thread(target=self._drive, args=(home, target), name=f"game-{game_id}", daemon=True)
            self._games[game_id] = thread
        thread.start()
        return True

    def _drive(self, home: HostedGame, target: Callable[[GameContext], None]) -> None:
        try:
            target(home)
        except Exception:
            log.exception("game %s: the game loop crashed (a bug: please report it with this traceback and the "
                          "game's transcript); the bridge plays it no further in this run (a restart takes it up "
                          "again where the server allows), and its clock runs on the server", home.game_id)
            home.transcript.note("the game loop crashed; see the daemon log")
        finally:
            home.transcript.close()
            self._ended(home.game_id, threading.current_thread())

    def _session_ended(self, session: GameSession) -> None:
        self._ended(session.game_id, session)

    def _ended(self, game_id: str, thread: threading.Thread) -> None:
        with self._lock:
            if self._games.get(game_id) is thread:
                del self._games[game_id]
                self.sessions.pop(game_id, None)
            self.finished_ids.append(game_id)

    def active_games(self) -> int:
        with self._lock:
            return sum(1 for gid in self._games if gid not in self.sessions or not self.sessions[gid].finished)

    def can_accept_game(self) -> bool:
        return (not self.stop_event.is_set() and not self.draining and self.health.ready
                and self.active_games() < self.config.daemon.max_concurrent_games)

    def engine_problem(self) -> str | None:
        """Why no game can be taken because of the engine (it cannot start), or None when it can; see
        :func:`bridge.events.engine_problem`."""
        return self.health.problem

    def ready(self) -> None:
        """The adapter is connected and authenticated (called on every (re)connection; see
        :func:`bridge.events.host_ready`). With the engine checked too, systemd is told READY=1 once."""
        self._server_live.set()
        self._maybe_ready()

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine once (and handshake) before going live, then the adapter in a background thread.
        An engine that cannot start does not stop the daemon: games are declined while it is retried."""
        for problem in datadir.problems(Path(self.config.daemon.data_dir), create=True):
            log.error("%s", problem)
        self.prune_transcripts()
        self.health.start()
        self._adapter_thread = threading.Thread(target=self._run_adapter, name="adapter", daemon=True)
        self._adapter_thread.start()

    def _run_adapter(self) -> None:
        try:
            self.stop_event.thread = threading.current_thread()
            self.adapter.run(self, self.stop_event)
            if not self.stop_event.is_set():
                self.failed = True
                log.error("the %s adapter stopped (see the error above); the daemon stops too", self.kind)
        except FatalAdapterError as exc:  # the contract: one ERROR line, then a distinct exit status
            self.failed = True
            self.fatal = str(exc)
            logging.getLogger(f"bridge.{self.kind}").error(
                "%s; the daemon stops (exit status %d: retrying would not help)", exc, EXIT_FATAL)
        except Exception:
            self.failed = True
            log.exception("the %s adapter stopped with an unexpected error (a bug: please report it with this "
                          "traceback); the daemon stops too, with exit status 1, which systemd restarts "
                          "(Restart=on-failure): the games resume", self.kind)
        finally:
            self.stop_event.set()

    def run(self) -> None:
        """Run until :meth:`stop` (or a signal handler calling it); then shut down. The main loop also carries out
        reloads (:meth:`request_reload`), keeps systemd's STATUS= current, and pings its watchdog while the adapter
        runs."""
        log.info("bridge daemon starting: server %s, up to %d games at once", self.kind,
                 self.config.daemon.max_concurrent_games)
        self.notifier.status(f"starting: checking the engine, connecting to {self.kind}")
        self.start()
        watchdog = self.notifier.watchdog  # seconds between pings: half of $WATCHDOG_USEC
        tick = min(0.5, watchdog / 3) if watchdog else 0.5  # so a ping is never later than 4/3 of that
        next_ping = time.monotonic()
        try:
            while not self.stop_event.wait(tick):
                if self.draining and self.active_games() == 0:
                    log.info("every game has ended (daemon.on_stop: finish): stopping")
                    self.stop_event.set()
                    break
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.reload()
                self._maybe_ready()
                self._update_status()
                if time.monotonic() >= self._next_prune:
                    self.prune_transcripts()
                if watchdog and self._announced_ready and time.monotonic() >= next_ping and self.healthy():
                    self.notifier.ping()
                    next_ping = time.monotonic() + watchdog
        finally:
            self.notifier.stopping(f"stopping: {self.active_games()} game(s) in progress")
            self.shutdown()

    def prune_transcripts(self) -> datadir.Pruned:
        """Keep ``data_dir/transcripts`` within ``daemon.transcripts_max_mb`` and ``transcripts_max_days``
        (:func:`bridge.datadir.prune_transcripts`); never the transcript of a game this daemon is playing."""
        self._next_prune = time.monotonic() + PRUNE_INTERVAL
        d = self.config.daemon
        folder = Path(d.data_dir) / "transcripts"
        with self._lock:
            playing = {str(gid) for gid in self._games}

        def in_progress(path: Path) -> bool:
            return path.stem.rpartition("-")[2] in playing

        pruned = datadir.prune_transcripts(folder, max_mb=d.transcripts_max_mb, max_days=d.transcripts_max_days,
                                           keep=in_progress)
        if pruned.files:
            rules = [f"daemon.transcripts_max_mb: {d.transcripts_max_mb:g}"] * (d.transcripts_max_mb > 0)
            rules += [f"daemon.transcripts_max_days: {d.transcripts_max_days:g}"] * (d.transcripts_max_days > 0)
            log.info("removed the %d oldest transcript(s), %.1f MB, from %s (%s; %.1f MB of transcripts left; the "
                     "records are kept)", pruned.files, pruned.bytes / 1e6, folder, ", ".join(rules),
                     pruned.total_after / 1e6)
        if pruned.failed:
            log.warning("could not remove %d old transcript(s) from %s, e.g. %s: make the folder writable by the "
                        "daemon's user, or remove them by hand", len(pruned.failed), folder, pruned.failed[0])
        over = d.transcripts_max_mb > 0 and pruned.total_after > d.transcripts_max_mb * 1e6
        if over and not self._over_cap_said:
            log.warning("the transcripts in %s total %.1f MB, over daemon.transcripts_max_mb (%g MB), and none more "
                        "can be removed (games in progress, or written in the last hour): raise the cap or lower "
                        "daemon.transcript_max_mb (one game's)", folder, pruned.total_after / 1e6,
                        d.transcripts_max_mb)
        self._over_cap_said = over
        return pruned

    def stop(self) -> None:
        """Stop (SIGTERM, SIGINT). With ``daemon.on_stop: finish`` the first call only drains: no new game, and
        the daemon stops when the games in progress have ended; a second call stops at once."""
        if self.config.daemon.on_stop == "finish" and not self.draining and not self.stop_event.is_set():
            self.draining = True
            games = self.active_games()
            if games:
                log.info("stopping when the %d game(s) in progress have ended (daemon.on_stop: finish); no new "
                         "games meanwhile; signal again to stop now (the games stay resumable)", games)
                return
        self.stop_event.set()

    # --- systemd: readiness, status, watchdog, reload --------------------------------------------------------
    def healthy(self) -> bool:
        """What the watchdog vouches for: not stopping, the adapter's thread running, and making progress (it has
        looked at the stop event within ADAPTER_STUCK_AFTER, or waits on it). A stuck adapter is said once."""
        thread = self._adapter_thread
        if self.stop_event.is_set() or thread is None or not thread.is_alive():
            return False
        stalled = self.stop_event.stalled_for(time.monotonic())
        if stalled < ADAPTER_STUCK_AFTER:
            if self._stuck_said:
                self._stuck_said = False
                log.warning("the %s adapter moves again after %.0f s without progress", self.kind, stalled)
            return True
        if not self._stuck_said:
            self._stuck_said = True
            log.error("the %s adapter has made no progress for %.0f s (a call that does not return?); the systemd "
                      "watchdog is no longer pinged, so systemd restarts the daemon and the games resume; outside "
                      "systemd, restart it yourself", self.kind, stalled)
        return False

    def _maybe_ready(self) -> None:
        with self._lock:
            if self._announced_ready or not (self.health.ready and self._server_live.is_set()):
                return
            self._announced_ready = True
        status = self._status_text()
        self._last_status = status
        log.info("ready: the engine answered and the %s server accepted the bot", self.kind)
        self.notifier.ready(status)

    def _status_text(self) -> str:
        return (f"serving on {self.kind}: {self.active_games()} game(s) in progress, up to "
                f"{self.config.daemon.max_concurrent_games}")

    def _update_status(self) -> None:
        if not self._announced_ready:
            problem = self.health.problem
            status = f"engine cannot start: {problem}" if problem and self.health.attempts else ""
            if status and status != self._last_status:
                self._last_status = status
                self.notifier.status(status)
            return
        status = self._status_text()
        if status != self._last_status:
            self._last_status = status
            self.notifier.status(status)

    def request_reload(self) -> None:
        """Ask the main loop to reload the configuration file (SIGHUP); safe from a signal handler."""
        self._reload_requested.set()

    def reload(self) -> bool:
        """Re-read the configuration file; apply what can change live, say what needs a restart; a file that does
        not validate (or whose secrets cannot be read) is refused and the running configuration kept."""
        from bridge.reload import apply_logging, plan_reload, read_for_reload

        if self.config_path is None:
            log.warning("reload asked for, but this daemon was not started from a configuration file; ignored")
            return False
        if self._announced_ready:
            self.notifier.reloading()
        try:
            try:
                new, secrets = read_for_reload(self.config_path)
                plan = plan_reload(self.config, new, self.secrets, secrets, self.adapter)
                if plan.logging_changed:
                    apply_logging(plan.config)
            except ConfigError as exc:
                reason = " / ".join(line.strip() for line in str(exc).splitlines() if line.strip())
                log.error("configuration reload refused, the running configuration is kept: %s", reason)
                return False
            except Exception:  # a bug in the reload must not end a daemon that plays
                log.exception("configuration reload failed unexpectedly (a bug: please report it with this "
                              "traceback); the running configuration is kept, and the games go on")
                return False
            self.config = plan.config
            self.secrets = secrets
            self.slots.resize(plan.config.daemon.max_concurrent_games)
            reconfigure = getattr(self.adapter, "reconfigure", None)
            if plan.applied and callable(reconfigure):
                reconfigure(plan.config)
            log.info("configuration reloaded from %s: %s", self.config_path, plan.describe())
            return True
        finally:
            self._last_status = self._status_text() if self._announced_ready else self._last_status
            if self._announced_ready:
                self.notifier.ready(self._last_status)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the adapter and every session within one deadline; engines are stopped in parallel (quit, then
        signals), even in the middle of a move. Games in progress stay on the server and are resumed from their
        gamedata at the next start. ``timeout``: the deadline in seconds (default: long enough for an engine
        that needs signals, 2 x engine.quit_grace + 7 s)."""
        self.stop_event.set()
        if timeout is None:
            timeout = 2 * float(self.config.engine.quit_grace) + 7.0
        deadline = time.monotonic() + timeout
        with self._lock:
            sessions = list(self.sessions.values())
            games = list(self._games.items())
        for s in sessions:
            s.stop()  # returns at once: every session's engine is stopped in a thread of its own
        for _, t in games:
            t.join(max(deadline - time.monotonic(), 0.0))
        if self._adapter_thread is not None:
            self._adapter_thread.join(max(deadline - time.monotonic(), 0.0))
        self.go_engines.close()  # a shared manager's engines (per_game: nothing; each session stopped its own)
        self.health.join(max(deadline - time.monotonic(), 0.0))
        late = [gid for gid, t in games if t.is_alive()]
        if late:
            log.warning("game(s) %s did not stop within %.0f s; stopping anyway (their engines are killed at "
                        "exit)", ", ".join(late), timeout)
        log.info("bridge daemon stopped")
