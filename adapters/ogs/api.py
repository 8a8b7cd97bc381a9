"""OGS's REST API: one table of the endpoints the bridge uses, and a small client over ``requests``.

Two ways to authenticate a call, as the public sources do:

- a bot's API key (gtp2ogs ``src/util.ts``): ``apikey`` and ``bot_id`` travel in the request *body*
  (form-encoded, or JSON when a value is an object), never in the URL;
- an OAuth access token (the seeds, ``ogsapi``): ``Authorization: Bearer TOKEN``, obtained with the password
  grant at ``POST /oauth2/token/``.

Every error message is passed through :func:`bridge.redact.redact`; secrets never reach a log line.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from bridge.errors import AuthError, ServerError
from bridge.httpapi import close_session
from bridge.redact import redact, register_secret

log = logging.getLogger(__name__)

# name -> (method, path template)
ENDPOINTS: dict[str, tuple[str, str]] = {
    "oauth_token": ("POST", "/oauth2/token/"),
    "ui_config": ("GET", "/api/v1/ui/config"),
    "me": ("GET", "/api/v1/me"),
    "accept_challenge": ("POST", "/api/v1/me/challenges/{challenge_id}/accept"),
    "reject_challenge": ("POST", "/api/v1/me/challenges/{challenge_id}"),
    "game": ("GET", "/api/v1/games/{game_id}"),
    # seeking (server.seek): the web client's ChallengeModal posts direct challenges to players/{id}/challenge
    # (open ones to challenges) and cancels with DELETE me/challenges/{id}; ogsapi finds a player's id with
    # players?username= and lists the challenges sent and received at me/challenges.
    "find_player": ("GET", "/api/v1/players"),
    "challenge_player": ("POST", "/api/v1/players/{player_id}/challenge"),
    "my_challenges": ("GET", "/api/v1/me/challenges"),
    "cancel_challenge": ("DELETE", "/api/v1/me/challenges/{challenge_id}"),
    # open challenges: ChallengeModal posts them to challenges; CustomGames cancels one with DELETE challenges/{id}
    "create_open_challenge": ("POST", "/api/v1/challenges"),
    "cancel_open_challenge": ("DELETE", "/api/v1/challenges/{challenge_id}"),
}
AUTHENTICATED_GETS = frozenset({"my_challenges"})  # GETs that are about the account (the others are public)


class RestError(ServerError):
    """A REST call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(redact(message))
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """No answer, a server error or a rate limit: worth trying again. Other 4xx are final."""
        return self.status == 0 or self.status >= 500 or self.status == 429


RETRY_ATTEMPTS = 4
RETRY_MAX_SECONDS = 30.0


def _retry_wait(state: RetryCallState) -> float:
    """Exponential backoff with jitter; a 429's ``Retry-After`` is honoured (capped)."""
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, RestError) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), RETRY_MAX_SECONDS)
    return min(0.5 * 2 ** (state.attempt_number - 1), 8.0) + random.uniform(0.0, 0.5)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("%s; retrying (attempt %d of %d)", exc, state.attempt_number + 1, RETRY_ATTEMPTS)


@dataclass(frozen=True)
class OAuthSession:
    """What the OAuth password flow yields: the REST token and the realtime credentials."""

    access_token: str
    chat_auth: str
    user_jwt: str
    user_id: int
    username: str


class OgsRest:
    """A small REST client. ``use_apikey``/``use_bearer`` choose how calls authenticate."""

    def __init__(self, base_url: str, timeout: float, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = session or requests.Session()
        self.http.headers["User-Agent"] = "bridge-games (OGS bot bridge)"
        self._apikey: str | None = None
        self._bot_id: int | None = None
        self._bearer: str | None = None

    def close(self) -> None:
        close_session(self.http)  # every pooled socket too (urllib3 2 leaves dropped pools to the GC)

    def use_apikey(self, apikey: str, bot_id: int | None) -> None:
        register_secret(apikey)
        self._apikey, self._bot_id, self._bearer = apikey, bot_id, None

    def use_bearer(self, token: str) -> None:
        register_secret(token)
        self._bearer, self._apikey = token, None

    # --- the raw call -----------------------------------------------------------------------------
    def call(self, endpoint: str, body: dict[str, Any] | None = None, *, form: bool | None = None,
             authenticate: bool = True, retry: bool = True, query: dict[str, Any] | None = None,
             **path: Any) -> Any:
        """Call ``ENDPOINTS[endpoint]``; return the decoded JSON answer (or ``None`` for an empty body).

        Bodies are form-encoded unless a value is an object (then JSON), as gtp2ogs does. ``retry=False``: one
        attempt only, for calls that must never be sent twice (a second create would make a second challenge).
        An API key never goes in the URL: an authenticated GET carries it in a JSON body."""
        method, template = ENDPOINTS[endpoint]
        url = self.base_url + template.format(**path)
        data: dict[str, Any] = dict(body or {})
        headers: dict[str, str] = {"Accept": "application/json"}
        if authenticate and self._bearer is not None:
            headers["Authorization"] = f"Bearer {self._bearer}"
        signed_get = method == "GET" and endpoint in AUTHENTICATED_GETS
        if authenticate and self._apikey is not None and (method != "GET" or signed_get):
            data["apikey"] = self._apikey
            if self._bot_id is not None:
                data["bot_id"] = self._bot_id
        use_json = any(isinstance(v, dict | list) for v in data.values()) if form is None else not form
        kwargs: dict[str, Any] = {"headers": headers, "timeout": self.timeout}
        if query:
            kwargs["params"] = query
        if method != "GET" or (signed_get and data):
            if use_json:
                kwargs["data"] = json.dumps(data)
                headers["Content-Type"] = "application/json"
            else:
                kwargs["data"] = data
        where = f"{method} {template.format(**path)}"
        retrying = Retrying(retry=retry_if_exception(lambda e: isinstance(e, RestError) and e.transient),
                            stop=stop_after_attempt(RETRY_ATTEMPTS if retry else 1)
                            | stop_after_delay(RETRY_MAX_SECONDS),
                            wait=_retry_wait, before_sleep=_log_retry, reraise=True)
        resp = retrying(self._request, method, url, where, kwargs)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def _request(self, method: str, url: str, where: str, kwargs: dict[str, Any]) -> requests.Response:
        log.debug("REST %s", where)
        try:
            resp = self.http.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise RestError(f"{where} at {self.base_url} failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= resp.status_code < 300:
            text = resp.text.strip().replace("\n", " ")
            if len(text) > 300:
                text = text[:300] + "..."
            retry_after: float | None = None
            try:
                retry_after = float(resp.headers.get("Retry-After", ""))
            except ValueError:
                pass
            raise RestError(f"{where} answered HTTP {resp.status_code}: {text}", resp.status_code, retry_after)
        return resp

    # --- what the bot uses ------------------------------------------------------------------------
    def accept_challenge(self, challenge_id: int) -> Any:
        return self.call("accept_challenge", {}, form=True, challenge_id=challenge_id)

    def reject_challenge(self, challenge_id: int, message: str,
                         rejection_details: dict[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"delete": True, "message": message}
        if rejection_details is not None:
            body["rejection_details"] = rejection_details
        return self.call("reject_challenge", body, form=False, challenge_id=challenge_id)

    def find_player(self, username: str) -> int | None:
        """A player's id by username (None: no such player)."""
        reply = self.call("find_player", query={"username": username})
        results = reply.get("results") if isinstance(reply, dict) else None
        for row in results if isinstance(results, list) else []:
            if isinstance(row, dict) and str(row.get("username", "")).casefold() == username.casefold():
                ident = row.get("id")
                if isinstance(ident, int) and not isinstance(ident, bool):
                    return ident
        return None

    def challenge_player(self, player_id: int, challenge: dict[str, Any]) -> Any:
        """Create a direct challenge; sent once only (the answer carries ``challenge`` and ``game``)."""
        return self.call("challenge_player", challenge, form=False, retry=False, player_id=player_id)

    def create_open_challenge(self, challenge: dict[str, Any]) -> Any:
        """Create an open challenge; sent once only (the answer carries ``challenge`` and ``game``)."""
        return self.call("create_open_challenge", challenge, form=False, retry=False)

    def cancel_open_challenge(self, challenge_id: int, *, retry: bool = True) -> Any:
        return self.call("cancel_open_challenge", {}, form=False, retry=retry, challenge_id=challenge_id)

    def my_challenges(self) -> list[dict[str, Any]]:
        """The challenges the account sent or received and that are still open (first page, up to 100)."""
        reply = self.call("my_challenges", form=False, query={"page_size": 100})
        results = reply.get("results") if isinstance(reply, dict) else None
        return [row for row in results if isinstance(row, dict)] if isinstance(results, list) else []

    def cancel_challenge(self, challenge_id: int, *, retry: bool = True) -> Any:
        return self.call("cancel_challenge", {}, form=False, retry=retry, challenge_id=challenge_id)

    def oauth_login(self, client_id: str, client_secret: str | None, username: str,
                    password: str) -> OAuthSession:
        """The password grant, then ``ui/config`` for the realtime credentials; switches to Bearer auth."""
        register_secret(password)
        if client_secret:
            register_secret(client_secret)
        body = {"client_id": client_id, "grant_type": "password", "username": username, "password": password}
        if client_secret:
            body["client_secret"] = client_secret
        try:
            token = self.call("oauth_token", body, form=True, authenticate=False)
        except RestError as exc:
            if exc.status in (400, 401, 403):
                raise AuthError(f"OAuth login refused for {username}: check server.client_id, "
                                f"client_secret and password ({exc})") from None
            raise
        if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
            raise AuthError(f"OAuth login for {username}: the server's answer has no access_token")
        self.use_bearer(token["access_token"])
        if isinstance(token.get("refresh_token"), str):
            register_secret(token["refresh_token"])
        config = self.call("ui_config")
        if not isinstance(config, dict):
            raise ServerError("GET /api/v1/ui/config answered something that is not an object")
        user = config.get("user")
        chat_auth = config.get("chat_auth")
        if not isinstance(user, dict) or not isinstance(chat_auth, str) or "id" not in user:
            raise ServerError("GET /api/v1/ui/config lacks user{id, username} or chat_auth")
        register_secret(chat_auth)
        jwt = config.get("user_jwt") if isinstance(config.get("user_jwt"), str) else ""
        if jwt:
            register_secret(jwt)
        return OAuthSession(access_token=token["access_token"], chat_auth=chat_auth, user_jwt=jwt or "",
                            user_id=int(user["id"]), username=str(user.get("username", username)))
