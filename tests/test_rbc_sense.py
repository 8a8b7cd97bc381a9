"""The RBC sense keeps our king in sight (issue 12: knight rushes captured our king at half-turn 7-10 while the sense
looked far away).  Pure belief tests: no engine, a few hundred milliseconds each."""

from __future__ import annotations

import random

import chess
import pytest

from bridge.games.rbc_belief import WINDOWS, Belief

# reconchess's AttackerBot knight rushes (white's moves; flipped when the rusher plays black)
RUSHES = {
    "b1-c3-b5-d6": ["b1c3", "c3b5", "b5d6", "d6e8"],
    "b1-c3-e4-f6": ["b1c3", "c3e4", "e4f6", "f6e8"],
    "g1-h3-f4-h5-f6": ["g1h3", "h3f4", "f4h5", "h5f6", "f6e8"],
}
OURS = {  # our moves meanwhile (black's; flipped for white)
    "quiet": ["a7a6", "a6a5", "b7b6", "a8a7", "a7a8"],
    # the bridge's moves in a game it lost to AttackerBot's g1-h3 rush (60 s + 1 s, half-turn 9): the e8-a4 diagonal
    # opens, and a bishop check from b5 looks likelier than the knight
    "open": ["d7d5", "e7e5", "c8e6", "b8c6", "a7a6"],
}


def _flip(uci: str) -> chess.Move:
    move = chess.Move.from_uci(uci)
    return chess.Move(chess.square_mirror(move.from_square), chess.square_mirror(move.to_square))


def _moves(ucis: list[str], flip: bool) -> list[chess.Move]:
    return [_flip(u) if flip else chess.Move.from_uci(u) for u in ucis]


KNOWN_BLIND = pytest.mark.xfail(strict=True, reason=(
    "known limit: with the e8-a4 diagonal open, a bishop check from b5 (p 0.038 in the belief) looks likelier than "
    "the knight's from f6 or d6 (0.011): the guard covers the likelier threat and the knight, lost track of two "
    "moves earlier, is not seen"))
CASES = [pytest.param(rush, line, us, id=f"{rush}-{line}-{'white' if us else 'black'}",
                      marks=[KNOWN_BLIND] if (rush, line, us) == ("g1-h3-f4-h5-f6", "open", chess.BLACK) else [])
         for rush in sorted(RUSHES) for line in sorted(OURS) for us in (chess.BLACK, chess.WHITE)]


@pytest.mark.parametrize(("rush", "line", "us"), CASES)
def test_the_sense_sees_a_knight_rush_check(rush: str, line: str, us: chess.Color) -> None:
    """The opponent's knight walks to our king while we shuffle; the sense is chosen by the belief and its result
    taken from the true board.  When the knight gives check, the sense must see it (the window covers the knight),
    or the king is captured on the opponent's next move.  Before the fix the sense looked elsewhere
    (e.g. f2 or c4 when the knight stood on f6 next to our king on e8)."""
    theirs = _moves(RUSHES[rush], flip=us == chess.WHITE)
    ours = _moves(OURS[line], flip=us == chess.WHITE)
    true = chess.Board()
    belief = Belief(us, true, max_boards=3000, rng=random.Random(7), sense_sample=800)
    if us == chess.WHITE:  # white moves first
        true.push(ours.pop(0))
        belief.moved(true.peek(), true.peek(), None)
    for step, move in enumerate(theirs):
        captured = true.piece_at(move.to_square) is not None
        true.push(move)
        belief.opponent_moved(move.to_square if captured else None)
        square = belief.choose_sense(chess.SQUARES)
        king = true.king(us)
        assert king is not None
        attackers = true.attackers_mask(not us, king)
        if attackers:
            assert square is not None and attackers & ~WINDOWS[square] == 0, (
                f"{rush}: after {move.uci()} (step {step + 1}) the {chess.square_name(move.to_square)} knight "
                f"checks our king on {chess.square_name(king)}, but the sense was "
                f"{chess.square_name(square) if square is not None else 'none'}")
            return
        if square is not None:
            belief.sensed([(sq, true.piece_at(sq)) for sq in chess.SquareSet(WINDOWS[square])])
        mine = ours.pop(0)
        true.push(mine)
        belief.moved(mine, mine, None)
    pytest.fail("the rush never gave check")  # the test's own premise


def _seen_check_boards() -> list[chess.Board]:
    """After 1. Nh3 a6 2. Nf4 a5 3. Nh5 b6 4. Nf6+ with the knight seen on f6 (the sense covered it): three boards
    that differ only in what white did with its queen-side pawns (unseen); our king on e8 is attacked on all."""
    base = chess.Board()
    for uci in ("g1h3", "a7a6", "h3f4", "a6a5", "f4h5", "b7b6", "h5f6"):
        base.push(chess.Move.from_uci(uci))
    boards = [base.copy(stack=False)]
    for old, new in ((chess.A2, chess.A3), (chess.B2, chess.B4)):
        board = base.copy(stack=False)
        board.remove_piece_at(old)
        board.set_piece_at(new, chess.Piece(chess.PAWN, chess.WHITE))
        boards.append(board)
    return boards


def _after_is_safe(board: chess.Board, move: chess.Move | None) -> bool:
    from bridge.games.rbc_belief import child, taken_move

    after = child(board, taken_move(board, move))
    king = after.king(chess.BLACK)
    return king is not None and not after.attackers_mask(chess.WHITE, king)


@pytest.mark.parametrize("engine", [pytest.param(False, id="material"),
                                    pytest.param(True, id="stockfish", marks=pytest.mark.e2e)])
def test_a_seen_check_is_answered(engine: bool, request: pytest.FixtureRequest) -> None:
    """With the checking knight seen, the move takes it or takes the king out of its reach on every board."""
    from reconchess.utilities import move_actions

    from bridge.config import EngineConfig
    from bridge.engines.uci import UciEngine
    from bridge.games.rbc import BridgeRbcPlayer
    from bridge.games.rbc_config import RbcConfig

    uci: UciEngine | None = None
    if engine:
        stockfish = request.getfixturevalue("stockfish")
        uci = UciEngine(EngineConfig(protocol="uci", command=[stockfish], options={"Threads": 1, "Hash": 16}))
    player = BridgeRbcPlayer(uci, RbcConfig(move_boards=3, candidates=4, engine_time=0.02, reserve=1.0, seed=3))
    try:
        boards = _seen_check_boards()
        assert all(b.attackers_mask(chess.WHITE, chess.E8) == chess.BB_SQUARES[chess.F6] for b in boards)
        player.handle_game_start(chess.BLACK, chess.Board(), "attacker")
        assert player.belief is not None
        player.belief._set([b.copy(stack=False) for b in boards], [1.0, 1.0, 1.0])
        move = player.choose_move(move_actions(boards[0]), 60.0)
        assert all(_after_is_safe(b, move) for b in boards), (move, player.last_move_info)
        print(f"answered with {move}: {player.last_move_info.get('why')}")
    finally:
        player.close()


def test_the_king_guard_looks_where_the_attackers_would_stand() -> None:
    """Boards (we are black, king on e8) with a white knight on f6 (check), on d6 (check) or far away on a3, and a
    white pawn on h2/h3/h4.  At or above ``king_guard`` the sense covers both checking squares; below it, or with the
    threat certain, the guard stays out of the choice."""
    base = chess.Board("rnbqkbnr/pppp1ppp/8/4p3/8/8/PPPPPPP1/R1BQKBNR b KQkq - 0 1")
    boards, weights = [], []
    for knight, share in (("f6", 0.03), ("d6", 0.03), ("a3", 0.94)):
        for pawn in ("h2", "h3", "h4"):
            board = base.copy(stack=False)
            board.set_piece_at(chess.parse_square(knight), chess.Piece(chess.KNIGHT, chess.WHITE))
            board.set_piece_at(chess.parse_square(pawn), chess.Piece(chess.PAWN, chess.WHITE))
            boards.append(board)
            weights.append(share / 3)
    guarded = Belief(chess.BLACK, base, king_guard=0.05, rng=random.Random(1))
    guarded._set(boards, weights)
    threats = guarded.king_threats()
    assert sum(threats.values()) == pytest.approx(0.06)
    square = guarded.choose_sense(chess.SQUARES)
    assert square is not None
    assert WINDOWS[square] & chess.BB_SQUARES[chess.F6] and WINDOWS[square] & chess.BB_SQUARES[chess.D6], square
    assert guarded.guarded == (pytest.approx(0.06), pytest.approx(0.06))
    unguarded = Belief(chess.BLACK, base, king_guard=0.07, rng=random.Random(1))
    unguarded._set(boards, weights)
    assert unguarded.guard_squares(list(chess.SQUARES)) == []
    assert unguarded.choose_sense(chess.SQUARES) is not None and unguarded.guarded is None
    certain = Belief(chess.BLACK, base, king_guard=0.05, rng=random.Random(1))
    certain._set(boards[:3], weights[:3])  # the knight on f6 on every board: nothing to look for there
    assert certain.guard_squares(list(chess.SQUARES)) == []
