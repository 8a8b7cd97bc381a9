"""The ``server:`` section for online-go.com (and the OGS sandbox)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from bridge.config import SecretRef, Strict
from bridge.seek import SeekConfig


class Range(Strict):
    min: float | None = Field(None, description="lowest accepted value (none: no bound)")
    max: float | None = Field(None, description="highest accepted value (none: no bound)")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max}); swap them")
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


TimeSystem = Literal["fischer", "byoyomi", "canadian", "simple", "absolute", "none"]
SpeedName = Literal["blitz", "rapid", "live", "correspondence"]


def _default_systems() -> list[TimeSystem]:
    return ["fischer", "byoyomi", "canadian", "simple", "absolute"]


def _default_speeds() -> dict[SpeedName, SpeedPolicy]:
    return {"blitz": SpeedPolicy(allowed=False), "rapid": SpeedPolicy(),
            "live": SpeedPolicy(), "correspondence": SpeedPolicy(allowed=False)}


class SpeedPolicy(Strict):
    """Which time controls are accepted at one speed (blitz, rapid, live, correspondence)."""

    allowed: bool = Field(True, description="accept games at this speed at all")
    systems: list[TimeSystem] = Field(default_factory=_default_systems, description="accepted time systems")
    main_time: Range = Field(default_factory=Range, description="seconds of main/initial/total time")
    period_time: Range = Field(default_factory=Range, description="seconds per byoyomi/canadian period, "
                                                                  "fischer increment, simple per-move time")
    periods: Range = Field(default_factory=Range, description="byoyomi periods / canadian stones per period")


class ChallengePolicy(Strict):
    """Which challenges the bot accepts. Checked in this order; the first failing rule is the reason given."""

    decline_all: bool = Field(False, description="decline every new challenge (e.g. before maintenance)")
    allow: list[str] = Field(default_factory=list, description="usernames accepted whatever the other rules say")
    block: list[str] = Field(default_factory=list, description="usernames always declined")
    board_sizes: list[int] = Field(default_factory=lambda: [9, 13, 19],
                                   description="accepted square board sizes")
    allow_rectangular: bool = Field(False, description="accept non-square boards whose sides are both listed")
    ranked: bool = Field(True, description="accept ranked games")
    unranked: bool = Field(True, description="accept unranked games")
    handicap: Range = Field(default_factory=lambda: Range(min=0, max=9), description="handicap stones")
    komi: Range = Field(default_factory=Range, description="komi (automatic komi is always accepted)")
    rank: Range = Field(default_factory=Range,
                        description="challenger's OGS ranking number, checked for ranked games "
                                    "(as OGS counts: 0 = 30k, 29 = 1k, 30 = 1d)")
    speeds: dict[SpeedName, SpeedPolicy] = Field(default_factory=_default_speeds,
                                                 description="time-control rules per speed")
    max_games_per_opponent: int = Field(1, ge=1, description="games at once against one opponent")


OfferedSystem = Literal["fischer", "byoyomi", "canadian", "simple", "absolute"]
RulesName = Literal["chinese", "japanese", "aga", "korean", "nz", "ing"]


class TimeControlOffer(Strict):
    """One time control the bot offers in its challenges, in the words of ``accept.speeds`` (seconds)."""

    system: OfferedSystem = Field("byoyomi", description="time system")
    speed: SpeedName = Field("live", description="OGS speed class the challenge declares")
    main_time: float = Field(300.0, ge=0, le=86400 * 30, description="seconds of main time (fischer: initial "
                                                                    "time; absolute: total time)")
    period_time: float = Field(30.0, ge=0, le=86400 * 30, description="seconds per byoyomi/canadian period, "
                                                                     "fischer increment, simple per-move time")
    periods: int = Field(3, ge=1, le=300, description="byoyomi periods / canadian stones per period")
    max_time: float | None = Field(None, ge=0, le=86400 * 30,
                                   description="fischer's cap on the clock, seconds (none: main_time)")

    @model_validator(mode="after")
    def _sane(self) -> TimeControlOffer:
        if self.system in ("simple", "byoyomi", "canadian") and self.period_time <= 0:
            raise ValueError(f"period_time must be above 0 for {self.system} time")
        if self.system in ("fischer", "absolute") and self.main_time <= 0:
            raise ValueError(f"main_time must be above 0 for {self.system} time")
        if self.max_time is not None and self.max_time < self.main_time:
            raise ValueError(f"max_time ({self.max_time:g}) is below main_time ({self.main_time:g})")
        return self

    def parameters(self) -> dict[str, Any]:
        """OGS's ``time_control_parameters`` (JGOF, with the legacy ``time_control`` name of the system)."""
        out: dict[str, Any] = {"system": self.system, "time_control": self.system, "speed": self.speed,
                               "pause_on_weekends": False}
        if self.system == "fischer":
            out.update(initial_time=self.main_time, time_increment=self.period_time,
                       max_time=self.max_time if self.max_time is not None else self.main_time)
        elif self.system == "byoyomi":
            out.update(main_time=self.main_time, period_time=self.period_time, periods=self.periods)
        elif self.system == "canadian":
            out.update(main_time=self.main_time, period_time=self.period_time, stones_per_period=self.periods)
        elif self.system == "simple":
            out.update(per_move=self.period_time)
        else:
            out.update(total_time=self.main_time)
        return out


class OgsSeekConfig(SeekConfig):
    """``server.seek`` on OGS: whom to challenge (direct challenges, ``POST /api/v1/players/{id}/challenge``), or
    ``open: true`` (open challenges, ``POST /api/v1/challenges``: anyone within the ranking bounds may accept), and
    the game offered. Board sizes and time controls are offered in turn, one per challenge."""

    open: bool = Field(False, description="offer open challenges that anyone may accept (seen on OGS's seek "
                                          "graph) instead of challenging listed opponents; leave opponents empty")
    min_ranking: int = Field(-1000, ge=-1000, le=1000,
                             description="lowest OGS ranking number that may accept (0 = 30k, 29 = 1k, 30 = 1d)")
    max_ranking: int = Field(1000, ge=-1000, le=1000, description="highest OGS ranking number that may accept")

    board_sizes: list[int] = Field(default_factory=lambda: [9], min_length=1,
                                   description="square board sizes offered, in turn (1 to 25)")
    time_controls: list[TimeControlOffer] = Field(default_factory=lambda: [TimeControlOffer()], min_length=1,
                                                  description="time controls offered, in turn")
    ranked: bool = Field(False, description="offer ranked games")
    rules: RulesName = Field("chinese", description="rules of the games offered")
    handicap: int = Field(0, ge=-1, le=9, description="handicap stones offered (-1: automatic, from the ranks)")
    komi: float | None = Field(None, ge=-100, le=100, description="komi offered (none: automatic)")
    timeout: float = Field(120.0, ge=5, le=86400 * 14,
                           description="seconds an unanswered challenge stays open; then it is cancelled and the "
                                       "opponent left alone as after a decline")

    @model_validator(mode="after")
    def _whom(self) -> OgsSeekConfig:  # replaces SeekConfig's: open challenges name nobody
        if not self.open:
            if not self.opponents and not self.any_active:
                raise ValueError("seek needs someone to challenge: list opponents, or set open: true to offer open "
                                 "challenges")
            blocked = {name.casefold() for name in self.block}
            both = [name for name in self.opponents if name.casefold() in blocked]
            if both:
                raise ValueError(f"{', '.join(both)} is both in seek.opponents and seek.block: remove it from one")
            if len({n.casefold() for n in self.opponents}) != len(self.opponents):
                raise ValueError("seek.opponents lists a name twice: list each opponent once")
        elif self.opponents or self.any_active or self.block:
            raise ValueError("open: true offers challenges to anyone: remove opponents, any_active and block (or "
                             "set open: false to challenge the listed opponents)")
        if self.min_ranking > self.max_ranking:
            raise ValueError(f"min_ranking ({self.min_ranking}) is above max_ranking ({self.max_ranking}); swap them")
        return self

    @model_validator(mode="after")
    def _ogs(self) -> OgsSeekConfig:
        bad = [s for s in self.board_sizes if not 1 <= s <= 25]
        if bad:
            raise ValueError(f"board_sizes: {bad[0]} is not a board size OGS plays (1 to 25)")
        if self.any_active:
            raise ValueError("any_active is not available on OGS (the API lists no active users to challenge): "
                             "list the opponents instead")
        if self.ranked and self.komi is not None:
            raise ValueError("ranked games on OGS have automatic komi: remove komi or set ranked: false")
        return self


class OgsServerConfig(Strict):
    kind: Literal["ogs"]
    url: str = Field("https://online-go.com", description="server root (the sandbox: http://127.0.0.1:PORT)")
    transport: Literal["websocket", "socketio"] = Field(
        "websocket", description="realtime transport: OGS's current plain JSON WebSocket, or legacy socket.io")
    auth: Literal["apikey", "oauth"] = Field("apikey", description="bot API key, or the OAuth password flow")
    username: str = Field(min_length=1, description="the bot account's username")
    api_key: SecretRef | None = Field(None, description="bot API key ({env: VAR} or {file: PATH}), auth: apikey")
    client_id: str | None = Field(None, description="OAuth application client id, auth: oauth")
    client_secret: SecretRef | None = Field(None, description="OAuth client secret, auth: oauth")
    password: SecretRef | None = Field(None, description="account password, auth: oauth")
    ping_interval: float = Field(10.0, gt=0, le=300, description="seconds between net/ping keepalives")
    reconnect_min_delay: float = Field(1.0, gt=0, description="first reconnect delay, seconds")
    reconnect_max_delay: float = Field(60.0, gt=0, description="cap on the reconnect delay, seconds")
    request_timeout: float = Field(20.0, gt=0, description="seconds allowed for one REST call")
    max_pause_time: float = Field(300.0, ge=0, description="seconds an opponent's pause may last before the bot "
                                                           "resumes the game, as gtp2ogs does (0: never)")
    accept: ChallengePolicy = Field(default_factory=ChallengePolicy, description="challenge acceptance policy")
    seek: OgsSeekConfig | None = Field(
        None, description="challenge opponents (direct or open challenges through the REST API) rather than only "
                          "accept: whom, how often, how many, what game (none: only accept)")
    hidden: bool = Field(False, description="keep the bot off OGS's public bot list (sent as `hidden` in bot/config, "
                                            "as gtp2ogs does; challenges by name still reach it)")

    @model_validator(mode="after")
    def _auth_fields(self) -> OgsServerConfig:
        if self.auth == "apikey" and self.api_key is None:
            raise ValueError("auth 'apikey' needs api_key: {env: VARIABLE} or {file: PATH}")
        if self.auth == "oauth" and (self.client_id is None or self.password is None):
            raise ValueError("auth 'oauth' needs client_id and password (and client_secret if your app has one)")
        if self.reconnect_min_delay > self.reconnect_max_delay:
            raise ValueError("reconnect_min_delay is above reconnect_max_delay")
        return self
