"""One game's engine thinking, on its way to the server as analysis messages (``engine.analysis``).

The analysis of a move comes either with the move itself (a GTP analysis extension, or the kata_analysis answer:
the player's ``last_analysis``) or from the engine's stderr, which a reader thread of its own feeds line by line
(:class:`~bridge.games.go_analysis.StderrPvParser`) and which may arrive just before or just after the move. Both
meet here: an analysis is sent once, for the move it led to (its PV starts with the move played), labelled with the
number of moves before it, and at most one a move. A stderr line that cannot be read is logged once per game and
otherwise ignored: the game never depends on it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bridge.games.go_analysis import AnalysisError, EngineAnalysis, StderrPvParser
from bridge.games.gotypes import Move

log = logging.getLogger("bridge.session")

Send = Callable[[EngineAnalysis, int], None]  # (analysis, moves before its PV): write one analysis message


class PvRelay:
    """Thread-safe: :meth:`moved` is called by the session thread, :meth:`stderr` by the engine's stderr reader."""

    def __init__(self, game_id: str, send: Send, note: Callable[[str], None]) -> None:
        self.game_id = game_id
        self._send = send
        self._note = note
        self._lock = threading.Lock()
        self._parser: StderrPvParser | None = None
        self._pending: EngineAnalysis | None = None  # read from stderr, its move not played yet
        self._waiting: tuple[int, Move] | None = None  # (moves before it, move played) whose analysis may follow
        self._sent_for = -1  # the move number the last analysis was sent for
        self._garbage_logged = False
        self.sent = 0

    def thinking(self) -> None:
        """A new genmove starts: what stderr said before belongs to no move of ours."""
        with self._lock:
            self._pending = None
            self._waiting = None

    def moved(self, n: int, move: Move, direct: EngineAnalysis | None) -> None:
        """The engine played ``move`` after ``n`` moves; ``direct``: the analysis that came with it, if any."""
        with self._lock:
            analysis = direct
            if analysis is None and self._pending is not None and self._pending.pv[0] == move:
                analysis = self._pending
            self._pending = None
            self._waiting = (n, move) if analysis is None else None
        if analysis is not None:
            self._deliver(n, analysis)

    def stderr(self, line: str, width: int, height: int) -> None:
        """One stderr line of the engine, on a board of ``width`` x ``height``."""
        with self._lock:
            if self._parser is None or (self._parser.width, self._parser.height) != (width, height):
                self._parser = StderrPvParser(width, height)
            why: AnalysisError | None = None
            try:
                analysis = self._parser.feed(line)
            except AnalysisError as exc:
                analysis, why = None, exc
            first = why is not None and not self._garbage_logged
            self._garbage_logged = self._garbage_logged or why is not None
            if analysis is None:
                waiting = None
            elif self._waiting is not None and analysis.pv[0] == self._waiting[1]:
                waiting, self._waiting = self._waiting, None
            else:
                waiting, self._pending = None, analysis
        if why is not None:
            self._note(f"an engine PV line that cannot be read is ignored: {why}")
            if first:
                log.warning("game %s: the engine printed a PV line that cannot be read (%s); it is ignored, as any "
                            "other this game (no analysis message for that move); the game goes on", self.game_id,
                            why)
        if waiting is not None and analysis is not None:
            self._deliver(waiting[0], analysis)

    def _deliver(self, n: int, analysis: EngineAnalysis) -> None:
        with self._lock:
            if n == self._sent_for:
                return  # at most one a move
            self._sent_for = n
        try:
            self._send(analysis, n)
            self.sent += 1
        except Exception as exc:  # best effort, like all chat
            log.debug("game %s: analysis message failed: %s", self.game_id, exc)
