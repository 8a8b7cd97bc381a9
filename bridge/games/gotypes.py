"""Neutral Go types shared by the Go player, the adapters and the sandboxes.

Coordinates: a :data:`Point` is ``(x, y)``, 0-based, x from the left, **y from the top** (as SGF and OGS count).
A :data:`Move` is a point, or ``None`` for a pass.  The GTP vertex format is converted here and nowhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal

Point = tuple[int, int]
Move = Point | None
Color = Literal["black", "white"]
Phase = Literal["play", "stone removal", "finished"]

GTP_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # no I; continues past T for boards above 19


def other(color: Color) -> Color:
    return "white" if color == "black" else "black"


def gtp_vertex(move: Move, height: int) -> str:
    """``(3, 15)`` on 19 rows -> ``"D4"``; ``None`` -> ``"pass"``."""
    if move is None:
        return "pass"
    x, y = move
    if not (0 <= x < len(GTP_COLUMNS)) or not (0 <= y < height):
        raise ValueError(f"point {move} is off a board of height {height}")
    return f"{GTP_COLUMNS[x]}{height - y}"


def parse_gtp_vertex(text: str, width: int, height: int) -> Move:
    """``"D4"`` on 19 rows -> ``(3, 15)``; ``"pass"`` -> ``None``. Raises ValueError for anything else."""
    t = text.strip().upper()
    if t == "PASS":
        return None
    if len(t) < 2 or t[0] not in GTP_COLUMNS or not t[1:].isdigit():
        raise ValueError(f"{text!r} is not a GTP vertex (expected e.g. D4 or pass)")
    x = GTP_COLUMNS.index(t[0])
    row = int(t[1:])
    if not (0 <= x < width and 1 <= row <= height):
        raise ValueError(f"vertex {text!r} is off the {width}x{height} board")
    return (x, height - row)


@dataclass(frozen=True)
class TimeControl:
    """A JGOF time control. All figures in seconds. ``system`` is one of
    fischer, byoyomi, canadian, simple, absolute, none."""

    system: str = "none"
    speed: str = "correspondence"
    initial_time: float = 0.0  # fischer
    time_increment: float = 0.0  # fischer
    max_time: float = 0.0  # fischer
    main_time: float = 0.0  # byoyomi, canadian
    period_time: float = 0.0  # byoyomi, canadian
    periods: int = 0  # byoyomi
    stones_per_period: int = 0  # canadian
    per_move: float = 0.0  # simple
    total_time: float = 0.0  # absolute
    pause_on_weekends: bool = False


@dataclass(frozen=True)
class PlayerClock:
    """One player's clock as of :attr:`ClockState.received_at`. ``thinking_time`` is main time
    (or the whole budget for fischer/absolute/simple); byoyomi adds ``periods``/``period_time``,
    canadian ``moves_left``/``block_time``."""

    thinking_time: float
    periods: int = 0
    period_time: float = 0.0
    moves_left: int = 0
    block_time: float = 0.0


@dataclass(frozen=True)
class ClockState:
    """The clock, already corrected by the adapter for the time the player to move has used up to
    ``received_at`` (a ``time.monotonic()`` instant) and for the server's clock drift."""

    to_move: Color
    black: PlayerClock | None
    white: PlayerClock | None
    received_at: float = field(default_factory=time.monotonic)
    paused: bool = False

    def of(self, color: Color) -> PlayerClock | None:
        return self.black if color == "black" else self.white


@dataclass(frozen=True)
class GoSettings:
    width: int
    height: int
    komi: float
    rules: str  # OGS names: chinese, aga, japanese, korean, ing, nz
    my_color: Color
    handicap: int = 0
    free_handicap: bool = False
    initial_black: tuple[Point, ...] = ()
    initial_white: tuple[Point, ...] = ()
    initial_player: Color = "black"
    time_control: TimeControl = TimeControl()
    black_name: str = "black"
    white_name: str = "white"
    ranked: bool = False


@dataclass(frozen=True)
class GoResult:
    winner: Color | None  # None: no winner (cancelled, jigo)
    reason: str  # "Resignation", "Timeout", "Cancellation", "3.5 points", ...
    score: str = ""  # SGF RE value, e.g. "B+3.5", "W+R", "B+T", "Void"


def color_of_move(settings: GoSettings, index: int) -> Color:
    """The colour of the move at ``index`` (0-based) in a game's move list. Under free handicap placement black
    plays the first ``handicap`` moves; otherwise colours alternate from ``initial_player``."""
    if settings.free_handicap and settings.handicap > 1:
        if index < settings.handicap:
            return "black"
        return "white" if (index - settings.handicap) % 2 == 0 else "black"
    first = settings.initial_player
    return first if index % 2 == 0 else other(first)


@dataclass(frozen=True)
class GoState:
    """A full snapshot of one Go game, as the server sees it. Adapters send a new snapshot on every
    change; the player is idempotent over repeated or replayed snapshots (reconnects, duplicates)."""

    game_id: str
    settings: GoSettings
    moves: tuple[Move, ...] = ()
    phase: Phase = "play"
    to_move: Color = "black"
    clock: ClockState | None = None
    removal: frozenset[Point] = frozenset()  # stones currently marked dead by the server's proposal
    removal_accepted: frozenset[Color] = frozenset()  # who accepted the current proposal
    result: GoResult | None = None
    # Incremented by the adapter each time it (re)loads the whole game from the server (first gamedata, and
    # every gamedata after a reconnect). A move the session submitted before a resync that is still missing after
    # it was lost with the connection and may be sent again; without a resync it is never re-sent.
    sync_id: int = 0

    def color_of_move(self, index: int) -> Color:
        return color_of_move(self.settings, index)

    def with_(self, **changes: object) -> GoState:
        return replace(self, **changes)  # type: ignore[arg-type]
