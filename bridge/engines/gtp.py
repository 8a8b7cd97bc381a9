"""The GTP driver: start and handshake a Go engine, send only commands it listed, tell refusals from breakage.

Protocol only: no Go rules and no board state (the Go player above keeps those and replays after a restart).
Errors: a ``?`` reply raises :class:`~bridge.errors.EngineRefusedError`; a hung engine
:class:`~bridge.errors.EngineTimeoutError`; a dead one :class:`~bridge.errors.EngineTerminatedError`; garbage
or an unlisted command :class:`~bridge.errors.EngineError`.  After a timeout, a death or garbage the engine is
unusable (:attr:`GtpEngine.broken`): close it and start a new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from bridge.engines.framing import GtpStyleChannel
from bridge.engines.process import EngineProcess
from bridge.errors import EngineError, EngineRefusedError, EngineTerminatedError, EngineTimeoutError
from bridge.transcript import Transcript

REQUIRED_COMMANDS = frozenset({
    "protocol_version", "name", "version", "known_command", "list_commands", "quit",
    "boardsize", "clear_board", "komi", "play", "genmove",
})
DEFAULT_TIMEOUT = 30.0  # seconds, for every command but genmove
_COLORS = {"b": "b", "black": "b", "w": "w", "white": "w"}


class GtpEngine:
    """A running GTP engine. Build it with :meth:`GtpEngine.start`."""

    def __init__(self, channel: GtpStyleChannel, *, quit_grace: float = 2.0) -> None:
        self._channel = channel
        self.process = channel.process
        self.name = channel.name  # the bridge's name for it (logs, transcript)
        self.quit_grace = quit_grace
        self.log = logging.getLogger(f"bridge.engine.{self.name}")
        self.engine_name = ""
        self.engine_version = ""
        self.protocol_version = ""
        self.commands: frozenset[str] = REQUIRED_COMMANDS

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
    ) -> GtpEngine:
        """Spawn the engine and handshake (protocol_version, name, version, list_commands) within
        ``startup_timeout`` seconds. On failure the process is stopped and EngineError says why."""
        process = EngineProcess(command, name=name, cwd=cwd, env=env, transcript=transcript, on_stderr=on_stderr)
        process.start()
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
        def ask(cmd: str) -> str | None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineTimeoutError(f"the handshake took longer than startup_timeout={startup_timeout:g} s")
            reply = self._channel.request(cmd, remaining)
            if not reply.ok:
                self.log.warning("engine %s refused %r during the handshake: %s", self.name, cmd, reply.text)
                return None
            return reply.text

        self.protocol_version = ask("protocol_version") or ""
        if self.protocol_version != "2":
            self.log.warning("engine %s speaks GTP protocol version %r, not 2; going on", self.name,
                             self.protocol_version)
        self.engine_name = ask("name") or ""
        self.engine_version = ask("version") or ""
        listed = ask("list_commands")
        if listed is None:
            self.log.warning("engine %s has no list_commands; assuming only the required GTP commands: %s",
                             self.name, " ".join(sorted(REQUIRED_COMMANDS)))
            self.commands = REQUIRED_COMMANDS
        else:
            self.commands = frozenset(c.strip() for c in listed.splitlines() if c.strip())
            missing = REQUIRED_COMMANDS - self.commands - {"known_command"}
            if missing:
                self.log.warning("engine %s does not list the required GTP command(s) %s", self.name,
                                 " ".join(sorted(missing)))
        self.log.info("engine %s is %s %s (GTP %s, %d commands)", self.name, self.engine_name,
                      self.engine_version, self.protocol_version, len(self.commands))

    def _handshake_error(self, exc: EngineError) -> EngineError:
        tail = self.process.stderr_tail(10)
        stderr = ("; its last stderr lines: " + " | ".join(tail)) if tail else ""
        if "last stderr lines" in str(exc):  # EngineProcess already told
            stderr = ""
        msg = (f"engine {self.name} failed its GTP start-up handshake: {exc}{stderr}. "
               f"Check engine.command (is it a GTP engine started in GTP mode, e.g. `gnugo --mode gtp`?)")
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
        """Send ``name args...`` and return the result text; ``timeout`` defaults to 30 s.

        Raises EngineError without sending anything if the engine did not list ``name`` (``quit`` excepted),
        EngineRefusedError for a ``?`` reply.
        """
        if not name or any(c.isspace() for c in name):
            raise EngineError(f"engine {self.name}: {name!r} is not a GTP command name")
        if name != "quit" and name not in self.commands:
            raise EngineError(f"engine {self.name} ({self.engine_name or 'unnamed'}) does not support {name!r} "
                              f"(not in its list_commands); the bridge does not send it")
        line = " ".join((name, *(str(a) for a in args)))
        reply = self._channel.request(line, DEFAULT_TIMEOUT if timeout is None else timeout)
        if not reply.ok:
            raise EngineRefusedError(line, reply.text)
        return reply.text

    def genmove(self, color: str, timeout: float, *, command: str = "genmove") -> str:
        """Ask for a move; return the raw answer lowercased: a vertex such as ``d4``, ``pass`` or ``resign``.

        ``timeout`` is the move's time budget plus a margin. ``command`` may name a variant with the same
        answer (``kgs-genmove_cleanup``).
        """
        gtp_color = _COLORS.get(color.strip().lower())
        if gtp_color is None:
            raise ValueError(f"genmove color must be b, w, black or white, not {color!r}")
        answer = self.command(command, gtp_color, timeout=timeout).strip().lower()
        if not answer or len(answer.split()) != 1:
            raise EngineError(f"engine {self.name} answered {command} {gtp_color} with {answer!r}, "
                              f"not a vertex, pass or resign")
        return answer

    def close(self) -> None:
        """quit -> grace -> SIGTERM -> SIGKILL. Never raises; idempotent."""
        self._channel.close(quit_line="quit", grace=self.quit_grace)

    def __enter__(self) -> GtpEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
