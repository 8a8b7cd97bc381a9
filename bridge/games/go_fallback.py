"""The bridge's own move for when the engine cannot give one in time (a hang that left too little of the clock for a
restart, or a server that refused the engine's moves several times).

Passing there looked harmless and was not: an opponent that answers a pass with a pass (many bots do) ends the game,
and a half-played board is scored as it stands — a won game lost on points to one hung engine. So the bridge plays a
move of its own: legal under the game's rules, not filling one of its own eyes, not a self-atari (a move that leaves
its stones with one liberty and captures nothing), chosen by a short flat Monte Carlo (random playouts from each
candidate, counted by area) within a time budget. It passes only when no such move is left (the end of the game),
and says why either way.

This is an emergency move, not a strong one: on 19x19 a second of pure Python makes a handful of playouts, so the
choice there is mostly the candidates' filter (near the stones already played, off the first line when possible).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Collection
from dataclasses import dataclass

from bridge.games.gorules import GoBoard, IllegalMove, ruleset
from bridge.games.gotypes import Color, GoState, Move, Point, color_of_move, other

MAX_CANDIDATES = 40  # moves the playouts are shared between (the rest are dropped by the filter's preferences)
MIN_CANDIDATES = 12  # a less preferred kind of move (the edge, far from the stones) is a candidate only below this


@dataclass(frozen=True)
class FallbackMove:
    move: Move  # None: pass
    why: str  # for the transcript: how it was chosen
    candidates: int = 0
    playouts: int = 0


def board_of(state: GoState) -> GoBoard:
    """The position of ``state`` on a :class:`GoBoard` with the game's ko and suicide rules. Raises IllegalMove
    (or ValueError for unknown rules) when the moves do not replay."""
    s = state.settings
    try:
        rules = ruleset(s.rules)
        ko, suicide = rules.ko, rules.allow_suicide
    except ValueError:
        ko, suicide = "simple", False  # the least strict: a move it allows is legal under every rule set's ko
    board = GoBoard(s.width, s.height, ko=ko, allow_suicide=suicide, black=s.initial_black,
                    white=s.initial_white)
    for i, m in enumerate(state.moves):
        board.play(color_of_move(s, i), m)
    return board


def _safe_after(board: GoBoard, color: Color, point: Point) -> GoBoard | None:
    """The board after ``color`` plays ``point`` when that is a sensible emergency move, else None: legal, not one
    of its own eyes, and leaving the new stone's group more than one liberty unless it captured."""
    if board.is_eye(point, color):
        return None
    after = board.copy()
    try:
        captured = after.play(color, point)
    except IllegalMove:
        return None
    if not captured:
        _, liberties = after.group(point)
        if len(liberties) <= 1:
            return None
    return after


def _preference(board: GoBoard, stones: Collection[Point], point: Point) -> tuple[int, int]:
    """Sort key (lower first): off the edge lines (the first two on boards from 9x9, the first on smaller ones),
    then near the stones already played."""
    x, y = point
    edge = min(x, y, board.width - 1 - x, board.height - 1 - y)
    inner = 2 if min(board.width, board.height) >= 9 else 1 if min(board.width, board.height) >= 5 else 0
    near = not stones or any((x + dx, y + dy) in stones for dx in range(-2, 3) for dy in range(-2, 3))
    return (0 if edge >= inner else 1, 0 if near else 1)


def candidates(board: GoBoard, color: Color, exclude: Collection[Move], rng: random.Random
               ) -> list[tuple[Point, GoBoard]]:
    """The moves the playouts choose between, each with the board after it: safe (:func:`_safe_after`), not in
    ``exclude``, the preferred kinds first (:func:`_preference`), a less preferred kind only while fewer than
    :data:`MIN_CANDIDATES` were found; at most :data:`MAX_CANDIDATES`, in random order within a kind."""
    points = [p for p in board.legal_moves(color) if p not in exclude]
    rng.shuffle(points)
    stones = set(board.stones)
    keyed = [(_preference(board, stones, p), p) for p in points]
    keyed.sort(key=lambda kp: kp[0])  # stable: random order within a kind
    boards: list[tuple[Point, GoBoard]] = []
    last: tuple[int, int] | None = None
    for key, p in keyed:
        if key != last and len(boards) >= MIN_CANDIDATES:
            break  # enough of a better kind: the playouts are not spread over edge moves they would rank by noise
        last = key
        after = _safe_after(board, color, p)
        if after is not None:
            boards.append((p, after))
            if len(boards) >= MAX_CANDIDATES:
                break
    return boards


def fallback_move(state: GoState, seconds: float, *, exclude: Collection[Move] = (),
                  rng: random.Random | None = None) -> FallbackMove:
    """A move for the player to move in ``state``, chosen within about ``seconds`` (see the module's text);
    ``exclude``: points not to play (moves the server refused)."""
    deadline = time.monotonic() + max(seconds, 0.0)
    rng = rng or random.Random()
    color = state.to_move
    try:
        board = board_of(state)
    except (IllegalMove, ValueError) as exc:
        return FallbackMove(None, f"passing: the game's moves do not replay on the bridge's board ({exc})")
    boards = candidates(board, color, exclude, rng)
    if not boards:
        return FallbackMove(None, "passing: no legal move is left that does not fill an own eye or self-atari")
    komi = state.settings.komi
    area = board.width * board.height
    wins = [0.0] * len(boards)
    margins = [0.0] * len(boards)
    visits = [0] * len(boards)
    limit = 3 * board.width * board.height
    playouts = 0
    while time.monotonic() < deadline:
        k = playouts % len(boards)
        trial = boards[k][1].copy()
        try:
            trial.playout(other(color), rng, max_moves=limit)
        except IllegalMove:  # the referee and its random player disagree: not this playout's business
            playouts += 1
            continue
        black, white = trial.score(komi, "chinese")  # area: stones and single-colour regions, komi for white
        margin = black - white if color == "black" else white - black
        wins[k] += 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0
        margins[k] += margin
        visits[k] += 1
        playouts += 1

    def value(k: int) -> float:
        """The share of playouts won, and the mean margin (as a share of the board) to tell sure wins apart."""
        return (wins[k] + 0.25 * margins[k] / area) / visits[k] if visits[k] else -math.inf

    if min(visits) > 0:
        best = max(range(len(boards)), key=lambda k: (value(k), -k))
        why = (f"the best of {len(boards)} safe moves by {playouts} random playouts: {wins[best]:g} of "
               f"{visits[best]} won, {margins[best] / visits[best]:+.1f} points on average")
    else:
        best = 0
        why = (f"the first of {len(boards)} safe moves, off the edge and near the stones: too little time for "
               f"playouts ({playouts})")
    return FallbackMove(boards[best][0], why, len(boards), playouts)
