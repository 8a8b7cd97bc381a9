"""One engine subprocess on pipes: spawn, line I/O with timeouts, stderr capture, and a stop that never fails.

The engine runs in its own session and process group (``start_new_session=True``), so a Ctrl-C on the daemon's
terminal does not kill it mid-move, and :meth:`EngineProcess.stop` can signal the whole group (wrapper scripts
and their children included).  Engines are stopped at interpreter exit (a weak registry plus ``atexit``) and
killed if their :class:`EngineProcess` is garbage-collected without :meth:`~EngineProcess.stop`. On Linux an
engine also dies with the thread that started it (``PR_SET_PDEATHSIG``, :func:`die_with_parent`), so a daemon
killed with SIGKILL leaves no engine behind, not even a hung or busy one that would never read end-of-file.

Every line written to the engine (``>>``) and read from its stderr (``!!``) goes to the transcript as it happens;
a stdout line (``<<``) when the bridge reads it. Stdout is read on the thread that waits for the answer (no reader
thread, no queue: one hand-off less per move); what the engine wrote that nobody read (a late answer, its last words)
is read into the transcript when the engine is stopped.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import ctypes.util
import logging
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bridge.errors import EngineError, EngineTerminatedError, EngineTimeoutError
from bridge.redact import contains_secret, redact
from bridge.transcript import Transcript

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):  # no prctl: engines then rely on end-of-file and the stop sequence
        _prctl = None


class _EngineLog(logging.Logger):
    """A logger of one engine, named ``bridge.engine.NAME`` in the log lines but not registered with Python's
    logging (which keeps every named logger for the life of the process: one logger a game, named after it, was
    ~1 KB a game kept forever by a daemon running for months). It goes with its engine; its level and handlers are
    those of ``bridge.engine``, asked each time (a reload's new level holds for engines already running)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"bridge.engine.{name}")
        self.parent = logging.getLogger("bridge.engine")

    def isEnabledFor(self, level: int) -> bool:
        assert self.parent is not None
        return self.parent.isEnabledFor(level)


def engine_log(name: str) -> logging.Logger:
    """The logger an engine called ``name`` logs with (:class:`_EngineLog`)."""
    return _EngineLog(name)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when the thread that started it ends — the daemon
    killed with SIGKILL included — or None where the platform has no ``PR_SET_PDEATHSIG``. Every engine of the
    bridge is started by the thread that owns it (a game's session, python-chess's engine loop, the health probe)
    and stopped before that thread ends, so the signal only ever reaches an engine whose owner is gone."""
    prctl = _prctl
    if prctl is None:
        return None
    parent = os.getpid()

    def child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return child
STDERR_TAIL_LINES = 50
READ_SLICE = 0.25  # seconds: how long a read waits on the pipe before it looks whether the engine is being stopped
READ_CHUNK = 65536
# an engine line longer than this (KataGo's longest analysis lines are a few hundred KB) is a broken engine: the read
# fails, what was held is let go and the rest of the line is skipped, so a flood cannot fill the daemon's memory
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_STDERR_CHARS = 65536  # a longer stderr line is cut there (and said to be): it goes to the chat and the logs

# What an engine inherits from the daemon's environment; everything else (API keys, tokens, the service's own
# settings) stays out. Exact names, then prefixes: locale, time zone, temp dirs, the dynamic loader, and what GPU
# and BLAS engines read (CUDA/cuDNN/NVIDIA for KataGo's CUDA and TensorRT builds, OpenCL ICDs for its OpenCL build,
# ROCm/HIP for AMD cards, OpenMP/MKL/OpenBLAS thread counts for CPU builds). Anything else is named in engine.env.
ENV_ALLOW = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP", "LD_LIBRARY_PATH",
    "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "DISPLAY", "OCL_ICD_VENDORS",
    "OPENCL_VENDOR_PATH", "GPU_DEVICE_ORDINAL",
})
ENV_ALLOW_PREFIXES = ("LC_", "CUDA_", "CUDNN_", "NVIDIA_", "__NV_", "TF_CPP_", "ROCR_", "HIP_", "HSA_", "OMP_",
                      "KMP_", "MKL_", "OPENBLAS_", "GOMP_")


ENGINE_NAME_VAR = "GAMEBRIDGE_ENGINE"  # set in every engine's environment: its name, e.g. ogs-GAME


def engine_environment(extra: dict[str, str] | None = None,
                       base: dict[str, str] | os._Environ[str] | None = None) -> dict[str, str]:
    """The environment an engine starts with: the allowed part of the daemon's (``ENV_ALLOW``,
    ``ENV_ALLOW_PREFIXES``) plus ``extra`` (the config's engine.env). A variable whose value holds a registered
    secret is left out even when allowed or named in ``extra``, so an API key never reaches an engine."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIXES)}
    env.update(extra or {})
    return {k: v for k, v in env.items() if not contains_secret(v)}

_live: weakref.WeakSet[EngineProcess] = weakref.WeakSet()
_live_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    with _live_lock:
        engines = list(_live)
    for engine in engines:
        engine.stop(grace=0.5)


atexit.register(_stop_all_at_exit)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "closed its output but is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _group_members_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` is alive (zombies waiting to be reaped by init don't count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: trust killpg
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses; split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _wait_gone(popen: subprocess.Popen[str], pgid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for the leader to exit and the group to empty; True if both happened."""
    deadline = time.monotonic() + seconds
    while True:
        leader_done = popen.poll() is not None
        if leader_done and not _group_members_alive(pgid):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if not leader_done:
            try:
                popen.wait(timeout=min(remaining, 0.05))
            except subprocess.TimeoutExpired:
                pass
        else:
            time.sleep(min(remaining, 0.02))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_abandoned(popen: subprocess.Popen[str], pgid: int, name: str) -> None:
    """Finalizer of an EngineProcess dropped without stop(): kill its group. Holds no reference to it."""
    if popen.poll() is None or _group_members_alive(pgid):
        engine_log(name).warning(
            "engine %s (pid %d) was abandoned without stop(); killing its process group", name, popen.pid)
        _signal_group(pgid, signal.SIGKILL)
        try:
            popen.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pass


def _read_stderr(
    pipe: TextIO,
    tail: collections.deque[str],
    transcript: Transcript | None,
    name: str,
    log: logging.Logger,
    on_stderr: Callable[[str], None] | None,
) -> None:
    try:
        cut = False  # the rest of a line cut at MAX_STDERR_CHARS is being skipped
        while raw := pipe.readline(MAX_STDERR_CHARS):
            whole = raw.endswith("\n")
            if cut:
                cut = not whole
                continue
            line = raw.rstrip("\n").rstrip("\r")
            if not whole and len(raw) >= MAX_STDERR_CHARS:
                cut = True
                line += f" [line cut at {MAX_STDERR_CHARS} characters]"
            tail.append(line)
            if transcript is not None:
                transcript.write("!!", line, name)
            log.debug("stderr: %s", line)
            if on_stderr is not None:
                try:
                    on_stderr(line)
                except Exception:  # a bad callback must not stop the capture
                    log.exception("the stderr callback of engine %s failed on %r", name, line[:200])
    except (OSError, ValueError) as exc:
        log.debug("stderr reader of %s ended: %s", name, exc)


class EngineProcess:
    """An engine subprocess with line-oriented pipes. Create, :meth:`start`, talk, :meth:`stop`.

    ``env`` holds extra environment variables, added to the allowed part of the daemon's environment
    (:func:`engine_environment`).
    """

    def __init__(
        self,
        command: list[str],
        *,
        name: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        transcript: Transcript | None = None,
        on_stderr: Callable[[str], None] | None = None,
    ) -> None:
        self.command = list(command)
        self.name = name or (Path(command[0]).name if command else "engine")
        self.cwd = cwd
        self.env = dict(env) if env else {}
        self.transcript = transcript
        self.on_stderr = on_stderr
        self.log = engine_log(self.name)
        self._popen: subprocess.Popen[str] | None = None
        self._pgid = 0
        # stdout, read by whichever thread waits for a line (one at a time: _read_lock)
        self._stdout_fd = -1
        self._poll: select.poll | None = None
        self._partial = bytearray()  # read, not yet a whole line
        self._skipping = False  # the rest of a line longer than MAX_LINE_BYTES is being skipped
        self._lines: collections.deque[str] = collections.deque()  # whole lines not yet returned
        self._eof = False
        self._read_lock = threading.Lock()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._threads: list[threading.Thread] = []  # the stderr reader
        self._write_lock = threading.Lock()
        self._stop_lock = threading.RLock()
        self._stopped = False
        self._finalizer: weakref.finalize | None = None

    # --- life cycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the engine. Raises EngineError naming the command and the fix if it cannot be run."""
        if self._popen is not None:
            raise EngineError(f"engine {self.name} was already started (pid {self._popen.pid})")
        if not self.command or not self.command[0]:
            raise EngineError(f"engine {self.name}: the command is empty; set engine.command in the configuration")
        shown = redact(shlex.join(self.command))
        if self.cwd is not None and not self.cwd.is_dir():
            raise EngineError(f"engine {self.name}: working directory {self.cwd} does not exist; "
                              f"create it or fix engine.cwd in the configuration")
        env = engine_environment(self.env)
        env[ENGINE_NAME_VAR] = self.name  # which game (or pool slot) this process serves: for wrappers and ps
        try:
            popen = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                start_new_session=True,
                close_fds=True,
                preexec_fn=die_with_parent(),
            )
        except FileNotFoundError:
            raise EngineError(
                f"engine {self.name}: cannot start `{shown}`: {self.command[0]} not found; install the engine "
                f"or give its full path in engine.command (e.g. /usr/games/gnugo; /usr/games is not on "
                f"root's PATH)"
            ) from None
        except PermissionError:
            raise EngineError(
                f"engine {self.name}: cannot start `{shown}`: permission denied; make {self.command[0]} "
                f"executable (chmod +x) and readable by the user running the bridge"
            ) from None
        except OSError as exc:
            raise EngineError(f"engine {self.name}: cannot start `{shown}`: {exc.strerror or exc}; "
                              f"check engine.command in the configuration") from None
        self._popen = popen
        self._pgid = popen.pid  # start_new_session: the engine leads its own process group
        assert popen.stdout is not None and popen.stderr is not None
        self._stdout_fd = popen.stdout.fileno()
        os.set_blocking(self._stdout_fd, False)
        self._poll = select.poll()
        self._poll.register(self._stdout_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._threads = [
            threading.Thread(
                target=_read_stderr,
                args=(popen.stderr, self._stderr_tail, self.transcript, self.name, self.log, self.on_stderr),
                name=f"engine-{self.name}-stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()
        self._finalizer = weakref.finalize(self, _reap_abandoned, popen, self._pgid, self.name)
        self._finalizer.atexit = False  # at exit, _stop_all_at_exit stops it gracefully instead
        with _live_lock:
            _live.add(self)
        self.log.debug("started pid %d: %s", popen.pid, shown)
        if self.transcript is not None:
            self.transcript.note(f"started pid {popen.pid}: {shown}", self.name)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def pgid(self) -> int | None:
        return self._pgid if self._popen is not None else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stderr_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines the engine wrote to stderr (redacted)."""
        lines = list(self._stderr_tail)
        return [redact(line) for line in lines[-n:]] if n > 0 else []

    # --- I/O ---------------------------------------------------------------------------------------
    def send_line(self, line: str) -> None:
        """Write one line (a newline is added). Raises EngineTerminatedError if the engine is gone."""
        self.send_lines([line])

    def send_lines(self, lines: list[str]) -> None:
        """Write several lines at once (newlines added): one write to the pipe, one transcript entry. Raises
        EngineTerminatedError if the engine is gone."""
        for line in lines:
            if "\n" in line or "\r" in line:
                raise EngineError(f"refusing to send a line break inside one line to engine {self.name}: {line!r}")
        popen = self._popen
        if popen is None or popen.stdin is None:
            raise EngineTerminatedError(f"engine {self.name} is not running (it was never started)")
        text = "\n".join(lines)
        with self._write_lock:
            try:
                popen.stdin.write(text + "\n")
                popen.stdin.flush()
            except (OSError, ValueError):  # BrokenPipeError, or stdin closed by stop()
                shown = lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more lines)"
                raise EngineTerminatedError(self._gone_message(f"could not be sent {shown!r}")) from None
            finally:  # recorded once sent: the engine starts on it while the line is formatted
                if self.transcript is not None:
                    self.transcript.write(">>", text, self.name)

    def read_line(self, timeout: float | None) -> str:
        """The next stdout line without its line ending. ``timeout=None`` waits forever.

        Raises EngineTimeoutError after ``timeout`` seconds, EngineTerminatedError if stdout is closed. Read on
        the calling thread; callers on several threads take turns.
        """
        popen = self._popen
        if popen is None:
            raise EngineTerminatedError(f"engine {self.name} is not running (it was never started)")
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        if not self._read_lock.acquire(timeout=-1 if deadline is None else max(timeout or 0.0, 0.0)):
            raise self._timed_out(timeout)
        try:
            while True:
                if self._lines:
                    return self._lines.popleft()
                if self._eof:
                    raise EngineTerminatedError(self._gone_message("closed its output"))
                wait = READ_SLICE if deadline is None else min(READ_SLICE, deadline - time.monotonic())
                assert self._poll is not None
                if wait > 0 and self._poll.poll(wait * 1000.0):
                    self._fill()
                elif self._stopped and popen.poll() is not None:  # stopped, and a process outside its group
                    self._eof = True                                 # holds the pipe: no end-of-file will come
                elif deadline is not None and time.monotonic() >= deadline:
                    if wait <= 0 and self._poll.poll(0):  # a last look: the line may have come just now
                        self._fill()
                        continue
                    raise self._timed_out(timeout)
        finally:
            self._read_lock.release()

    def _timed_out(self, timeout: float | None) -> EngineTimeoutError:
        pid = self._popen.pid if self._popen is not None else None
        return EngineTimeoutError(f"engine {self.name} (pid {pid}) wrote nothing within {timeout or 0.0:.1f} s")

    def _fill(self) -> None:
        """Read what the pipe holds (it is non-blocking) and split it into lines; the caller holds _read_lock."""
        fd = self._stdout_fd
        if fd < 0:
            self._eof = True
            return
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # closed under us during stop()
            self.log.debug("stdout of %s ended: %s", self.name, exc)
            data = b""
        if data:
            if self._skipping:
                end = data.find(b"\n")
                if end < 0:
                    return
                self._skipping, data = False, data[end + 1:]
            self._partial += data
            if b"\n" not in data:
                if len(self._partial) > MAX_LINE_BYTES:
                    self._partial, self._skipping = bytearray(), True
                    pid = self._popen.pid if self._popen is not None else None
                    message = (f"engine {self.name} (pid {pid}) wrote more than {MAX_LINE_BYTES // (1024 * 1024)} MB "
                               f"without a line break: it is not speaking its protocol, so it counts as failed")
                    if self.transcript is not None:
                        self.transcript.note(message, self.name)
                    raise EngineError(message)
                return
            *whole, rest = bytes(self._partial).split(b"\n")
            self._partial = bytearray(rest)
        else:
            self._eof = True
            if not self._partial:
                return
            whole, self._partial = [bytes(self._partial)], bytearray()  # a last line without its newline
        lines = [raw.decode("utf-8", errors="replace") for raw in whole]
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        self._lines.extend(lines)
        if self.transcript is not None:  # one entry for what one read brought
            self.transcript.write("<<", "\n".join(lines), self.name)

    def _drain_stdout(self) -> None:
        """At stop: read what the engine wrote and nobody read into the transcript, then close the pipe."""
        if not self._read_lock.acquire(timeout=2 * READ_SLICE + 1.0):
            self.log.warning("engine %s: a reader still holds its stdout; leaving it open", self.name)
            return
        try:
            if self._stdout_fd >= 0:
                for _ in range(64):  # bounded: a process outside the group may still be writing
                    if self._eof or self._poll is None or not self._poll.poll(0):
                        break
                    try:
                        self._fill()
                    except EngineError:  # a line without end: noted in the transcript, nothing more to read
                        break
            self._stdout_fd = -1
            self._eof = True  # a later read ends at once, never polls the closed (maybe reused) descriptor
            popen = self._popen
            if popen is not None and popen.stdout is not None:
                try:
                    popen.stdout.close()
                except OSError:
                    pass
        finally:
            self._read_lock.release()

    def _gone_message(self, what: str) -> str:
        popen = self._popen
        assert popen is not None
        try:
            popen.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        if self._threads and self._threads[0].is_alive() and self._threads[0] is not threading.current_thread():
            self._threads[0].join(timeout=0.5)  # let the last stderr lines arrive
        tail = self.stderr_tail(10)
        stderr = "; last stderr lines: " + " | ".join(tail) if tail else "; it wrote nothing to stderr"
        if self._stopped:
            return f"engine {self.name} (pid {popen.pid}) {what}: the bridge is stopping it"
        return (f"engine {self.name} (pid {popen.pid}) {what}: it {_describe_exit(popen.poll())}{stderr}. "
                f"Run `{redact(shlex.join(self.command))}` by hand to see why")

    # --- stopping ----------------------------------------------------------------------------------
    def stop(self, quit_line: str | None = "quit", grace: float = 2.0) -> None:
        """Stop the engine: ``quit_line``, wait ``grace`` s, SIGTERM the group, wait, SIGKILL the group.

        Never raises; idempotent; safe from any thread (a concurrent call waits for the first to finish).
        """
        with self._stop_lock:
            if self._stopped or self._popen is None:
                return
            self._stopped = True
            try:
                self._stop(self._popen, quit_line, max(grace, 0.0))
            except Exception:
                self.log.exception("stopping engine %s failed unexpectedly (a bug: please report it with this "
                                   "traceback); its processes may still run: look for process group %s (ps -g %s) "
                                   "and kill it", self.name, self._pgid, self._pgid)
            finally:
                with _live_lock:
                    _live.discard(self)
                if self._finalizer is not None:
                    self._finalizer.detach()

    def _stop(self, popen: subprocess.Popen[str], quit_line: str | None, grace: float) -> None:
        how = "had already exited"
        if popen.poll() is None:
            how = "exited after quit"
            self._send_quit(popen, quit_line)
            if not _wait_gone(popen, self._pgid, grace):
                how = "exited after SIGTERM"
                _signal_group(self._pgid, signal.SIGTERM)
                if not _wait_gone(popen, self._pgid, max(grace, 0.2)):
                    how = "killed with SIGKILL"
                    _signal_group(self._pgid, signal.SIGKILL)
                    _wait_gone(popen, self._pgid, 5.0)
        elif _group_members_alive(self._pgid):  # the leader is gone but left children behind
            _signal_group(self._pgid, signal.SIGTERM)
            if not _wait_gone(popen, self._pgid, max(grace, 0.2)):
                _signal_group(self._pgid, signal.SIGKILL)
                _wait_gone(popen, self._pgid, 5.0)
        self._close_stdin(popen)
        for t in self._threads:
            t.join(timeout=2.0)
            if t.is_alive():  # a process outside the group still holds the pipe
                self.log.warning("engine %s: its reader thread %s did not end (a process outside the engine's "
                                 "process group still holds its output); games are not affected; if it repeats, "
                                 "look for processes left over from engine.command", self.name, t.name)
        self._drain_stdout()
        if popen.stderr is not None and not any(t.is_alive() for t in self._threads):
            try:
                popen.stderr.close()
            except OSError:
                pass
        code = popen.poll()
        self.log.debug("engine %s (pid %d) %s (%s)", self.name, popen.pid, how, _describe_exit(code))
        if self.transcript is not None:
            self.transcript.note(f"stopped pid {popen.pid}: {how}, it {_describe_exit(code)}", self.name)

    def _send_quit(self, popen: subprocess.Popen[str], quit_line: str | None) -> None:
        """Send ``quit_line`` and close stdin, without ever blocking on an engine that stopped reading."""
        if not self._write_lock.acquire(timeout=0.5):  # another thread is stuck writing: signals will do
            return
        try:
            stdin = popen.stdin
            if stdin is None or stdin.closed:
                return
            if quit_line is not None and "\n" not in quit_line:
                try:
                    # a pipe reports writable when PIPE_BUF bytes fit, so a short line cannot block
                    writable = select.select([], [stdin], [], 0)[1]
                    if writable and len(quit_line.encode()) < select.PIPE_BUF:
                        if self.transcript is not None:
                            self.transcript.write(">>", quit_line, self.name)
                        stdin.write(quit_line + "\n")
                        stdin.flush()
                except (OSError, ValueError):
                    pass
            try:
                stdin.close()  # end-of-file: many engines exit on it as well
            except (OSError, ValueError):
                pass
        finally:
            self._write_lock.release()

    def _close_stdin(self, popen: subprocess.Popen[str]) -> None:
        if not self._write_lock.acquire(timeout=2.0):
            self.log.warning("engine %s: a writer is still blocked; leaving its stdin open", self.name)
            return
        try:
            if popen.stdin is not None and not popen.stdin.closed:
                try:
                    popen.stdin.close()
                except (OSError, ValueError):
                    pass
        finally:
            self._write_lock.release()
