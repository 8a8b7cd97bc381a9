"""One reconchess game, played through the HTTP API by any ``reconchess.Player``, exactly as
``reconchess.play_remote_game`` does it (color, starting board, opponent name, ready; then, until the game is
over, poll ``game_status``; on our turn: opponent move result, sense, move, end turn; at the end winner, win
reason, history) — but robust where the official client is not:

- a bad answer from the server or a failing player ends the game with ``error_resign`` and one clear log line,
  never a crash of the daemon;
- a sense or move that the player chose outside the offered actions is replaced by "nothing" / a pass (noted);
- a POST whose answer was lost (connection dropped after the server acted; the retry is refused with 400
  "already sensed/moved") is settled from the game's state instead of failing: a lost sense result is given to
  the player as "saw nothing" (no information, so a belief-tracking player stays consistent); a lost move
  result is rebuilt at our next turn from the move actions the server offers then (they reveal where our
  pieces stand), or exactly from the game history if the game ended first; only whether that move captured
  stays unknown (players may implement ``handle_uncertain_move_result(requested, taken)`` to be told so);
- the game's state (colour, starting board, and per turn what was observed: capture square, sense and result,
  move result) is written to ``daemon.data_dir/state/reconchess-GAME.json`` after every step
  (:mod:`bridge.games.rbc_state`); the daemon stopping mid-game leaves the game on the server and the file on
  disk, and the next start goes on with it: the player is rebuilt by replaying the observations through it, and
  a step that may have been carried out just before the stop is settled like a lost answer. The file is removed
  when the game ends.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import chess
from reconchess import GameHistory, Player, WinReason
from reconchess.utilities import add_pawn_queen_promotion, move_actions

from bridge.adapters.reconchess.api import ApiError, MoveResult, RbcApi, SenseResult, Stopped, Unauthorized
from bridge.errors import ServerError
from bridge.events import GameContext
from bridge.games.rbc_records import write_records
from bridge.games.rbc_state import RbcGameState, TurnRecord, remove_state, save_state

if TYPE_CHECKING:
    from bridge.adapters.reconchess.client import ReconchessAdapter

log = logging.getLogger("bridge.reconchess")

T = TypeVar("T")
SOURCE = "reconchess"


class _GameOver(Exception):
    """The game ended while we were in the middle of a turn (a flag fell, the opponent resigned...)."""


@dataclass(frozen=True)
class GameResult:
    game_id: int
    invitation_id: int
    color: bool | None
    opponent: str
    winner_color: bool | None
    win_reason: WinReason | None
    turns: int
    error: str | None = None
    settled: int = 0  # lost answers settled from the game state

    @property
    def won(self) -> bool | None:
        if self.color is None or self.winner_color is None:
            return None
        return self.color == self.winner_color


def _color_name(color: bool | None) -> str:
    return "?" if color is None else ("white" if color else "black")


def _sq(square: int | None) -> str:
    return "-" if square is None else chess.square_name(square)


def _mv(move: chess.Move | None) -> str:
    return "pass" if move is None else move.uci()


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
        own.castling_rights &= ~chess.BB_SQUARES[
            square
        ]  # a rook taken at home takes its castling right along


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


# --- the game loop ------------------------------------------------------------------------------------------
class GameRunner:
    """Plays one accepted game (invitation ``invitation_id`` -> game ``game_id``) in the calling thread.

    ``saved``: the game's state from disk (a restarted bridge going on with it); ``resumed``: the game was being
    played by an earlier run of the bridge (with ``saved`` None its state file was unreadable: the game goes on
    from what the server tells, the player's past observations lost)."""

    def __init__(
        self,
        adapter: ReconchessAdapter,
        ctx: GameContext,
        invitation_id: int | None,
        game_id: int,
        player_factory: Callable[[GameContext], Player],
        saved: RbcGameState | None = None,
        resumed: bool = False,
    ) -> None:
        self.adapter = adapter
        self.ctx = ctx
        self.invitation_id = invitation_id
        self.game_id = game_id
        self.player_factory = player_factory
        self.interval = adapter.server.status_interval
        self.api: RbcApi = adapter.make_api(ctx.stop)
        self.player: Player | None = None
        self.color: bool | None = None
        self.opponent = "?"
        self.own = chess.Board()
        self.turns = 0
        self.settled = 0
        self.lost_move: tuple[chess.Move | None, chess.Board] | None = None
        self.pending_result: tuple[MoveResult, chess.Board] | None = None
        self.saved = saved
        self.resumed = resumed or saved is not None
        # after a restart, the first POST of a step may already have been carried out by the earlier run
        self.unsure = self.resumed
        self.partial: TurnRecord | None = None  # a turn begun before the restart, to be completed
        self.state: RbcGameState | None = None
        self.state_file: Path | None = adapter.state_file(game_id)
        self.keep_state = False  # the daemon stopped mid-game: the state file stays for the next start

    def note(self, text: str) -> None:
        self.ctx.transcript.note(text, SOURCE)

    # --- the state on disk ----------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.state is None or self.state_file is None:
            return
        try:
            save_state(self.state_file, self.state)
        except OSError as exc:
            log.warning("game %d: cannot write its state to %s (%s); a restart would lose this game",
                        self.game_id, self.state_file, exc.strerror or exc)
            self.note(f"cannot write the state file: {exc}")
            self.state_file = None  # one line, not one per step

    def _drop_state(self) -> None:
        if self.state_file is not None and not self.keep_state:
            try:
                remove_state(self.state_file)
            except OSError as exc:
                log.warning("game %d: cannot remove its state file %s: %s", self.game_id, self.state_file, exc)

    # --- the whole game -------------------------------------------------------------------------------------
    def run(self) -> GameResult:
        g = self.game_id
        error: str | None = None
        winner: bool | None = None
        reason: WinReason | None = None
        try:
            if self.resumed and not self._still_there():
                return GameResult(g, self.invitation_id or 0, None, self.opponent, None, None, 0,
                                  "the server does not know the game", 0)
            if self.saved is not None:
                self.color = self.saved.color
                board = chess.Board(self.saved.starting_fen)
                self.opponent = self.saved.opponent
            else:
                self.color = self.api.color(g)
                board = self.api.starting_board(g)
                self.opponent = self.api.opponent_name(g)
            self.own = own_pieces(board, self.color)
            self.state = self.saved or RbcGameState(
                game_id=str(g), color=self.color, opponent=self.opponent, starting_fen=board.fen(),
                ready=False, server=self.adapter.state_identity(self.invitation_id))
            self._save()  # on disk from the start: a restart from here on goes on with the game
            if self.state_file is not None:
                self.adapter.forget_accept(self.invitation_id)  # the state file stands for the accept now
            verb = "resuming" if self.resumed else "playing"
            self.note(
                f"reconchess game {g} (invitation {self.invitation_id}) at {self.adapter.url}: {verb} "
                f"{_color_name(self.color)} against {self.opponent}"
            )
            log.info("game %d: %s %s against %s", g, verb, _color_name(self.color), self.opponent)
            self.player = self.player_factory(self.ctx)
            self.player.handle_game_start(self.color, board.copy(), self.opponent)
            if self.saved is not None:
                self._replay(self.saved)
            if not self.state.ready:
                self._post_ready()
                self.state.ready = True
                self._save()
            try:
                self._loop()
            except _GameOver:
                pass
            winner, reason = self._end()
        except Stopped:
            error = "the daemon stopped during the game"
            if self.state_file is not None and (self.state is not None or self.resumed):
                self.keep_state = True
                self._save()
                log.info("game %d: the daemon is stopping; the game stays on the server and is resumed at the "
                         "next start (%s)", g, self.state_file)
                self.note(f"the daemon is stopping: the game stays on the server; its state is in "
                          f"{self.state_file} and the next start goes on with it")
            else:
                log.info("game %d: the daemon is stopping; error-resigning it (no state file to resume from)", g)
                self.note("the daemon is stopping: error-resigning (no state file to resume from)")
                self._error_resign()
        except Unauthorized as exc:
            error = str(exc)
            log.error("game %d: %s", g, exc)
            self.note(f"stopped: {exc}")
        except ServerError as exc:  # a bad answer, a refusal, retries given up
            error = str(exc)
            log.error("game %d: %s; error-resigning the game", g, exc)
            self.note(f"server error: {exc}; error-resigning")
            self._error_resign()
        except Exception as exc:
            # the player failed, or a bug here: one line in the log, the details in the transcript
            error = f"{type(exc).__name__}: {exc}"
            log.error(
                "game %d: internal failure (%s); error-resigning the game (traceback in the transcript)",
                g,
                error,
            )
            self.note(f"internal failure, error-resigning:\n{traceback.format_exc().rstrip()}")
            self._error_resign()
        finally:
            self._close_player()
            if not self.keep_state:
                self._finish_invitation()
            self._drop_state()
            self.api.close()
        return GameResult(
            g, self.invitation_id or 0, self.color, self.opponent, winner, reason, self.turns, error, self.settled
        )

    def _still_there(self) -> bool:
        """Whether the server still knows a game an earlier run was playing (a 404: a reset sandbox, a purged
        game); if not: one warning, and its state file and invitation are let go."""
        try:
            self.api.game_status(self.game_id)
            return True
        except ApiError as error:
            if error.status != 404:
                raise
            exc = error
        log.warning("game %d: the server no longer knows this game of an earlier run (%s); its state file %s is "
                    "removed", self.game_id, exc, self.state_file)
        self.note(f"the server no longer knows this game ({exc}); its state file is removed")
        self.invitation_id = None  # nothing to finish
        return False

    def _replay(self, saved: RbcGameState) -> None:
        """Rebuild the player (and our own pieces) by telling it again everything observed before the restart,
        through the ``reconchess.Player`` interface; a turn that was under way is completed by the loop."""
        assert self.player is not None and self.color is not None
        started = time.monotonic()
        player = self.player
        begin = getattr(player, "begin_replay", None)  # optional: a player may make its replay cheaper
        if callable(begin) and saved.turns:
            begin()
        for i, record in enumerate(saved.turns):
            last = i == len(saved.turns) - 1
            self.turns += 1
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
            if last and (record.move is None or not record.ended):
                self.partial = record
        self.note(f"resumed: the player was told the {len(saved.turns)} turn(s) observed before the restart again "
                  f"({time.monotonic() - started:.2f} s)"
                  + (f"; turn {self.turns} was under way" if self.partial is not None else ""))

    def _post_ready(self) -> None:
        try:
            self.api.ready(self.game_id)
        except ApiError as exc:
            if exc.status != 400 or not (exc.maybe_done or self.unsure):
                raise
            self.settled += 1
            self.note("the answer to 'ready' was lost; the server already had it")
        self.unsure = False

    def _loop(self) -> None:
        while True:
            if self.ctx.stop.is_set():
                raise Stopped("the daemon is stopping")
            status = self.api.game_status(self.game_id)
            if status.is_over:
                return
            if not status.is_my_turn:
                if self.partial is not None and self.partial.move is not None:
                    self._partial_ended()  # our turn had ended before the restart: the opponent is playing
                if self.ctx.stop.wait(self.interval):
                    raise Stopped("the daemon is stopping")
                continue
            self._turn()

    def _partial_ended(self) -> None:
        assert self.partial is not None and self.state is not None
        if self.partial.move == "sent":  # carried out and ended, its answer lost: rebuilt at our next turn
            self.partial.move = "lost"
            self.lost_move = (self.partial.requested, self.own.copy(stack=False))
        self.partial.ended = True
        self.partial = None
        self.unsure = False
        self._save()

    def _or_over(self, call: Callable[[], T]) -> T:
        """Run ``call``; a 400 because the game ended meanwhile becomes :class:`_GameOver`."""
        try:
            return call()
        except ApiError as exc:
            if exc.status == 400 and self.api.game_status(self.game_id).is_over:
                raise _GameOver() from None
            raise

    # --- one turn -------------------------------------------------------------------------------------------
    def _turn(self) -> None:
        g, api, player, state = self.game_id, self.api, self.player, self.state
        assert player is not None and self.color is not None and state is not None
        started = time.monotonic()
        record, self.partial = self.partial, None
        if record is None:  # a new turn
            self.turns += 1
            sense_actions = self._or_over(lambda: api.sense_actions(g))
            offered = self._or_over(lambda: api.move_actions(g))
            capture = self._or_over(lambda: api.opponent_move_results(g))
            seconds = self._or_over(lambda: api.seconds_left(g))
            if self.lost_move is not None:
                self._settle_lost_move(offered, capture)
                self._save()
            remove_captured(self.own, capture)
            player.handle_opponent_move_result(capture is not None, capture)

            square = player.choose_sense(list(sense_actions), list(offered), seconds)
            if square is not None and (isinstance(square, bool) or square not in sense_actions):
                self.note(f"turn {self.turns}: the player chose {square!r}, not a sense action; sensing nothing")
                square = None
            sense_result = self._sense(square)
            player.handle_sense_result(sense_result)
            record = TurnRecord(capture=capture, sense=square, sense_result=list(sense_result))
            state.turns.append(record)
            self._save()
        else:  # a turn under way when the bridge stopped: the sense (and maybe the move) were done
            capture, square, sense_result = record.capture, record.sense, record.sense_result
            offered = [] if record.move is not None else self._or_over(lambda: api.move_actions(g))
            seconds = self._or_over(lambda: api.seconds_left(g))
            self.note(f"turn {self.turns}: going on with the turn under way before the restart")

        result: MoveResult | None = None
        if record.move is None:
            move = player.choose_move(list(offered), max(0.0, seconds - (time.monotonic() - started)))
            if move is not None and (
                not isinstance(move, chess.Move)
                or (move not in offered and add_pawn_queen_promotion(self.own, move) not in offered)
            ):
                self.note(f"turn {self.turns}: the player chose {move!r}, not a move action; passing")
                move = None
            record.requested, record.move = move, "sent"
            self._save()  # before sending: a restart sends this same move again rather than choose another
        move = record.requested
        if record.move == "sent":
            own_before = self.own.copy(stack=False)
            result = self._move(move, own_before)
            if result is not None:
                self.pending_result = (result, own_before)
                record.requested, record.taken, record.capture_square = result
                record.move = "known"
            else:
                record.move = "lost"
            self._save()
        self._end_turn()
        record.ended = True
        self._save()
        self._deliver_pending()
        seen = sum(1 for _, piece in sense_result if piece is not None)
        beliefs = getattr(player, "belief_size", None)
        extra = f"; {beliefs()} possible boards" if callable(beliefs) else ""
        outcome = (
            f"requested {_mv(move)}, result lost"
            if record.move == "lost"
            else f"requested {_mv(record.requested)}, took {_mv(record.taken)}, captured on "
                 f"{_sq(record.capture_square)}"
        )
        self.note(
            f"turn {self.turns}: opponent captured on {_sq(capture)}; sensed {_sq(square)} "
            f"({seen} pieces seen); {outcome}; {seconds:.1f} s left{extra}"
        )

    def _deliver_pending(self) -> None:
        if self.pending_result is None:
            return
        (requested, taken, capture), _ = self.pending_result
        self.pending_result = None
        apply_own_move(self.own, bool(self.color), taken)
        assert self.player is not None
        self.player.handle_move_result(requested, taken, capture is not None, capture)

    def _sense(self, square: int | None) -> SenseResult:
        try:
            result = self.api.sense(self.game_id, square)
            self.unsure = False
            return result
        except ApiError as exc:
            if exc.status != 400:
                raise
            if self.api.game_status(self.game_id).is_over:
                raise _GameOver() from None
            if not (exc.maybe_done or self.unsure):
                raise
            self.unsure = False
            self.settled += 1
            self.note(
                f"turn {self.turns}: the answer to sense {_sq(square)} was lost and the server says it was "
                f"carried out ({exc.text.strip()[:80]}); its result is unknown: the player is told it saw "
                f"nothing"
            )
            return []

    def _move(self, move: chess.Move | None, own_before: chess.Board) -> MoveResult | None:
        """The move result, or None when its answer was lost (settled later)."""
        try:
            result = self.api.move(self.game_id, move)
            self.unsure = False
            return result
        except ApiError as exc:
            if exc.status != 400:
                raise
            over = self.api.game_status(self.game_id).is_over
            maybe_done = exc.maybe_done or self.unsure
            self.unsure = False
            if maybe_done:
                self.settled += 1
                self.lost_move = (move, own_before)
                self.note(
                    f"turn {self.turns}: the answer to move {_mv(move)} was lost and the server says it was "
                    f"carried out ({exc.text.strip()[:80]}); its result will be rebuilt from the game state"
                )
            if over:
                raise _GameOver() from None
            if not maybe_done:
                raise
            return None

    def _end_turn(self) -> None:
        try:
            self.api.end_turn(self.game_id)
            self.unsure = False
        except ApiError as exc:
            if exc.status != 400:
                raise
            if exc.maybe_done or self.unsure:  # we alone play our colour and we had moved: it went through
                self.unsure = False
                self.settled += 1
                self.note(
                    f"turn {self.turns}: the answer to end_turn was lost; the server had ended the turn"
                )
                return
            if self.api.game_status(self.game_id).is_over:
                raise _GameOver() from None
            raise

    def _settle_lost_move(self, offered: list[chess.Move], capture: int | None) -> None:
        assert self.lost_move is not None and self.player is not None and self.color is not None
        requested, own_before = self.lost_move
        self.lost_move = None
        taken = infer_taken_move(own_before, self.color, requested, capture, offered)
        self.own = own_before.copy(stack=False)
        apply_own_move(self.own, self.color, taken)
        self.note(
            f"turn {self.turns}: the lost move result rebuilt from the move actions offered now: requested "
            f"{_mv(requested)}, taken {_mv(taken)}; whether it captured is unknown"
        )
        if self.state is not None and self.state.turns and self.state.turns[-1].move == "lost":
            last = self.state.turns[-1]
            last.requested, last.taken, last.capture_square, last.move = requested, taken, None, "uncertain"
        hook = getattr(self.player, "handle_uncertain_move_result", None)
        if callable(hook):
            hook(requested, taken)
        else:
            self.player.handle_move_result(requested, taken, False, None)

    # --- the end --------------------------------------------------------------------------------------------
    def _end(self) -> tuple[bool | None, WinReason | None]:
        g, api = self.game_id, self.api
        self._deliver_pending()
        winner = api.winner_color(g)
        reason = api.win_reason(g)
        history = api.game_history(g)
        assert self.player is not None
        if self.lost_move is not None:
            self._settle_from_history(history)
        if history is not None:
            self._write_records(history)
        outcome = "a draw" if winner is None else ("won" if winner == self.color else "lost")
        why = reason.name if reason is not None else "no winner"
        log.info(
            "game %d over: %s (%s) against %s after %d turn(s)", g, outcome, why, self.opponent, self.turns
        )
        self.note(
            f"game over: {outcome} ({why}); winner {_color_name(winner) if winner is not None else 'none'}"
        )
        self.player.handle_game_end(winner, reason, history)
        return winner, reason

    def _settle_from_history(self, history: GameHistory | None) -> None:
        assert self.lost_move is not None and self.player is not None and self.color is not None
        self.lost_move = None
        if history is None or history.is_empty():
            return
        turns = [t for t in history.turns(self.color) if history.has_move(t)]
        if len(turns) < self.turns:  # the game ended before that move was carried out: nothing to tell
            self.note("the lost move was never carried out (the game had ended)")
            return
        req, taken, capture = history.move_result(turns[self.turns - 1])
        self.note(
            f"the lost move result, from the game history: requested {_mv(req)}, took {_mv(taken)}, "
            f"captured on {_sq(capture)}"
        )
        self.player.handle_move_result(req, taken, capture is not None, capture)

    def _write_records(self, history: GameHistory) -> None:
        try:
            json_path, pgn_path = write_records(
                history,
                self.ctx.records_dir,
                f"reconchess-{self.game_id}",
                site=self.adapter.url,
                game_id=str(self.game_id),
            )
        except (OSError, ValueError, AssertionError) as exc:
            log.warning(
                "game %d: could not write its records to %s: %s", self.game_id, self.ctx.records_dir, exc
            )
            self.note(f"could not write the records: {exc}")
            return
        self.note(f"records written: {json_path} and {pgn_path}")

    # --- cleanup (never raises) -----------------------------------------------------------------------------
    def _error_resign(self) -> None:
        try:
            self.api.error_resign(self.game_id)
            self.adapter.count("error_resigns")
        except Exception as exc:
            log.warning("game %d: error_resign failed: %s", self.game_id, exc)

    def _finish_invitation(self) -> None:
        if self.invitation_id is None:  # resumed from an unreadable state file: the invitation is unknown
            return
        try:
            self.api.finish(self.invitation_id)
        except Exception as exc:
            log.warning("game %d: finishing invitation %d failed: %s", self.game_id, self.invitation_id, exc)

    def _close_player(self) -> None:
        close: Any = getattr(self.player, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:
                log.warning("game %d: closing the player failed: %s", self.game_id, exc)


__all__ = ["GameResult", "GameRunner", "apply_own_move", "infer_taken_move", "own_pieces"]
