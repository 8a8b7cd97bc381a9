"""The OGS sandbox server: one aiohttp app on one port speaking online-go.com's protocol.

- ``/``: OGS's current realtime transport, a plain JSON WebSocket (``[command, data, id?]`` in; ``[id, data]`` /
  ``[id, null, {code, message}]`` replies and ``[event, data]`` pushes out), as goban's GobanSocket speaks it;
- ``/socket.io/``: the legacy socket.io transport (python-socketio), same vocabulary, acks for replies;
- ``/oauth2/token/``, ``/api/v0/login``, ``/api/v1/...``: the REST calls a bot makes;
- ``/sandbox/...``: the control API (accounts, challenges, games, drops), documented in docs/ogs-sandbox.md.

Everything runs on one asyncio loop in a background thread (:class:`SandboxServer`); the public methods are
thread-safe.  The server's state and realtime commands live in :mod:`core`, game rules in :mod:`game`, clocks
in :mod:`clock`, house opponents in :mod:`house`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import socketio
from aiohttp import WSMsgType, web

from bridge.adapters.ogs.sandbox.core import (
    Account,
    Challenge,
    Conn,
    HttpError,
    OgsSandbox,
    RequestError,
    same_secret,
    to_int,
)
from bridge.adapters.ogs.sandbox.game import GameError, now_ms
from bridge.redact import register_secret

log = logging.getLogger("bridge.sandbox.ogs")


# --- HTTP: REST, control API, transports ---------------------------------------------------------------------
def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    """The request body as a dict: JSON, or form-encoded (as gtp2ogs sends accepts), or empty."""
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    ctype = request.content_type
    if ctype == "application/json" or raw.lstrip()[:1] in (b"{", b"["):
        try:
            data = json.loads(raw)
        except ValueError:
            raise HttpError(400, "the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HttpError(400, "the request body must be a JSON object")
        return data
    form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    out: dict[str, Any] = {k: v[-1] for k, v in form.items()}
    for k, v in list(out.items()):
        if v in ("true", "false"):
            out[k] = v == "true"
    return out


class SandboxApp:
    """The aiohttp application: routes, transports and the control API over one :class:`OgsSandbox`."""

    def __init__(self, sandbox: OgsSandbox) -> None:
        self.sb = sandbox
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*", logger=False,
                                        engineio_logger=False, ping_interval=10, ping_timeout=10)
        self.sio_conns: dict[str, Conn] = {}
        self.ws_responses: set[web.WebSocketResponse] = set()
        self.app = web.Application(middlewares=[self._errors], client_max_size=4 * 1024 * 1024)
        self.sio.attach(self.app, socketio_path="socket.io")
        self.sio.on("connect", self._sio_connect)
        self.sio.on("disconnect", self._sio_disconnect)
        self.sio.on("*", self._sio_event)
        r = self.app.router
        r.add_get("/", self._root)
        for path in ("/oauth2/token/", "/oauth2/token"):
            r.add_post(path, self._oauth_token)
        r.add_post("/api/v0/login", self._login)
        r.add_get("/api/v1/ui/config", self._ui_config)
        r.add_get("/api/v1/me", self._me)
        r.add_get("/api/v1/me/", self._me)
        r.add_get("/api/v1/me/challenges", self._my_challenges)
        r.add_post("/api/v1/me/challenges/{id}/accept", self._accept)
        r.add_post("/api/v1/me/challenges/{id}", self._reject)
        r.add_delete("/api/v1/me/challenges/{id}", self._reject)
        r.add_get("/api/v1/games/{id}", self._api_game)
        r.add_get("/api/v1/players/{id}", self._api_player)
        for path in ("/api/v1/players", "/api/v1/players/"):
            r.add_get(path, self._api_players)
        for path in ("/api/v1/players/{id}/challenge", "/api/v1/players/{id}/challenge/"):
            r.add_post(path, self._api_challenge_player)
        for path in ("/api/v1/challenges", "/api/v1/challenges/"):
            r.add_post(path, self._api_open_challenge)
        r.add_delete("/api/v1/challenges/{id}", self._api_cancel_open)
        r.add_post("/api/v1/me/friends/invitations", self._friend)
        r.add_get("/sandbox", self._control_index)
        r.add_post("/sandbox/bots", self._c_bots)
        r.add_post("/sandbox/users", self._c_users)
        r.add_get("/sandbox/accounts", self._c_accounts)
        r.add_post("/sandbox/opponents", self._c_opponents)
        r.add_post("/sandbox/challenges", self._c_challenge)
        r.add_get("/sandbox/challenges", self._c_challenges)
        r.add_get("/sandbox/challenges/{id}", self._c_challenge_get)
        r.add_get("/sandbox/games", self._c_games)
        r.add_get("/sandbox/games/{id}", self._c_game)
        r.add_get("/sandbox/games/{id}/sgf", self._c_sgf)
        r.add_post("/sandbox/games/{id}/pause", self._c_pause)
        r.add_post("/sandbox/games/{id}/resume", self._c_resume)
        r.add_post("/sandbox/games/{id}/undo", self._c_undo)
        r.add_post("/sandbox/games/{id}/chat", self._c_chat)
        r.add_post("/sandbox/games/{id}/resign", self._c_resign)
        r.add_post("/sandbox/games/{id}/garbage", self._c_garbage)
        r.add_get("/sandbox/move_times", self._c_move_times)
        r.add_post("/sandbox/drop", self._c_drop)
        r.add_get("/sandbox/connections", self._c_connections)
        r.add_get("/sandbox/faults", self._c_faults)
        r.add_post("/sandbox/faults", self._c_faults)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        try:
            return await handler(request)
        except HttpError as exc:
            return _json({"detail": exc.message, "error": exc.message, **exc.extra}, exc.status)
        except web.HTTPNotFound:
            return _json({"detail": "Not found.", "error": f"no route {request.method} {request.path} on the OGS "
                                                           f"sandbox (see docs/ogs-sandbox.md)"}, 404)
        except web.HTTPMethodNotAllowed as exc:
            return _json({"detail": f"Method \"{request.method}\" not allowed.",
                          "error": f"{request.path} accepts {', '.join(sorted(exc.allowed_methods))}"}, 405)

    # --- transports ----------------------------------------------------------------------------------------
    async def _root(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=4 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return _json({"server": "OGS sandbox", "websocket": "connect a WebSocket to this URL",
                          "socketio": "/socket.io/", "control": "/sandbox"})
        await ws.prepare(request)
        self.ws_responses.add(ws)

        async def send(item: Any) -> None:
            await ws.send_str(json.dumps(item))

        async def drop() -> None:
            transport = request.transport
            if transport is not None:
                transport.abort()
            else:
                await ws.close(code=1011)

        conn = Conn("websocket", send, drop)
        self.sb.conns.add(conn)
        log.info("sandbox: websocket connection from %s", request.remote)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        conn.push("ERROR", "binary frames are not understood; send JSON text frames")
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    conn.push("ERROR", "malformed frame: not JSON; send [command, data] or [command, data, id]")
                    continue
                if not isinstance(frame, list) or not frame:
                    conn.push("ERROR", "malformed frame: send a JSON array [command, data] or [command, data, id]")
                    continue
                await self.sb.handle(conn, frame[0], frame[1] if len(frame) > 1 else None,
                                     frame[2] if len(frame) > 2 else None)
        finally:
            self.ws_responses.discard(ws)
            self.sb.remove_conn(conn)
        return ws

    async def _sio_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        async def send(item: Any) -> None:
            await self.sio.emit(item[0], item[1], to=sid)

        request = environ.get("aiohttp.request") if isinstance(environ, dict) else None

        async def drop() -> None:  # cut the TCP connection: no socket.io/engine.io goodbye, so clients reconnect
            transport = getattr(request, "transport", None)
            if transport is not None:
                transport.abort()
                return
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            sock = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
            if sock is not None:
                await sock.close(wait=False, abort=True)
                await sock.queue.put(None)  # wakes its writer, which closes the websocket

        conn = Conn("socketio", send, drop)
        self.sio_conns[sid] = conn
        self.sb.conns.add(conn)
        log.info("sandbox: socket.io connection %s", sid)

    async def _sio_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.sio_conns.pop(sid, None)
        if conn is not None:
            self.sb.remove_conn(conn)

    async def _sio_event(self, event: str, sid: str, *args: Any) -> Any:
        conn = self.sio_conns.get(sid)
        if conn is None:
            return None
        data = args[0] if args else None
        if not isinstance(event, str):
            return None
        try:
            return await self.sb.dispatch(conn, event, data if data is not None else {})
        except RequestError as exc:
            # socket.io cannot tell whether an ack was asked for: push the error event and ack it as well
            self.sb.refused(conn, event, exc, None)
            return None, {"code": exc.code, "message": exc.message}

    # --- REST auth -----------------------------------------------------------------------------------------
    def _account(self, request: web.Request, body: dict[str, Any]) -> Account:
        sb = self.sb
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
            acct = sb.accounts.get(sb.tokens.get(token, -1))
            if acct is None:
                raise HttpError(401, "Invalid or expired access token; get a new one from /oauth2/token/")
            return acct
        query = request.query
        apikey = body.get("apikey", query.get("apikey"))
        if apikey:
            ident = body.get("bot_id", query.get("bot_id"))
            name = body.get("username", body.get("bot_username", query.get("username")))
            candidates = [sb.accounts.get(to_int(ident))] if ident not in (None, "", "undefined") else (
                [sb.find(str(name))] if name else list(sb.accounts.values()))
            for acct in candidates:
                if acct is not None and same_secret(acct.apikey, apikey):
                    return acct
            raise HttpError(401, "Incorrect API key for this bot (send apikey and bot_id in the body)")
        session = request.cookies.get("sessionid")
        if session and session in sb.sessions:
            acct_id, csrf = sb.sessions[session]
            if request.method not in ("GET", "HEAD"):
                if not same_secret(csrf, request.headers.get("X-CSRFToken")) or not request.headers.get("Referer"):
                    raise HttpError(403, "CSRF Failed: send the Referer header and X-CSRFToken equal to the "
                                         "csrftoken cookie")
            acct = sb.accounts.get(acct_id)
            if acct is not None:
                return acct
        raise HttpError(401, "Authentication credentials were not provided (Authorization: Bearer TOKEN, or "
                             "apikey and bot_id in the body)")

    def _challenge(self, request: web.Request) -> Challenge:
        ch = self.sb.challenges.get(to_int(request.match_info["id"]))
        if ch is None:
            raise HttpError(404, f"there is no challenge {request.match_info['id']}")
        return ch

    # --- REST ----------------------------------------------------------------------------------------------
    async def _oauth_token(self, request: web.Request) -> web.Response:
        body = await _body(request)
        sb = self.sb
        grant = body.get("grant_type")
        if not body.get("client_id"):
            return _json({"error": "invalid_client", "error_description": "client_id is required"}, 401)
        if grant == "password":
            acct = sb.find(str(body.get("username", "")))
            if acct is None or acct.house or not same_secret(acct.password, body.get("password")):
                return _json({"error": "invalid_grant", "error_description": "Invalid credentials given."}, 400)
        elif grant == "refresh_token":
            acct = sb.accounts.get(sb.refresh_tokens.pop(str(body.get("refresh_token", "")), -1))
            if acct is None:
                return _json({"error": "invalid_grant", "error_description": "Invalid refresh token."}, 400)
        else:
            return _json({"error": "unsupported_grant_type",
                          "error_description": "grant_type must be password or refresh_token"}, 400)
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        for t in (access, refresh):
            register_secret(t)
        sb.tokens[access] = acct.id
        sb.refresh_tokens[refresh] = acct.id
        return _json({"access_token": access, "token_type": "Bearer", "expires_in": 36000,
                      "refresh_token": refresh, "scope": "read write groups"})

    async def _login(self, request: web.Request) -> web.Response:
        body = await _body(request)
        acct = self.sb.find(str(body.get("username", "")))
        if acct is None or acct.house or not same_secret(acct.password, body.get("password")):
            raise HttpError(401, "Invalid username or password")
        session, csrf = secrets.token_hex(16), secrets.token_hex(16)
        self.sb.sessions[session] = (acct.id, csrf)
        resp = _json({"user": acct.public(), "redirect": "/"})
        resp.set_cookie("sessionid", session, httponly=True)
        resp.set_cookie("csrftoken", csrf)
        return resp

    async def _ui_config(self, request: web.Request) -> web.Response:
        acct = self._account(request, {})
        return _json({"user": acct.public(), "chat_auth": acct.chat_auth,
                      "notification_auth": acct.notification_auth, "user_jwt": acct.user_jwt,
                      "superchat_auth": acct.chat_auth, "incident_auth": acct.chat_auth})

    async def _me(self, request: web.Request) -> web.Response:
        return _json(self._account(request, {}).public())

    async def _my_challenges(self, request: web.Request) -> web.Response:
        """The open challenges the account received or sent (ogsapi's received/sent_challenges filter this list by
        challenger); a bot's API key comes in the body, never in the URL."""
        acct = self._account(request, await _body(request))
        rows = [{"id": c.id, "challenger": c.challenger.public(), "challenged": c.target.public(),
                 "challenger_color": c.challenger_color,
                 "game": {"id": c.game_id, **{k: c.notification[k] for k in ("rules", "ranked", "width", "height",
                                                                              "handicap", "komi")},
                          "time_control_parameters": json.dumps(c.notification["time_control"])}}
                for c in self.sb.challenges.values()
                if c.state == "pending" and acct.id in (c.target.id, c.challenger.id)]
        return _json({"count": len(rows), "next": None, "previous": None, "results": rows})

    async def _accept(self, request: web.Request) -> web.Response:
        body = await _body(request)
        acct = self._account(request, body)
        game = self.sb.accept(self._challenge(request), acct)
        return _json({"success": True, "game_id": game.id, "game": game.id})

    async def _reject(self, request: web.Request) -> web.Response:
        body = await _body(request)
        acct = self._account(request, body)
        oc = self.sb.open_challenges.get(to_int(request.match_info["id"]))
        if oc is not None and request.method == "DELETE":  # ChallengeModal withdraws open ones here too
            self.sb.cancel_open(oc, acct)
            return _json({"success": True})
        ch = self._challenge(request)
        if request.method == "DELETE" and acct.id == ch.challenger.id:  # the challenger withdraws it
            self.sb.cancel(ch, acct)
            return _json({"success": True})
        if request.method == "POST" and not body.get("delete"):
            raise HttpError(400, "to decline a challenge POST {\"delete\": true, \"message\": ...} (or accept it "
                                 "at /accept)")
        self.sb.reject(ch, acct, body.get("message"), body.get("rejection_details"))
        return _json({"success": True})

    async def _api_game(self, request: web.Request) -> web.Response:
        game = self.sb.game_or_404(request.match_info["id"])
        now = now_ms()
        b, w = game.players["black"], game.players["white"]
        return _json({"id": game.id, "name": game.s.name, "black": b.id, "white": w.id,
                      "players": {"black": b.entry(), "white": w.entry()}, "width": game.s.width,
                      "height": game.s.height, "rules": game.s.rules, "ranked": game.s.ranked,
                      "handicap": game.s.handicap, "komi": game.s.komi,
                      "time_control": game.s.time_control["system"],
                      "time_control_parameters": json.dumps(game.s.time_control),
                      "started": game.start_time // 1000, "ended": (game.end_time // 1000) if game.end_time else None,
                      "outcome": game.outcome, "black_lost": game.winner == "white",
                      "white_lost": game.winner == "black", "annulled": game.outcome == "Cancellation",
                      "gamedata": game.gamedata(now)})

    async def _api_player(self, request: web.Request) -> web.Response:
        acct = self.sb.accounts.get(to_int(request.match_info["id"]))
        if acct is None:
            raise HttpError(404, "Not found.")
        return _json(acct.public())

    async def _api_players(self, request: web.Request) -> web.Response:
        name = request.query.get("username")
        rows = [a.public() for a in self.sb.accounts.values() if name is None or a.username == name]
        return _json({"count": len(rows), "next": None, "previous": None, "results": rows})

    async def _api_challenge_player(self, request: web.Request) -> web.Response:
        body = await _body(request)
        acct = self._account(request, body)
        ch = self.sb.bot_challenge(acct, to_int(request.match_info["id"]), body)
        if self.sb.lose_challenge_answers > 0:  # fault: the challenge exists, but its answer never arrives
            self.sb.lose_challenge_answers -= 1
            log.info("sandbox: fault: dropping the answer to challenge %d", ch.id)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return _json({"status": "ok", "challenge": ch.id, "game": ch.game_id})

    async def _api_open_challenge(self, request: web.Request) -> web.Response:
        """``POST /api/v1/challenges``: an open challenge (the web client's ChallengeModal, mode "open")."""
        body = await _body(request)
        acct = self._account(request, body)
        oc = self.sb.open_challenge(acct, body)
        if self.sb.lose_challenge_answers > 0:  # fault: the challenge exists, but its answer never arrives
            self.sb.lose_challenge_answers -= 1
            log.info("sandbox: fault: dropping the answer to open challenge %d", oc.id)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return _json({"status": "ok", "challenge": oc.id, "game": oc.game_id})

    async def _api_cancel_open(self, request: web.Request) -> web.Response:
        """``DELETE /api/v1/challenges/{id}``: the web client's cancelOpenChallenge (CustomGames)."""
        acct = self._account(request, await _body(request))
        oc = self.sb.open_challenges.get(to_int(request.match_info["id"]))
        if oc is None:
            raise HttpError(404, "Not found.")
        self.sb.cancel_open(oc, acct)
        return _json({"success": True})

    async def _friend(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self._account(request, body)
        return _json({"success": True})

    # --- control API ---------------------------------------------------------------------------------------
    async def _control_index(self, request: web.Request) -> web.Response:
        return _json({"docs": "docs/ogs-sandbox.md", "routes": sorted(
            {f"{r.method} {r.resource.canonical}" for r in self.app.router.routes()
             if r.resource is not None and r.resource.canonical.startswith("/sandbox")})})

    async def _c_bots(self, request: web.Request) -> web.Response:
        body = await _body(request)
        acct = self.sb.add_account(body.get("username"), is_bot=True, apikey=body.get("apikey"),
                                   password=body.get("password"), ranking=body.get("ranking", 15.0))
        return _json({"id": acct.id, "username": acct.username, "apikey": acct.apikey})

    async def _c_users(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if not body.get("password"):
            raise HttpError(400, "POST /sandbox/users needs {username, password}")
        acct = self.sb.add_account(body.get("username"), is_bot=bool(body.get("is_bot", False)),
                                   password=body.get("password"), apikey=body.get("apikey"),
                                   ranking=body.get("ranking", 15.0))
        return _json({"id": acct.id, "username": acct.username, "is_bot": acct.is_bot, "apikey": acct.apikey})

    async def _c_accounts(self, request: web.Request) -> web.Response:
        return _json([{**a.public(), "house": a.house} for a in self.sb.accounts.values()])

    async def _c_opponents(self, request: web.Request) -> web.Response:
        acct = self.sb.add_opponent(await _body(request))
        return _json({"id": acct.id, "username": acct.username})

    async def _c_challenge(self, request: web.Request) -> web.Response:
        ch = self.sb.create_challenge(await _body(request))
        return _json({"challenge_id": ch.id, "game_id": ch.game_id, "id": ch.id})

    async def _c_challenges(self, request: web.Request) -> web.Response:
        rows = [c.summary() for c in self.sb.challenges.values()]
        rows += [c.summary() for c in self.sb.open_challenges.values()]
        return _json(sorted(rows, key=lambda c: int(c["id"])))

    async def _c_challenge_get(self, request: web.Request) -> web.Response:
        oc = self.sb.open_challenges.get(to_int(request.match_info["id"]))
        return _json(oc.summary() if oc is not None else self._challenge(request).summary())

    async def _c_games(self, request: web.Request) -> web.Response:
        now = now_ms()
        return _json([g.summary(now) for g in self.sb.games.values()])

    async def _c_game(self, request: web.Request) -> web.Response:
        return _json(self.sb.game_view(request.match_info["id"]))

    async def _c_sgf(self, request: web.Request) -> web.Response:
        game = self.sb.game_or_404(request.match_info["id"])
        return web.Response(text=game.sgf(), content_type="application/x-go-sgf")

    async def _control_op(self, request: web.Request, op: str) -> web.Response:
        body = await _body(request)
        sb = self.sb
        game = sb.game_or_404(request.match_info["id"])
        now = now_ms()
        try:
            if op == "pause":
                if body.get("system"):
                    game.pause(None, now, system=True)
                else:
                    game.pause(sb.control_side(game, body).id, now)
            elif op == "resume":
                game.resume(None, now, everything=True)
            elif op == "undo":
                game.request_undo(sb.control_side(game, body).id, body.get("move_number"), now)
            elif op == "chat":
                game.add_chat(sb.control_side(game, body), str(body.get("type", "main")), body.get("body"),
                              None, now)
            elif op == "resign":
                game.resign(sb.control_side(game, body).id, now)
        except GameError as exc:
            raise HttpError(409, str(exc)) from None
        finally:
            sb.after(game)
        return _json(game.summary(now_ms()))

    async def _c_pause(self, request: web.Request) -> web.Response:
        return await self._control_op(request, "pause")

    async def _c_resume(self, request: web.Request) -> web.Response:
        return await self._control_op(request, "resume")

    async def _c_undo(self, request: web.Request) -> web.Response:
        return await self._control_op(request, "undo")

    async def _c_chat(self, request: web.Request) -> web.Response:
        return await self._control_op(request, "chat")

    async def _c_resign(self, request: web.Request) -> web.Response:
        return await self._control_op(request, "resign")

    async def _c_garbage(self, request: web.Request) -> web.Response:
        """Push one malformed frame to the game's subscribers (a fault for tests): what a client must survive."""
        body = await _body(request)
        game = self.sb.game_or_404(request.match_info["id"])
        kind = body.get("kind", "gamedata_no_players")
        frames: dict[str, tuple[str, Any]] = {
            "gamedata_no_players": (f"game/{game.id}/gamedata", {"game_id": game.id, "phase": "play",
                                                                 "width": game.s.width, "height": game.s.height}),
            "move_garbage": (f"game/{game.id}/move", {"game_id": game.id, "move_number": "x", "move": "not-a-move"}),
            "clock_garbage": (f"game/{game.id}/clock", {"game_id": game.id, "current_player": "nobody",
                                                        "black_time": "soon", "white_time": None}),
            "phase_garbage": (f"game/{game.id}/phase", 12345),
        }
        if kind not in frames:
            raise HttpError(400, f"kind must be one of {sorted(frames)}")
        event, data = frames[kind]
        sent = 0
        for c in list(self.sb.conns):
            if game.id in c.games:
                c.push(event, data)
                sent += 1
        return _json({"kind": kind, "sent": sent})

    async def _c_move_times(self, request: web.Request) -> web.Response:
        return _json(self.sb.move_times_view(request.query.get("times", "1") not in ("0", "false")))

    async def _c_drop(self, request: web.Request) -> web.Response:
        body = await _body(request)
        name = body.get("username")
        if name is not None and not isinstance(name, str):
            raise HttpError(400, "username must be a string (or omit it to drop every connection)")
        dropped = await self.sb.drop(name)
        return _json({"dropped": dropped})

    async def _c_connections(self, request: web.Request) -> web.Response:
        return _json([c.describe() for c in self.sb.conns])

    async def _c_faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            return _json(self.sb.set_faults(await _body(request)))
        return _json(self.sb.faults())

    async def close(self) -> None:
        await self.sb.shutdown()
        for ws in list(self.ws_responses):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutdown")
        with contextlib.suppress(Exception):
            await self.sio.shutdown()


class SandboxServer:
    """The OGS sandbox on ``host:port`` (port 0: a free port), run in a background thread.

    >>> server = SandboxServer().start()
    >>> server.add_bot("mybot", "secret-key")      # {"id": ..., "username": "mybot", "apikey": "secret-key"}
    >>> server.url                                  # "http://127.0.0.1:PORT"
    >>> server.stop()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, data_dir: Path | None = None,
                 stone_removal_timeout: float | None = 10.0) -> None:
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.stone_removal_timeout = stone_removal_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._app: SandboxApp | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def sandbox(self) -> OgsSandbox:
        if self._app is None:
            raise RuntimeError("the sandbox is not started")
        return self._app.sb

    def start(self) -> SandboxServer:
        """Start listening (in a background thread) and return once the port is open."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"ogs-sandbox-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join(5)
            self._thread = None
            exc = failure[0]
            raise OSError(f"the OGS sandbox could not listen on {self.host}:{self.port}: {exc}") from exc
        log.info("OGS sandbox listening on %s", self.url)
        return self

    async def _astart(self) -> None:
        self._app = SandboxApp(OgsSandbox(data_dir=self.data_dir, stone_removal_timeout=self.stone_removal_timeout))
        self._runner = web.AppRunner(self._app.app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])

    async def _astop(self) -> None:
        if self._app is not None:
            await self._app.close()
        if self._runner is not None:
            await self._runner.cleanup()
        # whatever is left (socket.io ping tasks, connection writers) ends here, not in a closed loop
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        if rest:
            await asyncio.wait(rest, timeout=2)

    def stop(self) -> None:
        """Close every connection, stop house engines and the loop, join the thread.  Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self._stopped.is_set():
            return
        self._stopped.set()
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._astop(), loop)
            try:
                fut.result(15)
            except Exception as exc:
                log.warning("OGS sandbox: error while stopping: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(15)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop and return its result (HttpError becomes ValueError)."""
        if self._loop is None or not self._loop.is_running():
            raise RuntimeError("the sandbox is not running; call start() first")

        async def wrapper() -> Any:
            return fn()

        try:
            return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(15)
        except HttpError as exc:
            raise ValueError(exc.message) from None

    def add_bot(self, username: str, apikey: str | None = None) -> dict[str, Any]:
        """Register (or update) a bot account; returns ``{"id", "username", "apikey"}``."""
        acct = self._call(lambda: self.sandbox.add_account(username, is_bot=True, apikey=apikey))
        return {"id": acct.id, "username": acct.username, "apikey": acct.apikey}

    def add_user(self, username: str, password: str) -> dict[str, Any]:
        """Register (or update) a user account for the OAuth password flow; returns ``{"id", "username"}``."""
        acct = self._call(lambda: self.sandbox.add_account(username, is_bot=False, password=password))
        return {"id": acct.id, "username": acct.username}

    def challenge(self, **spec: Any) -> dict[str, Any]:
        """Same as ``POST /sandbox/challenges``; returns ``{"challenge_id", "game_id"}``."""
        ch = self._call(lambda: self.sandbox.create_challenge(spec))
        return {"challenge_id": ch.id, "game_id": ch.game_id}

    def add_opponent(self, **spec: Any) -> dict[str, Any]:
        """Same as ``POST /sandbox/opponents``: a house player that answers bots' challenges."""
        acct = self._call(lambda: self.sandbox.add_opponent(spec))
        return {"id": acct.id, "username": acct.username}

    def game(self, game_id: int) -> dict[str, Any]:
        """Same as ``GET /sandbox/games/{id}``."""
        result: dict[str, Any] = self._call(lambda: self.sandbox.game_view(game_id))
        return result


def run_sandbox(host: str = "127.0.0.1", port: int = 8080, **kwargs: Any) -> None:
    """Run the sandbox in the foreground until Ctrl-C (``gamebridge sandbox ogs``).  ``kwargs`` go to
    :class:`SandboxServer` (``data_dir``, ``stone_removal_timeout``); ``bots={name: apikey}`` pre-registers bots."""
    bots: dict[str, str | None] = kwargs.pop("bots", None) or {}
    server = SandboxServer(host, port, **kwargs).start()
    stop = threading.Event()
    previous: Any = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM (systemd, kill) stops it cleanly too
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        for name, key in bots.items():
            info = server.add_bot(name, key)
            print(f"bot {info['username']!r} (id {info['id']}) registered")
        print(f"OGS sandbox listening on {server.url}  (WebSocket at /, socket.io at /socket.io/, control API "
              f"at /sandbox; see docs/ogs-sandbox.md)")
        print(f"  create a bot:       curl -X POST {server.url}/sandbox/bots -H 'Content-Type: application/json' "
              f"-d '{{\"username\": \"mybot\"}}'")
        print(f"  challenge it:       curl -X POST {server.url}/sandbox/challenges -H 'Content-Type: "
              f"application/json' -d '{{\"target\": \"mybot\", \"width\": 9, \"height\": 9}}'")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping the OGS sandbox", flush=True)
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["SandboxServer", "run_sandbox"]
