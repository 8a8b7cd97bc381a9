"""Battleship rules: board, fleet, placement, shots, ship moves, game over.

Pure: no I/O, no engine, no server.

Shared by the reference engine (``scripts/battleship_engine.py``), the line-protocol driver
(:mod:`bridge.engines.line`), the future Open Games sandbox and the Battleship player.  The rules are those of
Open Games (the seed of ``/work/shared/seeds/002_*``) with the gaps filled as ``docs/battleship-protocol.md``
("Rules") writes them down:

- **Coordinates.** A :data:`Cell` is ``(row, col)``, 0-based, row 0 at the top, col 0 at the left -- the same
  ``[row, col]`` pairs as Open Games' ``positions``.  Its name is the row letter then the 1-based column, as
  Open Games' ``board_ascii`` labels them: ``(0, 4)`` is ``"A5"`` (row A, column 5), ``(9, 9)`` is ``"J10"``.
  :func:`cell_name` and :func:`parse_cell` are the only conversion between the two.
- **Ships** lie in a straight line of adjacent cells.  The *bow* is the ship's first cell in reading order
  (its top cell if vertical, its left cell if horizontal).
- **Shots.** One shot a turn, hit or miss (a hit gives no extra turn).  A missed cell may be shot again (a
  ship may have moved there since); a hit cell may not (a hit ship never moves, so nothing changes there).
  A ship is sunk when all its cells are hit; the game is over when a whole fleet is sunk.
- **Ship moves** (when the game enables them), instead of a shot: one or more ships, each at most once per
  turn, each ``translate`` one cell (``up`` = towards row A, ``down``, ``left`` = towards column 1, ``right``)
  or ``rotate``: the ship turns about its bow (a horizontal ship at bow ``(r, c)`` becomes vertical at the
  same bow, and back; rotating twice restores it).  Only a ship without any hit may move; it must stay on the
  board and not overlap another ship; moves are applied in the order given, each checked against the fleet as
  the previous ones left it, and one invalid move rejects the whole action.  A ship may move onto cells the
  opponent already missed.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Cell = tuple[int, int]  # (row, col), 0-based, row 0 = "A" at the top, col 0 = "1" at the left
ROW_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_SIDE = 26  # rows are letters A-Z; columns are kept to the same bound
SHIP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_CELL = re.compile(r"([A-Za-z])(\d{1,2})")

ShotKind = Literal["miss", "hit", "sunk"]
MoveAction = Literal["translate", "rotate"]
Direction = Literal["up", "down", "left", "right"]
DIRECTIONS: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


class RulesError(ValueError):
    """An action or a setup the rules forbid; the message says what and why."""


# --- coordinates: the one place where "A5" and (row, col) meet --------------------------------------
def cell_name(cell: Cell) -> str:
    """``(0, 4)`` -> ``"A5"``: row letter (A = row 0, the top), then the 1-based column."""
    row, col = cell
    if not (0 <= row < MAX_SIDE and 0 <= col < MAX_SIDE):
        raise ValueError(f"cell {cell!r} is outside any board (rows and columns go from 0 to {MAX_SIDE - 1})")
    return f"{ROW_LETTERS[row]}{col + 1}"


def parse_cell(text: str, rows: int = 10, cols: int = 10) -> Cell:
    """``"A5"`` (or ``"a5"``) -> ``(0, 4)`` on a ``rows`` x ``cols`` board.

    Raises ValueError for anything else."""
    m = _CELL.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a cell (expected a row letter and a column number, "
                         f"e.g. A5 or J10)")
    row = ROW_LETTERS.index(m.group(1).upper())
    col = int(m.group(2)) - 1
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"cell {text.strip()!r} is off the {rows}x{cols} board "
                         f"(rows A-{ROW_LETTERS[rows - 1]}, columns 1-{cols})")
    return (row, col)


# --- setup -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShipSpec:
    """A kind of ship in the fleet: its name (unique in the fleet) and its length in cells."""

    name: str
    length: int


CLASSIC_FLEET: tuple[ShipSpec, ...] = (
    ShipSpec("Carrier", 5), ShipSpec("Battleship", 4), ShipSpec("Cruiser", 3), ShipSpec("Submarine", 3),
    ShipSpec("Destroyer", 2),
)


@dataclass(frozen=True)
class Rules:
    """One game's settings. ``Rules()`` is the classic game: 10x10, :data:`CLASSIC_FLEET`, no ship moves."""

    rows: int = 10
    cols: int = 10
    fleet: tuple[ShipSpec, ...] = CLASSIC_FLEET
    moves_enabled: bool = False

    def __post_init__(self) -> None:
        for what, n in (("rows", self.rows), ("cols", self.cols)):
            if not (isinstance(n, int) and 1 <= n <= MAX_SIDE):
                raise RulesError(f"the board needs 1 to {MAX_SIDE} {what}, not {n!r}")
        if not self.fleet:
            raise RulesError("the fleet is empty; give at least one ship")
        seen: set[str] = set()
        for spec in self.fleet:
            if not SHIP_NAME.fullmatch(spec.name):
                raise RulesError(f"ship name {spec.name!r} is not allowed (a letter, then up to 31 "
                                 f"letters, digits, '_' or '-')")
            if spec.name.lower() in seen:
                raise RulesError(f"the fleet names {spec.name!r} twice (names are unique, ignoring case)")
            seen.add(spec.name.lower())
            if not (isinstance(spec.length, int) and 1 <= spec.length <= max(self.rows, self.cols)):
                raise RulesError(f"ship {spec.name} has length {spec.length!r}, which does not fit a "
                                 f"{self.rows}x{self.cols} board")
        if sum(s.length for s in self.fleet) > self.rows * self.cols // 2:
            raise RulesError(f"the fleet ({sum(s.length for s in self.fleet)} cells) needs at most half "
                             f"of the {self.rows * self.cols} cells of the board")

    def spec(self, name: str) -> ShipSpec:
        """The fleet's ship called ``name`` (exact spelling first, then ignoring case). Raises RulesError."""
        for s in self.fleet:
            if s.name == name:
                return s
        for s in self.fleet:
            if s.name.lower() == name.lower():
                return s
        raise RulesError(f"there is no ship {name!r} in the fleet ({', '.join(s.name for s in self.fleet)})")

    def on_board(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.rows and 0 <= cell[1] < self.cols


CLASSIC = Rules()


@dataclass(frozen=True)
class Ship:
    """A ship where it lies: ``bow`` is its first cell in reading order; it extends down if ``vertical``,
    else to the right."""

    name: str
    length: int
    bow: Cell
    vertical: bool = False

    @property
    def cells(self) -> tuple[Cell, ...]:
        r, c = self.bow
        if self.vertical:
            return tuple((r + i, c) for i in range(self.length))
        return tuple((r, c + i) for i in range(self.length))

    @property
    def orientation(self) -> Literal["horizontal", "vertical"]:
        return "vertical" if self.vertical else "horizontal"

    def translated(self, direction: str) -> Ship:
        """The ship one cell towards ``direction`` (up, down, left, right); not checked against any board."""
        try:
            dr, dc = DIRECTIONS[direction]
        except KeyError:
            raise RulesError(f"direction must be up, down, left or right, not {direction!r}") from None
        return Ship(self.name, self.length, (self.bow[0] + dr, self.bow[1] + dc), self.vertical)

    def rotated(self) -> Ship:
        """The ship turned about its bow (horizontal <-> vertical; a ship of length 1 stays as it is);
        not checked against any board."""
        if self.length == 1:
            return self
        return Ship(self.name, self.length, self.bow, not self.vertical)

    @classmethod
    def from_cells(cls, name: str, cells: Iterable[Cell]) -> Ship:
        """A ship from its cells in any order (e.g. Open Games' ``positions``). Raises RulesError unless they
        form one straight line of adjacent cells."""
        cs = sorted({(int(r), int(c)) for r, c in cells})
        if not cs:
            raise RulesError(f"ship {name} has no cells")
        rows = {r for r, _ in cs}
        cols = {c for _, c in cs}
        vertical = len(cs) > 1 and len(cols) == 1
        straight = len(rows) == 1 or len(cols) == 1
        step = (1, 0) if vertical else (0, 1)
        contiguous = all((b[0] - a[0], b[1] - a[1]) == step for a, b in itertools.pairwise(cs))
        if not (straight and contiguous):
            raise RulesError(f"ship {name}: cells {[cell_name(c) for c in cs]} are not one straight line of "
                             f"adjacent cells")
        return cls(name, len(cs), cs[0], vertical)

    def __str__(self) -> str:
        return f"{self.name} {cell_name(self.bow)} {'v' if self.vertical else 'h'}"


def fits(rules: Rules, ship: Ship) -> bool:
    """True if every cell of ``ship`` is on the board."""
    return all(rules.on_board(c) for c in ship.cells)


def all_placements(rows: int, cols: int, name: str, length: int) -> list[Ship]:
    """Every position of a ship of ``length`` on an empty ``rows`` x ``cols`` board: horizontal ones first,
    each group in reading order of the bow (a ship of length 1 counts as horizontal only)."""
    out = [Ship(name, length, (r, c), False) for r in range(rows) for c in range(cols - length + 1)]
    if length > 1:
        out += [Ship(name, length, (r, c), True) for r in range(rows - length + 1) for c in range(cols)]
    return out


def random_placement(rules: Rules, rng: random.Random) -> list[Ship]:
    """A legal placement of the whole fleet, each ship uniform among the positions left free by the ships
    placed before it (longest first). Deterministic for a seeded ``rng``."""
    order = sorted(rules.fleet, key=lambda s: -s.length)
    for _ in range(1000):
        taken: set[Cell] = set()
        placed: dict[str, Ship] = {}
        for spec in order:
            free = [s for s in all_placements(rules.rows, rules.cols, spec.name, spec.length)
                    if not taken.intersection(s.cells)]
            if not free:
                break
            ship = rng.choice(free)
            placed[spec.name] = ship
            taken.update(ship.cells)
        else:
            return [placed[s.name] for s in rules.fleet]
    raise RulesError("could not place the fleet at random in 1000 tries; the board is too crowded")


# --- actions and results ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ShotResult:
    """What a shot did: ``miss``, ``hit`` or ``sunk``; ``ship`` names the ship for ``sunk`` only (a plain hit
    does not say which ship was hit)."""

    kind: ShotKind
    ship: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("miss", "hit", "sunk"):
            raise ValueError(f"a shot result is miss, hit or sunk, not {self.kind!r}")
        if (self.kind == "sunk") != (self.ship is not None):
            raise ValueError("a shot result names the ship if and only if it is 'sunk'")

    @property
    def hit(self) -> bool:
        return self.kind != "miss"

    def __str__(self) -> str:
        return f"sunk {self.ship}" if self.kind == "sunk" else self.kind

    @classmethod
    def parse(cls, words: Sequence[str], rules: Rules | None = None) -> ShotResult:
        """``["miss"]``, ``["hit"]`` or ``["sunk", "Cruiser"]`` (the ship checked against ``rules``' fleet and
        spelt as the fleet spells it). Raises ValueError."""
        w = [x.lower() for x in words]
        if w in (["miss"], ["hit"]):
            return cls(w[0])  # type: ignore[arg-type]
        if len(w) == 2 and w[0] == "sunk":
            name = words[1]
            if rules is not None:
                name = rules.spec(name).name
            elif not SHIP_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a ship name")
            return cls("sunk", name)
        raise ValueError(f"{' '.join(words)!r} is not a shot result (expected miss, hit or sunk SHIP)")


@dataclass(frozen=True)
class ShipMove:
    """One ship's move: ``translate`` one cell towards ``direction``, or ``rotate`` about its bow."""

    ship: str
    action: MoveAction
    direction: Direction | None = None

    def __post_init__(self) -> None:
        if self.action == "translate":
            if self.direction not in DIRECTIONS:
                raise ValueError(
                    f"translate needs a direction (up, down, left, right), not {self.direction!r}")
        elif self.action == "rotate":
            if self.direction is not None:
                raise ValueError("rotate takes no direction")
        else:
            raise ValueError(f"a ship move is translate or rotate, not {self.action!r}")

    def apply(self, ship: Ship) -> Ship:
        return ship.rotated() if self.action == "rotate" else ship.translated(str(self.direction))

    def __str__(self) -> str:
        if self.action == "translate":
            return f"translate {self.ship} {self.direction}"
        return f"rotate {self.ship}"

    @classmethod
    def parse(cls, text: str, rules: Rules | None = None) -> ShipMove:
        """``"translate Carrier up"`` or ``"rotate Destroyer"`` (the ship checked against ``rules``' fleet).
        Raises ValueError."""
        words = text.split()
        if len(words) == 3 and words[0].lower() == "translate" and words[2].lower() in DIRECTIONS:
            action: MoveAction = "translate"
            direction: Direction | None = words[2].lower()  # type: ignore[assignment]
        elif len(words) == 2 and words[0].lower() == "rotate":
            action, direction = "rotate", None
        else:
            raise ValueError(f"{text.strip()!r} is not a ship move (expected "
                             f"'translate SHIP up|down|left|right' or 'rotate SHIP')")
        name = words[1]
        if rules is not None:
            name = rules.spec(name).name
        elif not SHIP_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a ship name")
        return cls(name, action, direction)


# --- one player's waters ---------------------------------------------------------------------------
class Board:
    """One player's fleet and the opponent's shots on it."""

    def __init__(self, rules: Rules, ships: Iterable[Ship]) -> None:
        self.rules = rules
        self.ships: dict[str, Ship] = {}
        for ship in ships:
            spec = rules.spec(ship.name)
            if spec.name in self.ships:
                raise RulesError(f"ship {spec.name} is placed twice")
            if ship.length != spec.length:
                raise RulesError(f"ship {spec.name} has length {spec.length}, not {ship.length}")
            self.ships[spec.name] = Ship(spec.name, ship.length, ship.bow, ship.vertical)
        missing = [s.name for s in rules.fleet if s.name not in self.ships]
        if missing:
            raise RulesError(f"ship(s) {', '.join(missing)} are not placed")
        self._check_layout(self.ships)
        self.hits: set[Cell] = set()
        self.misses: set[Cell] = set()
        self.shots: list[tuple[Cell, ShotResult]] = []

    def _check_layout(self, ships: dict[str, Ship]) -> None:
        owner: dict[Cell, str] = {}
        for ship in ships.values():
            for c in ship.cells:
                if not self.rules.on_board(c):
                    raise RulesError(f"ship {ship.name} at {ship} leaves the "
                                     f"{self.rules.rows}x{self.rules.cols} board at {c}")
                if c in owner:
                    raise RulesError(f"ships {owner[c]} and {ship.name} overlap at {cell_name(c)}")
                owner[c] = ship.name

    def ship_at(self, cell: Cell) -> str | None:
        for ship in self.ships.values():
            if cell in ship.cells:
                return ship.name
        return None

    def hits_on(self, name: str) -> int:
        return sum(1 for c in self.ships[name].cells if c in self.hits)

    def is_sunk(self, name: str) -> bool:
        return self.hits_on(name) == self.ships[name].length

    @property
    def sunk(self) -> list[str]:
        return [n for n in self.ships if self.is_sunk(n)]

    @property
    def defeated(self) -> bool:
        return all(self.is_sunk(n) for n in self.ships)

    def shoot(self, cell: Cell) -> ShotResult:
        """The opponent shoots ``cell``. Raises RulesError if it is off the board or already hit."""
        if not self.rules.on_board(cell):
            raise RulesError(f"shot at {cell} is off the {self.rules.rows}x{self.rules.cols} board")
        if cell in self.hits:
            raise RulesError(f"{cell_name(cell)} was already hit; a hit cell cannot be shot again")
        name = self.ship_at(cell)
        if name is None:
            self.misses.add(cell)
            result = ShotResult("miss")
        else:
            self.hits.add(cell)
            result = ShotResult("sunk", name) if self.is_sunk(name) else ShotResult("hit")
        self.shots.append((cell, result))
        return result

    def can_move(self, name: str) -> bool:
        """True if the rules let ship ``name`` move: moves are enabled and it has no hit."""
        return self.rules.moves_enabled and name in self.ships and self.hits_on(name) == 0

    def movable(self) -> list[str]:
        return [n for n in self.ships if self.can_move(n)]

    def after_moves(self, moves: Sequence[ShipMove]) -> dict[str, Ship]:
        """The fleet as ``moves`` would leave it (nothing changes here). Raises RulesError naming the first
        invalid move; one invalid move invalidates the whole action."""
        if not self.rules.moves_enabled:
            raise RulesError("ship moves are not enabled in this game")
        if not moves:
            raise RulesError("a move action needs at least one ship move")
        ships = dict(self.ships)
        moved: set[str] = set()
        for mv in moves:
            try:
                name = self.rules.spec(mv.ship).name
            except RulesError as exc:
                raise RulesError(f"{mv}: {exc}") from None
            if name in moved:
                raise RulesError(
                    f"{mv}: ship {name} already moves in this action (each ship moves at most once)")
            if self.hits_on(name):
                raise RulesError(f"{mv}: ship {name} has been hit and cannot move")
            new = mv.apply(ships[name])
            if not fits(self.rules, new):
                raise RulesError(f"{mv}: ship {name} would leave the board")
            for other in ships.values():
                if other.name != name and set(other.cells).intersection(new.cells):
                    raise RulesError(f"{mv}: ship {name} would overlap {other.name}")
            ships[name] = new
            moved.add(name)
        return ships

    def apply_moves(self, moves: Sequence[ShipMove]) -> None:
        """Carry out ``moves`` (all or nothing). Raises RulesError if any is invalid."""
        self.ships = self.after_moves(moves)

    def legal_moves(self, name: str) -> list[ShipMove]:
        """The single moves ship ``name`` could make now (empty if it cannot move)."""
        if not self.can_move(name):
            return []
        directions: tuple[Direction, ...] = ("up", "down", "left", "right")
        candidates = [ShipMove(name, "translate", d) for d in directions]
        if self.ships[name].length > 1:
            candidates.append(ShipMove(name, "rotate"))
        legal = []
        for mv in candidates:
            try:
                self.after_moves([mv])
            except RulesError:
                continue
            legal.append(mv)
        return legal

    def ascii(self, reveal: bool = True) -> str:
        """The board as Open Games' ``board_ascii`` draws it: a header of columns, then one row per letter.
        ``#`` ship (if ``reveal``), ``X`` hit, ``o`` miss, ``.`` water."""
        lines = ["  " + " ".join(f"{c + 1:>2}" for c in range(self.rules.cols))]
        occupied = {c for s in self.ships.values() for c in s.cells} if reveal else set()
        for r in range(self.rules.rows):
            row = []
            for c in range(self.rules.cols):
                cell = (r, c)
                row.append("X" if cell in self.hits else "#" if cell in occupied else
                           "o" if cell in self.misses else ".")
            lines.append(f"{ROW_LETTERS[r]} " + " ".join(f"{x:>2}" for x in row))
        return "\n".join(lines)


# --- a whole game ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TurnRecord:
    """One turn: who played (1 or 2), and either a shot with its result or the ship moves made."""

    turn: int
    player: int
    shot: Cell | None = None
    result: ShotResult | None = None
    moves: tuple[ShipMove, ...] = ()


@dataclass
class Game:
    """Two fleets; player 1 moves first; a turn is one shot or one move action; whoever sinks the other's
    whole fleet wins."""

    rules: Rules
    boards: dict[int, Board]
    to_move: int = 1
    winner: int | None = None
    history: list[TurnRecord] = field(default_factory=list)

    @classmethod
    def new(cls, rules: Rules, fleet1: Iterable[Ship], fleet2: Iterable[Ship]) -> Game:
        return cls(rules, {1: Board(rules, fleet1), 2: Board(rules, fleet2)})

    @classmethod
    def random(cls, rules: Rules, rng: random.Random) -> Game:
        return cls.new(rules, random_placement(rules, rng), random_placement(rules, rng))

    @property
    def over(self) -> bool:
        return self.winner is not None

    @property
    def turn(self) -> int:
        """The number of the turn to play, from 1."""
        return len(self.history) + 1

    def _check_playing(self) -> None:
        if self.winner is not None:
            raise RulesError(f"the game is over (player {self.winner} won)")

    def shoot(self, cell: Cell) -> ShotResult:
        """The player to move shoots ``cell`` on the opponent's board. Raises RulesError."""
        self._check_playing()
        player, target = self.to_move, self.boards[3 - self.to_move]
        result = target.shoot(cell)
        self.history.append(TurnRecord(self.turn, player, shot=cell, result=result))
        if target.defeated:
            self.winner = player
        else:
            self.to_move = 3 - player
        return result

    def move(self, moves: Sequence[ShipMove]) -> dict[str, Ship]:
        """The player to move moves ships instead of shooting; returns the ships that moved, where they are
        now. Raises RulesError (and nothing changes) if any move is invalid."""
        self._check_playing()
        player = self.to_move
        board = self.boards[player]
        board.apply_moves(moves)
        self.history.append(TurnRecord(self.turn, player, moves=tuple(moves)))
        self.to_move = 3 - player
        return {board.rules.spec(m.ship).name: board.ships[board.rules.spec(m.ship).name] for m in moves}
