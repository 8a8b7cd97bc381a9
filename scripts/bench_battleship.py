#!/usr/bin/env python3
"""Benchmark of the reference Battleship engine (scripts/battleship_engine.py); not run in CI.

(a) Shots to win against static fleets over N games (default 2000), played in-process for speed; the
    first ``--check`` games (default 20) are replayed through the real line protocol (the engine as a
    subprocess, driven by bridge.engines.line.LineEngine) and must shoot exactly the same cells.
(b) Win rate against a hunt/target opponent (parity hunting, ship moves enabled, evading when we hit next
    to one of its ships) over M games (default 200), through the real line protocol, with a 95 % Wilson
    interval.

Prints a Markdown table.  The machine may be shared: run it as
``nice -n 19 python scripts/bench_battleship.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("bridge") is None:  # run from a checkout without the package installed
    sys.path.insert(0, str(HERE.parent))

from bridge.engines.line import EngineTurn, LineEngine  # noqa: E402
from bridge.games.battleship_rules import (  # noqa: E402
    DIRECTIONS,
    Board,
    Cell,
    Game,
    Rules,
    RulesError,
    Ship,
    ShipMove,
    ShotResult,
    cell_name,
    random_placement,
)

ENGINE_SCRIPT = HERE / "battleship_engine.py"
TURN_CAP = 600  # a match game still running after this many turns is a draw (counted as not won)


def load_engine_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("battleship_engine", ENGINE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["battleship_engine"] = module
    spec.loader.exec_module(module)
    return module


class Side(Protocol):
    """What a game loop needs from our engine: LineEngine has it; InProcess gives the same over a Player."""

    def new_game(self, rules: Rules) -> None: ...
    def place(self, ship: Ship) -> None: ...
    def movable(self, names: Iterable[str]) -> None: ...
    def shot_result(self, cell: Cell, result: ShotResult) -> None: ...
    def opponent_shot(self, cell: Cell, result: ShotResult) -> None: ...
    def opponent_moved(self) -> None: ...
    def genmove(self, timeout: float) -> EngineTurn: ...


class InProcess:
    """The engine's strategy object behind LineEngine's helper API (no subprocess, no protocol)."""

    def __init__(self, module: ModuleType, seed: int, **kw: object) -> None:
        self.player = module.Player(seed, **kw)

    def new_game(self, rules: Rules) -> None:
        self.player.new_game(rules)

    def place(self, ship: Ship) -> None:
        self.player.place(ship)

    def movable(self, names: Iterable[str]) -> None:
        self.player.set_movable(names)

    def shot_result(self, cell: Cell, result: ShotResult) -> None:
        self.player.shot_result(cell, result)

    def opponent_shot(self, cell: Cell, result: ShotResult) -> None:
        self.player.opponent_shot(cell, result)

    def opponent_moved(self) -> None:
        self.player.opponent_moved()

    def genmove(self, timeout: float) -> EngineTurn:
        t = self.player.genmove()
        return EngineTurn(shot=t.shot, moves=t.moves, reasoning=t.reasoning, message=t.message)


# --- the opponent of part (b) --------------------------------------------------------------------------
class HuntTarget:
    """The hunt/target opponent. Hunt: a random never-shot cell of the checkerboard (parity), then any
    never-shot cell, then (ships may have moved there) any missed cell.  Target, ``smart=False`` (the
    classic one, about 61 shots to win here, engines.md's reference): every hit pushes its never-shot
    neighbours on a stack, popped until empty.  ``smart=True`` (about 52 shots): works out which hits belong
    to sunk ships, extends lines of two or more open hits first, else tries the neighbours of open hits.

    With ship moves on, it moves an unhit ship that touches a cell we hit but have not sunk (if a move takes
    it away), else moves a random unhit ship with probability ``move_prob``."""

    def __init__(
        self, rules: Rules, rng: random.Random, move_prob: float = 0.05, smart: bool = False
    ) -> None:
        self.rules = rules
        self.rng = rng
        self.move_prob = move_prob
        self.smart = smart
        self.shot: dict[Cell, str] = {}
        self.hits: set[Cell] = set()
        self.sunk_cells: set[Cell] = set()
        self.stack: list[Cell] = []
        self.lengths = {s.name: s.length for s in rules.fleet}

    def record(self, cell: Cell, result: ShotResult) -> None:
        self.shot[cell] = result.kind
        if not result.hit:
            return
        self.hits.add(cell)
        self.stack.extend(n for n in self._neighbours(cell) if n not in self.shot)
        if result.kind == "sunk" and result.ship is not None:
            length = self.lengths[result.ship]
            open_hits = self.hits - self.sunk_cells
            for dr, dc in ((0, 1), (1, 0)):
                for start in range(-length + 1, 1):
                    cells = [(cell[0] + (start + i) * dr, cell[1] + (start + i) * dc) for i in range(length)]
                    if all(c in open_hits for c in cells):
                        self.sunk_cells.update(cells)
                        return
            self.sunk_cells.add(cell)

    def _neighbours(self, cell: Cell) -> list[Cell]:
        out = []
        for dr, dc in DIRECTIONS.values():
            c = (cell[0] + dr, cell[1] + dc)
            if self.rules.on_board(c):
                out.append(c)
        return out

    def choose_shot(self) -> Cell:
        if not self.smart:
            while self.stack:
                c = self.stack.pop()
                if c not in self.shot:
                    return c
        else:
            target = self._smart_target()
            if target is not None:
                return target
        cells = [(r, c) for r in range(self.rules.rows) for c in range(self.rules.cols)]
        fresh = [c for c in cells if c not in self.shot]
        parity = [c for c in fresh if (c[0] + c[1]) % 2 == 0]
        missed = [c for c in cells if self.shot.get(c) == "miss"]
        return self.rng.choice(parity or fresh or missed)

    def _smart_target(self) -> Cell | None:
        open_hits = self.hits - self.sunk_cells
        line: set[Cell] = set()
        for h in open_hits:
            for dr, dc in ((0, 1), (1, 0)):
                if (h[0] + dr, h[1] + dc) in open_hits:
                    for sign in (1, -1):  # the first cell past each end of the run
                        c = h
                        while c in open_hits:
                            c = (c[0] + sign * dr, c[1] + sign * dc)
                        if self.rules.on_board(c) and c not in self.shot:
                            line.add(c)
        if line:
            return self.rng.choice(sorted(line))
        around = sorted({n for h in open_hits for n in self._neighbours(h) if n not in self.shot})
        return self.rng.choice(around) if around else None

    def decide(self, own: Board) -> Cell | list[ShipMove]:
        if self.rules.moves_enabled:
            exposed = own.hits - {c for n in own.sunk for c in own.ships[n].cells}
            near = {n for h in exposed for n in self._neighbours(h)}
            plan: list[ShipMove] = []
            work = Board(self.rules, own.ships.values())
            work.hits = set(own.hits)
            for name in work.movable():
                if near.intersection(work.ships[name].cells):
                    away = [m for m in work.legal_moves(name)
                            if not near.intersection(m.apply(work.ships[name]).cells)]
                    if away:
                        mv = self.rng.choice(away)
                        work.apply_moves([mv])
                        plan.append(mv)
            if not plan and self.rng.random() < self.move_prob:
                names = work.movable()
                options = [m for n in names for m in work.legal_moves(n)]
                if options:
                    plan.append(self.rng.choice(options))
            if plan:
                return plan
        return self.choose_shot()


# --- games ---------------------------------------------------------------------------------------------
def solo_game(side: Side, rules: Rules, fleet: Sequence[Ship]) -> list[Cell]:
    """Our engine shoots at a static fleet until it is sunk; returns the shots."""
    target = Board(rules, fleet)
    side.new_game(rules)
    for ship in fleet:  # our own fleet does not matter here: give it the same layout
        side.place(ship)
    shots: list[Cell] = []
    while not target.defeated:
        turn = side.genmove(10.0)
        if turn.shot is None:
            raise RuntimeError(f"the engine moved ships ({turn}) in a game without ship moves")
        result = target.shoot(turn.shot)
        shots.append(turn.shot)
        side.shot_result(turn.shot, result)
        if len(shots) > 4 * rules.rows * rules.cols:
            raise RuntimeError("the engine shot more than 4x the board without sinking the fleet")
    return shots


@dataclass
class MatchResult:
    won: bool | None  # None: draw (turn cap)
    turns: int
    our_moves: int
    their_moves: int


def match_game(
    side: Side, rules: Rules, rng: random.Random, us: int, move_prob: float, smart: bool = False
) -> MatchResult:
    """One game: our engine (player ``us``) against HuntTarget, through the rules model."""
    game = Game.random(rules, rng)
    them = 3 - us
    opponent = HuntTarget(rules, random.Random(rng.random()), move_prob, smart)
    side.new_game(rules)
    for ship in game.boards[us].ships.values():
        side.place(ship)
    ours = theirs = 0
    while not game.over and len(game.history) < TURN_CAP:
        if game.to_move == us:
            if rules.moves_enabled:
                side.movable(game.boards[us].movable())
            turn = side.genmove(10.0)
            if turn.shot is not None:
                result = game.shoot(turn.shot)
                side.shot_result(turn.shot, result)
            else:
                try:
                    moved = game.move(turn.moves)
                except RulesError as exc:
                    raise RuntimeError(f"the engine made an invalid move {turn}: {exc}") from None
                ours += 1
                for ship in moved.values():
                    side.place(ship)
        else:
            action = opponent.decide(game.boards[them])
            if isinstance(action, list):
                game.move(action)
                theirs += 1
                side.opponent_moved()
            else:
                result = game.shoot(action)
                opponent.record(action, result)
                side.opponent_shot(action, result)
    won = None if game.winner is None else game.winner == us
    return MatchResult(won, len(game.history), ours, theirs)


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def engine_command(seed: int, extra: Sequence[str]) -> list[str]:
    return [sys.executable, str(ENGINE_SCRIPT), "--seed", str(seed), *extra]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--games", type=int, default=2000, help="(a) static games, in-process (default 2000)")
    ap.add_argument("--check", type=int, default=20,
                    help="(a) games replayed through the subprocess (default 20)")
    ap.add_argument("--match-games", type=int, default=200,
                    help="(b) games against hunt/target (default 200)")
    ap.add_argument("--move-prob", type=float, default=0.05,
                    help="(b) chance the opponent moves a random ship when not evading (default 0.05)")
    ap.add_argument("--no-moves", action="store_true", help="(b) play without ship moves")
    ap.add_argument("--opponent", choices=("classic", "smart"), default="classic",
                    help="(b) the hunt/target variant (see HuntTarget; default classic)")
    ap.add_argument("--in-process", action="store_true", help="(b) skip the subprocess (for tuning)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--engine-arg", action="append", default=[],
                    help="extra argument for the engine (repeatable)")
    opts = ap.parse_args(argv)
    module = load_engine_module()
    kw = {"evasion": "--no-evasion" not in opts.engine_arg}
    rows: list[tuple[str, str]] = []

    # (a) static fleets
    if opts.games > 0:
        rules = Rules()
        rng = random.Random(opts.seed)
        fleets = [random_placement(rules, rng)
                  for _ in range(opts.games)]
        side = InProcess(module, opts.seed, **kw)
        counts: list[int] = []
        sequences: list[list[Cell]] = []
        t0 = time.perf_counter()
        for fleet in fleets:
            shots = solo_game(side, rules, fleet)
            counts.append(len(shots))
            if len(sequences) < opts.check:
                sequences.append(shots)
        elapsed = time.perf_counter() - t0
        rows += [
            ("(a) static fleets: games", f"{len(counts)}"),
            ("(a) shots to win: mean", f"{statistics.mean(counts):.2f}"),
            ("(a) shots to win: median", f"{statistics.median(counts):g}"),
            ("(a) shots to win: p95", f"{percentile(counts, 0.95):g}"),
            ("(a) shots to win: min / max", f"{min(counts)} / {max(counts)}"),
            ("(a) ms per genmove (in-process)", f"{1000 * elapsed / sum(counts):.2f}"),
        ]
        if opts.check > 0:
            checked = min(opts.check, len(fleets))
            same = 0
            t0 = time.perf_counter()
            with LineEngine.start(engine_command(opts.seed, opts.engine_arg), name="ref") as engine:
                for fleet, expected in zip(fleets[:checked], sequences, strict=True):
                    got = solo_game(engine, rules, fleet)
                    same += got == expected
                    if got != expected:
                        print(f"MISMATCH: in-process {[cell_name(c) for c in expected][:10]}... "
                              f"subprocess {[cell_name(c) for c in got][:10]}...", file=sys.stderr)
                shots_checked = sum(len(s) for s in sequences[:checked])
            per = 1000 * (time.perf_counter() - t0) / max(shots_checked, 1)
            rows.append(("(a) subprocess replay identical to in-process", f"{same} / {checked} games"))
            rows.append(("(a) ms per turn through the protocol (genmove + shot_result)", f"{per:.2f}"))

    # (b) match against hunt/target
    if opts.match_games > 0:
        rules = Rules(moves_enabled=not opts.no_moves)
        rng = random.Random(opts.seed + 1)
        results: list[MatchResult] = []
        smart = opts.opponent == "smart"
        t0 = time.perf_counter()
        if opts.in_process:
            side_b: Side = InProcess(module, opts.seed, **kw)
            for g in range(opts.match_games):
                results.append(match_game(side_b, rules, rng, 1 + g % 2, opts.move_prob, smart))
        else:
            with LineEngine.start(engine_command(opts.seed, opts.engine_arg), name="ref") as engine:
                for g in range(opts.match_games):
                    results.append(match_game(engine, rules, rng, 1 + g % 2, opts.move_prob, smart))
        elapsed = time.perf_counter() - t0
        n = len(results)
        wins = sum(1 for r in results if r.won)
        draws = sum(1 for r in results if r.won is None)
        lo, hi = wilson(wins, n)
        how = "in-process" if opts.in_process else "engine subprocess via the line protocol"
        rows += [
            (f"(b) vs {opts.opponent} hunt/target, ship moves {'off' if opts.no_moves else 'on'}: "
             f"games ({how})",
             f"{n}"),
            ("(b) win rate [95% Wilson CI]",
             f"{wins / n:.1%} [{lo:.1%}, {hi:.1%}] ({wins} won, {draws} drawn)"),
            ("(b) turns per game: mean", f"{statistics.mean(r.turns for r in results):.1f}"),
            ("(b) move turns per game: ours / theirs",
             f"{statistics.mean(r.our_moves for r in results):.2f} / "
             f"{statistics.mean(r.their_moves for r in results):.2f}"),
            ("(b) seconds per game", f"{elapsed / n:.3f}"),
        ]

    print("| measure | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
