"""The RBC belief (bridge/games/rbc_belief.py) against the official arbiter, reconchess.LocalGame: the true board is
always among the possible boards when nothing is sampled away; bounded beliefs stay bounded and never empty.
Every test that builds a belief runs with both implementations (``boards``: chess.Board objects, ``arrays``:
bridge/games/rbc_arrays.py)."""

from __future__ import annotations

import random

import chess
import pytest
import reconchess
from reconchess import LocalGame, play_turn

from bridge.games.rbc_arrays import ArrayBelief
from bridge.games.rbc_belief import (
    ESCAPE_SHARE,
    INNER_SQUARES,
    Belief,
    move_priors,
    opponent_move_prior,
    position_key,
    rbc_moves,
    taken_move,
    window,
)

MakeBelief = type[Belief]


@pytest.fixture(params=[Belief, ArrayBelief], ids=["boards", "arrays"])
def make(request: pytest.FixtureRequest) -> MakeBelief:
    kind: MakeBelief = request.param
    return kind


class Tracker(reconchess.Player):
    """Senses as the belief says, moves at random, and checks the belief against the arbiter's true board."""

    def __init__(self, game: LocalGame, rng: random.Random, max_boards: int, make: MakeBelief) -> None:
        self.game = game
        self.make = make
        self.rng = rng
        self.max_boards = max_boards
        self.checks = 0
        self.sizes: list[int] = []
        self.color = chess.WHITE
        self.belief: Belief | None = None

    def handle_game_start(self, color: chess.Color, board: chess.Board, opponent_name: str) -> None:
        self.color = color
        # senses that shrink the belief fastest (crisis_weight 0, no king guard) keep these random games' beliefs
        # small and fast
        self.belief = self.make(color, board, max_boards=self.max_boards, rng=self.rng, crisis_weight=0.0,
                             king_guard=2.0)

    def _check(self) -> None:
        assert self.belief is not None
        self.sizes.append(len(self.belief))
        assert 0 < len(self.belief) <= self.max_boards
        if self.max_boards < 10**9:
            return
        keys = {position_key(b) for b, _ in self.belief.weighted()}
        assert position_key(self.game.board) in keys, self.game.board.fen()
        assert self.belief.exact
        self.checks += 1

    def handle_opponent_move_result(self, captured_my_piece: bool, capture_square: int | None) -> None:
        assert self.belief is not None
        if self.belief.needs_opponent_move():
            self.belief.opponent_moved(capture_square)

    def choose_sense(self, sense_actions: list[int], move_actions: list[chess.Move],
                     seconds_left: float) -> int | None:
        assert self.belief is not None
        return self.belief.choose_sense(sense_actions)

    def handle_sense_result(self, sense_result: list[tuple[int, chess.Piece | None]]) -> None:
        assert self.belief is not None
        self.belief.sensed(sense_result)
        self._check()

    def choose_move(self, move_actions: list[chess.Move], seconds_left: float) -> chess.Move | None:
        return self.rng.choice([*move_actions, None])

    def handle_move_result(self, requested_move: chess.Move | None, taken_move: chess.Move | None,
                           captured_opponent_piece: bool, capture_square: int | None) -> None:
        assert self.belief is not None
        self.belief.moved(requested_move, taken_move, capture_square)
        if self.game.board.king(not self.color) is not None:  # else we just captured the king
            self._check()

    def handle_game_end(self, *args: object) -> None:
        pass


def _play(seed: int, max_boards: int, turns: int, make: MakeBelief) -> tuple[Tracker, Tracker]:
    rng = random.Random(seed)
    game = LocalGame(seconds_per_player=None)
    white = Tracker(game, random.Random(rng.random()), max_boards, make)
    black = Tracker(game, random.Random(rng.random()), max_boards, make)
    game.store_players("white", "black")
    white.handle_game_start(chess.WHITE, game.board.copy(), "black")
    black.handle_game_start(chess.BLACK, game.board.copy(), "white")
    game.start()
    for _ in range(turns):
        if game.is_over():
            break
        play_turn(game, white if game.turn == chess.WHITE else black, end_turn_last=True)
    return white, black


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_true_board_always_in_unbounded_belief(seed: int, make: MakeBelief) -> None:
    white, black = _play(seed, 10**9, 24, make)  # seed 2: 5,817 boards at most (30 turns: the same, twice the time)
    assert white.checks + black.checks >= 20  # both sides were checked after every sense and move


def test_bounded_belief_stays_bounded_and_never_empty(make: MakeBelief) -> None:
    white, black = _play(7, 40, 40, make)
    assert max(white.sizes + black.sizes) <= 40
    assert min(white.sizes + black.sizes) >= 1
    assert not (white.belief and white.belief.exact and black.belief and black.belief.exact)  # it did sample


def test_rbc_moves_include_castling_through_check_and_the_pass() -> None:
    # black bishop on a6 attacks f1: chess forbids O-O here, RBC allows it
    board = chess.Board("r3k2r/8/b7/8/8/8/8/R3K2R w KQkq - 0 1")
    moves = rbc_moves(board)
    assert chess.Move.from_uci("e1g1") in moves
    assert chess.Move.from_uci("e1g1") not in board.legal_moves
    assert chess.Move.from_uci("e1c1") in moves
    assert None in moves


def test_revised_moves_as_the_arbiter_makes_them() -> None:
    board = chess.Board("4k3/8/8/r7/8/8/8/R3K3 w - - 0 1")
    # the rook's slide to a8 stops at the black rook on a5 (capturing it); a pawn push into a piece is a pass
    assert taken_move(board, chess.Move.from_uci("a1a8")) == chess.Move.from_uci("a1a5")
    blocked = chess.Board("4k3/8/8/8/8/4p3/4P3/4K3 w - - 0 1")
    assert taken_move(blocked, chess.Move.from_uci("e2e4")) is None
    assert taken_move(blocked, chess.Move.from_uci("e2d3")) is None  # a pawn capture onto an empty square


def _after_black_rook_moves(make: MakeBelief) -> Belief:
    belief = make(chess.WHITE, chess.Board("4k3/8/8/8/1r6/8/8/R3K3 b - - 0 1"), max_boards=10**9)
    belief.opponent_moved(None)
    belief.sensed([])
    return belief


def test_move_result_cut_short_by_a_capture(make: MakeBelief) -> None:
    belief = _after_black_rook_moves(make)
    assert len(belief) == 20  # 14 rook moves, 5 king moves, the pass
    # our rook's slide a1a8 stopped on a4, capturing: the black rook went b4a4
    belief.moved(chess.Move.from_uci("a1a8"), chess.Move.from_uci("a1a4"), chess.A4)
    boards = [b for b, _ in belief.weighted()]
    assert [b.board_fen() for b in boards] == ["4k3/8/8/8/R7/8/8/4K3"]
    assert boards[0].turn == chess.BLACK and belief.exact


def test_move_result_without_capture_excludes_blockers(make: MakeBelief) -> None:
    belief = _after_black_rook_moves(make)
    belief.moved(chess.Move.from_uci("a1a8"), chess.Move.from_uci("a1a8"), None)
    boards = [b for b, _ in belief.weighted()]
    assert boards and all(b.piece_at(chess.A8) == chess.Piece(chess.ROOK, chess.WHITE) for b in boards)
    assert not any(b.pieces(chess.ROOK, chess.BLACK) & chess.BB_FILE_A for b in boards)  # nothing was in the way
    assert all(b.turn == chess.BLACK for b in boards)


def test_sense_targets_the_uncertain_square(make: MakeBelief) -> None:
    # two boards that differ only by where the black knight stands (c6 or f6)
    one = chess.Board("r1bqkb1r/pppppppp/2n5/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1")
    two = chess.Board("rnbqkb1r/pppppppp/5n2/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1")
    belief = make(chess.WHITE, one, max_boards=100)
    belief._set([one, two], [0.5, 0.5])
    square = belief.choose_sense(chess.SQUARES)
    assert square in INNER_SQUARES
    assert square is not None and window(square) & (chess.BB_SQUARES[chess.C6] | chess.BB_SQUARES[chess.F6]
                                                     | chess.BB_SQUARES[chess.B8] | chess.BB_SQUARES[chess.G8])
    scores = belief.sense_scores()
    assert scores[square] == pytest.approx(0.5)  # either result halves the belief
    assert scores[chess.B2] == pytest.approx(1.0)  # white's side tells nothing
    belief.sensed([(sq, one.piece_at(sq)) for sq in chess.SquareSet(window(chess.C6))])
    assert [b.board_fen() for b, _ in belief.weighted()] == [one.board_fen()]


def test_known_board_is_not_sensed(make: MakeBelief) -> None:
    belief = make(chess.WHITE, chess.Board(), max_boards=100)
    assert belief.choose_sense(chess.SQUARES) is None


def test_black_first_sense_looks_at_whites_side(make: MakeBelief) -> None:
    belief = make(chess.BLACK, chess.Board(), max_boards=1000)
    belief.opponent_moved(None)
    assert len(belief) == 21  # 20 moves and the pass
    square = belief.choose_sense(chess.SQUARES)
    assert square is not None and chess.square_rank(square) <= 3


def test_sense_contradicting_every_board_repairs(make: MakeBelief) -> None:
    belief = make(chess.WHITE, chess.Board(), max_boards=100)
    # a black queen seen on e4 where no board has one: the belief is repaired to hold it
    seen = [(sq, chess.Board().piece_at(sq)) for sq in chess.SquareSet(window(chess.E4))]
    seen = [(sq, chess.Piece(chess.QUEEN, chess.BLACK) if sq == chess.E4 else p) for sq, p in seen]
    belief.sensed(seen)
    assert not belief.exact
    assert all(b.piece_at(chess.E4) == chess.Piece(chess.QUEEN, chess.BLACK) for b, _ in belief.weighted())


def test_sense_checks_what_the_intended_move_hinges_on(make: MakeBelief) -> None:
    """Six boards (we are black): white's h-pawn on h2, h3 or h4, and white's bishop on c1 or a3.  Shrinking the
    belief alone says: look at the h-pawn (three outcomes).  But our favourite move is only safe when the bishop is
    on c1: with the value of each move on each board, the sense looks at the bishop instead."""
    boards = []
    for pawn in ("h2", "h3", "h4"):
        for bishop in ("c1", "a3"):
            b = chess.Board("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPP1/RN1QKBNR b KQkq - 0 1")
            b.set_piece_at(chess.parse_square(pawn), chess.Piece(chess.PAWN, chess.WHITE))
            b.set_piece_at(chess.parse_square(bishop), chess.Piece(chess.BISHOP, chess.WHITE))
            boards.append(b)
    belief = make(chess.BLACK, boards[0], max_boards=100)
    belief._set(boards, [1.0] * 6)
    sample = belief.sense_sample_boards()
    bishop_squares = chess.BB_SQUARES[chess.C1] | chess.BB_SQUARES[chess.A3]
    pawn_squares = chess.BB_SQUARES[chess.H2] | chess.BB_SQUARES[chess.H3] | chess.BB_SQUARES[chess.H4]
    blind = belief.choose_sense(chess.SQUARES, sample)
    assert blind is not None and window(blind) & pawn_squares
    # candidate 0 (risky): good with the bishop on c1, loses the king with it on a3; candidate 1 (safe): so-so
    values = [[0.55 if b.piece_at(chess.C1) else 0.0, 0.45] for b in sample[0]]
    informed = belief.choose_sense(chess.SQUARES, sample, values)
    assert informed is not None and window(informed) & bishop_squares
    assert not window(informed) & pawn_squares


def test_the_opponents_possible_moves_are_bounded_by_max_children(make: MakeBelief) -> None:
    """Issue 12: after the opponent's move the belief holds every child of every board (78,830 were seen with
    max_boards 5000); ``max_children`` bounds them: above it, children are drawn by weight, heaviest kept, and the
    belief says it is no longer exact. The true board is kept when it is heavy."""
    rng = random.Random(5)
    start = chess.Board("r1bqkbnr/pppppppp/2n5/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1")
    boards = [start]
    for move in list(start.pseudo_legal_moves)[:12]:  # twelve possible black positions, ~30 moves each
        b = start.copy(stack=False)
        b.push(move)
        b.push(chess.Move.null())
        boards.append(b)
    belief = make(chess.WHITE, start, max_boards=1000, max_children=150, rng=rng)
    belief._set([b.copy(stack=False) for b in boards[1:]], [1.0] * 12)
    assert len(belief.boards) == 12 and belief.boards[0].turn == chess.BLACK
    belief.opponent_moved(None)
    assert len(belief) == 150 and belief.last.sampled and not belief.exact
    unbounded = make(chess.WHITE, start, max_boards=1000, rng=random.Random(5))
    unbounded._set([b.copy(stack=False) for b in boards[1:]], [1.0] * 12)
    unbounded.opponent_moved(None)
    assert len(unbounded) > 250 and unbounded.exact  # the default bound (200,000) is far above
    belief.sensed([])
    assert len(belief) <= 150


@pytest.mark.parametrize(("fen", "uci", "prior"), [
    ("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", None, 0.4),  # a pass
    ("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", "e2e3", 1.3),  # forward
    ("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", "e1d1", 0.6),  # a king step
    ("4k3/8/8/8/8/8/8/4K2R w K - 0 1", "e1g1", 1.5),  # castling
    ("k7/8/8/8/8/4R3/8/4K3 w - - 0 1", "e3d3", 1.0),  # sideways
    ("k7/8/8/8/8/4R3/8/4K3 w - - 0 1", "e3e2", 0.7),  # back
    ("4k3/8/8/8/8/3R4/8/4K3 w - - 0 1", "d3e3", 4.0),  # sideways onto the king's file: check
    ("k7/4P3/8/8/8/8/8/4K3 w - - 0 1", "e7e8q", 1.5),  # queen promotion
    ("k7/4P3/8/8/8/8/8/4K3 w - - 0 1", "e7e8n", 0.05),  # under-promotion
    ("4k3/8/8/8/8/8/8/1N2K3 w - - 0 1", "b1c3", 1.3 * 2.0 * 2.0),  # develops, and closer to attacking the king
    ("4k3/8/8/8/3N4/8/8/4K3 w - - 0 1", "d4f5", 1.3 * 2.0 * 3.0),  # closer, and onto a square checking next move
    ("4k3/8/8/8/3n4/8/8/4K3 b - - 0 1", "d4f3", 1.3 * 4.0),  # black forward, checks the white king
    ("4k3/8/8/8/8/3p4/4R3/4K3 w - - 0 1", "e2d2", 1.0),  # sideways, no capture
    ("4k3/8/8/8/8/3p4/3R4/4K3 w - - 0 1", "d2d3", 1.3 * 1.5),  # forward capture
])
def test_opponent_move_prior_values(fen: str, uci: str | None, prior: float) -> None:
    """The opponent model's factors as documented (opponent_move_prior): pass 0.4, forward 1.3, back 0.7, king step
    0.6, castle 1.5, queen promotion 1.5, under-promotion 0.05, development x2, capture x1.5, check x4, a knight
    closer to attacking the king x2 and onto a square from which it attacks it next move x3."""
    board = chess.Board(fen)
    move = chess.Move.from_uci(uci) if uci is not None else None
    assert move is None or move in rbc_moves(board)
    assert opponent_move_prior(board, move) == pytest.approx(prior)


def test_an_attacked_king_escapes_with_at_least_the_escape_share() -> None:
    """move_priors: when the mover's king is attacked, the moves that take it out of reach carry at least
    ESCAPE_SHARE of the prior (here they had 2.4 of 3.4 = 71 % before), and their ratios among themselves hold."""
    board = chess.Board("4k3/8/8/8/8/8/8/K3R3 b - - 0 1")
    moves = rbc_moves(board)
    priors = move_priors(board, moves)
    escapes = {"e8d8", "e8f8", "e8d7", "e8f7"}
    share = sum(p for m, p in zip(moves, priors, strict=True) if m is not None and m.uci() in escapes) / sum(priors)
    assert share == pytest.approx(ESCAPE_SHARE)
    by_move = {m.uci() if m is not None else None: p for m, p in zip(moves, priors, strict=True)}
    assert by_move["e8d8"] == pytest.approx(by_move["e8f7"])
    assert by_move["e8e7"] == pytest.approx(0.6) and by_move[None] == pytest.approx(0.4)
