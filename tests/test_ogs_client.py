"""The OGS client adapter over real sockets on 127.0.0.1, over BOTH transports (plain WebSocket and
socket.io), against:

- ``FakeOgs`` below: a tiny scriptable server (aiohttp + python-socketio) that speaks the protocol of
  docs/ogs-wire.md and can misbehave on purpose (malformed messages, silent pongs, refused keys, drops);
- the project's OGS sandbox (``bridge.adapters.ogs.sandbox``) when it is available, for the main flows.

A recording Host stands in for the daemon (no engine needed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import socketio
from aiohttp import WSMsgType, web
from helpers import wait_for as wait_until

from bridge.adapters.ogs.client import OgsAdapter
from bridge.adapters.ogs.config import OgsServerConfig
from bridge.config import DaemonConfig
from bridge.errors import FatalAdapterError
from bridge.games.go_events import ActionRejected, ChatReceived, GameEvent, GoActions, StateUpdate, UndoRequested
from bridge.games.gotypes import Color, GoState

BOT_ID, BOT_NAME, BOT_KEY = 42, "testbot", "s3cret-api-key-4242"
HUMAN_ID = 77
TRANSPORTS = ["websocket", "socketio"]


# --- a tiny OGS server ------------------------------------------------------------------------------------
class FakeOgs:
    """Speaks OGS's realtime vocabulary over both transports and the two challenge REST calls.

    Thread-safe test API: ``push(event, data)``, ``drop()``, ``wait_for(command)``, ``commands``, ``rest``.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.commands: list[tuple[str, Any]] = []  # (command, data) as received, both transports
        self.rest: list[tuple[str, str, str, str]] = []  # (method, path, content type, body)
        self.games: dict[int, dict[str, Any]] = {}
        self.answer_pings = True
        self.refuse_auth = False
        self.echo_delay = 0.0  # seconds the server takes before it echoes a game/move
        self.auth_count = 0
        self._conns: dict[str, Any] = {}  # id -> ("ws", WebSocketResponse) | ("sio", sid)
        self._cond = threading.Condition()
        self.sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
        self.sio.on("connect", self._sio_connect)
        self.sio.on("disconnect", self._sio_disconnect)
        self.sio.on("*", self._sio_any)
        self.app = web.Application()
        self.sio.attach(self.app, socketio_path="socket.io")
        self.app.router.add_get("/", self._ws_handler)
        self.app.router.add_post("/api/v1/me/challenges/{cid}/accept", self._rest_handler)
        self.app.router.add_post("/api/v1/me/challenges/{cid}", self._rest_handler)
        self.app.router.add_post("/oauth2/token/", self._oauth_token)
        self.app.router.add_get("/api/v1/ui/config", self._ui_config)
        self.rest_auth: list[str] = []  # the Authorization header of each challenge REST call
        self.fail_accepts: set[int] = set()  # challenge ids whose accept answers 404 (no longer open)
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-ogs", daemon=True)
        self.port = 0

    # lifecycle
    def start(self) -> FakeOgs:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            await self._drop_all()
            await self.runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:  # socket.io's service and ping tasks
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()  # its self-pipe (a socket pair) would outlive the test

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # test API
    def push(self, event: str, data: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._broadcast(event, data), self.loop).result(5)

    def push_raw(self, text: str) -> None:
        """A raw text frame to plain-WebSocket clients (for non-JSON garbage)."""
        async def _go() -> None:
            for kind, conn in list(self._conns.values()):
                if kind == "ws":
                    await conn.send_str(text)

        asyncio.run_coroutine_threadsafe(_go(), self.loop).result(5)

    def drop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._drop_all(), self.loop).result(5)

    def connections(self) -> int:
        return len(self._conns)

    def wait_for(self, command: str, count: int = 1, timeout: float = 10.0,
                 where: Callable[[Any], bool] = lambda d: True) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [d for c, d in self.commands if c == command and where(d)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c for c, _ in self.commands]
                    raise AssertionError(f"server never got {count} x {command!r}; got {seen}")
                self._cond.wait(left)

    def wait_rest(self, count: int, timeout: float = 10.0) -> list[tuple[str, str, str, str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.rest) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} REST calls, got {self.rest}")
                self._cond.wait(left)
            return list(self.rest)

    def add_game(self, game_id: int, **over: Any) -> dict[str, Any]:
        now = int(time.time() * 1000)
        gd: dict[str, Any] = {
            "game_id": game_id, "width": 9, "height": 9, "komi": 6.5, "handicap": 0, "rules": "japanese",
            "phase": "play", "initial_player": "black", "initial_state": {"black": "", "white": ""},
            "free_handicap_placement": False, "ranked": False, "moves": [],
            "players": {"black": {"id": BOT_ID, "username": BOT_NAME},
                        "white": {"id": HUMAN_ID, "username": "human"}},
            "time_control": {"system": "fischer", "time_control": "fischer", "speed": "live",
                             "initial_time": 300, "time_increment": 10, "max_time": 600,
                             "pause_on_weekends": False},
            "clock": {"game_id": game_id, "current_player": BOT_ID, "black_player_id": BOT_ID,
                      "white_player_id": HUMAN_ID, "last_move": now, "expiration": now + 300_000,
                      "black_time": {"thinking_time": 300, "skip_bonus": False},
                      "white_time": {"thinking_time": 300, "skip_bonus": False}},
        }
        gd.update(over)
        self.games[game_id] = gd
        return gd

    def play(self, game_id: int, x: int, y: int) -> None:
        """A move by the human: recorded, pushed as game/ID/move + clock."""
        asyncio.run_coroutine_threadsafe(self._apply_move(game_id, [x, y, 1000]), self.loop).result(5)

    # internals
    def _record(self, command: str, data: Any) -> None:
        with self._cond:
            self.commands.append((command, data))
            self._cond.notify_all()

    async def _broadcast(self, event: str, data: Any) -> None:
        for kind, conn in list(self._conns.values()):
            await self._emit(kind, conn, event, data)

    async def _emit(self, kind: str, conn: Any, event: str, data: Any) -> None:
        try:
            if kind == "ws":
                await conn.send_str(json.dumps([event, data]))
            else:
                await self.sio.emit(event, data, to=conn)
        except Exception:
            pass

    async def _drop_all(self) -> None:
        for key, (kind, conn) in list(self._conns.items()):
            self._conns.pop(key, None)
            if kind == "ws":
                await conn.close()
            else:
                await self.sio.disconnect(conn)

    async def _apply_move(self, game_id: int, move: list[int]) -> None:
        gd = self.games[game_id]
        gd["moves"].append(move)
        number = len(gd["moves"])
        await self._broadcast(f"game/{game_id}/move", {"game_id": game_id, "move_number": number, "move": move})
        clock = dict(gd["clock"])
        players = gd["players"]
        first = gd.get("initial_player", "black")
        second = "white" if first == "black" else "black"
        to_move = players[second if number % 2 else first]["id"]
        clock.update(current_player=to_move, last_move=int(time.time() * 1000))
        gd["clock"] = clock
        await self._broadcast(f"game/{game_id}/clock", clock)

    async def _handle(self, kind: str, conn: Any, command: str, data: Any) -> Any:
        """Returns the reply (None: no reply)."""
        self._record(command, data)
        if command == "net/ping":
            if self.answer_pings:
                await self._emit(kind, conn, "net/pong", {"client": data["client"],
                                                          "server": int(time.time() * 1000) - 1500})
            return None
        if command == "authenticate":
            self.auth_count += 1
            oauth_ok = data.get("auth") == "chat-auth-xyz" and data.get("player_id") == BOT_ID \
                and data.get("jwt") == "user-jwt-xyz"
            if self.refuse_auth or (data.get("bot_apikey") != BOT_KEY and not oauth_ok):
                return None
            return {"id": BOT_ID, "username": BOT_NAME}
        if command == "game/connect":
            gd = self.games.get(int(data["game_id"]))
            if gd is not None:
                await self._emit(kind, conn, f"game/{gd['game_id']}/gamedata", gd)
            return None
        if command == "game/move":
            gid = int(data["game_id"])
            text = data["move"]
            move = [-1, -1, 500] if text == ".." else [ord(text[0]) - 97, ord(text[1]) - 97, 500]
            if self.echo_delay:
                asyncio.get_running_loop().call_later(self.echo_delay, asyncio.ensure_future,
                                                      self._apply_move(gid, move))
            else:
                await self._apply_move(gid, move)
            return None
        return None

    async def _ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        key = f"ws-{id(ws)}"
        self._conns[key] = ("ws", ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                frame = json.loads(msg.data)
                reply = await self._handle("ws", ws, frame[0], frame[1] if len(frame) > 1 else None)
                if len(frame) > 2:
                    await ws.send_str(json.dumps([frame[2], reply, None]))
        finally:
            self._conns.pop(key, None)
        return ws

    async def _sio_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        self._conns[f"sio-{sid}"] = ("sio", sid)

    async def _sio_disconnect(self, sid: str, *args: Any) -> None:
        self._conns.pop(f"sio-{sid}", None)

    async def _sio_any(self, event: str, sid: str, data: Any = None) -> Any:
        return await self._handle("sio", sid, event, data)

    async def _rest_handler(self, request: web.Request) -> web.Response:
        body = await request.text()
        with self._cond:
            self.rest_auth.append(request.headers.get("Authorization", ""))
            self.rest.append((request.method, request.path, request.content_type, body))
            self._cond.notify_all()
        if request.path.endswith("/accept") and int(request.match_info["cid"]) in self.fail_accepts:
            return web.json_response({"detail": "challenge is no longer open"}, status=404)
        return web.json_response({"success": True})

    async def _oauth_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        good = {"grant_type": "password", "username": BOT_NAME, "password": "pw-123456", "client_id": "app-1",
                "client_secret": "app-secret-1"}
        if {k: form.get(k) for k in good} != good:
            return web.json_response({"error": "invalid_grant"}, status=401)
        return web.json_response({"access_token": "tok-abcdef", "refresh_token": "ref-abcdef", "expires_in": 36000})

    async def _ui_config(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer tok-abcdef":
            return web.json_response({"detail": "no"}, status=401)
        return web.json_response({"chat_auth": "chat-auth-xyz", "notification_auth": "n", "user_jwt": "user-jwt-xyz",
                                  "user": {"id": BOT_ID, "username": BOT_NAME}})


# --- a recording host -----------------------------------------------------------------------------------
class Inbox:
    def __init__(self, host: RecordingHost, game_id: str, color: Color, actions: GoActions) -> None:
        self.host, self.game_id, self.color, self.actions = host, game_id, color, actions
        self.events: list[GameEvent] = []
        self.done = False

    def post(self, event: GameEvent) -> None:
        with self.host.cond:
            self.events.append(event)
            self.host.cond.notify_all()

    @property
    def finished(self) -> bool:
        return self.done

    def states(self) -> list[GoState]:
        with self.host.cond:
            return [e.state for e in self.events if isinstance(e, StateUpdate)]


class RecordingHost:
    def __init__(self, capacity: int = 3) -> None:
        self.capacity = capacity
        self.cond = threading.Condition()
        self.inboxes: dict[str, Inbox] = {}
        self.opened: list[str] = []

    def open_game(self, game_id: str, my_color: Color, actions: GoActions) -> Inbox:
        with self.cond:
            self.opened.append(game_id)
            inbox = self.inboxes.get(game_id)
            if inbox is None or inbox.done:
                inbox = self.inboxes[game_id] = Inbox(self, game_id, my_color, actions)
            inbox.actions = actions
            self.cond.notify_all()
            return inbox

    def active_games(self) -> int:
        with self.cond:
            return sum(1 for i in self.inboxes.values() if not i.done)

    def can_accept_game(self) -> bool:
        return self.active_games() < self.capacity

    def wait(self, pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = pred()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self.cond.wait(min(left, 0.05))

    def wait_state(self, game_id: str, pred: Callable[[GoState], bool], timeout: float = 10.0) -> GoState:
        def find() -> GoState | None:
            inbox = self.inboxes.get(game_id)
            if inbox is None:
                return None
            for event in reversed(inbox.events):
                if isinstance(event, StateUpdate) and pred(event.state):
                    return event.state
            return None

        return self.wait(find, timeout, f"a matching state of game {game_id}")


# --- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture
def fake() -> Iterator[FakeOgs]:
    server = FakeOgs().start()
    yield server
    server.stop()


@pytest.fixture
def api_key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TEST_OGS_KEY", BOT_KEY)
    return "TEST_OGS_KEY"


def server_config(url: str, transport: str, env: str = "TEST_OGS_KEY", **over: Any) -> OgsServerConfig:
    data: dict[str, Any] = {"kind": "ogs", "url": url, "transport": transport, "username": BOT_NAME,
                            "api_key": {"env": env}, "ping_interval": 1.0, "reconnect_min_delay": 0.05,
                            "reconnect_max_delay": 0.5, "request_timeout": 5.0,
                            "accept": {"board_sizes": [9, 13, 19]}}
    data.update(over)
    return OgsServerConfig.model_validate(data)


class Running:
    def __init__(self, adapter: OgsAdapter, host: RecordingHost, thread: threading.Thread,
                 stop: threading.Event) -> None:
        self.adapter, self.host, self.thread, self.stop = adapter, host, thread, stop


@pytest.fixture
def start_adapter(api_key_env: str) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(url: str, transport: str, host: RecordingHost | None = None, max_games: int | None = None,
              **over: Any) -> Running:
        """``max_games``: the daemon's ``max_concurrent_games`` as the adapter reads it (none: no cap of its own)."""
        config = server_config(url, transport, **over)
        daemon = SimpleNamespace(daemon=DaemonConfig(max_concurrent_games=max_games)) if max_games else None
        adapter = OgsAdapter(config, daemon)
        host = host or RecordingHost()
        stop = threading.Event()
        thread = threading.Thread(target=adapter.run, args=(host, stop), name="adapter-under-test", daemon=True)
        thread.start()
        r = Running(adapter, host, thread, stop)
        running.append(r)
        return r

    yield start
    for r in running:
        r.stop.set()
    for r in running:
        r.thread.join(10)
        assert not r.thread.is_alive(), "the adapter did not stop when asked"


def challenge(cid: int, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": f"n{cid}", "type": "challenge", "challenge_id": cid, "game_id": 9000 + cid,
        "user": {"id": HUMAN_ID, "username": "human", "ranking": 20, "professional": False},
        "rules": "japanese", "ranked": False, "handicap": 0, "komi": None, "width": 9, "height": 9,
        "challenger_color": "white",
        "time_control": {"system": "fischer", "time_control": "fischer", "speed": "live", "initial_time": 300,
                         "time_increment": 10, "max_time": 600, "pause_on_weekends": False},
    }
    data.update(over)
    return data


# --- tests against the fake server --------------------------------------------------------------------------
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_authenticates_and_announces_config_and_status(fake: FakeOgs, start_adapter: Callable[..., Running],
                                                      transport: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    start_adapter(fake.url, transport)
    auth = fake.wait_for("authenticate")[0]
    assert auth == {"jwt": "", "bot_username": BOT_NAME, "bot_apikey": BOT_KEY}
    config = fake.wait_for("bot/config")[0]
    assert config["username"] == BOT_NAME and config["bot_id"] == BOT_ID and config["_config_version"] == 2
    assert BOT_KEY not in json.dumps(config)
    status = fake.wait_for("bot/status")[0]
    assert status == {"ongoing_blitz_count": 0, "ongoing_rapid_count": 0, "ongoing_live_count": 0,
                      "ongoing_correspondence_count": 0}
    fake.wait_for("net/ping")
    assert BOT_KEY not in caplog.text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_accepts_a_matching_challenge_and_rejects_another(fake: FakeOgs, start_adapter: Callable[..., Running],
                                                          transport: str) -> None:
    start_adapter(fake.url, transport)
    fake.wait_for("bot/config")
    fake.push("notification", challenge(1))
    fake.push("notification", challenge(2, width=7, height=7))
    fake.push("notification", challenge(2, width=7, height=7))  # a duplicate is handled once
    calls = fake.wait_rest(2)
    time.sleep(0.2)
    assert len(fake.rest) == 2
    by_path = {path: (ctype, body) for _, path, ctype, body in calls}
    ctype, body = by_path["/api/v1/me/challenges/1/accept"]
    assert ctype == "application/x-www-form-urlencoded"
    assert f"apikey={BOT_KEY}" in body and f"bot_id={BOT_ID}" in body
    ctype, body = by_path["/api/v1/me/challenges/2"]
    assert ctype == "application/json"
    rejection = json.loads(body)
    assert rejection["delete"] is True and rejection["bot_id"] == BOT_ID
    assert rejection["rejection_details"]["rejection_code"] == "board_size_not_allowed"
    assert rejection["message"] == rejection["rejection_details"]["message"]
    # after the accept, the adapter follows the challenge's game
    fake.wait_for("game/connect", where=lambda d: d["game_id"] == 9001)


def _follow(fake: FakeOgs, r: Running, game_id: int, until: Callable[[GoState], bool] = lambda s: True) -> GoState:
    """Once the adapter is up, tell it of ``game_id`` (an ``active_game`` in play) and wait for a state of it that
    satisfies ``until``."""
    fake.wait_for("bot/config")
    fake.push("active_game", {"id": game_id, "phase": "play"})
    return r.host.wait_state(str(game_id), until)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_game_state_moves_and_actions(fake: FakeOgs, start_adapter: Callable[..., Running], transport: str) -> None:
    r = start_adapter(fake.url, transport)
    fake.add_game(500, handicap=2, initial_player="white", initial_state={"black": "gccg", "white": ""},
                  komi=0.5, clock={**fake.add_game(0)["clock"], "current_player": HUMAN_ID,
                                   "last_move": int(time.time() * 1000) - 5000})
    fake.wait_for("bot/config")
    fake.push("active_game", {"id": 500, "phase": "play", "black": {"id": BOT_ID}, "white": {"id": HUMAN_ID}})
    state = r.host.wait_state("500", lambda s: True)
    s = state.settings
    assert (s.width, s.height, s.komi, s.rules, s.my_color, s.handicap) == (9, 9, 0.5, "japanese", "black", 2)
    assert s.initial_black == ((6, 2), (2, 6)) and s.initial_player == "white" and not s.free_handicap
    assert s.time_control.system == "fischer" and s.time_control.initial_time == 300
    assert state.to_move == "white" and state.sync_id == 1 and state.moves == ()
    # the white clock was corrected for the ~5 s used since last_move and the server's 1.5 s lag
    assert state.clock is not None and state.clock.white is not None
    assert 292.0 < state.clock.white.thinking_time < 296.5
    fake.play(500, 4, 4)
    state = r.host.wait_state("500", lambda st: len(st.moves) == 1 and st.clock is not None
                              and st.clock.to_move == "black")
    assert state.moves == ((4, 4),) and state.to_move == "black"
    inbox = r.host.inboxes["500"]
    inbox.actions.play((2, 2))
    inbox.actions.chat("hello")
    move = fake.wait_for("game/move")[0]
    assert move == {"game_id": 500, "move": "cc"}
    # the chat follows our move, so it is posted at our move (2) whether or not the server has echoed the move yet
    assert fake.wait_for("game/chat")[0] == {"game_id": 500, "type": "main", "move_number": 2, "body": "hello"}
    state = r.host.wait_state("500", lambda st: len(st.moves) == 2)
    assert state.moves == ((4, 4), (2, 2))
    inbox.actions.play(None)
    assert fake.wait_for("game/move", 2)[1]["move"] == ".."
    fake.wait_for("bot/status", where=lambda d: d["ongoing_live_count"] == 1)


@pytest.mark.parametrize("echo_delay", [0.0, 0.5])
def test_a_chat_after_our_move_is_posted_at_our_move_before_and_after_the_echo(
        fake: FakeOgs, start_adapter: Callable[..., Running], echo_delay: float) -> None:
    """CI saw move_number 2 where the test asked 1: the chat's number was read from the moves the server had echoed
    so far, so it depended on whether the echo of our move beat the chat. It is now our move's number either way, and
    the number of the moves on the board again once an undo takes our move back."""
    fake.echo_delay = echo_delay
    r = start_adapter(fake.url, "websocket")
    fake.add_game(510)
    _follow(fake, r, 510, lambda s: s.sync_id == 1)
    inbox = r.host.inboxes["510"]
    inbox.actions.play((4, 4))
    inbox.actions.chat("first")
    assert fake.wait_for("game/chat")[0]["move_number"] == 1
    r.host.wait_state("510", lambda s: len(s.moves) == 1)
    fake.play(510, 2, 2)
    r.host.wait_state("510", lambda s: len(s.moves) == 2)
    inbox.actions.chat("second")  # no move of ours in flight: the last move on the board
    assert fake.wait_for("game/chat", 2)[1]["move_number"] == 2
    del fake.games[510]["moves"][:]  # both moves taken back (the adapter reloads the game after an undo)
    seen = len(inbox.events)
    fake.push("game/510/undo_accepted", {"move_number": 1, "undo_move_count": 2})
    r.host.wait(lambda: sum(isinstance(e, StateUpdate) and not e.state.moves for e in inbox.events[seen:]) >= 2)
    inbox.actions.chat("third")
    assert fake.wait_for("game/chat", 3)[2]["move_number"] == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_drop_reconnect_resumes_without_duplicate_moves(fake: FakeOgs, start_adapter: Callable[..., Running],
                                                        transport: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    r = start_adapter(fake.url, transport)
    fake.add_game(600)
    _follow(fake, r, 600, lambda s: s.sync_id == 1)
    inbox = r.host.inboxes["600"]
    inbox.actions.play((4, 4))
    r.host.wait_state("600", lambda s: len(s.moves) == 1)
    fake.play(600, 2, 2)
    r.host.wait_state("600", lambda s: len(s.moves) == 2)
    fake.drop()
    # while we are away the human plays again
    fake.games[600]["moves"].append([6, 6, 900])
    fake.wait_for("authenticate", 2, timeout=15)
    state = r.host.wait_state("600", lambda s: s.sync_id == 2)
    assert state.moves == ((4, 4), (2, 2), (6, 6))
    # replayed move events (as servers do after a reconnect) are ignored: no duplicates
    for n, mv in enumerate(fake.games[600]["moves"], start=1):
        fake.push("game/600/move", {"game_id": 600, "move_number": n, "move": mv})
    fake.play(600, 0, 0)  # the game goes on
    state = r.host.wait_state("600", lambda s: len(s.moves) == 4)
    assert state.moves == ((4, 4), (2, 2), (6, 6), (0, 0)) and state.sync_id == 2
    assert all(len(s.moves) <= 4 for s in inbox.states())
    assert r.host.opened.count("600") >= 1 and r.adapter.stats["drops"] == 1
    # the "lost" line is written by the adapter's thread, which the reconnection can outrun (CI saw it missing)
    r.host.wait(lambda: "connection to" in caplog.text and "lost" in caplog.text and "reconnected to" in caplog.text,
                10.0, "the drop and the reconnection in the log")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_oauth_password_flow(fake: FakeOgs, monkeypatch: pytest.MonkeyPatch, transport: str,
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OGS_PW", "pw-123456")
    monkeypatch.setenv("OGS_APP_SECRET", "app-secret-1")
    config = server_config(fake.url, transport, auth="oauth", api_key=None, client_id="app-1",
                           client_secret={"env": "OGS_APP_SECRET"}, password={"env": "OGS_PW"})
    lines = OgsAdapter(config, None).check()
    assert all(line.ok for line in lines), lines
    assert any(f"authenticated as {BOT_NAME} (id {BOT_ID})" in line.what for line in lines)
    adapter, host, stop = OgsAdapter(config, None), RecordingHost(), threading.Event()
    thread = threading.Thread(target=adapter.run, args=(host, stop), daemon=True)
    thread.start()
    try:
        auth = fake.wait_for("authenticate", 2)[1]
        assert auth == {"auth": "chat-auth-xyz", "player_id": BOT_ID, "username": BOT_NAME, "jwt": "user-jwt-xyz"}
        fake.wait_for("bot/config")
        fake.push("notification", challenge(31))
        calls = fake.wait_rest(1)
        assert calls[0][1] == "/api/v1/me/challenges/31/accept" and "apikey" not in calls[0][3]
        assert fake.rest_auth == ["Bearer tok-abcdef"]
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    for secret in ("pw-123456", "app-secret-1", "tok-abcdef", "chat-auth-xyz"):
        assert secret not in caplog.text
    monkeypatch.setenv("OGS_PW", "wrong-password")
    lines = OgsAdapter(config, None).check()
    assert len(lines) == 1 and not lines[0].ok and "OAuth login refused for testbot" in lines[0].what
    assert "wrong-password" not in lines[0].what


def test_missing_pongs_mean_a_dead_connection(fake: FakeOgs, start_adapter: Callable[..., Running]) -> None:
    fake.answer_pings = False
    started = time.monotonic()
    r = start_adapter(fake.url, "websocket", ping_interval=0.2)
    fake.wait_for("authenticate", 2, timeout=10)
    elapsed = time.monotonic() - started
    assert r.adapter.stats["drops"] >= 1
    assert elapsed >= 0.55  # not before three ping intervals without a pong


def test_bad_messages_warn_once_and_never_stop_the_adapter(fake: FakeOgs, start_adapter: Callable[..., Running],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    r = start_adapter(fake.url, "websocket")
    fake.add_game(700)
    _follow(fake, r, 700)
    fake.push_raw("this is not json")
    fake.push("game/700/move", {"game_id": 700, "move_number": "one", "move": [1, 1, 0]})
    fake.push("game/700/move", {"game_id": 700, "move_number": 1, "move": [40, 1, 0]})
    fake.push("game/700/clock", {"black_time": "plenty"})
    fake.push("game/700/phase", "lunch")
    fake.push("notification", {"type": "challenge", "challenge_id": 5, "user": "nobody"})
    fake.push("active_game", "garbage")
    fake.push("net/pong", {"client": "x"})
    fake.play(700, 3, 3)  # the game still works
    state = r.host.wait_state("700", lambda s: len(s.moves) == 1)
    assert state.moves == ((3, 3),)
    warnings = [rec.getMessage() for rec in caplog.records
                if rec.levelno == logging.WARNING and rec.name.startswith("bridge")]
    for needle in ("not JSON", "'game/700/move'", "'game/700/clock'", "'game/700/phase'", "'notification'",
                   "'active_game'", "'net/pong'"):
        assert sum(needle in w for w in warnings) >= 1, (needle, warnings)
    assert sum("'game/700/move'" in w for w in warnings) == 2
    assert r.thread.is_alive()
    # the unreadable challenge was declined without a rejection code
    calls = fake.wait_rest(1)
    assert calls[0][1] == "/api/v1/me/challenges/5" and "rejection_details" not in calls[0][3]


def test_game_events_undo_chat_errors_and_the_end(fake: FakeOgs, start_adapter: Callable[..., Running]) -> None:
    r = start_adapter(fake.url, "websocket")
    fake.add_game(800, moves=[[4, 4, 100], [2, 2, 100]])
    _follow(fake, r, 800, lambda s: len(s.moves) == 2)
    inbox = r.host.inboxes["800"]
    fake.push("game/800/undo_requested", 2)
    r.host.wait(lambda: any(isinstance(e, UndoRequested) and e.move_number == 2 for e in inbox.events))
    inbox.actions.answer_undo(True, 2)
    assert fake.wait_for("game/undo/accept")[0] == {"game_id": 800, "move_number": 2}
    fake.push("game/800/undo_accepted", 2)
    r.host.wait_state("800", lambda s: s.moves == ((4, 4),))
    line = {"chat_id": "c1", "body": "hi bot", "date": 1, "move_number": 1, "player_id": HUMAN_ID,
            "username": "human", "channel": "main"}
    fake.push("game/800/chat", {"channel": "main", "line": line})
    fake.push("game/800/chat", {"channel": "main", "line": line})  # resent after a reconnect: once only
    fake.push("game/800/error", "Move is illegal")
    r.host.wait(lambda: any(isinstance(e, ActionRejected) for e in inbox.events))
    chats = [e for e in inbox.events if isinstance(e, ChatReceived)]
    assert chats == [ChatReceived("human", "hi bot", "main")]
    # the end: a bare phase first (no result yet), then the final gamedata with the result
    fake.games[800].update(phase="finished", winner=HUMAN_ID, outcome="Resignation")
    fake.push("game/800/phase", "finished")
    state = r.host.wait_state("800", lambda s: s.result is not None)
    assert state.phase == "finished" and state.result is not None
    assert (state.result.winner, state.result.score, state.result.reason) == ("white", "W+R", "Resignation")
    fake.wait_for("game/disconnect", where=lambda d: d["game_id"] == 800)
    fake.wait_for("bot/status", where=lambda d: d["ongoing_live_count"] == 0)


def test_stone_removal_phase(fake: FakeOgs, start_adapter: Callable[..., Running]) -> None:
    r = start_adapter(fake.url, "socketio")
    fake.add_game(830, moves=[[2, 2, 1], [6, 6, 1], [-1, -1, 1], [-1, -1, 1]])
    state = _follow(fake, r, 830, lambda s: len(s.moves) == 4)
    assert state.moves[2:] == (None, None)
    fake.push("game/830/phase", "stone removal")
    fake.push("game/830/removed_stones", {"removed": True, "stones": "gg", "all_removed": "gg"})
    state = r.host.wait_state("830", lambda s: s.removal == frozenset({(6, 6)}))
    assert state.phase == "stone removal" and state.removal_accepted == frozenset()
    inbox = r.host.inboxes["830"]
    inbox.actions.set_removal([(2, 2)], True)
    assert fake.wait_for("game/removed_stones/set")[0] == {"game_id": 830, "removed": True, "stones": "cc"}
    inbox.actions.accept_removal(frozenset({(6, 6)}))
    assert fake.wait_for("game/removed_stones/accept")[0] == {"game_id": 830, "stones": "gg",
                                                              "strict_seki_mode": False}
    fake.push("game/830/removed_stones_accepted", {"player_id": HUMAN_ID, "stones": "gg", "strict_seki_mode": False})
    state = r.host.wait_state("830", lambda s: s.removal_accepted == frozenset({"white"}))
    # a change of the proposal voids the acceptance of the previous one (goban's accepted_stones model)
    fake.push("game/830/removed_stones", {"removed": True, "stones": "cc", "all_removed": "ccgg"})
    state = r.host.wait_state("830", lambda s: len(s.removal) == 2)
    assert state.removal_accepted == frozenset()
    fake.push("game/830/removed_stones_accepted", {
        "player_id": BOT_ID, "stones": "ccgg", "phase": "finished", "winner": BOT_ID, "outcome": "12.5 points",
        "strict_seki_mode": False})
    state = r.host.wait_state("830", lambda s: s.result is not None)
    assert state.result is not None and state.result.score == "B+12.5" and state.phase == "finished"


def test_a_game_that_vanishes_after_a_reconnect_is_abandoned(fake: FakeOgs, start_adapter: Callable[..., Running],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.adapters.ogs.games as games

    monkeypatch.setattr(games, "GAMEDATA_WAIT", 0.2)
    r = start_adapter(fake.url, "websocket")
    fake.add_game(840)
    _follow(fake, r, 840)
    del fake.games[840]  # the server no longer knows the game
    fake.drop()
    inbox = r.host.inboxes["840"]
    event = r.host.wait(lambda: next((e for e in inbox.events if type(e).__name__ == "GameAbandoned"), None))
    assert "no game data" in event.reason
    assert len(fake.wait_for("game/connect", where=lambda d: d["game_id"] == 840, count=5)) >= 5


def test_a_long_pause_by_the_opponent_is_ended(fake: FakeOgs, start_adapter: Callable[..., Running]) -> None:
    r = start_adapter(fake.url, "websocket", max_pause_time=0.5)
    now = int(time.time() * 1000)
    gd = fake.add_game(820)
    gd["clock"]["pause"] = {"paused": True, "paused_since": now - 200, "pause_control": {"paused": {
        "pausing_player_id": HUMAN_ID, "pauses_left": 4}}}
    gd["pause_control"] = {"paused": {"pausing_player_id": HUMAN_ID, "pauses_left": 4}}
    state = _follow(fake, r, 820)
    assert state.clock is not None and state.clock.paused
    started = time.monotonic()
    assert fake.wait_for("game/resume")[0] == {"game_id": 820}
    assert time.monotonic() - started > 0.1  # not before max_pause_time
    assert "Maximum pause time" in fake.wait_for("game/chat")[0]["body"]


def test_a_finished_gamedata_alone_ends_the_game_with_a_score(fake: FakeOgs,
                                                              start_adapter: Callable[..., Running]) -> None:
    r = start_adapter(fake.url, "socketio")
    fake.add_game(810)
    _follow(fake, r, 810)
    gd = dict(fake.games[810], phase="finished", winner=BOT_ID, outcome="7.5 points")
    fake.push("game/810/gamedata", gd)
    state = r.host.wait_state("810", lambda s: s.result is not None)
    assert state.result is not None and state.result.score == "B+7.5" and state.result.winner == "black"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_check_reports_success(fake: FakeOgs, api_key_env: str, transport: str) -> None:
    lines = OgsAdapter(server_config(fake.url, transport), None).check()
    assert all(line.ok for line in lines), lines
    text = "\n".join(line.what for line in lines)
    assert f"server reachable at {fake.url} ({transport} transport" in text
    assert f"authenticated as {BOT_NAME} (id {BOT_ID})" in text
    offset = re.search(r"server clock offset \+(\d+) ms", text)
    assert offset is not None and 1400 <= int(offset.group(1)) <= 1600  # the fake's clock lags 1.5 s
    assert BOT_KEY not in text


def test_check_reports_a_refused_key_and_an_unreachable_server(fake: FakeOgs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_KEY", "not-the-key-at-all")
    lines = OgsAdapter(server_config(fake.url, "websocket", env="WRONG_KEY"), None).check()
    assert lines[0].ok and not lines[-1].ok
    assert lines[-1].what == f"authentication refused for {BOT_NAME}: check server.api_key"
    assert "not-the-key-at-all" not in repr(lines)
    port = free_port()
    lines = OgsAdapter(server_config(f"http://127.0.0.1:{port}", "socketio", env="WRONG_KEY"), None).check()
    assert len(lines) == 1 and not lines[0].ok and lines[0].what.startswith(f"cannot reach http://127.0.0.1:{port}")
    monkeypatch.delenv("WRONG_KEY")
    lines = OgsAdapter(server_config(fake.url, "websocket", env="WRONG_KEY"), None).check()
    assert not lines[0].ok and "WRONG_KEY" in lines[0].what


def free_port() -> int:
    """A port with nothing listening on it (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_refused_key_is_fatal_not_retried(fake: FakeOgs, api_key_env: str, caplog: pytest.LogCaptureFixture) -> None:
    """The adapter contract (tests/test_adapter_contract.py): refused credentials end run() with
    FatalAdapterError naming the key to fix, after one attempt, with nothing logged by the adapter itself (the
    daemon logs the one line) and never the key."""
    caplog.set_level(logging.INFO)
    fake.refuse_auth = True
    adapter = OgsAdapter(server_config(fake.url, "websocket", reconnect_max_delay=0.3), None)
    with pytest.raises(FatalAdapterError, match=f"authentication refused for {BOT_NAME}: check server.api_key"):
        adapter.run(RecordingHost(), threading.Event())  # type: ignore[arg-type]
    assert len([c for c, _ in fake.commands if c == "authenticate"]) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("bridge")]
    assert BOT_KEY not in caplog.text


def test_capacity_and_games_per_opponent_count_accepted_challenges(
        fake: FakeOgs, start_adapter: Callable[..., Running]) -> None:
    start_adapter(fake.url, "websocket", host=RecordingHost(capacity=3))
    fake.wait_for("bot/config")
    fake.push("notification", challenge(11))
    fake.push("notification", challenge(12))  # same opponent, game not started yet
    calls = fake.wait_rest(2)
    paths = sorted(c[1] for c in calls)
    assert paths == ["/api/v1/me/challenges/11/accept", "/api/v1/me/challenges/12"]
    assert json.loads(next(c[3] for c in calls if c[1].endswith("/12")))["rejection_details"][
        "rejection_code"] == "too_many_games_for_player"


def test_a_failed_accept_releases_its_reservation(fake: FakeOgs, start_adapter: Callable[..., Running]) -> None:
    """The accepted challenge counts against games per opponent while its accept is in flight; the accept fails
    (404), so the opponent's next challenge is accepted."""
    r = start_adapter(fake.url, "websocket", max_games=3)
    fake.wait_for("bot/config")
    fake.fail_accepts.add(21)
    fake.push("notification", challenge(21))
    calls = fake.wait_rest(2)  # the accept, refused; then the decline gtp2ogs sends after a failed accept
    assert [c[1] for c in calls] == ["/api/v1/me/challenges/21/accept", "/api/v1/me/challenges/21"]
    wait_until(lambda: r.adapter.stats["accepts_failed"] == 1, what="the adapter to see the failed accept")
    fake.push("notification", challenge(22))
    calls = fake.wait_rest(3)
    assert calls[2][1] == "/api/v1/me/challenges/22/accept"


# --- the project's sandbox ------------------------------------------------------------------------------------
def _control(sandbox: Any, method: str, path: str, **kwargs: Any) -> Any:
    resp = requests.request(method, sandbox.url.rstrip("/") + path, timeout=10, **kwargs)
    assert resp.status_code < 300, (resp.status_code, resp.text)
    return resp.json() if resp.content else None


def _our_turn(n_min: int) -> Callable[[GoState], bool]:
    """The server waits on us (so nothing moves on its side) and at least ``n_min`` moves are on the board."""
    return lambda s: s.phase == "play" and s.to_move == s.settings.my_color and len(s.moves) >= n_min


def _server_moves(sandbox: Any, game_id: str) -> tuple[Any, ...]:
    from bridge.adapters.ogs.codec import decode_move_array, decode_point

    game = _control(sandbox, "GET", f"/sandbox/games/{game_id}")
    return tuple(decode_point(m) if isinstance(m, str) else decode_move_array(m) for m in game["moves"])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sandbox_challenges_game_and_reconnect(sandbox: Any, start_adapter: Callable[..., Running],
                                               monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    bot = sandbox.add_bot("sandbot", apikey="sandbox-key-0001")
    monkeypatch.setenv("SANDBOX_KEY", bot["apikey"])
    r = start_adapter(sandbox.url, transport, username="sandbot", env="SANDBOX_KEY")
    wait_until(lambda: r.adapter.bot_id is not None, 10, "the bot to authenticate")
    tc = {"system": "fischer", "speed": "live", "initial_time": 600, "time_increment": 10, "max_time": 900}
    bad = _control(sandbox, "POST", "/sandbox/challenges", json={
        "target": "sandbot", "challenger": {"house": "random"}, "width": 7, "height": 7, "time_control": tc})
    good = _control(sandbox, "POST", "/sandbox/challenges", json={
        "target": "sandbot", "challenger": {"house": "random"}, "width": 9, "height": 9, "time_control": tc,
        "challenger_color": "white", "rules": "japanese", "komi": 6.5})

    def rejected() -> Any:
        c = _control(sandbox, "GET", f"/sandbox/challenges/{bad['challenge_id']}")
        return c if c.get("rejection_details") else None

    info = wait_until(rejected, 15, "the rejection")
    assert info["rejection_details"]["rejection_code"] == "board_size_not_allowed", info
    game_id = str(good["game_id"])
    state = r.host.wait_state(game_id, lambda s: True, timeout=15)
    s = state.settings
    assert (s.width, s.height, s.rules, s.komi, s.my_color) == (9, 9, "japanese", 6.5, "black")
    assert s.time_control.system == "fischer" and s.time_control.initial_time == 600
    assert state.sync_id == 1
    inbox = r.host.inboxes[game_id]
    spots = [(x, y) for x in (2, 6, 4, 0, 8) for y in (2, 6, 4, 0, 8)]
    for turn in range(3):  # we are black: our moves are 0, 2, 4
        st = r.host.wait_state(game_id, _our_turn(2 * turn), timeout=15)
        inbox.actions.play(next(p for p in spots if p not in st.moves))
    before = r.host.wait_state(game_id, _our_turn(6), timeout=15)
    assert before.moves == _server_moves(sandbox, game_id)
    _control(sandbox, "POST", "/sandbox/drop", json={"username": "sandbot"})
    after = r.host.wait_state(game_id, lambda st: st.sync_id == before.sync_id + 1, timeout=20)
    assert after.moves == before.moves == _server_moves(sandbox, game_id)  # resumed, nothing duplicated
    assert r.adapter.stats["drops"] == 1
    inbox.actions.play(next(p for p in spots if p not in after.moves))  # the game goes on after the reconnect
    st = r.host.wait_state(game_id, _our_turn(8), timeout=15)
    assert st.moves == _server_moves(sandbox, game_id) and st.sync_id == after.sync_id
    assert all(len(set(x.moves)) == len(x.moves) for x in inbox.states())  # no move ever doubled
    inbox.actions.resign()
    final = r.host.wait_state(game_id, lambda st: st.result is not None, timeout=15)
    assert final.result is not None and final.result.score == "W+R" and final.phase == "finished"


def test_a_burst_of_challenges_never_passes_a_limit(sandbox: Any, start_adapter: Callable[..., Running],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """20 challenges from 3 opponents in a burst: every limit holds (games per opponent, the daemon's cap), the
    rest are declined with gtp2ogs's codes. Regression: an accepted challenge stopped counting once its game was
    announced (active_game) until its gamedata came, so a burst in that window was accepted past both limits.
    The sandbox holds every gamedata until the burst is decided, which makes that window as long as the burst."""
    per_opponent, cap = 2, 5
    bot = sandbox.add_bot("burstbot", apikey="sandbox-key-burst")
    monkeypatch.setenv("SANDBOX_KEY", bot["apikey"])
    r = start_adapter(sandbox.url, "websocket", host=RecordingHost(capacity=cap), max_games=cap,
                      username="burstbot", env="SANDBOX_KEY",
                      accept={"board_sizes": [9], "max_games_per_opponent": per_opponent})
    wait_until(lambda: r.adapter.bot_id is not None, 10, "the bot to authenticate")
    _control(sandbox, "POST", "/sandbox/faults", json={"hold_gamedata": True})
    tc = {"system": "fischer", "speed": "live", "initial_time": 600, "time_increment": 10, "max_time": 900}
    order = "AABACBBACCABCABCBAAC"  # 20 challenges; the opponents' first ones interleaved with repeats
    assert len(order) == 20

    def send(who: str) -> dict[str, Any]:
        return dict(_control(sandbox, "POST", "/sandbox/challenges", json={
            "target": "burstbot", "challenger": {"house": "random", "username": f"burst-opponent-{who}"},
            "width": 9, "height": 9, "rules": "japanese", "komi": 6.5, "challenger_color": "white",
            "time_control": tc}), opponent=who)

    def answered(c: dict[str, Any]) -> Any:
        info = _control(sandbox, "GET", f"/sandbox/challenges/{c['challenge_id']}")
        return info if info["state"] != "pending" else None

    sent = [send(order[0])]
    wait_until(lambda: answered(sent[0]), 15, "the first challenge's answer")  # its game is announced now
    sent += [send(who) for who in order[1:]]
    answers = [wait_until(functools.partial(answered, c), 30, f"the answer to challenge {c['challenge_id']}")
               for c in sent]
    # what the limits allow, challenge by challenge (gtp2ogs checks the game cap before games per player)
    expected: list[str] = []
    games: dict[str, int] = {}
    for who in order:
        if sum(games.values()) >= cap:
            expected.append("too_many_live_games")
        elif games.get(who, 0) >= per_opponent:
            expected.append("too_many_games_for_player")
        else:
            games[who] = games.get(who, 0) + 1
            expected.append("accepted")
    got = [a["state"] if a["state"] == "accepted" else (a["rejection_details"] or {}).get("rejection_code")
           for a in answers]
    assert got == expected, (f"{got.count('accepted')} of {len(got)} accepted, the limits allow "
                             f"{expected.count('accepted')}: {list(zip(order, got, expected, strict=True))}")
    assert expected.count("accepted") == cap and "too_many_games_for_player" in expected
    # the held games start: each accepted game opens exactly once, and nothing else does
    _control(sandbox, "POST", "/sandbox/faults", json={"hold_gamedata": False})
    accepted_games = {str(c["game_id"]) for c, a in zip(sent, answers, strict=True) if a["state"] == "accepted"}
    r.host.wait(lambda: set(r.host.inboxes) == accepted_games, 20, "every accepted game to open")
    assert sorted(r.host.opened) == sorted(accepted_games)


def test_sandbox_oauth_check(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.add_user("oauthbot", "pw-oauth-1")
    monkeypatch.setenv("SANDBOX_PW", "pw-oauth-1")
    config = server_config(sandbox.url, "websocket", username="oauthbot", auth="oauth", api_key=None,
                           client_id="bridge-test", password={"env": "SANDBOX_PW"})
    lines = OgsAdapter(config, None).check()
    assert all(line.ok for line in lines), lines
    assert any(line.what.startswith("authenticated as oauthbot (id ") for line in lines)


def test_one_gamedata_without_players_is_ignored_and_the_game_goes_on(
        fake: FakeOgs, start_adapter: Callable[..., Running], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    r = start_adapter(fake.url, "websocket")
    gd = fake.add_game(860)
    _follow(fake, r, 860)
    broken = {k: v for k, v in gd.items() if k != "players"}
    for _ in range(3):  # the same bad frame, three times: one warning
        fake.push("game/860/gamedata", broken)
    fake.play(860, 3, 3)  # the game goes on from the last good state
    state = r.host.wait_state("860", lambda s: len(s.moves) == 1)
    assert state.moves == ((3, 3),) and state.settings.my_color == "black"
    inbox = r.host.inboxes["860"]
    assert not any(type(e).__name__ == "GameAbandoned" for e in inbox.events)
    ours = [rec.getMessage() for rec in caplog.records if "gamedata frame" in rec.getMessage()]
    assert len(ours) == 1 and "keeping the last good state" in ours[0], ours
    fake.drop()  # and a reconnect picks it up as usual
    after = r.host.wait_state("860", lambda s: s.sync_id == state.sync_id + 1, timeout=20)
    assert after.moves == ((3, 3),)
