#!/usr/bin/env python3
"""What recorded RBC games say about the bridge's belief (issue 12), from reconchess game histories (the JSON that
``scripts/bench_strangefish.py`` keeps for every game). No engine, no server.

Two measures:

* **The opponent model** (``bridge/games/rbc_belief.py``: the prior of each move the opponent could take): on the
  true board before each opponent move, the probability the model gave the move the opponent took, against a uniform
  choice over the same moves: the mean of ``log(p x n)`` in nats a move (0: no better than uniform; +0.3: the taken
  move about 1.35 times likelier than an average one), the median rank of the taken move and how often it was among
  the model's three likeliest.
* **The belief replayed** at each ``--caps`` value of ``rbc.max_boards`` (``arrays:CAP`` for ``rbc.belief:
  arrays``, with ``max_children`` ten times the cap): our side's belief is updated with the
  game's own observations (the opponent's captures, the senses we made and their results, our moves' results), and
  after each sense the true board is looked up in it: the first turn it was missing (lost to sampling) and on how
  many turns it was there. The senses are the ones played, so this measures the bookkeeping and the model, not the
  sense policy.

    python3 scripts/rbc_histories.py --results runs/sf2/results.json            # the games a results file names
    python3 scripts/rbc_histories.py runs/sf2/*/history-*.json --us bridge --caps 3000,20000 --json out.json
    python3 scripts/rbc_histories.py --results runs/sf2/results.json --caps 20000,arrays:400000
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import chess
from reconchess import GameHistory, Turn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.games.rbc_arrays import ArrayBelief  # noqa: E402
from bridge.games.rbc_belief import (  # noqa: E402  (the checkout's bridge, not an installed one)
    Belief,
    move_priors,
    rbc_moves,
)

Priors = Callable[[chess.Board, Sequence[chess.Move | None]], list[float]]


@dataclass
class ModelFit:
    moves: int  # opponent moves scored
    nats: float  # mean log(p x n): how much likelier than uniform the model made the taken move
    median_rank: float  # 0: the model's likeliest move
    top3: float  # share of taken moves among the model's three likeliest


def our_color(history: GameHistory, us: str) -> chess.Color:
    white, black = history.get_white_player_name(), history.get_black_player_name()
    if white == us:
        return chess.WHITE
    if black == us:
        return chess.BLACK
    raise ValueError(f"neither player is named {us!r} (white {white!r}, black {black!r}); give --us")


def fit(histories: Sequence[GameHistory], opponent: Sequence[chess.Color], priors: Priors = move_priors) -> ModelFit:
    """How well ``priors`` predicted the moves the ``opponent`` of each history took (see the module doc)."""
    total, ranks = 0.0, []
    for history, color in zip(histories, opponent, strict=True):
        for turn in history.turns(color):
            if not history.has_move(turn):
                continue
            board = history.truth_board_before_move(turn)
            moves = rbc_moves(board)
            taken = history.taken_move(turn)
            if taken not in moves:
                continue  # cannot happen under the arbiter's rules; skipped rather than guessed
            p = priors(board, moves)
            mine = p[moves.index(taken)]
            total += math.log(mine / sum(p) * len(moves))
            ranks.append(sum(1 for q in p if q > mine))
    if not ranks:
        return ModelFit(0, 0.0, 0.0, 0.0)
    return ModelFit(len(ranks), total / len(ranks), statistics.median(ranks), sum(r < 3 for r in ranks) / len(ranks))


@dataclass
class Replay:
    turns: int  # our turns
    truth_lost_at: int | None  # our first turn (reconchess's turn number) whose belief missed the true board
    turns_with_truth: int
    largest: int  # the most boards (lazy children included) the belief held
    sampled: bool  # whether the belief was ever sampled (with False, the truth must be there every turn)
    seconds: float


def replay(history: GameHistory, color: chess.Color, cap: int, seed: int = 1, arrays: bool = False) -> Replay:
    """Our belief through the game's own observations at ``max_boards=cap`` (see the module doc); ``arrays``:
    ``rbc.belief: arrays`` with ``max_children`` ten times ``cap``."""
    belief = ArrayBelief(color, chess.Board(), max_boards=cap, max_children=10 * cap, rng=random.Random(seed)) \
        if arrays else Belief(color, chess.Board(), max_boards=cap, rng=random.Random(seed))
    started = time.perf_counter()
    turns = kept = largest = 0
    lost: int | None = None
    sampled = False
    for turn in history.turns(color):
        turns += 1
        previous = Turn(not color, turn.turn_number if color == chess.BLACK else turn.turn_number - 1)
        if previous.turn_number >= 0 and history.has_move(previous):
            belief.opponent_moved(history.capture_square(previous))
            largest = max(largest, len(belief))
            sampled = sampled or belief.last.sampled
        belief.sensed(history.sense_result(turn) if history.has_sense(turn) else [])
        sampled = sampled or belief.last.sampled
        if belief.contains(history.truth_board_before_move(turn)):
            kept += 1
        elif lost is None:
            lost = turn.turn_number
        largest = max(largest, len(belief))
        if history.has_move(turn):
            belief.moved(history.requested_move(turn), history.taken_move(turn), history.capture_square(turn))
            sampled = sampled or belief.last.sampled
    return Replay(turns, lost, kept, largest, sampled, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("histories", nargs="*", type=Path, help="reconchess game history JSON files")
    ap.add_argument("--results", type=Path, help="a bench_strangefish.py results file: its games' histories too")
    ap.add_argument("--us", default="bridge", help="our player's name in the histories (default: bridge)")
    ap.add_argument("--caps", default="3000", help="comma-separated rbc.max_boards values to replay at")
    ap.add_argument("--json", type=Path, help="where to write the numbers")
    args = ap.parse_args(argv)
    paths = list(args.histories)
    if args.results is not None:
        games = json.loads(args.results.read_text()).get("games", [])
        paths += [Path(g["history"]) for g in games if g.get("history")]
    if not paths:
        ap.error("no histories: name some, or a --results file")
    histories, colors = [], []
    for path in paths:
        try:
            history = GameHistory.from_file(str(path))
            colors.append(our_color(history, args.us))
        except (OSError, ValueError, KeyError) as exc:
            print(f"{path}: skipped ({exc})", file=sys.stderr)
            continue
        histories.append((path, history))
    caps: list[tuple[str, int]] = []
    for item in (c.strip() for c in args.caps.split(",")):
        kind, _, number = item.rpartition(":")
        if kind not in ("", "boards", "arrays") or not number.isdigit():
            ap.error(f"--caps {item}: expected a number of boards, or boards:N / arrays:N")
        caps.append((kind or "boards", int(number)))
    model = fit([h for _, h in histories], [not c for c in colors])
    print(f"Opponent model over {model.moves} moves of {len(histories)} games: {model.nats:+.3f} nats a move against "
          f"a uniform choice; the taken move's median rank {model.median_rank:g}, among the three likeliest "
          f"{100 * model.top3:.0f} %\n")
    print("| game | belief | cap | our turns | truth first missing at turn | turns with the truth | largest set | "
          "sampled | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for kind, cap in caps:
        for (path, history), color in zip(histories, colors, strict=True):
            r = replay(history, color, cap, arrays=kind == "arrays")
            rows.append({"history": str(path), "belief": kind, "cap": cap, **asdict(r)})
            lost = "—" if r.truth_lost_at is None else str(r.truth_lost_at)
            print(f"| {path.stem} | {kind} | {cap:,} | {r.turns} | {lost} | {r.turns_with_truth} | {r.largest:,} | "
                  f"{'yes' if r.sampled else 'no'} | {r.seconds:.1f} |", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"model": asdict(model), "replays": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
