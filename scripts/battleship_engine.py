#!/usr/bin/env python3
"""The reference Battleship engine: speaks battleship-line-protocol 1 (docs/battleship-protocol.md) on
stdin/stdout.

Usage: ``python scripts/battleship_engine.py [--seed N] [--greet TEXT] [--no-evasion]``

Targeting is a probability density over the placements of the opponent's unsunk ships. Each unsunk ship has a
belief (a weight per placement, normalised): a miss zeroes the placements covering the cell; when the opponent
moves ships instead of shooting, every belief is spread over the placements one move away (search for a moving
target: a ship next to one of our open hits is assumed likely to flee, any other to move now and then), so old
misses fade instead of ruling cells out forever. Hits and sunk ships are permanent facts (a hit ship never
moves): placements are weighted by ``hit_boost ** (open hits they cover)``, which makes the target mode emerge
from the same density, and placements over cells of sunk ships are excluded. While hunting, shots go to the
likeliest cells of one checkerboard colour (parity) as long as the smallest unsunk ship has 2 cells or more.

Ship moves (when the game has them): the same density, computed from the opponent's shots at us as a
static-minded shooter would read them, gives each of our ships a share of the opponent's probable next shots.
When single moves of our unhit ships cut those shares enough (``move_step``/``move_gain``), the engine moves
them instead of shooting: away from an opponent that is targeting a hit ship next to them (evasion), or onto
water the opponent has already searched (hiding) -- unless it needs at most ``endgame_cells`` more hits to
win.

The strategy (:class:`Player`) can be used in-process (``scripts/bench_battleship.py`` does); the protocol
layer (:class:`Engine`) only parses commands and formats replies.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

if importlib.util.find_spec("bridge") is None:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.games.battleship_rules import (
    CLASSIC,
    Board,
    Cell,
    Rules,
    RulesError,
    Ship,
    ShipMove,
    ShipSpec,
    ShotResult,
    all_placements,
    cell_name,
    parse_cell,
)

PROTOCOL_VERSION = "battleship-line-protocol 1"
ENGINE_NAME = "bridge-reference-battleship"
ENGINE_VERSION = "1.0"


@dataclass(frozen=True)
class Tuning:
    """The strategy's constants (measured with scripts/bench_battleship.py)."""

    hit_boost: float = 60.0  # weight factor per open hit a placement covers
    move_prob: float = 0.5  # chance that a given unhit ship moved when the opponent made a move turn ...
    move_prob_danger: float = 0.9  # ... or, if it lay next to one of our open hits, this chance,
    safe_bias: float = 0.2  # and its moves that stay next to the hit weigh this much against those that leave
    move_step: float = 0.01  # a ship joins a move action if its share of the opponent's next shots drops this
    move_gain: float = 0.03  # much; the action is made if the shares drop by this much in all
    endgame_cells: int = 2  # no evasion when we need at most this many more hits to win
    parity: bool = True  # hunt on one colour of the checkerboard while the smallest unsunk ship has 2+ cells


@dataclass(frozen=True)
class Turn:
    """A decision: a shot or ship moves, with a short reasoning text and an optional chat message."""

    shot: Cell | None = None
    moves: tuple[ShipMove, ...] = ()
    reasoning: str = ""
    message: str = ""


class Layouts:
    """Every placement of a ship of one length on one board size, as cell-index tuples and bit masks."""

    _cache: dict[tuple[int, int, int], Layouts] = {}

    def __init__(self, rows: int, cols: int, length: int) -> None:
        ships = all_placements(rows, cols, "S", length)
        self.length = length
        self.ships = ships
        self.cells: list[tuple[int, ...]] = [tuple(r * cols + c for r, c in s.cells) for s in ships]
        self.masks: list[int] = [sum(1 << i for i in cs) for cs in self.cells]
        self.by_cell: list[list[int]] = [[] for _ in range(rows * cols)]
        for p, cs in enumerate(self.cells):
            for i in cs:
                self.by_cell[i].append(p)
        index = {(s.bow, s.vertical): p for p, s in enumerate(ships)}
        self.neighbours: list[tuple[int, ...]] = []
        for s in ships:
            moved = [s.translated(d) for d in ("up", "down", "left", "right")]
            if length > 1:
                moved.append(s.rotated())
            keys = [(m.bow, m.vertical) for m in moved]
            self.neighbours.append(tuple(index[k] for k in keys if k in index))

    @classmethod
    def get(cls, rows: int, cols: int, length: int) -> Layouts:
        key = (rows, cols, length)
        if key not in cls._cache:
            cls._cache[key] = cls(rows, cols, length)
        return cls._cache[key]


class Targeting:
    """What we know of one fleet from the shots at it: beliefs per unsunk ship, hits, sunk ships."""

    def __init__(self, rules: Rules, tuning: Tuning | None = None) -> None:
        self.rules = rules
        self.tuning = tuning = tuning or Tuning()
        self.ncells = rules.rows * rules.cols
        self.boost = [tuning.hit_boost**k for k in range(max(s.length for s in rules.fleet) + 1)]
        self.lengths = {s.name: s.length for s in rules.fleet}
        self.layouts = {s.name: Layouts.get(rules.rows, rules.cols, s.length) for s in rules.fleet}
        self.belief: dict[str, list[float]] = {}
        for s in rules.fleet:
            n = len(self.layouts[s.name].masks)
            self.belief[s.name] = [1.0 / n] * n
        self.hits = 0  # bit mask of every hit cell
        self.sunk_events: list[tuple[str, int]] = []  # (ship, cell index of the sinking shot)
        self.sunk_mask = 0  # cells that surely belong to sunk ships
        self.moves_seen = 0

    # --- evidence -------------------------------------------------------------------------------------
    @property
    def unsunk(self) -> list[str]:
        return list(self.belief)

    @property
    def open_hits(self) -> int:
        return self.hits & ~self.sunk_mask

    def record(self, cell: Cell, result: ShotResult) -> None:
        i = cell[0] * self.rules.cols + cell[1]
        bit = 1 << i
        if result.kind == "miss":
            for name, w in self.belief.items():
                for p in self.layouts[name].by_cell[i]:
                    w[p] = 0.0
                self._normalise(name)
            return
        self.hits |= bit
        if result.kind == "sunk" and result.ship is not None:
            name = self.rules.spec(result.ship).name
            if name not in self.belief:
                return  # told twice: keep the first report
            self.sunk_events.append((name, i))
            del self.belief[name]
            self._resolve_sunk()

    def _around(self, mask: int) -> int:
        """The cells next to (not diagonally) the cells of ``mask``, minus those."""
        rows, cols = self.rules.rows, self.rules.cols
        out = 0
        i = 0
        m = mask
        while m:
            if m & 1:
                r, c = divmod(i, cols)
                if r > 0:
                    out |= 1 << (i - cols)
                if r < rows - 1:
                    out |= 1 << (i + cols)
                if c > 0:
                    out |= 1 << (i - 1)
                if c < cols - 1:
                    out |= 1 << (i + 1)
            m >>= 1
            i += 1
        return out & ~mask

    def opponent_moved(self) -> None:
        """The opponent moved ships instead of shooting: spread each unsunk ship's belief over its moves.

        A ship next to one of our open hits (about to be found) is assumed to move with probability
        ``move_prob_danger``, preferring positions out of that danger; any other unhit ship with
        ``move_prob``."""
        t = self.tuning
        self.moves_seen += 1
        fixed = self.hits | self.sunk_mask  # a ship covering a hit cannot move; none can move onto one
        danger = self._around(self.open_hits)
        for name, w in self.belief.items():
            lay = self.layouts[name]
            new = [0.0] * len(w)
            for p, wp in enumerate(w):
                if wp == 0.0:
                    continue
                mask = lay.masks[p]
                if mask & fixed:
                    new[p] += wp
                    continue
                nb = [q for q in lay.neighbours[p] if not lay.masks[q] & fixed]
                if not nb:
                    new[p] += wp
                    continue
                if mask & danger:
                    m = t.move_prob_danger
                    pref = [1.0 if not lay.masks[q] & danger else t.safe_bias for q in nb]
                else:
                    m = t.move_prob
                    pref = [1.0] * len(nb)
                new[p] += wp * (1.0 - m)
                scale = wp * m / sum(pref)
                for q, f in zip(nb, pref, strict=True):
                    new[q] += scale * f
            self.belief[name] = new
            self._normalise(name)

    def _normalise(self, name: str) -> None:
        w = self.belief[name]
        total = sum(w)
        if total > 0.0:
            inv = 1.0 / total
            for p in range(len(w)):
                if w[p]:
                    w[p] *= inv
            return
        # the evidence contradicts every placement (the opponent broke our model): start afresh for this ship,
        # keeping only what is permanent
        lay = self.layouts[name]
        ok = [0.0 if lay.masks[p] & self.sunk_mask else 1.0 for p in range(len(w))]
        total = sum(ok) or 1.0
        self.belief[name] = [x / total for x in ok]

    def _resolve_sunk(self) -> None:
        """Which hit cells surely belong to sunk ships: those common to every consistent assignment."""
        candidates: list[list[int]] = []
        for name, i in self.sunk_events:
            lay = self.layouts[name]
            candidates.append([lay.masks[p] for p in lay.by_cell[i] if lay.masks[p] & ~self.hits == 0])
        common: int | None = None
        budget = [20000]

        def search(k: int, used: int) -> None:
            nonlocal common
            if budget[0] <= 0:
                return
            budget[0] -= 1
            if k == len(candidates):
                common = used if common is None else common & used
                return
            for mask in candidates[k]:
                if not mask & used:
                    search(k + 1, used | mask)

        search(0, 0)
        if common is None:  # inconsistent reports: keep at least the sinking shots
            common = 0
            for _, i in self.sunk_events:
                common |= 1 << i
        self.sunk_mask = common

    # --- decision -------------------------------------------------------------------------------------
    def density(self) -> list[float]:
        """Per cell: the expected number of unsunk ships there, hits weighted by ``hit_boost``
        (not normalised)."""
        dens = [0.0] * self.ncells
        blocked = self.sunk_mask
        open_hits = self.open_hits
        boost = self.boost
        for name, w in self.belief.items():
            lay = self.layouts[name]
            length = lay.length
            masks, cells = lay.masks, lay.cells
            for p, wp in enumerate(w):
                if wp == 0.0:
                    continue
                mask = masks[p]
                if mask & blocked:
                    continue
                k = (mask & open_hits).bit_count() if open_hits else 0
                if k == length:
                    continue  # all its cells hit, yet not reported sunk: impossible
                x = wp * boost[k]
                for c in cells[p]:
                    dens[c] += x
        return dens

    def remaining_cells(self) -> int:
        """Cells of unsunk ships not hit yet."""
        return sum(self.lengths[n] for n in self.belief) - self.open_hits.bit_count()

    def choose(self, rng: random.Random) -> tuple[Cell, str]:
        """The next shot and a sentence saying why."""
        dens = self.density()
        cols = self.rules.cols
        shootable = [i for i in range(self.ncells) if not (self.hits >> i) & 1]
        open_hits = self.open_hits
        hunting = open_hits == 0
        pool = shootable
        min_len = min((self.lengths[n] for n in self.belief), default=1)
        if hunting and min_len >= 2 and self.tuning.parity:
            parity = [[i for i in shootable if (i // cols + i % cols) % 2 == b] for b in (0, 1)]
            best = [max((dens[i] for i in cls), default=0.0) for cls in parity]
            pool = parity[0] if best[0] >= best[1] else parity[1]
        top = max((dens[i] for i in pool), default=0.0)
        if top <= 0.0:  # nothing left that the model believes in: any unhit cell
            pool = shootable or list(range(self.ncells))
            top = max((dens[i] for i in pool), default=0.0)
        best_cells = [i for i in pool if dens[i] >= top * (1 - 1e-9)]
        i = rng.choice(best_cells)
        cell = (i // cols, i % cols)
        if hunting:
            why = (f"Hunting: {cell_name(cell)} is among the likeliest cells ({min(dens[i], 1.0):.0%} "
                   f"estimated hit chance) with {len(self.belief)} ship(s) afloat")
        else:
            n = open_hits.bit_count()
            why = (f"Targeting: {n} hit{'s' if n > 1 else ''} on ship(s) not yet sunk; {cell_name(cell)} "
                   f"is the likeliest continuation")
        if self.moves_seen:
            why += f"; I allow for the {self.moves_seen} ship move turn(s) the opponent made"
        return cell, why + "."


@dataclass
class OwnWaters:
    """Our fleet, the opponent's shots at it, and the opponent's likely view of it (for evasion)."""

    rules: Rules
    ships: dict[str, Ship] = field(default_factory=dict)
    hit_cells: set[Cell] = field(default_factory=set)
    shots: list[tuple[Cell, ShotResult]] = field(default_factory=list)


class Player:
    """The strategy, independent of the protocol: tell it the game, ask :meth:`genmove`."""

    def __init__(
        self, seed: int | None = None, *, greet: str = "", evasion: bool = True, tuning: Tuning | None = None
    ) -> None:
        self.tuning = tuning or Tuning()
        self.rng = random.Random(seed)
        self.greet = greet
        self.evasion = evasion
        self.rules = CLASSIC
        self.targeting = Targeting(CLASSIC, self.tuning)
        self.threat = Targeting(CLASSIC, self.tuning)  # the opponent's view of our fleet (static-minded)
        self.own = OwnWaters(CLASSIC)
        self.movable: set[str] | None = None  # what the controller said may move this turn (None: not said)
        self.turns = 0

    def set_moves_enabled(self, enabled: bool) -> None:
        """Switch ship moves on or off without forgetting the game."""
        rules = replace(self.rules, moves_enabled=enabled)
        self.rules = self.targeting.rules = self.threat.rules = self.own.rules = rules

    def new_game(self, rules: Rules) -> None:
        self.rules = rules
        self.targeting = Targeting(rules, self.tuning)
        self.threat = Targeting(rules, self.tuning)
        self.own = OwnWaters(rules)
        self.movable = None
        self.turns = 0

    # --- what the controller tells us -----------------------------------------------------------------
    def place(self, ship: Ship) -> None:
        spec = self.rules.spec(ship.name)
        if ship.length != spec.length:
            raise RulesError(f"ship {spec.name} has length {spec.length}, not {ship.length}")
        if not all(self.rules.on_board(c) for c in ship.cells):
            raise RulesError(f"ship {spec.name} at {cell_name(ship.bow)} leaves the board")
        self.own.ships[spec.name] = Ship(spec.name, spec.length, ship.bow, ship.vertical)

    def shot_result(self, cell: Cell, result: ShotResult) -> None:
        self.targeting.record(cell, result)

    def opponent_shot(self, cell: Cell, result: ShotResult) -> None:
        self.own.shots.append((cell, result))
        if result.hit:
            self.own.hit_cells.add(cell)
        self.threat.record(cell, result)

    def opponent_moved(self) -> None:
        self.targeting.opponent_moved()

    def set_movable(self, names: Iterable[str]) -> None:
        self.movable = {self.rules.spec(n).name for n in names}

    # --- deciding -------------------------------------------------------------------------------------
    def check_ready(self) -> None:
        missing = [s.name for s in self.rules.fleet if s.name not in self.own.ships]
        if missing:
            raise RulesError(f"my ships are not placed: {', '.join(missing)} (send place first)")
        Board(self.rules, self.own.ships.values())  # raises on overlaps

    def genmove(self) -> Turn:
        self.check_ready()
        self.turns += 1
        message = self.greet if self.turns == 1 else ""
        movable, self.movable = self.movable, None
        if self.rules.moves_enabled and self.evasion:
            evade = self._evasion(movable)
            if evade is not None:
                moves, why, ships = evade
                self.own.ships = ships  # the controller confirms (or corrects) with place
                return Turn(moves=tuple(moves), reasoning=why, message=message)
        cell, why = self.targeting.choose(self.rng)
        return Turn(shot=cell, reasoning=why, message=message)

    def _evasion(self, movable: set[str] | None) -> tuple[list[ShipMove], str, dict[str, Ship]] | None:
        """Ship moves worth more than a shot now (with why, and where the ships end up), or None.

        The opponent's view of our fleet (its shots, read as a static-minded shooter reads them) gives each of
        our ships a share of the opponent's probable next shots.  Each movable ship, riskiest first, takes the
        single move that cuts its share most, if by ``move_step`` at least; the moves are made (instead of a
        shot) if they cut the shares by ``move_gain`` in all.  That evades a targeting opponent (an unhit ship
        next to its open hit) and hides ships on water it has already searched.
        """
        t = self.tuning
        if self.targeting.remaining_cells() <= t.endgame_cells:
            return None  # we are about to win: shoot
        board = Board(self.rules, self.own.ships.values())
        board.hits = set(self.own.hit_cells)
        candidates = [n for n in board.movable() if movable is None or n in movable]
        if not candidates:
            return None
        dens = self.threat.density()
        cols = self.rules.cols
        shot = self.own.hit_cells
        total = sum(d for i, d in enumerate(dens) if (i // cols, i % cols) not in shot) or 1.0

        def share(ship: Ship) -> float:
            return sum(dens[r * cols + c] for r, c in ship.cells) / total

        plan: list[ShipMove] = []
        notes: list[str] = []
        gain = 0.0
        for risk, name in sorted(((share(board.ships[n]), n) for n in candidates), reverse=True):
            options = [(share(board.after_moves([mv])[name]), self.rng.random(), mv)
                       for mv in board.legal_moves(name)]
            if not options:
                continue
            new_risk, _, best = min(options)
            if risk - new_risk < t.move_step:
                continue
            board.apply_moves([best])
            plan.append(best)
            gain += risk - new_risk
            notes.append(f"{name} {risk:.0%} -> {new_risk:.0%}")
        if not plan or gain < t.move_gain:
            return None
        if self.threat.open_hits:
            why = "Evading: the opponent is closing in on my unhit ship(s)"
        else:
            why = "Hiding: moving ship(s) to water the opponent has already searched"
        return plan, f"{why}; their share of its likely next shots: {', '.join(notes)}.", dict(board.ships)


# --- the protocol layer ------------------------------------------------------------------------------
COMMANDS = (
    "protocol_version", "name", "version", "known_command", "list_commands", "quit",
    "new_game", "board", "fleet", "ship_moves", "place", "movable", "shot_result", "opponent_shot",
    "opponent_moved", "genmove", "showboard",
)
GAME_COMMANDS = frozenset({
    "place", "movable", "shot_result", "opponent_shot", "opponent_moved", "genmove", "showboard",
})


class CommandError(Exception):
    """A command the engine refuses (answered with '?')."""


class Engine:
    """Parses one command line at a time and returns the reply (without the final empty line)."""

    def __init__(self, player: Player) -> None:
        self.player = player
        self.quit = False
        self.rows, self.cols = CLASSIC.rows, CLASSIC.cols
        self.fleet: tuple[ShipSpec, ...] | None = CLASSIC.fleet  # None: it does not fit the board
        self.moves_enabled = False

    def handle(self, line: str) -> str | None:
        """The reply to ``line`` (``=[id] ...`` or ``?[id] ...``), or None for a blank or comment line."""
        line = line.split("#", 1)[0].strip()
        if not line:
            return None
        words = line.split()
        rid = words.pop(0) if words[0].isdigit() else ""
        if not words:
            return f"?{rid} empty command"
        try:
            text = self._dispatch(words[0], words[1:])
        except (CommandError, RulesError, ValueError) as exc:
            return f"?{rid} {exc}"
        return f"={rid} {text}" if text else f"={rid}"

    def _setup(self) -> None:
        """Start a game with the current settings (board, fleet, ship moves)."""
        if self.fleet is None:
            return
        self.player.new_game(Rules(self.rows, self.cols, self.fleet, self.moves_enabled))

    def _dispatch(self, cmd: str, args: list[str]) -> str:
        p = self.player
        if cmd not in COMMANDS:
            raise CommandError("unknown command")
        if cmd in GAME_COMMANDS and self.fleet is None:
            raise CommandError(f"the fleet does not fit the {self.rows}x{self.cols} board: send fleet first")
        if cmd == "protocol_version":
            return PROTOCOL_VERSION
        if cmd == "name":
            return ENGINE_NAME
        if cmd == "version":
            return ENGINE_VERSION
        if cmd == "list_commands":
            return "\n".join(COMMANDS)
        if cmd == "known_command":
            _nargs(cmd, args, 1, "NAME")
            return "true" if args[0] in COMMANDS else "false"
        if cmd == "quit":
            self.quit = True
            return ""
        if cmd == "new_game":
            _nargs(cmd, args, 0, "")
            self.rows, self.cols, self.fleet = CLASSIC.rows, CLASSIC.cols, CLASSIC.fleet
            self.moves_enabled = False
            self._setup()
            return ""
        if cmd == "board":
            _nargs(cmd, args, 2, "ROWS COLS")
            if not all(a.isdigit() for a in args):
                raise CommandError(f"board takes two whole numbers (board ROWS COLS), not {' '.join(args)!r}")
            rows, cols = int(args[0]), int(args[1])
            Rules(rows, cols, (ShipSpec("S", 1),))  # raises for a bad size
            self.rows, self.cols = rows, cols
            if self.fleet is not None and not _fits(self.fleet, rows, cols):
                self.fleet = None  # wait for the fleet command
            self._setup()
            return ""
        if cmd == "fleet":
            if not args:
                raise CommandError("fleet needs at least one NAME:LENGTH (e.g. fleet Carrier:5 Destroyer:2)")
            specs = []
            for a in args:
                name, sep, length = a.partition(":")
                if not sep or not length.isdigit():
                    raise CommandError(f"fleet: {a!r} is not NAME:LENGTH (e.g. Carrier:5)")
                specs.append(ShipSpec(name, int(length)))
            Rules(self.rows, self.cols, tuple(specs))  # raises if it does not fit
            self.fleet = tuple(specs)
            self._setup()
            return ""
        if cmd == "ship_moves":
            _nargs(cmd, args, 1, "on|off")
            if args[0].lower() not in ("on", "off"):
                raise CommandError(f"ship_moves takes on or off, not {args[0]!r}")
            self.moves_enabled = args[0].lower() == "on"
            p.set_moves_enabled(self.moves_enabled)
            return ""
        if cmd == "place":
            _nargs(cmd, args, 3, "SHIP CELL h|v")
            spec = p.rules.spec(args[0])
            bow = parse_cell(args[1], p.rules.rows, p.rules.cols)
            if args[2].lower() not in ("h", "v"):
                raise CommandError(f"place: the orientation is h or v, not {args[2]!r}")
            p.place(Ship(spec.name, spec.length, bow, args[2].lower() == "v"))
            return ""
        if cmd == "movable":
            p.set_movable(args)
            return ""
        if cmd in ("shot_result", "opponent_shot"):
            if len(args) < 2:
                raise CommandError(f"{cmd} takes CELL miss|hit|sunk SHIP")
            cell = parse_cell(args[0], p.rules.rows, p.rules.cols)
            result = ShotResult.parse(args[1:], p.rules)
            if cmd == "shot_result":
                p.shot_result(cell, result)
            else:
                p.opponent_shot(cell, result)
            return ""
        if cmd == "opponent_moved":
            _nargs(cmd, args, 0, "")
            p.opponent_moved()
            return ""
        if cmd == "genmove":
            _nargs(cmd, args, 0, "")
            return format_turn(p.genmove())
        # showboard
        lines = [f"my fleet ({len(p.own.ships)} of {len(p.rules.fleet)} ships placed):"]
        if len(p.own.ships) == len(p.rules.fleet):
            board = Board(p.rules, p.own.ships.values())
            board.hits = set(p.own.hit_cells)
            board.misses = {c for c, r in p.own.shots if not r.hit}
            lines += board.ascii().split("\n")
        return "\n".join(lines)


def _fits(fleet: Sequence[ShipSpec], rows: int, cols: int) -> bool:
    try:
        Rules(rows, cols, tuple(fleet))
    except RulesError:
        return False
    return True


def _nargs(cmd: str, args: list[str], n: int, usage: str) -> None:
    if len(args) != n:
        raise CommandError(f"{cmd} takes {n} argument(s): {cmd} {usage}" if n
                           else f"{cmd} takes no arguments")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def format_turn(turn: Turn) -> str:
    """A genmove answer: the shot or the moves, one a line, then ``reasoning:`` and ``message:`` lines."""
    lines = [cell_name(turn.shot)] if turn.shot is not None else [str(m) for m in turn.moves]
    if turn.reasoning.strip():
        lines.append("reasoning: " + _one_line(turn.reasoning))
    if turn.message.strip():
        lines.append("message: " + _one_line(turn.message))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, default=None, help="seed of the random tie-breaks (default: random)")
    ap.add_argument("--greet", default="", help="chat message sent with the first move of each game")
    ap.add_argument("--no-evasion", action="store_true", help="never move ships, always shoot")
    opts = ap.parse_args(argv)
    engine = Engine(Player(opts.seed, greet=opts.greet, evasion=not opts.no_evasion))
    for raw in sys.stdin:
        reply = engine.handle(raw)
        if reply is None:
            continue
        sys.stdout.write(reply + "\n\n")
        sys.stdout.flush()
        if engine.quit:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
