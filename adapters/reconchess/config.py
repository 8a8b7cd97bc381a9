"""The ``server:`` section for a reconchess (Reconnaissance Blind Chess) server and its sandbox."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bridge.config import SecretRef, Strict
from bridge.seek import SeekConfig


class ReconchessServerConfig(Strict):
    kind: Literal["reconchess"]
    url: str = Field("https://rbc.jhuapl.edu", description="server root (the sandbox: http://127.0.0.1:PORT)")
    username: str = Field(min_length=1, description="the bot account's username (HTTP basic auth)")
    password: SecretRef = Field(
        description="the account's password ({env: VAR} or {file: PATH}, never inline)"
    )
    max_games: int = Field(
        2,
        ge=1,
        le=100,
        description="games played at once (also told to the server); the daemon's "
        "max_concurrent_games caps it too",
    )
    ranked: bool = Field(False, description="take part in the server's ranked matches")
    bot_version: int | None = Field(
        None,
        ge=1,
        description="ranked only: the bot version to play as; the server's current version, or the "
        "next one to create it (none: keep the current version, create version 1 if none)",
    )
    poll_interval: float = Field(5.0, gt=0, le=300, description="seconds between invitation polls")
    status_interval: float = Field(
        0.5, gt=0, le=30, description="seconds between game_status polls while the opponent plays"
    )
    request_timeout: float = Field(30.0, gt=0, le=600, description="seconds allowed for one HTTP call")
    retry_min_delay: float = Field(
        0.5,
        gt=0,
        le=600,
        description="first delay before retrying a call that met a 5xx answer or a "
        "connection error, seconds (doubles each time, with jitter)",
    )
    retry_max_delay: float = Field(30.0, gt=0, le=3600, description="cap on the retry delay, seconds")
    retry_give_up: float = Field(
        0.0,
        ge=0,
        description="seconds of failed retries after which one call gives up "
        "(0: retry until the daemon stops, as the official "
        "client does)",
    )

    seek: SeekConfig | None = Field(
        None,
        description="invite opponents (POST /api/invitations/) rather than only accept: whom, how often, how "
        "many (none: only accept)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ReconchessServerConfig:
        if self.bot_version is not None and not self.ranked:
            raise ValueError(
                "bot_version is only used for ranked play: set ranked: true or remove bot_version"
            )
        if self.retry_min_delay > self.retry_max_delay:
            raise ValueError("retry_min_delay is above retry_max_delay; swap them")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        return self
