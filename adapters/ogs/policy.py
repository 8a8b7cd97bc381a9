"""Which challenges the bot accepts: a pure function over the configured :class:`ChallengePolicy`, one
challenge and the current counts.

The checks run in gtp2ogs's order (``src/main.ts``: blacklist, time control, concurrent games, board size,
handicap, ranked, rank range, declining, games per player, komi) and reject with gtp2ogs's
``rejection_code`` values, which OGS's web client translates for the challenger. The allow list overrides
every rule about the opponent and the game, but never the two operator states: ``decline_all`` and the
daemon having no room for another game (``host.can_accept_game()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.adapters.ogs.codec import SPEEDS, as_int, describe_time_control, parse_time_control
from bridge.adapters.ogs.config import ChallengePolicy, Range, SpeedPolicy
from bridge.games.gotypes import TimeControl


@dataclass(frozen=True)
class Challenge:
    """The parts of an OGS ``notification`` of ``type: "challenge"`` that the policy and the log need."""

    challenge_id: int
    game_id: int | None
    user_id: int | None
    username: str
    ranking: float | None
    ranked: bool
    handicap: int  # -1: automatic (OGS decides from the ranks)
    komi: float | None  # None: automatic
    width: int
    height: int
    time_control: TimeControl
    rules: str = ""
    challenger_color: str = ""

    def describe(self) -> str:
        komi = "auto" if self.komi is None else f"{self.komi:g}"
        handicap = "auto" if self.handicap < 0 else str(self.handicap)
        ranked = "ranked" if self.ranked else "unranked"
        return (f"{self.width}x{self.height}, {ranked}, handicap {handicap}, komi {komi}, "
                f"{describe_time_control(self.time_control)}")


@dataclass(frozen=True)
class Decision:
    accept: bool
    code: str = ""  # gtp2ogs rejection_code
    reason: str = ""  # the message shown to the challenger
    details: dict[str, Any] = field(default_factory=dict)

    def rejection_details(self) -> dict[str, Any]:
        """The ``rejection_details`` object OGS expects in the reject call."""
        return {"rejection_code": self.code, "details": dict(self.details), "message": self.reason}


ACCEPT = Decision(accept=True)


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = data.get(key, default)
    return None if value is None else as_int(value, f"field {key!r}")


def parse_challenge(data: Any) -> Challenge:
    """A ``notification`` payload -> :class:`Challenge`. Raises ValueError naming the bad field."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    challenge_id = _int(data, "challenge_id")
    if challenge_id is None:
        raise ValueError("field 'challenge_id' is missing")
    user = data.get("user")
    if not isinstance(user, Mapping):
        raise ValueError("field 'user' is missing or not an object")
    username = user.get("username")
    if not isinstance(username, str) or not username:
        raise ValueError("field 'user.username' is missing")
    ranking = user.get("ranking")
    if ranking is not None and (isinstance(ranking, bool) or not isinstance(ranking, int | float)):
        raise ValueError(f"field 'user.ranking' is not a number (got {ranking!r})")
    width, height = _int(data, "width"), _int(data, "height")
    if width is None or height is None or width < 1 or height < 1:
        raise ValueError(f"board size {data.get('width')!r}x{data.get('height')!r} is not valid")
    komi = data.get("komi")
    if komi is not None:
        if isinstance(komi, bool) or not isinstance(komi, int | float | str):
            raise ValueError(f"field 'komi' is not a number (got {komi!r})")
        try:
            komi = float(komi)
        except ValueError:
            raise ValueError(f"field 'komi' is not a number (got {komi!r})") from None
    handicap = _int(data, "handicap", 0)
    tc_data = data.get("time_control")
    if isinstance(tc_data, str):  # some payloads give the system name here and the figures apart
        params = data.get("time_control_parameters")
        tc_data = dict(params) if isinstance(params, Mapping) else {"system": tc_data}
    try:
        tc = parse_time_control(tc_data)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return Challenge(
        challenge_id=challenge_id,
        game_id=_int(data, "game_id"),
        user_id=_int(user, "id"),
        username=username,
        ranking=float(ranking) if ranking is not None else None,
        ranked=bool(data.get("ranked", False)),
        handicap=handicap if handicap is not None else 0,
        komi=komi,
        width=width,
        height=height,
        time_control=tc,
        rules=str(data.get("rules", "")),
        challenger_color=str(data.get("challenger_color", "")),
    )


def _listed(names: list[str], challenge: Challenge) -> bool:
    wanted = {n.strip().lower() for n in names}
    return challenge.username.lower() in wanted or (
        challenge.user_id is not None and str(challenge.user_id) in wanted)


def _fmt_range(r: Range) -> str:
    lo = "-inf" if r.min is None else f"{r.min:g}"
    hi = "inf" if r.max is None else f"{r.max:g}"
    return f"[{lo}, {hi}]"


def _range_json(r: Range) -> list[float | None]:
    return [r.min, r.max]


def _check_range(r: Range, value: float, code: str, message: str, key: str) -> Decision | None:
    if r.contains(value):
        return None
    return Decision(False, code, f"{message} ({key} {value:g} not in {_fmt_range(r)}).",
                    {key: value, "range": _range_json(r)})


def _check_time_control(policy: ChallengePolicy, tc: TimeControl) -> Decision | None:
    speed = tc.speed
    speeds: dict[str, SpeedPolicy] = {str(k): v for k, v in policy.speeds.items()}
    sp = speeds.get(speed)
    if sp is None or not sp.allowed:
        code = f"{speed}_not_allowed" if speed in SPEEDS else "time_control_system_not_allowed"
        return Decision(False, code, f"This bot does not play {speed} games.", {"speed": speed})
    if tc.system not in sp.systems:
        return Decision(False, "time_control_system_not_allowed",
                        f"This bot only plays {speed} games with time control system "
                        f"{', '.join(sp.systems) or '(none)'}.", {"time_control_system": tc.system})
    main, period, periods = sp.main_time, sp.period_time, sp.periods
    checks: list[tuple[Range, float, str, str, str]] = []
    if tc.system == "fischer":
        checks = [(main, tc.initial_time, "main_time_out_of_range", "Initial time", "initial_time"),
                  (main, tc.max_time, "max_time_out_of_range", "Max time", "max_time"),
                  (period, tc.time_increment, "time_increment_out_of_range", "Time increment",
                   "time_increment")]
    elif tc.system == "byoyomi":
        checks = [(period, tc.period_time, "period_time_out_of_range", "Period time", "period_time"),
                  (periods, tc.periods, "periods_out_of_range", "Periods", "periods"),
                  (main, tc.main_time, "main_time_out_of_range", "Main time", "main_time")]
    elif tc.system == "canadian":
        checks = [(period, tc.period_time, "period_time_out_of_range", "Period time", "period_time"),
                  (periods, tc.stones_per_period, "periods_out_of_range", "Stones per period",
                   "stones_per_period"),
                  (main, tc.main_time, "main_time_out_of_range", "Main time", "main_time")]
    elif tc.system == "simple":
        checks = [(period, tc.per_move, "per_move_time_out_of_range", "Per move time", "per_move_time")]
    elif tc.system == "absolute":
        checks = [(main, tc.total_time, "main_time_out_of_range", "Total time", "total_time")]
    for r, value, code, message, key in checks:
        bad = _check_range(r, value, code, f"{message} is out of acceptable range", key)
        if bad is not None:
            return bad
    return None


def _check_board(policy: ChallengePolicy, width: int, height: int) -> Decision | None:
    sizes = sorted(set(policy.board_sizes))
    if width != height and not policy.allow_rectangular:
        return Decision(False, "board_size_not_square", "This bot only plays square boards.",
                        {"width": width, "height": height})
    if width not in sizes or height not in sizes:
        listed = ", ".join(f"{s}x{s}" for s in sizes)
        extra = " (or rectangles of those sides)" if policy.allow_rectangular else ""
        return Decision(False, "board_size_not_allowed",
                        f"This bot only plays on these board sizes: {listed}{extra}.",
                        {"width": width, "height": height})
    return None


def _check_handicap(policy: ChallengePolicy, handicap: int) -> Decision | None:
    r = policy.handicap
    if handicap < 0:  # automatic: fine unless the bot refuses every handicap
        if r.max is not None and r.max <= 0:
            return Decision(False, "handicap_not_allowed", "This bot only plays games with no handicap.",
                            {"handicap": handicap})
        return None
    if r.contains(handicap):
        return None
    if r.max is not None and r.max <= 0:
        return Decision(False, "handicap_not_allowed", "This bot only plays games with no handicap.",
                        {"handicap": handicap})
    return Decision(False, "handicap_not_allowed",
                    f"This bot only plays games with a handicap in {_fmt_range(r)} (asked: {handicap}).",
                    {"handicap": handicap, "range": _range_json(r)})


def _check_ranked(policy: ChallengePolicy, ranked: bool) -> Decision | None:
    if not ranked and not policy.unranked:
        return Decision(False, "unranked_not_allowed", "This bot only plays ranked games.",
                        {"ranked": ranked})
    if ranked and not policy.ranked:
        return Decision(False, "ranked_not_allowed", "This bot only plays unranked games.",
                        {"ranked": ranked})
    return None


def _check_rank(policy: ChallengePolicy, challenge: Challenge) -> Decision | None:
    r = policy.rank
    if not challenge.ranked or (r.min is None and r.max is None):  # gtp2ogs checks ranks of ranked games only
        return None
    if challenge.ranking is None:
        return Decision(False, "player_rank_out_of_range", "Your rank is unknown, and this bot limits ranks.",
                        {"allowed_rank_range": _range_json(r)})
    if r.min is not None and challenge.ranking < r.min:
        return Decision(False, "player_rank_out_of_range", "Your rank is too low to play against this bot.",
                        {"allowed_rank_range": _range_json(r), "ranking": challenge.ranking})
    if r.max is not None and challenge.ranking > r.max:
        return Decision(False, "player_rank_out_of_range", "Your rank is too high to play against this bot.",
                        {"allowed_rank_range": _range_json(r), "ranking": challenge.ranking})
    return None


def _check_komi(policy: ChallengePolicy, komi: float | None) -> Decision | None:
    if komi is None:  # automatic komi is always fine
        return None
    if policy.komi.contains(komi):
        return None
    return Decision(False, "komi_out_of_range", f"Komi is out of acceptable range ({komi:g} not in "
                    f"{_fmt_range(policy.komi)}).", {"allowed_komi_range": _range_json(policy.komi)})


def decide(policy: ChallengePolicy, challenge: Challenge, *, can_accept: bool, active_games: int = 0,
           max_games: int | None = None, games_with_opponent: int = 0) -> Decision:
    """Accept, or the first failing rule as ``(rejection_code, reason)``.

    ``can_accept``: the daemon has room for one more game (``host.can_accept_game()``, and the games the
    adapter has committed to that the host does not count yet - accepted challenges, games waiting for their
    data - still leave room under the cap); ``active_games``/``max_games`` only word the message;
    ``games_with_opponent``: games in progress, or accepted and not yet started, against this challenger.
    """
    speed = challenge.time_control.speed
    rules: list[Decision | None] = []
    if _listed(policy.block, challenge):
        rules.append(Decision(False, "blacklisted",
                              "The operator of this bot will not let you play against it."))
    rules.append(_check_time_control(policy, challenge.time_control))
    capacity: Decision | None = None
    if not can_accept:
        cap = f" of {max_games}" if max_games is not None else ""
        code = f"too_many_{speed}_games" if speed in SPEEDS else "not_accepting_new_challenges"
        capacity = Decision(False, code, f"This bot is already playing {active_games}{cap} allowed games; "
                            "try again later.",
                            {"count": active_games, "allowed": max_games})
    rules.append(capacity)
    rules.append(_check_board(policy, challenge.width, challenge.height))
    rules.append(_check_handicap(policy, challenge.handicap))
    rules.append(_check_ranked(policy, challenge.ranked))
    rules.append(_check_rank(policy, challenge))
    decline: Decision | None = None
    if policy.decline_all:
        decline = Decision(False, "not_accepting_new_challenges",
                           "This bot is not accepting new challenges at this time.")
    rules.append(decline)
    if games_with_opponent >= policy.max_games_per_opponent:
        rules.append(Decision(
            False, "too_many_games_for_player",
            f"You already have {games_with_opponent} games against this bot. This bot only allows "
            f"{policy.max_games_per_opponent} games per player, please end your other games before starting "
            f"a new one.", {"games_being_played": games_with_opponent,
                            "max_games_per_player": policy.max_games_per_opponent}))
    rules.append(_check_komi(policy, challenge.komi))
    first = next((r for r in rules if r is not None), None)
    if first is None:
        return ACCEPT
    if _listed(policy.allow, challenge):
        # the allow list overrides every rule but the operator's own state (declining, no room)
        hard = next((r for r in (capacity, decline) if r is not None), None)
        return hard if hard is not None else ACCEPT
    return first


ADVERTISABLE_SYSTEMS = ("simple", "byoyomi", "fischer")  # goban's BotConfigV2.allowed_time_control_systems


def bot_config(policy: ChallengePolicy, *, bot_id: int | None, username: str,
               max_games: int) -> dict[str, Any]:
    """The public ``bot/config`` payload (goban's ``BotConfigV2``) describing what the bot accepts, so
    OGS's challenge dialog can warn players before they challenge. Never contains a secret."""

    def pair(r: Range, lo: float, hi: float) -> list[float]:
        return [lo if r.min is None else r.min, hi if r.max is None else r.max]

    def speed_settings(sp: SpeedPolicy | None) -> dict[str, Any] | None:
        if sp is None or not sp.allowed:
            return None
        day = 86400.0 * 30
        ranges: dict[str, Any] = {
            "simple": {"per_move_time_range": pair(sp.period_time, 0, day)},
            "byoyomi": {"main_time_range": pair(sp.main_time, 0, day),
                        "period_time_range": pair(sp.period_time, 0, day),
                        "periods_range": pair(sp.periods, 0, 1000)},
            "fischer": {"initial_time_range": pair(sp.main_time, 0, day),
                        "max_time_range": pair(sp.main_time, 0, day),
                        "time_increment_range": pair(sp.period_time, 0, day)},
        }
        out: dict[str, Any] = {name: r for name, r in ranges.items() if name in sp.systems}
        out["concurrent_games"] = max_games
        return out

    speeds: dict[str, SpeedPolicy] = {str(k): v for k, v in policy.speeds.items()}
    # goban's BotConfigV2 can describe only these three systems (ranges for each); canadian, absolute and
    # "none" challenges are still accepted or declined by decide(), but cannot be advertised.
    systems = sorted({s for sp in speeds.values() if sp.allowed for s in sp.systems if s in ADVERTISABLE_SYSTEMS})
    sizes: Any = sorted(set(policy.board_sizes))
    out: dict[str, Any] = {
        "_config_version": 2,
        "hidden": False,
        "bot_id": bot_id,
        "username": username,
        "allowed_time_control_systems": systems,
        "allowed_board_sizes": sizes,
        "allow_ranked": policy.ranked,
        "allow_unranked": policy.unranked,
        "allowed_rank_range": [_rank_string(policy.rank.min, "30k"), _rank_string(policy.rank.max, "9d")],
        "allow_ranked_handicap": policy.handicap.max is None or policy.handicap.max > 0,
        "allow_unranked_handicap": policy.handicap.max is None or policy.handicap.max > 0,
        "allowed_komi_range": pair(policy.komi, -1000, 1000),
        "decline_new_challenges": policy.decline_all,
        "min_move_time": 0,
        "max_games_per_player": policy.max_games_per_opponent,
    }
    for speed in SPEEDS:
        settings = speed_settings(speeds.get(speed))
        if settings is not None:
            out[f"allowed_{speed}_settings"] = settings
    return out


def _rank_string(ranking: float | None, default: str) -> str:
    """OGS ranking number -> ``"5k"``/``"2d"`` (gtp2ogs: k = 30 - n, d = n - 29)."""
    if ranking is None:
        return default
    n = int(ranking)
    return f"{30 - n}k" if n < 30 else f"{n - 29}d"
