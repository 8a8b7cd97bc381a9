"""The neutral seam between adapters (one per server) and the daemon that runs their games: what the daemon offers
an adapter (:class:`Host`), what a game gets (:class:`GameContext`, :class:`GameInbox`), the adapter contract
(:class:`Adapter`) and what an adapter package exports (:class:`AdapterSpec`). Nothing here knows a server or a
game: a game kind's own seam lives with the game (Go: :mod:`bridge.games.go_events`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from pydantic import BaseModel


# --- the daemon as the adapter sees it ------------------------------------------------------------
class GameInbox(Protocol):
    """A game the daemon runs for a server that pushes its events (``Host.open_game``): the adapter posts them
    (the game kind's events: Go's are :data:`bridge.games.go_events.GameEvent`)."""

    def post(self, event: Any) -> None: ...

    @property
    def finished(self) -> bool: ...


class GameContext(Protocol):
    """What the daemon gives a game that an adapter drives itself (``Host.run_game``): RBC and Battleship servers
    are polled turn by turn, so their adapter runs the game loop and calls a game player directly."""

    game_id: str
    config: Any  # the whole validated configuration
    transcript: Any  # bridge.transcript.Transcript of this game (engine lines, notes)
    records_dir: Any  # pathlib.Path where this game's records go
    stop: threading.Event  # set when the daemon shuts down

    def engine_slot(self) -> Any:
        """A context manager holding one of the daemon's engine slots (``daemon.max_concurrent_games``)."""
        ...


class Host(Protocol):
    """What the daemon offers to a running adapter."""

    def run_game(self, game_id: str, target: Callable[[GameContext], None]) -> bool:
        """Run ``target(context)`` in a thread of its own as one active game. False if that game already runs
        or the daemon is stopping."""
        ...

    def open_game(self, game_id: str, my_color: Any, actions: Any) -> GameInbox:
        """Start (or return the already running) session of a game whose server pushes its events: ``my_color``
        and ``actions`` are the game kind's (Go: a colour and a :class:`bridge.games.go_events.GoActions`).
        Idempotent per game_id."""
        ...

    def active_games(self) -> int: ...

    def can_accept_game(self) -> bool:
        """False when the daemon is at its concurrent-game cap or shutting down."""
        ...

    # Optional, called through :func:`host_ready`: ``ready()`` -- the adapter is connected and authenticated.


def host_ready(host: Host) -> None:
    """Tell the host the adapter is live: connected to its server and authenticated (call it after every
    successful (re)connection; the daemon then tells systemd READY=1 once). The hook is optional on a host."""
    ready = getattr(host, "ready", None)
    if callable(ready):
        ready()


def engine_problem(host: object) -> str | None:
    """Why the host's engine cannot be used now (it cannot start), or None when it can or the host cannot tell.
    An adapter asks before it takes a game, to decline with this reason rather than a generic one; the daemon's
    ``can_accept_game()`` is False meanwhile anyway."""
    fn = getattr(host, "engine_problem", None)
    problem = fn() if callable(fn) else None
    return problem if isinstance(problem, str) else None


@dataclass
class CheckLine:
    ok: bool
    what: str


class Adapter(Protocol):
    """One server. The contract every adapter keeps (README, "Adapter contract"; tests/test_adapter_contract.py):

    - **fatal** conditions, which retrying cannot fix (the server refuses the credentials; it rejects a setting of
      the configuration, such as a version it does not serve): ``run`` raises
      :class:`bridge.errors.FatalAdapterError` whose message says what was refused and which key to fix, and logs
      nothing itself; the daemon logs that message as its one ERROR line, stops, and ``gamebridge run`` exits with
      :data:`bridge.errors.EXIT_FATAL` (77), which a systemd unit lists in ``RestartPreventExitStatus``;
    - **transient** conditions (the server is down or slow, 5xx, 429, dropped connections) are retried with capped
      exponential backoff, for as long as the daemon runs: ``run`` does not return because of them;
    - ``run`` returns only when ``stop`` is set (returning otherwise is a failure: exit status 1).

    Also optional on an adapter (the daemon looks for them): ``reconfigure(config)`` takes a reloaded
    configuration (SIGHUP) whose ``server.`` keys named in ``reloadable_server_keys`` (a frozenset) may differ from
    the running ones; every other server key is unchanged in it (those need a restart).
    """

    def run(self, host: Host, stop: threading.Event) -> None:
        """Connect, authenticate, serve until ``stop`` is set; reconnect on drops; call ``host_ready(host)`` once
        connected and authenticated. Blocking."""
        ...

    def check(self) -> list[CheckLine]:
        """Reach the server and authenticate, once. Never raises for an expected failure."""
        ...


# The RBC demo's clock. The player spends its clock (an even share of it a turn plus most of the increment), so a
# game's length bounds the demo's: at most RBC_DEMO_SECONDS + RBC_DEMO_INCREMENT a turn of our thinking. At 120 s +
# 5 s a 35-turn game against the random bot took most of 300 s on a loaded machine (CI's demo test timed out).
RBC_DEMO_SECONDS = 60.0
RBC_DEMO_INCREMENT = 2.0


@dataclass(frozen=True)
class DemoOptions:
    """What ``gamebridge demo`` passes every adapter's demo (each uses what concerns it)."""

    data_dir: Path
    out: TextIO
    size: int = 9  # Go board size
    opponent: str = "gnugo"  # Go house opponent
    rbc_opponent: str = "random"
    rbc_seconds: float = RBC_DEMO_SECONDS
    rbc_increment: float = RBC_DEMO_INCREMENT
    delay: float = 0.0  # seconds the house opponent waits before moving


@dataclass(frozen=True)
class AdapterSpec:
    """What an adapter package exports as ``ADAPTER``. The built-in adapters are the packages of ``bridge.adapters``;
    another installed package adds one through the entry point group ``bridge.adapters``."""

    kind: str
    game: str  # "go", "rbc", "battleship"
    config_model: type[BaseModel]
    factory: Callable[..., Adapter]  # factory(server_config, bridge_config) -> Adapter
    sandbox: Callable[..., Any] | None = None  # sandbox(host, port) -> runs a local server
    demos: dict[str, Callable[[DemoOptions], int]] = field(default_factory=dict)  # ``gamebridge demo --game NAME``
    # ``gamebridge register KIND``: register(name, url=, key_file=, description=, out=) -> the key file's path
    register: Callable[..., Path] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
