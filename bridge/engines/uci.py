"""The UCI driver: a chess engine (Stockfish, ...) through python-chess's ``SimpleEngine`` (never a hand-written
UCI parser), with the bridge's error hierarchy, transcripts, time budgets and transparent restarts.

- Options from ``engine.options`` are applied with ``configure()``; an unknown option raises one
  :class:`~bridge.errors.EngineError` that lists the options the engine offers.
- :meth:`UciEngine.analyse` and :meth:`UciEngine.play` take their time limit from the caller's budget
  (``chess.engine.Limit(time=...)``, capped by ``engine.max_move_time``) and give up after the budget plus
  ``engine.move_margin`` seconds -- or less, when the caller gives a ``deadline`` (a short clock): the margin is
  then what is left before it (at least :data:`MIN_MARGIN`).
- A dead engine (``EngineTerminatedError``) or a hung one (``TimeoutError``) is replaced by a fresh process and the
  request repeated, up to ``engine.max_restarts`` times in the life of the :class:`UciEngine` (one game); then
  :class:`~bridge.errors.EngineError` is raised.  When the caller's ``deadline`` leaves no time for a restart and a
  second try, the hung or dead process is stopped and :class:`~bridge.errors.EngineError` raised at once; the
  restart (counted as usual) comes with the next request.  Any other complaint of python-chess (an illegal reply...) is
  raised as :class:`~bridge.errors.EngineError` at once, the process staying usable.
- Transcript: python-chess logs every UCI line to the ``chess.engine`` logger at DEBUG.  One module-wide handler
  (:class:`_LineRouter`) takes that logger over: lines of a process started here go to that engine's transcript
  (``>>`` to the engine, ``<<`` from it, ``!!`` its stderr, ``##`` python-chess's remarks); everything else is
  passed on to the ``chess`` logger's handlers as if nothing had changed.  ``info`` lines are many (dozens per
  search) and are left out unless ``info_lines=True``.
- The process runs in its own process group (``setpgrp``), so a Ctrl-C on the daemon's terminal does not kill it
  mid-move; :meth:`UciEngine.close` never raises and kills what ``quit`` did not end; engines still open at
  interpreter exit are closed before the interpreter waits for threads (python-chess's event-loop thread is not
  a daemon thread, so an unclosed engine would otherwise keep the process alive); Stockfish also exits on
  end-of-file on stdin, which covers a bridge killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import chess
import chess.engine

from bridge.config import EngineConfig
from bridge.engines.process import ENGINE_NAME_VAR, die_with_parent, engine_environment
from bridge.errors import EngineError
from bridge.transcript import Transcript

log = logging.getLogger("bridge.engine.uci")

T = TypeVar("T")

MIN_MARGIN = 1.0  # seconds: the least wait beyond a request's budget before the engine counts as hung (a tighter
# one would take a loaded machine's slow answer for a hang and spend a restart on it)
_PENDING_ENGINES = 16  # processes whose handshake lines are kept until their UciEngine claims them
_PENDING_LINES = 400
_live: weakref.WeakSet[UciEngine] = weakref.WeakSet()
_live_lock = threading.Lock()


def _close_all() -> None:
    with _live_lock:
        engines = list(_live)
    for engine in engines:
        engine.close()


# python-chess runs each engine's event loop in a non-daemon thread: close engines before the interpreter joins
# non-daemon threads (threading's own exit hook), not after (atexit), or an unclosed engine would hang the exit.
_register_early_exit: Callable[[Callable[[], None]], None] | None = getattr(threading, "_register_atexit", None)
if _register_early_exit is not None:
    try:
        _register_early_exit(_close_all)
    except RuntimeError:  # interpreter already shutting down
        pass
atexit.register(_close_all)


class _LineRouter(logging.Handler):
    """Routes python-chess's per-process log records to the transcript of the UciEngine that owns the process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._lock_routes = threading.Lock()
        self._routes: dict[int, Callable[[str, str], None]] = {}
        self._pending: collections.OrderedDict[int, list[tuple[str, str]]] = collections.OrderedDict()

    @staticmethod
    def _pid_and_text(record: logging.LogRecord) -> tuple[int | None, str]:
        args = record.args
        if isinstance(args, tuple) and args:
            transport = getattr(args[0], "transport", None)
            if transport is not None and hasattr(transport, "get_pid"):
                try:
                    pid = transport.get_pid()
                except Exception:
                    pid = None
                try:
                    message = record.getMessage()
                except Exception:
                    message = str(record.msg)
                prefix = f"{args[0]}: "
                return (pid if isinstance(pid, int) else None), message.removeprefix(prefix)
        return None, ""

    @staticmethod
    def _direction(text: str) -> tuple[str, str]:
        # python-chess marks lines it sends with "<<" and lines it receives with ">>": the transcript's opposite
        if text.startswith("<< "):
            return ">>", text[3:]
        if text.startswith(">> "):
            return "<<", text[3:]
        if text.startswith("stderr >> "):
            return "!!", text[10:]
        return "##", text

    def emit(self, record: logging.LogRecord) -> None:
        pid, text = self._pid_and_text(record)
        if pid is not None:
            direction, line = self._direction(text)
            with self._lock_routes:
                route = self._routes.get(pid)
                if route is None:
                    lines = self._pending.setdefault(pid, [])
                    self._pending.move_to_end(pid)
                    if len(lines) < _PENDING_LINES:
                        lines.append((direction, line))
                    while len(self._pending) > _PENDING_ENGINES:
                        self._pending.popitem(last=False)
            if route is not None:
                route(direction, line)
                return
        parent = logging.getLogger("chess")
        if record.levelno >= parent.getEffectiveLevel():
            parent.handle(record)

    def claim(self, pid: int, route: Callable[[str, str], None]) -> None:
        with self._lock_routes:
            self._routes[pid] = route
            lines = self._pending.pop(pid, [])
        for direction, line in lines:
            route(direction, line)

    def forget(self, pid: int) -> None:
        with self._lock_routes:
            self._routes.pop(pid, None)
            self._pending.pop(pid, None)


_router: _LineRouter | None = None
_router_lock = threading.Lock()


def _line_router() -> _LineRouter:
    """Install the router on the ``chess.engine`` logger once (DEBUG, not propagating: see the module doc)."""
    global _router
    with _router_lock:
        if _router is None:
            _router = _LineRouter()
            logger = logging.getLogger("chess.engine")
            logger.addHandler(_router)
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
        return _router


def _kill_group(pid: int, *, only_if_alive: bool = False) -> None:
    """SIGKILL the engine's process group (it is the group leader: setpgrp)."""
    try:
        if only_if_alive:
            os.killpg(pid, 0)  # raises when no process of the group is left
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _loop_error(context: dict[str, Any]) -> str:
    """An asyncio exception handler's ``context`` in one line: its message and the exception, no traceback."""
    exc = context.get("exception")
    return f"{context.get('message', 'error')}{f' ({type(exc).__name__}: {exc})' if exc is not None else ''}"


def _wait_returncode(engine: chess.engine.SimpleEngine, seconds: float) -> bool:
    try:
        engine.returncode.result(timeout=seconds)
        return True
    except Exception:
        return False


def _finish_event_loop(engine: chess.engine.SimpleEngine) -> None:
    protocol = engine.protocol

    def finish() -> None:
        if not protocol.returncode.done():
            code = protocol.transport.get_returncode() if protocol.transport is not None else None
            protocol.returncode.set_result(code if code is not None else -signal.SIGKILL)

    try:
        protocol.loop.call_soon_threadsafe(finish)
    except RuntimeError:  # the loop is already closed: nothing waits on it
        pass


class UciEngine:
    """One UCI engine for one game, restarted transparently when it dies or hangs.

    ``name`` labels the transcript lines; ``serves`` (default ``name``) goes into the process's
    ``GAMEBRIDGE_ENGINE`` variable (which game it serves, e.g. ``reconchess-7``: for wrappers, ``ps`` and the soak);
    ``transcript`` (optional) receives every line; ``info_lines`` also records the engine's ``info`` lines (large).
    Starting fails with :class:`EngineError` saying why.
    """

    def __init__(self, cfg: EngineConfig, *, name: str = "uci", transcript: Transcript | None = None,
                 info_lines: bool = False, serves: str | None = None) -> None:
        self.cfg = cfg
        self.name = name
        self.serves = serves or name
        self.transcript = transcript
        self.info_lines = info_lines
        self.restarts = 0
        self.engine_name = ""
        self._engine: chess.engine.SimpleEngine | None = None
        self._pid: int | None = None
        self._down: str | None = None  # why the process was stopped without a restart (it restarts when next asked)
        self._start_seconds = 0.0  # how long the last start took (a retry within a deadline must fit one)
        self._closed = False
        self._lock = threading.RLock()
        _line_router()
        with _live_lock:
            _live.add(self)
        try:
            self._first_start()
        except BaseException:
            self.close()
            raise

    # --- lifecycle -------------------------------------------------------------------------------------------
    def _note(self, text: str) -> None:
        log.info("%s: %s", self.name, text)
        if self.transcript is not None:
            self.transcript.note(text, self.name)

    def _route(self, direction: str, line: str) -> None:
        if self.transcript is None:
            return
        if not self.info_lines and direction == "<<" and line.startswith("info") and \
                not line.startswith("info string"):
            return
        self.transcript.write(direction, line, self.name)

    def _start(self) -> None:
        began = time.monotonic()
        try:
            self._start_engine()
        finally:
            self._start_seconds = time.monotonic() - began

    def _start_engine(self) -> None:
        command = list(self.cfg.command)
        env = engine_environment(dict(self.cfg.env))
        env[ENGINE_NAME_VAR] = self.serves
        popen_args: dict[str, Any] = {"env": env}
        preexec = die_with_parent()  # the engine dies with python-chess's loop thread, or a SIGKILLed daemon
        if preexec is not None:
            popen_args["preexec_fn"] = preexec
        if self.cfg.cwd is not None:
            popen_args["cwd"] = str(self.cfg.cwd)
        try:
            engine = chess.engine.SimpleEngine.popen_uci(command, timeout=self.cfg.startup_timeout, setpgrp=True,
                                                         **popen_args)
        except FileNotFoundError:
            raise EngineError(f"{self.name}: engine binary {command[0]!r} not found; check engine.command "
                              f"(Debian installs stockfish in /usr/games)") from None
        except PermissionError:
            raise EngineError(f"{self.name}: engine binary {command[0]!r} is not executable; check engine.command "
                              f"and the file's permissions") from None
        except TimeoutError:
            raise EngineError(f"{self.name}: {command[0]!r} did not complete the UCI handshake within "
                              f"{self.cfg.startup_timeout:g} s; is it a UCI engine? raise engine.startup_timeout "
                              f"if it is slow to start") from None
        except (chess.engine.EngineError, OSError) as exc:
            raise EngineError(f"{self.name}: cannot start {command[0]!r} as a UCI engine: {exc}; check "
                              f"engine.command and try the engine by hand") from None
        self._engine = engine
        engine.protocol.loop.set_exception_handler(self._loop_exception)
        pid = engine.transport.get_pid()
        self._pid = pid
        _line_router().claim(pid, self._route)
        engine.timeout = self.cfg.move_margin  # SimpleEngine waits limit.time + this before TimeoutError
        try:
            self.engine_name = engine.id.get("name", "")
            self._configure(engine)
        except BaseException:
            self._stop_engine(engine, pid)
            raise

    def _loop_exception(self, loop: Any, context: dict[str, Any]) -> None:
        """The event loop of the running engine hit an error: one line, no traceback (an engine being stopped has
        :meth:`_teardown_exception` instead)."""
        self._note(f"python-chess: {_loop_error(context)}")

    def _teardown_exception(self, loop: Any, context: dict[str, Any]) -> None:
        """The event loop of an engine we are stopping: what it says about the pipes of a process we kill (e.g.
        asyncio's InvalidStateError in ``_call_connection_lost`` after a timed-out search) is our own teardown,
        not a fault of its own: debug only, so that the journal tells the incident once."""
        log.debug("%s: python-chess while the engine is stopped: %s", self.name, _loop_error(context))

    def _configure(self, engine: chess.engine.SimpleEngine) -> None:
        options: dict[str, str | int | bool | None] = {
            k: (int(v) if isinstance(v, float) and v.is_integer() else (str(v) if isinstance(v, float) else v))
            for k, v in self.cfg.options.items()}
        if not options:
            return
        offered = engine.options
        unknown = [k for k in options if k not in offered]
        if unknown:
            names = ", ".join(sorted(offered, key=str.lower))
            raise EngineError(f"{self.name}: engine {self.engine_name or self.cfg.command[0]!r} has no option "
                              f"{', '.join(repr(u) for u in unknown)} (engine.options); it offers: {names}")
        managed = [k for k in options if offered[k].is_managed()]
        if managed:
            raise EngineError(f"{self.name}: engine.options {', '.join(managed)} are set by the bridge itself "
                              f"for each position; remove them from engine.options")
        try:
            engine.configure(options)
        except (chess.engine.EngineError, ValueError) as exc:
            raise EngineError(f"{self.name}: engine.options rejected: {exc}; fix the value in engine.options") \
                from None
        except TimeoutError:
            raise EngineError(f"{self.name}: the engine hung while setting engine.options") from None

    def _stop_engine(self, engine: chess.engine.SimpleEngine, pid: int | None, *, polite: bool = True) -> None:
        """Quit within quit_grace (``polite``; a dead or hung engine is not asked), then kill the process group.
        Never raises."""
        try:
            engine.protocol.loop.set_exception_handler(self._teardown_exception)
        except Exception:
            pass
        if polite:
            try:
                engine.timeout = self.cfg.quit_grace
                engine.quit()
            except Exception:
                pass
        try:
            engine.close()  # closes the transport: kills the process if it still runs
        except Exception:
            pass
        exited = _wait_returncode(engine, 0.2)
        if not exited:
            # python-chess never resolves the exit of an engine killed during a timed-out analysis (its
            # connection_lost raises): resolve it, or its event-loop thread waits forever and so does exit
            _finish_event_loop(engine)
            exited = _wait_returncode(engine, max(0.5, self.cfg.quit_grace))
        if pid is not None:
            _kill_group(pid, only_if_alive=exited)  # the engine, or what is left of its group (a wrapper's children)
            _line_router().forget(pid)

    def _first_start(self) -> None:
        """Start the engine; a start that fails (killed while starting, a transient resource shortage) is retried
        like any failure, within ``engine.max_restarts``; then the last error is raised."""
        try:
            self._start()
            return
        except EngineError as exc:
            if self.cfg.max_restarts == 0:
                raise
            reason = f"the engine did not start ({exc})"
        while True:
            try:
                self._restart(reason)
                return
            except EngineError as exc:
                if self.restarts >= self.cfg.max_restarts:
                    if "giving up" in str(exc):
                        raise
                    raise EngineError(f"{exc}; the engine was already restarted {self.restarts} times "
                                      f"(engine.max_restarts), giving up") from None
                reason = f"the engine did not start ({exc})"

    def _restart(self, reason: str) -> None:
        self._set_down(None)
        if self.restarts >= self.cfg.max_restarts:  # the caller reports the error (one line per incident)
            raise EngineError(f"{self.name}: {reason}; the engine was already restarted {self.restarts} times "
                              f"(engine.max_restarts), giving up")
        self.restarts += 1
        self._note(f"{reason}: restarting the engine ({self.restarts} of {self.cfg.max_restarts} restarts)")
        self._start()

    def close(self) -> None:
        """Stop the engine (quit, then kill). Idempotent; never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            engine, pid = self._engine, self._pid
            self._engine, self._pid = None, None
        if engine is not None:
            self._stop_engine(engine, pid)
        with _live_lock:
            _live.discard(self)

    @property
    def pid(self) -> int | None:
        """The current engine process id (changes after a restart)."""
        return self._pid

    def __enter__(self) -> UciEngine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- requests --------------------------------------------------------------------------------------------
    def _limit(self, seconds: float, depth: int | None) -> chess.engine.Limit:
        if seconds <= 0:
            raise ValueError("an engine time budget must be positive")
        if self.cfg.max_move_time is not None:
            seconds = min(seconds, self.cfg.max_move_time)
        return chess.engine.Limit(time=seconds, depth=depth)

    def _margin(self, seconds: float, deadline: float | None) -> float:
        """How long past its ``seconds`` a request may take before the engine counts as hung: ``move_margin``, or
        less when ``deadline`` is nearer (never under :data:`MIN_MARGIN`)."""
        margin = self.cfg.move_margin
        if deadline is not None:
            margin = min(margin, max(MIN_MARGIN, deadline - time.monotonic() - seconds))
        return margin

    def _call(self, what: str, request: Callable[[chess.engine.SimpleEngine], T], *, seconds: float = 0.0,
              deadline: float | None = None) -> T:
        """Run ``request`` (a search of ``seconds``), restarting a dead or hung engine and asking again. With a
        ``deadline`` (``time.monotonic()``): a hung engine is given up on by then, and a restart and second try
        are made only if they fit before it."""
        with self._lock:
            while True:
                if self._closed:
                    raise EngineError(f"{self.name}: the engine was closed")
                engine = self._engine
                if engine is None:
                    self._restart(self._down or "the engine is not running")
                    continue
                margin = self._margin(seconds, deadline)
                engine.timeout = margin  # SimpleEngine waits limit.time + this before TimeoutError
                try:
                    return request(engine)
                except chess.engine.EngineTerminatedError as exc:
                    reason = f"the engine died during {what} ({exc})"
                except concurrent.futures.CancelledError:  # python-chess cancels the request of an engine that died
                    reason = f"the engine died during {what} (its request was cancelled)"
                except TimeoutError:
                    reason = f"the engine did not answer {what} within its budget + " + (
                        f"{margin:g} s (engine.move_margin)" if margin == self.cfg.move_margin
                        else f"{margin:.1f} s (what the clock allows)")
                except chess.engine.EngineError as exc:
                    raise EngineError(f"{self.name}: the engine misbehaved during {what}: {exc}") from None
                if deadline is not None and \
                        deadline - time.monotonic() < self._start_seconds + seconds + MIN_MARGIN:
                    self._set_down(reason)
                    raise EngineError(f"{self.name}: {reason}; no time left this turn to restart it and ask "
                                      f"again (it restarts at its next request)")
                self._restart(reason)

    def _set_down(self, reason: str | None) -> None:
        """Stop the (dead or hung) process now, without asking it to quit; ``reason``: why, for the restart at the
        next request (None: the caller restarts it)."""
        old, pid = self._engine, self._pid
        self._engine, self._pid, self._down = None, None, reason
        if old is not None:
            self._stop_engine(old, pid, polite=False)

    def analyse(self, board: chess.Board, *, seconds: float, depth: int | None = None,
                multipv: int = 1, deadline: float | None = None) -> list[chess.engine.InfoDict]:
        """Analyse ``board`` for at most ``seconds`` (and ``depth`` plies); one InfoDict per principal variation,
        best first (an engine with no legal move answers one InfoDict without ``pv``). ``deadline``: see
        :meth:`_call`."""
        limit = self._limit(seconds, depth)
        result = self._call("analyse", lambda e: e.analyse(board, limit, multipv=multipv), seconds=seconds,
                            deadline=deadline)
        return result if isinstance(result, list) else [result]

    def play(self, board: chess.Board, *, seconds: float, deadline: float | None = None) -> chess.Move | None:
        """The engine's move in ``board`` within ``seconds`` (None: it has none). ``deadline``: see :meth:`_call`."""
        limit = self._limit(seconds, None)
        result = self._call("play", lambda e: e.play(board, limit), seconds=seconds, deadline=deadline)
        return result.move

    def ping(self) -> None:
        """Check that the engine answers (``isready``), restarting it if not."""
        self._call("isready", lambda e: e.ping())
