"""Records of a finished Reconnaissance Blind Chess game, from reconchess's ``GameHistory``:

- ``NAME.json``: the ``GameHistory`` itself, written with reconchess's own ``GameHistoryEncoder`` (so
  ``reconchess.GameHistory.from_file`` and reconchess's replay tools read it back);
- ``NAME.pgn``: the true game as PGN (python-chess): the moves actually taken on the board (a pass is ``--``),
  each move's comment giving the mover's sense square and, when it differs, the move requested; headers name
  the players, the result, ``Termination`` (the win reason: KING_CAPTURE, TIMEOUT, RESIGN, TURN_LIMIT,
  MOVE_LIMIT) and the date.

RBC moves follow RBC rules, not chess rules: a king may be left in check, castling may cross attacked squares,
and the game ends by *capturing* the king. Standard PGN readers stop at such a move, so SAN here is written
and read against :class:`RbcBoard` (chess with those rules); :func:`read_pgn` replays a record to its final
board.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import chess
import chess.pgn
from reconchess import GameHistory, GameHistoryDecoder, GameHistoryEncoder, WinReason
from reconchess.utilities import is_psuedo_legal_castle

EVENT = "Reconnaissance Blind Chess"


class RbcBoard(chess.Board):
    """A board whose 'legal' moves are RBC's: pseudo-legal moves (no check rules) plus castling whenever the
    rights hold and the squares between king and rook are empty (reconchess's rule)."""

    def generate_castling_moves(
        self, from_mask: chess.Bitboard = chess.BB_ALL, to_mask: chess.Bitboard = chess.BB_ALL
    ) -> Iterator[chess.Move]:
        king = self.king(self.turn)
        if king is None or not chess.BB_SQUARES[king] & from_mask:
            return
        rank = chess.square_rank(king)
        for to_file in (6, 2):
            move = chess.Move(king, chess.square(to_file, rank))
            if chess.BB_SQUARES[move.to_square] & to_mask and is_psuedo_legal_castle(self, move):
                yield move

    def generate_legal_moves(
        self, from_mask: chess.Bitboard = chess.BB_ALL, to_mask: chess.Bitboard = chess.BB_ALL
    ) -> Iterator[chess.Move]:
        return self.generate_pseudo_legal_moves(from_mask, to_mask)

    def is_legal(self, move: chess.Move) -> bool:
        return self.is_pseudo_legal(move)

    def is_checkmate(self) -> bool:  # RBC has no checkmate; '#' would mislead
        return False


class _RbcHeaders(chess.pgn.Headers):
    def variant(self) -> type[chess.Board]:
        return RbcBoard


class RbcGame(chess.pgn.Game):
    """A PGN game whose board is an :class:`RbcBoard` (for writing and reading RBC records)."""

    def __init__(self, headers: Any = None) -> None:
        super().__init__(headers)
        self.headers = _RbcHeaders(self.headers)


def _result(winner: bool | None) -> str:
    if winner is None:
        return "1/2-1/2"
    return "1-0" if winner else "0-1"


def _turns(history: GameHistory) -> list[Any]:
    return [] if history.is_empty() else list(history.turns())


def history_to_pgn(
    history: GameHistory,
    *,
    site: str = "",
    date: datetime | None = None,
    game_id: str = "",
    white: str | None = None,
    black: str | None = None,
) -> RbcGame:
    """The true game of ``history`` as a PGN game (python-chess)."""
    game = RbcGame()
    winner = history.get_winner_color()
    reason = history.get_win_reason()
    when = date or datetime.now()
    game.headers["Event"] = EVENT
    game.headers["Site"] = site or "?"
    game.headers["Date"] = when.strftime("%Y.%m.%d")
    game.headers["Round"] = "-"
    game.headers["White"] = white or history.get_white_player_name() or "?"
    game.headers["Black"] = black or history.get_black_player_name() or "?"
    game.headers["Result"] = _result(winner)
    game.headers["Termination"] = reason.name if isinstance(reason, WinReason) else "DRAW"
    if game_id:
        game.headers["GameId"] = game_id
    turns = _turns(history)
    if turns:
        start = history.truth_fen_before_move(turns[0])
        if start != chess.STARTING_FEN:
            game.setup(RbcBoard(start))
    node: chess.pgn.GameNode = game
    for turn in turns:
        if not history.has_move(turn):
            break
        taken = history.taken_move(turn)
        requested = history.requested_move(turn)
        sense = history.sense(turn) if history.has_sense(turn) else None
        notes = [f"sense {chess.square_name(sense)}" if sense is not None else "no sense"]
        if requested != taken:
            notes.append(f"requested {requested.uci() if requested else 'pass'}")
        node = node.add_variation(taken if taken is not None else chess.Move.null(), comment="; ".join(notes))
    return game


def pgn_text(game: chess.pgn.Game) -> str:
    return game.accept(chess.pgn.StringExporter(headers=True, variations=False, comments=True)) + "\n"


def read_pgn(text: str) -> RbcGame:
    """Parse an RBC record written by :func:`write_records` (RBC move rules). Raises ValueError on errors."""
    game = chess.pgn.read_game(io.StringIO(text), Visitor=lambda: chess.pgn.GameBuilder(Game=RbcGame))
    if game is None or game.headers.get("Event") != EVENT:
        raise ValueError(f'not an RBC record: no PGN game with [Event "{EVENT}"]')
    if game.errors:
        raise ValueError(f"the PGN does not replay: {game.errors[0]}")
    assert isinstance(game, RbcGame)
    return game


def final_board(history: GameHistory) -> chess.Board | None:
    """The true board after the last move of ``history`` (None for a game without moves)."""
    turns = [t for t in _turns(history) if history.has_move(t)]
    # (not GameHistory.truth_board_after_move, which sets the side to move to the mover's colour)
    return chess.Board(history.truth_fen_after_move(turns[-1])) if turns else None


def history_json(history: GameHistory) -> str:
    return json.dumps(history, cls=GameHistoryEncoder)


def read_history(path: str | Path) -> GameHistory:
    with open(path, encoding="utf-8") as fp:
        history: GameHistory = json.load(fp, cls=GameHistoryDecoder)
    return history


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fp:
            fp.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_texts(history: GameHistory, name: str, **pgn_headers: Any) -> list[tuple[str, str]]:
    """The game's records as (file name, text): ``NAME.json`` and ``NAME.pgn``. ``pgn_headers``: ``site``,
    ``date``, ``game_id``, ``white``, ``black`` for :func:`history_to_pgn`. Raises ValueError/AssertionError on a
    history that does not replay."""
    return [(f"{name}.json", history_json(history)),
            (f"{name}.pgn", pgn_text(history_to_pgn(history, **pgn_headers)))]


def write_records(
    history: GameHistory, records_dir: str | Path, name: str, **pgn_headers: Any
) -> tuple[Path, Path]:
    """Write ``records_dir/NAME.json`` and ``records_dir/NAME.pgn`` (:func:`record_texts`); return their paths."""
    folder = Path(records_dir)
    (json_name, json_text), (pgn_name, pgn) = record_texts(history, name, **pgn_headers)
    _write_atomic(folder / json_name, json_text)
    _write_atomic(folder / pgn_name, pgn)
    return folder / json_name, folder / pgn_name
