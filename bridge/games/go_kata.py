"""``engine.manager: kata_analysis``: one ``katago analysis`` process serving every Go game.

KataGo's analysis engine (``katago analysis -config CFG -model MODEL``, docs/Analysis_Engine.md in KataGo) reads
one JSON query a line on stdin and writes one JSON response a line on stdout, asynchronously: many queries in
flight, answers in any order, matched by their ``id``. Each move of each game is one query: the game's moves
(``moves``, coloured), its setup stones (``initialStones``, ``initialPlayer``), ``rules``, ``komi``,
``boardXSize``/``boardYSize``, ``analyzeTurns`` (the current turn only) and, if configured, ``maxVisits``. The
answer's ``moveInfos`` entry with ``order`` 0 is the move (``pass`` passes); the bot resigns when ``rootInfo``'s
``winrate`` falls below ``engine.resign_winrate`` for its colour. Every query sets ``reportAnalysisWinratesAs`` to
``BLACK`` (``overrideSettings``), so winrates and ownership are black's whatever the analysis config says. Dead
stones at the end come from the ``ownership`` estimate.

Start: the process is started (by this manager's own thread: engines die with the thread that started them) on
the first query and handshaken with a ``query_version`` action. A query that does not come back within the move's
hang limit is terminated (``terminate``); one that is not answered even then means a hung process. A dead or hung
process fails every query in flight; each game's retry restarts it (once: the first restart wins) and asks again.
Every query and its answer go to the transcript of the game that asked.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bridge.config import EngineConfig
from bridge.engines.process import EngineProcess
from bridge.errors import EngineError, EngineTerminatedError, EngineTimeoutError
from bridge.games.go import KATA_RULES, MIN_THINK, RESIGN, clock_command, hang_limit
from bridge.games.go_analysis import AnalysisError, EngineAnalysis, analysis_of_move_info
from bridge.games.gorules import GoBoard, IllegalMove
from bridge.games.gotypes import GoState, Move, Point, color_of_move, gtp_vertex, parse_gtp_vertex
from bridge.transcript import Transcript

log = logging.getLogger("bridge.kata")

TERMINATE_GRACE = 2.0  # seconds a terminated query has to report what it found before the process counts as hung
DEAD_OWNERSHIP = 0.6  # a stone whose point the other colour owns by at least this much is dead
SOURCE = "katago"


class _Query:
    def __init__(self, qid: str, transcript: Transcript, generation: int) -> None:
        self.id = qid
        self.transcript = transcript
        self.generation = generation
        self.done = threading.Event()
        self.response: dict[str, Any] | None = None
        self.error: EngineError | None = None
        self.sent = False  # its line was written to the engine (under the engine's lock)
        self.stop_requested = False  # stopped before it was written: terminate it right after it is

    def finish(self, response: dict[str, Any] | None = None, error: EngineError | None = None) -> None:
        if not self.done.is_set():
            self.response, self.error = response, error
            self.done.set()


class KataAnalysisEngine:
    """The one analysis process and its dispatcher. Thread-safe; ``player()`` gives each game its view."""

    uses_slots = False

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kata-analysis")
        self._process: EngineProcess | None = None
        self._reader: threading.Thread | None = None
        self._generation = 0
        self._pending: dict[str, _Query] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self.start_seconds = 0.0
        self.start_failed = False
        self.starts = 0  # processes started so far
        self.pids: list[int] = []

    def player(self, *, name: str, transcript: Transcript,
               on_stderr: Callable[[str], None] | None) -> KataAnalysisPlayer:
        return KataAnalysisPlayer(self, name=name, transcript=transcript)

    # --- the process -----------------------------------------------------------------------------------------
    def ensure_started(self) -> int:
        """Start the process unless it runs; return its generation. Raises EngineError saying why it cannot."""
        with self._start_lock:
            with self._lock:
                if self._closed:
                    raise EngineError("the analysis engine is closed: the daemon is stopping")
                if self._process is not None and self._process.alive:
                    return self._generation
            try:
                return self._starter.submit(self._start).result()
            except RuntimeError:
                raise EngineError("the analysis engine is closed: the daemon is stopping") from None

    def _start(self) -> int:
        """On the manager's thread: spawn, read, and handshake (query_version) within engine.startup_timeout."""
        began = time.monotonic()
        self.stop_process()
        process = EngineProcess(list(self.cfg.command), name=SOURCE, cwd=self.cfg.cwd, env=dict(self.cfg.env) or None,
                                on_stderr=self._stderr)
        try:
            process.start()
        except EngineError:
            self.start_failed = True
            raise
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._process = process
        self._reader = threading.Thread(target=self._read, args=(process, generation), daemon=True,
                                        name=f"kata-analysis-reader-{generation}")
        self._reader.start()
        probe = _Query(f"bridge-version-{generation}", Transcript(None), generation)
        with self._lock:
            self._pending[probe.id] = probe
        try:
            process.send_line(json.dumps({"id": probe.id, "action": "query_version"}))
        except EngineError as exc:
            probe.finish(error=exc)
        timeout = self.cfg.startup_timeout
        if not probe.done.wait(timeout) or probe.error is not None:
            why = str(probe.error) if probe.error is not None else f"no answer to query_version within {timeout:g} s"
            tail = " | ".join(process.stderr_tail(10))
            self.stop_process(generation)
            self.start_failed = True
            raise EngineError(f"the KataGo analysis engine failed its start-up: {why}"
                              + (f"; its last stderr lines: {tail}" if tail else "")
                              + ". Check engine.command (e.g. `katago analysis -config analysis.cfg -model "
                                "MODEL.bin.gz`)")
        version = (probe.response or {}).get("version", "?")
        self.start_seconds = time.monotonic() - began
        self.start_failed = False
        self.starts += 1
        if process.pid is not None:
            self.pids.append(process.pid)
        log.info("KataGo analysis engine started (pid %s, version %s) in %.1f s", process.pid, version,
                 self.start_seconds)
        return generation

    def _stderr(self, line: str) -> None:
        log.debug("katago stderr: %s", line)

    def _read(self, process: EngineProcess, generation: int) -> None:
        while True:
            try:
                line = process.read_line(None)
            except EngineError as exc:
                self._fail_generation(generation, EngineTerminatedError(
                    f"the KataGo analysis engine (pid {process.pid}) stopped: {exc}"))
                return
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("the KataGo analysis engine wrote a line that is not JSON (ignored): %.200s", line)
                continue
            if not isinstance(message, dict):
                continue
            qid = str(message.get("id", ""))
            with self._lock:
                query = self._pending.get(qid)
            if query is None:
                if "error" in message:
                    log.error("the KataGo analysis engine reports: %s", message.get("error"))
                elif message.get("action") != "terminate":
                    log.debug("katago answered an unknown or finished query %r", qid)
                continue
            query.transcript.write("<<", line, SOURCE)
            if "error" in message:
                with self._lock:
                    self._pending.pop(qid, None)
                query.finish(error=EngineError(f"the KataGo analysis engine refused query {qid}: "
                                               f"{message.get('error')} (field {message.get('field', '?')})"))
            elif "warning" in message:
                query.transcript.note(f"katago warns about field {message.get('field', '?')}: "
                                      f"{message.get('warning')}")
            elif message.get("isDuringSearch"):
                continue
            else:
                with self._lock:
                    self._pending.pop(qid, None)
                query.finish(response=message)

    def _fail_generation(self, generation: int, error: EngineError) -> None:
        with self._lock:
            failed = [q for q in self._pending.values() if q.generation == generation]
            for q in failed:
                del self._pending[q.id]
        for q in failed:
            q.finish(error=error)

    def stop_process(self, generation: int | None = None) -> None:
        """Stop the running process (only if it is still ``generation``, when given); its queries fail."""
        with self._lock:
            process = self._process
            if process is None or (generation is not None and generation != self._generation):
                return
            self._process = None
            current = self._generation
        process.stop(quit_line=None, grace=min(self.cfg.quit_grace, 1.0))
        self._fail_generation(current, EngineTerminatedError("the KataGo analysis engine was stopped"))

    def restart(self, generation: int, why: str) -> None:
        """A game saw the process of ``generation`` fail: stop it (if no other game did first); the next query
        starts a new one."""
        with self._lock:
            current = generation == self._generation and self._process is not None
        if current:
            log.warning("restarting the KataGo analysis engine: %s", why)
            self.stop_process(generation)

    # --- queries ---------------------------------------------------------------------------------------------
    def ask(self, body: dict[str, Any], transcript: Transcript, timeout: float,
            register: Callable[[_Query | None], None]) -> dict[str, Any]:
        """Send one query (``id`` is set here) and wait for its final answer within ``timeout`` seconds."""
        generation = self.ensure_started()
        query = _Query(f"q{next(self._ids)}", transcript, generation)
        body = {"id": query.id, **body}
        line = json.dumps(body, separators=(",", ":"))
        with self._lock:
            process = self._process
            if process is None or generation != self._generation:
                raise EngineTerminatedError("the KataGo analysis engine stopped as the query was sent")
            self._pending[query.id] = query
        register(query)
        try:
            transcript.write(">>", line, SOURCE)
            try:
                process.send_line(line)
            except EngineError as exc:
                query.finish(error=EngineTerminatedError(str(exc)))
            with self._lock:
                query.sent = True
                late_stop = query.stop_requested
            if late_stop:  # stopped between its registration and its line: the terminate must follow it
                self._terminate(query.id, transcript)
            if not query.done.wait(max(timeout, 0.0)):
                self._terminate(query.id, transcript)
                if not query.done.wait(TERMINATE_GRACE):
                    with self._lock:
                        self._pending.pop(query.id, None)
                    raise EngineTimeoutError(f"the KataGo analysis engine answered neither query {query.id} within "
                                             f"{timeout:.1f} s nor its terminate; it is treated as hung")
            if query.error is not None:
                raise query.error
            assert query.response is not None
            return query.response
        finally:
            register(None)

    def stop_query(self, query: _Query, transcript: Transcript) -> None:
        """Ask the engine to stop ``query``: at once if its line was written, else right after it is."""
        with self._lock:
            if not query.sent:
                query.stop_requested = True
                return
        self._terminate(query.id, transcript)

    def _terminate(self, qid: str, transcript: Transcript) -> None:
        line = json.dumps({"id": f"stop-{qid}", "action": "terminate", "terminateId": qid})
        with self._lock:
            process = self._process
        if process is not None:
            transcript.write(">>", line, SOURCE)
            try:
                process.send_line(line)
            except EngineError:
                pass

    def generation_of(self, query: _Query) -> int:
        return query.generation

    def engines_alive(self) -> int:
        with self._lock:
            return 1 if self._process is not None and self._process.alive else 0

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.stop_process()
        self._starter.shutdown(wait=True, cancel_futures=True)
        self.stop_process()  # one started while closing
        reader = self._reader
        if reader is not None:
            reader.join(timeout=2.0)


class KataAnalysisPlayer:
    """One game's view of the analysis engine, with the interface of :class:`~bridge.games.go.GoPlayer`."""

    engine = None  # nothing held between moves

    def __init__(self, manager: KataAnalysisEngine, *, name: str, transcript: Transcript) -> None:
        self.manager = manager
        self.cfg = manager.cfg
        self.name = name
        self.transcript = transcript
        self.restarts = 0
        self._aborted: str | None = None
        self._lock = threading.Lock()
        self._in_flight: _Query | None = None
        self._failed_generation: int | None = None
        self._hung = False  # the last query timed out even after its terminate: the process is hung
        self.last_analysis: EngineAnalysis | None = None  # what the engine thought of its last genmove
        self.analyzes = self.cfg.analysis != "off"  # its answers carry the analysis: its stderr is not read for it

    @property
    def start_failed(self) -> bool:
        return self.manager.start_failed

    @property
    def start_seconds(self) -> float:
        return self.manager.start_seconds

    @property
    def aborted(self) -> str | None:
        return self._aborted

    def hang_limit(self, budget: float) -> float:
        return hang_limit(self.cfg, self.manager.start_seconds, budget)

    # --- queries ---------------------------------------------------------------------------------------------
    def _register(self, query: _Query | None) -> None:
        with self._lock:
            self._in_flight = query
            aborted = self._aborted
            if query is not None:
                self._failed_generation = query.generation
        if query is not None and aborted is not None:
            query.finish(error=EngineError(f"query of {self.name} stopped: {aborted}"))

    def _ask(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._aborted is not None:
            raise EngineError(f"no query for {self.name}: {self._aborted}")
        self._hung = False
        try:
            return self.manager.ask(body, self.transcript, timeout, self._register)
        except EngineTimeoutError:
            self._hung = True
            raise

    def _position(self, state: GoState, extra_black: list[Point] | None = None) -> dict[str, Any]:
        s = state.settings
        h = s.height
        moves = [["B" if color_of_move(s, i) == "black" else "W", gtp_vertex(m, h)]
                 for i, m in enumerate(state.moves)]
        initial = [["B", gtp_vertex(p, h)] for p in (*s.initial_black, *(extra_black or []))]
        initial += [["W", gtp_vertex(p, h)] for p in s.initial_white]
        body: dict[str, Any] = {"moves": moves, "rules": KATA_RULES.get(s.rules, "tromp-taylor"), "komi": s.komi,
                                "boardXSize": s.width, "boardYSize": s.height}
        if initial:
            body["initialStones"] = initial
        if extra_black is not None:
            body["initialPlayer"] = "B"
        elif not moves:
            body["initialPlayer"] = "B" if color_of_move(s, 0) == "black" else "W"
        body["analyzeTurns"] = [len(moves)]
        if self.cfg.max_visits is not None:
            body["maxVisits"] = self.cfg.max_visits
        body["overrideSettings"] = {"reportAnalysisWinratesAs": "BLACK"}  # winrates and ownership: black's view
        return body

    def genmove(self, state: GoState) -> list[Move] | str:
        s = state.settings
        color = state.to_move
        budget = clock_command(state, color).budget
        self.last_analysis = None
        deadline = time.monotonic() + self.hang_limit(budget)

        def left() -> float:
            return max(deadline - time.monotonic() - TERMINATE_GRACE, 0.2)

        if s.free_handicap and s.handicap > 1 and not state.moves and color == "black":
            placed: list[Point] = []
            for _ in range(s.handicap):  # one stone at a time, each with the stones before it on the board
                reply = self._ask(self._position(state, placed), left())
                move = self._best(reply, state)
                if move is None or move in placed:
                    raise EngineError(f"the analysis engine placed handicap stone {len(placed) + 1} at "
                                      f"{gtp_vertex(move, s.height)}: not a new point")
                placed.append(move)
            return list(placed)
        body = self._position(state)
        think = left()
        if math.isfinite(budget) or self.cfg.max_move_time is not None:
            # the search stops in time by itself; the terminate at the hang limit is the safety net
            body["overrideSettings"]["maxTime"] = round(max(min(think * 0.8, think - MIN_THINK), 0.1), 1)
        reply = self._ask(body, think)
        move = self._best(reply, state)
        if self.cfg.analysis != "off":
            self.last_analysis = self._analysis(reply, state, color)
        winrate = self._my_winrate(reply, color)
        if winrate is not None and self.cfg.resign_winrate > 0 and winrate < self.cfg.resign_winrate:
            self.transcript.note(f"winrate {winrate:.3f} < engine.resign_winrate {self.cfg.resign_winrate:g}: "
                                 f"resigning")
            return RESIGN
        return [move]

    def _analysis(self, reply: dict[str, Any], state: GoState, color: str) -> EngineAnalysis | None:
        """The best moveInfo as the player to move sees it (the query asks for black's view)."""
        infos = [m for m in reply.get("moveInfos") or [] if isinstance(m, dict)]
        best = min(infos, key=lambda m: m.get("order", math.inf), default=None)
        if best is None:
            return None
        s = state.settings
        try:
            return analysis_of_move_info(best, s.width, s.height, black_view=True, to_move=color)
        except AnalysisError as exc:
            self.transcript.note(f"no analysis message for this move: {exc}")
            return None

    def _best(self, reply: dict[str, Any], state: GoState) -> Move:
        infos = reply.get("moveInfos")
        if not isinstance(infos, list) or not infos:
            raise EngineError(f"the analysis engine's answer to {reply.get('id')} has no moveInfos")
        best = min((m for m in infos if isinstance(m, dict)), key=lambda m: m.get("order", math.inf), default=None)
        if best is None or not isinstance(best.get("move"), str):
            raise EngineError(f"the analysis engine's answer to {reply.get('id')} has no move")
        s = state.settings
        try:
            return parse_gtp_vertex(best["move"], s.width, s.height)
        except ValueError as exc:
            raise EngineError(f"the analysis engine's move {best['move']!r}: {exc}") from None

    def _my_winrate(self, reply: dict[str, Any], color: str) -> float | None:
        root = reply.get("rootInfo")
        rate = root.get("winrate") if isinstance(root, dict) else None
        if not isinstance(rate, int | float):
            return None
        return float(rate) if color == "black" else 1.0 - float(rate)

    def dead_stones(self, state: GoState) -> frozenset[Point] | None:
        """Stones on points the other colour owns (KataGo's ``ownership`` estimate), or None if none came."""
        s = state.settings
        body = self._position(state)
        body["includeOwnership"] = True
        reply = self._ask(body, self.hang_limit(60.0))
        ownership = reply.get("ownership")
        if not isinstance(ownership, list) or len(ownership) != s.width * s.height:
            return None
        board = GoBoard(s.width, s.height, black=s.initial_black, white=s.initial_white)
        for i, m in enumerate(state.moves):
            try:
                board.play(color_of_move(s, i), m)
            except IllegalMove:
                return None
        dead: set[Point] = set()
        for (x, y), stone in board.stones.items():
            own = float(ownership[y * s.width + x])  # row-major from the top-left, as our points; black's view
            if (stone == "black" and own <= -DEAD_OWNERSHIP) or (stone == "white" and own >= DEAD_OWNERSHIP):
                dead.add((x, y))
        return frozenset(dead)

    # --- the session's other calls --------------------------------------------------------------------------
    def restart(self, why: str) -> None:
        """After a failure: restart the shared process if it is the one that failed this game's query (the first
        game to see a crash restarts it; the others find the new one)."""
        self.restarts += 1
        self.transcript.note(f"analysis engine failure ({why}); asking again; restart {self.restarts}")
        log.warning("%s: analysis engine failure (%s), restart %d of %d", self.name, why, self.restarts,
                    self.cfg.max_restarts)
        generation = self._failed_generation
        if generation is not None and self._hung:  # a dead one is replaced by the next query anyway; a refused
            self.manager.restart(generation, why)  # query says nothing about the process

    def invalidate(self) -> None:
        """Nothing to forget: every query carries the whole game."""

    def abort(self, why: str) -> None:
        with self._lock:
            if self._aborted is None:
                self._aborted = why
            query = self._in_flight
        if query is not None:
            # the error first: the engine answers a terminated query with its result so far, and that answer
            # (read on the engine's reader thread) must not reach the game as its move after the game is over
            query.finish(error=EngineError(f"query of {self.name} stopped: {why}"))
            self.manager.stop_query(query, self.transcript)

    def close(self) -> None:
        pass
