"""The Battleship line-protocol driver: start and handshake a Battleship engine, tell it the game, ask
for turns.

The protocol (``docs/battleship-protocol.md``, "battleship-line-protocol 1") has GTP's framing,
implemented once in :mod:`bridge.engines.framing`, and its own vocabulary.  This driver holds no game
state beyond what it needs to check the engine's answers (the board size, the fleet, whether ships may
move, which ships may move now); the Battleship player keeps the game and replays it after a restart.

Errors, as for GTP: a ``?`` reply raises :class:`~bridge.errors.EngineRefusedError`; a hung engine
:class:`~bridge.errors.EngineTimeoutError`; a dead one :class:`~bridge.errors.EngineTerminatedError`; garbage,
an unlisted command or an invalid ``genmove`` answer :class:`~bridge.errors.EngineError`.  After a timeout, a
death or garbage the engine is unusable (:attr:`LineEngine.broken`): close it and start a new one.  An invalid
``genmove`` answer leaves the channel usable (the framing was fine; the content was not).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from bridge.engines.framing import GtpStyleChannel
from bridge.engines.process import EngineProcess
from bridge.errors import EngineError, EngineRefusedError, EngineTerminatedError, EngineTimeoutError
from bridge.games.battleship_rules import (
    CLASSIC,
    Cell,
    Rules,
    Ship,
    ShipMove,
    ShotResult,
    cell_name,
    parse_cell,
)
from bridge.transcript import Transcript

PROTOCOL_VERSION = "battleship-line-protocol 1"
REQUIRED_COMMANDS = frozenset({
    "protocol_version", "name", "version", "known_command", "list_commands", "quit",
    "new_game", "board", "fleet", "ship_moves", "place", "movable", "shot_result", "opponent_shot",
    "opponent_moved", "genmove",
})
DEFAULT_TIMEOUT = 30.0  # seconds, for every command but genmove
MAX_REASONING = 2000  # characters kept of a genmove's reasoning text
MAX_MESSAGE = 500  # characters kept of a genmove's chat message
_SHOWN = 200


@dataclass(frozen=True)
class EngineTurn:
    """An engine's decision for one turn: a ``shot`` (a cell) or one or more ship ``moves``, never both;
    ``reasoning`` and ``message`` are "" when the engine sent none."""

    shot: Cell | None = None
    moves: tuple[ShipMove, ...] = ()
    reasoning: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        if (self.shot is None) == (not self.moves):
            raise ValueError("an EngineTurn is either a shot or ship moves")

    @property
    def kind(self) -> Literal["shoot", "move"]:
        return "shoot" if self.shot is not None else "move"

    def __str__(self) -> str:
        return cell_name(self.shot) if self.shot is not None else ", ".join(str(m) for m in self.moves)


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def parse_turn(text: str, rules: Rules, movable: Iterable[str] | None = None) -> EngineTurn:
    """Check and parse a ``genmove`` answer (the reply text, lines joined by newlines).

    ``movable``: the ships the engine was told may move this turn (None: any unhit ship, as far as the driver
    knows).  Raises ValueError saying what is wrong.  Over-long ``reasoning``/``message`` texts are cut to
    :data:`MAX_REASONING` / :data:`MAX_MESSAGE` characters rather than refused.
    """
    actions: list[str] = []
    extras: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("reasoning", "message"):
            k = key.strip().lower()
            if k in extras:
                raise ValueError(f"the {k}: line appears twice")
            extras[k] = " ".join(value.split())
            continue
        if extras:
            raise ValueError(f"{_shown(line)} comes after the reasoning/message lines; the shot or the moves "
                             f"come first")
        actions.append(line)
    if not actions:
        raise ValueError("it holds no shot and no ship move")
    reasoning = extras.get("reasoning", "")[:MAX_REASONING]
    message = extras.get("message", "")[:MAX_MESSAGE]
    first = actions[0].split()
    if len(actions) == 1 and len(first) == 1:
        try:
            cell = parse_cell(first[0], rules.rows, rules.cols)
        except ValueError as exc:
            raise ValueError(f"the shot {_shown(first[0])} is not valid: {exc}") from None
        return EngineTurn(shot=cell, reasoning=reasoning, message=message)
    if not rules.moves_enabled:
        raise ValueError(f"{_shown(actions[0])} is not a shot (e.g. A5), and ship moves are not enabled "
                         f"in this game")
    allowed = None if movable is None else {rules.spec(n).name for n in movable}
    moves: list[ShipMove] = []
    for line in actions:
        try:
            mv = ShipMove.parse(line, rules)
        except ValueError as exc:
            raise ValueError(f"{_shown(line)}: {exc} (a shot is one cell on its own line)") from None
        if any(m.ship == mv.ship for m in moves):
            raise ValueError(f"ship {mv.ship} moves twice (each ship moves at most once a turn)")
        if allowed is not None and mv.ship not in allowed:
            may = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"ship {mv.ship} may not move this turn (movable: {may})")
        moves.append(mv)
    return EngineTurn(moves=tuple(moves), reasoning=reasoning, message=message)


class LineEngine:
    """A running Battleship line-protocol engine. Build it with :meth:`LineEngine.start`."""

    def __init__(self, channel: GtpStyleChannel, *, quit_grace: float = 2.0) -> None:
        self._channel = channel
        self.process = channel.process
        self.name = channel.name
        self.quit_grace = quit_grace
        self.log = logging.getLogger(f"bridge.engine.{self.name}")
        self.engine_name = ""
        self.engine_version = ""
        self.protocol_version = ""
        self.commands: frozenset[str] = REQUIRED_COMMANDS
        self.rules: Rules = CLASSIC  # the settings the engine was last told
        self._movable: frozenset[str] | None = None  # what it was told may move this turn

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
    ) -> LineEngine:
        """Spawn the engine and handshake (protocol_version, name, version, list_commands) within
        ``startup_timeout`` seconds. On failure the process is stopped and EngineError says why."""
        process = EngineProcess(
            command, name=name, cwd=cwd, env=env, transcript=transcript, on_stderr=on_stderr
        )
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
        def ask(cmd: str) -> str:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineTimeoutError(
                    f"the handshake took longer than startup_timeout={startup_timeout:g} s")
            reply = self._channel.request(cmd, remaining)
            if not reply.ok:
                raise EngineError(f"it refused {cmd!r} ({reply.text!r}), which every engine must answer")
            return reply.text

        self.protocol_version = ask("protocol_version").strip()
        if self.protocol_version != PROTOCOL_VERSION:
            hint = " (that is a GTP engine: Go, not Battleship)" if self.protocol_version == "2" else ""
            raise EngineError(f"it speaks protocol {self.protocol_version!r}{hint}; this bridge speaks "
                              f"{PROTOCOL_VERSION!r}")
        self.engine_name = ask("name").strip()
        self.engine_version = ask("version").strip()
        self.commands = frozenset(c.strip() for c in ask("list_commands").splitlines() if c.strip())
        missing = REQUIRED_COMMANDS - self.commands
        if missing:
            raise EngineError(f"its list_commands lacks the required command(s) {' '.join(sorted(missing))}")
        self.log.info("engine %s is %s %s (%s, %d commands)", self.name, self.engine_name,
                      self.engine_version, self.protocol_version, len(self.commands))

    def _handshake_error(self, exc: EngineError) -> EngineError:
        tail = self.process.stderr_tail(10)
        stderr = ("; its last stderr lines: " + " | ".join(tail)) if tail else ""
        if "last stderr lines" in str(exc):
            stderr = ""
        msg = (f"engine {self.name} failed its Battleship line-protocol start-up handshake: {exc}{stderr}. "
               f"Check engine.command: it must start a {PROTOCOL_VERSION} engine "
               f"(see docs/battleship-protocol.md)")
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
            raise EngineError(f"engine {self.name}: {name!r} is not a command name")
        if name != "quit" and name not in self.commands:
            raise EngineError(f"engine {self.name} ({self.engine_name or 'unnamed'}) does not support "
                              f"{name!r} (not in its list_commands); the bridge does not send it")
        line = " ".join((name, *(str(a) for a in args)))
        reply = self._channel.request(line, DEFAULT_TIMEOUT if timeout is None else timeout)
        if not reply.ok:
            raise EngineRefusedError(line, reply.text)
        return reply.text

    def new_game(self, rules: Rules = CLASSIC) -> None:
        """Start a new game with ``rules``: ``new_game``, ``board``, ``fleet``, ``ship_moves``."""
        self.command("new_game")
        self.rules = CLASSIC
        self._movable = None
        self.command("board", str(rules.rows), str(rules.cols))
        self.command("fleet", *(f"{s.name}:{s.length}" for s in rules.fleet))
        self.command("ship_moves", "on" if rules.moves_enabled else "off")
        self.rules = rules

    def place(self, ship: Ship) -> None:
        """Tell the engine where one of its ships lies (at the start, and after any move of it)."""
        spec = self.rules.spec(ship.name)
        self.command("place", spec.name, cell_name(ship.bow), "v" if ship.vertical else "h")

    def place_fleet(self, ships: Iterable[Ship]) -> None:
        for ship in ships:
            self.place(ship)

    def movable(self, names: Iterable[str]) -> None:
        """Tell the engine which of its ships may move this turn (send before :meth:`genmove`)."""
        canon = [self.rules.spec(n).name for n in names]
        self.command("movable", *canon)
        self._movable = frozenset(canon)

    def shot_result(self, cell: Cell, result: ShotResult) -> None:
        """The result of the engine's own shot at ``cell``."""
        self.command("shot_result", cell_name(cell), str(result))

    def opponent_shot(self, cell: Cell, result: ShotResult) -> None:
        """The opponent shot ``cell`` of the engine's board, with ``result``."""
        self.command("opponent_shot", cell_name(cell), str(result))

    def opponent_moved(self) -> None:
        """The opponent moved ships instead of shooting."""
        self.command("opponent_moved")

    def genmove(self, timeout: float) -> EngineTurn:
        """Ask for this turn's shot or ship moves; ``timeout`` is the turn's budget plus a margin.

        Raises EngineError (the channel stays usable) if the answer is not a valid turn for the game it was
        told: a cell off the board, an unknown ship, moves when they are disabled or by a ship not movable...
        Whether the moves fit the fleet's positions is the rules' business (the player checks them).
        """
        movable, self._movable = self._movable, None
        text = self.command("genmove", timeout=timeout)
        try:
            return parse_turn(text, self.rules, movable)
        except ValueError as exc:
            raise EngineError(f"engine {self.name} answered genmove with {_shown(text)}: {exc}. See "
                              f"docs/battleship-protocol.md for the answer's format") from None

    def showboard(self) -> str:
        """The engine's own drawing of the game (an optional command; EngineError if it does not list it)."""
        return self.command("showboard")

    def close(self) -> None:
        """quit -> grace -> SIGTERM -> SIGKILL. Never raises; idempotent."""
        self._channel.close(quit_line="quit", grace=self.quit_grace)

    def __enter__(self) -> LineEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
