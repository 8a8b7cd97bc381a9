"""An RBC belief held as arrays: the same bookkeeping as :class:`bridge.games.rbc_belief.Belief`, vectorised with
numpy, so that the set of possible boards stays *exact* at hundreds of thousands of boards.

Each board is one column of a ``(10, N)`` array of 64-bit words: the six piece-type bitboards (both colours, as
python-chess keeps them), the two colour bitboards, the castling rights (python-chess's
``clean_castling_rights()``) and the en-passant square (64 for none; kept only when an en-passant capture exists,
as :func:`bridge.games.rbc_belief.position_key` does).  80 bytes a board and 8 for its weight, against ~420 for a
``chess.Board``; one possible move of the opponent kept lazily (until the sense narrows them) costs ~30 bytes.

Every step works on whole arrays: the opponent's possible moves are generated per (piece type, square) across every
board that has that piece there; the opponent model's priors (:func:`bridge.games.rbc_belief.opponent_move_prior`,
the escapes of :func:`bridge.games.rbc_belief.move_priors`), the capture square, the attacks on our king and the
sense's window are computed column-wise; our own move's result is settled per group of boards that look the same
along the move's path (:meth:`ArrayBelief.moved`).  The results are the reference implementation's, board for
board and weight for weight, whenever that one is exact (``tests/test_rbc_arrays.py`` plays games with both).

What is bounded: ``max_boards`` (here typically hundreds of thousands) caps the boards kept after a step, and
``max_children`` the opponent's possible moves kept lazily; beyond them the same weighted sampling as the reference
(Efraimidis-Spirakis) keeps the likeliest and :attr:`Belief.exact` turns False.  The rare repairs (an observation
that no board explains, which an exact belief only meets when the opponent broke the rules or an answer was lost)
are the reference's, run on the heaviest boards turned into ``chess.Board`` objects.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import chess
import numpy as np
import numpy.typing as npt
from reconchess.utilities import capture_square_of_move

from bridge.games.rbc_belief import (
    CHECK_PRIOR,
    CRISIS_WEIGHT,
    DEVELOP_PRIOR,
    ESCAPE_SHARE,
    KING_GUARD,
    KNIGHT_APPROACH_PRIOR,
    KNIGHT_DISTANCE,
    KNIGHT_THREAT_PRIOR,
    Belief,
    Observation,
    StepStats,
    _expected_masks,
    taken_move,
)
from bridge.games.rbc_config import DEFAULT_CAPS

U64 = np.uint64
Words = npt.NDArray[np.uint64]
Ints = npt.NDArray[np.integer]
Floats = npt.NDArray[np.float64]

PAWNS, KNIGHTS, BISHOPS, ROOKS, QUEENS, KINGS, WHITE_OCC, BLACK_OCC, CASTLING, EP = range(10)
PLANES = 10
NO_EP = 64
CHUNK = 1 << 18  # children turned into boards at a time (bounds the memory of a step: 10 words each)
PARENT_CHUNK = 1 << 15  # boards whose possible moves are generated at a time (~35 each)

BIT: Words = np.array([1 << s for s in range(64)] + [0], dtype=U64)  # BIT[64] == 0: "no square"
KNIGHT_ATT: Words = np.array(chess.BB_KNIGHT_ATTACKS, dtype=U64)
KING_ATT: Words = np.array(chess.BB_KING_ATTACKS, dtype=U64)
PAWN_ATT: tuple[Words, Words] = (np.array(chess.BB_PAWN_ATTACKS[chess.BLACK], dtype=U64),
                                 np.array(chess.BB_PAWN_ATTACKS[chess.WHITE], dtype=U64))
KNIGHT_DIST: npt.NDArray[np.int8] = np.array([list(d) for d in KNIGHT_DISTANCE], dtype=np.int8)
BACKRANK: tuple[int, int] = (chess.BB_RANK_8, chess.BB_RANK_1)  # by colour (BLACK=0, WHITE=1)
# by (a * 64 + b): the squares strictly between a and b on a line (0 if none); whether a bishop / a rook on a
# reaches b on an empty board
BETWEEN: Words = np.array([chess.between(a, b) for a in range(64) for b in range(64)], dtype=U64)
ON_DIAGONAL: npt.NDArray[np.bool_] = np.array(
    [bool(chess.BB_DIAG_ATTACKS[a][0] & chess.BB_SQUARES[b]) for a in range(64) for b in range(64)])
ON_LINE: npt.NDArray[np.bool_] = np.array(
    [bool((chess.BB_RANK_ATTACKS[a][0] | chess.BB_FILE_ATTACKS[a][0]) & chess.BB_SQUARES[b])
     for a in range(64) for b in range(64)])

_STEPS = {"n": 8, "s": -8, "e": 1, "w": -1, "ne": 9, "nw": 7, "se": -7, "sw": -9}
ORTHO = ("n", "s", "e", "w")
DIAG = ("ne", "nw", "se", "sw")
_POSITIVE = {"n", "e", "ne", "nw"}


def _ray(square: int, direction: str) -> int:
    df = {"n": 0, "s": 0, "e": 1, "w": -1, "ne": 1, "nw": -1, "se": 1, "sw": -1}[direction]
    dr = {"n": 1, "s": -1, "e": 0, "w": 0, "ne": 1, "nw": 1, "se": -1, "sw": -1}[direction]
    f, r = chess.square_file(square) + df, chess.square_rank(square) + dr
    bb = 0
    while 0 <= f <= 7 and 0 <= r <= 7:
        bb |= chess.BB_SQUARES[chess.square(f, r)]
        f, r = f + df, r + dr
    return bb


RAYS: dict[str, Words] = {d: np.array([_ray(s, d) for s in range(64)] + [0], dtype=U64) for d in _STEPS}


def _bits(word: int) -> Iterator[int]:
    while word:
        low = word & -word
        yield low.bit_length() - 1
        word ^= low


def _or(words: Words) -> int:
    return int(np.bitwise_or.reduce(words)) if len(words) else 0


def ray_attacks(square: Ints | int, occupied: Words, directions: Sequence[str]) -> Words:
    """The squares a slider on ``square`` (one per board, or the same on all) attacks along ``directions``,
    stopping at (and including) the first occupied square: per board, from its ``occupied``."""
    out = np.zeros(occupied.shape, dtype=U64)
    for d in directions:
        ray = RAYS[d][square]
        blockers = occupied & ray
        if d in _POSITIVE:  # the first blocker is the lowest set bit
            low = blockers & (~blockers + U64(1))
            out |= ray & ((low << U64(1)) - U64(1))
        else:  # the first blocker is the highest set bit: smear it downwards, keep the squares at or above it
            x = blockers
            for shift in (1, 2, 4, 8, 16, 32):
                x |= x >> U64(shift)
            out |= ray & ~(x >> U64(1))
    return out


def attackers(planes: Words, color: chess.Color, square: Ints | int, occupied: Words | None = None) -> Words:
    """Per board, the squares of ``color``'s pieces attacking ``square`` (python-chess's ``attackers_mask``)."""
    occ = planes[WHITE_OCC] | planes[BLACK_OCC] if occupied is None else occupied
    by = planes[WHITE_OCC if color else BLACK_OCC]
    queens = planes[QUEENS]
    out = KNIGHT_ATT[square] & planes[KNIGHTS]
    out |= KING_ATT[square] & planes[KINGS]
    out |= PAWN_ATT[int(not color)][square] & planes[PAWNS]
    out |= ray_attacks(square, occ, DIAG) & (planes[BISHOPS] | queens)
    out |= ray_attacks(square, occ, ORTHO) & (planes[ROOKS] | queens)
    return out & by


def piece_type_at(planes: Words, square: Ints) -> npt.NDArray[np.int8]:
    """Per board, the piece type on ``square`` (0: empty)."""
    bit = BIT[square]
    out = np.zeros(bit.shape, dtype=np.int8)
    for t in range(6):
        out[(planes[t] & bit) != 0] = t + 1
    return out


def _square_of(word: Words) -> Ints:
    """The index of the highest set bit of each word (64 for 0), as python-chess's ``msb``."""
    out = np.full(word.shape, 64, dtype=np.int64)
    nz = word != 0
    x = word[nz]
    idx = np.zeros(x.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        high = x >> U64(shift)
        move = high != 0
        idx[move] += shift
        x = np.where(move, high, x)
    out[nz] = idx
    return out


def from_boards(boards: Sequence[chess.Board]) -> Words:
    """The ``(10, N)`` planes of ``boards`` (en passant kept only when an en-passant capture exists)."""
    out = np.empty((PLANES, len(boards)), dtype=U64)
    for i, b in enumerate(boards):
        ep = b.ep_square if b.ep_square is not None and b.has_pseudo_legal_en_passant() else NO_EP
        out[:, i] = (b.pawns, b.knights, b.bishops, b.rooks, b.queens, b.kings, b.occupied_co[chess.WHITE],
                     b.occupied_co[chess.BLACK], b.clean_castling_rights(), ep)
    return out


def to_board(column: Words, turn: chess.Color, fullmove: int = 1) -> chess.Board:
    """One column of planes as a ``chess.Board`` (no move history, half-move clock 0)."""
    board = chess.Board.empty()
    c = [int(x) for x in column]
    board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings = c[:6]
    board.occupied_co[chess.WHITE], board.occupied_co[chess.BLACK] = c[WHITE_OCC], c[BLACK_OCC]
    board.occupied = c[WHITE_OCC] | c[BLACK_OCC]
    board.promoted = 0
    board.castling_rights = c[CASTLING]
    board.ep_square = c[EP] if c[EP] != NO_EP else None
    board.turn = turn
    board.halfmove_clock = 0
    board.fullmove_number = fullmove
    return board


@dataclass
class Moves:
    """Moves on a set of boards, one per entry: the board (column) it is played on, from/to squares (-1: a pass),
    promotion piece type (0: none), the moving piece's type (0: a pass), the square of the piece it captures
    (-1: none) and a weight."""

    parent: Ints
    frm: Ints
    to: Ints
    promo: Ints
    piece: Ints
    cap: Ints
    weight: Floats

    def __len__(self) -> int:
        return len(self.parent)

    def chunks(self, size: int) -> Iterator[tuple[int, Moves]]:
        """``(start, moves[start:start + size])`` over all of them: a step's temporaries stay bounded."""
        for start in range(0, len(self), size):
            yield start, self.take(np.arange(start, min(start + size, len(self))))

    def take(self, idx: Ints | npt.NDArray[np.bool_]) -> Moves:
        return Moves(self.parent[idx], self.frm[idx], self.to[idx], self.promo[idx], self.piece[idx],
                     self.cap[idx], self.weight[idx])

    def to_move(self, i: int) -> chess.Move | None:
        if self.frm[i] < 0:
            return None
        return chess.Move(int(self.frm[i]), int(self.to[i]), int(self.promo[i]) or None)


def generate(planes: Words, turn: chess.Color) -> Moves:
    """Every move the side to move can *take* on each board (as :func:`bridge.games.rbc_belief.rbc_moves`: the
    pseudo-legal moves with all promotions, castles through check, the pass), with the square it captures on."""
    n = planes.shape[1]
    own = planes[WHITE_OCC if turn else BLACK_OCC]
    their = planes[BLACK_OCC if turn else WHITE_OCC]
    occ = own | their
    parts: list[tuple[Ints, int, int, int, int]] = []  # (boards, from, to, promotion, piece)
    ep_parts: list[tuple[Ints, int, int]] = []

    def add(rows: Ints, frm: int, to: int, piece: int, promote: bool = False) -> None:
        if not len(rows):
            return
        if promote:
            for promo in (chess.QUEEN, chess.ROOK, chess.BISHOP, chess.KNIGHT):
                parts.append((rows, frm, to, promo, piece))
        else:
            parts.append((rows, frm, to, 0, piece))

    for piece in (chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING):
        mine = planes[piece - 1] & own
        for sq in _bits(_or(mine)):
            rows = np.flatnonzero(mine & BIT[sq])
            if piece == chess.KNIGHT:
                targets = KNIGHT_ATT[sq] & ~own[rows]
            elif piece == chess.KING:
                targets = KING_ATT[sq] & ~own[rows]
            else:
                dirs = DIAG if piece == chess.BISHOP else ORTHO if piece == chess.ROOK else DIAG + ORTHO
                targets = ray_attacks(sq, occ[rows], dirs) & ~own[rows]
            for to in _bits(_or(targets)):
                add(rows[(targets & BIT[to]) != 0], sq, to, piece)
    # castles (RBC: through check allowed): the rights (a king on e1/e8, a rook in its corner) and nothing between
    home = chess.E1 if turn else chess.E8
    rights = planes[CASTLING] & BACKRANK[int(turn)]
    for rook, to in ((chess.H1, chess.G1), (chess.A1, chess.C1)):
        if not turn:
            rook, to = chess.square_mirror(rook), chess.square_mirror(to)
        rows = np.flatnonzero(((rights & BIT[rook]) != 0) & ((occ & U64(chess.between(home, rook))) == 0))
        add(rows, home, to, chess.KING)
    # pawns
    up = 8 if turn else -8
    start, last, ep_rank = (1, 7, 4) if turn else (6, 0, 3)
    pawns = planes[PAWNS] & own
    for sq in _bits(_or(pawns)):
        rows = np.flatnonzero(pawns & BIT[sq])
        if chess.square_rank(sq) == last:  # a pawn on its last rank (only a repaired board has one): no moves
            continue
        one = sq + up
        free = rows[(occ[rows] & BIT[one]) == 0]
        add(free, sq, one, chess.PAWN, chess.square_rank(one) == last)
        if chess.square_rank(sq) == start:
            add(free[(occ[free] & BIT[one + up]) == 0], sq, one + up, chess.PAWN)
        for to in _bits(int(PAWN_ATT[int(turn)][sq])):
            add(rows[(their[rows] & BIT[to]) != 0], sq, to, chess.PAWN, chess.square_rank(to) == last)
            if chess.square_rank(sq) == ep_rank:
                ep_rows = rows[planes[EP][rows] == to]
                if len(ep_rows):
                    ep_parts.append((ep_rows, sq, to))
    sizes = [len(p[0]) for p in parts] + [len(p[0]) for p in ep_parts] + [n]
    total = sum(sizes)
    parent = np.empty(total, dtype=np.int32)
    frm = np.empty(total, dtype=np.int8)
    to_ = np.empty(total, dtype=np.int8)
    promo = np.zeros(total, dtype=np.int8)
    piece_ = np.zeros(total, dtype=np.int8)
    cap = np.full(total, -1, dtype=np.int8)
    at = 0
    for boards, f, t, p, pc in parts:
        k = len(boards)
        parent[at:at + k], frm[at:at + k], to_[at:at + k], promo[at:at + k], piece_[at:at + k] = boards, f, t, p, pc
        at += k
    normal = at
    for boards, f, t in ep_parts:
        k = len(boards)
        parent[at:at + k], frm[at:at + k], to_[at:at + k], piece_[at:at + k] = boards, f, t, chess.PAWN
        cap[at:at + k] = t - up
        at += k
    parent[at:] = np.arange(n)
    frm[at:] = -1
    to_[at:] = -1
    hit = (their[parent[:normal]] & BIT[to_[:normal]]) != 0
    cap[:normal][hit] = to_[:normal][hit]
    return Moves(parent, frm, to_, promo, piece_, cap, np.ones(total))


def play(planes: Words, moves: Moves, turn: chess.Color) -> Words:
    """The boards after each of ``moves`` (played by ``turn`` on column ``moves.parent``), as python-chess's
    ``push`` leaves them (castling rights and en passant as :func:`from_boards` keeps them)."""
    out = planes[:, moves.parent]
    passing = moves.frm < 0
    fb = BIT[np.where(passing, 64, moves.frm)]
    tb = BIT[np.where(passing, 64, moves.to)]
    cb = BIT[np.where(moves.cap < 0, 64, moves.cap)]
    clear = ~(fb | tb | cb)
    for t in range(6):
        out[t] &= clear
    placed = np.where(moves.promo > 0, moves.promo, moves.piece)
    for t in range(6):
        out[t] |= np.where(placed == t + 1, tb, U64(0))
    own, their = (WHITE_OCC, BLACK_OCC) if turn else (BLACK_OCC, WHITE_OCC)
    out[own] = (out[own] & ~fb) | tb
    out[their] &= ~(tb | cb)
    king = moves.piece == chess.KING
    castle = king & (np.abs(moves.to - moves.frm) == 2)
    if castle.any():
        kingside = moves.to > moves.frm
        rook_from = BIT[np.where(castle, np.where(kingside, moves.frm + 3, moves.frm - 4), 64)]
        rook_to = BIT[np.where(castle, np.where(kingside, moves.frm + 1, moves.frm - 1), 64)]
        out[ROOKS] = (out[ROOKS] & ~rook_from) | rook_to
        out[own] = (out[own] & ~rook_from) | rook_to
    out[CASTLING] &= ~(fb | tb)
    out[CASTLING] &= np.where(king, U64(~BACKRANK[int(turn)] & chess.BB_ALL), U64(chess.BB_ALL))
    # en passant: after a double pawn push, when a pawn of the side to move next can take it
    double = (moves.piece == chess.PAWN) & (np.abs(moves.to - moves.frm) == 16)
    ep = np.full(len(moves), NO_EP, dtype=np.int64)
    if double.any():
        square = (moves.frm[double] + moves.to[double]) // 2
        capturers = PAWN_ATT[int(turn)][square] & out[PAWNS][double] & out[their][double]
        ep[double] = np.where(capturers != 0, square, NO_EP)
    out[EP] = ep.astype(U64)
    return out


def hits(planes: Words, parent: Ints, frm: Ints, to: Ints, placed: Ints, target: Ints,
         turn: chess.Color) -> npt.NDArray[np.bool_]:
    """Per move (``turn``'s piece of type ``placed`` moved from ``frm`` to ``to`` on board ``parent``), whether it
    attacks ``target`` from its new square (the reference's ``_attacks_after``: discovered attacks not counted)."""
    out = np.zeros(len(to), dtype=bool)
    steppers = {chess.KNIGHT: KNIGHT_ATT, chess.PAWN: PAWN_ATT[int(turn)], chess.KING: KING_ATT}
    for stepper, table in steppers.items():
        sel = placed == stepper
        if sel.any():
            out[sel] = (table[to[sel]] & BIT[target[sel]]) != 0
    sliders = np.flatnonzero((placed == chess.BISHOP) | (placed == chess.ROOK) | (placed == chess.QUEEN))
    if len(sliders):
        kind = placed[sliders]
        line = to[sliders].astype(np.int64) * 64 + target[sliders]  # (from square, to square) pairs
        aligned = ((kind != chess.ROOK) & ON_DIAGONAL[line]) | ((kind != chess.BISHOP) & ON_LINE[line])
        cand, line = sliders[aligned], line[aligned]
        p = parent[cand]
        occ_after = ((planes[WHITE_OCC][p] | planes[BLACK_OCC][p]) & ~BIT[frm[cand]]) | BIT[to[cand]]
        out[cand] = (BETWEEN[line] & occ_after) == 0
    return out


def priors(planes: Words, moves: Moves, turn: chess.Color) -> Floats:
    """The opponent model's relative likelihood of each move (:func:`bridge.games.rbc_belief.opponent_move_prior`),
    before the escapes of :func:`escape_priors`."""
    out = np.ones(len(moves))
    frm, to = moves.frm, moves.to
    passing = frm < 0
    promoted = moves.promo > 0
    king_moves = moves.piece == chess.KING
    plain = ~passing & ~promoted & ~king_moves
    rank_from, rank_to = frm // 8, to // 8
    forward = (rank_to - rank_from) * (1 if turn else -1)
    out[plain & (forward > 0)] = 1.3
    out[plain & (forward < 0)] = 0.7
    minor = (moves.piece == chess.KNIGHT) | (moves.piece == chess.BISHOP)
    out[plain & minor & (rank_from == (0 if turn else 7))] *= DEVELOP_PRIOR
    out[plain & (moves.cap >= 0)] *= 1.5
    ours = planes[BLACK_OCC if turn else WHITE_OCC]
    king_sq = _square_of(planes[KINGS] & ours)[moves.parent]  # per board, then per move
    idx = np.flatnonzero(plain & (king_sq < 64))
    if len(idx):
        frm_i, to_i, piece, ksq = frm[idx], to[idx], moves.piece[idx], king_sq[idx]
        check = hits(planes, moves.parent[idx], frm_i, to_i, piece, ksq, turn)
        knights = piece == chess.KNIGHT
        factor = np.where(check, CHECK_PRIOR, 1.0)
        k = np.flatnonzero(knights & ~check)
        if len(k):
            distance = KNIGHT_DIST.ravel()
            approach = distance[ksq[k] * 64 + to_i[k]] < distance[ksq[k] * 64 + frm_i[k]]
            threat = (KNIGHT_ATT[to_i[k]] & KNIGHT_ATT[ksq[k]]) != 0
            factor[k] *= np.where(approach, KNIGHT_APPROACH_PRIOR, 1.0) * np.where(threat, KNIGHT_THREAT_PRIOR, 1.0)
        out[idx] *= factor
    out[passing] = 0.4
    out[promoted] = np.where(moves.promo[promoted] == chess.QUEEN, 1.5, 0.05)
    castles = king_moves & ~promoted & (np.abs(to - frm) == 2)
    out[king_moves & ~promoted] = np.where(castles[king_moves & ~promoted], 1.5, 0.6)
    return out


def escape_priors(planes: Words, moves: Moves, prior: Floats, turn: chess.Color) -> Floats:
    """Where the mover's king is attacked, the moves that leave it out of reach share at least ``ESCAPE_SHARE``
    of that board's prior (:func:`bridge.games.rbc_belief._escape_priors`)."""
    mover_occ = planes[WHITE_OCC if turn else BLACK_OCC]
    kings = planes[KINGS] & mover_occ
    ksq = _square_of(kings)
    attacked = np.zeros(planes.shape[1], dtype=bool)
    has = ksq < 64
    if has.any():
        attacked[has] = attackers(planes[:, has], not turn, ksq[has]) != 0
    if not attacked.any():
        return prior
    sel = np.flatnonzero(attacked[moves.parent])
    sub = moves.take(sel)
    after = play(planes, sub, turn)
    king_after = _square_of(after[KINGS] & after[WHITE_OCC if turn else BLACK_OCC])
    escapes = np.zeros(len(sel), dtype=bool)
    ok = king_after < 64
    if ok.any():
        escapes[ok] = attackers(after[:, ok], not turn, king_after[ok]) == 0
    n = planes.shape[1]
    p = prior[sel]
    escape_total = np.bincount(sub.parent, weights=np.where(escapes, p, 0.0), minlength=n)
    all_total = np.bincount(sub.parent, weights=p, minlength=n)
    stay_total = all_total - escape_total
    adjust = (escape_total > 0) & (stay_total > 0) & (escape_total < ESCAPE_SHARE * (escape_total + stay_total))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(adjust, ESCAPE_SHARE * stay_total / ((1 - ESCAPE_SHARE) * escape_total), 1.0)
    out = prior.copy()
    out[sel] = np.where(escapes, p * scale[sub.parent], p)
    return out


def dedupe(planes: Words, weights: Floats) -> tuple[Words, Floats]:
    """One column per distinct position (the weights of duplicates add up), in the order first seen.

    The columns are sorted by a 64-bit hash of their words and equal neighbours merged; should two different
    positions share a hash (never seen, but possible), they are sorted on all their words instead."""
    n = planes.shape[1]
    if n <= 1:
        return planes, weights
    h = np.zeros(n, dtype=U64)
    for k in range(PLANES):
        h ^= planes[k]
        h *= U64(0x9E3779B97F4A7C15)
        h ^= h >> U64(29)
    order = np.argsort(h, kind="stable")
    rows = planes[:, order]
    same_hash = h[order][1:] == h[order][:-1]
    same = same_hash.copy()
    for k in range(PLANES):
        same &= rows[k, 1:] == rows[k, :-1]
    if (same != same_hash).any():  # a collision: sort on the words themselves
        order = np.lexsort(planes[::-1])
        rows = planes[:, order]
        same = np.ones(n - 1, dtype=bool)
        for k in range(PLANES):
            same &= rows[k, 1:] == rows[k, :-1]
    if not same.any():
        return planes, weights
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    summed = np.add.reduceat(weights[order], starts)
    first = order[starts]  # the stable sort puts each position's first column first
    seen = np.argsort(first, kind="stable")
    return planes[:, first[seen]], summed[seen]


def sampling_keys(weights: Floats, rng: np.random.Generator) -> Floats:
    """Efraimidis-Spirakis keys ``log(u) / w``: the ``k`` largest are a draw of ``k`` items without replacement
    proportional to weight (and the ``k`` largest of a union are among the ``k`` largest of each part)."""
    u = rng.random(len(weights))
    u[u == 0] = 1e-300
    with np.errstate(divide="ignore"):
        return np.where(weights > 0, np.log(u) / np.where(weights > 0, weights, 1.0), -np.inf)


def top(keys: Floats, k: int) -> Ints:
    """The indices of the ``k`` largest keys, in index order."""
    if k >= len(keys):
        return np.arange(len(keys))
    return np.sort(np.argpartition(-keys, k - 1)[:k])


def thin(weights: Floats, k: int, rng: np.random.Generator) -> tuple[Ints, Floats]:
    """``k`` indices drawn without replacement proportionally to weight (Efraimidis-Spirakis keys), with the weight
    each stands for (:func:`bridge.games.rbc_belief._thin`)."""
    n = len(weights)
    if k >= n:
        return np.arange(n), weights.copy()
    idx = top(sampling_keys(weights, rng), k)
    floor = weights.sum() / k
    return idx, np.maximum(weights[idx], floor)


def _joined(parts: Sequence[Moves]) -> Moves:
    if len(parts) == 1:
        return parts[0]
    return Moves(*(np.concatenate([getattr(p, f) for p in parts])
                   for f in ("parent", "frm", "to", "promo", "piece", "cap", "weight")))


def _weight_by_mask(masks: Words, weights: Floats) -> dict[int, float]:
    """The total weight of each nonzero mask (attackers of our king: :meth:`Belief.king_threats`)."""
    nz = np.flatnonzero(masks)
    if not len(nz):
        return {}
    uniq, inverse = np.unique(masks[nz], return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=weights[nz], minlength=len(uniq))
    return {int(mk): float(s) for mk, s in zip(uniq.tolist(), sums.tolist(), strict=True)}


class _Boards(Sequence[chess.Board]):
    """The belief's boards as ``chess.Board`` objects, made when asked for (the repairs read a few of them)."""

    def __init__(self, belief: ArrayBelief) -> None:
        self._belief = belief

    def __len__(self) -> int:
        return self._belief.planes.shape[1]

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._belief.board(int(i))


class ArrayBelief(Belief):
    """:class:`bridge.games.rbc_belief.Belief` with its boards held as arrays (see the module doc): the same
    interface and the same results, exact at far larger sizes."""

    # ~25 us a board a turn here, ~1 s a turn at 40,000 boards: a turn's bookkeeping then costs about 0.25 % of the
    # clock left, under a tenth of the turn's share of it; a replay of 5,000 is as quick as 200 python-chess boards
    boards_per_second = 100
    replay_boards = 5000

    def __init__(self, color: chess.Color, board: chess.Board, *, max_boards: int = DEFAULT_CAPS["arrays"][0],
                 rng: random.Random | None = None, sense_sample: int = 800,
                 crisis_weight: float = CRISIS_WEIGHT, max_children: int = DEFAULT_CAPS["arrays"][1],
                 king_guard: float = KING_GUARD) -> None:
        super().__init__(color, board, max_boards=max_boards, rng=rng, sense_sample=sense_sample,
                         crisis_weight=crisis_weight, max_children=max_children, king_guard=king_guard)
        self.np_rng = np.random.default_rng(self.rng.getrandbits(64))

    def _start(self, board: chess.Board) -> None:
        self.planes: Words = from_boards([board])
        self.w: Floats = np.ones(1)
        self.turn = board.turn
        self.fullmove = board.fullmove_number
        self._moves: Moves | None = None

    # --- the boards as chess.Board objects (for the engine, the sense's sample and the repairs) ----------------
    @property
    def boards(self) -> Sequence[chess.Board]:  # type: ignore[override]
        return _Boards(self)

    @property
    def weights(self) -> list[float]:  # type: ignore[override]
        return [float(x) for x in self.w]

    def _heaviest(self, k: int) -> list[int]:
        return [int(i) for i in np.argsort(-self.w, kind="stable")[:k]]

    def board(self, i: int) -> chess.Board:
        return to_board(self.planes[:, i], self.turn, self.fullmove)

    def __len__(self) -> int:
        return len(self._moves) if self._moves is not None else self.planes.shape[1]

    def nbytes(self) -> int:
        """The memory the boards (and the pending moves) hold, in bytes."""
        size = self.planes.nbytes + self.w.nbytes
        if self._moves is not None:
            m = self._moves
            size += sum(a.nbytes for a in (m.parent, m.frm, m.to, m.promo, m.piece, m.cap, m.weight))
        return size

    def needs_opponent_move(self) -> bool:
        return self._moves is None and self.planes.shape[1] > 0 and self.turn != self.color

    def weighted(self) -> list[tuple[chess.Board, float]]:
        self.materialize()
        return [(self.board(i), float(w)) for i, w in enumerate(self.w)]

    def sample(self, k: int) -> list[tuple[chess.Board, float]]:
        self.materialize()
        idx, weights = thin(self.w, k, self.np_rng)
        out = [(self.board(int(i)), float(w)) for i, w in zip(idx, weights, strict=True)]
        out.sort(key=lambda bw: -bw[1])
        return out

    # --- bookkeeping -------------------------------------------------------------------------------------------
    def _set(self, boards: list[chess.Board], weights: list[float], *, dedup: bool = True) -> None:
        """The reference's repairs end here with ``chess.Board`` lists."""
        if boards:
            self.turn = boards[0].turn
            self.fullmove = boards[0].fullmove_number
        self._set_arrays(from_boards(boards), np.array(weights, dtype=np.float64), dedup=dedup)

    def _set_arrays(self, planes: Words, weights: Floats, *, dedup: bool = True) -> None:
        if dedup:
            planes, weights = dedupe(planes, weights)
        if planes.shape[1] > self.max_boards:
            idx, weights = self._draw(weights, self.max_boards)
            planes = planes[:, idx]
        total = float(weights.sum())
        if total <= 0 or not math.isfinite(total):
            weights = np.ones(planes.shape[1])
            total = float(planes.shape[1])
        self.planes = planes
        self.w = weights / total
        self.last.after = planes.shape[1]

    def _draw(self, weights: Floats, k: int) -> tuple[Ints, Floats]:
        """``k`` of more than ``k`` items drawn by weight (:func:`thin`); the belief is no longer exact."""
        self._sampled()
        return thin(weights, k, self.np_rng)

    def _advance_turn(self) -> None:
        if not self.turn:
            self.fullmove += 1
        self.turn = not self.turn

    def _children(self, moves: Moves) -> Words:
        """The boards after ``moves`` (played by the side to move), built a chunk at a time."""
        if len(moves) <= CHUNK:
            return play(self.planes, moves, self.turn)
        return np.concatenate([play(self.planes, part, self.turn) for _, part in moves.chunks(CHUNK)], axis=1)

    def materialize(self) -> None:
        moves = self._moves
        if moves is None:
            return
        self._moves = None
        if len(moves) > self.max_boards:
            idx, weights = self._draw(moves.weight, self.max_boards)
            moves = moves.take(idx)
            moves.weight = weights
        planes = self._children(moves)
        self._advance_turn()
        self._set_arrays(planes, moves.weight)

    # --- the opponent's move -----------------------------------------------------------------------------------
    def opponent_moved(self, capture_square: int | None) -> None:
        """As the reference's, a chunk of boards at a time: the opponent's moves from ``PARENT_CHUNK`` boards are
        generated, weighted and matched to the capture square together, and when more than ``max_children`` match
        over all, only those that can still be drawn (the largest sampling keys) are held meanwhile."""
        self.materialize()
        n = self.planes.shape[1]
        self.last = StepStats(before=n)
        planes, turn = self.planes, self.turn
        want = -1 if capture_square is None else capture_square
        parts: list[Moves] = []
        keys: list[Floats] = []
        count = held = 0
        total = 0.0
        for start in range(0, n, PARENT_CHUNK):
            sub = planes[:, start:start + PARENT_CHUNK]
            moves = generate(sub, turn)
            prior = escape_priors(sub, moves, priors(sub, moves, turn), turn)
            totals = np.bincount(moves.parent, weights=prior, minlength=sub.shape[1])
            moves.weight = self.w[start + moves.parent] * prior / totals[moves.parent]
            moves = moves.take(np.flatnonzero(moves.cap == want))
            moves.parent += start
            count += len(moves)
            total += float(moves.weight.sum())
            parts.append(moves)
            keys.append(sampling_keys(moves.weight, self.np_rng))
            held += len(moves)
            if held > self.max_children + self.max_children // 4:  # bound the memory: the rest cannot be drawn
                merged, merged_keys = _joined(parts), np.concatenate(keys)
                best = top(merged_keys, self.max_children)
                parts, keys, held = [merged.take(best)], [merged_keys[best]], len(best)
        if not count:
            self._repair_capture(capture_square)
            return
        moves = _joined(parts)
        if count > self.max_children:
            moves = moves.take(top(np.concatenate(keys), self.max_children))
            moves.weight = np.maximum(moves.weight, total / self.max_children)
            self._sampled()
        self._moves = moves
        self._threats = self._threats_after(moves)
        self.last.after = len(moves)

    def _threats_after(self, moves: Moves) -> dict[int, float]:
        """Per child, the squares from which the opponent attacks our king (the reference's ``_attackers_after``:
        the moved piece's new square if it attacks it, the attackers already there but its old square), summed
        by weight per set of squares."""
        ours = self.planes[WHITE_OCC if self.color else BLACK_OCC]
        ksq = _square_of(self.planes[KINGS] & ours)  # per board (the same square on all: our pieces are known)
        has = ksq < 64
        before_boards = np.zeros(self.planes.shape[1], dtype=U64)
        if has.any():
            before_boards[has] = attackers(self.planes[:, has], self.opponent, ksq[has])
        total: dict[int, float] = {}
        for _, part in moves.chunks(CHUNK):
            out = before_boards[part.parent]
            idx = np.flatnonzero(part.frm >= 0)
            frm, to = part.frm[idx], part.to[idx]
            out[idx] &= ~BIT[frm]
            parent = part.parent[idx]
            placed = np.where(part.promo[idx] > 0, part.promo[idx], part.piece[idx])
            hit = hits(self.planes, parent, frm, to, placed, ksq[parent], self.turn)
            out[idx[hit]] |= BIT[to[hit]]
            for mask, weight in _weight_by_mask(out, part.weight).items():
                total[mask] = total.get(mask, 0.0) + weight
        return total

    # --- sensing -----------------------------------------------------------------------------------------------
    def _sense_sample(self) -> tuple[list[chess.Board], list[float]]:
        if self._moves is None:
            idx, weights = thin(self.w, self.sense_sample, self.np_rng)
            return [self.board(int(i)) for i in idx], [float(w) for w in weights]
        idx, weights = thin(self._moves.weight, self.sense_sample, self.np_rng)
        picked = self._moves.take(idx)
        planes = play(self.planes, picked, self.turn)
        turn = not self.turn
        fullmove = self.fullmove + (0 if self.turn else 1)
        return [to_board(planes[:, i], turn, fullmove) for i in range(planes.shape[1])], [float(w) for w in weights]

    def king_threats(self) -> dict[int, float]:
        if self._moves is not None:
            return dict(self._threats)
        ours = self.planes[WHITE_OCC if self.color else BLACK_OCC]
        ksq = _square_of(self.planes[KINGS] & ours)
        has = ksq < 64
        if not has.any():
            return {}
        masks = np.zeros(self.planes.shape[1], dtype=U64)
        masks[has] = attackers(self.planes[:, has], self.opponent, ksq[has])
        return _weight_by_mask(masks, self.w)

    def contains(self, board: chess.Board) -> bool:
        self.materialize()
        column = from_boards([board])[:, 0]
        return bool(np.any(np.all(self.planes == column[:, None], axis=0)))

    def king_captures(self, actions: Iterable[chess.Move]) -> dict[chess.Move, float]:
        """As the reference's, without making a ``chess.Board`` of every board: the boards are grouped by where the
        opponent's king stands and which of our pieces attack it."""
        allowed = set(actions)
        self.materialize()
        planes = self.planes
        ksq = _square_of(planes[KINGS] & planes[BLACK_OCC if self.color else WHITE_OCC])
        has = np.flatnonzero(ksq < 64)
        if not len(has):
            return {}
        masks = attackers(planes[:, has], self.color, ksq[has])
        hit = masks != 0
        has, masks = has[hit], masks[hit]
        if not len(has):
            return {}
        keys = np.stack([ksq[has].astype(U64), masks], axis=1)
        groups, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        sums = np.bincount(inverse.ravel(), weights=self.w[has], minlength=len(groups))
        out: dict[chess.Move, float] = {}
        for (king, mask), i, weight in zip(groups.tolist(), first.tolist(), sums.tolist(), strict=True):
            pawns = int(planes[PAWNS][has[i]])
            for attacker in _bits(mask):
                promotion = chess.QUEEN if pawns & chess.BB_SQUARES[attacker] and chess.square_rank(king) in (0, 7) \
                    else None
                move = chess.Move(attacker, king, promotion)
                if move in allowed:
                    out[move] = out.get(move, 0.0) + weight
        return out

    @staticmethod
    def _window_matches(planes: Words, observation: Observation) -> npt.NDArray[np.bool_]:
        win, white, black = _expected_masks(observation)
        w = U64(win)
        ok = np.ones(planes.shape[1], dtype=bool)
        for t in range(6):
            ok &= (planes[t] & planes[WHITE_OCC] & w) == U64(white[t])
            ok &= (planes[t] & planes[BLACK_OCC] & w) == U64(black[t])
        return ok

    def sensed(self, observation: Observation) -> None:
        if not observation:
            self.materialize()
            return
        moves = self._moves
        self._moves = None
        if moves is None:
            self.last = StepStats(before=self.planes.shape[1])
            matching = np.flatnonzero(self._window_matches(self.planes, observation))
            if len(matching):
                self._set_arrays(self.planes[:, matching], self.w[matching], dedup=False)
            else:
                self._repair_sense([(self.board(i), float(self.w[i])) for i in
                                    self._heaviest(max(200, self.max_boards // 10))], observation)
            return
        self.last.before = len(moves)
        candidates = moves.take(self._may_match(moves, observation))
        kept_planes: list[Words] = []
        kept_weights: list[Floats] = []
        held = 0
        for _, part in candidates.chunks(CHUNK):
            planes = play(self.planes, part, self.turn)
            ok = self._window_matches(planes, observation)
            kept_planes.append(planes[:, ok])
            kept_weights.append(part.weight[ok])
            held += int(ok.sum())
            if held > 2 * self.max_boards:  # bound the memory: merge duplicates, and draw if still too many
                merged, weights = dedupe(np.concatenate(kept_planes, axis=1), np.concatenate(kept_weights))
                if merged.shape[1] > self.max_boards:
                    idx, weights = self._draw(weights, self.max_boards)
                    merged = merged[:, idx]
                kept_planes, kept_weights, held = [merged], [weights], merged.shape[1]
        if not kept_planes:
            kept_planes, kept_weights = [np.empty((PLANES, 0), dtype=U64)], [np.empty(0)]
        planes = np.concatenate(kept_planes, axis=1)
        if planes.shape[1]:
            self._advance_turn()
            self._set_arrays(planes, np.concatenate(kept_weights))
            return
        top = moves.take(np.argsort(-moves.weight, kind="stable")[:max(200, self.max_boards // 10)])
        children = play(self.planes, top, self.turn)
        self._advance_turn()
        self._repair_sense([(self.board_of(children, i), float(top.weight[i])) for i in range(len(top))],
                           observation)

    def _may_match(self, moves: Moves, observation: Observation) -> npt.NDArray[np.bool_]:
        """Per pending move, False when its board cannot show what the sense saw: the parent board differs from
        it in the window on a square the move leaves alone (the reference's shortcut in ``sensed``)."""
        win_bb, white, black = _expected_masks(observation)
        win = U64(win_bb)
        planes = self.planes
        diff = np.zeros(planes.shape[1], dtype=U64)
        for t in range(6):
            diff |= ((planes[t] & planes[WHITE_OCC]) ^ U64(white[t])) & win
            diff |= ((planes[t] & planes[BLACK_OCC]) ^ U64(black[t])) & win
        out = np.empty(len(moves), dtype=bool)
        for start, part in moves.chunks(CHUNK):
            passing = part.frm < 0
            touched = BIT[np.where(passing, 64, part.frm)] | BIT[np.where(passing, 64, part.to)] | \
                BIT[np.where(part.cap < 0, 64, part.cap)]
            castle = (part.piece == chess.KING) & (np.abs(part.to - part.frm) == 2)
            touched[castle] |= U64(BACKRANK[int(self.turn)])  # the rook moves too
            out[start:start + len(part)] = (diff[part.parent] & ~touched) == 0
        return out

    def board_of(self, planes: Words, i: int) -> chess.Board:
        return to_board(planes[:, i], self.turn, self.fullmove)

    # --- our move ----------------------------------------------------------------------------------------------
    def moved(self, requested: chess.Move | None, taken: chess.Move | None, capture_square: int | None,
              *, capture_known: bool = True) -> None:
        self.materialize()
        self.last = StepStats(before=self.planes.shape[1])
        planes = self.planes
        keep = self._explains(requested, taken, capture_square, capture_known)
        idx = np.flatnonzero(keep)
        if len(idx):
            sub = planes[:, idx]
            moves = self._our_move(sub, taken)
            after = play(sub, moves, self.turn)
            weights = self.w[idx]
            their = after[BLACK_OCC if self.color else WHITE_OCC]
            alive = (after[KINGS] & their) != 0
            self._advance_turn()
            if alive.any():
                self._set_arrays(after[:, alive], weights[alive])
            else:  # we captured the king: the game is over; keep the boards as they are
                self._set_arrays(after, weights)
            return
        self._repair_move(requested, taken, capture_square)

    def _explains(self, requested: chess.Move | None, taken: chess.Move | None, capture_square: int | None,
                  capture_known: bool) -> npt.NDArray[np.bool_]:
        """Per board, whether the arbiter would have turned ``requested`` into ``taken`` with ``capture_square``
        there.  That depends only on what stands on the move's path (and the en-passant square): the boards are
        grouped by it, and each group is settled on one of its boards by the arbiter's own functions."""
        planes = self.planes
        n = planes.shape[1]
        if requested is None:
            return np.full(n, taken is None)
        path = chess.BB_SQUARES[requested.from_square] | chess.BB_SQUARES[requested.to_square] | \
            chess.between(requested.from_square, requested.to_square)
        if abs(chess.square_file(requested.from_square) - chess.square_file(requested.to_square)) == 2:
            path |= chess.BB_RANKS[chess.square_rank(requested.from_square)]  # a castle: king to rook
        occ = (planes[WHITE_OCC] | planes[BLACK_OCC]) & U64(path)
        sig = np.stack([occ, planes[EP]], axis=1)
        groups, first, inverse = np.unique(sig, axis=0, return_index=True, return_inverse=True)
        verdict = np.zeros(len(groups), dtype=bool)
        for g, i in enumerate(first):
            board = self.board(int(i))
            if taken_move(board, requested) != taken:
                continue
            if capture_known and (capture_square_of_move(board, taken) if taken is not None else None) != \
                    capture_square:
                continue
            verdict[g] = True
        return verdict[inverse.ravel()]

    def _our_move(self, planes: Words, taken: chess.Move | None) -> Moves:
        """``taken`` on every board of ``planes`` as :class:`Moves` (the piece it captures found per board)."""
        n = planes.shape[1]
        parent = np.arange(n, dtype=np.int32)
        if taken is None:
            minus = np.full(n, -1, dtype=np.int8)
            return Moves(parent, minus, minus.copy(), np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.int8),
                         minus.copy(), np.ones(n))
        piece = int(piece_type_at(planes[:, :1], np.array([taken.from_square]))[0])
        their = planes[BLACK_OCC if self.color else WHITE_OCC]
        cap = np.where((their & BIT[taken.to_square]) != 0, taken.to_square, -1).astype(np.int8)
        if piece == chess.PAWN and chess.square_file(taken.from_square) != chess.square_file(taken.to_square):
            ep = (planes[EP] == taken.to_square) & (cap < 0)
            cap[ep] = taken.to_square + (-8 if self.color else 8)
        full = np.full(n, 1, dtype=np.int8)
        return Moves(parent, full * taken.from_square, full * taken.to_square, full * (taken.promotion or 0),
                     full * piece, cap, np.ones(n))
