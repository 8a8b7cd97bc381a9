"""OGS time controls (JGOF) and the server-side game clock of the sandbox.

A player's clock is stored as it stood when their turn began; the server's ``last_move`` (ms since the epoch)
says when that was.  Time left for the player to move = their figures minus ``now - last_move``, which is exactly
how goban and gtp2ogs read an OGS clock.  On each move :meth:`PlayerClock.spend` charges the time taken:

- fischer: ``thinking_time -= used``, then ``+ time_increment``, capped at ``max_time``;
- byoyomi: main time first; overtime eats whole periods (``periods -= floor(overtime / period_time)``); the player
  loses when the overtime reaches ``periods * period_time``; the current period restarts after every move;
- canadian: main time first; then the block: ``block_time -= overtime``, ``moves_left -= 1``; when a block's
  stones are all played a fresh block (``period_time`` for ``stones_per_period`` stones) starts;
- simple: ``per_move`` seconds for every move;
- absolute: ``thinking_time -= used``;
- none: never runs out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SYSTEMS = ("fischer", "byoyomi", "canadian", "simple", "absolute", "none")
SPEEDS = ("blitz", "rapid", "live", "correspondence")
_FIELDS: dict[str, tuple[str, ...]] = {
    "fischer": ("initial_time", "time_increment", "max_time"),
    "byoyomi": ("main_time", "period_time", "periods"),
    "canadian": ("main_time", "period_time", "stones_per_period"),
    "simple": ("per_move",),
    "absolute": ("total_time",),
    "none": (),
}
_INTEGER_FIELDS = ("periods", "stones_per_period")


def average_move_time(tc: dict[str, Any], width: int = 19, height: int = 19) -> int:
    """OGS's expected seconds per move for a time control (goban ``computeAverageMoveTime``)."""
    moves = round(0.7 * width * height) / 2 if width and height else 90
    system = tc["system"]
    if system == "fischer":
        t = tc["initial_time"] / moves + tc["time_increment"]
    elif system == "byoyomi":
        t = tc["main_time"] / moves + tc["period_time"]
    elif system == "simple":
        t = tc["per_move"]
    elif system == "canadian":
        t = tc["main_time"] / moves + tc["period_time"] / tc["stones_per_period"]
    elif system == "absolute":
        t = tc["total_time"] / moves
    else:
        t = 0
    return round(t)


def speed_of(tc: dict[str, Any], width: int = 19, height: int = 19) -> str:
    """OGS's speed class from the expected time per move (blitz < 10 s <= live < 1 h <= correspondence)."""
    if tc["system"] == "none":
        return "correspondence"
    tpm = average_move_time(tc, width, height)
    if 0 < tpm < 10:
        return "blitz"
    if 10 <= tpm < 3600:
        return "live"
    return "correspondence"


def normalize_time_control(data: Any, width: int = 19, height: int = 19) -> dict[str, Any]:
    """Validate a JGOF time control and return it in OGS's wire form: ``system`` (also as ``time_control``),
    ``speed``, ``pause_on_weekends`` and the system's fields.  Raises ValueError naming the bad field."""
    if data is None:
        data = {"system": "none"}
    if not isinstance(data, dict):
        raise ValueError(f"time_control must be an object such as {{\"system\": \"byoyomi\", ...}}, "
                         f"not {type(data).__name__}")
    system = data.get("system", data.get("time_control"))
    if system not in SYSTEMS:
        raise ValueError(f"time_control.system is {system!r}; expected one of {', '.join(SYSTEMS)}")
    out: dict[str, Any] = {"system": system, "time_control": system}
    for key in _FIELDS[system]:
        if key not in data and key == "max_time":
            value: Any = data.get("initial_time")
        else:
            value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"time_control.{key} must be a number of seconds for {system} time, got {value!r}")
        if value < 0 or (value == 0 and key not in ("time_increment", "main_time")):
            raise ValueError(f"time_control.{key} must be positive for {system} time, got {value!r}")
        if key in _INTEGER_FIELDS:
            if value != int(value):
                raise ValueError(f"time_control.{key} must be a whole number, got {value!r}")
            value = int(value)
        out[key] = value
    if system == "fischer" and out["max_time"] < out["initial_time"]:
        raise ValueError(f"time_control.max_time ({out['max_time']}) is below initial_time ({out['initial_time']})")
    speed = data.get("speed") or speed_of(out, width, height)
    if speed not in SPEEDS:
        raise ValueError(f"time_control.speed is {speed!r}; expected one of {', '.join(SPEEDS)}")
    out["speed"] = speed
    out["pause_on_weekends"] = bool(data.get("pause_on_weekends", False))
    return out


@dataclass
class PlayerClock:
    """One player's clock as it stood when their current (or next) turn began.  Seconds."""

    tc: dict[str, Any]
    thinking_time: float = 0.0
    periods: int = 0
    period_time: float = 0.0
    moves_left: int = 0
    block_time: float = 0.0

    @classmethod
    def initial(cls, tc: dict[str, Any]) -> PlayerClock:
        s = tc["system"]
        if s == "fischer":
            return cls(tc, thinking_time=float(tc["initial_time"]))
        if s == "byoyomi":
            return cls(tc, thinking_time=float(tc["main_time"]), periods=int(tc["periods"]),
                       period_time=float(tc["period_time"]))
        if s == "canadian":
            return cls(tc, thinking_time=float(tc["main_time"]), moves_left=int(tc["stones_per_period"]),
                       block_time=float(tc["period_time"]))
        if s == "absolute":
            return cls(tc, thinking_time=float(tc["total_time"]))
        return cls(tc)

    def budget(self) -> float | None:
        """Seconds this player may think from the start of their turn before losing on time (None: no limit)."""
        s = self.tc["system"]
        if s in ("fischer", "absolute"):
            return self.thinking_time
        if s == "byoyomi":
            return self.thinking_time + self.periods * self.period_time
        if s == "canadian":
            return self.thinking_time + self.block_time
        if s == "simple":
            return float(self.tc["per_move"])
        return None

    def spend(self, used: float) -> bool:
        """Charge ``used`` seconds for a move just played.  Returns False (clock unchanged) if the player had
        already run out of time."""
        budget = self.budget()
        if budget is not None and used >= budget:
            return False
        s = self.tc["system"]
        if s == "fischer":
            self.thinking_time = min(self.thinking_time - used + self.tc["time_increment"], self.tc["max_time"])
        elif s == "absolute":
            self.thinking_time -= used
        elif s == "byoyomi":
            if used < self.thinking_time:
                self.thinking_time -= used
            else:
                overtime = used - self.thinking_time
                self.thinking_time = 0.0
                self.periods -= int(overtime // self.period_time)
        elif s == "canadian":
            if used < self.thinking_time:
                self.thinking_time -= used
            else:
                overtime = used - self.thinking_time
                self.thinking_time = 0.0
                self.block_time -= overtime
                self.moves_left -= 1
                if self.moves_left <= 0:
                    self.moves_left = int(self.tc["stones_per_period"])
                    self.block_time = float(self.tc["period_time"])
        return True

    def left_now(self, used: float) -> dict[str, float]:
        """What is left after ``used`` seconds of the current turn (for the control API): main time plus, in
        overtime, periods / block state."""
        s = self.tc["system"]
        if s == "byoyomi":
            main = self.thinking_time - used
            if main >= 0:
                return {"thinking_time": main, "periods": self.periods, "period_time_left": self.period_time}
            over = -main
            spent = int(over // self.period_time)
            return {"thinking_time": 0.0, "periods": max(0, self.periods - spent),
                    "period_time_left": max(0.0, self.period_time - (over - spent * self.period_time))}
        if s == "canadian":
            main = self.thinking_time - used
            if main >= 0:
                return {"thinking_time": main, "moves_left": self.moves_left, "block_time": self.block_time}
            return {"thinking_time": 0.0, "moves_left": self.moves_left, "block_time": max(0.0, self.block_time + main)}
        if s == "simple":
            return {"thinking_time": max(0.0, float(self.tc["per_move"]) - used)}
        if s == "none":
            return {}
        return {"thinking_time": max(0.0, self.thinking_time - used)}

    def wire(self) -> Any:
        """The per-player clock as OGS sends it in ``black_time``/``white_time`` (seconds; simple: ms left)."""
        s = self.tc["system"]
        if s == "fischer":
            return {"thinking_time": self.thinking_time, "skip_bonus": False}
        if s == "byoyomi":
            return {"thinking_time": self.thinking_time, "periods": self.periods, "period_time": self.period_time}
        if s == "canadian":
            return {"thinking_time": self.thinking_time, "moves_left": self.moves_left, "block_time": self.block_time}
        if s == "absolute":
            return {"thinking_time": self.thinking_time}
        if s == "simple":
            return int(self.tc["per_move"] * 1000)
        return None
