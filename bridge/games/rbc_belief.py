"""The belief of a Reconnaissance Blind Chess player: the set of boards consistent with everything observed.

Rules as the arbiter (``reconchess.LocalGame``) applies them: no check rules (moving into check is allowed, a king is
*captured*), castling through check is allowed, a requested move is revised on the true board
(``reconchess.utilities.revise_move``: sliders stop at the first piece in the way, blocked pawn moves and castles
become passes), a pawn reaching the last rank becomes a queen unless asked otherwise, and a pass is a move.
Our own pieces are always known exactly (we learn our taken move and where the opponent captured), so the boards
differ only in the opponent's pieces (and castling rights, en-passant squares and move counters).

Each turn:

1. :meth:`Belief.opponent_moved` expands every board by every move the opponent could have *taken* on it (all
   pseudo-legal moves, RBC castles, the pass) and keeps the children whose capture square matches what the arbiter
   reported (an opponent whose king we attack is expected to escape: :data:`ESCAPE_SHARE`; a capture nothing
   explains puts one of its pieces on the capture square).  Children are kept lazily as
   ``(parent, move, weight)`` until the sense result arrives.
2. :meth:`Belief.choose_sense` first keeps our king in sight: when the chance (over every possible move of the
   opponent, :meth:`Belief.king_threats`) that the opponent can capture our king next move is at least
   ``king_guard``, only the windows covering the most of it are considered (:meth:`Belief.guard_squares`).  Among
   those it picks the 3x3 window that minimises the expected remaining weight of boards
   (the sum over the window's possible contents of the squared weight of the boards showing it) plus what it
   leaves unsettled of whether either king is attacked (see :meth:`Belief.sense_scores`).  Only the inner 6x6
   centres are considered: a window centred on an edge square is a subset of the window next to it.
3. :meth:`Belief.sensed` keeps the children whose window matches, materialising only those.
4. :meth:`Belief.moved` keeps the boards on which our requested move would have been revised into the taken move
   with the reported capture square, and plays it on each.

Boards are deduplicated by their position without move counters (the weights of duplicates add up).

What is bounded: ``max_boards`` caps the boards kept after every step (as ``chess.Board`` objects, ~420 bytes
each). After the opponent's move each of them stands for every move the opponent could have made there (up to ~60
in RBC), kept lazily as ``(parent, move, weight)`` (~150 bytes each) until the sense result narrows them:
``max_children`` (default :data:`MAX_CHILDREN`) caps those, drawn by weight as below when there are more.
:class:`bridge.games.rbc_arrays.ArrayBelief` (``rbc.belief: arrays``) does the same bookkeeping on numpy arrays,
~5x smaller a board and 10-20x faster, with the same results, so that far larger caps keep it exact.

Sampling policy (``max_boards``): every board carries a weight, the product of the opponent-model priors
(:func:`opponent_move_prior`) of the moves that led to it, renormalised after every step.  When more than
``max_boards`` boards remain after a step, ``max_boards`` of them are drawn without replacement with probability
proportional to weight (Efraimidis-Spirakis keys ``u ** (1 / w)``), so likely boards are kept and unlikely ones are
still sometimes kept.  Without sampling (fewer boards than the cap) nothing consistent is ever dropped, so the true
board is always in the belief.  If sampling lost the true board and an observation contradicts every board left,
the belief is *repaired* (:meth:`Belief._repair_sense` and friends) from the boards closest to the observation,
and :attr:`Belief.exact` becomes False.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import chess
from reconchess.utilities import add_pawn_queen_promotion, capture_square_of_move, is_psuedo_legal_castle, revise_move

Observation = Sequence[tuple[int, chess.Piece | None]]
Key = tuple[int, int, int, int, int, int, int, int, bool, int, int | None]

INNER_SQUARES: tuple[int, ...] = tuple(chess.square(f, r) for r in range(1, 7) for f in range(1, 7))
PIECE_TYPES = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING)
_CASTLES = {
    chess.WHITE: (chess.Move(chess.E1, chess.G1), chess.Move(chess.E1, chess.C1)),
    chess.BLACK: (chess.Move(chess.E8, chess.G8), chess.Move(chess.E8, chess.C8)),
}
DEVELOP_PRIOR = 2.0  # a knight or bishop leaving its first rank is likelier (engines develop their pieces)
CHECK_PRIOR = 4.0  # an opponent move that attacks our king is this much likelier (opponents hunt kings)
KNIGHT_THREAT_PRIOR = 3.0  # a knight move to a square from which it can attack our king next move (knight rushes)
KNIGHT_APPROACH_PRIOR = 2.0  # a knight move that brings it closer (in knight moves) to attacking our king
MAX_CHILDREN = 200_000  # default cap on the opponent's possible moves kept (lazily) until the sense narrows them
ESCAPE_SHARE = 0.75  # an opponent whose king we attack gets it out of reach with at least this probability
KING_GUARD = 0.01  # default: chance that the opponent can capture our king above which the sense looks for it
CRISIS_WEIGHT = 8.0  # default: how much more settling "is a king attacked?" counts than shrinking the belief (sense)
VALUES = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}


def _knight_distances(king: int) -> bytes:
    """For each square, the knight moves it takes from there to attack ``king`` (1: a knight there attacks it)."""
    dist = [0] * 64
    frontier = list(chess.SquareSet(chess.BB_KNIGHT_ATTACKS[king]))
    for sq in frontier:
        dist[sq] = 1
    for sq in frontier:  # grows while it is walked: breadth first
        for nxt in chess.SquareSet(chess.BB_KNIGHT_ATTACKS[sq]):
            if not dist[nxt] and nxt != king:
                dist[nxt] = dist[sq] + 1
                frontier.append(nxt)
    dist[king] = 3  # a knight cannot stand on the king; from there it would be two moves away, three to attack
    return bytes(dist)


KNIGHT_DISTANCE: tuple[bytes, ...] = tuple(_knight_distances(k) for k in chess.SQUARES)


def window(square: int) -> int:
    """The bitboard of the 3x3 sense window centred on ``square`` (clipped at the edges)."""
    f, r = chess.square_file(square), chess.square_rank(square)
    bb = 0
    for dr in (-1, 0, 1):
        for df in (-1, 0, 1):
            if 0 <= f + df <= 7 and 0 <= r + dr <= 7:
                bb |= chess.BB_SQUARES[chess.square(f + df, r + dr)]
    return bb


WINDOWS: dict[int, int] = {sq: window(sq) for sq in chess.SQUARES}


def position_key(board: chess.Board) -> Key:
    """The position without move counters; the en-passant square only when an en-passant capture exists."""
    ep = board.ep_square if board.ep_square is not None and board.has_pseudo_legal_en_passant() else None
    return (board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings,
            board.occupied_co[chess.WHITE], board.occupied_co[chess.BLACK], board.turn,
            board.clean_castling_rights(), ep)


def rbc_moves(board: chess.Board) -> list[chess.Move | None]:
    """Every move the side to move can *take* in RBC: the pseudo-legal moves, castles through check, the pass."""
    moves: list[chess.Move | None] = list(board.generate_pseudo_legal_moves())
    for castle in _CASTLES[board.turn]:
        if board.piece_type_at(castle.from_square) == chess.KING and castle not in moves \
                and is_psuedo_legal_castle(board, castle):
            moves.append(castle)
    moves.append(None)
    return moves


def opponent_move_prior(board: chess.Board, move: chess.Move | None) -> float:
    """A simple opponent model: relative likelihood of ``move`` (taken by the side to move of ``board``).

    Passes are rarer than moves (a deliberate pass is unusual; failed requests become passes), under-promotions
    are rare, castling and forward moves are a little more likely than retreats, knights and bishops leaving their
    first rank are likelier (development), moves that attack our king much likelier (RBC bots hunt the king:
    a capture ends the game), and knight moves toward our king likelier: closer in knight moves to attacking it, and
    more so to a square from which it could attack it next move (knight rushes).
    """
    if move is None:
        return 0.4
    if move.promotion is not None:
        return 1.5 if move.promotion == chess.QUEEN else 0.05
    piece = board.piece_type_at(move.from_square)
    if piece == chess.KING:
        return 1.5 if abs(chess.square_file(move.from_square) - chess.square_file(move.to_square)) > 1 else 0.6
    forward = chess.square_rank(move.to_square) - chess.square_rank(move.from_square)
    if board.turn == chess.BLACK:
        forward = -forward
    prior = 1.0
    if forward > 0:
        prior = 1.3
    elif forward < 0:
        prior = 0.7
    if piece in (chess.KNIGHT, chess.BISHOP) and chess.square_rank(move.from_square) == (0 if board.turn else 7):
        prior *= DEVELOP_PRIOR
    if board.is_capture(move):
        prior *= 1.5
    king = board.king(not board.turn)
    if king is not None and piece is not None:
        attacks = _attacks_after(board, move, piece)
        if attacks & chess.BB_SQUARES[king]:
            prior *= CHECK_PRIOR
        elif piece == chess.KNIGHT and move.promotion is None:
            distance = KNIGHT_DISTANCE[king]
            if distance[move.to_square] < distance[move.from_square]:
                prior *= KNIGHT_APPROACH_PRIOR
            if attacks & chess.BB_KNIGHT_ATTACKS[king]:
                prior *= KNIGHT_THREAT_PRIOR
    return prior


def move_priors(board: chess.Board, moves: Sequence[chess.Move | None]) -> list[float]:
    """The opponent model's relative likelihood of each of ``moves`` (taken by the side to move of ``board``):
    :func:`opponent_move_prior`, with the escapes weighted up (:func:`_escape_priors`) when the mover's king is
    attacked."""
    priors = [opponent_move_prior(board, m) for m in moves]
    king = board.king(board.turn)
    if king is not None and board.attackers_mask(not board.turn, king):
        priors = _escape_priors(board, moves, priors)
    return priors


def _teleported(board: chess.Board, square: int, color: chess.Color) -> list[chess.Board]:
    """``board`` after an unexplained capture by ``color`` on ``square``: for each of its pieces (a king only if it
    has nothing else), a board where that piece stands on ``square`` (a pawn on a last rank as a queen), the other
    side to move.  The square of a capture always holds the capturer (game 96456656: a repair that left it empty
    let our king walk onto the file of the rook that had just captured there)."""
    movers = board.occupied_co[color] & ~board.kings or board.occupied_co[color]
    out: list[chess.Board] = []
    for sq in chess.SquareSet(movers):
        piece = board.piece_at(sq)
        assert piece is not None
        if piece.piece_type == chess.PAWN and chess.square_rank(square) in (0, 7):
            piece = chess.Piece(chess.QUEEN, color)
        after = board.copy(stack=False)
        after.remove_piece_at(sq)
        after.set_piece_at(square, piece)
        after.turn = not color
        after.ep_square = None
        after.halfmove_clock = 0
        after.castling_rights = after.clean_castling_rights()
        out.append(after)
    if not out:  # no piece at all (a broken board): a queen stands there
        after = child(board, None)
        after.set_piece_at(square, chess.Piece(chess.QUEEN, color))
        out.append(after)
    return out


def _escape_priors(board: chess.Board, moves: Sequence[chess.Move | None], priors: list[float]) -> list[float]:
    """The mover's king is attacked on ``board``: the moves that leave it out of reach share at least
    :data:`ESCAPE_SHARE` of the prior (an opponent that sees the attack escapes it; RBC bots look for threats
    to their king).  Game 96456655 against StrangeFish2: with every move equally likely, 'the king stays where
    our queen attacks it' kept p=0.84 and our queen was given up for a king that had moved away."""
    mover = board.turn
    escapes = []
    for move in moves:
        after = child(board, move)
        king = after.king(mover)
        escapes.append(king is not None and not after.attackers_mask(not mover, king))
    escape_total = sum(p for p, e in zip(priors, escapes, strict=True) if e)
    stay_total = sum(priors) - escape_total
    if escape_total <= 0 or stay_total <= 0 or escape_total >= ESCAPE_SHARE * (escape_total + stay_total):
        return priors
    scale = ESCAPE_SHARE * stay_total / ((1 - ESCAPE_SHARE) * escape_total)
    return [p * scale if e else p for p, e in zip(priors, escapes, strict=True)]


def _attacks_after(board: chess.Board, move: chess.Move, piece: chess.PieceType) -> int:
    """The squares the moved piece attacks from its new square (discovered attacks not included)."""
    to = move.to_square
    piece = move.promotion or piece
    if piece == chess.KNIGHT:
        return chess.BB_KNIGHT_ATTACKS[to]
    if piece == chess.PAWN:
        return chess.BB_PAWN_ATTACKS[board.turn][to]
    if piece == chess.KING:
        return chess.BB_KING_ATTACKS[to]
    occupied = (board.occupied & ~chess.BB_SQUARES[move.from_square]) | chess.BB_SQUARES[to]
    attacks = 0
    if piece in (chess.BISHOP, chess.QUEEN):
        attacks |= chess.BB_DIAG_ATTACKS[to][chess.BB_DIAG_MASKS[to] & occupied]
    if piece in (chess.ROOK, chess.QUEEN):
        attacks |= chess.BB_RANK_ATTACKS[to][chess.BB_RANK_MASKS[to] & occupied] | \
            chess.BB_FILE_ATTACKS[to][chess.BB_FILE_MASKS[to] & occupied]
    return attacks


def _attackers_after(board: chess.Board, move: chess.Move | None, king: int | None, before: int) -> int:
    """The squares from which the opponent (to move on ``board``) attacks the king on ``king`` after ``move``:
    the moved piece's new square if it attacks it, and ``before`` (the attackers already there) but the moved
    piece's old square.  Attacks discovered by the move are not counted (rare; cheap to leave out)."""
    if king is None:
        return 0
    if move is None:
        return before
    out = before & ~chess.BB_SQUARES[move.from_square]
    piece = board.piece_type_at(move.from_square)
    if piece is not None and _attacks_after(board, move, piece) & chess.BB_SQUARES[king]:
        out |= chess.BB_SQUARES[move.to_square]
    return out


def _in_danger(board: chess.Board, color: chess.Color) -> bool:
    """True when ``color``'s king can be captured by the other side on ``board`` (were it the other's turn)."""
    king = board.king(color)
    return king is not None and bool(board.attackers_mask(not color, king))


def _sample_indices(weights: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """``k`` indices drawn without replacement, each draw proportional to weight (Efraimidis-Spirakis)."""
    if k >= len(weights):
        return list(range(len(weights)))
    keyed = []
    for i, w in enumerate(weights):
        u = rng.random() or 1e-300
        keyed.append((math.log(u) / w if w > 0 else -math.inf, i))
    keyed.sort(reverse=True)
    return sorted(i for _, i in keyed[:k])


def _thin(weights: Sequence[float], k: int, rng: random.Random) -> tuple[list[int], list[float]]:
    """Draw ``k`` of the items (:func:`_sample_indices`) and give each the weight it now stands for: its weight
    divided by its chance of being drawn, about ``min(1, k x weight / total)`` -- heavy items keep their weight,
    light ones each stand for an equal share ``total / k``."""
    idx = _sample_indices(weights, k, rng)
    if len(idx) == len(weights):
        return idx, [weights[i] for i in idx]
    floor = sum(weights) / k
    return idx, [max(weights[i], floor) for i in idx]


def _masks(board: chess.Board, color: chess.Color) -> tuple[int, ...]:
    occ = board.occupied_co[color]
    return (board.pawns & occ, board.knights & occ, board.bishops & occ, board.rooks & occ, board.queens & occ,
            board.kings & occ)


def _expected_masks(observation: Observation) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """(window bitboard, white masks, black masks) that an observation says the window holds."""
    win = 0
    masks = {chess.WHITE: [0] * 6, chess.BLACK: [0] * 6}
    for square, piece in observation:
        win |= chess.BB_SQUARES[square]
        if piece is not None:
            masks[piece.color][piece.piece_type - 1] |= chess.BB_SQUARES[square]
    return win, tuple(masks[chess.WHITE]), tuple(masks[chess.BLACK])


def _matches(board: chess.Board, win: int, white: tuple[int, ...], black: tuple[int, ...]) -> bool:
    for mine, want in zip(_masks(board, chess.WHITE), white, strict=True):
        if (mine & win) != want:
            return False
    for mine, want in zip(_masks(board, chess.BLACK), black, strict=True):
        if (mine & win) != want:
            return False
    return True


def _touched(board: chess.Board, move: chess.Move | None) -> int:
    """A superset of the squares whose contents ``move`` changes on ``board``."""
    if move is None:
        return 0
    bb = chess.BB_SQUARES[move.from_square] | chess.BB_SQUARES[move.to_square]
    piece = board.piece_type_at(move.from_square)
    if piece == chess.KING and abs(chess.square_file(move.from_square) - chess.square_file(move.to_square)) > 1:
        bb |= chess.BB_RANKS[chess.square_rank(move.from_square)]
    elif piece == chess.PAWN and chess.square_file(move.from_square) != chess.square_file(move.to_square):
        bb |= chess.BB_FILES[chess.square_file(move.to_square)]  # en passant removes a pawn beside the target
    return bb


def child(board: chess.Board, move: chess.Move | None) -> chess.Board:
    """``board`` after the taken ``move`` (None: a pass), without move history."""
    out = board.copy(stack=False)
    out.push(move if move is not None else chess.Move.null())
    return out


def taken_move(board: chess.Board, requested: chess.Move | None) -> chess.Move | None:
    """What the arbiter makes of ``requested`` on ``board`` (queen promotion added, then RBC revision)."""
    if requested is None:
        return None
    if board.piece_at(requested.from_square) is None:
        return None
    return revise_move(board, add_pawn_queen_promotion(board, requested))


@dataclass
class StepStats:
    """What the last step did to the belief (for the transcript)."""

    before: int = 0
    after: int = 0
    sampled: bool = False
    repaired: bool = False


class Belief:
    """The boards one RBC player considers possible, with weights (see the module doc)."""

    # what a player on a short clock keeps (boards a second of its clock left), and while an earlier run's
    # observations are told again after a restart: as many as this way of holding them steps through quickly
    boards_per_second: ClassVar[int] = 40
    replay_boards: ClassVar[int] = 200

    def __init__(self, color: chess.Color, board: chess.Board, *, max_boards: int = 5000,
                 rng: random.Random | None = None, sense_sample: int = 800,
                 crisis_weight: float = CRISIS_WEIGHT, max_children: int = MAX_CHILDREN,
                 king_guard: float = KING_GUARD) -> None:
        self.color = color
        self.max_boards = max_boards
        self.max_children = max_children
        self.sense_sample = sense_sample
        self.crisis_weight = crisis_weight
        self.king_guard = king_guard
        self.rng = rng if rng is not None else random.Random()
        self._start(board)
        self.exact = True
        self._threats: dict[int, float] = {}  # with _pending: attacker squares (bitboard) -> weight (king_threats)
        self.last = StepStats(1, 1)
        self.no_info_score = 1.0  # what sense_scores gives a window that tells nothing (set by sense_scores)
        self.guarded: tuple[float, float] | None = None  # the last choose_sense's guard: (threat, share covered)

    def _start(self, board: chess.Board) -> None:
        """The storage: ``board`` alone, certain."""
        self.boards: list[chess.Board] = [board.copy(stack=False)]
        self.weights: list[float] = [1.0]
        self._pending: list[tuple[int, chess.Move | None, float]] | None = None

    # --- queries ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pending) if self._pending is not None else len(self.boards)

    @property
    def opponent(self) -> chess.Color:
        return not self.color

    def needs_opponent_move(self) -> bool:
        """True when the opponent has moved since the boards were last updated (always, except on White's
        first turn)."""
        return self._pending is None and bool(self.boards) and self.boards[0].turn != self.color

    def weighted(self) -> list[tuple[chess.Board, float]]:
        self.materialize()
        return list(zip(self.boards, self.weights, strict=True))

    def sample(self, k: int) -> list[tuple[chess.Board, float]]:
        """Up to ``k`` distinct boards drawn by weight, heaviest first, each with the weight it stands for.

        When only some boards are drawn, a board's weight is divided by its chance of being drawn (about
        ``min(1, k x weight)``, weights summing to 1): heavy boards, drawn for sure, keep their weight; light
        ones, drawn in proportion to their weight, each stand for an equal share ``1 / k`` of the rest."""
        self.materialize()
        idx, weights = _thin(self.weights, k, self.rng)
        out = [(self.boards[i], w) for i, w in zip(idx, weights, strict=True)]
        out.sort(key=lambda bw: -bw[1])
        return out

    # --- bookkeeping -----------------------------------------------------------------------------------------
    def _set(self, boards: list[chess.Board], weights: list[float], *, dedup: bool = True) -> None:
        if dedup:
            merged: dict[Key, int] = {}
            out_b: list[chess.Board] = []
            out_w: list[float] = []
            for b, w in zip(boards, weights, strict=True):
                key = position_key(b)
                j = merged.get(key)
                if j is None:
                    merged[key] = len(out_b)
                    out_b.append(b)
                    out_w.append(w)
                else:
                    out_w[j] += w
            boards, weights = out_b, out_w
        if len(boards) > self.max_boards:
            idx, weights = _thin(weights, self.max_boards, self.rng)
            boards = [boards[i] for i in idx]
            self._sampled()
        total = sum(weights)
        if total <= 0 or not math.isfinite(total):
            weights = [1.0] * len(weights)
            total = float(len(weights))
        self.boards = boards
        self.weights = [w / total for w in weights]
        self.last.after = len(boards)

    def _heaviest(self, k: int) -> list[int]:
        """The indices of the ``k`` heaviest boards, heaviest first (ties in board order)."""
        weights = self.weights
        return sorted(range(len(weights)), key=lambda i: -weights[i])[:k]

    def _sampled(self) -> None:
        """A draw kept only some of the boards: the true one may be gone."""
        self.exact = False
        self.last.sampled = True

    def materialize(self) -> None:
        """Turn pending children (opponent moved, sense not applied) into boards, sampling first if too many."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        if len(pending) > self.max_boards:
            idx, weights = _thin([w for _, _, w in pending], self.max_boards, self.rng)
            pending = [(pending[i][0], pending[i][1], w) for i, w in zip(idx, weights, strict=True)]
            self._sampled()
        self._set([child(self.boards[i], m) for i, m, _ in pending], [w for _, _, w in pending])

    # --- the opponent's move ---------------------------------------------------------------------------------
    def opponent_moved(self, capture_square: int | None) -> None:
        """The opponent moved; ``capture_square`` is where it captured one of our pieces (None: no capture)."""
        self.materialize()
        self.last = StepStats(before=len(self.boards))
        pending: list[tuple[int, chess.Move | None, float]] = []
        attackers: list[int] = []  # per child: the squares from which the opponent attacks our king there
        for i, (board, weight) in enumerate(zip(self.boards, self.weights, strict=True)):
            moves = rbc_moves(board)
            priors = move_priors(board, moves)
            total = sum(priors)
            king = board.king(self.color)
            before = board.attackers_mask(self.opponent, king) if king is not None else 0
            for move, prior in zip(moves, priors, strict=True):
                cs = capture_square_of_move(board, move) if move is not None else None
                if cs == capture_square:
                    pending.append((i, move, weight * prior / total))
                    attackers.append(_attackers_after(board, move, king, before))
        if not pending:
            self._repair_capture(capture_square)
            return
        if len(pending) > self.max_children:  # kept lazily, but not without end: the heaviest are drawn first
            idx, weights = _thin([w for _, _, w in pending], self.max_children, self.rng)
            pending = [(pending[i][0], pending[i][1], w) for i, w in zip(idx, weights, strict=True)]
            attackers = [attackers[i] for i in idx]
            self._sampled()
        self._pending = pending
        threats: dict[int, float] = {}
        for mask, (_, _, w) in zip(attackers, pending, strict=True):
            if mask:
                threats[mask] = threats.get(mask, 0.0) + w
        self._threats = threats
        self.last.after = len(pending)

    def _repair_capture(self, capture_square: int | None) -> None:
        """No board explains the capture: move some opponent piece that could reach the square there, ignoring
        what stands in its way (the belief lost the true board to sampling)."""
        self.last.repaired = True
        self.exact = False
        boards: list[chess.Board] = []
        weights: list[float] = []
        have = self.weights
        order = self._heaviest(200)
        for i in order:
            board = self.boards[i]
            if capture_square is None:  # cannot happen (passes never capture); keep the boards as passes
                boards.append(child(board, None))
                weights.append(have[i])
                continue
            target = chess.BB_SQUARES[capture_square]
            for sq in chess.SquareSet(board.occupied_co[self.opponent]):
                piece = board.piece_at(sq)
                assert piece is not None
                empty = chess.Board(None)
                empty.set_piece_at(sq, piece)
                if piece.piece_type == chess.PAWN:
                    reach = chess.BB_PAWN_ATTACKS[piece.color][sq]
                else:
                    reach = int(empty.attacks_mask(sq))
                if reach & target:
                    out = board.copy(stack=False)
                    out.remove_piece_at(sq)
                    for between in chess.SquareSet(chess.between(sq, capture_square)):
                        if out.color_at(between) == self.opponent:
                            out.remove_piece_at(between)
                    promoted = piece.piece_type == chess.PAWN and chess.square_rank(capture_square) in (0, 7)
                    out.set_piece_at(capture_square, chess.Piece(chess.QUEEN, piece.color) if promoted else piece)
                    out.turn = self.color
                    out.ep_square = None
                    out.halfmove_clock = 0
                    boards.append(out)
                    weights.append(have[i])
        if not boards and capture_square is not None:  # no piece could reach it: one of them is there all the same
            for i in order:
                boards_i = _teleported(self.boards[i], capture_square, self.opponent)
                boards.extend(boards_i)
                weights.extend([have[i] * 0.01] * len(boards_i))
        self._set(boards, weights)

    # --- sensing ---------------------------------------------------------------------------------------------
    def sense_scores(self, squares: Iterable[int] = INNER_SQUARES,
                     sample: tuple[list[chess.Board], list[float]] | None = None,
                     values: Sequence[Sequence[float]] | None = None, value_weight: float = 10.0) -> dict[int, float]:
        """For each candidate centre, the expected share of the belief's weight left after sensing there
        (1.0: sensing there tells nothing; :attr:`no_info_score` is the whole score of such a window), plus
        ``crisis_weight`` x the expected Gini impurity left of the crisis class (our king attacked / their king
        attacked / both / neither) within each possible result.

        The first term shrinks the belief; the second makes the sense settle first whether our king is in danger
        and whether their king can be taken, which decide games (a 4% chance of an unseen check matters more
        than halving the belief elsewhere).  Estimated on a weighted sample of at most ``sense_sample`` boards.

        ``values`` (optional, one row per sample board, one column per candidate move: what the move is worth on
        that board) subtracts ``value_weight`` x the expected value of the information: how much better the best
        move for each possible result is than the best move without sensing -- the sense then checks what the
        intended move hinges on (is the square it goes to guarded by a piece we never saw?).
        """
        boards, weights = sample if sample is not None else self._sense_sample()
        opp = self.opponent
        masks = [_masks(b, opp) for b in boards]
        crisis = [_in_danger(b, self.color) + 2 * _in_danger(b, opp) for b in boards]
        total = sum(weights)
        scores: dict[int, float] = {}
        if total <= 0:
            self.no_info_score = 1.0
            return {sq: 1.0 for sq in squares}
        classes = [0.0] * 4
        for c, w in zip(crisis, weights, strict=True):
            classes[c] += w
        self.no_info_score = 1.0 + self.crisis_weight * (total - sum(x * x for x in classes) / total) / total
        rows: list[list[float]] | None = None
        best_blind = 0.0
        if values is not None and len(values) == len(boards) and values and len(values[0]) > 1:
            rows = [[w * v for v in row] for row, w in zip(values, weights, strict=True)]
            best_blind = max(sum(col) for col in zip(*rows, strict=True))
        for sq in squares:
            win = WINDOWS[sq]
            parts: dict[tuple[int, ...], list[float]] = {}
            gains: dict[tuple[int, ...], list[float]] = {}
            for i, (m, c, w) in enumerate(zip(masks, crisis, weights, strict=True)):
                key = (m[0] & win, m[1] & win, m[2] & win, m[3] & win, m[4] & win, m[5] & win)
                part = parts.get(key)
                if part is None:
                    part = parts[key] = [0.0, 0.0, 0.0, 0.0, 0.0]
                part[0] += w
                part[1 + c] += w
                if rows is not None:
                    acc = gains.get(key)
                    if acc is None:
                        gains[key] = list(rows[i])
                    else:
                        for j, x in enumerate(rows[i]):
                            acc[j] += x
            size = sum(p[0] * p[0] for p in parts.values()) / (total * total)
            impurity = sum(p[0] - sum(x * x for x in p[1:]) / p[0] for p in parts.values() if p[0] > 0) / total
            scores[sq] = size + self.crisis_weight * impurity
            if rows is not None:
                informed = sum(max(acc) for acc in gains.values())
                scores[sq] -= value_weight * max(0.0, informed - best_blind) / total
        return scores

    def sense_sample_boards(self) -> tuple[list[chess.Board], list[float]]:
        """The boards the next :meth:`choose_sense` may be given as ``sample`` (pending children materialised)."""
        return self._sense_sample()

    def _sense_sample(self) -> tuple[list[chess.Board], list[float]]:
        """At most ``sense_sample`` boards (pending children materialised), with the weights they stand for."""
        if self._pending is None:
            idx, weights = _thin(self.weights, self.sense_sample, self.rng)
            return [self.boards[i] for i in idx], weights
        pending = self._pending
        idx, weights = _thin([w for _, _, w in pending], self.sense_sample, self.rng)
        return [child(self.boards[pending[j][0]], pending[j][1]) for j in idx], weights

    def king_threats(self) -> dict[int, float]:
        """Where the opponent can capture our king from on its next move: each set of attacker squares (a
        bitboard) with the share of the belief's weight on which exactly those squares attack our king.  Over
        every board (or, after the opponent's move, every possible move of it), not a sample."""
        if self._pending is not None:
            return dict(self._threats)
        threats: dict[int, float] = {}
        for board, w in zip(self.boards, self.weights, strict=True):
            king = board.king(self.color)
            mask = board.attackers_mask(self.opponent, king) if king is not None else 0
            if mask:
                threats[mask] = threats.get(mask, 0.0) + w
        return threats

    def contains(self, board: chess.Board) -> bool:
        """Whether ``board``'s position (without move counters) is among the boards (pending children made)."""
        key = position_key(board)
        return any(position_key(b) == key for b, _ in self.weighted())

    def king_captures(self, actions: Iterable[chess.Move]) -> dict[chess.Move, float]:
        """For each of our ``actions`` that captures the opponent's king on some board, the weight of those
        boards."""
        allowed = set(actions)
        out: dict[chess.Move, float] = {}
        for board, w in self.weighted():
            king = board.king(self.opponent)
            if king is None:
                continue
            for attacker in chess.SquareSet(board.attackers_mask(self.color, king)):
                promotion = chess.QUEEN if board.piece_type_at(attacker) == chess.PAWN and \
                    chess.square_rank(king) in (0, 7) else None
                move = chess.Move(attacker, king, promotion)
                if move in allowed:
                    out[move] = out.get(move, 0.0) + w
        return out

    def guard_squares(self, squares: Sequence[int]) -> list[int]:
        """The sense centres that keep our king in sight (issue 12: knight rushes): when the chance that the
        opponent can capture our king next move is at least ``king_guard`` and not already certain, the centres
        whose window covers the most of that chance (on each such board, every attacker in the window: the sense
        sees the attack, or sees that it is not there).  Empty when there is no such threat."""
        self.guarded = None
        threats = self.king_threats()
        p = sum(threats.values())
        if not threats or p < self.king_guard or (len(threats) == 1 and p > 1 - 1e-9):
            return []
        cover = {sq: sum(w for mask, w in threats.items() if not mask & ~WINDOWS[sq]) for sq in squares}
        best = max(cover.values(), default=0.0)
        if best <= 0:
            return []
        self.guarded = (p, best)
        return [sq for sq in squares if cover[sq] >= best - 1e-12]

    def choose_sense(self, allowed: Iterable[int] | None = None,
                     sample: tuple[list[chess.Board], list[float]] | None = None,
                     values: Sequence[Sequence[float]] | None = None, value_weight: float = 10.0) -> int | None:
        """The sense centre with the best :meth:`sense_scores`; None when every window is already known on every
        board of an exact belief. Ties go to the centre nearest the opponent's likeliest king."""
        allowed_set = set(allowed) if allowed is not None else set(chess.SQUARES)
        squares = [sq for sq in INNER_SQUARES if sq in allowed_set] or sorted(allowed_set)
        if not squares:
            return None
        if sample is None:
            sample = self._sense_sample()
        guard = self.guard_squares(squares)
        if guard:  # our king may be captured next move: look there first, then by the scores
            squares = guard
        scores = self.sense_scores(squares, sample, values, value_weight)
        best = min(scores.values())
        if best >= self.no_info_score - 1e-9:
            if guard:  # the sample missed the threatened boards; the guard has not
                return guard[0]
            if self.exact:
                return None
            return self._verification_square(squares, sample[0])
        king = self._likely_opponent_king(*sample)
        ties = [sq for sq in squares if scores[sq] <= best + 1e-9]
        if king is None:
            return ties[0]
        return min(ties, key=lambda sq: chess.square_distance(sq, king))

    def _likely_opponent_king(self, boards: list[chess.Board], weights: list[float]) -> int | None:
        votes: dict[int, float] = {}
        for b, w in zip(boards, weights, strict=True):
            k = b.king(self.opponent)
            if k is not None:
                votes[k] = votes.get(k, 0.0) + w
        return max(votes, key=lambda k: votes[k]) if votes else None

    def _verification_square(self, squares: Sequence[int], boards: list[chess.Board]) -> int:
        """A window worth re-checking when the belief is not exact: the most opponent pieces, near our king."""
        board = boards[0]
        occ = board.occupied_co[self.opponent]
        king = board.king(self.color)

        def value(sq: int) -> tuple[int, int]:
            near = -chess.square_distance(sq, king) if king is not None else 0
            return (chess.popcount(occ & WINDOWS[sq]), near)
        return max(squares, key=value)

    def sensed(self, observation: Observation) -> None:
        """Keep the boards whose squares hold what the sense saw (an empty observation keeps everything)."""
        if not observation:
            self.materialize()
            return
        win, white, black = _expected_masks(observation)
        pending = self._pending
        self._pending = None
        if pending is None:
            self.last = StepStats(before=len(self.boards))
            keep = [(b, w) for b, w in zip(self.boards, self.weights, strict=True) if _matches(b, win, white, black)]
            if keep:
                self._set([b for b, _ in keep], [w for _, w in keep], dedup=False)
            else:
                self._repair_sense(list(zip(self.boards, self.weights, strict=True)), observation)
            return
        self.last.before = len(pending)
        boards: list[chess.Board] = []
        weights: list[float] = []
        parent_diff: dict[int, int] = {}
        for i, move, w in pending:
            diff = parent_diff.get(i)
            if diff is None:
                parent = self.boards[i]
                diff = 0
                for mine, want in zip(_masks(parent, chess.WHITE), white, strict=True):
                    diff |= (mine ^ want) & win
                for mine, want in zip(_masks(parent, chess.BLACK), black, strict=True):
                    diff |= (mine ^ want) & win
                parent_diff[i] = diff
            touched = _touched(self.boards[i], move) & win
            if diff & ~touched:
                continue  # the move leaves a mismatching square of the window as it was
            board = child(self.boards[i], move)
            if touched and not _matches(board, win, white, black):
                continue
            boards.append(board)
            weights.append(w)
        if boards:
            self._set(boards, weights)
            return
        self._repair_sense([(child(self.boards[i], m), w) for i, m, w in
                            sorted(pending, key=lambda p: -p[2])[: max(200, self.max_boards // 10)]], observation)

    def _repair_sense(self, candidates: list[tuple[chess.Board, float]], observation: Observation) -> None:
        """Nothing matches the sense result: take the likeliest boards and make the window what was seen."""
        self.last.repaired = True
        self.exact = False
        boards: list[chess.Board] = []
        weights: list[float] = []
        seen_king = any(p is not None and p.piece_type == chess.KING and p.color == self.opponent
                        for _, p in observation)
        win = 0
        for square, _ in observation:
            win |= chess.BB_SQUARES[square]
        for board, w in candidates:
            out = board.copy(stack=False)
            changed = 0
            for square, piece in observation:
                if out.piece_at(square) != piece:
                    changed += 1
                    if piece is None:
                        out.remove_piece_at(square)
                    else:
                        out.set_piece_at(square, piece)
            if seen_king:
                for k in chess.SquareSet(out.kings & out.occupied_co[self.opponent] & ~win):
                    out.remove_piece_at(k)
            if out.king(self.opponent) is None:
                w *= 1e-3
            out.ep_square = None
            out.castling_rights = out.clean_castling_rights()
            boards.append(out)
            weights.append(w * (0.05 ** changed))
        self._set(boards, weights)

    # --- our move ------------------------------------------------------------------------------------------
    def moved(self, requested: chess.Move | None, taken: chess.Move | None, capture_square: int | None,
              *, capture_known: bool = True) -> None:
        """Our move's result: keep the boards that explain it and play the taken move on them.
        ``capture_known=False``: whether the move captured is unknown (the server's answer was lost)."""
        self.materialize()
        self.last = StepStats(before=len(self.boards))
        boards: list[chess.Board] = []
        weights: list[float] = []
        kings_taken: list[tuple[chess.Board, float]] = []
        for board, w in zip(self.boards, self.weights, strict=True):
            if taken_move(board, requested) != taken:
                continue
            if capture_known and \
                    (capture_square_of_move(board, taken) if taken is not None else None) != capture_square:
                continue
            out = child(board, taken)
            if out.king(self.opponent) is None:
                kings_taken.append((out, w))  # the game is over, unless this board was not the true one
                continue
            boards.append(out)
            weights.append(w)
        if boards:
            self._set(boards, weights)
            return
        if kings_taken:  # we captured the king: the game is over; keep the boards as they are
            self._set([b for b, _ in kings_taken], [w for _, w in kings_taken])
            return
        self._repair_move(requested, taken, capture_square)

    def _repair_move(self, requested: chess.Move | None, taken: chess.Move | None,
                     capture_square: int | None) -> None:
        """No board explains our move's result: play the taken move on the likeliest boards anyway, clearing the
        way it went and the opponent piece it did (not) capture."""
        self.last.repaired = True
        self.exact = False
        boards: list[chess.Board] = []
        weights: list[float] = []
        have = self.weights
        order = self._heaviest(max(200, self.max_boards // 10))
        for i in order:
            out = self.boards[i].copy(stack=False)
            if taken is not None:
                path = chess.SquareSet(chess.between(taken.from_square, taken.to_square))
                for sq in path:
                    if out.color_at(sq) == self.opponent:
                        out.remove_piece_at(sq)
                if capture_square is None and out.color_at(taken.to_square) == self.opponent:
                    out.remove_piece_at(taken.to_square)
                if capture_square is not None and out.color_at(capture_square) != self.opponent:
                    out.set_piece_at(capture_square, chess.Piece(chess.PAWN, self.opponent))
                if not (out.is_pseudo_legal(taken) or is_psuedo_legal_castle(out, taken)):
                    piece = out.remove_piece_at(taken.from_square)
                    if capture_square is not None:
                        out.remove_piece_at(capture_square)
                    if piece is not None:
                        promoted = chess.Piece(taken.promotion, piece.color) if taken.promotion else piece
                        out.set_piece_at(taken.to_square, promoted)
                    out.turn = self.opponent
                    out.ep_square = None
                    out.castling_rights = out.clean_castling_rights()
                else:
                    out.push(taken)
            else:
                out.push(chess.Move.null())
            if out.king(self.opponent) is None:
                continue
            boards.append(out)
            weights.append(have[i])
        if not boards:  # keep playing on something rather than nothing
            out = self.boards[order[0]].copy(stack=False) if order else chess.Board()
            out.turn = self.opponent
            boards, weights = [out], [1.0]
        self._set(boards, weights)
