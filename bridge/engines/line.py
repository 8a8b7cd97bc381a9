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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bridge.engines.framing import GtpStyleChannel, GtpStyleEngine
from bridge.errors import EngineError
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

PROTOCOL_VERSION = "battleship-line-protocol 1"
REQUIRED_COMMANDS = frozenset({
    "protocol_version", "name", "version", "known_command", "list_commands", "quit",
    "new_game", "board", "fleet", "ship_moves", "place", "movable", "shot_result", "opponent_shot",
    "opponent_moved", "genmove",
})
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


class LineEngine(GtpStyleEngine):
    """A running Battleship line-protocol engine. Build it with :meth:`LineEngine.start`."""

    REQUIRED_COMMANDS = REQUIRED_COMMANDS
    PROTOCOL_LABEL = "Battleship line-protocol"
    START_HINT = f"it must start a {PROTOCOL_VERSION} engine; see docs/battleship-protocol.md"

    def __init__(self, channel: GtpStyleChannel, *, quit_grace: float = 2.0) -> None:
        super().__init__(channel, quit_grace=quit_grace)
        self.rules: Rules = CLASSIC  # the settings the engine was last told
        self._movable: frozenset[str] | None = None  # what it was told may move this turn

    def _handshake(self, deadline: float, startup_timeout: float) -> None:
        def ask(cmd: str) -> str:
            reply = self._ask(cmd, deadline, startup_timeout)
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
