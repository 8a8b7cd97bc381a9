"""The bridge's Reconnaissance Blind Chess player: a UCI engine (Stockfish...) playing blind chess.

:class:`BridgeRbcPlayer` is a ``reconchess.Player``; any driver that calls a Player as ``reconchess.play_local_game``
or ``play_remote_game`` does (the reconchess adapter, the benchmark) can use it.  :func:`make_player` builds one
for a game of the daemon.

How it plays (in the manner of StrangeFish, the NeurIPS 2022 winner, much simplified):

- **Belief** (:mod:`bridge.games.rbc_belief`): the set of boards consistent with everything observed, expanded by
  every opponent move and filtered by capture squares, sense results and our move results; bounded by
  ``rbc.max_boards`` with weighted sampling.
- **Sense**: first, when the chance that the opponent can capture our king next move is at least
  ``rbc.sense_king_guard`` (over every possible board), only the windows covering the most of that chance (where
  the attackers would stand) are considered (knight rushes);
  then the inner square whose 3x3 window best (a) splits the belief (least expected remaining weight),
  (b) settles whether a king is attacked, and (c) tells whether the likely moves (the engine's proposals, reused by
  the move phase) capture the king or leave ours en prise on the boards that remain (the value of the
  information); nothing when every window is already certain.
- **Move**: the engine proposes its favourite moves on a weighted sample of boards (``rbc.move_boards`` or more,
  see the clock); each of the ``rbc.candidates`` most proposed moves (and, when each of them may leave our king
  en prise, the move actions that leave it so on the least weight: a seen attacker is answered whatever the
  engine proposed) is then played on every sampled board *as the arbiter would revise it there* (a slide stopped
  by an unseen piece, a blocked pawn move becoming a pass) and the resulting position, opponent to move, is
  scored by the engine as our expected result.  A move's score is ``mean_weight`` x its
  weighted mean + the rest x its worst value; capturing the king counts as a certain win with the probability
  (over the whole belief) that the king stands there, and a move that certainly captures it is played at once.
- **Positions an engine cannot take** (:mod:`bridge.games.rbc_positions`): a side to move that can capture the
  king has won; impossible en-passant squares are cleared; broken positions are scored by material.
- **Clock**: each move may spend ``(seconds_left - rbc.reserve) / moves_left + 0.8 x increment`` (the increment is
  measured from the clock), 1.5 times that on a critical turn (our king possibly attacked, many boards), at most a
  fifth of what is usable; a budget larger than what ``rbc.move_boards`` boards at ``rbc.engine_time`` cost buys
  more boards and longer searches (up to 4x each, :meth:`BridgeRbcPlayer.plan`); a smaller one shrinks the engine
  time per board, and a deadline cuts the scoring short.
  On a short clock the belief keeps fewer boards (at most 40 per second left), so that its updates stay quick; and
  the player times its own belief steps (the opponent's move and the sense, per board kept) and keeps no more boards
  than a turn's bookkeeping can step in ``BELIEF_SHARE`` (6 %) of the clock left at that speed: on a quiet machine
  (~0.5 ms a board) the clock's rule binds; on a loaded one (7.6 ms a board was seen in a soak) this one does.
- **Robustness**: an engine that dies or hangs is restarted by the driver (:mod:`bridge.engines.uci`); a hung one
  costs a turn at most ``HANG_SHARE`` (15 %) of the clock left (the turn's budget plus at least a second), after
  which the turn goes on by material and the engine restarts at its next request; when the driver
  gives up, or the engine answers something unusable, or anything here fails, the player notes it (one line in the
  transcript) and falls back to scoring moves by material, and never raises into the game loop.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import chess
import reconchess
from chess.engine import InfoDict
from reconchess import GameHistory, WinReason

from bridge.engines.uci import MIN_MARGIN, UciEngine
from bridge.errors import BridgeError, ConfigError, EngineError
from bridge.events import GameContext
from bridge.games.rbc_belief import Belief, child, position_key, taken_move
from bridge.games.rbc_config import DEFAULT_CAPS, RbcConfig
from bridge.games.rbc_positions import prepare, score_value, static_value
from bridge.transcript import Transcript

log = logging.getLogger("bridge.rbc")

T = TypeVar("T")

MIN_ENGINE_TIME = 0.005  # seconds: below this an engine search is noise
SCORE_DEPTH = 12  # plies: cap on the engine's search of a position after a candidate move (at rbc.engine_time;
# two plies more each time a long clock doubles the time per score, see BridgeRbcPlayer.plan)
KING_CAPTURE_CERTAIN = 0.95  # probability of capturing the king above which we just take it
MULTIPV = 3
CRITICAL_FACTOR = 1.5  # a critical turn's budget, in even shares of the clock
CRITICAL_THREAT = 0.05  # a chance at least this that the opponent can capture our king makes a turn critical
CRITICAL_BOARDS = 1000  # more possible boards than this make a turn critical
MAX_SHARE = 0.2  # of the usable clock, the most one move may take
MAX_BUDGET = 90.0  # seconds: the most one move may take
MAX_SCALE = 4.0  # a move's boards and engine time grow with its budget up to this factor each
PLAN_SHARE = 0.7  # of a move's budget, what the plan spends (the rest: belief checks, engine overhead, slack)
SENSE_SHARE = 0.3  # of a move's budget, what the sense may spend (most engine answers are reused by the move)
SENSE_CANDIDATES = 6  # likely moves whose outcome the sense checks
BOARDS_PER_SECOND = 40  # on a short clock, at most this many boards (chess.Board objects) sampled per second left
MIN_BOARDS = 50
# of the clock left, what one turn's belief bookkeeping (the opponent's move, then the sense) is planned to take, at
# the speed measured in this game on this machine: the boards kept shrink when the machine is slow or loaded
BELIEF_SHARE = 0.06
SPEED_MIN_BOARDS = 20  # a turn that stepped fewer boards than this does not measure the speed
SAFER_SCAN = 200  # boards on which every move action is checked when each candidate may leave our king en prise
SAFER_CANDIDATES = 3  # of those moves, the safest added to the candidates
LOSE_AVERSION = 2.0  # extra penalty per unit of probability that our king is left en prise (the odds are rough)
# how far an engine's value (a chess engine's win-draw-loss odds: ~1.0 once a piece up) is from even in RBC, where a
# material lead still has to be played out blind; a king captured or lost is certain (issue 12: a 19 % risk to the
# king was taken for a bishop, the engine scoring the safe moves ~0.4 and the capture 1.0)
VALUE_CONFIDENCE = 0.6
VOTE_RANK = (1.0, 0.5, 0.3)
# of the clock left, the most one turn may lose to an engine that hangs (the turn's budget included, and at least
# the budget plus MIN_MARGIN): a hang on a short clock must not cost the uci driver's move_margin (a soak's game
# was lost on time with ~10 s left)
HANG_SHARE = 0.15
REPLAY_BOARDS = 200  # boards sampled while an earlier run's observations are told again (begin_replay)


def _mv(move: chess.Move | None) -> str:
    return move.uci() if move is not None else "pass"


def _sq(square: int | None) -> str:
    return chess.square_name(square) if square is not None else "none"


class BridgeRbcPlayer(reconchess.Player):
    """An RBC player driving a UCI engine (``engine=None``: no engine, moves scored by material only)."""

    def __init__(self, engine: UciEngine | None, config: RbcConfig | None = None, *,
                 transcript: Transcript | None = None, name: str = "rbc", game_id: str | None = None) -> None:
        self.engine = engine
        self.config = config if config is not None else RbcConfig()
        self.transcript = transcript
        self.name = name  # the transcript's tag for the player's notes (the engine's file name)
        # where the log's lines come from: the game, so that several games' lines can be told apart
        self.where = f"game {game_id} ({name})" if game_id is not None else name
        self.rng = random.Random(self.config.seed)
        self.color: chess.Color = chess.WHITE
        self.belief: Belief | None = None
        self.opponent_name = ""
        self.turn = 0
        self.boards_after_turn: dict[int, int] = {}  # turn -> the boards considered possible after its move
        self.incidents = 0
        self.engine_failed = engine is None
        self._increment = 0.0
        self._after_move: tuple[float, float] | None = None  # (seconds_left at choose_move, monotonic then)
        self._turn_started = 0.0
        self._hang_by: float | None = None  # this decision's engine requests end by then, a hung engine's included
        self._turn_log: list[str] = []
        self.last_move_info: dict[str, Any] = {}
        # position -> the engine's favourite moves there and their values, this turn
        self._proposal_cache: dict[Any, list[tuple[chess.Move, float]]] = {}
        self._replaying = False  # begin_replay() until the next sense
        self._step_seconds = 0.0  # this turn's belief work so far (the opponent's move), and the boards it stepped
        self._step_boards = 0
        self.seconds_per_board: float | None = None  # measured: a turn's belief work per board kept (mean of two)

    # --- helpers ---------------------------------------------------------------------------------------------
    def _note(self, text: str) -> None:
        if self.transcript is not None:
            self.transcript.note(text, self.name)

    def _incident(self, what: str, exc: BaseException | None = None) -> None:
        """One clear line per incident: in the transcript and the log."""
        self.incidents += 1
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        text = f"turn {self.turn}: {what}{detail}"
        log.warning("%s: %s", self.where, text)
        self._note(text)

    def _guard(self, what: str, action: Callable[[], T], fallback: Callable[[], T], last_resort: T) -> T:
        """``action()``; if it fails, one incident line and ``fallback()``; if that fails too, ``last_resort``
        (nothing raised here ever reaches the game loop)."""
        try:
            return action()
        except Exception as exc:
            self._incident(f"{what} failed; {self._fallback_text(what)}", exc)
            try:
                return fallback()
            except Exception as exc2:
                self._incident(f"{what}: the fallback failed too; {'passing' if what == 'move' else 'going on'}",
                               exc2)
                return last_resort

    @staticmethod
    def _fallback_text(what: str) -> str:
        return {"sense": "sensing by the belief alone", "move": "playing a move scored by material"}.get(
            what, "the belief keeps what it had")

    def begin_replay(self) -> None:
        """The observations of an earlier run are about to be told again (a restarted bridge going on with the
        game): keep at most the belief's ``replay_boards`` boards while they are, so that the replay takes seconds, not
        minutes (40 turns: ~3 s instead of ~50 s at 3000 boards), and write no per-turn notes (the game loop
        notes the replay). The next sense restores the cap."""
        belief = self._belief()
        belief.max_boards = min(belief.max_boards, belief.replay_boards)
        belief.sense_sample = min(belief.sense_sample, REPLAY_BOARDS)
        self._replaying = True

    def belief_size(self) -> int:
        """The number of boards the player considers possible now."""
        return len(self.belief) if self.belief is not None else 0

    def close(self) -> None:
        """Stop the engine. Idempotent; never raises."""
        engine, self.engine = self.engine, None
        self.engine_failed = True
        if engine is not None:
            try:
                engine.close()
            except Exception as exc:  # close() never raises, but be sure
                log.warning("%s: closing the engine failed (%s); the game's result stands; if its process still "
                            "runs, stop it by hand", self.where, exc)

    # --- reconchess.Player -----------------------------------------------------------------------------------
    def handle_game_start(self, color: chess.Color, board: chess.Board, opponent_name: str) -> None:
        self.color = color
        self.opponent_name = opponent_name
        self.turn = 0
        self.boards_after_turn = {}
        kind: type[Belief] = Belief
        if self.config.belief == "arrays":
            try:
                from bridge.games.rbc_arrays import ArrayBelief  # numpy, imported only when asked for

                kind = ArrayBelief
            except ImportError as exc:  # a broken install: play the game all the same, as rbc.belief: boards would
                log.error("%s: rbc.belief: arrays needs numpy, which cannot be imported (%s); playing this game "
                          "with rbc.belief: boards; reinstall the bridge's dependencies (bash scripts/setup.sh)",
                          self.where, exc)
                boards, children = DEFAULT_CAPS["boards"]
                self.config = self.config.model_copy(update={
                    "belief": "boards", "max_boards": min(self.config.max_boards, boards),
                    "max_children": min(self.config.max_children, children)})
        self.belief = kind(color, board, max_boards=self.config.max_boards, max_children=self.config.max_children,
                             rng=self.rng, sense_sample=self.config.sense_sample,
                             crisis_weight=self.config.sense_crisis_weight,
                             king_guard=self.config.sense_king_guard)
        self._note(f"game start: playing {'white' if color else 'black'} against {opponent_name}")

    def _belief(self) -> Belief:
        if self.belief is None:  # a driver that skipped handle_game_start: assume the usual start
            self.handle_game_start(self.color, chess.Board(), self.opponent_name)
        assert self.belief is not None
        return self.belief

    def handle_opponent_move_result(self, captured_my_piece: bool, capture_square: int | None) -> None:
        self.turn += 1
        self._turn_started = time.monotonic()
        self._turn_log = []
        self._proposal_cache.clear()
        belief = self._belief()

        self._step_seconds, self._step_boards = 0.0, 0

        def update() -> None:
            if belief.needs_opponent_move():
                started = time.perf_counter()
                belief.opponent_moved(capture_square if captured_my_piece else None)
                self._step_seconds, self._step_boards = time.perf_counter() - started, belief.last.before
                what = f"captured on {_sq(capture_square)}" if captured_my_piece else "moved"
                self._turn_log.append(f"opponent {what}: {belief.last.before} -> {len(belief)} boards"
                                      f"{' (repaired)' if belief.last.repaired else ''}")

        self._guard("updating the belief after the opponent's move", update, lambda: None, None)

    def choose_sense(self, sense_actions: list[int], move_actions: list[chess.Move],
                     seconds_left: float) -> int | None:
        self._replaying = False
        self._measure_increment(seconds_left)
        belief = self._belief()
        # belief updates are not cut short by a deadline: on a short clock, keep fewer boards so they stay quick, and
        # fewer still where this game measured them slow (BELIEF_SHARE of the clock left for a turn's bookkeeping)
        cap = int(seconds_left * belief.boards_per_second)
        if self.seconds_per_board is not None:
            measured = int(BELIEF_SHARE * seconds_left / self.seconds_per_board)
            if measured < min(cap, self.config.max_boards):
                self._turn_log.append(f"boards kept <= {max(MIN_BOARDS, measured)} (belief steps measured at "
                                      f"{self.seconds_per_board * 1000:.1f} ms a board)")
            cap = min(cap, measured)
        belief.max_boards = max(MIN_BOARDS, min(self.config.max_boards, cap))
        belief.sense_sample = max(MIN_BOARDS, min(self.config.sense_sample, int(seconds_left * BOARDS_PER_SECOND)))

        belief.guarded = None

        def decide() -> int | None:
            sample = belief.sense_sample_boards()
            values = self._sense_values(sample, move_actions, seconds_left) \
                if self.config.sense_decision_weight > 0 else None
            return belief.choose_sense(sense_actions, sample, values, self.config.sense_decision_weight)

        square = self._guard("sense", decide, lambda: belief.choose_sense(sense_actions), None)
        if square is not None and square not in sense_actions:
            self._incident(f"the chosen sense square {_sq(square)} is not offered; sensing nothing")
            square = None
        guarded = belief.guarded
        self._turn_log.append(f"sense {_sq(square)}" + (
            f" (king guard: attacked with p={guarded[0]:.3f}, the window covers {guarded[1]:.3f})" if guarded else ""))
        return square

    def handle_sense_result(self, sense_result: list[tuple[int, chess.Piece | None]]) -> None:
        belief = self._belief()

        def update() -> None:
            started = time.perf_counter()
            belief.sensed(sense_result)
            self._measured(self._step_seconds + time.perf_counter() - started, self._step_boards)
            if sense_result:
                self._turn_log.append(f"-> {len(belief)} boards{' (repaired)' if belief.last.repaired else ''}")

        self._guard("updating the belief after the sense", update, lambda: None, None)

    def _measured(self, seconds: float, boards: int) -> None:
        """A turn's belief work (the opponent's move and the sense) took ``seconds`` for ``boards`` kept boards."""
        if self._replaying or boards < SPEED_MIN_BOARDS or seconds <= 0:
            return
        per = seconds / boards
        self.seconds_per_board = per if self.seconds_per_board is None else 0.5 * (self.seconds_per_board + per)

    def choose_move(self, move_actions: list[chess.Move], seconds_left: float) -> chess.Move | None:
        started = time.monotonic()
        self._replaying = False
        move = self._guard("move", lambda: self._choose_move(move_actions, seconds_left, started),
                           lambda: self._material_move(move_actions), None)
        if move is not None and move not in move_actions:
            self._incident(f"the chosen move {_mv(move)} is not a move action; playing a move scored by material")
            move = self._guard("move", lambda: self._material_move(move_actions), lambda: None, None)
        self._after_move = (seconds_left - (time.monotonic() - started), time.monotonic())
        info = self.last_move_info
        self._turn_log.append(
            f"move {_mv(move)} ({info.get('why', '')}; {time.monotonic() - started:.2f} s of "
            f"{info.get('budget', 0.0):.2f} s, {seconds_left:.0f} s left)")
        return move

    def handle_move_result(self, requested_move: chess.Move | None, taken_move: chess.Move | None,
                           captured_opponent_piece: bool, capture_square: int | None) -> None:
        belief = self._belief()

        def update() -> None:
            belief.moved(requested_move, taken_move, capture_square if captured_opponent_piece else None)

        self._guard("updating the belief after our move", update, lambda: None, None)
        self._end_turn(requested_move, taken_move, capture_square if captured_opponent_piece else None)

    def handle_uncertain_move_result(self, requested_move: chess.Move | None, taken_move: chess.Move | None) -> None:
        """Our move's result when the server's answer was lost: the taken move is known, a capture is not."""
        belief = self._belief()
        self._guard("updating the belief after our move",
                    lambda: belief.moved(requested_move, taken_move, None, capture_known=False), lambda: None, None)
        self._end_turn(requested_move, taken_move, None, uncertain=True)

    def _end_turn(self, requested: chess.Move | None, taken: chess.Move | None, capture: int | None,
                  uncertain: bool = False) -> None:
        belief = self._belief()
        result = f"took {_mv(taken)}" if taken != requested else "taken as asked"
        if uncertain:
            result += ", capture unknown"
        elif capture is not None:
            result += f", captured on {_sq(capture)}"
        self.boards_after_turn[self.turn] = len(belief)
        self._turn_log.append(f"{result}: {len(belief)} boards{' (repaired)' if belief.last.repaired else ''}"
                              f"{'' if belief.exact else ' (sampled)'}")
        if not self._replaying:
            self._note(f"turn {self.turn}: " + "; ".join(self._turn_log))

    def handle_game_end(self, winner_color: chess.Color | None, win_reason: WinReason | None,
                        game_history: GameHistory) -> None:
        outcome = "draw" if winner_color is None else ("won" if winner_color == self.color else "lost")
        reason = win_reason.name if win_reason is not None else "no winner"
        self._note(f"game over: {outcome} ({reason}) after {self.turn} turns; {self.incidents} incident(s)")
        self.close()

    # --- the clock -------------------------------------------------------------------------------------------
    def _measure_increment(self, seconds_left: float) -> None:
        """The clock's increment: what the clock gained between the end of our last move and now, beyond what
        we spent after choosing that move (local games count handle_move_result on our clock)."""
        if self._after_move is None:
            return
        left_then, _ = self._after_move
        self._after_move = None
        # what we spent since the opponent's move result is on this turn's clock, not a loss of increment
        gained = seconds_left - left_then + max(0.0, time.monotonic() - self._turn_started)
        if gained > 0:
            self._increment = gained if self._increment == 0 else 0.5 * (self._increment + gained)

    def budget(self, seconds_left: float, critical: bool = False) -> float:
        """Seconds this move may take: an even share of what is left (beyond ``rbc.reserve``) over the moves
        expected to remain, plus most of the increment; ``CRITICAL_FACTOR`` times that on a critical turn (our king
        possibly attacked, many possible boards).  Never more than ``MAX_SHARE`` of what is usable nor
        ``MAX_BUDGET`` seconds, so that the moves after it keep their share and the reserve is never touched."""
        moves_left = max(12.0, 40.0 - 0.5 * self.turn)
        usable = max(0.0, seconds_left - self.config.reserve)
        share = usable / moves_left + 0.8 * self._increment
        if critical:
            share *= CRITICAL_FACTOR
        return max(0.05, min(share, MAX_SHARE * usable if usable > 0 else 0.05, MAX_BUDGET))

    def plan(self, budget: float) -> tuple[int, float, float]:
        """How a move's ``budget`` is spent: (boards the engine proposes on and scores, engine seconds a proposal,
        engine seconds a candidate's score).  ``rbc.move_boards`` boards at ``rbc.engine_time`` cost about
        ``move_boards x engine_time x (1 + candidates / 2)``; a budget ``k`` times larger (``k`` up to
        ``MAX_SCALE`` squared, ``PLAN_SHARE`` of the budget planned for, the rest slack) takes ``sqrt(k)`` times
        more boards and ``sqrt(k)`` times longer searches.  Never fewer boards or shorter searches than configured:
        a short clock is handled by the deadlines."""
        cfg = self.config
        base = cfg.move_boards * cfg.engine_time * (1 + cfg.candidates / 2)
        scale = min(MAX_SCALE, max(1.0, PLAN_SHARE * budget / base) ** 0.5)
        return max(cfg.move_boards, int(cfg.move_boards * scale)), cfg.engine_time * scale, cfg.engine_time * scale / 2

    def _critical(self) -> bool:
        """A turn worth more of the clock: our king may be capturable (``CRITICAL_THREAT``) or the belief is wide
        (``CRITICAL_BOARDS``)."""
        belief = self._belief()
        if len(belief) > CRITICAL_BOARDS:
            return True
        return sum(belief.king_threats().values()) >= CRITICAL_THREAT

    # --- the move --------------------------------------------------------------------------------------------
    def _king_captures(self, actions: set[chess.Move]) -> dict[chess.Move, float]:
        """For each move that captures the king on some board, the belief weight of those boards."""
        return self._belief().king_captures(actions)

    def _hang_deadline(self, started: float, budget: float, seconds_left: float) -> float:
        """When a decision started at ``started`` with ``budget`` seconds and ``seconds_left`` on the clock must
        be over, an engine that hangs included (``HANG_SHARE``)."""
        return started + max(budget + MIN_MARGIN, HANG_SHARE * seconds_left)

    def _engine_ok(self) -> bool:
        return self.engine is not None and not self.engine_failed

    def _engine_call(self, what: str, call: Callable[[UciEngine], T]) -> T | None:
        """Run an engine request; on failure note it once, and stop using a broken engine."""
        engine = self.engine
        if engine is None or self.engine_failed:
            return None
        try:
            return call(engine)
        except EngineError as exc:
            restarts_left = engine.restarts < engine.cfg.max_restarts
            then = "scoring by material this turn" if restarts_left else \
                "no restarts left: playing by material from now on"
            self._incident(f"the engine failed during {what}; {then}", exc)
            if not restarts_left:
                self.engine_failed = True
            raise _EngineDown() from None

    def _value_after(self, board: chess.Board, move: chess.Move | None, seconds: float,
                     cache: dict[Any, float], use_engine: bool, depth: int = SCORE_DEPTH) -> float:
        """Our expected result after playing ``move`` (as the arbiter revises it) on ``board``."""
        after = child(board, taken_move(board, move))
        key = position_key(after)
        cached = cache.get(key)
        if cached is not None:
            return cached
        prepared = prepare(after)
        if prepared.value is not None:
            value = 1.0 - prepared.value  # prepared.value is the opponent's
        elif prepared.board is None or not use_engine:
            value = static_value(after, self.color)
        else:
            clean = prepared.board
            hang_by = self._hang_by
            infos = self._engine_call("scoring a move",
                                      lambda e: e.analyse(clean, seconds=seconds, depth=depth, deadline=hang_by))
            score = infos[0].get("score") if infos else None
            if score is None:
                value = static_value(after, self.color)
            else:
                value = score_value(score, self.color, ply=after.ply())
        cache[key] = value
        return value

    def _proposals(self, boards: list[tuple[chess.Board, float]], actions: set[chess.Move], seconds: float,
                   deadline: float, worth: dict[chess.Move, list[float]] | None = None,
                   ) -> tuple[dict[chess.Move, float], int, bool]:
        """The engine's favourite moves on each board (heaviest first, until ``deadline``), as votes weighted by
        board weight and rank; also how many boards were analysed and whether the engine is still usable.
        ``worth`` (if given) collects, per move, the weighted sum of the engine's values of it and the weight.
        Answers are cached for the turn (the sense and the move phase look at many of the same boards)."""
        votes: dict[chess.Move, float] = {}
        proposed = 0
        if not self._engine_ok():
            return votes, 0, False
        try:
            for board, w in boards:
                if proposed and time.monotonic() > deadline:
                    break
                key = position_key(board)
                moves = self._proposal_cache.get(key)
                if moves is None:
                    prepared = prepare(board)
                    if prepared.board is None:
                        continue
                    infos = self._engine_call("proposing moves",
                                              _analyser(prepared.board, seconds, MULTIPV, self._hang_by)) or []
                    moves = []
                    for info in infos[:len(VOTE_RANK)]:
                        pv = info.get("pv")
                        if not pv:
                            continue
                        if pv[0] not in actions:
                            self._incident(f"the engine proposed {_mv(pv[0])}, which is not a move action; ignored")
                            continue
                        score = info.get("score")
                        value = score_value(score, self.color, ply=board.ply()) if score is not None else 0.5
                        moves.append((pv[0], value))
                    self._proposal_cache[key] = moves
                proposed += 1
                for rank, (move, value) in enumerate(moves):
                    votes[move] = votes.get(move, 0.0) + w * VOTE_RANK[rank]
                    if worth is not None:
                        acc = worth.setdefault(move, [0.0, 0.0])
                        acc[0] += w * value
                        acc[1] += w
        except _EngineDown:
            return votes, proposed, False
        return votes, proposed, True

    def _sense_values(self, sample: tuple[list[chess.Board], list[float]], move_actions: list[chess.Move],
                      seconds_left: float) -> list[list[float]] | None:
        """What each likely move is worth on each sample board, for a sense that checks what the move hinges on:
        1 if it captures the king there, 0 if it leaves our king en prise there, else the engine's mean value of
        the move on the boards where it proposed it."""
        boards, weights = sample
        if len(boards) < 2 or not move_actions:
            return None
        started = time.monotonic()
        move_budget = self.budget(seconds_left, self._critical())
        budget = SENSE_SHARE * move_budget
        self._hang_by = self._hang_deadline(started, budget, seconds_left)
        n_boards, t_propose, _ = self.plan(move_budget)
        actions = set(move_actions)
        heaviest = sorted(zip(boards, weights, strict=True), key=lambda bw: -bw[1])[:n_boards]
        seconds = max(MIN_ENGINE_TIME, min(t_propose, 0.5 * budget / len(heaviest)))
        worth: dict[chess.Move, list[float]] = {}
        votes, _, _ = self._proposals(heaviest, actions, seconds, started + 0.5 * budget, worth)
        candidates = sorted(votes, key=lambda m: -votes[m])[:SENSE_CANDIDATES]
        for board in boards:  # moves that capture the king somewhere
            king = board.king(not self.color)
            if king is None:
                continue
            for attacker in chess.SquareSet(board.attackers_mask(self.color, king)):
                pawn = board.piece_type_at(attacker) == chess.PAWN and chess.square_rank(king) in (0, 7)
                move = chess.Move(attacker, king, chess.QUEEN if pawn else None)
                if move in actions and move not in candidates:
                    candidates.append(move)
        if len(candidates) < 2:
            return None
        prior = [worth[m][0] / worth[m][1] if m in worth and worth[m][1] > 0 else 0.5 for m in candidates]
        values: list[list[float]] = []
        deadline = started + budget
        for board in boards:
            if time.monotonic() > deadline:
                return None  # out of time: better no values than values for some boards only
            row = []
            for move, p in zip(candidates, prior, strict=True):
                after = child(board, taken_move(board, move))
                mine = after.king(self.color)
                if after.king(not self.color) is None:
                    row.append(1.0)
                elif mine is None or after.attackers_mask(not self.color, mine):
                    row.append(0.0)
                else:
                    row.append(p)
            values.append(row)
        return values

    def _outcomes(self, boards: list[tuple[chess.Board, float]], moves: list[chess.Move],
                  deadline: float) -> dict[chess.Move, tuple[float, float]]:
        """For each move, the weighted share of ``boards`` on which it captures the king, and on which it leaves
        our king where the opponent can capture it (no engine needed: exact on every board looked at)."""
        acc = {m: [0.0, 0.0] for m in moves}
        total = 0.0
        for board, w in boards:
            if total > 0 and time.monotonic() > deadline:
                break
            total += w
            for move in moves:
                after = child(board, taken_move(board, move))
                mine = after.king(self.color)
                if after.king(not self.color) is None:
                    acc[move][0] += w
                elif mine is None or after.attackers_mask(not self.color, mine):
                    acc[move][1] += w
        if total <= 0:
            return {m: (0.0, 0.0) for m in moves}
        return {m: (a[0] / total, a[1] / total) for m, a in acc.items()}

    def _safer_moves(self, move_actions: list[chess.Move], candidates: list[chess.Move],
                     outcomes: dict[chess.Move, tuple[float, float]], boards: list[tuple[chess.Board, float]],
                     deadline: float) -> list[chess.Move]:
        """When every candidate may leave our king where the opponent can capture it, the (at most
        ``SAFER_CANDIDATES``) move actions that leave it so on the least weight, if less than the candidates do
        (checked on the heaviest ``SAFER_SCAN`` boards).  The engine proposes moves board by board; an evasion
        that is safe on every board may be the favourite on none (issue 12: a seen attacker must be answered)."""
        floor = min(outcomes[m][1] for m in candidates)
        if floor <= 0:
            return []
        others = [m for m in move_actions if m not in candidates]
        if not others:
            return []
        # the others and the candidates on the same boards (one pass: a deadline cuts both at the same board)
        scan = self._outcomes(boards[:SAFER_SCAN], others + candidates, deadline)
        scan_floor = min(scan[m][1] for m in candidates)
        safer = sorted((m for m in others if scan[m][1] < scan_floor - 1e-9), key=lambda m: (scan[m][1], -scan[m][0]))
        return safer[:SAFER_CANDIDATES]

    def _choose_move(self, move_actions: list[chess.Move], seconds_left: float, started: float) -> chess.Move | None:
        belief = self._belief()
        critical = self._critical()
        budget = self.budget(seconds_left, critical)
        deadline = started + budget
        self._hang_by = self._hang_deadline(started, budget, seconds_left)
        n_boards, t_propose_plan, t_score_plan = self.plan(budget)
        self.last_move_info = {"budget": budget, "critical": critical}
        if not move_actions:
            self.last_move_info["why"] = "no move offered"
            return None
        actions = set(move_actions)
        captures = self._king_captures(actions)
        if captures:
            best = max(captures, key=lambda m: captures[m])
            if captures[best] >= KING_CAPTURE_CERTAIN:
                self.last_move_info["why"] = f"captures the king with p={captures[best]:.2f}"
                return best
        sample = belief.sample(n_boards)
        if not sample:
            return self._material_move(move_actions)
        n = len(sample)
        n_cand = self.config.candidates
        t_propose = max(MIN_ENGINE_TIME, min(t_propose_plan * (4 if n == 1 else 1), 0.3 * budget / n))
        t_score = max(MIN_ENGINE_TIME, min(t_score_plan, 0.5 * budget / (n * n_cand)))
        depth = SCORE_DEPTH + max(0, int(2 * math.log2(t_score / (self.config.engine_time / 2)) + 1e-9))
        use_engine = self._engine_ok()
        # 1. proposals: the engine's favourite moves on each sampled board
        votes, proposed, use_engine = self._proposals(sample, actions, t_propose, started + 0.35 * budget)
        if use_engine and proposed and not votes:
            self._incident("the engine proposed no usable move on any board; scoring by material")
        candidates = sorted(votes, key=lambda m: -votes[m])[:n_cand]
        for move in sorted(captures, key=lambda m: -captures[m]):
            if move not in candidates:
                candidates.append(move)
        if not candidates:
            self.last_move_info["why"] = "no proposal: material"
            return self._material_move(move_actions)
        # 2. certain outcomes over many boards: king captures, and our king left en prise
        wide = belief.sample(self.config.safety_boards) if len(belief) > n else sample
        outcomes = self._outcomes(wide, candidates, started + 0.5 * budget)
        safer = self._safer_moves(move_actions, candidates, outcomes, wide, started + 0.6 * budget)
        if safer:
            candidates += safer
            outcomes.update(self._outcomes(wide, safer, started + 0.65 * budget))
        # 3. engine scores of the other outcomes: boards outer, so that a deadline leaves every candidate
        # scored on the same boards
        cache: dict[Any, float] = {}
        stats = {m: [0.0, 0.0, 1.0] for m in candidates}  # weight, weighted sum, min
        boards_done = 0
        for board, w in sample:
            if boards_done and time.monotonic() > deadline:
                break
            for move in candidates:
                after = child(board, taken_move(board, move))
                mine = after.king(self.color)
                if after.king(not self.color) is None or mine is None or \
                        after.attackers_mask(not self.color, mine):
                    continue  # decided: counted in the outcomes
                try:
                    value = self._value_after(board, move, t_score, cache, use_engine, depth)
                except _EngineDown:
                    use_engine = False
                    value = self._value_after(board, move, t_score, cache, False)
                s = stats[move]
                s[0] += w
                s[1] += w * value
                s[2] = min(s[2], value)
            boards_done += 1
        mean_weight = self.config.mean_weight

        def final(move: chess.Move) -> float:
            weight, total, worst = stats[move]
            rest = (mean_weight * total / weight + (1 - mean_weight) * worst) if weight > 0 else 0.5
            rest = 0.5 + VALUE_CONFIDENCE * (rest - 0.5)
            p_win, p_lose = outcomes[move]
            return p_win + (1 - p_win - p_lose) * rest - LOSE_AVERSION * p_lose

        best = max(candidates, key=lambda m: (final(m), votes.get(m, 0.0)))
        p_win, p_lose = outcomes[best]
        self.last_move_info["why"] = (f"score {final(best):.3f} (king capture {p_win:.2f}, en prise {p_lose:.2f}) "
                                      f"over {boards_done}/{n} boards, {len(candidates)} candidates"
                                      f"{'' if use_engine else ', material only'}")
        return best

    def _material_move(self, move_actions: list[chess.Move]) -> chess.Move | None:
        """A sensible move without an engine: the best material outcome over a few boards (king captures
        and leaving our king en prise count as decided)."""
        if not move_actions:
            return None
        belief = self._belief()
        sample = belief.sample(8)
        if not sample:
            return move_actions[0]
        best: chess.Move | None = None
        best_value = -1.0
        moves: list[chess.Move | None] = list(move_actions)
        moves.append(None)
        cache: dict[Any, float] = {}
        for move in moves:
            values = [(self._value_after(b, move, 0.0, cache, False), w) for b, w in sample]
            total = sum(w for _, w in values)
            mean = sum(v * w for v, w in values) / total if total > 0 else 0.5
            worst = min(v for v, _ in values)
            value = self.config.mean_weight * mean + (1 - self.config.mean_weight) * worst
            if value > best_value + 1e-9:
                best, best_value = move, value
        self.last_move_info["why"] = f"material score {best_value:.3f}"
        return best


def _analyser(board: chess.Board, seconds: float, multipv: int,
              deadline: float | None) -> Callable[[UciEngine], list[InfoDict]]:
    return lambda engine: engine.analyse(board, seconds=seconds, multipv=multipv, deadline=deadline)


class _EngineDown(Exception):
    """Internal: the engine failed for this turn (already noted)."""


def make_player(ctx: GameContext) -> BridgeRbcPlayer:
    """The player for one game of the daemon: the configured UCI engine (``engine:``, protocol ``uci``) with the
    ``rbc:`` settings; the engine's lines and the player's notes go to the game's transcript."""
    config = ctx.config
    if config.engine.protocol != "uci":
        raise ConfigError(f"engine.protocol is {config.engine.protocol!r}, but Reconnaissance Blind Chess needs a UCI "
                          f"chess engine: set engine.protocol: uci and engine.command to e.g. /usr/games/stockfish")
    name = Path(config.engine.command[0]).name or "uci"
    engine: UciEngine | None
    try:
        engine = UciEngine(config.engine, name=name, transcript=ctx.transcript, info_lines=config.rbc.transcript_info,
                           serves=f"{getattr(config.server, 'kind', 'rbc')}-{ctx.game_id}")
    except EngineError as exc:
        # a game is never given up for its engine: without one the player still senses and scores by material
        log.error("game %s: %s; playing this game without the engine (moves scored by material)", ctx.game_id, exc)
        ctx.transcript.note(f"the engine could not start ({exc}); playing without it, by material")
        engine = None
    except Exception as exc:  # never let an unexpected start-up failure escape unexplained
        raise BridgeError(f"cannot start the UCI engine {config.engine.command[0]!r}: {exc}") from exc
    return BridgeRbcPlayer(engine, config.rbc, transcript=ctx.transcript, name=name, game_id=ctx.game_id)
