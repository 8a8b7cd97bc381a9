"""GTP-style framing, shared by GTP and the Battleship line protocol (same framing, another vocabulary).

A request is one line ``<id> <command>``; the reply is ``=[id] result`` or ``?[id] message``, possibly on
several lines, ended by an empty line.  ``\\r`` is stripped and blank lines before a reply are skipped.
Lines go to the transcript in the process layer (:mod:`bridge.engines.process`) as they cross the pipe.

After a timeout or a framing error the channel is out of step with the engine (a late reply would be
taken for the next one), so it refuses further requests: the caller restarts the engine.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from bridge.engines.process import EngineProcess, engine_log
from bridge.errors import EngineError, EngineRefusedError, EngineTerminatedError, EngineTimeoutError
from bridge.transcript import Transcript

_REPLY_START = re.compile(r"([=?])(\d*)(.*)", re.DOTALL)
_SHOWN = 200  # characters of a bad line quoted in an error message
HOLD_WAIT = 0.1  # seconds an answer may keep the caller waiting before the held transcript lines are flushed


@dataclass(frozen=True)
class Reply:
    """One reply: ``ok`` for ``=``, False for ``?``; ``text`` without the status and id (lines joined by \\n)."""

    ok: bool
    id: int | None
    text: str


def _shown(line: str) -> str:
    return repr(line if len(line) <= _SHOWN else line[:_SHOWN] + "...")


class GtpStyleChannel:
    """Requests and replies over an :class:`EngineProcess` that is already started."""

    def __init__(self, process: EngineProcess, *, first_id: int = 1) -> None:
        self.process = process
        self._next_id = first_id
        self._lock = threading.Lock()
        self._broken: str | None = None

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def broken(self) -> str | None:
        """Why the channel refuses requests (after a timeout, a protocol error or the engine's end), or None."""
        return self._broken

    def request(self, command: str, timeout: float | None) -> Reply:
        """Send ``command`` with the next id and read its reply within ``timeout`` seconds (None: no limit).

        Raises EngineTimeoutError (hung), EngineTerminatedError (gone), EngineError (garbage or unusable).
        A ``?`` reply is not an error here: it comes back with ``ok=False``.
        """
        return self.request_many([(command, timeout)], timeout)[0]

    def request_many(self, commands: Sequence[tuple[str, float | None]], timeout: float | None) -> list[Reply]:
        """Send several commands at once (one write; the protocol answers in order) and read their replies in
        order: what sequential requests would get, without a round trip per command.

        Each command has its own limit, counted from the previous reply (from now for the first), as if it had
        been sent then; ``timeout`` bounds them all together, from now (None: no limit). The errors are those of
        :meth:`request` and concern the reply being waited for; a ``?`` reply comes back with ``ok=False`` and the
        replies after it are read as usual, so the channel stays in step. The transcript is held for the
        exchange: one flush for all its lines.
        """
        lines: list[str] = []
        cleaned: list[str] = []
        for command, _ in commands:
            command = command.strip()
            if not command or "\n" in command or "\r" in command:
                raise EngineError(f"engine {self.name}: a command must be one non-empty line, not {command!r}")
            cleaned.append(command)
        if not cleaned:
            return []
        transcript = self.process.transcript
        with self._lock, (transcript.hold() if transcript is not None else contextlib.nullcontext()):
            if self._broken is not None:
                raise EngineError(f"engine {self.name} cannot take {cleaned[0]!r}: {self._broken}; "
                                  f"restart the engine")
            first = self._next_id
            self._next_id += len(cleaned)
            lines = [f"{first + k} {command}" for k, command in enumerate(cleaned)]
            now = time.monotonic()
            overall = None if timeout is None else now + timeout
            replies: list[Reply] = []
            line, limit = lines[0], timeout
            try:
                self.process.send_lines(lines)
                for k, line in enumerate(lines):
                    own = commands[k][1]
                    deadline = overall
                    limit = timeout
                    if own is not None and (deadline is None or now + own < deadline):
                        deadline, limit = now + own, own
                    replies.append(self._read_reply(first + k, line, deadline, limit))
                    now = time.monotonic()
                return replies
            except EngineTimeoutError:
                shown = f"{limit:.1f} s" if limit is not None else "its limit"
                self._broken = f"it did not answer {line!r} within {shown}"
                raise EngineTimeoutError(f"engine {self.name} did not answer {line!r} within {shown}; "
                                         f"it is treated as hung") from None
            except EngineTerminatedError as exc:
                self._broken = "the engine is gone"
                raise EngineTerminatedError(f"{exc} (while waiting for the answer to {line!r})") from None
            except EngineError as exc:
                self._broken = f"it broke the protocol ({exc})"
                raise

    def _next_line(self, deadline: float | None) -> str:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        transcript = self.process.transcript
        if transcript is not None and (remaining is None or remaining > HOLD_WAIT):
            try:  # an answer that keeps the caller waiting: what the transcript holds goes to disk meanwhile
                return self.process.read_line(HOLD_WAIT).rstrip("\r")
            except EngineTimeoutError:
                transcript.flush()
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        return self.process.read_line(remaining).rstrip("\r")

    def _read_reply(self, rid: int, sent: str, deadline: float | None, timeout: float | None) -> Reply:
        first = self._next_line(deadline)
        while not first.strip():  # blank lines before a reply are allowed
            first = self._next_line(deadline)
        m = _REPLY_START.fullmatch(first)
        rest = m.group(3) if m else ""
        if m is None or (rest and not rest[0].isspace()):
            raise EngineError(f"engine {self.name} answered {sent!r} with {_shown(first)}, which is not a GTP "
                              f"reply (it must start with '=' or '?' and the command's id); the engine may "
                              f"have printed debug output on stdout: check its options")
        reply_id = int(m.group(2)) if m.group(2) else None
        if reply_id is not None and reply_id != rid:
            raise EngineError(f"engine {self.name} answered {sent!r} with id {reply_id} ({_shown(first)}): "
                              f"the replies are out of step with the commands")
        lines = [rest.strip()]
        while True:
            line = self._next_line(deadline)
            if line == "":
                break
            lines.append(line)
        if len(lines) > 1 and not lines[0]:
            del lines[0]  # "= " then the board on the following lines
        return Reply(ok=m.group(1) == "=", id=reply_id, text="\n".join(lines).rstrip())

    def close(self, quit_line: str | None = "quit", grace: float = 2.0) -> None:
        """Stop the engine (never raises)."""
        self._broken = self._broken or "the channel is closed"
        self.process.stop(quit_line=quit_line, grace=grace)


DEFAULT_TIMEOUT = 30.0  # seconds, for every command but the move request


class GtpStyleEngine:
    """A running engine speaking a GTP-style protocol: start and handshake, capability checks, commands, close.

    Subclasses give the vocabulary: :attr:`REQUIRED_COMMANDS`, :attr:`PROTOCOL_LABEL` and :attr:`START_HINT` for
    messages, and :meth:`_handshake` (which sets ``protocol_version``, ``engine_name``, ``engine_version`` and
    ``commands`` with :meth:`_ask`)."""

    REQUIRED_COMMANDS: frozenset[str] = frozenset({"protocol_version", "name", "version", "list_commands", "quit"})
    PROTOCOL_LABEL = "GTP-style"
    START_HINT = "is it the right program, started in its protocol mode?"

    def __init__(self, channel: GtpStyleChannel, *, quit_grace: float = 2.0) -> None:
        self._channel = channel
        self.process = channel.process
        self.name = channel.name  # the bridge's name for it (logs, transcript)
        self.quit_grace = quit_grace
        # seconds allowed to a command given no timeout of its own (the move request always has one); a player
        # whose other commands are bookkeeping that takes milliseconds sets it lower, so that a frozen engine is
        # noticed in seconds, not at the end of a turn
        self.command_timeout = DEFAULT_TIMEOUT
        self.log = engine_log(self.name)
        self.engine_name = ""
        self.engine_version = ""
        self.protocol_version = ""
        self.commands: frozenset[str] = self.REQUIRED_COMMANDS

    @classmethod
    def start(
        cls,
        command: list[str],
        *,
        name: str = "",
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        transcript: Transcript | None = None,
        startup_timeout: float = 20.0,
        quit_grace: float = 2.0,
        on_stderr: Callable[[str], None] | None = None,
        on_spawn: Callable[[EngineProcess], None] | None = None,
    ) -> Self:
        """Spawn the engine and handshake within ``startup_timeout`` seconds. On failure the process is stopped
        and the EngineError says why. ``on_spawn`` gets the process before the handshake (so that another thread
        can stop an engine that is still starting)."""
        process = EngineProcess(command, name=name, cwd=cwd, env=env, transcript=transcript, on_stderr=on_stderr)
        process.start()
        if on_spawn is not None:
            on_spawn(process)
        engine = cls(GtpStyleChannel(process), quit_grace=quit_grace)
        try:
            engine._handshake(time.monotonic() + startup_timeout, startup_timeout)
        except EngineError as exc:
            process.stop(grace=min(quit_grace, 0.5))
            raise engine._handshake_error(exc) from None
        except BaseException:
            process.stop(grace=min(quit_grace, 0.5))
            raise
        return engine

    def _handshake(self, deadline: float, startup_timeout: float) -> None:
        raise NotImplementedError

    def _ask(self, cmd: str, deadline: float, startup_timeout: float) -> Reply:
        """One handshake request within what is left of the start-up time."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EngineTimeoutError(f"the handshake took longer than startup_timeout={startup_timeout:g} s")
        return self._channel.request(cmd, remaining)

    def _handshake_error(self, exc: EngineError) -> EngineError:
        tail = self.process.stderr_tail(10)
        stderr = ("; its last stderr lines: " + " | ".join(tail)) if tail else ""
        if "last stderr lines" in str(exc):  # EngineProcess already told
            stderr = ""
        msg = (f"engine {self.name} failed its {self.PROTOCOL_LABEL} start-up handshake: {exc}{stderr}. "
               f"Check engine.command ({self.START_HINT})")
        cls = type(exc) if type(exc) in (EngineTimeoutError, EngineTerminatedError) else EngineError
        return cls(msg)

    # --- queries -----------------------------------------------------------------------------------
    def supports(self, command: str) -> bool:
        return command in self.commands

    @property
    def broken(self) -> str | None:
        """Why this engine can take no more commands (hung, gone, garbage, closed), or None if it can."""
        return self._channel.broken

    @property
    def alive(self) -> bool:
        return self.process.alive

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stderr_tail(self, n: int = 20) -> list[str]:
        return self.process.stderr_tail(n)

    # --- commands ----------------------------------------------------------------------------------
    def command(self, name: str, *args: str, timeout: float | None = None) -> str:
        """Send ``name args...`` and return the result text; ``timeout`` defaults to :attr:`command_timeout` (30 s).

        Raises EngineError without sending anything if the engine did not list ``name`` (``quit`` excepted),
        EngineRefusedError for a ``?`` reply.
        """
        self._check_listed(name)
        line = " ".join((name, *(str(a) for a in args)))
        reply = self._channel.request(line, self.command_timeout if timeout is None else timeout)
        if not reply.ok:
            raise EngineRefusedError(line, reply.text)
        return reply.text

    def commands_at_once(self, requests: Sequence[tuple[Sequence[str], float | None]],
                         timeout: float | None) -> list[str]:
        """Send several commands together, each ``(name, args...)`` with its own limit (None:
        :attr:`command_timeout`), and return their results in order; ``timeout`` bounds them all, from now.

        The same checks and errors as :meth:`command`, command by command: nothing is sent if one is not listed;
        every reply is read, then the first ``?`` raises EngineRefusedError (the replies after it were still read,
        so the channel stays in step; what the engine did with the commands after a refused one is its own
        affair: a caller that cannot tell should start over)."""
        lines: list[tuple[str, float | None]] = []
        for request, limit in requests:
            name, *args = request
            self._check_listed(name)
            lines.append((" ".join((name, *(str(a) for a in args))),
                          self.command_timeout if limit is None else limit))
        replies = self._channel.request_many(lines, timeout)
        for (line, _), reply in zip(lines, replies, strict=True):
            if not reply.ok:
                raise EngineRefusedError(line, reply.text)
        return [reply.text for reply in replies]

    def _check_listed(self, name: str) -> None:
        if not name or any(c.isspace() for c in name):
            raise EngineError(f"engine {self.name}: {name!r} is not a {self.PROTOCOL_LABEL} command name")
        if name != "quit" and name not in self.commands:
            raise EngineError(f"engine {self.name} ({self.engine_name or 'unnamed'}) does not support {name!r} "
                              f"(not in its list_commands); the bridge does not send it")

    def close(self) -> None:
        """quit -> grace -> SIGTERM -> SIGKILL. Never raises; idempotent."""
        self._channel.close(quit_line="quit", grace=self.quit_grace)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
