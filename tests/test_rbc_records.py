"""RBC records from a reconchess GameHistory: the JSON (reconchess's own encoder) and the PGN of the true
game, which replays to the final true board even through RBC-only moves (king left in check, king taken)."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime
from pathlib import Path

import chess
import chess.pgn
import pytest
from reconchess import GameHistory, LocalGame, WinReason, play_local_game
from reconchess.bots.attacker_bot import AttackerBot
from reconchess.bots.random_bot import RandomBot

from bridge.games.rbc_records import (
    RbcBoard,
    final_board,
    history_to_pgn,
    pgn_text,
    read_history,
    read_pgn,
    write_records,
)


def _play(moves: list[str | None], fen: str | None = None) -> GameHistory:
    """A LocalGame where each side senses nothing and requests ``moves`` in turn (None: pass)."""
    game = LocalGame(seconds_per_player=None)
    if fen is not None:
        game.board = chess.Board(fen)
        game.turn = game.board.turn
    game.store_players("Alice", "Bob")
    game.start()
    for uci in moves:
        assert not game.is_over()
        game.sense(None)
        game.move(chess.Move.from_uci(uci) if uci else None)
        game.end_turn()
    game.end()
    history = game.get_game_history()
    assert history is not None
    return history


def test_records_of_random_games_replay_to_the_true_board(tmp_path: Path) -> None:
    """30 seeded games (RandomBot and AttackerBot): the JSON reads back as the same GameHistory, and the PGN
    replays move by move to the true final board."""
    random.seed(11)
    for i in range(30):
        white, black = RandomBot(), (AttackerBot() if i % 2 else RandomBot())
        winner, reason, history = play_local_game(white, black, LocalGame(seconds_per_player=None))
        json_path, pgn_path = write_records(
            history, tmp_path, f"game-{i}", site="http://sandbox", game_id=str(i)
        )
        again = read_history(json_path)
        assert json.loads(json_path.read_text()) == json.loads(json.dumps(again, cls=_encoder()))
        assert [again.taken_move(t) for t in again.turns() if again.has_move(t)] == [
            history.taken_move(t) for t in history.turns() if history.has_move(t)
        ]
        game = read_pgn(pgn_path.read_text())
        truth = final_board(history)
        assert truth is not None
        assert game.end().board().fen() == truth.fen()
        assert game.headers["Result"] == {True: "1-0", False: "0-1", None: "1/2-1/2"}[winner]
        assert game.headers["Termination"] == (reason.name if reason else "DRAW")
        assert game.headers["White"] == "RandomBot" and game.headers["Site"] == "http://sandbox"
        assert game.headers["GameId"] == str(i)


def _encoder() -> type[json.JSONEncoder]:
    from reconchess import GameHistoryEncoder

    return GameHistoryEncoder


def test_rbc_only_moves_replay() -> None:
    """Moves a chess PGN reader refuses: leaving the king in check, castling through an attacked square,
    capturing the king. They are written as SAN and read back by read_pgn."""
    history = _play(
        [
            "e2e4",
            "f7f6",
            "d1h5",
            "e8f7",  # 2...Kf7?? walks into the queen's line: legal in RBC
            "h5f7",
        ]
    )  # and the queen captures the king
    assert history.get_win_reason() == WinReason.KING_CAPTURE and history.get_winner_color() is True
    game = history_to_pgn(history, date=datetime(2026, 1, 2))
    text = pgn_text(game)
    assert "Qxf7" in text and '[Termination "KING_CAPTURE"]' in text and '[Date "2026.01.02"]' in text
    assert '[Result "1-0"]' in text and '[White "Alice"]' in text
    board = read_pgn(text).end().board()
    assert board.king(chess.BLACK) is None and board.fen() == final_board(history).fen()  # type: ignore[union-attr]
    standard = chess.pgn.read_game(io.StringIO(text))  # a chess reader stops at 2...Kf7 (into check)
    assert standard is not None and standard.errors and len(list(standard.mainline_moves())) == 3

    castle = _play(["e1g1"], fen="rnbqk2r/pppp1ppp/8/8/1b6/8/PPPP1bPP/RNBQK2R w KQkq - 0 1")  # through check
    assert castle.taken_move(castle.last_turn()) == chess.Move.from_uci("e1g1")
    replayed = read_pgn(pgn_text(history_to_pgn(castle))).end().board()
    assert replayed.piece_at(chess.G1) == chess.Piece(chess.KING, chess.WHITE)
    assert replayed.fen() == final_board(castle).fen()  # type: ignore[union-attr]
    assert '[SetUp "1"]' in pgn_text(history_to_pgn(castle))


def test_passes_and_cut_short_moves_are_annotated() -> None:
    history = _play(
        ["a2a4", None, "a1a3", "b7b5", "a4b5", "a7a5", "a3a8"],
        fen="rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/R3KBNR w KQkq - 0 1",
    )
    text = pgn_text(history_to_pgn(history))
    assert "1... --" in text  # black's pass
    assert "{ no sense }" in text
    assert "requested a3a8" in text  # the rook stopped at the pawn on a5... and took it
    assert read_pgn(text).end().board().fen() == final_board(history).fen()  # type: ignore[union-attr]


def test_a_game_without_moves() -> None:
    """A game lost before its first move (error_resign, a flag): headers only."""
    game = LocalGame(seconds_per_player=None)
    game.store_players("a", "b")
    game.seconds_left_by_color[chess.WHITE] = 0
    game.end()
    history = game.get_game_history()
    assert history is not None and history.is_empty() and final_board(history) is None
    text = pgn_text(history_to_pgn(history))
    assert '[Termination "TIMEOUT"]' in text and '[Result "0-1"]' in text
    assert list(read_pgn(text).mainline_moves()) == []


def test_rbc_board_rules() -> None:
    board = RbcBoard("4k3/8/8/8/8/8/4r3/4K3 w - - 0 1")  # white king in check from e2
    moves = {m.uci() for m in board.legal_moves}
    assert "e1d1" in moves and "e1e2" in moves  # moving along the rook's line is fine in RBC
    assert board.parse_san("Kd2") == chess.Move.from_uci("e1d2")
    assert not board.is_checkmate()
    with pytest.raises(ValueError):
        read_pgn("not a game")
