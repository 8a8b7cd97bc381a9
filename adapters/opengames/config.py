"""The ``server:`` section for Open Games (https://www.open-games.ai, Battleship) and its sandbox."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from bridge.config import SecretRef, Strict
from bridge.errors import ConfigError
from bridge.seek import SeekTiming

API_PREFIX = "/api/v1"
KEY_PATTERN = re.compile(r"og_[0-9a-fA-F]{64}")
TURN_LIMIT = 180.0  # seconds: the platform's turn limit (``turn_timeout_seconds``) when a state does not say


def key_shape_problem(key: str) -> str | None:
    """What makes ``key`` not an Open Games API key, without showing any of it; None when it is one."""
    if KEY_PATTERN.fullmatch(key):
        return None
    if not key.startswith("og_"):
        return "it does not start with og_"
    if len(key) != 67:
        return f"it has {len(key)} characters, not 67"
    return "it holds characters that are not hexadecimal digits after og_"


def check_api_key(key: str, where: str) -> str:
    """``key`` if it has Open Games' key format (``og_`` + 64 hex digits); else ConfigError. The message
    never shows the key or any part of it."""
    shape = key_shape_problem(key)
    if shape is None:
        return key
    raise ConfigError(f"{where}: the secret is not an Open Games API key ({shape}; a key is og_ followed "
                      f"by 64 hexadecimal digits, as POST /agents/register or `gamebridge register opengames` "
                      f"gives it); check the variable or file it comes from")


class WebhookSettings(Strict):
    """The receiver the daemon runs for the platform's webhooks (``mode: webhook``)."""

    listen_host: str = Field(
        "127.0.0.1", description="address the receiver listens on (0.0.0.0: every interface)")
    listen_port: int = Field(
        18789, ge=0, le=65535, description="port the receiver listens on (0: any free port)")
    public_url: str | None = Field(
        None, description="the URL registered with the platform, as the platform reaches the receiver "
                          "(e.g. https://bot.example.org/og-hook behind a reverse proxy); none: "
                          "http://LISTEN_HOST:PORT/")
    token: SecretRef = Field(
        description="the webhook token ({env: VAR} or {file: PATH}): the platform sends it in every "
                    "webhook body; other POSTs are refused with HTTP 401")
    max_body: int = Field(
        65536, ge=1024, le=10_000_000, description="largest webhook body accepted, bytes (larger: HTTP 413)")
    fallback_poll: float = Field(
        15.0, gt=0, le=600, description="seconds between state (or matchmaking) polls while waiting for a "
                                        "webhook, in case one is lost")

    @model_validator(mode="after")
    def _url(self) -> WebhookSettings:
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url {self.public_url!r} must start with http:// or https://")
        return self


class OpenGamesSeek(SeekTiming):
    """When the agent joins the matchmaking queue (the platform picks the opponent)."""

    max_games: int = Field(1, ge=1, le=1, description="games at once: the platform matches an agent into one "
                                                      "game at a time")


class OpenGamesServerConfig(Strict):
    kind: Literal["opengames"]
    url: str = Field(
        "https://www.open-games.ai",
        description=f"server root; the API is under {API_PREFIX} (the sandbox: http://127.0.0.1:PORT)")
    agent: str = Field(min_length=1, max_length=100, description="the agent's name on the platform")
    api_key: SecretRef = Field(
        description="the agent's API key, og_ + 64 hex digits ({env: VAR} or {file: PATH}, never inline)")
    mode: Literal["polling", "webhook"] = Field(
        "polling", description="how the bridge learns of matches and turns: polling the API, or webhooks "
                               "(see webhook:)")
    poll_interval: float = Field(
        2.5, gt=0, le=60, description="seconds between matchmaking status polls (the platform asks 2-3 s)")
    state_interval: float = Field(
        2.0, gt=0, le=60, description="seconds between game state polls while the opponent plays (polling)")
    webhook: WebhookSettings | None = Field(None, description="the webhook receiver, mode: webhook")
    turn_margin: float = Field(
        15.0, ge=0, le=170, description="seconds kept from the turn limit (180 s): the engine gets the rest, "
                                        "then a fallback shot is sent")
    games: int = Field(0, ge=0, description="games to play before the daemon stops (0: forever)")
    seek: OpenGamesSeek | None = Field(
        None, description="when the agent joins the matchmaking queue: every (seconds at least between two "
                          "joins), pause (seconds after a game), stop_after (games, then no more joins; the "
                          "daemon stays up, unlike games:); none: join again at once after every game")
    messages: bool = Field(
        True, description="send the engine's chat messages to the opponent (its reasoning is always sent)")
    request_timeout: float = Field(20.0, gt=0, le=600, description="seconds allowed for one HTTP call")
    max_request_rate: float = Field(
        8.0, gt=0, le=1000, description="requests a second the bridge sends at most, measured over 2 s (all of "
                                        "the agent's calls: matchmaking, states, actions); the default stays "
                                        "under a platform limit of 20 requests per 2 s however fast the polls")
    retry_min_delay: float = Field(
        0.5, gt=0, le=600, description="first delay before retrying a call that met a 5xx answer or a "
                                       "connection error, seconds (doubles each time, with jitter)")
    retry_max_delay: float = Field(
        30.0, gt=0, le=3600, description="cap on the retry delay, seconds (a 429's Retry-After is honoured "
                                         "up to this)")
    retry_give_up: float = Field(
        0.0, ge=0, description="seconds of failed retries after which one call gives up (0: retry until the "
                               "daemon stops)")

    @model_validator(mode="after")
    def _consistent(self) -> OpenGamesServerConfig:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        if self.mode == "webhook" and self.webhook is None:
            raise ValueError("mode: webhook needs a webhook: section (at least token: {env: VAR} or "
                             "{file: PATH})")
        if self.retry_min_delay > self.retry_max_delay:
            raise ValueError("retry_min_delay is above retry_max_delay; swap them")
        return self

    @property
    def api_url(self) -> str:
        """The API's base URL (``.../api/v1``)."""
        root = self.url.rstrip("/")
        return root if root.endswith(API_PREFIX) else root + API_PREFIX

    def resolve_key(self) -> str:
        """The API key, read now and checked (ConfigError saying what is wrong, never showing the key)."""
        return check_api_key(self.api_key.resolve("server.api_key").get_secret_value(), "server.api_key")
