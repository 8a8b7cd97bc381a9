"""Where a Go game's engine comes from: the engine manager the daemon builds from ``engine.manager``.

The session asks its manager for a *player* (:meth:`GoEngines.player`) and drives it; it never starts, leases or
returns an engine itself. Three managers:

- ``per_game`` (:class:`PerGameEngines`): one engine process per game (:class:`~bridge.games.go.GoPlayer`), held
  between moves, capped by the daemon's slots (``daemon.max_concurrent_games``) and stopped when idle
  (``daemon.engine_idle_timeout``).
- ``pool`` (:class:`~bridge.games.go_pool.GoEnginePool`): ``engine.pool_size`` GTP processes shared by every game;
  each move leases a free one and replays the game into it.
- ``kata_analysis`` (:class:`~bridge.games.go_kata.KataAnalysisEngine`): one ``katago analysis`` process, one JSON
  query per move, every game in flight at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bridge.config import EngineConfig
from bridge.games.go import GoPlayer
from bridge.games.gotypes import GoState, Move, Point
from bridge.transcript import Transcript


class GoEngineUser(Protocol):
    """What a game session drives: the interface of :class:`~bridge.games.go.GoPlayer`."""

    restarts: int

    @property
    def engine(self) -> Any:  # the engine the game holds between moves (None: none held)
        ...

    @property
    def start_failed(self) -> bool: ...

    @property
    def start_seconds(self) -> float: ...

    @property
    def aborted(self) -> str | None: ...

    def genmove(self, state: GoState) -> list[Move] | str: ...

    def dead_stones(self, state: GoState) -> frozenset[Point] | None: ...

    def hang_limit(self, budget: float) -> float: ...

    def restart(self, why: str) -> None: ...

    def invalidate(self) -> None: ...

    def abort(self, why: str) -> None: ...

    def close(self) -> None: ...


class GoEngines(Protocol):
    """An engine manager. ``uses_slots``: whether each game holds one of the daemon's engine slots while it has an
    engine (per_game); a shared manager bounds its processes itself."""

    uses_slots: bool

    def player(self, *, name: str, transcript: Transcript,
               on_stderr: Callable[[str], None] | None) -> GoEngineUser: ...

    def close(self) -> None: ...


class PerGameEngines:
    """Today's manager: every game starts, holds and stops its own engine process."""

    uses_slots = True

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg

    def player(self, *, name: str, transcript: Transcript,
               on_stderr: Callable[[str], None] | None) -> GoEngineUser:
        return GoPlayer(self.cfg, name=name, transcript=transcript, on_stderr=on_stderr)

    def close(self) -> None:
        pass


def make_go_engines(cfg: EngineConfig) -> GoEngines:
    """The manager ``engine.manager`` names. Shared managers start their processes on first use."""
    if cfg.manager == "pool":
        from bridge.games.go_pool import GoEnginePool

        return GoEnginePool(cfg)
    if cfg.manager == "kata_analysis":
        from bridge.games.go_kata import KataAnalysisEngine

        return KataAnalysisEngine(cfg)
    return PerGameEngines(cfg)
