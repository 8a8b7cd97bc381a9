"""Seeking games: the bot invites or challenges opponents itself, not only answers.

The ``seek`` subsection of a ``server:`` section says whom (listed opponents, or any active user the server lists,
minus a block list), how often (a minimum spacing between two outgoing requests: the rate cap), how many outgoing
games at once and in all, and the colours. :class:`Seeker` is that policy at run time, transport-free: an adapter
asks it :meth:`Seeker.next` whenever it could start a game, sends the invitation or challenge itself, and reports
back (:meth:`Seeker.started`, :meth:`Seeker.declined`, :meth:`Seeker.ended`). Nothing here knows a server.

Rules the seeker keeps whatever the adapter does:

- never more outgoing games (pending or playing) than ``max_games``, never more than one per opponent;
- never two requests closer than ``every`` seconds (so a bad configuration is slow, never a storm);
- an opponent that declined (or could not be invited) is left alone for ``decline_backoff`` seconds, doubled at
  each further decline up to a day, and the reason it gave is kept for the log;
- after ``stop_after`` games started, it seeks no more.

Whether the daemon has room (``max_concurrent_games``, the server's ``max_games``, draining) is the adapter's
question to its host before it asks the seeker.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from bridge.config import Strict

log = logging.getLogger("bridge.seek")

MAX_BACKOFF = 86400.0  # a day: the longest an opponent is left alone after declines


class SeekTiming(Strict):
    """When and how much the bot seeks: what every server's ``seek:`` has. A server where the platform picks the
    opponent (Open Games' matchmaking) has just this; the others add whom to invite (:class:`SeekConfig`)."""

    every: float = Field(
        30.0, ge=1, le=86400, description="seconds at least between two outgoing requests (the rate cap)"
    )
    max_games: int = Field(
        1, ge=1, le=100, description="outgoing games at once, pending or playing (server.max_games caps it too)"
    )
    stop_after: int | None = Field(
        None, ge=1, description="games to start in all; then the bot seeks no more (none: no end)"
    )
    pause: float = Field(0.0, ge=0, le=86400, description="seconds after an outgoing game ends before the next")


class SeekConfig(SeekTiming):
    """A ``seek:`` that names whom to invite or challenge."""

    opponents: list[str] = Field(
        default_factory=list,
        description="usernames to invite, in turn (with any_active: tried before the others)",
    )
    any_active: bool = Field(False, description="also invite any active user the server lists (minus block)")
    block: list[str] = Field(default_factory=list, description="usernames never invited")
    color: Literal["alternate", "white", "black", "random"] = Field(
        "alternate", description="the colour the bot asks for"
    )
    decline_backoff: float = Field(
        300.0,
        ge=1,
        le=MAX_BACKOFF,
        description="seconds an opponent is left alone after it declined or could not be invited (doubles at "
        "each further decline, up to a day)",
    )

    @model_validator(mode="after")
    def _whom(self) -> SeekConfig:
        if not self.opponents and not self.any_active:
            raise ValueError("seek needs someone to invite: list opponents, or set any_active: true")
        blocked = {name.casefold() for name in self.block}
        both = [name for name in self.opponents if name.casefold() in blocked]
        if both:
            raise ValueError(f"{', '.join(both)} is both in seek.opponents and seek.block: remove it from one")
        if len({n.casefold() for n in self.opponents}) != len(self.opponents):
            raise ValueError("seek.opponents lists a name twice: list each opponent once")
        return self


@dataclass
class _Backoff:
    until: float
    delay: float
    reason: str


@dataclass(frozen=True)
class Seek:
    """One outgoing request the seeker allows now."""

    opponent: str
    white: bool  # the colour asked for: True white, False black


class Seeker:
    """The seek policy of one adapter (thread-safe). ``clock``: a monotonic clock (tests pass their own)."""

    def __init__(self, config: SeekTiming, *, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, self_name: str = "") -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.self_name = self_name.casefold()
        self._lock = threading.Lock()
        self._last_request: float | None = None
        self._last_end: float | None = None
        self._outgoing: dict[str, str] = {}  # game or request key -> opponent (casefolded)
        self._backoff: dict[str, _Backoff] = {}
        self._last_pick: str | None = None  # the opponent asked last (the rotation goes on after it)
        self._asked_white = False  # the colour asked for last time (alternate)
        self.started_count = 0
        self._done_logged = False

    # --- state ------------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once ``stop_after`` games were started."""
        return self.config.stop_after is not None and self.started_count >= self.config.stop_after

    def outgoing(self) -> int:
        with self._lock:
            return len(self._outgoing)

    def reconfigure(self, config: SeekTiming) -> None:
        with self._lock:
            self.config = config

    # --- the decision -------------------------------------------------------------------------------------
    def wants_active_users(self) -> bool:
        """Whether :meth:`next` needs the server's list of active users (``any_active``)."""
        return isinstance(self.config, SeekConfig) and self.config.any_active

    def due(self) -> bool:
        """Cheap: whether :meth:`next` could say yes now, before the adapter asks the server anything."""
        with self._lock:
            return self._due_locked(self.clock())

    def _due_locked(self, now: float) -> bool:
        c = self.config
        if self.done or len(self._outgoing) >= c.max_games:
            return False
        if self._last_request is not None and now - self._last_request < c.every:
            return False
        return not (self._last_end is not None and now - self._last_end < c.pause)

    def next(self, active: Iterable[str] = ()) -> Seek | None:
        """The next request to send, or None (nothing due, or nobody to ask). Counts as sent: the adapter must
        then report :meth:`started` or :meth:`declined` for it (a request whose fate is unknown stays pending)."""
        with self._lock:
            now = self.clock()
            if not self._due_locked(now):
                if self.done and not self._done_logged:
                    self._done_logged = True
                    log.info("seek: %d game(s) started, as seek.stop_after asks: seeking no more",
                             self.started_count)
                return None
            candidates = self._candidates(active, now)
            if not candidates:
                return None
            # in turn: the first candidate listed after the one asked last (cyclically)
            order = self._names(active)
            if self._last_pick in order:
                i = order.index(self._last_pick) + 1
                order = order[i:] + order[:i]
            by_key = {name.casefold(): name for name in candidates}
            opponent = next(by_key[key] for key in order if key in by_key)
            self._last_pick = opponent.casefold()
            self._last_request = now
            self._outgoing[f"request:{opponent.casefold()}"] = opponent.casefold()
            return Seek(opponent, self._color())

    def _names(self, active: Iterable[str]) -> list[str]:
        c = self.config
        if not isinstance(c, SeekConfig):
            return [""]
        return [n.casefold() for n in list(c.opponents) + (sorted(active) if c.any_active else [])]

    def _candidates(self, active: Iterable[str], now: float) -> list[str]:
        c = self.config
        if not isinstance(c, SeekConfig):  # the platform picks the opponent: one anonymous request at a time
            return [] if "" in self._outgoing.values() else [""]
        blocked = {name.casefold() for name in c.block} | ({self.self_name} if self.self_name else set())
        busy = set(self._outgoing.values())
        out: list[str] = []
        seen: set[str] = set()
        names = list(c.opponents) + (sorted(active) if c.any_active else [])
        for name in names:
            key = name.casefold()
            if key in seen or key in blocked or key in busy:
                continue
            seen.add(key)
            backoff = self._backoff.get(key)
            if backoff is not None and now < backoff.until:
                continue
            out.append(name)
        return out

    def _color(self) -> bool:
        mode = self.config.color if isinstance(self.config, SeekConfig) else "white"
        if mode == "white":
            return True
        if mode == "black":
            return False
        if mode == "random":
            return self.rng.random() < 0.5
        self._asked_white = not self._asked_white
        return self._asked_white

    # --- what happened ------------------------------------------------------------------------------------
    def started(self, seek: Seek, game: str) -> None:
        """The request made a game (``game``: its id): it counts against ``max_games`` until :meth:`ended`."""
        with self._lock:
            key = seek.opponent.casefold()
            self._outgoing.pop(f"request:{key}", None)
            self._outgoing[f"game:{game}"] = key
            self._backoff.pop(key, None)
            self.started_count += 1

    def declined(self, seek: Seek, reason: str) -> float:
        """The opponent declined, or could not be invited: left alone for a while (returned, seconds)."""
        with self._lock:
            key = seek.opponent.casefold()
            self._outgoing.pop(f"request:{key}", None)
            previous = self._backoff.get(key)
            first = self.config.decline_backoff if isinstance(self.config, SeekConfig) else 300.0
            delay = first if previous is None else min(previous.delay * 2, MAX_BACKOFF)
            self._backoff[key] = _Backoff(self.clock() + delay, delay, reason)
        log.info("seek: %s declined or could not be invited (%s); leaving it alone for %.0f s",
                 seek.opponent, reason, delay)
        return delay

    def withdrawn(self, seek: Seek) -> None:
        """The request was never answered by a game (it failed on the way, or the bot stopped waiting): its place
        is free again, with no backoff."""
        with self._lock:
            self._outgoing.pop(f"request:{seek.opponent.casefold()}", None)

    def ended(self, game: str) -> None:
        """An outgoing game ended (or was given up): its place is free again, after ``pause``."""
        with self._lock:
            if self._outgoing.pop(f"game:{game}", None) is not None:
                self._last_end = self.clock()

    def backoff_reason(self, opponent: str) -> str | None:
        with self._lock:
            backoff = self._backoff.get(opponent.casefold())
            return backoff.reason if backoff is not None else None

    def is_outgoing(self, game: str) -> bool:
        with self._lock:
            return f"game:{game}" in self._outgoing
