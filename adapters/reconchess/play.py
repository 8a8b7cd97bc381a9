"""One reconchess game on the bridge's game loop (:mod:`bridge.gameloop`): :class:`ReconchessGame` is the
adapter's side (``GameIO``), :class:`bridge.adapters.reconchess.side.RbcSide` the player's (any
``reconchess.Player``). The loop is that of ``reconchess.play_remote_game`` (color, starting board, opponent
name, ready; then, until the game is over, poll ``game_status``; on our turn: opponent move result, sense, move,
end turn; at the end winner, win reason, history) -- but robust where the official client is not:

- a bad answer from the server or a failing player ends the game with ``error_resign`` and one clear log line,
  never a crash of the daemon;
- a sense or move that the player chose outside the offered actions is replaced by "nothing" / a pass (noted);
- a POST whose answer was lost (connection dropped after the server acted; the HTTP layer's resend is refused
  with 400 "already sensed/moved") is settled: it landed, its result unknown (``Landed.settled``): a lost sense
  result is given to the player as "saw nothing"; a lost move result is rebuilt at our next turn from the move
  actions the server offers then, or exactly from the game history if the game ended first (see ``side.py``);
- the server gives no turn number: :class:`ReconchessGame` counts our turns (a new one each time our turn comes
  after our ``end_turn`` went through, or after the opponent was seen to play);
- the game's state (colour, starting board, and per turn what was observed: capture square, sense and result,
  move result) is written to ``daemon.data_dir/state/reconchess-GAME.json`` after every step and before a move
  is sent (:mod:`bridge.games.rbc_state`); the daemon stopping mid-game leaves the game on the server and the
  file on disk, and the next start goes on with it: the player is rebuilt by replaying the observations through
  it, a turn under way is completed, and a step that may have been carried out just before the stop is settled
  like a lost answer. The file is removed when the game ends.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import chess
from reconchess import GameHistory, Player, WinReason

from bridge.adapters.reconchess.api import ApiError, GameStatus, RbcApi, Stopped, Unauthorized
from bridge.adapters.reconchess.side import (
    Action,
    EndTurn,
    Move,
    RbcSide,
    Sense,
    TurnOptions,
    apply_own_move,
    color_name,
    infer_taken_move,
    own_pieces,
    remove_captured,
)
from bridge.errors import ServerError
from bridge.events import GameContext
from bridge.gameloop import (
    Decision,
    Fault,
    FaultKind,
    GameLoop,
    Landed,
    LoopSettings,
    Record,
    Settlement,
    Snapshot,
    Verdict,
)
from bridge.games.rbc_records import record_texts
from bridge.games.rbc_state import RbcGameState, remove_state, save_state

if TYPE_CHECKING:
    from bridge.adapters.reconchess.client import ReconchessAdapter

log = logging.getLogger("bridge.reconchess")

T = TypeVar("T")
SOURCE = "reconchess"


class GameEnded(ServerError):
    """The server refused a call because the game ended meanwhile (a flag fell, the opponent resigned...)."""


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


@dataclass
class RbcView:
    """The game as one ``game_status`` shows it; ``end`` (winner, win reason, history) once it is over."""

    status: GameStatus
    end: tuple[bool | None, WinReason | None, GameHistory | None] | None = None


View = Snapshot[RbcView]


class ReconchessGame:
    """The adapter's side of one accepted game (invitation ``invitation_id`` -> game ``game_id``), played in the
    calling thread by :meth:`run`.

    ``saved``: the game's state from disk (a restarted bridge going on with it); ``resumed``: the game was being
    played by an earlier run of the bridge (with ``saved`` None its state file was unreadable: the game goes on
    from what the server tells, the player's past observations lost)."""

    def __init__(self, adapter: ReconchessAdapter, ctx: GameContext, invitation_id: int | None, game_id: int,
                 player_factory: Callable[[GameContext], Player], saved: RbcGameState | None = None,
                 resumed: bool = False) -> None:
        self.adapter = adapter
        self.ctx = ctx
        self.invitation_id = invitation_id
        self.game_id = game_id
        self.player_factory = player_factory
        self.interval = adapter.server.status_interval
        self.api: RbcApi = adapter.make_api(ctx.stop)
        self.saved = saved
        self.resumed = resumed or saved is not None
        self.unsure = self.resumed  # after a restart, the first POST of a step may already have been carried out
        self.state: RbcGameState | None = None
        self.state_file: Path | None = adapter.state_file(game_id)
        self.keep_state = False  # the daemon stopped mid-game: the state file stays for the next start
        self.turn = 0  # our turns, counted here (the server gives no number)
        self.in_turn = False  # the turn counted last has not ended
        self.settled = 0  # lost answers settled outside the loop (ready)
        self.final: RbcView | None = None

    def note(self, text: str) -> None:
        self.ctx.transcript.note(text, SOURCE)

    def incident(self, text: str, level: int = logging.WARNING) -> None:
        log.log(level, "game %d: %s", self.game_id, text)
        self.note(text)

    def log_warning(self, text: str) -> None:
        log.warning("game %d: %s", self.game_id, text)

    # --- the whole game -------------------------------------------------------------------------------------
    def run(self) -> GameResult:
        g = self.game_id
        if self.resumed and not self._still_there():
            self._drop_state()
            self.api.close()
            return GameResult(g, 0, None, self.saved.opponent if self.saved else "?", None, None, 0,
                              "the server does not know the game", 0)
        side = RbcSide(self, self.ctx, self.player_factory)
        settings = LoopSettings(server="the server", abandon="error-resigning the game")
        done = GameLoop(self, side, Path(self.ctx.records_dir), settings, name=f"game {g}").run()
        state = self.state
        end = self.final.end if self.final is not None and self.final.end is not None else (None, None, None)
        return GameResult(g, self.invitation_id or 0, state.color if state else None,
                          state.opponent if state else "?", end[0], end[1], self.turn, done.error,
                          done.settled + self.settled)

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
                log.warning("game %d: cannot remove its state file %s (%s): the next start would try to go on with "
                            "the ended game (and find it over); remove the file by hand", self.game_id,
                            self.state_file, exc)

    # --- GameIO: reading ------------------------------------------------------------------------------------
    def open(self) -> View:
        g = self.game_id
        if self.saved is not None:
            color, board, opponent = self.saved.color, chess.Board(self.saved.starting_fen), self.saved.opponent
        else:
            color, board, opponent = self.api.color(g), self.api.starting_board(g), self.api.opponent_name(g)
        self.state = self.saved or RbcGameState(
            game_id=str(g), color=color, opponent=opponent, starting_fen=board.fen(), ready=False,
            server=self.adapter.state_identity(self.invitation_id))
        self._save()  # on disk from the start: a restart from here on goes on with the game
        if self.state_file is not None:
            self.adapter.forget_accept(self.invitation_id)  # the state file stands for the accept now
        verb = "resuming" if self.resumed else "playing"
        self.note(f"reconchess game {g} (invitation {self.invitation_id}) at {self.adapter.url}: {verb} "
                  f"{color_name(color)} against {opponent}")
        log.info("game %d: %s %s against %s", g, verb, color_name(color), opponent)
        turns = self.state.turns
        self.turn = len(turns)
        self.in_turn = bool(turns) and not turns[-1].ended
        # not read yet: the player starts first, then 'ready' starts the clock (at the first read)
        return Snapshot(RbcView(GameStatus(False, False)), self.turn, our_turn=False)

    def read(self, deadline: float | None = None) -> View:
        if self.ctx.stop.is_set():
            raise Stopped("the daemon is stopping")
        assert self.state is not None
        if not self.state.ready:
            self._post_ready()
            self.state.ready = True
            self._save()
        status = self.api.game_status(self.game_id)
        if status.is_over:
            return Snapshot(RbcView(status), self.turn, our_turn=False, over=True)
        if status.is_my_turn:
            if not self.in_turn:
                self.turn += 1
                self.in_turn = True
        else:
            self.in_turn = False
        return Snapshot(RbcView(status), self.turn, our_turn=status.is_my_turn)

    def _post_ready(self) -> None:
        try:
            self.api.ready(self.game_id)
        except ApiError as exc:
            if exc.status != 400 or not (exc.maybe_done or self.unsure):
                raise
            self.settled += 1
            self.note("the answer to 'ready' was lost; the server already had it")
        self.unsure = False

    def wait(self, snap: View) -> None:
        if self.state is not None and not self.state.ready:
            return
        if self.ctx.stop.wait(self.interval):
            raise Stopped("the daemon is stopping")

    @property
    def stopping(self) -> bool:
        return self.ctx.stop.is_set()

    def pause(self, seconds: float) -> None:
        if self.ctx.stop.wait(seconds):
            raise Stopped("the daemon is stopping")

    def _or_over(self, call: Callable[[], T]) -> T:
        """Run ``call``; a 400 because the game ended meanwhile becomes :class:`GameEnded`."""
        try:
            return call()
        except ApiError as exc:
            if exc.status == 400 and self.api.game_status(self.game_id).is_over:
                raise GameEnded("the game is over") from None
            raise

    def stale(self, snap: View) -> str | None:
        return None  # polled turn by turn: nothing changes the game while the engine thinks

    def options(self, snap: View, deadline: float) -> TurnOptions:
        """What the server offers now; for a turn under way before a restart, only what is left of it (after a
        move, the server lists no move actions)."""
        g, api = self.game_id, self.api
        turns = self.state.turns if self.state is not None else []
        if len(turns) >= snap.turn > 0:  # sensed before the restart
            moved = turns[snap.turn - 1].move is not None
            return TurnOptions([], [] if moved else self._or_over(lambda: api.move_actions(g)), None,
                               self._or_over(lambda: api.seconds_left(g)), time.monotonic())
        return TurnOptions(
            sense_actions=self._or_over(lambda: api.sense_actions(g)),
            move_actions=self._or_over(lambda: api.move_actions(g)),
            capture=self._or_over(lambda: api.opponent_move_results(g)),
            seconds=self._or_over(lambda: api.seconds_left(g)),
            read_at=time.monotonic(),
        )

    # --- GameIO: acting -------------------------------------------------------------------------------------
    def send(self, snap: View, action: Action, deadline: float) -> Landed:
        g = self.game_id
        try:
            if isinstance(action, Sense):
                result: Any = self.api.sense(g, action.square)
            elif isinstance(action, Move):
                self._save()  # the move chosen is on disk before it is sent: a restart sends it again
                result = self.api.move(g, action.move)
            else:
                self.api.end_turn(g)
                result = None
        except ApiError as exc:
            if exc.status != 400:
                raise
            maybe_done = exc.maybe_done or self.unsure
            self.unsure = False
            if isinstance(action, EndTurn):  # we alone play our colour and we had moved: it went through
                if maybe_done:
                    return Landed(None, settled=exc.text.strip() or str(exc))
                over = self.api.game_status(g).is_over
            else:
                over = self.api.game_status(g).is_over
                if maybe_done and (isinstance(action, Move) or not over):
                    return Landed(None, over=over, settled=exc.text.strip() or str(exc))
            if over:
                raise GameEnded("the game is over") from None
            raise
        self.unsure = False
        return Landed(result)

    def classify(self, exc: BaseException) -> Fault:
        if isinstance(exc, Stopped):
            return Fault(FaultKind.STOPPED, "the daemon is stopping")
        if isinstance(exc, GameEnded):
            return Fault(FaultKind.REJECTED, str(exc), "HTTP 400")
        return Fault(FaultKind.FATAL, str(exc))  # a refusal, retries given up, bad data, a bug

    def settle(self, snap: View, action: Action, fault: Fault, deadline: float) -> Settlement[RbcView]:
        """Not reached (no fault is LOST: the HTTP layer resends, :meth:`send` settles); from the state:
        the turn over, or sent again (a resend is refused as already done if it had landed)."""
        after = self.read(deadline)
        over = after.over or not after.our_turn or after.turn != snap.turn
        return Settlement(Verdict.TURN_OVER if over else Verdict.NOT_LANDED, after)

    def played(self, snap: View, decision: Decision[Action], action: Action, landed: Landed,
               after: View | None) -> None:
        if isinstance(action, EndTurn):
            self.in_turn = False  # our turn is over: the next one is a new turn, however soon it comes
        self._save()

    def cancel(self) -> bool:
        return False

    def resign(self) -> None:
        self.api.resign(self.game_id)

    def engine_slot(self) -> Any:
        return contextlib.nullcontext()  # the player's engine lives as long as the player

    # --- GameIO: the end ------------------------------------------------------------------------------------
    def game_over(self, final: View) -> None:
        g, api = self.game_id, self.api
        winner, reason, history = api.winner_color(g), api.win_reason(g), api.game_history(g)
        final.state.end = (winner, reason, history)
        self.final = final.state
        color = self.state.color if self.state is not None else None
        opponent = self.state.opponent if self.state is not None else "?"
        outcome = "a draw" if winner is None else ("won" if winner == color else "lost")
        why = reason.name if reason is not None else "no winner"
        log.info("game %d over: %s (%s) against %s after %d turn(s)", g, outcome, why, opponent, self.turn)
        self.note(f"game over: {outcome} ({why}); winner {color_name(winner) if winner is not None else 'none'}")

    def records(self, final: View) -> list[Record]:
        history = final.state.end[2] if final.state.end is not None else None
        if history is None:
            return []
        try:
            texts = record_texts(history, f"reconchess-{self.game_id}", site=self.adapter.url,
                                 game_id=str(self.game_id))
        except (ValueError, AssertionError) as exc:
            log.warning("game %d: could not make its records from the game's history (%s); the result stands and "
                        "the transcript has the game; a bug: report it with the transcript", self.game_id, exc)
            self.note(f"could not write the records: {exc}")
            return []
        return [Record(name, text) for name, text in texts]

    def wrap_up(self, final: View, written: list[Path]) -> None:
        pass

    def stopped(self) -> None:
        if self.state_file is not None and (self.state is not None or self.resumed):
            self.keep_state = True
            self._save()
            log.info("game %d: the daemon is stopping; the game stays on the server and is resumed at the next "
                     "start (%s)", self.game_id, self.state_file)
            self.note(f"the daemon is stopping: the game stays on the server; its state is in {self.state_file} "
                      f"and the next start goes on with it")
        else:
            log.info("game %d: the daemon is stopping; error-resigning it (no state file to resume from)",
                     self.game_id)
            self.note("the daemon is stopping: error-resigning (no state file to resume from)")
            self._error_resign()

    def abandoned(self, exc: BaseException) -> None:
        if not isinstance(exc, Unauthorized):
            self._error_resign()

    def close(self) -> None:
        if not self.keep_state:
            self._finish_invitation()
        self._drop_state()
        self.api.close()

    def _error_resign(self) -> None:
        try:
            self.api.error_resign(self.game_id)
            self.adapter.count("error_resigns")
        except Exception as exc:
            log.warning("game %d: resigning it after the error failed (%s); it stays open on the server until our "
                        "clock runs out (a loss on time); nothing else to do", self.game_id, exc)

    def _finish_invitation(self) -> None:
        if self.invitation_id is None:  # resumed from an unreadable state file: the invitation is unknown
            return
        try:
            self.api.finish(self.invitation_id)
        except Exception as exc:
            log.warning("game %d: telling the server invitation %d is finished failed (%s); the game's result "
                        "stands; nothing to do", self.game_id, self.invitation_id, exc)


__all__ = [
    "GameResult",
    "RbcView",
    "ReconchessGame",
    "apply_own_move",
    "infer_taken_move",
    "own_pieces",
    "remove_captured",
]
