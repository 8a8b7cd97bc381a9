#!/usr/bin/env python3
"""Benchmark the RBC belief's bookkeeping at scale (bridge/games/rbc_belief.py, and rbc_arrays.py for
``rbc.belief: arrays``): how long each step takes and how much memory the set of possible boards holds as it grows,
for each way of holding it at several ``max_boards`` caps (``max_children`` ten times the cap).

Plays games between two random movers under the official arbiter's rules (reconchess's move revision), with the
belief of White updated each turn exactly as the bridge's player does (the opponent's move, the sense the belief
chooses, our move's result) — no engine, so that only the bookkeeping is timed. Prints a Markdown table: the
largest set seen after the opponent's move (lazy children), after the sense, the seconds per turn (median and
worst), the peak RSS of the process playing that cap's games (each cap in a fresh process), and how many games
kept the belief exact. Random movers make far more uncertain positions than real opponents: a worst case.

    python scripts/bench_belief.py            # boards:20000 arrays:20000 arrays:400000; 6 games each, 30 turns
    python scripts/bench_belief.py --runs boards:5000 arrays:1000000 --games 10
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time

import chess
from reconchess.utilities import capture_square_of_move

from bridge.games.rbc_arrays import ArrayBelief
from bridge.games.rbc_belief import WINDOWS, Belief, child, rbc_moves, taken_move

KINDS: dict[str, type[Belief]] = {"boards": Belief, "arrays": ArrayBelief}


def play(kind: str, cap: int, seed: int, turns: int) -> dict[str, float]:
    rng = random.Random(seed)
    truth = chess.Board()
    belief = KINDS[kind](chess.WHITE, truth, max_boards=cap, max_children=10 * cap, rng=random.Random(seed))
    children = kept = 0
    times: list[float] = []
    exact = True
    for turn in range(turns):
        started = time.perf_counter()
        if turn > 0:
            move = rng.choice(rbc_moves(truth))
            capture = capture_square_of_move(truth, move) if move is not None else None
            truth = child(truth, move)
            if truth.king(chess.WHITE) is None:
                break
            belief.opponent_moved(capture)
            children = max(children, len(belief))
            square = belief.choose_sense()
            belief.sensed([(sq, truth.piece_at(sq)) for sq in chess.SquareSet(WINDOWS[square])]
                          if square is not None else [])
            kept = max(kept, len(belief))
        requested = rng.choice([m for m in rbc_moves(truth) if m is not None])
        taken = taken_move(truth, requested)
        capture = capture_square_of_move(truth, taken) if taken is not None else None
        truth = child(truth, taken)
        belief.moved(requested, taken, capture)
        times.append(time.perf_counter() - started)
        exact = exact and belief.exact
        if truth.king(chess.BLACK) is None:
            break
    return {"children": children, "kept": kept, "median": statistics.median(times), "worst": max(times),
            "exact": float(exact)}


def one(kind: str, cap: int, games: int, turns: int) -> dict[str, float]:
    rows = [play(kind, cap, seed, turns) for seed in range(games)]
    return {"children": max(r["children"] for r in rows), "kept": max(r["kept"] for r in rows),
            "median": statistics.median(r["median"] for r in rows), "worst": max(r["worst"] for r in rows),
            "exact": sum(r["exact"] for r in rows), "games": len(rows),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=["boards:20000", "arrays:20000", "arrays:400000"],
                        help="KIND:CAP each (KIND: boards or arrays, as rbc.belief; CAP: rbc.max_boards)")
    parser.add_argument("--games", type=int, default=6)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one KIND:CAP, in this process (JSON out)
    args = parser.parse_args()
    if args.one is not None:
        kind, cap = args.one.split(":")
        print(json.dumps(one(kind, int(cap), args.games, args.turns)))
        return
    runs: list[tuple[str, int]] = []
    for run in args.runs:
        kind, _, cap = run.partition(":")
        if kind not in KINDS or not cap.isdigit():
            parser.error(f"--runs {run}: expected KIND:CAP with KIND one of {', '.join(KINDS)}, e.g. arrays:400000")
        runs.append((kind, int(cap)))
    print("| `rbc.belief` | `rbc.max_boards` | largest set after the opponent's move | largest after the sense | "
          "s per turn, median | worst | peak RSS MB | games exact |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, cap in runs:
        out = subprocess.run([sys.executable, __file__, "--one", f"{kind}:{cap}", "--games", str(args.games),
                              "--turns", str(args.turns)], capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"| {kind} | {cap:,} | {r['children']:,.0f} | {r['kept']:,.0f} | {r['median']:.3f} | "
              f"{r['worst']:.2f} | {r['rss_mb']:.0f} | {r['exact']:.0f}/{r['games']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
