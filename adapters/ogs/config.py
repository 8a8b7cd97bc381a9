"""The ``server:`` section for online-go.com (and the OGS sandbox)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bridge.config import SecretRef, Strict


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

    @model_validator(mode="after")
    def _auth_fields(self) -> OgsServerConfig:
        if self.auth == "apikey" and self.api_key is None:
            raise ValueError("auth 'apikey' needs api_key: {env: VARIABLE} or {file: PATH}")
        if self.auth == "oauth" and (self.client_id is None or self.password is None):
            raise ValueError("auth 'oauth' needs client_id and password (and client_secret if your app has one)")
        if self.reconnect_min_delay > self.reconnect_max_delay:
            raise ValueError("reconnect_min_delay is above reconnect_max_delay")
        return self
