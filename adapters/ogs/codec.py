"""OGS's vocabulary: coordinates, time controls, clocks, game data.  The one place that knows OGS field names
for these (shared by the client adapter and the sandbox)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bridge.games.gorules import default_free_handicap, default_komi, fixed_handicap_points
from bridge.games.gotypes import ClockState, Color, GoResult, Move, Phase, PlayerClock, Point, TimeControl

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def encode_point(move: Move) -> str:
    """``(3, 3)`` -> ``"dd"``; pass -> ``".."`` (x from the left, y from the top)."""
    if move is None:
        return ".."
    x, y = move
    if not (0 <= x < 25 and 0 <= y < 25):
        raise ValueError(f"point {move} cannot be written as an OGS coordinate")
    return _LETTERS[x] + _LETTERS[y]


def decode_point(text: str) -> Move:
    """``"dd"`` -> ``(3, 3)``; ``".."`` or ``""`` -> pass."""
    if text in ("..", ""):
        return None
    if len(text) != 2 or text[0] not in _LETTERS or text[1] not in _LETTERS:
        raise ValueError(f"{text!r} is not an OGS two-letter coordinate")
    return (_LETTERS.index(text[0]), _LETTERS.index(text[1]))


def encode_points(points: Iterable[Point]) -> str:
    """Concatenated two-letter coordinates (``"ddpp"``), sorted for a stable wire form."""
    return "".join(encode_point(p) for p in sorted(points))


def decode_points(text: str) -> list[Point]:
    if len(text) % 2:
        raise ValueError(f"{text!r} is not a list of two-letter coordinates")
    out: list[Point] = []
    for i in range(0, len(text), 2):
        p = decode_point(text[i:i + 2])
        if p is not None:
            out.append(p)
    return out


def decode_move_array(move: list[int] | tuple[int, ...]) -> Move:
    """``[x, y, ms]`` from a ``game/ID/move`` event or gamedata ``moves`` -> a move (x = -1 is a pass)."""
    if len(move) < 2:
        raise ValueError(f"{move!r} is not an OGS move array")
    x, y = int(move[0]), int(move[1])
    if x < 0 or y < 0:
        return None
    return (x, y)


# --- time controls (JGOF) --------------------------------------------------------------------------
TIME_SYSTEMS = ("fischer", "byoyomi", "canadian", "simple", "absolute", "none")
SPEEDS = ("blitz", "rapid", "live", "correspondence")


def _num(data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or value is None:
        if default is not None and value is None:
            return default
        raise ValueError(f"{where}: field {key!r} is missing or not a number (got {value!r})")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {key!r} is not a number (got {value!r})") from None
    if out != out or out < 0:  # NaN or negative
        raise ValueError(f"{where}: field {key!r} must be a non-negative number (got {value!r})")
    return out


def parse_time_control(data: Any, where: str = "time_control") -> TimeControl:
    """A JGOF ``time_control`` dict -> :class:`TimeControl`. ``system`` may also be spelt ``time_control``
    (older OGS payloads). ``None``/missing -> no time control. Raises ValueError naming the bad field."""
    if data is None:
        return TimeControl()
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    system = data.get("system", data.get("time_control", "none"))
    if system is None:
        system = "none"
    if not isinstance(system, str) or system not in TIME_SYSTEMS:
        raise ValueError(f"{where}: unknown time control system {system!r} (expected one of {TIME_SYSTEMS})")
    speed = data.get("speed", "correspondence")
    if not isinstance(speed, str):
        raise ValueError(f"{where}: field 'speed' is not a string (got {speed!r})")
    pow_ = bool(data.get("pause_on_weekends", False))
    if system == "fischer":
        initial = _num(data, "initial_time", where)
        return TimeControl(system=system, speed=speed, initial_time=initial,
                           time_increment=_num(data, "time_increment", where),
                           max_time=_num(data, "max_time", where, default=initial),
                           pause_on_weekends=pow_)
    if system == "byoyomi":
        return TimeControl(system=system, speed=speed, main_time=_num(data, "main_time", where),
                           period_time=_num(data, "period_time", where),
                           periods=int(_num(data, "periods", where)), pause_on_weekends=pow_)
    if system == "canadian":
        return TimeControl(system=system, speed=speed, main_time=_num(data, "main_time", where),
                           period_time=_num(data, "period_time", where),
                           stones_per_period=int(_num(data, "stones_per_period", where)),
                           pause_on_weekends=pow_)
    if system == "simple":
        return TimeControl(system=system, speed=speed, per_move=_num(data, "per_move", where),
                           pause_on_weekends=pow_)
    if system == "absolute":
        return TimeControl(system=system, speed=speed, total_time=_num(data, "total_time", where),
                           pause_on_weekends=pow_)
    return TimeControl(system="none", speed=speed, pause_on_weekends=pow_)


def time_control_to_json(tc: TimeControl) -> dict[str, Any]:
    """The inverse of :func:`parse_time_control` (JGOF field names; used by tests and the sandbox)."""
    out: dict[str, Any] = {"system": tc.system, "time_control": tc.system, "speed": tc.speed,
                           "pause_on_weekends": tc.pause_on_weekends}
    if tc.system == "fischer":
        out.update(initial_time=tc.initial_time, time_increment=tc.time_increment, max_time=tc.max_time)
    elif tc.system == "byoyomi":
        out.update(main_time=tc.main_time, period_time=tc.period_time, periods=tc.periods)
    elif tc.system == "canadian":
        out.update(main_time=tc.main_time, period_time=tc.period_time, stones_per_period=tc.stones_per_period)
    elif tc.system == "simple":
        out.update(per_move=tc.per_move)
    elif tc.system == "absolute":
        out.update(total_time=tc.total_time)
    return out


def describe_time_control(tc: TimeControl) -> str:
    """A short human form for log lines: ``fischer 300+5 max 600 (live)``."""
    if tc.system == "fischer":
        body = f"fischer {tc.initial_time:g}+{tc.time_increment:g} max {tc.max_time:g}"
    elif tc.system == "byoyomi":
        body = f"byoyomi {tc.main_time:g}+{tc.periods}x{tc.period_time:g}"
    elif tc.system == "canadian":
        body = f"canadian {tc.main_time:g}+{tc.stones_per_period}/{tc.period_time:g}"
    elif tc.system == "simple":
        body = f"simple {tc.per_move:g}/move"
    elif tc.system == "absolute":
        body = f"absolute {tc.total_time:g}"
    else:
        body = "no time limit"
    return f"{body} ({tc.speed})"


# --- clocks ----------------------------------------------------------------------------------------
def parse_player_clock(value: Any, tc: TimeControl, where: str = "clock") -> PlayerClock | None:
    """One player's clock figure as OGS sends it (``black_time`` / ``white_time``), not yet corrected
    for the time elapsed since ``last_move``. For ``simple`` the bare number's meaning is disputed
    (goban: ms left; gtp2ogs: a timestamp), so the budget is taken from ``time_control.per_move``."""
    if tc.system == "none":
        return None
    if tc.system == "simple":
        return PlayerClock(thinking_time=tc.per_move)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return PlayerClock(thinking_time=max(0.0, float(value)))
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object or a number, got {type(value).__name__}")
    thinking = _num(value, "thinking_time", where, default=0.0)
    if tc.system == "byoyomi":
        # goban's clock uses the time control's period length (the server resets a period on each move)
        period_time = tc.period_time or _num(value, "period_time", where, default=0.0)
        return PlayerClock(thinking_time=thinking, periods=int(_num(value, "periods", where, default=0.0)),
                           period_time=period_time)
    if tc.system == "canadian":
        return PlayerClock(thinking_time=thinking,
                           moves_left=int(_num(value, "moves_left", where, default=tc.stones_per_period)),
                           block_time=_num(value, "block_time", where, default=tc.period_time))
    return PlayerClock(thinking_time=thinking)


def charge_clock(clock: PlayerClock, tc: TimeControl, elapsed: float) -> PlayerClock:
    """``clock`` after its owner thought for ``elapsed`` seconds (as goban's clock does): main time
    first, then byoyomi periods (each used-up period is lost) or the canadian block."""
    elapsed = max(0.0, elapsed)
    if elapsed == 0.0 or tc.system == "none":
        return clock
    if tc.system in ("fischer", "absolute", "simple"):
        return replace(clock, thinking_time=max(0.0, clock.thinking_time - elapsed))
    main = clock.thinking_time - elapsed
    if main > 0:
        return replace(clock, thinking_time=main)
    over = -main
    if tc.system == "byoyomi":
        full = tc.period_time if tc.period_time > 0 else clock.period_time
        if full <= 0:
            return replace(clock, thinking_time=0.0, periods=0, period_time=0.0)
        used = int(over // full)
        periods = max(0, clock.periods - used)
        left = full - (over - used * full) if periods > 0 else 0.0
        return replace(clock, thinking_time=0.0, periods=periods, period_time=left)
    if tc.system == "canadian":
        return replace(clock, thinking_time=0.0, block_time=max(0.0, clock.block_time - over))
    return replace(clock, thinking_time=0.0)


@dataclass(frozen=True)
class RawClock:
    """A ``game/ID/clock`` (or gamedata ``clock``) payload, validated but not yet corrected."""

    current_player: int | None
    black_player_id: int | None
    white_player_id: int | None
    last_move: float | None  # ms since the epoch, server time
    black: PlayerClock | None
    white: PlayerClock | None
    paused: bool | None  # play is suspended; None: the payload says nothing about pausing
    paused_since: float | None  # ms since the epoch, server time
    start_mode: bool = False
    pause_reasons: frozenset[str] = frozenset()  # pause_control keys: paused, weekend, system, vacation...


def _opt_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where}: field {key!r} is not an id (got {value!r})")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{where}: field {key!r} is not an id (got {value!r})") from None


def _opt_ms(data: Mapping[str, Any], key: str, where: str, seconds_fix: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: field {key!r} is not a time stamp (got {value!r})")
    value = float(value)
    if seconds_fix and 0 < value < 2_000_000_000:  # older payloads: seconds (goban corrects paused_since)
        value *= 1000.0
    return value


# pause_control keys (goban's AdHocPauseControl) that do not stop play: the clock is stopped during the
# stone-removal phase, but the players still have to act.
_NOT_A_PLAY_PAUSE = frozenset({"stone-removal"})


def pause_reasons(pause_control: Any) -> frozenset[str]:
    """The reasons a game is paused, from a ``pause_control`` object: ``paused`` (a player's pause),
    ``weekend``, ``system``, ``moderator_paused``, ``vacation`` (from ``vacation-ID``), ``stone-removal``."""
    if not isinstance(pause_control, Mapping):
        return frozenset()
    return frozenset("vacation" if str(k).startswith("vacation") else str(k)
                     for k, v in pause_control.items() if v)


def stops_play(reasons: frozenset[str]) -> bool:
    return bool(reasons - _NOT_A_PLAY_PAUSE)


def parse_clock(data: Any, tc: TimeControl, where: str = "clock") -> RawClock:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    paused: bool | None = None
    paused_since = _opt_ms(data, "paused_since", where, seconds_fix=True)
    pause = data.get("pause")
    reasons: frozenset[str] = frozenset()
    if isinstance(pause, Mapping):
        reasons = pause_reasons(pause.get("pause_control"))
        paused = bool(pause.get("paused", False)) and (not reasons or stops_play(reasons))
        paused_since = _opt_ms(pause, "paused_since", where + ".pause", seconds_fix=True) or paused_since
    elif paused_since is not None:
        paused = True
    return RawClock(
        current_player=_opt_int(data, "current_player", where),
        black_player_id=_opt_int(data, "black_player_id", where),
        white_player_id=_opt_int(data, "white_player_id", where),
        last_move=_opt_ms(data, "last_move", where),
        black=parse_player_clock(data.get("black_time"), tc, where + ".black_time"),
        white=parse_player_clock(data.get("white_time"), tc, where + ".white_time"),
        paused=paused,
        paused_since=paused_since,
        pause_reasons=reasons,
        start_mode=bool(data.get("start_mode", False)),
    )


def corrected_clock(raw: RawClock, tc: TimeControl, to_move: Color, *, server_now_ms: float,
                    received_at: float, paused: bool = False,
                    paused_since: float | None = None) -> ClockState:
    """The :class:`ClockState` as of ``received_at`` (a ``time.monotonic()`` instant whose server time is
    ``server_now_ms``, i.e. local wall time minus the measured drift): the player to move is charged
    the time since ``last_move`` (up to the pause, if paused; nothing in the start phase)."""
    elapsed = 0.0
    if raw.last_move is not None and not raw.start_mode:
        end = server_now_ms
        if paused:
            end = max(paused_since, raw.last_move) if paused_since is not None else raw.last_move
        elapsed = max(0.0, (end - raw.last_move) / 1000.0)
    black, white = raw.black, raw.white
    if to_move == "black" and black is not None:
        black = charge_clock(black, tc, elapsed)
    elif to_move == "white" and white is not None:
        white = charge_clock(white, tc, elapsed)
    return ClockState(to_move=to_move, black=black, white=white, received_at=received_at, paused=paused)


# --- results ---------------------------------------------------------------------------------------
_POINTS = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*points?\s*$", re.IGNORECASE)


def parse_result(outcome: Any, winner: Color | None) -> GoResult:
    """OGS ``outcome`` + the winner's colour -> :class:`GoResult` with an SGF ``RE`` value:
    ``"3.5 points"`` -> ``B+3.5``; Resignation -> ``W+R``; Timeout -> ``B+T``; Cancellation -> ``Void``;
    other decisions (disconnection, abandonment, moderator) -> ``B+F``."""
    text = outcome.strip() if isinstance(outcome, str) else ""
    low = text.lower()
    prefix = "B+" if winner == "black" else "W+" if winner == "white" else ""
    m = _POINTS.match(text)
    if low.startswith("cancel") or low == "annulled":
        return GoResult(winner=None, reason=text or "Cancellation", score="Void")
    if m:
        value = m.group(1)
        if float(value) == 0 or winner is None:
            return GoResult(winner=None, reason=text, score="0" if float(value) == 0 else "?")
        return GoResult(winner=winner, reason=text, score=prefix + value)
    if winner is None:
        return GoResult(winner=None, reason=text or "unknown", score="?")
    if low.startswith("resign"):
        return GoResult(winner=winner, reason=text, score=prefix + "R")
    if low.startswith("timeout") or low == "time":
        return GoResult(winner=winner, reason=text, score=prefix + "T")
    return GoResult(winner=winner, reason=text or "unknown", score=prefix + "F")


# --- game data ------------------------------------------------------------------------------------------
@dataclass
class GameData:
    """A validated ``game/ID/gamedata`` payload."""

    width: int
    height: int
    komi: float
    rules: str
    handicap: int
    free_handicap: bool
    initial_black: tuple[Point, ...]
    initial_white: tuple[Point, ...]
    initial_player: Color
    time_control: TimeControl
    black_id: int | None
    white_id: int | None
    black_name: str
    white_name: str
    ranked: bool
    moves: list[Move]
    phase: Phase
    clock: Any
    removal: frozenset[Point]
    accepted_stones: dict[Color, frozenset[Point]]
    winner_id: int | None
    outcome: str
    paused: bool | None
    pause_reasons: frozenset[str] = frozenset()


def as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} is not a number (got {value!r})")
    try:
        return int(float(value))
    except ValueError:
        raise ValueError(f"{what} is not a number (got {value!r})") from None


def as_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} is not a number (got {value!r})")
    try:
        out = float(value)
    except ValueError:
        raise ValueError(f"{what} is not a number (got {value!r})") from None
    if out != out:
        raise ValueError(f"{what} is not a number")
    return out


def opt_id(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def required_id(data: Mapping[str, Any], key: str) -> int:
    """``data[key]`` as an id; ValueError saying whether it is missing or what it holds instead."""
    value = data.get(key)
    ident = opt_id(value)
    if ident is None:
        if value is None:
            raise ValueError(f"field {key!r} is missing")
        raise ValueError(f"field {key!r} is not a number (got {_short_repr(value)})")
    return ident


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def wire_id(game_id: str) -> int | str:
    """A game id as OGS writes it in payloads (a number where it is one)."""
    return int(game_id) if game_id.isdigit() else game_id


def _player(data: Mapping[str, Any], color: Color) -> tuple[int | None, str]:
    players = data.get("players")
    entry = players.get(color) if isinstance(players, Mapping) else None
    if isinstance(entry, Mapping):
        return opt_id(entry.get("id")), str(entry.get("username") or color)
    return opt_id(data.get(f"{color}_player_id")), color


def decode_moves(raw: Any, width: int, height: int, what: str) -> list[Move]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{what} is not a list")
    out: list[Move] = []
    for i, item in enumerate(raw):
        out.append(decode_move(item, width, height, f"{what}[{i}]"))
    return out


def decode_move(item: Any, width: int, height: int, what: str) -> Move:
    """A move as OGS sends it (two-letter string or ``[x, y, ...]``), checked to be on the board."""
    if isinstance(item, str):
        try:
            move = decode_point(item)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    elif isinstance(item, list | tuple):
        try:
            move = decode_move_array([as_int(v, what) for v in item[:2]])
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    else:
        raise ValueError(f"{what} is not a move (got {item!r})")
    if move is not None and not (0 <= move[0] < width and 0 <= move[1] < height):
        raise ValueError(f"{what}: {move} is off the {width}x{height} board")
    return move


def decode_stones(value: Any, what: str) -> tuple[Point, ...]:
    """A string of two-letter coordinates (empty or missing: none)."""
    if value in (None, ""):
        return ()
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string of two-letter coordinates")
    return tuple(decode_points(value))


def undo_payload(data: Any) -> tuple[int, int | None]:
    """``undo_requested``/``undo_accepted``: a number, a numeric string, or
    ``{move_number, undo_move_count?}``."""
    if isinstance(data, Mapping):
        number = as_int(data.get("move_number"), "move_number")
        count = data.get("undo_move_count")
        return number, as_int(count, "undo_move_count") if count is not None else None
    return as_int(data, "move_number"), None


def parse_gamedata(data: Any) -> GameData:
    """A ``game/ID/gamedata`` payload -> validated fields. Raises ValueError naming the bad field. What the
    payload leaves out takes goban's defaults (the Go rules' automatic komi and handicap placement)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    width = as_int(data.get("width", 19), "width")
    height = as_int(data.get("height", 19), "height")
    if not (1 <= width <= 25 and 1 <= height <= 25):
        raise ValueError(f"board size {width}x{height} is not supported (1..25)")
    rules = str(data.get("rules") or "japanese").lower()
    handicap = as_int(data.get("handicap") or 0, "handicap")
    komi = as_float(data["komi"], "komi") if data.get("komi") is not None else default_komi(rules, handicap)
    tc = parse_time_control(data.get("time_control"), "time_control")
    free = data.get("free_handicap_placement")
    if free is None:
        free = default_free_handicap(rules, width, height, handicap)
    free = bool(free)
    initial = data.get("initial_state")
    initial_black: tuple[Point, ...] = ()
    initial_white: tuple[Point, ...] = ()
    if isinstance(initial, Mapping):
        initial_black = decode_stones(initial.get("black"), "initial_state.black")
        initial_white = decode_stones(initial.get("white"), "initial_state.white")
    elif initial is None and handicap > 1 and not free:
        stones = fixed_handicap_points(width, height, handicap)
        if stones is None:
            free = True
        else:  # goban places the stones itself and gives white the first move
            initial_black = tuple(stones)
            data = {**data, "initial_player": "white"}
    for p in initial_black + initial_white:
        if not (0 <= p[0] < width and 0 <= p[1] < height):
            raise ValueError(f"initial_state stone {p} is off the {width}x{height} board")
    raw_initial = data.get("initial_player")
    initial_player: Color = "white" if (initial_black and handicap > 1 and not free) else "black"
    if raw_initial in ("black", "white"):
        initial_player = "white" if raw_initial == "white" else "black"
    black_id, black_name = _player(data, "black")
    white_id, white_name = _player(data, "white")
    phase = data.get("phase", "play")
    if phase not in ("play", "stone removal", "finished"):
        raise ValueError(f"unknown phase {phase!r}")
    removed = data.get("removed")
    removal = frozenset(decode_stones(removed, "removed")) if isinstance(removed, str) else frozenset()
    accepted: dict[Color, frozenset[Point]] = {}
    players = data.get("players")
    if isinstance(players, Mapping):
        for color in ("black", "white"):
            entry = players.get(color)
            if isinstance(entry, Mapping) and isinstance(entry.get("accepted_stones"), str):
                accepted["black" if color == "black" else "white"] = frozenset(
                    decode_stones(entry["accepted_stones"], f"players.{color}.accepted_stones"))
    pause_control = data.get("pause_control")
    reasons = pause_reasons(pause_control)
    paused = stops_play(reasons) if isinstance(pause_control, Mapping) else None
    return GameData(
        width=width, height=height, komi=komi, rules=rules, handicap=max(0, handicap), free_handicap=free,
        initial_black=initial_black, initial_white=initial_white, initial_player=initial_player,
        time_control=tc, black_id=black_id, white_id=white_id, black_name=black_name, white_name=white_name,
        ranked=bool(data.get("ranked", False)),
        moves=decode_moves(data.get("moves"), width, height, "moves"),
        phase=phase, clock=data.get("clock"), removal=removal, accepted_stones=accepted,
        winner_id=opt_id(data.get("winner")), outcome=str(data.get("outcome") or ""), paused=paused,
        pause_reasons=reasons)
