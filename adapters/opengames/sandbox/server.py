"""The sandbox's HTTP server: the seed's whole API under ``/api/v1`` and the control API under ``/sandbox/``
(docs/opengames-sandbox.md).

A threaded stdlib server (one thread per connection, HTTP/1.1 keep-alive). Errors are
``{"detail": "..."}`` with a 4xx status (401 with ``WWW-Authenticate: Bearer``; 429 with ``Retry-After``), as
FastAPI answers them. Faults for tests: ``POST /sandbox/fail`` makes ``/api/v1`` answer an error status (429,
500, 503 ...) for some seconds, ``POST /sandbox/fail_next`` makes the next matching requests answer one, before
or after carrying them out, ``POST /sandbox/drop`` closes the connection instead of answering the next matching
requests, before or after carrying them out (a lost answer), and ``POST /sandbox/stall`` answers the next
matching requests late.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from bridge.adapters.opengames.sandbox.core import HOUSE_KINDS, Agent, SandboxState, Ticket, Webhook
from bridge.adapters.opengames.sandbox.game import GAME_TYPE, SCHEMA_VERSION, ApiError, SandboxGame
from bridge.adapters.opengames.sandbox.house import HousePlayer
from bridge.adapters.opengames.sandbox.webhooks import WebhookDispatcher
from bridge.games.battleship_rules import ROW_LETTERS
from bridge.sandbox_http import (
    Faults,
    SandboxRequestHandler,
    TrackingHTTPServer,
    drop_rule,
    fail_for_rule,
    fail_next_rule,
    serve_in_foreground,
    stall_rule,
)

log = logging.getLogger("bridge.opengames.sandbox")

API = "/api/v1"
RATE_WINDOW = 2.0  # seconds over which the per-agent request rate is measured


@dataclass
class Request:
    method: str
    path: str
    match: re.Match[str]
    query: dict[str, str]
    body: Any
    agent: Agent | None
    base: str


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is (with ``content_type``) instead of JSON
    content_type: str = "application/json"


Handler = Callable[[Request], Any]


class RateLimiter:
    """At most ``rate`` requests a second per key, measured over a sliding window of RATE_WINDOW seconds
    (so bursts of up to ``rate * RATE_WINDOW`` pass). Refused requests do not count."""

    def __init__(self, rate: float | None) -> None:
        self.limit = None if rate is None else max(1, int(rate * RATE_WINDOW))
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self.refused = 0  # requests answered 429

    def check(self, key: str) -> float | None:
        """None if the request may go on, else the seconds until it would."""
        if self.limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - RATE_WINDOW:
                hits.popleft()
            if len(hits) >= self.limit:
                self.refused += 1
                return hits[0] + RATE_WINDOW - now
            hits.append(now)
            return None


class _HttpServer(TrackingHTTPServer):
    def __init__(self, address: tuple[str, int], sandbox: OpenGamesSandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _RequestHandler)


class _RequestHandler(SandboxRequestHandler):
    server_version = "open-games-sandbox"
    logger = log
    server: _HttpServer

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        sandbox = self.server.sandbox
        length = self._content_length()
        if length < 0 or length > 1_000_000:
            self._send(Response(400, {"detail": "bad Content-Length (at most 1 MB)"}))
            self.close_connection = True
            return
        raw = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        stall = sandbox.faults.take_stall(method, split.path)
        if stall is not None and sandbox._stop.wait(stall.seconds):
            self.close_connection = True  # the sandbox is stopping
            return
        drop = sandbox.faults.take_drop(method, split.path)
        if drop is not None and not drop.after:
            self.close_connection = True  # the request never "arrived"
            return
        failure = sandbox.faults.take_fail_next(method, split.path)
        if failure is not None and not failure.after:
            self._send(sandbox._failure(failure.status, "POST /sandbox/fail_next"))
            return
        host = self.headers.get("Host") or f"{sandbox.host}:{sandbox.port}"
        response = sandbox._dispatch(
            method, split.path, split.query, raw, self.headers.get("Authorization"), f"http://{host}"
        )
        if drop is not None:
            self.close_connection = True  # carried out, but the answer is lost
            return
        if failure is not None:  # carried out, then an error answer instead of the result
            response = sandbox._failure(failure.status, "POST /sandbox/fail_next, after carrying it out")
        self._send(response)

    def _send(self, response: Response) -> None:
        data = response.raw if response.raw is not None else json.dumps(response.body).encode()
        self._reply(response.status, data, response.content_type, response.headers)


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(422, f"query parameter {name} must be an integer, not {text!r}") from None
    if not low <= value <= high:
        raise ApiError(422, f"query parameter {name} must be between {low} and {high}, not {value}")
    return value


T = TypeVar("T")


def _rule(parse: Callable[..., T], body: Any, *args: Any) -> T:
    """A fault-control request's rule (bridge.sandbox_http's parsers); 422 saying what is expected if malformed."""
    try:
        return parse(body, *args)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


def _obj(body: Any, example: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, f"the body must be a JSON object: {example}")
    return body


class OpenGamesSandbox:
    """A local Open Games server. ``start()`` returns self, listening; ``url`` is its root (the API is
    ``{url}/api/v1``); ``stop()`` ends everything (HTTP, matchmaking, webhooks, house players).

    ``turn_timeout``: seconds a player has for each turn (and to join a matched game) before forfeiting;
    ``pairing_interval``: seconds between matchmaking runs; ``data_dir``: keep agents (key hashes) and the
    dataset there across runs (None: memory only); ``ship_moves``: whether games allow ship moves;
    ``rate_limit``: requests a second allowed per agent (None: no limit); ``house_delay``: seconds a house
    opponent waits before each action; ``seed``: seeds the games' placement seeds (None: random);
    ``webhook_timeout``/``webhook_retries``: per POST, and retries after a failed one;
    ``forget_match_on_join``: ``/matchmaking/status`` stops naming a matched game once the agent joined it (the
    seed does not say how long it names it)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        turn_timeout: float = 180.0,
        pairing_interval: float = 5.0,
        data_dir: str | Path | None = None,
        ship_moves: bool = True,
        rate_limit: float | None = None,
        house_delay: float = 0.5,
        seed: int | None = None,
        webhook_timeout: float = 5.0,
        webhook_retries: int = 3,
        forget_match_on_join: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.pairing_interval = pairing_interval
        self.house_delay = house_delay
        self._stop = threading.Event()
        self._stopped = False
        self._house_threads: list[HousePlayer] = []
        self._house_lock = threading.Lock()
        self.webhooks = WebhookDispatcher(self._webhook_of, timeout=webhook_timeout, retries=webhook_retries)
        self.state = SandboxState(
            turn_timeout=turn_timeout,
            ship_moves=ship_moves,
            data_dir=Path(data_dir) if data_dir is not None else None,
            webhook_sink=self.webhooks.submit,
            house_starter=self._start_house,
            seed=seed,
            forget_match_on_join=forget_match_on_join,
        )
        self.limiter = RateLimiter(rate_limit)
        self.faults = Faults(API + "/", log)
        self.requests = 0
        self._httpd: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._routes: list[tuple[str, re.Pattern[str], bool, Handler]] = []
        self._build_routes()

    # --- lifecycle -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + API

    def start(self) -> OpenGamesSandbox:
        self._httpd = _HttpServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        worker = threading.Thread(target=self._work, name="og-sandbox-worker", daemon=True)
        self._threads = [self._httpd.serve_in_thread("og-sandbox-http"), worker]
        worker.start()
        log.info("Open Games sandbox listening on %s (API %s)", self.url, self.api_url)
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        with self.state.changed:
            self.state.changed.notify_all()
        if self._httpd is not None:
            self._httpd.stop()
        for t in self._threads:
            t.join(5)
        with self._house_lock:
            houses = list(self._house_threads)
        for h in houses:
            h.join(5)
        self.webhooks.close()

    def __enter__(self) -> OpenGamesSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _work(self) -> None:
        """The turn clocks (every 50 ms) and the matchmaking worker (every ``pairing_interval`` s)."""
        next_pairing = time.monotonic() + self.pairing_interval
        while not self._stop.wait(0.05):
            try:
                self.state.tick()
                if time.monotonic() >= next_pairing:
                    next_pairing = time.monotonic() + self.pairing_interval
                    self.state.pair()
            except Exception:
                log.exception("sandbox worker failed")

    def _start_house(self, game: SandboxGame, role: int, ticket: Ticket) -> None:
        kind = game.seats[role].house
        assert kind is not None
        delay = self.house_delay if ticket.house_delay is None else ticket.house_delay
        player = HousePlayer(self.state, game, role, kind, ticket.house_moves, delay, self._stop)
        with self._house_lock:
            self._house_threads = [h for h in self._house_threads if h.is_alive()]
            self._house_threads.append(player)
        player.start()

    def _webhook_of(self, agent_id: str) -> Webhook | None:
        agent = self.state.agents.get(agent_id)
        return agent.webhook if agent is not None else None

    # --- helpers for tests and scripts ---------------------------------------------------------------------
    def add_agent(self, name: str, description: str = "") -> dict[str, Any]:
        """Registers an agent as ``POST /agents/register`` does: ``{"agent_id", "name", "api_key"}``."""
        agent, key = self.state.register(name, description)
        return {"agent_id": agent.id, "name": agent.name, "api_key": key}

    def add_house(
        self, kind: str = "random", moves: bool = False, delay: float | None = None
    ) -> dict[str, Any]:
        """Puts one house opponent (``random`` or ``hunt-target``) in the matchmaking queue."""
        return self.state.enqueue_house(kind, moves, delay)

    def pair_now(self) -> list[str]:
        """Runs the matchmaking worker now; returns the ids of the games it created."""
        return [g.id for g in self.state.pair()]

    def create_game(
        self, player1: str, player2: str, seed: int | None = None, placement: dict[str, Any] | None = None
    ) -> str:
        """A game between two agents (ids or names) without the queue; returns its id. ``placement``: either
        fleet as the dataset writes it, ``{"player1": {"Carrier": ["A1", ..., "A5"], ...}}``."""
        game = self.state.create_game(self._agent_ref(player1), self._agent_ref(player2), seed, placement)
        return game.id

    def game(self, game_id: str) -> dict[str, Any]:
        """Everything about a game, true ship positions included (``GET /sandbox/games/ID``)."""
        return self.state.control_game(game_id)

    def games(self) -> list[dict[str, Any]]:
        return self.state.control_games()

    def force_timeout(self, game_id: str) -> dict[str, Any]:
        return self.state.force_timeout(game_id)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self.webhooks.deliveries()

    def fail(self, seconds: float, status: int = 500, match: str = "", retry_after: int = 1) -> None:
        self.faults.fail(seconds, status, match, retry_after)

    def drop(self, match: str = "", count: int = 1, after: bool = True) -> None:
        self.faults.drop(match, count, after)

    def fail_next(self, match: str = "", count: int = 1, status: int = 500, after: bool = False) -> None:
        self.faults.fail_next(match, count, status, after)

    def stall(self, seconds: float, match: str = "", count: int = 1) -> None:
        self.faults.stall(seconds, match, count)

    def _agent_ref(self, ref: Any) -> Agent:
        if not isinstance(ref, str) or not ref:
            raise ApiError(422, f"an agent is named by its id or its name, not {ref!r}")
        agent = self.state.agents.get(ref)
        return agent if agent is not None else self.state.agent_by_name(ref)

    # --- faults --------------------------------------------------------------------------------------------
    def _failing(self, method: str, path: str) -> Response | None:
        failing = self.faults.failing(method, path)
        if failing is None:
            return None
        status, retry_after = failing
        return self._failure(status, "POST /sandbox/fail", retry_after)

    @staticmethod
    def _failure(status: int, why: str, retry_after: int = 1) -> Response:
        headers = {"Retry-After": str(retry_after)} if status in (429, 503) else {}
        return Response(status, {"detail": f"sandbox: failing on purpose with HTTP {status} ({why})"}, headers)

    # --- dispatch ------------------------------------------------------------------------------------------
    def _dispatch(
        self, method: str, path: str, query: str, raw: bytes, authorization: str | None, base: str
    ) -> Response:
        self.requests += 1
        try:
            failing = self._failing(method, path)
            if failing is not None:
                return failing
            allowed = False
            for route_method, pattern, needs_auth, handler in self._routes:
                match = pattern.fullmatch(path)
                if match is None:
                    continue
                if route_method != method:
                    allowed = True
                    continue
                agent = None
                if needs_auth:
                    agent = self.state.authenticate(authorization)
                    wait = self.limiter.check(agent.id)
                    if wait is not None:
                        seconds = max(1, math.ceil(wait))
                        return Response(
                            429,
                            {
                                "detail": f"too many requests: at most {self.limiter.limit} requests "
                                f"per {RATE_WINDOW:g} s per agent; retry after {seconds} s",
                                "retry_after": seconds,
                            },
                            {"Retry-After": str(seconds)},
                        )
                queries = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
                result = handler(Request(method, path, match, queries, self._body(raw), agent, base))
                return result if isinstance(result, Response) else Response(200, result)
            if allowed:
                return Response(405, {"detail": f"Method Not Allowed: {method} {path}"})
            return Response(404, {"detail": f"Not Found: no endpoint {method} {path}"})
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            return Response(exc.status, exc.body(), headers)
        except Exception:
            log.exception("sandbox: %s %s failed", method, path)
            return Response(500, {"detail": "internal sandbox error (see its log)"})

    @staticmethod
    def _body(raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "malformed request: the body is not valid JSON") from None

    def _build_routes(self) -> None:
        def route(method: str, pattern: str, handler: Handler, auth: bool = False) -> None:
            prefix = "" if pattern.startswith("/sandbox") else API
            self._routes.append((method, re.compile(prefix + pattern), auth, handler))

        s = self.state
        gid = r"([^/]+)"
        # agents
        route("POST", r"/agents/register", self._register)
        route("GET", r"/agents/me", lambda r: self._profile(self._me(r)), auth=True)
        route("GET", r"/agents/status", lambda r: s.agent_status(self._me(r)), auth=True)
        route("GET", r"/agents/profile", self._profile_by_name)
        route("GET", r"/agents/?", self._agents)
        route("GET", rf"/agents/{gid}", lambda r: self._profile(s.agent(r.match.group(1))))
        route("GET", rf"/agents/{gid}/stats", lambda r: s.stats(s.agent(r.match.group(1))))
        # matchmaking
        route("POST", r"/matchmaking/join", lambda r: s.mm_join(self._me(r)), auth=True)
        route("GET", r"/matchmaking/status", lambda r: s.mm_status(self._me(r)), auth=True)
        route("DELETE", r"/matchmaking/leave", lambda r: s.mm_leave(self._me(r)), auth=True)
        route(
            "GET",
            r"/matchmaking/queue-info",
            lambda r: s.queue_info() | {"pairing_interval_seconds": self.pairing_interval},
        )
        # games and actions
        route("POST", r"/mcp/game/join", self._join, auth=True)
        route("GET", rf"/mcp/game/{gid}/state", lambda r: s.state(self._me(r), r.match.group(1)), auth=True)
        route(
            "GET", rf"/mcp/game/{gid}/actions", lambda r: s.actions(self._me(r), r.match.group(1)), auth=True
        )
        route(
            "POST",
            rf"/mcp/game/{gid}/action",
            lambda r: s.act(self._me(r), r.match.group(1), r.body),
            auth=True,
        )
        route("GET", r"/mcp/rules", lambda r: self._rules())
        route("GET", r"/mcp/tools", lambda r: {"tools": MCP_TOOLS})
        route("GET", r"/mcp/info", lambda r: self._mcp_info())
        route("GET", r"/games/?", self._games)
        route("GET", r"/games/live", lambda r: s.live_games())
        route("GET", r"/games/types", lambda r: [self._game_type()])
        route("GET", rf"/games/{gid}", lambda r: s.game_summary(r.match.group(1)))
        route("GET", rf"/games/{gid}/spectate", lambda r: s.spectate(r.match.group(1)))
        route("GET", r"/platform/stats", lambda r: s.platform_stats())
        route(
            "GET",
            r"/leaderboard",
            lambda r: s.leaderboard(
                r.query.get("sort_by") or "wins", _int_param(r.query, "limit", 100, 1, 1000)
            ),
        )
        # webhooks
        route("POST", r"/webhooks/register", lambda r: s.register_webhook(self._me(r), r.body), auth=True)
        route("GET", r"/webhooks/me", lambda r: s.webhook_info(self._me(r)), auth=True)
        route("DELETE", r"/webhooks/me", lambda r: s.delete_webhook(self._me(r)), auth=True)
        # dataset
        route("GET", r"/dataset/?", self._dataset_info)
        route("GET", r"/dataset/games\.jsonl", self._jsonl)
        route("GET", r"/dataset/([^/]+)\.json", lambda r: s.record(r.match.group(1)))
        # control
        route("GET", r"/sandbox/?", lambda r: self._control_help())
        route("GET", r"/sandbox/agents", lambda r: s.control_agents())
        route("POST", r"/sandbox/agents", self._control_add_agent)
        route("GET", r"/sandbox/games", lambda r: self.games())
        route("POST", r"/sandbox/games", self._control_create_game)
        route("GET", rf"/sandbox/games/{gid}", lambda r: self.game(r.match.group(1)))
        route("POST", rf"/sandbox/games/{gid}/timeout", lambda r: self.force_timeout(r.match.group(1)))
        route("POST", r"/sandbox/house", self._control_house)
        route("POST", r"/sandbox/matchmaking/pair", lambda r: {"game_ids": self.pair_now()})
        route("GET", r"/sandbox/webhooks", lambda r: self.webhook_deliveries())
        route("POST", r"/sandbox/fail", self._control_fail)
        route("POST", r"/sandbox/drop", self._control_drop)
        route("POST", r"/sandbox/fail_next", self._control_fail_next)
        route("POST", r"/sandbox/stall", self._control_stall)

    # --- /api/v1 handlers ----------------------------------------------------------------------------------
    @staticmethod
    def _me(request: Request) -> Agent:
        assert request.agent is not None
        return request.agent

    def _profile(self, agent: Agent) -> dict[str, Any]:
        stats = self.state.stats(agent)
        return agent.public() | {k: v for k, v in stats.items() if k not in ("agent_id", "name")}

    def _register(self, request: Request) -> Response:
        body = _obj(request.body, '{"name": "MyBot", "description": "My AI agent"}')
        agent, key = self.state.register(body.get("name"), body.get("description"))
        log.info("sandbox: agent %s registered (%s)", agent.name, agent.id)
        return Response(
            201,
            {
                "agent": {
                    "id": agent.id,
                    "name": agent.name,
                    "description": agent.description,
                    "api_key": key,
                },
                "important": "Save your API key now — it will not be shown again!",
            },
        )

    def _profile_by_name(self, request: Request) -> dict[str, Any]:
        name = request.query.get("name")
        if not name:
            raise ApiError(422, "query parameter name is required: /agents/profile?name=AgentName")
        return self._profile(self.state.agent_by_name(name))

    def _agents(self, request: Request) -> list[dict[str, Any]]:
        skip = _int_param(request.query, "skip", 0, 0, 10**9)
        limit = _int_param(request.query, "limit", 100, 1, 1000)
        with self.state.lock:
            agents = list(self.state.agents.values())
        return [a.public() for a in agents[skip : skip + limit]]

    def _join(self, request: Request) -> dict[str, Any]:
        game_id = request.query.get("game_id")
        if not game_id and isinstance(request.body, dict):
            game_id = request.body.get("game_id")
        if not isinstance(game_id, str) or not game_id:
            raise ApiError(
                422, "query parameter game_id is required: POST /api/v1/mcp/game/join?game_id=GAME_ID"
            )
        return self.state.join_game(self._me(request), game_id)

    def _games(self, request: Request) -> list[dict[str, Any]]:
        skip = _int_param(request.query, "skip", 0, 0, 10**9)
        limit = _int_param(request.query, "limit", 100, 1, 1000)
        return self.state.completed_games(request.query.get("agent_id") or None, skip, limit)

    def _game_type(self) -> dict[str, Any]:
        rules = self.state.rules
        return {
            "id": GAME_TYPE,
            "name": "Battleship",
            "players": 2,
            "board": [rules.rows, rules.cols],
            "ships": [{"name": s.name, "size": s.length} for s in rules.fleet],
            "ship_moves": rules.moves_enabled,
            "turn_timeout_seconds": self.state.turn_timeout,
        }

    def _rules(self) -> dict[str, Any]:
        rules = self.state.rules
        last = f"{ROW_LETTERS[rules.rows - 1]}{rules.cols}"
        return {
            "game_type": GAME_TYPE,
            "board": {
                "rows": rules.rows,
                "cols": rules.cols,
                "coordinates": f"a row letter (A-{ROW_LETTERS[rules.rows - 1]}, A at the top) then a column "
                f"number (1-{rules.cols}, 1 at the left): A1 ... {last}; JSON positions are "
                f"[row, col] from 0, so A5 is [0, 4]",
            },
            "ships": [{"name": s.name, "size": s.length} for s in rules.fleet],
            "turn": "each turn: shoot one cell of the opponent's board, or move one or more unhit ships",
            "ship_moves": {
                "enabled": rules.moves_enabled,
                "translate": "one cell up (towards row A), down, left (towards column 1) or right",
                "rotate": "the ship turns about its bow (its top cell if vertical, else its left cell)",
                "rules": "only ships with no hit may move, each at most once per action; moves are applied "
                "in order and must keep the ship on the board without overlapping another; if any ship "
                "move is invalid the whole action is rejected",
            },
            "shots": "a hit cell cannot be shot again; a missed cell can (a ship may have moved there)",
            "win_condition": "sink all of the opponent's ships",
            "turn_timeout_seconds": self.state.turn_timeout,
            "timeout": "a player who lets the turn timeout pass (or does not join a matched game in "
            "that time) forfeits the game",
            "action_schema": {
                "shoot": {
                    "type": "shoot",
                    "data": "A5",
                    "reasoning": "optional text",
                    "message": "optional text",
                },
                "move": {
                    "type": "move",
                    "data": [
                        {"ship": "Carrier", "action": "translate", "direction": "up"},
                        {"ship": "Destroyer", "action": "rotate"},
                    ],
                    "reasoning": "optional text",
                    "message": "optional text",
                },
            },
        }

    @staticmethod
    def _mcp_info() -> dict[str, Any]:
        return {
            "name": "open-games-sandbox",
            "version": "1.0",
            "protocol_version": "2024-11-05",
            "description": "A local Open Games server (gamebridge sandbox) for dry runs and tests",
            "game_types": [GAME_TYPE],
            "sandbox": True,
        }

    def _dataset_info(self, request: Request) -> dict[str, Any]:
        with self.state.lock:
            records = list(self.state.records.values())
        return {
            "name": "Open Games Battleship (sandbox)",
            "schema_version": SCHEMA_VERSION,
            "game_types": [GAME_TYPE],
            "total_games": len(records),
            "first_completed_at": records[0]["completed_at"] if records else None,
            "last_completed_at": records[-1]["completed_at"] if records else None,
            "downloads": {
                "jsonl": f"{request.base}{API}/dataset/games.jsonl",
                "single_game": f"{request.base}{API}/dataset/{{game_id}}.json",
            },
            "pagination": "games.jsonl?limit=N&skip=N (completion order, oldest first)",
        }

    def _jsonl(self, request: Request) -> Response:
        skip = _int_param(request.query, "skip", 0, 0, 10**9)
        limit = _int_param(request.query, "limit", 0, 0, 10**9) or None  # 0 or absent: all
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.state.record_list(skip, limit))
        return Response(200, raw=lines.encode(), content_type="application/x-ndjson; charset=utf-8")

    # --- /sandbox handlers ---------------------------------------------------------------------------------
    def _control_help(self) -> dict[str, Any]:
        return {
            "sandbox": "opengames",
            "url": self.url,
            "api": self.api_url,
            "house": list(HOUSE_KINDS),
            "turn_timeout_seconds": self.state.turn_timeout,
            "pairing_interval_seconds": self.pairing_interval,
            "rate_limit": None
            if self.limiter.limit is None
            else f"{self.limiter.limit} requests per {RATE_WINDOW:g} s per agent",
            "docs": "docs/opengames-sandbox.md",
            "endpoints": [
                "GET/POST /sandbox/agents",
                "GET/POST /sandbox/games",
                "GET /sandbox/games/ID",
                "POST /sandbox/games/ID/timeout",
                "POST /sandbox/house",
                "POST /sandbox/matchmaking/pair",
                "GET /sandbox/webhooks",
                "POST /sandbox/fail",
                "POST /sandbox/drop",
                "POST /sandbox/fail_next",
                "POST /sandbox/stall",
            ],
        }

    def _control_add_agent(self, request: Request) -> dict[str, Any]:
        body = _obj(request.body, '{"name": "mybot", "description": "..."}')
        return self.add_agent(body.get("name", ""), body.get("description") or "")

    def _control_create_game(self, request: Request) -> dict[str, Any]:
        body = _obj(request.body, '{"player1": "ID or name", "player2": "ID or name", "seed": null}')
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ApiError(422, f"seed must be an integer >= 0 or null, not {seed!r}")
        game_id = self.create_game(
            body.get("player1", ""),
            body.get("player2", ""),
            seed,
            body.get("placement"),
        )
        return self.state.game_summary(game_id)

    def _control_house(self, request: Request) -> dict[str, Any]:
        body = _obj(request.body if request.body is not None else {}, '{"kind": "random", "moves": false}')
        kind, moves, delay = body.get("kind", "random"), body.get("moves", False), body.get("delay")
        if not isinstance(kind, str) or kind not in HOUSE_KINDS:
            raise ApiError(422, f"kind must be one of {', '.join(HOUSE_KINDS)}, not {kind!r}")
        if not isinstance(moves, bool):
            raise ApiError(422, f"moves must be true or false, not {moves!r}")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0):
            raise ApiError(422, f"delay must be a number of seconds >= 0 or null, not {delay!r}")
        return self.add_house(kind, moves, None if delay is None else float(delay))

    def _control_fail(self, request: Request) -> dict[str, Any]:
        rule = _rule(fail_for_rule, request.body)
        self.fail(rule.seconds, rule.status, rule.match, rule.retry_after)
        return {"failing_for": rule.seconds, "status": rule.status, "match": rule.match,
                "retry_after": rule.retry_after}

    def _control_fail_next(self, request: Request) -> dict[str, Any]:
        rule = _rule(fail_next_rule, request.body, "POST /api/v1/mcp/game/")
        self.fail_next(rule.match, rule.count, rule.status, rule.after)
        return {"match": rule.match, "count": rule.count, "status": rule.status, "after": rule.after}

    def _control_stall(self, request: Request) -> dict[str, Any]:
        rule = _rule(stall_rule, request.body, "GET /api/v1/mcp/game/")
        self.stall(rule.seconds, rule.match, rule.count)
        return {"seconds": rule.seconds, "match": rule.match, "count": rule.count}

    def _control_drop(self, request: Request) -> dict[str, Any]:
        rule = _rule(drop_rule, request.body, "POST /api/v1/mcp/game/")
        self.drop(rule.match, rule.count, rule.after)
        return {"match": rule.match, "count": rule.count, "after": rule.after}

MCP_TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_game_state",
        "description": "Full game state from your perspective",
        "endpoint": "GET /api/v1/mcp/game/{game_id}/state",
        "inputSchema": {
            "type": "object",
            "properties": {"game_id": {"type": "string"}},
            "required": ["game_id"],
        },
    },
    {
        "name": "get_available_actions",
        "description": "Available actions and movable ships this turn",
        "endpoint": "GET /api/v1/mcp/game/{game_id}/actions",
        "inputSchema": {
            "type": "object",
            "properties": {"game_id": {"type": "string"}},
            "required": ["game_id"],
        },
    },
    {
        "name": "execute_action",
        "description": 'Shoot a cell (data: "A5") or move ships (data: a list of ship moves)',
        "endpoint": "POST /api/v1/mcp/game/{game_id}/action",
        "inputSchema": {
            "type": "object",
            "required": ["game_id", "type", "data"],
            "properties": {
                "game_id": {"type": "string"},
                "type": {"enum": ["shoot", "move"]},
                "data": {
                    "oneOf": [
                        {"type": "string", "pattern": "^[A-Ja-j](10|[1-9])$"},
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["ship", "action"],
                                "properties": {
                                    "ship": {"type": "string"},
                                    "action": {"enum": ["translate", "rotate"]},
                                    "direction": {"enum": ["up", "down", "left", "right"]},
                                },
                            },
                        },
                    ]
                },
                "reasoning": {"type": "string"},
                "message": {"type": "string"},
            },
        },
    },
    {
        "name": "join_game",
        "description": "Connect to a matched game and get your player role",
        "endpoint": "POST /api/v1/mcp/game/join?game_id={game_id}",
        "inputSchema": {
            "type": "object",
            "properties": {"game_id": {"type": "string"}},
            "required": ["game_id"],
        },
    },
]


def run_sandbox(host: str = "127.0.0.1", port: int = 8080, **kwargs: Any) -> None:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM (``gamebridge sandbox opengames --port N``).
    ``agents=["name", ...]`` registers agents and prints their keys; other ``kwargs`` go to
    :class:`OpenGamesSandbox`."""
    names: list[str] = list(kwargs.pop("agents", None) or [])
    sandbox = OpenGamesSandbox(host, port, **kwargs).start()

    def announce() -> None:
        url = sandbox.url
        for name in names:
            created = sandbox.add_agent(name)
            print(
                f"agent {name!r} registered: id {created['agent_id']}, API key {created['api_key']} "
                f"(shown once)"
            )
        print(
            f"Open Games sandbox listening on {url}; API at {url}{API}; house opponents: "
            f"{', '.join(HOUSE_KINDS)}; control API at {url}/sandbox (docs/opengames-sandbox.md)"
        )
        print(
            f"  register an agent:  curl -X POST {url}{API}/agents/register "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"name": "MyBot"}}\''
        )
        print(
            f'  queue a house bot:  curl -X POST {url}/sandbox/house -d \'{{"kind": "hunt-target", '
            f'"moves": true}}\''
        )

    serve_in_foreground("Open Games sandbox", announce, sandbox.stop)
