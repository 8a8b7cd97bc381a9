"""The Go player: keeps one GTP engine in step with one Go game and asks it for moves.

It knows GTP and Go, nothing of any server: it is fed :class:`GoState` snapshots and answers with moves.
Everything is idempotent over snapshots, so a reconnect, a duplicated event or an undo is just another snapshot.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bridge.config import EngineProcessConfig
from bridge.engines.gtp import GtpEngine
from bridge.engines.process import EngineProcess
from bridge.errors import EngineError
from bridge.games.go_analysis import EngineAnalysis, parse_genmove_analyze
from bridge.games.gotypes import (
    Color,
    GoSettings,
    GoState,
    Move,
    Point,
    TimeControl,
    color_of_move,
    gtp_vertex,
    parse_gtp_vertex,
)
from bridge.transcript import Transcript

log = logging.getLogger("bridge.go")

# OGS rule names -> KataGo's kata-set-rules and KGS's kgs-rules.
KATA_RULES = {"chinese": "chinese-ogs", "aga": "aga", "japanese": "japanese", "korean": "korean",
              "ing": "chinese", "nz": "new-zealand"}
KGS_RULES = {"chinese": "chinese", "aga": "aga", "japanese": "japanese", "korean": "japanese", "ing": "chinese",
             "nz": "new_zealand"}

RESIGN = "resign"
# GTP analysis extensions that answer a move and the analysis behind it, with the scale of their win rates
ANALYZE_COMMANDS = (("kata-genmove_analyze", 1.0), ("lz-genmove_analyze", 10000.0))
# centiseconds between the info lines an engine prints while it thinks (Leela Zero prints a last one when it stops)
ANALYZE_INTERVAL = 50
MIN_THINK = 2.0  # seconds a restarted engine should have at least to find a move (else: the bridge's own move)
# seconds a hang's reserve holds beyond the retry's own needs: the hung engine's stop and the new one's start, the
# game loop's send reserve, and a clock read a little early (the server's clock event follows the move it timed)
RETRY_SLACK = 3.5


@dataclass(frozen=True)
class ClockCommand:
    """What to tell the engine about time before a genmove, and how long it may take at most."""

    time_left: tuple[float, int] | None  # (seconds, stones) for `time_left`, None when there is no clock
    budget: float  # seconds until the player would lose on time (inf when there is no clock)


def time_settings_commands(tc: TimeControl, supports: Callable[[str], bool]) -> list[tuple[str, ...]]:
    """The GTP commands that describe a time control to an engine that lists ``supports``-ed commands.
    Preference: KataGo's ``kata-time_settings`` for fischer, ``kgs-time_settings`` for the KGS systems, and plain
    ``time_settings`` (an approximation for byo-yomi and fischer) otherwise."""
    sys_ = tc.system
    kgs = supports("kgs-time_settings")
    kata = supports("kata-time_settings")
    plain = supports("time_settings")

    def i(x: float) -> str:
        return str(math.floor(x))

    if sys_ == "none":
        if kgs:
            return [("kgs-time_settings", "none")]
        return [("time_settings", "0", "1", "0")] if plain else []
    if sys_ == "fischer":
        if kata:
            max_main = tc.max_time if tc.max_time > 0 else -1
            return [("kata-time_settings", "fischer-capped", f"{tc.initial_time:g}", f"{tc.time_increment:g}",
                     f"{max_main:g}", "-1")]
        # canadian periods of one stone holding the increment: main + one period = the time actually left
        main = max(tc.initial_time - tc.time_increment, 0)
        if kgs:
            return [("kgs-time_settings", "canadian", i(main), i(tc.time_increment), "1")]
        return [("time_settings", i(main), i(tc.time_increment), "1")] if plain else []
    if sys_ == "byoyomi":
        if kgs:
            return [("kgs-time_settings", "byoyomi", i(tc.main_time), i(tc.period_time), str(tc.periods))]
        # plain GTP has no byo-yomi: fold all periods but the last into main time, the last is a 1-stone period
        folded = tc.main_time + max(tc.periods - 1, 0) * tc.period_time
        return [("time_settings", i(folded), i(tc.period_time), "1")] if plain else []
    if sys_ == "canadian":
        if kgs:
            return [("kgs-time_settings", "canadian", i(tc.main_time), i(tc.period_time), str(tc.stones_per_period))]
        return [("time_settings", i(tc.main_time), i(tc.period_time), str(tc.stones_per_period))] if plain else []
    if sys_ == "absolute":
        if kgs:
            return [("kgs-time_settings", "absolute", i(tc.total_time))]
        return [("time_settings", i(tc.total_time), "0", "0")] if plain else []
    if sys_ == "simple":
        if kgs:
            return [("kgs-time_settings", "byoyomi", "0", i(tc.per_move), "1")]
        return [("time_settings", "0", i(tc.per_move), "1")] if plain else []
    return []


def clock_command(state: GoState, color: Color, now: float | None = None, *, kgs: bool = True,
                  kata: bool = False) -> ClockCommand:
    """Time left for ``color`` right now, as GTP ``time_left`` arguments matching what
    :func:`time_settings_commands` told the engine (``kgs``/``kata``: whether it had those commands), from the
    snapshot's clock corrected by the time elapsed since it was received."""
    tc = state.settings.time_control
    clock = state.clock
    if tc.system == "none":
        return ClockCommand(None, math.inf)
    elapsed = 0.0
    if clock is not None and clock.to_move == color and not clock.paused:
        elapsed = max((now if now is not None else time.monotonic()) - clock.received_at, 0.0)
    if tc.system == "simple":
        left = max(tc.per_move - elapsed, 0.0)
        return ClockCommand((left, 1), left)
    pc = clock.of(color) if clock is not None else None
    if clock is None or pc is None:
        return ClockCommand(None, math.inf)
    main = pc.thinking_time - elapsed
    if tc.system == "absolute":
        left = max(main, 0.0)
        return ClockCommand((left, 0), left)
    if tc.system == "fischer":
        left = max(main, 0.0)
        if kata:
            return ClockCommand((left, 0), left)
        inc = tc.time_increment
        if left - inc > 0:
            return ClockCommand((left - inc, 0), left)
        return ClockCommand((left, 1), left)
    if tc.system == "byoyomi":
        period = pc.period_time or tc.period_time
        periods = pc.periods
        if main <= 0:  # overtime: the overflow eats whole periods
            overflow = -main
            main = 0.0
            while periods > 0 and overflow >= period:
                overflow -= period
                periods -= 1
            current = max(period - overflow, 0.0)
        else:
            current = period
        budget = main + (current if main <= 0 else period) + max(periods - 1, 0) * period
        if kgs:
            if main > 0:
                return ClockCommand((main, 0), budget)
            return ClockCommand((current, max(periods, 1)), budget)
        folded = (main if main > 0 else current) + max(periods - 1, 0) * period
        if periods > 1 or main > 0:
            return ClockCommand((folded, 0), budget)
        return ClockCommand((current, 1), budget)
    if tc.system == "canadian":
        if main > 0:
            return ClockCommand((main, 0), main + tc.period_time)
        block = (pc.block_time or tc.period_time) + main  # main is the negative overflow here
        stones = pc.moves_left or tc.stones_per_period
        return ClockCommand((max(block, 0.0), max(stones, 1)), max(block, 0.0))
    return ClockCommand(None, math.inf)


def hang_limit(cfg: EngineProcessConfig, start_seconds: float, budget: float) -> float:
    """How long an engine whose last start took ``start_seconds`` may take before it counts as hung. With a clock
    (``budget``: seconds until the flag) the limit is always inside it: what a retry needs stays on the clock
    (``move_margin`` plus the engine's start plus :data:`MIN_THINK`, and at least twice what a start and MIN_THINK
    take, plus :data:`RETRY_SLACK`; at most half the time left) to restart the engine, replay the game and still
    move, or play a fallback move. Without a clock: the ``max_move_time`` cap (1 h if none) plus ``move_margin``."""
    cap = cfg.max_move_time
    margin = cfg.move_margin
    if math.isfinite(budget):
        # what stays on the clock must carry a retry: the engine's restart, MIN_THINK seconds of thought, and
        # the retry's own reserve (the same rule once more, at most half of what is then left)
        start = start_seconds
        reserve = max(margin + start + MIN_THINK, 2 * (MIN_THINK + start)) + RETRY_SLACK
        limit = budget - min(reserve, budget / 2)
        if cap is not None:
            limit = min(limit, cap + margin)
        return max(limit, 0.2)
    return max(cap if cap is not None else 3600.0, 1.0) + margin


def resumed_after_removal(state: GoState) -> bool:
    """True when play goes on after a stone removal phase was rejected: two passes in a row (which end play on
    OGS) lie behind the current move. The players disagree about which stones are dead, and the board must settle
    it: ``kgs-genmove_cleanup`` (GNU Go, Leela Zero) plays on until the stones the engine thinks dead are
    captured, where plain ``genmove`` would pass straight back into the same dispute. KGS asks it in that phase
    under Japanese rules; under area rules capturing in one's own area costs nothing, so it serves there too."""
    moves = state.moves
    return any(a is None and b is None for a, b in itertools.pairwise(moves))


class GoPlayer:
    """One engine process kept in step with one game. Not thread-safe: one session thread drives it."""

    def __init__(self, engine: EngineProcessConfig, *, name: str, transcript: Transcript,
                 on_stderr: Callable[[str], None] | None = None) -> None:
        self.cfg = engine
        self.name = name
        self.transcript = transcript
        self.on_stderr = on_stderr
        self.engine: GtpEngine | None = None
        self._settings: GoSettings | None = None
        self._synced: list[Move] = []  # moves the engine has been told, in game order
        self.restarts = 0
        self.start_failed = False  # the last start (spawn or handshake) failed: the engine cannot start
        self.start_seconds = 0.0  # how long the last successful start took (to judge a restart's cost)
        self._lock = threading.Lock()  # guards engine/_spawning/_aborted against abort() from another thread
        self._spawning: EngineProcess | None = None
        self._aborted: str | None = None
        self.last_analysis: EngineAnalysis | None = None  # what the engine thought of its last genmove

    # --- process ------------------------------------------------------------------------------------------
    def start(self) -> GtpEngine:
        if self.engine is not None:
            return self.engine
        if self._aborted is not None:
            raise EngineError(f"engine {self.name} is not started: {self._aborted}")
        began = time.monotonic()
        try:
            engine = GtpEngine.start(
                list(self.cfg.command), name=self.name, cwd=self.cfg.cwd,
                env=dict(self.cfg.env) or None, transcript=self.transcript,
                startup_timeout=self.cfg.startup_timeout, quit_grace=self.cfg.quit_grace, on_stderr=self.on_stderr,
                on_spawn=self._spawned)
        except EngineError:
            self.start_failed = self._aborted is None
            raise
        finally:
            with self._lock:
                self._spawning = None
        self.start_failed = False
        self.start_seconds = time.monotonic() - began
        with self._lock:
            aborted = self._aborted
            if aborted is None:
                self.engine = engine
        if aborted is not None:
            engine.close()
            raise EngineError(f"engine {self.name} stopped as it started: {aborted}")
        self._settings = None
        self._synced = []
        return engine

    def _spawned(self, process: EngineProcess) -> None:
        with self._lock:
            aborted = self._aborted
            if aborted is None:
                self._spawning = process
        if aborted is not None:
            process.stop(grace=0.0)

    def close(self, hung: bool = False) -> None:
        """Stop the engine: quit, engine.quit_grace, then signals; ``hung``: at once when it no longer answers."""
        with self._lock:
            engine, self.engine = self.engine, None
        if engine is not None:
            if hung and engine.broken is not None:
                engine.process.stop(quit_line="quit", grace=0.0)
            engine.close()
        self._settings = None
        self._synced = []

    def abort(self, why: str) -> None:
        """From any thread: stop the engine now, even in the middle of a command or of its start-up, and start
        no other. The thread driving the player gets an EngineError from the command it was waiting on."""
        with self._lock:
            if self._aborted is None:
                self._aborted = why
            engine, spawning = self.engine, self._spawning
        if engine is not None:
            engine.close()
        elif spawning is not None:
            spawning.stop(grace=0.0)

    @property
    def aborted(self) -> str | None:
        """Why :meth:`abort` was called, or None."""
        return self._aborted

    def restart(self, why: str) -> None:
        """Replace a broken or desynchronised engine by a fresh one; the next :meth:`sync` replays the game.

        Says nothing at WARNING and writes no note: whoever decides the restart says it once, with why and how
        many are left (the game loop's "the engine failed: ...; restarting it", the roles' "the ending engine
        failed"): one fault, one line in the journal and one in the transcript."""
        self.restarts += 1
        log.debug("%s: restarting the engine (%s), restart %d of %d", self.name, why, self.restarts,
                  self.cfg.max_restarts)
        self.close(hung=True)  # a hung engine will not read 'quit': the clock's reserve is not spent waiting

    def invalidate(self) -> None:
        """Forget what the engine was told: the next :meth:`sync` replays the game from ``clear_board``."""
        self._settings = None

    @property
    def exhausted(self) -> bool:
        return self.restarts > self.cfg.max_restarts

    # --- keeping the engine in step -------------------------------------------------------------------------
    def sync(self, state: GoState) -> None:
        """Tell the engine every move of ``state`` it does not know yet; replay from scratch when the snapshot
        is not an extension of what the engine saw (undo, new game, engine restart)."""
        self._exchange(self.start(), state, [], None)

    def _exchange(self, engine: GtpEngine, state: GoState, then: list[tuple[tuple[str, ...], float | None]],
                  timeout: float | None) -> list[str]:
        """Bring the engine to ``state`` (as :meth:`sync`), then send ``then`` (commands with their own limits),
        all in one write, and return the results of ``then``. Every command keeps its own limit (the engine's
        ``command_timeout`` for the sync), ``timeout`` bounds them all. On any failure the engine is taken as
        knowing nothing of the game (the next sync replays it)."""
        told, fresh, commands = self._sync_plan(engine, state)
        s = state.settings
        try:
            results = engine.commands_at_once([*((c, None) for c in commands), *then], timeout)
        except BaseException:
            self.invalidate()
            raise
        if fresh:
            self._synced = told
        else:
            self._synced.extend(told)
        self._settings = s
        return results[len(commands):]

    def _sync_plan(self, engine: GtpEngine, state: GoState) -> tuple[list[Move], bool, list[tuple[str, ...]]]:
        """What :meth:`sync` has to send: the moves it tells the engine, whether it starts over (set-up
        commands, then every move), and the commands."""
        moves = state.moves
        s = state.settings
        synced = self._synced
        fresh = self._settings != s or len(moves) < len(synced) or list(moves[: len(synced)]) != synced
        commands = self._setup_commands(engine, s) if fresh else []
        told: list[Move] = []
        free = s.free_handicap and s.handicap > 1
        i = 0 if fresh else len(synced)
        defer = free and s.my_color == "white" and engine.supports("set_free_handicap")
        while i < len(moves):
            if defer and i < s.handicap and len(moves) < s.handicap:
                break  # told all at once with set_free_handicap when black has placed them all
            if free and i == 0 and len(moves) >= s.handicap and engine.supports("set_free_handicap"):
                stones = moves[: s.handicap]
                if all(m is not None for m in stones):
                    commands.append(("set_free_handicap", *(gtp_vertex(m, s.height) for m in stones)))
                    told.extend(stones)
                    i = s.handicap
                    continue
            commands.append(("play", color_of_move(s, i), gtp_vertex(moves[i], s.height)))
            told.append(moves[i])
            i += 1
        return told, fresh, commands

    def _setup_commands(self, engine: GtpEngine, s: GoSettings) -> list[tuple[str, ...]]:
        """The commands that start the game afresh in the engine: board, komi, rules, set-up stones, clock."""
        commands: list[tuple[str, ...]] = []
        if s.width == s.height:
            commands.append(("boardsize", str(s.width)))
        elif engine.supports("rectangular_boardsize"):
            commands.append(("rectangular_boardsize", str(s.width), str(s.height)))
        else:
            raise EngineError(f"engine {engine.engine_name} cannot play a {s.width}x{s.height} board "
                              f"(no rectangular_boardsize); set server.accept.allow_rectangular: false")
        commands.append(("clear_board",))
        commands.append(("komi", f"{s.komi:g}"))
        if engine.supports("kata-set-rules") and s.rules in KATA_RULES:
            commands.append(("kata-set-rules", KATA_RULES[s.rules]))
        elif engine.supports("kgs-rules") and s.rules in KGS_RULES:
            commands.append(("kgs-rules", KGS_RULES[s.rules]))
        if s.initial_black:
            stones = [gtp_vertex(p, s.height) for p in s.initial_black]
            if engine.supports("set_free_handicap") and len(stones) >= 2 and not s.initial_white:
                commands.append(("set_free_handicap", *stones))
            else:
                commands.extend(("play", "black", v) for v in stones)
        commands.extend(("play", "white", gtp_vertex(p, s.height)) for p in s.initial_white)
        commands.extend(time_settings_commands(s.time_control, engine.supports))
        return commands

    # --- deciding ------------------------------------------------------------------------------------------
    def genmove(self, state: GoState) -> list[Move] | str:
        """The engine's move(s) for the player to move in ``state``: a list of moves (several when placing free
        handicap stones at once), or ``"resign"``. Raises EngineError for a failure or an invalid answer.

        Everything sent for this move (the moves it missed, ``time_left``, the genmove) shares one hang limit,
        measured from now: an engine frozen while it is told a move is caught inside the clock, as in genmove."""
        engine = self.start()
        self.last_analysis = None
        s = state.settings
        color = state.to_move
        clock = clock_command(state, color, kgs=engine.supports("kgs-time_settings"),
                              kata=engine.supports("kata-time_settings"))
        limit = self._timeout(clock.budget)
        free = s.free_handicap and s.handicap > 1 and len(state.moves) < s.handicap
        if free and not state.moves and engine.supports("place_free_handicap"):
            self._exchange(engine, state, [], limit)
            reply = engine.command("place_free_handicap", str(s.handicap), timeout=self._timeout(math.inf))
            stones = [parse_gtp_vertex(v, s.width, s.height) for v in reply.split()]
            if len(stones) != s.handicap or any(p is None for p in stones) or len(set(stones)) != len(stones):
                raise EngineError(f"place_free_handicap {s.handicap} answered {reply!r}: "
                                  f"expected {s.handicap} distinct vertices")
            self._synced.extend(stones)
            return list(stones)
        # the moves the engine missed, time_left and the move request go in one write (GTP answers in order):
        # one round trip a move; each keeps its own limit and error, and ``limit`` covers them all, from now
        then: list[tuple[tuple[str, ...], float | None]] = []
        if clock.time_left is not None and engine.supports("time_left"):
            secs, stones_left = clock.time_left
            then.append((("time_left", color, str(max(int(secs), 0)), str(stones_left)), None))
        # the engine's list first: the game's moves are scanned only for an engine that has the command
        command = "kgs-genmove_cleanup" if engine.supports("kgs-genmove_cleanup") and resumed_after_removal(
            state) else "genmove"
        gtp_color = "b" if color == "black" else "w"
        analyze = None
        if command == "genmove" and getattr(self.cfg, "analysis", "off") != "off":
            analyze = next(((n, sc) for n, sc in ANALYZE_COMMANDS if engine.supports(n)), None)
        if analyze is not None:
            then.append(((analyze[0], gtp_color, str(ANALYZE_INTERVAL)), limit))
        else:
            then.append(((command, gtp_color), limit))
        reply = self._exchange(engine, state, then, limit)[-1]
        if analyze is not None:
            reply = self._analysis_reply(engine, analyze, color, state, reply)
        else:
            reply = reply.strip().lower()
            if not reply or len(reply.split()) != 1:
                raise EngineError(f"engine {engine.name} answered {command} {gtp_color} with {reply!r}, "
                                  f"not a vertex, pass or resign")
        if reply == RESIGN:
            return RESIGN
        try:
            move = parse_gtp_vertex(reply, s.width, s.height)
        except ValueError as exc:
            raise EngineError(f"genmove {color} answered {reply!r}: {exc}") from None
        self._synced.append(move)
        return [move]

    def take_back(self) -> None:
        """Forget the engine's own last genmove, a move that was not played (an engine asked for its opinion
        only): ``undo`` where the engine has it, else the next :meth:`sync` replays the game."""
        engine = self.engine
        if engine is not None and self._synced and self._settings is not None and engine.supports("undo"):
            engine.command("undo")
            self._synced.pop()
        else:
            self.invalidate()

    @property
    def analyzes(self) -> bool:
        """True when engine.analysis is on and the running engine answers moves with their analysis through a GTP
        extension (its stderr need not be read for it)."""
        engine = self.engine
        return getattr(self.cfg, "analysis", "off") != "off" and engine is not None and any(
            engine.supports(name) for name, _ in ANALYZE_COMMANDS)

    def _analysis_reply(self, engine: GtpEngine, analyze: tuple[str, float], color: str, state: GoState,
                        reply: str) -> str:
        """The move in the answer to an analysis extension's genmove (``info ...`` lines, then ``play D4``: one GTP
        reply), lowercased; its analysis goes to :attr:`last_analysis`."""
        name, scale = analyze
        s = state.settings
        play, analysis = parse_genmove_analyze(reply.splitlines(), s.width, s.height, scale=scale)
        if play is None:
            raise EngineError(f"engine {engine.name} answered {name} {color} with no 'play' line: "
                              f"{reply[-200:]!r}")
        self.last_analysis = analysis
        return play.strip().lower()

    def hang_limit(self, budget: float) -> float:
        """Seconds the engine may think with ``budget`` seconds on the clock before it counts as hung."""
        return self._timeout(budget)

    def _timeout(self, budget: float) -> float:
        return hang_limit(self.cfg, self.start_seconds, budget)

    def dead_stones(self, state: GoState) -> frozenset[Point] | None:
        """The engine's view of the dead stones at the end of play, or None if it cannot say."""
        engine = self.start()
        if not engine.supports("final_status_list"):
            return None
        reply = self._exchange(engine, state, [(("final_status_list", "dead"), self._timeout(60.0))], None)[0]
        s = state.settings
        points: set[Point] = set()
        for token in reply.split():
            p = parse_gtp_vertex(token, s.width, s.height)
            if p is not None:
                points.add(p)
        return frozenset(points)
