"""Engine roles in a Go game, as gtp2ogs operators know them, behind the player interface the session drives.

- ``go.opening_engine``: an engine of its own plays the bot's first ``moves`` moves; then the main engine takes
  over (it is told the whole game at its first move, as after any restart) and the opening engine is stopped.
- ``go.ending_engine``: once the game has ``ceil(width * height * after)`` moves, an engine of its own is asked
  for every move too, alongside the engine that answers. Its pass replaces that engine's move (unless it resigns);
  its resign is a vote, and the bot resigns when ``resign_votes`` votes come in a row. Its own move proposals are
  taken back (``undo``), so that it stays in step with the game.
- ``go.min_move_time``: the answer is held until that long after the turn began, never at the clock's risk.

A role engine that fails is restarted for its next use; after its own ``max_restarts`` it is left out of the game
and the main engine plays on. Only the main engine's failures count towards resigning the game.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge.config import GoConfig
from bridge.errors import EngineError
from bridge.games.go import RESIGN, GoPlayer, clock_command
from bridge.games.go_engines import GoEngineUser
from bridge.games.gotypes import GoState, Move, Point
from bridge.transcript import Transcript

log = logging.getLogger("bridge.go")

PACE_KEEP = 1.0  # seconds min_move_time always leaves on the clock, beyond half of what is left


def wrap_roles(main: GoEngineUser, go: GoConfig, *, name: str, transcript: Transcript,
               on_stderr: Callable[[str], None] | None) -> GoEngineUser:
    """``main`` itself when the config has no role engine and no min_move_time, else the roles around it."""
    if go.opening_engine is None and go.ending_engine is None and go.min_move_time <= 0:
        return main
    return GoRoles(main, go, name=name, transcript=transcript, on_stderr=on_stderr)


def own_moves(state: GoState) -> int:
    """The moves the player to move has made in ``state`` (its free handicap stones not counted)."""
    s = state.settings
    me = state.to_move
    placed = s.handicap if (me == "black" and s.free_handicap and s.handicap > 1) else 0
    return max(sum(1 for i in range(len(state.moves)) if state.color_of_move(i) == me) - placed, 0)


def placing_handicap(state: GoState) -> bool:
    s = state.settings
    return s.free_handicap and s.handicap > 1 and len(state.moves) < s.handicap


class GoRoles:
    """The main player, an opening and an ending engine, and the pace of moves, as one player. Driven by one
    session thread, like :class:`~bridge.games.go.GoPlayer`; :meth:`abort` may come from any thread."""

    def __init__(self, main: GoEngineUser, go: GoConfig, *, name: str, transcript: Transcript,
                 on_stderr: Callable[[str], None] | None) -> None:
        self.main = main
        self.go = go
        self.transcript = transcript
        self.name = name
        self.opening = (GoPlayer(go.opening_engine, name=f"{name}-opening", transcript=transcript,
                                 on_stderr=on_stderr) if go.opening_engine is not None else None)
        # the ending engine's thoughts are not the bot's: its stderr is never posted to the chat
        self.ending = (GoPlayer(go.ending_engine, name=f"{name}-ending", transcript=transcript)
                       if go.ending_engine is not None else None)
        self._opening_done = False
        self._ending_off = False
        self._votes = 0  # the ending engine's resign votes in a row
        self._failed: GoPlayer | None = None  # the role engine whose failure the session is handling
        self._aborted = threading.Event()

    # --- the player interface ---------------------------------------------------------------------------
    @property
    def restarts(self) -> int:  # only the main engine's restarts count towards giving the game up
        return self.main.restarts

    @restarts.setter
    def restarts(self, value: int) -> None:
        self.main.restarts = value

    @property
    def engine(self) -> Any:
        for player in (self.main, self.opening, self.ending):
            if player is not None and player.engine is not None:
                return player.engine
        return None

    @property
    def start_failed(self) -> bool:
        return self.main.start_failed

    @property
    def start_seconds(self) -> float:
        return (self._failed or self.main).start_seconds

    @property
    def aborted(self) -> str | None:
        return self.main.aborted

    def hang_limit(self, budget: float) -> float:
        return (self._failed or self.main).hang_limit(budget)

    def dead_stones(self, state: GoState) -> frozenset[Point] | None:
        return self.main.dead_stones(state)

    def restart(self, why: str) -> None:
        failed, self._failed = self._failed, None
        if failed is None:
            self.main.restart(why)
            return
        role = "opening" if failed is self.opening else "ending"
        if failed.restarts >= failed.cfg.max_restarts:
            failed.close()
            self._leave_out(role, f"it failed {failed.restarts + 1} times: {why}")
            return
        failed.restart(why)

    def invalidate(self) -> None:
        for player in self._players():
            player.invalidate()

    def abort(self, why: str) -> None:
        self._aborted.set()
        for player in self._players():
            player.abort(why)

    def close(self) -> None:
        for player in self._players():
            player.close()

    def _players(self) -> list[GoEngineUser]:
        return [p for p in (self.main, self.opening, self.ending) if p is not None]

    # --- deciding ------------------------------------------------------------------------------------------
    def genmove(self, state: GoState) -> list[Move] | str:
        began = time.monotonic()
        clock = state.clock
        if clock is not None and clock.to_move == state.to_move and not clock.paused:
            began = min(began, clock.received_at)  # the turn began when its snapshot came
        answer = self._decide(state)
        self._pace(state, began)
        return answer

    def _decide(self, state: GoState) -> list[Move] | str:
        player = self._answering(state)
        consult = self._ending_due(state) and not self._aborted.is_set()
        if not consult:
            return self._ask(player, state)
        assert self.ending is not None
        ending = self.ending
        votes: list[list[Move] | str | EngineError] = []
        try:
            # started here, by the session's thread: an engine dies with the thread that started it
            # (PR_SET_PDEATHSIG), and the thread that asks it below ends with this move
            ending.start()
        except EngineError as exc:
            answer = self._ask(player, state)
            return self._with_vote(state, answer, exc)

        def ask_ending() -> None:
            try:
                votes.append(ending.genmove(state))
            except EngineError as exc:
                votes.append(exc)

        thread = threading.Thread(target=ask_ending, daemon=True, name=f"ending-{self.name}")
        thread.start()
        try:
            answer = self._ask(player, state)
        except BaseException:
            ending.close()  # the answering engine failed: the ending engine's vote is of no use now
            raise
        finally:
            thread.join()
        return self._with_vote(state, answer, votes[0] if votes else EngineError("no answer"))

    def _answering(self, state: GoState) -> GoEngineUser:
        """The opening engine for the bot's first moves, the main engine after them."""
        opening, cfg = self.opening, self.go.opening_engine
        if opening is None or cfg is None or self._opening_done:
            return self.main
        if own_moves(state) < cfg.moves:
            return opening
        self._opening_done = True
        opening.close()
        self.transcript.note(f"the opening engine has played the bot's first {cfg.moves} moves: the main engine "
                             f"plays on")
        log.info("%s: the opening engine has played its %d moves; the main engine plays on", self.name, cfg.moves)
        return self.main

    def _ask(self, player: GoEngineUser, state: GoState) -> list[Move] | str:
        try:
            return player.genmove(state)
        except EngineError:
            if player is not self.main and isinstance(player, GoPlayer):
                self._failed = player  # the session's restart() is this engine's
            raise

    def _ending_due(self, state: GoState) -> bool:
        cfg = self.go.ending_engine
        if self.ending is None or cfg is None or self._ending_off or placing_handicap(state):
            return False
        s = state.settings
        return len(state.moves) >= math.ceil(s.width * s.height * cfg.after)

    def _with_vote(self, state: GoState, answer: list[Move] | str,
                   vote: list[Move] | str | EngineError) -> list[Move] | str:
        ending, cfg = self.ending, self.go.ending_engine
        assert ending is not None and cfg is not None
        n = len(state.moves) + 1
        if isinstance(vote, EngineError):
            self._votes = 0
            self._ending_failed(vote)
            return answer
        if vote == RESIGN:
            self._votes += 1
            self.transcript.note(f"ending engine votes resign at move {n}: {self._votes} in a row of "
                                 f"{cfg.resign_votes}")
            if self._votes >= cfg.resign_votes and answer != RESIGN:
                log.info("%s: the ending engine voted resign %d times in a row: resigning", self.name, self._votes)
                self.transcript.note("the ending engine's votes resign the game")
                return RESIGN
            return answer
        self._votes = 0
        if vote == [None]:
            if answer != RESIGN and answer != [None]:
                self.transcript.note(f"ending engine passes at move {n}: the bot passes")
                take_back = getattr(self.main, "take_back", None)
                if take_back is not None:  # the main engine's own move was not played
                    take_back()
                else:
                    self.main.invalidate()
                return [None]
            return answer
        if vote != answer:
            try:  # its proposal was not played: keep it in step with the game
                ending.take_back()
            except EngineError as exc:
                self._ending_failed(exc)
        return answer

    def _ending_failed(self, exc: EngineError) -> None:
        ending, cfg = self.ending, self.go.ending_engine
        if ending is None or cfg is None or self._aborted.is_set():
            return
        if ending.restarts >= cfg.max_restarts:
            ending.close()
            self._leave_out("ending", f"it failed {ending.restarts + 1} times: {exc}")
            return
        log.warning("%s: the ending engine failed (%s); it is restarted for the next move", self.name, exc)
        self.transcript.note(f"the ending engine failed ({exc}); it is restarted for the next move")
        ending.restart(str(exc))

    def _leave_out(self, role: str, why: str) -> None:
        if role == "opening":
            self._opening_done = True
        else:
            self._ending_off = True
        log.warning("%s: the %s engine is left out of this game (%s); the main engine plays on", self.name, role, why)
        self.transcript.note(f"the {role} engine is left out of this game: {why}")

    # --- pace ------------------------------------------------------------------------------------------------
    def _pace(self, state: GoState, began: float) -> None:
        """Hold the answer until ``go.min_move_time`` after ``began``, but never spend more than half of the time
        left on the clock (less :data:`PACE_KEEP`) waiting."""
        wait = self.go.min_move_time - (time.monotonic() - began)
        if wait <= 0:
            return
        budget = clock_command(state, state.to_move).budget
        if math.isfinite(budget):
            wait = min(wait, (budget - PACE_KEEP) / 2)
        if wait <= 0:
            return
        self.transcript.note(f"min_move_time: the move is held {wait:.2f} s")
        self._aborted.wait(wait)
