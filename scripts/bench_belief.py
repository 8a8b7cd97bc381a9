#!/usr/bin/env python3
"""Benchmark the RBC belief's bookkeeping at scale (bridge/games/rbc_belief.py): how long each step takes and how
much memory the set of possible boards holds as it grows, at several ``max_boards`` caps.

Plays games between two random movers under the official arbiter's rules (reconchess's move revision), with the
belief of White updated each turn exactly as the bridge's player does (the opponent's move, the sense the belief
chooses, our move's result) — no engine, so that only the bookkeeping is timed. Prints a Markdown table: the
largest set seen after the opponent's move (lazy children), after the sense, the seconds per turn (median and
worst), the peak RSS of the process playing that cap's games (each cap in a fresh process), and how many games
kept the belief exact. Random movers make far more uncertain positions than real opponents: a worst case.

    python scripts/bench_belief.py                         # caps 3000, 20000, 100000; 6 games each, 30 turns
    python scripts/bench_belief.py --caps 5000 --games 10
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

from bridge.games.rbc_belief import WINDOWS, Belief, child, rbc_moves, taken_move


def play(cap: int, seed: int, turns: int) -> dict[str, float]:
    rng = random.Random(seed)
    truth = chess.Board()
    belief = Belief(chess.WHITE, truth, max_boards=cap, rng=random.Random(seed))
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


def one(cap: int, games: int, turns: int) -> dict[str, float]:
    rows = [play(cap, seed, turns) for seed in range(games)]
    return {"children": max(r["children"] for r in rows), "kept": max(r["kept"] for r in rows),
            "median": statistics.median(r["median"] for r in rows), "worst": max(r["worst"] for r in rows),
            "exact": sum(r["exact"] for r in rows), "games": len(rows),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caps", type=int, nargs="+", default=[3000, 20000, 100000])
    parser.add_argument("--games", type=int, default=6)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one cap, in this process (JSON out)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.games, args.turns)))
        return
    print("| max_boards | largest set after the opponent's move | largest after the sense | s per turn, median | "
          "worst | peak RSS MB | games exact |")
    print("|---|---|---|---|---|---|---|")
    for cap in args.caps:
        out = subprocess.run([sys.executable, __file__, "--one", str(cap), "--games", str(args.games), "--turns",
                              str(args.turns)], capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"| {cap:,} | {r['children']:,.0f} | {r['kept']:,.0f} | {r['median']:.3f} | {r['worst']:.2f} | "
              f"{r['rss_mb']:.0f} | {r['exact']:.0f}/{r['games']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
