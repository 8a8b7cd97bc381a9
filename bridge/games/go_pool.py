"""``engine.manager: pool``: a fixed number of GTP engine processes shared by every Go game.

Each move (and each stone-removal decision) *leases* a free engine, tells it the game, asks, and gives it back.
Telling it the game is incremental (just the new moves) when that engine last served the same game and its moves
are a prefix of the game's; otherwise it is a full replay (boardsize, clear_board, komi, rules, handicap stones,
every move, time settings), done by the engine's :class:`~bridge.games.go.GoPlayer`, which already knows how.

- A game waits for a free engine within its move's hang limit (less :data:`~bridge.games.go.MIN_THINK`, so that
  the engine still has time to think); waiters are served in arrival order, and one that last used an idle engine
  gets that one back. A wait that runs out raises :class:`PoolBusyError`, which the session handles like an engine
  failure (a retry or the bridge's own fallback move) without counting it as an engine restart.
- An engine that fails during a lease is stopped and restarted in its pool slot in the background; the game's
  retry takes whichever engine is free first, the restarted one or another.
- The engine's lines go to the transcript of the game that holds it (a :class:`RoutedTranscript`), so every
  game's transcript shows the engine lines of its own moves, its stderr goes to that game's chat hook.
- Engines are started by the pool's own threads, which live as long as the pool: an engine dies with the thread
  that started it (``PR_SET_PDEATHSIG``), and a game's thread ends with its game.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bridge.config import EngineConfig
from bridge.engines.gtp import GtpEngine
from bridge.errors import EngineError
from bridge.games.go import MIN_THINK, GoPlayer, clock_command, hang_limit
from bridge.games.go_analysis import EngineAnalysis
from bridge.games.gotypes import GoState, Move, Point
from bridge.transcript import Transcript

log = logging.getLogger("bridge.pool")

T = TypeVar("T")
_pool_thread = threading.local()


class PoolBusyError(EngineError):
    """No engine of the pool became free within the move's limit."""


class RoutedTranscript(Transcript):
    """A transcript that writes into whichever game's transcript is routed to it (nothing when none is)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.target: Transcript | None = None

    @property
    def enabled(self) -> bool:
        return self.target is not None and self.target.enabled

    def write(self, direction: str, text: str, source: str = "bridge") -> None:
        target = self.target
        if target is not None:
            target.write(direction, text, source)

    def flush(self) -> None:
        target = self.target
        if target is not None:
            target.flush()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        target = self.target  # a lease routes one game for the whole of an exchange
        if target is None:
            yield
            return
        with target.hold():
            yield


class _SlotPlayer(GoPlayer):
    """The GoPlayer of one pool slot: its engine is started on a pool thread, and it can be interrupted (its
    engine stopped in the middle of a command) without being told never to start again."""

    def __init__(self, cfg: EngineConfig, *, name: str, transcript: Transcript,
                 on_stderr: Callable[[str], None], starter: ThreadPoolExecutor) -> None:
        super().__init__(cfg, name=name, transcript=transcript, on_stderr=on_stderr)
        self._starter = starter

    def start(self) -> GtpEngine:
        if self.engine is not None or getattr(_pool_thread, "owner", False):
            return super().start()
        try:
            future = self._starter.submit(super().start)
        except RuntimeError:  # the executor is shut down
            raise EngineError(f"engine {self.name}: the engine pool is closed") from None
        return future.result()

    def interrupt(self) -> None:
        with self._lock:
            engine, spawning = self.engine, self._spawning
        if engine is not None:
            engine.process.stop(quit_line="quit", grace=0.0)
        elif spawning is not None:
            spawning.stop(grace=0.0)


class _Slot:
    def __init__(self, index: int, pool: GoEnginePool) -> None:
        self.index = index
        self.name = f"pool-{index + 1}"
        self.transcript = RoutedTranscript()
        self.stderr_target: Callable[[str], None] | None = None
        self.player = _SlotPlayer(pool.cfg, name=self.name, transcript=self.transcript, on_stderr=self._stderr,
                                  starter=pool._starter)
        self.busy = False  # leased, or restarting
        self.owner: PooledGoPlayer | None = None  # the game it last served (its position is that game's)

    def _stderr(self, line: str) -> None:
        target = self.stderr_target
        if target is not None:
            target(line)

    @property
    def running(self) -> bool:
        engine = self.player.engine
        return engine is not None and engine.broken is None and engine.alive


class GoEnginePool:
    """``engine.pool_size`` engines shared by all games. Thread-safe."""

    uses_slots = False

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self.size = cfg.pool_size
        self._starter = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="engine-pool",
                                           initializer=_mark_pool_thread)
        self._cond = threading.Condition()
        self._slots = [_Slot(i, self) for i in range(self.size)]
        self._queue: collections.deque[object] = collections.deque()  # waiting leases, in arrival order
        self._closed = False
        self.start_seconds = 0.0  # how long the last start took (to judge what a restart costs)
        self.start_failed = False
        self.full_replays = 0
        self.incremental_replays = 0
        self.restarted = 0

    def player(self, *, name: str, transcript: Transcript,
               on_stderr: Callable[[str], None] | None) -> PooledGoPlayer:
        return PooledGoPlayer(self, name=name, transcript=transcript, on_stderr=on_stderr)

    # --- leasing ------------------------------------------------------------------------------------------
    def lease(self, user: PooledGoPlayer, deadline: float) -> _Slot:
        """A free slot for ``user``, waiting until ``deadline`` (monotonic) at most."""
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while True:
                    if self._closed:
                        raise EngineError("the engine pool is closed: the daemon is stopping")
                    if user.aborted is not None:
                        raise EngineError(f"engine of {user.name} not leased: {user.aborted}")
                    if self._queue[0] is ticket:
                        slot = self._pick(user)
                        if slot is not None:
                            slot.busy = True
                            return slot
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolBusyError(f"no engine of the pool ({self.size}) became free for {user.name} in "
                                            f"time; raise engine.pool_size or lower daemon.max_concurrent_games")
                    self._cond.wait(remaining)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()

    def _pick(self, user: PooledGoPlayer) -> _Slot | None:
        free = [s for s in self._slots if not s.busy]
        if not free:
            return None
        for s in free:
            if s.owner is user and s.running:
                return s
        for s in free:  # an engine nobody will come back to soon: unowned first, then any running one
            if s.owner is None and s.running:
                return s
        for s in free:
            if s.running:
                return s
        return free[0]

    def give_back(self, slot: _Slot, failed: bool, restart: bool = True) -> None:
        """Return a leased slot. A failed engine is stopped and, unless ``restart`` is False (its game stopped it:
        the game ended, or the daemon is stopping), restarted in the slot before the slot is free again; else the
        next lease starts it."""
        slot.transcript.target = None
        slot.stderr_target = None
        if failed or not slot.running:
            slot.owner = None
            slot.player.close(hung=True)  # stopped at once: the games waiting for it should not wait for 'quit'
            with self._cond:
                closed = self._closed
            if restart and not closed:
                self.restarted += 1
                log.warning("engine %s of the pool failed; restarting it in its slot", slot.name)
                try:
                    self._starter.submit(self._restart, slot)
                    return
                except RuntimeError:  # closed meanwhile
                    pass
        with self._cond:
            slot.busy = False
            self._cond.notify_all()

    def _restart(self, slot: _Slot) -> None:
        try:
            slot.player.start()
            self.start_seconds = slot.player.start_seconds
            self.start_failed = False
        except EngineError as exc:  # the next lease of this slot tries again, and its game hears why
            self.start_failed = True
            log.error("engine %s of the pool could not restart: %s; the game that leases it next is told why and "
                      "it is tried again then; check engine.command with `gamebridge check CONFIG`", slot.name, exc)
        finally:
            with self._cond:
                slot.busy = False
                self._cond.notify_all()

    def close(self) -> None:
        """Stop every engine (in parallel) and the pool's threads. Leases still waiting fail."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        threads = [threading.Thread(target=s.player.close, name=f"stop-{s.name}", daemon=True) for s in self._slots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._starter.shutdown(wait=True, cancel_futures=True)
        for s in self._slots:  # a restart that ran as the pool closed
            s.player.close()

    def engines_alive(self) -> int:
        return sum(1 for s in self._slots if s.player.engine is not None and s.player.engine.alive)


def _mark_pool_thread() -> None:
    _pool_thread.owner = True


class PooledGoPlayer:
    """One game's view of the pool, with the interface of :class:`~bridge.games.go.GoPlayer`. Holds no engine
    between moves (``engine`` is always None, so the idle timeout has nothing to stop)."""

    engine = None

    def __init__(self, pool: GoEnginePool, *, name: str, transcript: Transcript,
                 on_stderr: Callable[[str], None] | None) -> None:
        self.pool = pool
        self.name = name
        self.transcript = transcript
        self.on_stderr = on_stderr
        self.cfg = pool.cfg
        self.restarts = 0
        self._lock = threading.Lock()
        self._aborted: str | None = None
        self._leased: _Slot | None = None
        self._invalid = False
        self._busy_failure = False  # the last failure was a wait for a free engine, not an engine's fault
        self._last_slot: _Slot | None = None
        self.last_analysis: EngineAnalysis | None = None  # what the engine thought of this game's last genmove

    @property
    def start_failed(self) -> bool:
        """The last engine this game leased could not start (the daemon's engine health hears of it)."""
        slot = self._last_slot
        return slot is not None and slot.player.start_failed and not self._busy_failure

    @property
    def start_seconds(self) -> float:
        return self.pool.start_seconds

    @property
    def aborted(self) -> str | None:
        return self._aborted

    @property
    def exhausted(self) -> bool:
        return self.restarts > self.cfg.max_restarts

    def hang_limit(self, budget: float) -> float:
        return hang_limit(self.cfg, self.pool.start_seconds, budget)

    # --- the moves -----------------------------------------------------------------------------------------
    @property
    def analyzes(self) -> bool:
        """Whether the engine leased for this game answers moves with their analysis (GTP extension)."""
        slot = self._leased
        return slot is not None and slot.player.analyzes

    def genmove(self, state: GoState) -> list[Move] | str:
        budget = clock_command(state, state.to_move).budget
        self.last_analysis = None

        def call(p: GoPlayer) -> list[Move] | str:
            answer = p.genmove(state)
            self.last_analysis = p.last_analysis
            return answer

        return self._leased_call(state, budget, call)

    def dead_stones(self, state: GoState) -> frozenset[Point] | None:
        return self._leased_call(state, 60.0, lambda p: p.dead_stones(state))

    def _leased_call(self, state: GoState, budget: float, call: Callable[[GoPlayer], T]) -> T:
        self._busy_failure = False
        limit = self.hang_limit(budget)
        began = time.monotonic()
        try:
            slot = self.pool.lease(self, began + max(limit - MIN_THINK, min(limit, 0.5)))
        except PoolBusyError:
            self._busy_failure = True
            raise
        waited = time.monotonic() - began
        with self._lock:
            self._leased = slot
            self._last_slot = slot
            aborted = self._aborted
        failed = True
        try:
            if aborted is not None:
                raise EngineError(f"engine {slot.name} not used: {aborted}")
            slot.transcript.target = self.transcript
            slot.stderr_target = self.on_stderr
            if slot.player.engine is not None and not slot.running:  # it died while idle: a fresh one
                slot.player.close(hung=True)
            incremental = slot.owner is self and not self._invalid and slot.player.engine is not None
            if not incremental:
                slot.player.invalidate()
            self._invalid = False
            slot.owner = self
            if incremental:
                self.pool.incremental_replays += 1
            else:
                self.pool.full_replays += 1
            engine = slot.player.start()
            self.pool.start_seconds = slot.player.start_seconds
            self.transcript.note(f"engine {slot.name} (pid {engine.pid}) leased from the pool"
                                 + (f" after {waited:.1f} s" if waited >= 0.05 else "")
                                 + ("; only the new moves are sent" if incremental else "; the game is replayed"))
            result = call(slot.player)
            failed = False
            return result
        finally:
            with self._lock:
                self._leased = None
            self.pool.give_back(slot, failed, restart=self._aborted is None)

    # --- the session's other calls --------------------------------------------------------------------------
    def restart(self, why: str) -> None:
        """After a failure: the failed engine is already being restarted in its slot; the next call leases
        whichever is free. A wait for a free engine does not count as a restart."""
        if self._busy_failure:
            self.transcript.note(f"no engine of the pool was free in time ({why}); trying again")
            return
        self.restarts += 1
        self.transcript.note(f"engine failure ({why}); the next try takes another engine of the pool; "
                             f"restart {self.restarts}")
        log.warning("%s: engine failure (%s), restart %d of %d", self.name, why, self.restarts,
                    self.cfg.max_restarts)
        self._invalid = True

    def invalidate(self) -> None:
        self._invalid = True

    def abort(self, why: str) -> None:
        """From any thread: stop the engine working for this game now (it is restarted in its slot), and lease
        no other."""
        with self._lock:
            if self._aborted is None:
                self._aborted = why
            slot = self._leased
        with self.pool._cond:
            self.pool._cond.notify_all()
        if slot is not None:
            slot.player.interrupt()

    def close(self) -> None:
        """The game holds nothing between moves; forget which engines hold its position."""
        self._invalid = True
