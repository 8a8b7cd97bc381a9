"""What a UCI engine may be shown of an RBC position, and what it is worth when it may not.

A chess engine assumes chess: both kings on the board, the side not to move not in check, an en-passant square only
where a capture is possible, at most 16 pieces and 8 pawns a side, no pawn on a last rank.  RBC boards break some
of these (a king can be left en prise, capturing it wins), and a repaired belief may break others.  :func:`prepare`
sorts a position into a decided value (the mover can take the king: 1.0; the mover has no king: 0.0), a cleaned
copy an engine can analyse, or neither (then :func:`static_value` scores it by material).

Values are the mover's expected result in [0, 1] (1 win, 0.5 draw, 0 loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import chess
import chess.engine

from bridge.games.rbc_belief import VALUES

WIN = 1.0
LOSS = 0.0


@dataclass(frozen=True)
class Prepared:
    """``value`` (decided, for the side to move) or ``board`` (safe for an engine) or neither (``reason`` says
    why; use :func:`static_value`)."""

    value: float | None
    board: chess.Board | None
    reason: str = ""


def prepare(board: chess.Board) -> Prepared:
    mover = board.turn
    other = not mover
    my_king = board.king(mover)
    their_king = board.king(other)
    if my_king is None:
        return Prepared(LOSS, None, "the mover has no king")
    if their_king is None:
        return Prepared(WIN, None, "the other side has no king")
    if board.attackers_mask(mover, their_king):
        return Prepared(WIN, None, "the mover can capture the king")
    for color in (chess.WHITE, chess.BLACK):
        if chess.popcount(board.kings & board.occupied_co[color]) != 1:
            return Prepared(None, None, "a side has more than one king")
        if chess.popcount(board.occupied_co[color]) > 16:
            return Prepared(None, None, "a side has more than 16 pieces")
        if chess.popcount(board.pawns & board.occupied_co[color]) > 8:
            return Prepared(None, None, "a side has more than 8 pawns")
    if board.pawns & chess.BB_BACKRANKS:
        return Prepared(None, None, "a pawn stands on a last rank")
    if chess.popcount(board.attackers_mask(other, my_king)) > 2:
        return Prepared(None, None, "more than two pieces give check")
    clean = board.copy(stack=False)
    clean.castling_rights = clean.clean_castling_rights()
    if clean.ep_square is not None and not clean.has_legal_en_passant():
        clean.ep_square = None
    clean.halfmove_clock = min(clean.halfmove_clock, 99)
    return Prepared(None, clean)


def material(board: chess.Board, color: chess.Color) -> int:
    """Material of ``color`` minus the other side's (pawn 1, knight and bishop 3, rook 5, queen 9)."""
    total = 0
    for piece_type, value in VALUES.items():
        total += value * (chess.popcount(board.pieces_mask(piece_type, color))
                          - chess.popcount(board.pieces_mask(piece_type, not color)))
    return total


def static_value(board: chess.Board, color: chess.Color) -> float:
    """A value for ``color`` without an engine: decided positions as :func:`prepare` says, otherwise the material
    balance through a logistic curve (a queen up ~ 0.9)."""
    prepared = prepare(board)
    if prepared.value is not None:
        return prepared.value if board.turn == color else 1.0 - prepared.value
    return 1.0 / (1.0 + math.exp(-material(board, color) / 4.0))


def score_value(score: chess.engine.PovScore, color: chess.Color, ply: int = 30) -> float:
    """An engine score as ``color``'s expected result (Stockfish's win-draw-loss model)."""
    return float(score.pov(color).wdl(model="sf", ply=ply).expectation())
