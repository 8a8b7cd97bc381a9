#!/usr/bin/env python3
"""Benchmark the bridge's RBC player (bridge.games.rbc.BridgeRbcPlayer + Stockfish) against reconchess's house bots.

Plays N games per opponent with ``reconchess.play_local_game`` (the official arbiter), colours alternating, and
prints wins/losses/draws, the win rate with its 95% Wilson confidence interval and the seconds per game as a
Markdown table.  Not part of CI: a tournament-clock game takes minutes.

    python scripts/bench_rbc.py                          # 10 games each vs random, attacker, trout; 900 s + 5 s
    python scripts/bench_rbc.py -n 6 --clock 90 --increment 2 --opponents attacker trout
    python scripts/bench_rbc.py --records runs/bench     # also keep each game's transcript and history

The process lowers its own priority (nice 19): benchmarks share the machine.  TroutBot needs
STOCKFISH_EXECUTABLE (set to /usr/games/stockfish unless already set).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import chess
import reconchess
from reconchess import LocalGame, play_local_game

from bridge.config import EngineConfig
from bridge.engines.uci import UciEngine
from bridge.games.rbc import BridgeRbcPlayer
from bridge.games.rbc_config import RbcConfig
from bridge.transcript import Transcript

STOCKFISH = "/usr/games/stockfish"
OPPONENTS = ("random", "attacker", "trout")


def wilson(wins: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a win rate (``wins`` may count a draw as a half: a score)."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def make_opponent(kind: str) -> reconchess.Player:
    if kind == "random":
        from reconchess.bots.random_bot import RandomBot

        return RandomBot()
    if kind == "attacker":  # the sandbox house's: on its own copy of its rush (AttackerBot uses up the module's)
        from bridge.adapters.reconchess.sandbox.house import attacker

        return attacker()
    if kind == "trout":
        from reconchess.bots.trout_bot import TroutBot

        return TroutBot()
    raise SystemExit(f"unknown opponent {kind!r}; one of {', '.join(OPPONENTS)}")


def close_opponent(player: reconchess.Player) -> None:
    engine: Any = getattr(player, "engine", None)
    if engine is not None:
        try:
            engine.quit()
        except Exception:
            try:
                engine.close()
            except Exception:
                pass


def play_one(kind: str, index: int, args: argparse.Namespace, rbc: RbcConfig) -> tuple[str, float, str]:
    """One game; returns (outcome 'win'/'loss'/'draw', seconds, a one-line description)."""
    records: Path | None = args.records
    transcript = Transcript(records / f"{kind}-{index}.log" if records is not None else None)
    options: dict[str, str | int | float | bool] = {"Threads": 1, "Hash": args.hash}
    engine = UciEngine(EngineConfig(protocol="uci", command=[args.stockfish], options=options),
                       name="stockfish", transcript=transcript)
    me = BridgeRbcPlayer(engine, rbc.model_copy(update={"seed": None if rbc.seed is None else rbc.seed + index}),
                         transcript=transcript, name="bridge")
    opponent = make_opponent(kind)
    white = index % 2 == 0
    game = LocalGame(seconds_per_player=args.clock, seconds_increment=args.increment)
    started = time.monotonic()
    try:
        winner, reason, history = play_local_game(me if white else opponent, opponent if white else me, game)
    finally:
        me.close()
        close_opponent(opponent)
        transcript.close()
    seconds = time.monotonic() - started
    color = chess.WHITE if white else chess.BLACK
    outcome = "draw" if winner is None else ("win" if winner == color else "loss")
    if records is not None and history is not None:
        history.save(str(records / f"{kind}-{index}.json"))
    turns = sum(1 for _ in history.turns()) if history is not None else 0
    why = reason.name if reason is not None else "draw"
    line = (f"{kind} #{index} as {'white' if white else 'black'}: {outcome} ({why}) in {turns} half-turns, "
            f"{seconds:.0f} s, our clock left {game.seconds_left_by_color[color]:.0f} s")
    return outcome, seconds, line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--games", type=int, default=10, help="games per opponent (default 10)")
    parser.add_argument("--opponents", nargs="+", default=list(OPPONENTS), choices=OPPONENTS)
    parser.add_argument("--clock", type=float, default=900.0, help="seconds per player (default 900)")
    parser.add_argument("--increment", type=float, default=5.0, help="seconds added per turn (default 5)")
    parser.add_argument("--stockfish", default=os.environ.get("STOCKFISH_EXECUTABLE", STOCKFISH))
    parser.add_argument("--hash", type=int, default=16, help="Stockfish hash MB (default 16)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the bots' and the player's randomness")
    parser.add_argument("--records", type=Path, default=None, help="keep transcripts and histories in this folder")
    parser.add_argument("--max-boards", type=int, default=None)
    parser.add_argument("--move-boards", type=int, default=None)
    parser.add_argument("--engine-time", type=float, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("STOCKFISH_EXECUTABLE", args.stockfish)
    try:
        os.nice(19)
    except OSError:
        pass
    if args.records is not None:
        args.records.mkdir(parents=True, exist_ok=True)
    if args.seed is not None:
        random.seed(args.seed)
    updates = {"seed": args.seed, "max_boards": args.max_boards, "move_boards": args.move_boards,
               "engine_time": args.engine_time}
    rbc = RbcConfig(**{k: v for k, v in updates.items() if v is not None})
    rows = []
    for kind in args.opponents:
        results: list[str] = []
        times: list[float] = []
        for i in range(args.games):
            outcome, seconds, line = play_one(kind, i, args, rbc)
            results.append(outcome)
            times.append(seconds)
            print(line, flush=True, file=sys.stderr)
        wins, losses, draws = results.count("win"), results.count("loss"), results.count("draw")
        low, high = wilson(wins, len(results))
        rows.append(f"| {kind} | {len(results)} | {wins} | {losses} | {draws} | {wins / len(results):.0%} | "
                    f"{low:.0%}–{high:.0%} | {sum(times) / len(times):.0f} |")
        print(rows[-1], flush=True, file=sys.stderr)  # progress, in case a long run is cut short
    print(f"\nClock: {args.clock:g} s + {args.increment:g} s per turn; Stockfish 1 thread, {args.hash} MB hash; "
          f"rbc: {rbc.model_dump(exclude={'seed'})}\n")
    print("| opponent | games | wins | losses | draws | win rate | 95% CI (Wilson) | s/game |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
