"""The RBC belief held as arrays (bridge/games/rbc_arrays.py) against the reference implementation
(bridge/games/rbc_belief.py, chess.Board objects, python-chess's move generator): the same possible moves, capture
squares, opponent-model priors and resulting positions on thousands of positions from random RBC games, and the same
boards with the same weights after every step of whole games while the reference is exact."""

from __future__ import annotations

import random

import chess
import numpy as np
import pytest
from reconchess.utilities import capture_square_of_move

from bridge.games import rbc_arrays as arrays
from bridge.games.rbc_arrays import ArrayBelief
from bridge.games.rbc_belief import (
    INNER_SQUARES,
    WINDOWS,
    Belief,
    child,
    move_priors,
    position_key,
    rbc_moves,
    taken_move,
)


def _positions(n: int, seed: int) -> list[chess.Board]:
    """Positions from random RBC games (every move the arbiter allows, passes included), restarted at random."""
    rng = random.Random(seed)
    out: list[chess.Board] = []
    board = chess.Board()
    while len(out) < n:
        board = child(board, rng.choice(rbc_moves(board)))
        if board.king(chess.WHITE) is None or board.king(chess.BLACK) is None or rng.random() < 0.02:
            board = chess.Board()
            continue
        out.append(board.copy(stack=False))
    return out


@pytest.mark.parametrize("turn", [chess.WHITE, chess.BLACK], ids=["white", "black"])
def test_moves_priors_and_positions_match_the_reference(turn: chess.Color) -> None:
    boards = [b for b in _positions(2400, 1) if b.turn == turn]
    planes = arrays.from_boards(boards)
    moves = arrays.generate(planes, turn)
    prior = arrays.escape_priors(planes, moves, arrays.priors(planes, moves, turn), turn)
    after = arrays.play(planes, moves, turn)
    by_board: dict[int, dict[chess.Move | None, int]] = {}
    for i in range(len(moves)):
        by_board.setdefault(int(moves.parent[i]), {})[moves.to_move(i)] = i
    features = {"castle": 0, "en passant": 0, "promotion": 0, "escape": 0}
    for j, board in enumerate(boards):
        ref_moves = rbc_moves(board)
        mine = by_board[j]
        assert set(mine) == set(ref_moves), board.fen()
        ref_priors = move_priors(board, ref_moves)
        for move, ref_prior in zip(ref_moves, ref_priors, strict=True):
            i = mine[move]
            cap = capture_square_of_move(board, move) if move is not None else None
            assert (None if moves.cap[i] < 0 else int(moves.cap[i])) == cap, (board.fen(), move)
            assert prior[i] == pytest.approx(ref_prior, abs=1e-12), (board.fen(), move)
            mine_after = arrays.to_board(after[:, i], not turn)
            assert position_key(mine_after) == position_key(child(board, move)), (board.fen(), move)
            if move is not None:
                features["castle"] += board.is_castling(move)
                features["en passant"] += board.is_en_passant(move)
                features["promotion"] += move.promotion is not None
        king = board.king(turn)
        features["escape"] += king is not None and bool(board.attackers_mask(not turn, king))
    assert all(count > 0 for count in features.values()), features  # every rule was exercised


EVERY_MOVE = {chess.Move(a, b, p) for a in chess.SQUARES for b in chess.SQUARES for p in (None, chess.QUEEN)}


def _game(seed: int, color: chess.Color, turns: int, limit: int) -> int:
    """Plays a random game, updating a reference belief and an array belief with the same observations (a random
    sense square, an unknown capture one move in ten), and checks they hold the same boards and weights after every
    step; stops when the reference would grow past ``limit``.  Returns the steps checked."""
    rng = random.Random(seed)
    truth = chess.Board()
    ref = Belief(color, truth, max_boards=10**9, max_children=10**9, rng=random.Random(seed))
    arr = ArrayBelief(color, truth, max_boards=10**9, max_children=10**9, rng=random.Random(seed))
    checked = 0

    def same(where: str) -> None:
        nonlocal checked
        want: dict[object, float] = {}
        for b, w in ref.weighted():
            want[position_key(b)] = want.get(position_key(b), 0.0) + w
        got: dict[object, float] = {}
        for b, w in arr.weighted():
            got[position_key(b)] = got.get(position_key(b), 0.0) + w
        assert set(got) == set(want), where
        assert max(abs(got[k] - want[k]) for k in want) < 1e-9, where
        assert arr.exact == ref.exact, where
        captures_ref, captures_arr = ref.king_captures(EVERY_MOVE), arr.king_captures(EVERY_MOVE)
        assert set(captures_arr) == set(captures_ref) and \
            all(captures_arr[m] == pytest.approx(captures_ref[m]) for m in captures_ref), where
        threats_ref, threats_arr = ref.king_threats(), arr.king_threats()
        assert set(threats_arr) == set(threats_ref) and \
            all(threats_arr[k] == pytest.approx(threats_ref[k]) for k in threats_ref), where
        checked += 1

    for turn in range(turns):
        if truth.turn != color:
            move = rng.choice(rbc_moves(truth))
            cap = capture_square_of_move(truth, move) if move is not None else None
            truth = child(truth, move)
            if truth.king(color) is None:
                break
            ref.opponent_moved(cap)
            arr.opponent_moved(cap)
            assert len(arr) == len(ref)
            assert arr.king_threats().keys() == ref.king_threats().keys()
            if len(ref) > limit:
                break
            square = rng.choice(INNER_SQUARES)
            seen = [(sq, truth.piece_at(sq)) for sq in chess.SquareSet(WINDOWS[square])]
            ref.sensed(seen)
            arr.sensed(seen)
            same(f"seed {seed} turn {turn}: after the sense on {chess.square_name(square)}")
        requested = rng.choice([m for m in rbc_moves(truth) if m is not None])
        taken = taken_move(truth, requested)
        cap = capture_square_of_move(truth, taken) if taken is not None else None
        truth = child(truth, taken)
        known = rng.random() > 0.1
        ref.moved(requested, taken, cap, capture_known=known)
        arr.moved(requested, taken, cap, capture_known=known)
        same(f"seed {seed} turn {turn}: after {requested} taken as {taken} (capture known: {known})")
        if truth.king(not color) is None:
            break
    return checked


@pytest.mark.parametrize("seed", range(4))
def test_whole_games_hold_the_same_boards_and_weights_as_the_reference(seed: int) -> None:
    assert _game(seed, chess.WHITE if seed % 2 == 0 else chess.BLACK, turns=12, limit=20_000) >= 6


@pytest.mark.parametrize("seed", [0, 3])
def test_stepping_a_chunk_at_a_time_changes_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The opponent's moves are generated a few boards at a time and the children built a few at a time (small
    chunks here, to cross many chunk edges): the same boards and weights as the reference."""
    monkeypatch.setattr(arrays, "PARENT_CHUNK", 7)
    monkeypatch.setattr(arrays, "CHUNK", 50)
    assert _game(seed, chess.WHITE if seed % 2 == 0 else chess.BLACK, turns=12, limit=20_000) >= 6


def test_above_the_cap_it_samples_and_says_so() -> None:
    """With more boards than ``max_boards`` the belief keeps exactly that many, drawn by weight, and is no longer
    exact; the opponent's possible moves are held to ``max_children``."""
    belief = ArrayBelief(chess.BLACK, chess.Board(), max_boards=10, max_children=15, rng=random.Random(3))
    belief.opponent_moved(None)
    assert len(belief) == 15 and belief.last.sampled and not belief.exact
    belief.sensed([])
    assert len(belief) == 10
    assert sum(w for _, w in belief.weighted()) == pytest.approx(1.0)


def test_held_moves_stay_bounded_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks of the opponent's moves, far more than ``max_children`` in all: at most ``max_children`` are
    kept, drawn by weight over all chunks (the heaviest survive), and the weights still sum to one."""
    monkeypatch.setattr(arrays, "PARENT_CHUNK", 3)
    boards = [b for b in _positions(300, 5) if b.turn == chess.BLACK][:60]
    belief = ArrayBelief(chess.WHITE, boards[0], max_boards=1000, max_children=40, rng=random.Random(1))
    weights = [1.0] * len(boards)
    weights[-1] = 1000.0  # the last board (in the last chunk) is nearly certain: its children must be drawn
    belief._set(boards, weights)
    heavy = int(np.argmax(belief.w))  # (duplicates were merged)
    assert heavy >= 50
    belief.opponent_moved(None)
    assert len(belief) == 40 and not belief.exact
    pending = belief._moves
    assert pending is not None
    assert (pending.parent == heavy).sum() >= 10
    belief.sensed([])
    assert sum(w for _, w in belief.weighted()) == pytest.approx(1.0)


def test_a_board_costs_under_100_bytes() -> None:
    """The memory bound the README states: 80 bytes of planes and 8 of weight a board; 17 bytes a pending move."""
    rng = random.Random(2)
    belief = ArrayBelief(chess.BLACK, chess.Board(), max_boards=10**6, rng=rng)
    belief.opponent_moved(None)
    belief.sensed([])
    belief.moved(chess.Move.from_uci("e7e5"), chess.Move.from_uci("e7e5"), None)
    belief.opponent_moved(None)
    pending = len(belief)
    assert belief.nbytes() <= 20 * pending + 88 * 21
    belief.sensed([])
    assert len(belief) > 200
    assert belief.nbytes() == 88 * len(belief)


def test_ray_attacks_match_python_chess() -> None:
    rng = np.random.default_rng(4)
    occupied = rng.integers(0, 2**63, size=500, dtype=np.uint64) & rng.integers(0, 2**63, size=500, dtype=np.uint64)
    for square in (0, 7, 27, 36, 56, 63):
        rooks = arrays.ray_attacks(square, occupied, arrays.ORTHO)
        bishops = arrays.ray_attacks(square, occupied, arrays.DIAG)
        for occ, rook, bishop in zip(occupied.tolist(), rooks.tolist(), bishops.tolist(), strict=True):
            assert rook == chess.BB_RANK_ATTACKS[square][chess.BB_RANK_MASKS[square] & occ] | \
                chess.BB_FILE_ATTACKS[square][chess.BB_FILE_MASKS[square] & occ]
            assert bishop == chess.BB_DIAG_ATTACKS[square][chess.BB_DIAG_MASKS[square] & occ]


def test_contains_finds_a_position_whatever_its_move_counters() -> None:
    belief = ArrayBelief(chess.BLACK, chess.Board(), rng=random.Random(1))
    belief.opponent_moved(None)
    after_e4 = chess.Board("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1")
    assert belief.contains(after_e4)
    after_e4.halfmove_clock, after_e4.fullmove_number = 7, 30  # counters are not part of a position
    assert belief.contains(after_e4)
    assert not belief.contains(chess.Board("rnbqkbnr/pppppppp/8/8/4Q3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"))
    assert len(belief) == 21  # 20 moves and the pass, all made into boards


@pytest.mark.parametrize("fen", ["4k2P/8/8/8/8/8/8/4K3 w - - 0 1", "4k3/8/8/8/8/8/8/p3K3 b - - 0 1",
                                 "4k3/8/8/8/8/8/6P1/4K2R w K - 0 1", "r3k3/8/8/8/8/8/8/4K3 b q - 0 1"])
def test_odd_boards_a_repair_can_make_match_the_reference(fen: str) -> None:
    """A pawn on its last rank (a repair may put one there), castling rights: the same moves as python-chess."""
    board = chess.Board(fen)
    moves = arrays.generate(arrays.from_boards([board]), board.turn)
    assert {moves.to_move(i) for i in range(len(moves))} == set(rbc_moves(board))


def test_a_repair_reads_the_weights_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference's repairs run on ArrayBelief too, where ``weights`` makes a list of every board's weight: a
    repair that read it per board was quadratic (5.8 s at 10,651 boards, hours at the caps). Both repairs still
    give boards that explain what was seen."""
    boards = [b for b in _positions(600, 9) if b.turn == chess.BLACK][:250]
    reads = 0
    made = ArrayBelief.weights

    def counted(self: ArrayBelief) -> list[float]:
        nonlocal reads
        reads += 1
        return made.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(ArrayBelief, "weights", property(counted))
    belief = ArrayBelief(chess.WHITE, boards[0], max_boards=10_000, rng=random.Random(1))
    belief._set(boards, [1.0 + i for i in range(len(boards))])
    assert len(belief) > 200
    belief._repair_capture(chess.E2)
    assert reads <= 2 and belief.last.repaired and len(belief) > 0
    assert all(b.color_at(chess.E2) == chess.BLACK for b, _ in belief.weighted())
    reads = 0
    belief.turn = chess.WHITE
    belief._repair_move(chess.Move.from_uci("a2a4"), chess.Move.from_uci("a2a4"), None)
    assert reads <= 2 and len(belief) > 0
