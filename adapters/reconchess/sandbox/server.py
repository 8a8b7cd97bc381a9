"""The sandbox's HTTP server: the whole seed API under ``/api/`` (HTTP basic auth) and the control API under
``/sandbox/`` (no auth; docs/reconchess-sandbox.md).

A threaded stdlib server (one thread per connection, HTTP/1.1 keep-alive): it suits the official client, which
polls ``game_status`` every 0.5 s from a ``requests.Session`` per game, and the house players, which are plain
threads. Bodies are parsed as JSON whatever their Content-Type (``RemoteGame`` posts ``data=json.dumps(...)``
without one).

Fault injection for tests: ``POST /sandbox/fail`` makes ``/api/`` answer an error status for some seconds;
``POST /sandbox/drop`` closes the connection instead of answering the next matching requests, before or after
carrying them out (a lost answer).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import chess
import reconchess
from reconchess import ChessJSONDecoder, GameHistoryEncoder

from bridge.adapters.reconchess.sandbox.core import (
    DEFAULT_INCREMENT,
    DEFAULT_SECONDS,
    Clock,
    HouseFactory,
    SandboxError,
    SandboxGame,
    SandboxState,
)
from bridge.adapters.reconchess.sandbox.house import HousePlayer, house_bots
from bridge.sandbox_http import (
    Faults,
    SandboxRequestHandler,
    TrackingHTTPServer,
    drop_rule,
    fail_for_rule,
    serve_in_foreground,
)

log = logging.getLogger("bridge.reconchess.sandbox")

Handler = Callable[["_Request"], Any]


@dataclass
class _Request:
    method: str
    path: str
    match: re.Match[str]
    body: Any
    user: str | None


class _HttpServer(TrackingHTTPServer):
    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: ReconchessSandbox
    ) -> None:
        self.sandbox = sandbox
        super().__init__(address, handler)


def _opt_int(value: Any, what: str, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SandboxError(400, f"{what} must be an integer >= {minimum} or null, not {value!r}")
    return value


def _opt_float(value: Any, what: str, default: float | None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SandboxError(400, f"{what} must be a number >= 0, not {value!r}")
    return float(value)


class _RequestHandler(SandboxRequestHandler):
    server_version = "reconchess-sandbox"
    logger = log
    server: _HttpServer

    def _handle(self, method: str) -> None:
        sandbox = self.server.sandbox
        path = self.path.split("?", 1)[0]
        length = self._content_length()
        if length < 0:
            self.send_error(400, "bad Content-Length")
            return
        raw = self.rfile.read(length) if length > 0 else b""
        drop = sandbox.faults.take_drop(method, path)
        if drop is not None and not drop.after:
            self.close_connection = True  # the request never "arrived"
            return
        status, answer = sandbox._dispatch(method, path, raw, self.headers.get("Authorization"))
        if drop is not None:
            self.close_connection = True  # carried out, but the answer is lost
            return
        data = json.dumps(answer, cls=GameHistoryEncoder).encode()
        headers = {"WWW-Authenticate": 'Basic realm="reconchess"'} if status == 401 else None
        self._reply(status, data, headers=headers)


class ReconchessSandbox:
    """A local reconchess server. ``start()`` returns self; ``url`` is its root; ``stop()`` ends everything
    (HTTP threads, house players and their engines).

    ``seconds_per_player``, ``seconds_increment``, ``reversible_moves_limit``, ``full_turn_limit``: the clock
    and draw rules of invitations made through ``/api/`` (``LocalGame``'s parameters; the control API and
    :meth:`invite` take them per invitation); ``ready_timeout``: seconds after acceptance before a game starts
    without a player who never said ready; ``version``: what ``/api/version`` answers (default: the installed
    reconchess)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seconds_per_player: float | None = DEFAULT_SECONDS,
        seconds_increment: float = DEFAULT_INCREMENT,
        reversible_moves_limit: int | None = 100,
        full_turn_limit: int | None = None,
        ready_timeout: float = 60.0,
        stockfish: str | None = None,
        version: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.version = version or reconchess.__version__
        self._stop = threading.Event()
        self._house_threads: list[HousePlayer] = []
        self._house_lock = threading.Lock()
        clock = Clock(seconds_per_player, seconds_increment, reversible_moves_limit, full_turn_limit)
        self.state = SandboxState(
            clock=clock,
            ready_timeout=ready_timeout,
            house=house_bots(stockfish),
            start_house=self._start_house,
        )
        self.faults = Faults("/api/", log)
        self.requests = 0
        self._httpd: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._routes: list[tuple[str, re.Pattern[str], bool, Handler]] = []
        self._build_routes()

    # --- lifecycle -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ReconchessSandbox:
        self._httpd = _HttpServer((self.host, self.port), _RequestHandler, self)
        self.port = self._httpd.server_address[1]
        ticker = threading.Thread(target=self._tick, name="rbc-sandbox-clock", daemon=True)
        self._threads = [self._httpd.serve_in_thread("rbc-sandbox-http"), ticker]
        ticker.start()
        log.info("reconchess sandbox listening on %s (reconchess %s)", self.url, self.version)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.stop()
        for t in self._threads:
            t.join(5)
        with self._house_lock:
            houses = list(self._house_threads)
        for h in houses:
            h.join(10)

    def __enter__(self) -> ReconchessSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.state.tick()
            except Exception:
                log.exception("sandbox clock tick failed")

    def _start_house(self, game: SandboxGame, color: bool, factory: HouseFactory) -> None:
        player = HousePlayer(game, color, factory, self._stop)
        with self._house_lock:
            self._house_threads = [h for h in self._house_threads if h.is_alive()]
            self._house_threads.append(player)
        player.start()

    # --- helpers for tests and scripts ----------------------------------------------------------------------
    def add_user(self, username: str, password: str) -> dict[str, Any]:
        return self.state.add_user(username, password).public("max_games")

    def invite(
        self,
        user: str,
        opponent: str = "random",
        color: bool | None = True,
        seconds_per_player: float | None = DEFAULT_SECONDS,
        seconds_increment: float = DEFAULT_INCREMENT,
        reversible_moves_limit: int | None = 100,
        full_turn_limit: int | None = None,
    ) -> dict[str, Any]:
        """An invitation from ``opponent`` (a house player or any user) to ``user``, who plays ``color``
        (True white, False black, None random)."""
        return self._control_invite(
            {
                "user": user,
                "opponent": opponent,
                "color": color,
                "seconds_per_player": seconds_per_player,
                "seconds_increment": seconds_increment,
                "reversible_moves_limit": reversible_moves_limit,
                "full_turn_limit": full_turn_limit,
            }
        )

    def game(self, game_id: int) -> dict[str, Any]:
        return self.state.game(game_id).snapshot()

    def games(self) -> list[dict[str, Any]]:
        return [g.snapshot() for g in list(self.state.games.values())]

    def fail(self, seconds: float, status: int = 500, match: str = "") -> None:
        self.faults.fail(seconds, status, match)

    def drop(self, match: str = "", count: int = 1, after: bool = True) -> None:
        self.faults.drop(match, count, after)

    # --- dispatch -------------------------------------------------------------------------------------------
    def _dispatch(self, method: str, path: str, raw: bytes, authorization: str | None) -> tuple[int, Any]:
        self.requests += 1
        try:
            failing = self.faults.failing(method, path)
            if failing is not None:
                status = failing[0]
                return status, {"error": f"sandbox: failing on purpose with HTTP {status} (POST /sandbox/fail)"}
            for route_method, pattern, needs_auth, handler in self._routes:
                match = pattern.fullmatch(path)
                if match is None or route_method != method:
                    continue
                user = self._authenticate(authorization) if needs_auth else None
                body = self._body(raw)
                return 200, handler(_Request(method, path, match, body, user))
            if any(p.fullmatch(path) for _, p, _, _ in self._routes):
                return 405, {"error": f"{method} is not allowed on {path}"}
            return 404, {"error": f"no such endpoint: {method} {path}"}
        except SandboxError as exc:
            return exc.status, {"error": exc.message}
        except Exception:
            log.exception("sandbox: %s %s failed", method, path)
            return 500, {"error": "internal sandbox error (see its log)"}

    def _authenticate(self, authorization: str | None) -> str:
        if not authorization or not authorization.startswith("Basic "):
            raise SandboxError(401, "authentication required (HTTP basic auth)")
        try:
            username, _, password = base64.b64decode(authorization[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise SandboxError(401, "malformed basic auth header") from None
        return self.state.authenticate(username, password).username

    @staticmethod
    def _body(raw: bytes) -> Any:
        if not raw.strip():
            return {}
        try:
            return json.loads(raw, cls=ChessJSONDecoder)
        except (ValueError, KeyError, TypeError):
            raise SandboxError(400, "malformed request: the body is not valid JSON") from None

    def _build_routes(self) -> None:
        def route(method: str, pattern: str, handler: Handler, auth: bool = True) -> None:
            self._routes.append((method, re.compile(pattern), auth, handler))

        route("GET", r"/api/version", lambda r: {"version": self.version}, auth=False)
        route("GET", r"/api/users/?", lambda r: {"usernames": self.state.active_usernames()}, auth=False)
        route("POST", r"/api/users/?", self._register, auth=False)
        route("POST", r"/api/users/me", lambda r: self._me(r).public("max_games"))
        route("POST", r"/api/users/me/max_games", self._set_max_games)
        route("POST", r"/api/users/me/ranked", self._set_ranked)
        route("GET", r"/api/users/me/version", lambda r: self._me(r).public("version"))
        route("POST", r"/api/users/me/version", self._new_version)
        route(
            "GET",
            r"/api/invitations/?",
            lambda r: {"invitations": self.state.pending_invitations(self._u(r))},
        )
        route("POST", r"/api/invitations/?", self._invite)
        route(
            "POST",
            r"/api/invitations/(\d+)",
            lambda r: {"game_id": self.state.accept(self._u(r), int(r.match.group(1)))},
        )
        route("POST", r"/api/invitations/(\d+)/finish", self._finish)
        for method, name in GAME_ENDPOINTS:
            route(method, rf"/api/games/(\d+)/{name}", self._game_endpoint(name))
        route("GET", r"/sandbox/?", lambda r: self._control_help(), auth=False)
        route(
            "GET",
            r"/sandbox/users",
            lambda r: {
                "users": [
                    u.public("max_games", "ranked", "version") | {"house": bool(u.house)}
                    for u in list(self.state.users.values())
                ]
            },
            auth=False,
        )
        route(
            "POST",
            r"/sandbox/users",
            lambda r: self.state.add_user(
                self._str(r.body, "username"), self._str(r.body, "password")
            ).public("max_games"),
            auth=False,
        )
        route(
            "GET",
            r"/sandbox/invitations",
            lambda r: {"invitations": [i.public() for i in list(self.state.invitations.values())]},
            auth=False,
        )
        route("POST", r"/sandbox/invitations", lambda r: self._control_invite(r.body), auth=False)
        route("GET", r"/sandbox/games", lambda r: {"games": self.games()}, auth=False)
        route("GET", r"/sandbox/games/(\d+)", self._control_game, auth=False)
        route("POST", r"/sandbox/fail", self._control_fail, auth=False)
        route("POST", r"/sandbox/drop", self._control_drop, auth=False)

    # --- /api/ handlers -------------------------------------------------------------------------------------
    @staticmethod
    def _u(request: _Request) -> str:
        assert request.user is not None
        return request.user

    def _me(self, request: _Request) -> Any:
        return self.state.users[self._u(request)]

    @staticmethod
    def _obj(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SandboxError(400, "malformed request: the body must be a JSON object")
        return body

    def _str(self, body: Any, key: str) -> str:
        value = self._obj(body).get(key)
        if not isinstance(value, str) or not value:
            raise SandboxError(400, f"malformed request: {key!r} must be a non-empty string")
        return value

    def _register(self, request: _Request) -> Any:
        user = self.state.add_user(self._str(request.body, "username"), self._str(request.body, "password"))
        return {"id": user.id, "username": user.username}

    def _set_max_games(self, request: _Request) -> Any:
        value = self._obj(request.body).get("max_games")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SandboxError(400, "malformed request: max_games must be an integer >= 0")
        user = self._me(request)
        user.max_games = value
        return user.public("max_games")

    def _set_ranked(self, request: _Request) -> Any:
        value = self._obj(request.body).get("ranked")
        if not isinstance(value, bool):
            raise SandboxError(400, "malformed request: ranked must be true or false")
        user = self._me(request)
        user.ranked = value
        return user.public("ranked")

    def _new_version(self, request: _Request) -> Any:
        user = self._me(request)
        user.version += 1
        return user.public("version")

    def _invite(self, request: _Request) -> Any:
        body = self._obj(request.body)
        opponent = self._str(body, "opponent")
        color = body.get("color")
        if not isinstance(color, bool):
            raise SandboxError(400, "malformed request: color must be true (white) or false (black)")
        invitation = self.state.invite(self._u(request), opponent, color)
        return {"game_id": invitation.game_id}

    def _finish(self, request: _Request) -> Any:
        self.state.finish(self._u(request), int(request.match.group(1)))
        return {}

    def _game_endpoint(self, name: str) -> Handler:
        def handle(request: _Request) -> Any:
            game = self.state.game(int(request.match.group(1)))
            color = game.color_of(self._u(request))
            body = request.body if isinstance(request.body, dict) else {}
            if name == "color":
                return {"color": color}
            if name == "starting_board":
                return {"board": chess.Board(game.starting_fen)}
            if name == "opponent_name":
                return {"opponent_name": game.names[not color]}
            if name == "ready":
                game.mark_ready(color)
                return {}
            if name == "sense_actions":
                return {"sense_actions": game.sense_actions(color)}
            if name == "move_actions":
                return {"move_actions": game.move_actions(color)}
            if name == "seconds_left":
                return {"seconds_left": game.seconds_left(color)}
            if name == "opponent_move_results":
                return {"opponent_move_results": game.opponent_move_results(color)}
            if name == "sense":
                if not isinstance(request.body, dict) or "square" not in request.body:
                    raise SandboxError(400, 'malformed request: expected {"square": SQUARE or null}')
                return {"sense_result": game.sense(color, body["square"])}
            if name == "move":
                if not isinstance(request.body, dict) or "requested_move" not in request.body:
                    raise SandboxError(400, 'malformed request: expected {"requested_move": MOVE or null}')
                return {"move_result": list(game.move(color, body["requested_move"]))}
            if name == "end_turn":
                game.end_turn(color)
                return {}
            if name in ("is_over", "is_my_turn", "game_status"):
                my_turn, over = game.status(color)
                answer = {"is_my_turn": my_turn, "is_over": over}
                return answer if name == "game_status" else {name: answer[name]}
            if name == "resign":
                game.resign(color)
                return {}
            if name == "error_resign":
                game.error_resign(color)
                return {}
            if name == "winner_color":
                return {"winner_color": game.winner_color()}
            if name == "win_reason":
                return {"win_reason": game.win_reason()}
            if name == "game_history":
                return {"game_history": game.game_history()}
            raise SandboxError(404, f"no such game endpoint: {name}")

        return handle

    # --- /sandbox/ handlers ---------------------------------------------------------------------------------
    def _control_help(self) -> Any:
        return {
            "sandbox": "reconchess",
            "version": self.version,
            "url": self.url,
            "house": sorted(self.state.house),
            "docs": "docs/reconchess-sandbox.md",
            "endpoints": [
                "GET/POST /sandbox/users",
                "GET/POST /sandbox/invitations",
                "GET /sandbox/games",
                "GET /sandbox/games/ID",
                "POST /sandbox/fail",
                "POST /sandbox/drop",
            ],
        }

    def _control_invite(self, body: Any) -> dict[str, Any]:
        body = self._obj(body)
        user = self._str(body, "user")
        opponent = body.get("opponent", "random")
        if not isinstance(opponent, str) or opponent not in self.state.users:
            raise SandboxError(404, f"no user named {opponent!r} (house players: {sorted(self.state.house)})")
        if user not in self.state.users:
            raise SandboxError(404, f"no user named {user!r}; create it with POST /sandbox/users")
        color = body.get("color", True)
        if color in ("white", "black"):
            color = color == "white"
        elif color is None or color == "random":
            color = random.random() < 0.5
        if not isinstance(color, bool):
            raise SandboxError(
                400, 'color must be true/"white", false/"black" or null/"random" (the user\'s colour)'
            )
        clock = Clock(
            seconds_per_player=_opt_float(
                body.get("seconds_per_player"), "seconds_per_player", DEFAULT_SECONDS
            ),
            seconds_increment=_opt_float(
                body.get("seconds_increment"), "seconds_increment", DEFAULT_INCREMENT
            )
            or 0.0,
            reversible_moves_limit=_opt_int(
                body.get("reversible_moves_limit", 100), "reversible_moves_limit", 1
            ),
            full_turn_limit=_opt_int(body.get("full_turn_limit"), "full_turn_limit", 1),
        )
        if "seconds_per_player" in body and body["seconds_per_player"] is None:
            clock.seconds_per_player = None  # explicitly unlimited
        invitation = self.state.invite(opponent, user, not color, clock)
        return {
            "invitation_id": invitation.id,
            "game_id": invitation.game_id,
            "user": user,
            "opponent": opponent,
            "user_color": "white" if color else "black",
        }

    def _control_game(self, request: _Request) -> Any:
        game = self.state.game(int(request.match.group(1)))
        snap = game.snapshot()
        history = game.game_history()
        snap["game_history"] = json.loads(json.dumps(history, cls=GameHistoryEncoder)) if history else None
        return snap

    def _control_fail(self, request: _Request) -> Any:
        try:
            rule = fail_for_rule(request.body)
        except ValueError as exc:
            raise SandboxError(400, str(exc)) from None
        self.fail(rule.seconds, rule.status, rule.match)
        return {"failing_for": rule.seconds, "status": rule.status, "match": rule.match}

    def _control_drop(self, request: _Request) -> Any:
        try:
            rule = drop_rule(request.body, "POST /api/games/")
        except ValueError as exc:
            raise SandboxError(400, str(exc)) from None
        self.drop(rule.match, rule.count, rule.after)
        return {"match": rule.match, "count": rule.count, "after": rule.after}

GAME_ENDPOINTS: list[tuple[str, str]] = [
    ("GET", "color"),
    ("GET", "starting_board"),
    ("GET", "opponent_name"),
    ("POST", "ready"),
    ("GET", "sense_actions"),
    ("GET", "move_actions"),
    ("GET", "seconds_left"),
    ("GET", "opponent_move_results"),
    ("POST", "sense"),
    ("POST", "move"),
    ("POST", "end_turn"),
    ("GET", "is_over"),
    ("GET", "is_my_turn"),
    ("GET", "game_status"),
    ("POST", "resign"),
    ("POST", "error_resign"),
    ("GET", "winner_color"),
    ("GET", "win_reason"),
    ("GET", "game_history"),
]


def run_sandbox(host: str = "127.0.0.1", port: int = 8080, **kwargs: Any) -> None:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM (``gamebridge sandbox reconchess``).
    ``users={name: password}`` pre-registers accounts; other ``kwargs`` go to :class:`ReconchessSandbox`."""
    users: dict[str, str] = kwargs.pop("users", None) or {}
    sandbox = ReconchessSandbox(host, port, **kwargs).start()

    def announce() -> None:
        for name, password in users.items():
            sandbox.add_user(name, password)
            print(f"user {name!r} registered")
        url = sandbox.url
        print(
            f"reconchess sandbox (reconchess {sandbox.version}) listening on {url}; house players: "
            f"{', '.join(sorted(sandbox.state.house))}; control API at {url}/sandbox "
            f"(docs/reconchess-sandbox.md)"
        )
        print(
            f'  create a user:      curl -X POST {url}/sandbox/users -d \'{{"username": "mybot", '
            f'"password": "secret"}}\''
        )
        print(
            f'  invite it:          curl -X POST {url}/sandbox/invitations -d \'{{"user": "mybot", '
            f'"opponent": "trout", "color": "white", "seconds_per_player": 300}}\''
        )

    serve_in_foreground("reconchess sandbox", announce, sandbox.stop)
