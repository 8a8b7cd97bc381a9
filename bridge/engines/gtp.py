"""The GTP driver: start and handshake a Go engine, send only commands it listed, tell refusals from breakage.

Protocol only: no Go rules and no board state (the Go player above keeps those and replays after a restart).
Errors: a ``?`` reply raises :class:`~bridge.errors.EngineRefusedError`; a hung engine
:class:`~bridge.errors.EngineTimeoutError`; a dead one :class:`~bridge.errors.EngineTerminatedError`; garbage
or an unlisted command :class:`~bridge.errors.EngineError`.  After a timeout, a death or garbage the engine is
unusable (:attr:`GtpEngine.broken`): close it and start a new one.
"""

from __future__ import annotations

from bridge.engines.framing import GtpStyleEngine
from bridge.errors import EngineError

REQUIRED_COMMANDS = frozenset({
    "protocol_version", "name", "version", "known_command", "list_commands", "quit",
    "boardsize", "clear_board", "komi", "play", "genmove",
})
_COLORS = {"b": "b", "black": "b", "w": "w", "white": "w"}


class GtpEngine(GtpStyleEngine):
    """A running GTP engine. Build it with :meth:`GtpEngine.start`."""

    REQUIRED_COMMANDS = REQUIRED_COMMANDS
    PROTOCOL_LABEL = "GTP"
    START_HINT = "is it a GTP engine started in GTP mode, e.g. `gnugo --mode gtp`?"

    def _handshake(self, deadline: float, startup_timeout: float) -> None:
        def ask(cmd: str) -> str | None:
            reply = self._ask(cmd, deadline, startup_timeout)
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
                self.log.warning("engine %s does not list the required GTP command(s) %s; a game fails when it "
                                 "needs one: check that engine.command starts a GTP engine (`gamebridge check "
                                 "CONFIG`)", self.name, " ".join(sorted(missing)))
        self.log.info("engine %s is %s %s (GTP %s, %d commands)", self.name, self.engine_name,
                      self.engine_version, self.protocol_version, len(self.commands))

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
