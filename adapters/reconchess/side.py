"""The game-player side of a reconchess game on the game loop (:class:`bridge.gameloop.GamePlayer`): any
``reconchess.Player``, told the game exactly as ``reconchess.play_remote_game`` tells it (game start; per turn:
opponent move result, choose sense, sense result, choose move, move result; game end).

A turn is two decisions: the sense (``Decision.more``: the turn goes on), then -- told the sense result -- the
move and the end of the turn. What the player observed is kept in the game's :class:`RbcGameState` (the
adapter writes it to disk after every step and before a move is sent): ``start`` replays it into a fresh
player after a restart, and a turn that was under way is completed (what is left of it is decided). A lost
sense result is given to the player as "saw nothing"; a lost move result is rebuilt at our next turn from the
move actions offered then (:func:`infer_taken_move`), or exactly from the game history if the game ended first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import chess
from reconchess import GameHistory, Player, WinReason
from reconchess.utilities import add_pawn_queen_promotion, move_actions

from bridge.adapters.reconchess.api import MoveResult
from bridge.errors import EngineError
from bridge.events import GameContext
from bridge.gameloop import Decision, Landed, Record, Snapshot
from bridge.games.rbc_state import RbcGameState, TurnRecord

if TYPE_CHECKING:
    from bridge.adapters.reconchess.play import RbcView, ReconchessGame


def color_name(color: bool | None) -> str:
    return "?" if color is None else ("white" if color else "black")


def sq(square: int | None) -> str:
    return "-" if square is None else chess.square_name(square)


def mv(move: chess.Move | None) -> str:
    return "pass" if move is None else move.uci()


# --- the actions --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sense:
    square: int | None

    def __str__(self) -> str:
        return f"sense {sq(self.square)}"


@dataclass(frozen=True)
class Move:
    move: chess.Move | None

    def __str__(self) -> str:
        return f"move {mv(self.move)}"


@dataclass(frozen=True)
class EndTurn:
    def __str__(self) -> str:
        return "end_turn"


Action = Sense | Move | EndTurn


@dataclass(frozen=True)
class TurnOptions:
    """What the server offers at our turn (read by the adapter's ``options``)."""

    sense_actions: list[int]
    move_actions: list[chess.Move]
    capture: int | None  # where the opponent captured one of our pieces in its last move
    seconds: float  # left on our clock
    read_at: float  # time.monotonic() when read


# --- our own pieces: what a lost move result is rebuilt from ---------------------------------------------
def own_pieces(board: chess.Board, color: bool) -> chess.Board:
    """``board`` with only ``color``'s pieces, ``color`` to move."""
    own = board.copy(stack=False)
    for square in chess.SquareSet(own.occupied_co[not color]):
        own.remove_piece_at(square)
    own.turn = color
    own.ep_square = None
    return own


def apply_own_move(own: chess.Board, color: bool, taken: chess.Move | None) -> None:
    if taken is not None:
        own.turn = color
        own.push(taken)
        own.clear_stack()
    own.turn = color
    own.ep_square = None


def remove_captured(own: chess.Board, square: int | None) -> None:
    if square is not None:
        own.remove_piece_at(square)
        own.castling_rights &= ~chess.BB_SQUARES[square]  # a rook taken at home takes its castling right along


def infer_taken_move(
    own_before: chess.Board,
    color: bool,
    requested: chess.Move | None,
    capture_square: int | None,
    offered: list[chess.Move],
) -> chess.Move | None:
    """The move the server took for ``requested`` (the requested move, the same move cut short along its path,
    or a pass), chosen as the one whose resulting position of our pieces best explains the move actions
    ``offered`` at our next turn (``capture_square``: where the opponent then captured, if anywhere)."""
    if requested is None:
        return None
    request = add_pawn_queen_promotion(own_before, requested)
    candidates: list[chess.Move | None] = [request]
    piece = own_before.piece_at(request.from_square)
    if piece is not None and piece.piece_type in (chess.PAWN, chess.ROOK, chess.BISHOP, chess.QUEEN):
        path = list(chess.SquareSet(chess.between(request.from_square, request.to_square)))
        path.sort(key=lambda s: chess.square_distance(s, request.from_square), reverse=True)  # longest first
        candidates += [chess.Move(request.from_square, s) for s in path]
    candidates.append(None)
    target = {m.uci() for m in offered}
    best: chess.Move | None = request
    best_score = -1.0
    for candidate in candidates:
        board = own_before.copy(stack=False)
        try:
            apply_own_move(board, color, candidate)
        except (AssertionError, ValueError, IndexError):  # not even playable on our pieces: not it
            continue
        remove_captured(board, capture_square)
        board.turn = color
        simulated = {m.uci() for m in move_actions(board)}
        union = simulated | target
        score = len(simulated & target) / len(union) if union else 1.0
        if score > best_score:
            best, best_score = candidate, score
    return best


# --- the player's side --------------------------------------------------------------------------------------
class RbcSide:
    """A ``reconchess.Player`` (made by ``player_factory``) on the game loop, for one game of ``game``."""

    def __init__(self, game: ReconchessGame, ctx: GameContext,
                 player_factory: Callable[[GameContext], Player]) -> None:
        self.game = game
        self.ctx = ctx
        self.player_factory = player_factory
        self.player: Player | None = None
        self.own = chess.Board()
        self.lost_move: tuple[chess.Move | None, chess.Board] | None = None  # (requested, our pieces before it)
        self.pending_result: MoveResult | None = None  # told the player after end_turn
        self.sensing: tuple[int | None, int | None] | None = None  # (capture, square) of the sense under way
        self.current_turn = 0  # the turn whose sense this run decided
        self.closed = False
        self.turn_started = 0.0
        self.seconds = 0.0

    @property
    def state(self) -> RbcGameState:
        assert self.game.state is not None
        return self.game.state

    @property
    def color(self) -> bool:
        return self.state.color

    def _player(self) -> Player:
        assert self.player is not None
        return self.player

    # --- GamePlayer ----------------------------------------------------------------------------------------
    def start(self, snap: Snapshot[RbcView]) -> None:
        self._build()

    def _build(self) -> None:
        """A fresh player told the game from its start: the observations on record replayed through it."""
        board = chess.Board(self.state.starting_fen)
        self.own = own_pieces(board, self.color)
        self.lost_move = None
        self.player = self.player_factory(self.ctx)
        self.closed = False
        self.player.handle_game_start(self.color, board.copy(), self.state.opponent)
        if self.state.turns:
            self._replay(self.state.turns)

    def _replay(self, turns: list[TurnRecord]) -> None:
        """Tell the player again everything observed before (a restart), through the ``reconchess.Player``
        interface; a turn that was under way is completed at the loop's first turn."""
        player = self._player()
        started = time.monotonic()
        begin = getattr(player, "begin_replay", None)  # optional: a player may make its replay cheaper
        if callable(begin):
            begin()
        for record in turns:
            remove_captured(self.own, record.capture)
            player.handle_opponent_move_result(record.capture is not None, record.capture)
            player.handle_sense_result(list(record.sense_result))
            own_before = self.own.copy(stack=False)
            if record.move in ("known", "uncertain"):
                apply_own_move(self.own, self.color, record.taken)
                hook = getattr(player, "handle_uncertain_move_result", None)
                if record.move == "uncertain" and callable(hook):
                    hook(record.requested, record.taken)
                else:
                    player.handle_move_result(record.requested, record.taken, record.capture_square is not None,
                                              record.capture_square)
            elif record.move == "lost":
                self.lost_move = (record.requested, own_before)
        last = turns[-1]
        under_way = last.move is None or not last.ended
        self.game.note(f"resumed: the player was told the {len(turns)} turn(s) observed before the restart again "
                       f"({time.monotonic() - started:.2f} s)"
                       + (f"; turn {len(turns)} was under way" if under_way else ""))

    def observe(self, snap: Snapshot[RbcView]) -> None:
        pass

    def decide(self, snap: Snapshot[RbcView], deadline: float, options: Any,
               refused: Sequence[Action]) -> Decision[Action]:
        assert isinstance(options, TurnOptions)
        turns = self.state.turns
        if len(turns) == snap.turn - 1 and turns and not turns[-1].ended:
            self._partial_ended(turns[-1])
        if len(turns) < snap.turn:  # a new turn: the sense
            return self._sense_decision(snap, options)
        record = turns[snap.turn - 1]
        if self.current_turn != snap.turn:  # sensed before the restart
            self.current_turn = snap.turn
            self.game.note(f"turn {snap.turn}: going on with the turn under way before the restart")
            self.turn_started, self.seconds = options.read_at, options.seconds
        if record.move is None:  # the move
            offered = options.move_actions
            left = max(0.0, self.seconds - (time.monotonic() - self.turn_started))
            move = self._player().choose_move(list(offered), left)
            if move is not None and (
                not isinstance(move, chess.Move)
                or (move not in offered and add_pawn_queen_promotion(self.own, move) not in offered)
            ):
                self.game.note(f"turn {snap.turn}: the player chose {move!r}, not a move action; passing")
                move = None
            record.requested, record.move = move, "sent"  # saved before it is sent (the adapter's send)
        if record.move == "sent":
            return Decision((Move(record.requested), EndTurn()))
        return Decision((EndTurn(),))  # moved before the restart: the turn is ended

    def _sense_decision(self, snap: Snapshot[RbcView], options: TurnOptions) -> Decision[Action]:
        player = self._player()
        self.current_turn = snap.turn
        self.turn_started, self.seconds = options.read_at, options.seconds
        if self.lost_move is not None:
            self._settle_lost_move(snap.turn, options.move_actions, options.capture)
        capture = options.capture
        remove_captured(self.own, capture)
        player.handle_opponent_move_result(capture is not None, capture)
        sense_actions = options.sense_actions
        square = player.choose_sense(list(sense_actions), list(options.move_actions), options.seconds)
        if square is not None and (isinstance(square, bool) or square not in sense_actions):
            self.game.note(f"turn {snap.turn}: the player chose {square!r}, not a sense action; sensing nothing")
            square = None
        self.sensing = (capture, square)
        return Decision((Sense(square),), more=True)

    def _partial_ended(self, record: TurnRecord) -> None:
        """A turn under way before a restart ended before we saw it again (its end_turn had gone through)."""
        if record.move == "sent":  # carried out and ended, its answer lost: rebuilt at this turn
            record.move = "lost"
            self.lost_move = (record.requested, self.own.copy(stack=False))
        record.ended = True

    def played(self, snap: Snapshot[RbcView], decision: Decision[Action], action: Action, landed: Landed,
               after: Snapshot[RbcView] | None) -> None:
        player = self._player()
        if isinstance(action, Sense):
            result = list(landed.result) if landed.result is not None else []  # lost: "saw nothing"
            player.handle_sense_result(result)
            capture, square = self.sensing if self.sensing is not None else (None, action.square)
            self.state.turns.append(TurnRecord(capture=capture, sense=square, sense_result=result))
            return
        record = self.state.turns[snap.turn - 1]
        if isinstance(action, Move):
            if landed.result is not None:
                self.pending_result = landed.result
                record.requested, record.taken, record.capture_square = landed.result
                record.move = "known"
            else:  # rebuilt at our next turn, or from the history at the end
                record.move = "lost"
                self.lost_move = (action.move, self.own.copy(stack=False))
            return
        record.ended = True
        self._deliver_pending()
        self._turn_note(snap.turn, record)

    def _turn_note(self, turn: int, record: TurnRecord) -> None:
        seen = sum(1 for _, piece in record.sense_result if piece is not None)
        beliefs = getattr(self.player, "belief_size", None)
        extra = f"; {beliefs()} possible boards" if callable(beliefs) else ""
        outcome = (f"requested {mv(record.requested)}, result lost" if record.move == "lost" else
                   f"requested {mv(record.requested)}, took {mv(record.taken)}, captured on "
                   f"{sq(record.capture_square)}")
        self.game.note(f"turn {turn}: opponent captured on {sq(record.capture)}; sensed {sq(record.sense)} "
                       f"({seen} pieces seen); {outcome}; {self.seconds:.1f} s left{extra}")

    def _deliver_pending(self) -> None:
        if self.pending_result is None:
            return
        requested, taken, capture = self.pending_result
        self.pending_result = None
        apply_own_move(self.own, self.color, taken)
        self._player().handle_move_result(requested, taken, capture is not None, capture)

    def _settle_lost_move(self, turn: int, offered: list[chess.Move], capture: int | None) -> None:
        assert self.lost_move is not None
        requested, own_before = self.lost_move
        self.lost_move = None
        taken = infer_taken_move(own_before, self.color, requested, capture, offered)
        self.own = own_before.copy(stack=False)
        apply_own_move(self.own, self.color, taken)
        self.game.note(f"turn {turn}: the lost move result rebuilt from the move actions offered now: requested "
                       f"{mv(requested)}, taken {mv(taken)}; whether it captured is unknown")
        if self.state.turns and self.state.turns[-1].move == "lost":
            last = self.state.turns[-1]
            last.requested, last.taken, last.capture_square, last.move = requested, taken, None, "uncertain"
        hook = getattr(self.player, "handle_uncertain_move_result", None)
        if callable(hook):
            hook(requested, taken)
        else:
            self._player().handle_move_result(requested, taken, False, None)

    def restart(self, why: str) -> None:
        """A reconchess player has no engine the loop can see (it handles its own); a fresh one is built and
        told the game again, like after a restart of the bridge."""
        self.close()
        try:
            self._build()
        except Exception as exc:
            raise EngineError(f"the player could not be rebuilt: {exc}") from exc

    def fallback(self, snap: Snapshot[RbcView], why: str, refused: Sequence[Action]) -> Decision[Action] | None:
        return None

    def rejected(self, action: Action, reason: str) -> None:
        pass

    def records(self, final: Snapshot[RbcView]) -> list[Record]:
        """The game is over: the last move result told, a lost one settled from the history, the game's end."""
        if self.player is None:
            return []
        self._deliver_pending()
        turns = self.state.turns
        if turns and not turns[-1].ended and turns[-1].move == "sent":  # moved before a restart, then the end
            self._partial_ended(turns[-1])
        winner, reason, history = final.state.end if final.state.end is not None else (None, None, None)
        if self.lost_move is not None:
            self._settle_from_history(history)
        self.player.handle_game_end(winner, reason, history)
        return []

    def _settle_from_history(self, history: GameHistory | None) -> None:
        assert self.lost_move is not None
        self.lost_move = None
        if history is None or history.is_empty():
            return
        turns = [t for t in history.turns(self.color) if history.has_move(t)]
        ours = len(self.state.turns)
        if len(turns) < ours:  # the game ended before that move was carried out: nothing to tell
            self.game.note("the lost move was never carried out (the game had ended)")
            return
        req, taken, capture = history.move_result(turns[ours - 1])
        self.game.note(f"the lost move result, from the game history: requested {mv(req)}, took {mv(taken)}, "
                       f"captured on {sq(capture)}")
        self._player().handle_move_result(req, taken, capture is not None, capture)

    def close(self) -> None:
        """Close the player's engine (idempotent); the player is kept to be told the game's end."""
        if self.closed:
            return
        self.closed = True
        close: Any = getattr(self.player, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:
                self.game.log_warning(f"closing the player failed: {exc}")


__all__ = ["Action", "EndTurn", "Move", "RbcSide", "Sense", "TurnOptions", "WinReason", "apply_own_move",
           "infer_taken_move", "own_pieces", "remove_captured"]
