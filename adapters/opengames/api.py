"""The Open Games API (the seed ``002``, base ``https://www.open-games.ai/api/v1``): one table of endpoints, a
small client over ``requests``, and the decoding of its answers into the player's neutral view.

Wire facts: ``Authorization: Bearer og_...`` on authenticated calls; JSON bodies; cells in states are
``[row, col]`` pairs (0-based, row 0 = ``A``), in actions ``"A5"`` strings (row letter, 1-based column): the
conversion is :func:`bridge.games.battleship_rules.parse_cell` / ``cell_name``.

Where the seed is silent the client is lenient: unknown fields are ignored; an error answer's reason is read
from a JSON ``detail`` (or ``error`` / ``message``), else the body's text; a cell may also come as ``"A5"``.

Retries: a 5xx answer, a timeout or a connection error is retried with capped exponential backoff and jitter
(tenacity), and a 429 after its ``Retry-After`` (capped by ``retry_max_delay``), until the daemon stops, the
call's deadline passes or ``retry_give_up`` seconds have gone by. Other 4xx answers are final
(:class:`ApiError`; 401: :class:`Unauthorized`). An action (``POST .../action``) is never sent twice blindly:
when its answer is lost (a 5xx, or a connection that broke after the request may have left)
:class:`LostAnswer` tells the caller to settle it from the game's state; only a request that surely never
reached the server (connection refused, 429) is sent again.

Deadlines: a call given a ``deadline`` (a game's turn) never runs past it: each attempt's timeout is cut to
the time left, and the backoff between attempts is capped at a sixteenth of the time left (so a server that
recovers is noticed soon, not after a doubling delay meant for long outages).

Politeness: every API object of one agent shares a :class:`Pacer` (by default at most ``POLITE_REQUESTS``
requests in any ``POLITE_WINDOW`` seconds, 16 per 2 s: ``server.max_request_rate``), so that however fast the
configuration polls, a platform limit of 20 requests per 2 s is never met.

Secrets: the API key is registered with :mod:`bridge.redact` and every message passes through
:func:`bridge.redact.redact`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import requests

from bridge import httpapi
from bridge.errors import ProtocolError
from bridge.games.battleship import BattleshipView, OwnShip
from bridge.games.battleship_rules import Cell, Ship, ShipMove, cell_name, parse_cell
from bridge.httpapi import RetryPolicy as RetryPolicy
from bridge.httpapi import Stopped as Stopped
from bridge.httpapi import short as short
from bridge.redact import redact, register_secret

log = logging.getLogger("bridge.opengames")

# name -> (method, path template relative to /api/v1, authenticated)
ENDPOINTS: dict[str, tuple[str, str, bool]] = {
    "register": ("POST", "/agents/register", False),
    "me": ("GET", "/agents/me", True),
    "agent_status": ("GET", "/agents/status", True),
    "agent": ("GET", "/agents/{agent_id}", False),
    "agent_stats": ("GET", "/agents/{agent_id}/stats", False),
    "agent_profile": ("GET", "/agents/profile", False),  # ?name=
    "mm_join": ("POST", "/matchmaking/join", True),
    "mm_status": ("GET", "/matchmaking/status", True),
    "mm_leave": ("DELETE", "/matchmaking/leave", True),
    "queue_info": ("GET", "/matchmaking/queue-info", False),
    "game_join": ("POST", "/mcp/game/join", True),  # ?game_id=
    "state": ("GET", "/mcp/game/{game_id}/state", True),
    "actions": ("GET", "/mcp/game/{game_id}/actions", True),
    "action": ("POST", "/mcp/game/{game_id}/action", True),
    "game": ("GET", "/games/{game_id}", False),
    "rules": ("GET", "/mcp/rules", False),
    "info": ("GET", "/mcp/info", False),
    "webhook_register": ("POST", "/webhooks/register", True),
    "webhook_me": ("GET", "/webhooks/me", True),
    "webhook_delete": ("DELETE", "/webhooks/me", True),
    "dataset_game": ("GET", "/dataset/{game_id}.json", False),
}


POLITE_REQUESTS = 16  # requests an agent sends in any POLITE_WINDOW seconds, at most
POLITE_WINDOW = 2.0
MIN_ATTEMPT_TIMEOUT = 0.5  # seconds: an attempt made close to its deadline still gets this long
DEADLINE_BACKOFF_SHARE = 1 / 16  # the backoff cap, as a share of the time left before the call's deadline


class Pacer:
    """At most ``limit`` requests in any ``window`` seconds (a sliding window), shared by the threads of one
    agent: :meth:`wait` returns when one more request may go."""

    def __init__(self, limit: int = POLITE_REQUESTS, window: float = POLITE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self.waited = 0.0  # seconds spent waiting, in all
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()

    def wait(self, stop: threading.Event | None = None, until: float | None = None) -> None:
        """Wait for a free place in the window (but not past ``until``, a ``time.monotonic()``), then take it."""
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                free_at = self._sent[0] + self.window if len(self._sent) >= self.limit else now
                if until is not None:
                    free_at = min(free_at, max(until, now))
                if free_at <= now:
                    self._sent.append(now)
                    return
            pause = free_at - now
            self.waited += pause
            if stop is not None:
                if stop.wait(pause):
                    self._take()
                    return
            else:
                time.sleep(pause)

    def _take(self) -> None:
        with self._lock:
            self._sent.append(time.monotonic())


class PoliteSession(requests.Session):
    """A ``requests`` session whose every attempt waits for the agent's :class:`Pacer` and whose timeout is
    cut to the current call's ``deadline``."""

    def __init__(self, pacer: Pacer | None = None, stop: threading.Event | None = None) -> None:
        super().__init__()
        self.pacer = pacer
        self.stop = stop
        self.deadline: float | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if self.pacer is not None:
            self.pacer.wait(self.stop, self.deadline)
        if self.deadline is not None and isinstance(kwargs.get("timeout"), int | float):
            left = self.deadline - time.monotonic()
            kwargs["timeout"] = max(MIN_ATTEMPT_TIMEOUT, min(float(kwargs["timeout"]), left))
        return super().request(method, url, *args, **kwargs)


class ApiError(httpapi.ApiError):
    """A final error answer (4xx), or a call that gave up retrying (``status`` 0).

    ``detail``: the server's reason; ``maybe_done``: an earlier attempt of this call may have been carried out
    (its answer was lost), so a refusal now may only mean "already done"."""

    def __init__(self, message: str, status: int = 0, detail: str = "", maybe_done: bool = False) -> None:
        super().__init__(message, status, maybe_done)
        self.detail = redact(detail)


class LostAnswer(ApiError):
    """An action's answer was lost: it may or may not have been carried out; read the state to know."""


class Unauthorized(httpapi.Unauthorized):
    """HTTP 401: the API key was refused."""


def reason_of(resp: requests.Response) -> str:
    """The reason an error answer gives: JSON ``detail`` / ``error`` / ``message``, else the body's text."""
    try:
        data = resp.json()
    except ValueError:
        return short(resp.text) or "no reason given"
    if isinstance(data, dict):
        for key in ("detail", "error", "message", "reason"):
            if key in data and data[key] not in (None, ""):
                value = data[key]
                return short(value if isinstance(value, str) else json.dumps(value))
    return short(json.dumps(data))


class OpenGamesApi(httpapi.HttpApi):
    """One HTTP session with the platform. Not shared between threads: each game loop makes its own."""

    log = log
    retry_rate_limited = True

    def __init__(
        self,
        api_url: str,
        api_key: str | None,
        *,
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        session: requests.Session | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__(
            user_agent="bridge-games (Open Games agent bridge)",
            timeout=timeout,
            retry=retry,
            stop=stop,
            session=session or PoliteSession(pacer, stop),
        )
        self.api_url = api_url.rstrip("/")
        self._key = api_key
        if api_key:
            register_secret(api_key)

    def _reason(self, resp: requests.Response) -> str:
        return reason_of(resp)

    # --- the raw call --------------------------------------------------------------------------------------
    def call(
        self,
        endpoint: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        once: bool = False,
        deadline: float | None = None,
        give_up: float | None = None,
        **path: Any,
    ) -> Any:
        """Call ``ENDPOINTS[endpoint]``; return the decoded JSON answer (None for an empty body).

        ``once``: never send again a request that may have reached the server (raise :class:`LostAnswer`);
        ``deadline`` (``time.monotonic()``): stop retrying when the next attempt would start after it;
        ``give_up``: seconds of retrying (default: the policy's). Raises :class:`Unauthorized` (401),
        :class:`ApiError` (other final statuses, or retries given up), :class:`Stopped`,
        :class:`ProtocolError` (an answer that is not JSON)."""
        method, template, auth = ENDPOINTS[endpoint]
        where = f"{method} {template.format(**path)}"
        url = self.api_url + template.format(**path)
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        headers: dict[str, str] = {}
        if auth and self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        if method in ("POST", "PUT", "PATCH"):
            kwargs["data"] = json.dumps(body if body is not None else {})
            headers["Content-Type"] = "application/json"
        if params:
            kwargs["params"] = params
        kwargs["headers"] = headers
        policy = self.retry
        if deadline is not None:  # within a turn: retry often enough to notice a recovery in time
            cap = max(0.25, (deadline - time.monotonic()) * DEADLINE_BACKOFF_SHARE)
            self.retry = replace(policy, min_delay=min(policy.min_delay, cap), max_delay=min(policy.max_delay, cap))
        if isinstance(self.http, PoliteSession):
            self.http.deadline = deadline
        try:
            resp, maybe_done = self._send(
                method, url, where, self.api_url, once=once, deadline=deadline, give_up=give_up, **kwargs
            )
        except httpapi.GaveUp as exc:
            if exc.lost or (once and exc.maybe_done):
                raise LostAnswer(f"{where}: the answer was lost ({exc.reason}); the game's state will tell "
                                 f"whether it was carried out", 0, exc.reason, maybe_done=True) from None
            raise ApiError(f"{where} at {self.api_url}: no answer after {exc.attempts} "
                           f"attempt(s) in {exc.seconds:.0f} s ({exc.reason}); check that the "
                           f"server is up and server.url is right", 0, exc.reason,
                           maybe_done=exc.maybe_done) from None
        finally:
            self.retry = policy
            if isinstance(self.http, PoliteSession):
                self.http.deadline = None
        if resp.status_code == 401:
            raise Unauthorized(f"{where}: the platform refused the API key (HTTP 401: {reason_of(resp)}); "
                               f"check server.api_key (`gamebridge register opengames` makes an agent and a key)")
        if not 200 <= resp.status_code < 300:
            detail = reason_of(resp)
            raise ApiError(f"{where} answered HTTP {resp.status_code}: {detail}", resp.status_code, detail,
                           maybe_done=maybe_done)
        if not resp.content.strip():
            return None
        try:
            return resp.json()
        except ValueError:
            raise ProtocolError(f"{where}: the answer is not JSON: {short(resp.text)}") from None

    # --- agents --------------------------------------------------------------------------------------------
    def register(self, name: str, description: str = "") -> dict[str, Any]:
        """Register a new agent; returns ``{"id", "name", "api_key"}`` (the key registered as a secret)."""
        answer = self.call("register", {"name": name, "description": description}, once=True)
        agent = answer.get("agent") if isinstance(answer, dict) else None
        if not isinstance(agent, dict):
            agent = answer if isinstance(answer, dict) and "api_key" in answer else None
        if agent is None or not isinstance(agent.get("api_key"), str) or not agent["api_key"]:
            keys = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
            raise ProtocolError(f"POST /agents/register: the answer holds no agent.api_key (got {keys})")
        register_secret(agent["api_key"])
        return agent

    def agent_profile(self, name: str, give_up: float | None = None) -> dict[str, Any] | None:
        """The public profile of the agent called ``name`` (``GET /agents/profile?name=``), None if there is
        none (404)."""
        try:
            answer = self.call("agent_profile", params={"name": name}, give_up=give_up)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(answer, dict):
            raise ProtocolError(f"GET /agents/profile?name={name}: expected a profile, got {short(repr(answer))}")
        return answer

    def me(self) -> dict[str, Any]:
        answer = self.call("me")
        if isinstance(answer, dict) and isinstance(answer.get("agent"), dict):
            answer = answer["agent"]
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            raise ProtocolError(f"GET /agents/me: expected the agent's profile with its name, got "
                                f"{short(repr(answer))}")
        return answer

    def active_games(self) -> list[str]:
        """The games in progress ``GET /agents/status`` lists for us, if it lists them (``active_games``); the
        seed calls it a quick status check and shows no fields, so an answer without them, or an error, is an
        empty list."""
        try:
            answer = self.call("agent_status", give_up=10.0)
        except (ApiError, ProtocolError):
            return []
        if not isinstance(answer, dict):
            return []
        games = answer.get("active_games")
        return [str(g) for g in games if isinstance(g, str) and g] if isinstance(games, list) else []

    def agent_stats(self, agent_id: str) -> dict[str, Any]:
        answer = self.call("agent_stats", agent_id=agent_id)
        return answer if isinstance(answer, dict) else {}

    # --- matchmaking ---------------------------------------------------------------------------------------
    def mm_join(self) -> dict[str, Any]:
        """Join the queue. "Already in the queue" or "already matched" (a 4xx saying so) counts as joined."""
        try:
            answer = self.call("mm_join", {})
        except ApiError as exc:
            text = exc.detail.lower()
            if exc.status == 409 or (400 <= exc.status < 500 and ("already" in text or "in queue" in text)):
                return {"message": exc.detail, "already": True}
            raise
        return answer if isinstance(answer, dict) else {}

    def mm_status(self) -> MatchStatus:
        answer = self.call("mm_status")
        if not isinstance(answer, dict):
            raise ProtocolError(f"GET /matchmaking/status: expected an object, got {short(repr(answer))}")
        game_id = answer.get("game_id")
        return MatchStatus(
            in_queue=bool(answer.get("in_queue")),
            matched=bool(answer.get("matched")),
            game_id=str(game_id) if game_id not in (None, "") else None,
            position=answer.get("position") if isinstance(answer.get("position"), int) else None,
            game_over=answer.get("game_over") is True,
        )

    def mm_leave(self, give_up: float | None = None) -> None:
        try:
            self.call("mm_leave", give_up=give_up)
        except ApiError as exc:
            if exc.status not in (400, 404, 409):  # "not in the queue": nothing to leave
                raise

    # --- one game ------------------------------------------------------------------------------------------
    def game_join(self, game_id: str) -> dict[str, Any]:
        """Connect to the game's session; "already joined" (a 4xx saying so) counts as joined."""
        try:
            answer = self.call("game_join", params={"game_id": game_id})
        except ApiError as exc:
            if 400 <= exc.status < 500 and "already" in exc.detail.lower():
                return {"already": True, "message": exc.detail}
            raise
        if not isinstance(answer, dict):
            raise ProtocolError(f"POST /mcp/game/join?game_id={game_id}: expected an object, got "
                                f"{short(repr(answer))}")
        return answer

    def state(self, game_id: str, deadline: float | None = None) -> BattleshipView:
        where = f"GET /mcp/game/{game_id}/state"
        return parse_state(self.call("state", deadline=deadline, game_id=game_id), where)

    def raw_state(self, game_id: str) -> Any:
        return self.call("state", game_id=game_id)

    def actions(self, game_id: str, deadline: float | None = None) -> list[str] | None:
        """The ships ``GET .../actions`` lists as movable this turn (None: the answer does not say)."""
        answer = self.call("actions", deadline=deadline, game_id=game_id)
        if not isinstance(answer, dict) or not isinstance(answer.get("movable_ships"), list):
            return None
        if answer.get("can_move") is False:
            return []
        names = []
        for item in answer["movable_ships"]:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                if item.get("can_translate") is False and item.get("can_rotate") is False:
                    continue
                names.append(item["name"])
        return names

    def shoot(self, game_id: str, cell: Cell, reasoning: str = "", message: str = "",
              deadline: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "shoot", "data": cell_name(cell)}
        return self._act(game_id, body, reasoning, message, deadline)

    def move(self, game_id: str, moves: Sequence[ShipMove], reasoning: str = "", message: str = "",
             deadline: float | None = None) -> dict[str, Any]:
        data = []
        for mv in moves:
            item: dict[str, Any] = {"ship": mv.ship, "action": mv.action}
            if mv.action == "translate":
                item["direction"] = mv.direction
            data.append(item)
        return self._act(game_id, {"type": "move", "data": data}, reasoning, message, deadline)

    def _act(self, game_id: str, body: dict[str, Any], reasoning: str, message: str,
             deadline: float | None) -> dict[str, Any]:
        # free text the engine may have produced goes to the server: the same redaction as the logs
        if reasoning:
            body["reasoning"] = redact(reasoning)
        if message:
            body["message"] = redact(message)
        answer = self.call("action", body, once=True, deadline=deadline, game_id=game_id)
        if not isinstance(answer, dict):
            raise ProtocolError(f"POST /mcp/game/{game_id}/action: expected an object, got "
                                f"{short(repr(answer))}")
        return answer

    # --- webhooks, records ---------------------------------------------------------------------------------
    def register_webhook(self, url: str, token: str) -> Any:
        register_secret(token)
        body = {"webhook_url": url, "webhook_token": token, "endpoint_type": "agent"}
        return self.call("webhook_register", body)

    def delete_webhook(self, give_up: float | None = None) -> None:
        try:
            self.call("webhook_delete", give_up=give_up)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def dataset_record(self, game_id: str, give_up: float | None = None) -> dict[str, Any] | None:
        """The game's dataset record (``/dataset/{id}.json``), or None if the platform has none (yet)."""
        try:
            answer = self.call("dataset_game", give_up=give_up, game_id=game_id)
        except ApiError as exc:
            if exc.status in (404, 400, 0):
                return None
            raise
        return answer if isinstance(answer, dict) else None


@dataclass(frozen=True)
class MatchStatus:
    in_queue: bool
    matched: bool
    game_id: str | None
    position: int | None = None
    game_over: bool = False  # (an extension some servers add: the matched game is over)


# --- decoding a state -------------------------------------------------------------------------------------
def _bad(where: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(f"{where}: expected {expected}, got {short(repr(value))}")


def parse_cell_value(value: Any, where: str) -> Cell:
    """A cell as the platform writes it: ``[row, col]`` (0-based) or ``"A5"``."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return (int(value[0]), int(value[1]))
    if isinstance(value, str):
        try:
            return parse_cell(value, 26, 26)
        except ValueError:
            pass
    raise _bad(where, "a cell [row, col] or a name like A5", value)


def _cells(value: Any, where: str) -> tuple[Cell, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(where, "a list of cells", value)
    return tuple(parse_cell_value(v, f"{where}[{i}]") for i, v in enumerate(value))


def _number(value: Any, where: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, "a number", value)
    return float(value)


def _board_size(ascii_board: Any) -> tuple[int, int]:
    """Rows and columns of the first board ``board_ascii`` draws (a header of column numbers, then a line per
    row letter, up to the first blank line); 10 x 10, the platform's board, when absent or unreadable."""
    if not isinstance(ascii_board, str):
        return 10, 10
    lines = ascii_board.replace("\r", "").strip("\n").split("\n")
    header = lines[0].split() if lines else []
    rows = 0
    for line in lines[1:]:
        if not line.strip():
            break
        if line[0].isalpha() and line[1:2] in (" ", "\t"):
            rows += 1
    if not header or not all(h.isdigit() for h in header) or not 1 <= rows <= 26 or len(header) > 26:
        return 10, 10
    return rows, len(header)


def parse_state(data: Any, where: str) -> BattleshipView:
    """``GET /mcp/game/{id}/state`` -> :class:`BattleshipView`. Raises ProtocolError naming the bad field."""
    if not isinstance(data, dict):
        raise _bad(where, "a state object", data)
    own = data.get("own_board")
    opp = data.get("opponent_board") or {}
    if not isinstance(own, dict):
        raise _bad(f"{where}: own_board", "an object with ships", own)
    if not isinstance(opp, dict):
        raise _bad(f"{where}: opponent_board", "an object", opp)
    ships_raw = own.get("ships")
    if not isinstance(ships_raw, list) or not ships_raw:
        raise _bad(f"{where}: own_board.ships", "a list of ships", ships_raw)
    ships: list[OwnShip] = []
    for i, s in enumerate(ships_raw):
        w = f"{where}: own_board.ships[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            raise _bad(w, "a ship with a name", s)
        cells = _cells(s.get("positions"), f"{w}.positions")
        try:
            ship = Ship.from_cells(s["name"], cells)
        except ValueError as exc:
            raise ProtocolError(f"{w}: {exc}") from None
        size = s.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size != ship.length:
            raise ProtocolError(f"{w}: size {size} but {ship.length} positions")
        ships.append(OwnShip(ship, frozenset(_cells(s.get("hits"), f"{w}.hits")), bool(s.get("is_sunk")),
                             s.get("can_move") is not False))
    player = data.get("player_id", data.get("player_role"))
    if player not in (1, 2):
        raise _bad(f"{where}: player_id", "1 or 2", player)
    turn = data.get("turn")
    if isinstance(turn, bool) or not isinstance(turn, int):
        raise _bad(f"{where}: turn", "an integer", turn)
    remaining = opp.get("ships_remaining")
    sunk = opp.get("sunk_ships") or []
    if not isinstance(sunk, list) or not all(isinstance(n, str) for n in sunk):
        raise _bad(f"{where}: opponent_board.sunk_ships", "a list of ship names", sunk)
    rows, cols = _board_size(data.get("board_ascii"))
    try:
        return BattleshipView(
            player=int(player),
            turn=turn,
            my_turn=bool(data.get("is_my_turn")),
            ships=tuple(ships),
            opponent_hits=_cells(own.get("opponent_hits"), f"{where}: own_board.opponent_hits"),
            opponent_misses=_cells(own.get("opponent_misses"), f"{where}: own_board.opponent_misses"),
            my_hits=_cells(opp.get("my_hits"), f"{where}: opponent_board.my_hits"),
            my_misses=_cells(opp.get("my_misses"), f"{where}: opponent_board.my_misses"),
            sunk_ships=tuple(sunk),
            ships_remaining=remaining if type(remaining) is int else None,
            game_over=bool(data.get("game_over")),
            winner=data.get("winner"),
            turn_elapsed=_number(data.get("turn_elapsed_seconds"), f"{where}: turn_elapsed_seconds", 0.0),
            turn_timeout=_number(data.get("turn_timeout_seconds"), f"{where}: turn_timeout_seconds", 180.0),
            rows=rows,
            cols=cols,
        )
    except ValueError as exc:
        raise ProtocolError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ActionAnswer:
    """What ``POST .../action`` answered: accepted or not (with the reason), and a shot's result if given."""

    valid: bool
    reason: str = ""
    hit: bool | None = None
    sunk: str | None = None  # the sunk ship's name ("" if sunk but not named)
    game_over: bool = False


def parse_action_answer(answer: dict[str, Any]) -> ActionAnswer:
    valid = answer.get("valid", answer.get("success", True)) is not False
    reason = ""
    for key in ("error", "detail", "message", "reason"):
        if isinstance(answer.get(key), str) and answer[key]:
            reason = short(answer[key])
            break
    result = answer.get("result")
    hit: bool | None = None
    sunk: str | None = None
    if isinstance(result, dict):
        if isinstance(result.get("hit"), bool):
            hit = result["hit"]
        if result.get("ship_sunk", result.get("sunk")):
            name = result.get("ship_sunk_name", result.get("sunk_ship_name"))
            sunk = name if isinstance(name, str) else ""
    return ActionAnswer(valid, reason, hit, sunk, bool(answer.get("game_over")))
