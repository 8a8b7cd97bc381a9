"""The OGS sandbox's state and behaviour, independent of HTTP: accounts, challenges, connections, the realtime
command table (both transports feed :meth:`OgsSandbox.handle`), game timers and house players.  It all lives on
the server's event loop; :mod:`server` puts it on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.adapters.ogs.codec import encode_points
from bridge.adapters.ogs.sandbox.clock import normalize_time_control
from bridge.adapters.ogs.sandbox.game import GameError, GameSettings, Player, SandboxGame, now_ms
from bridge.adapters.ogs.sandbox.house import House, make_house
from bridge.games.gorules import default_free_handicap, fixed_handicap_points, ruleset
from bridge.games.gotypes import Color
from bridge.redact import register_secret

log = logging.getLogger("bridge.sandbox.ogs")

SECRET_KEYS = frozenset({"apikey", "bot_apikey", "password", "auth", "jwt", "chat_auth", "notification_auth",
                         "user_jwt", "access_token", "refresh_token", "client_secret", "token"})
DEFAULT_TIME_CONTROL: dict[str, Any] = {"system": "fischer", "speed": "live", "initial_time": 120,
                                        "time_increment": 30, "max_time": 300, "pause_on_weekends": False}


def scrub(data: Any) -> Any:
    """A copy of ``data`` with every secret-looking field replaced by ``***`` (for logs and records)."""
    if isinstance(data, dict):
        return {k: ("***" if k in SECRET_KEYS and v else scrub(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [scrub(v) for v in data]
    return data


def same_secret(a: str | None, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and bool(a) and hmac.compare_digest(a.encode(), b.encode())


class RequestError(Exception):
    """A refused realtime command: ``code`` and ``message`` go into the reply's error object."""

    def __init__(self, code: str, message: str, game_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.game_id = game_id


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Account:
    id: int
    username: str
    is_bot: bool
    apikey: str | None = None
    password: str | None = None
    ranking: float = 15.0
    house: bool = False
    chat_auth: str = field(default_factory=lambda: secrets.token_hex(16))
    notification_auth: str = field(default_factory=lambda: secrets.token_hex(16))
    user_jwt: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def player(self) -> Player:
        return Player(self.id, self.username, self.ranking)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "ranking": self.ranking, "rank": self.ranking,
                "professional": False, "is_bot": self.is_bot, "ui_class": "bot" if self.is_bot else "",
                "country": "un"}


@dataclass
class Challenge:
    id: int
    game_id: int
    target: Account
    challenger: Account
    house: House | None
    settings: GameSettings
    challenger_color: str
    notification: dict[str, Any]
    state: str = "pending"  # pending | accepted | rejected
    message: str | None = None
    rejection_details: Any = None
    created: float = field(default_factory=time.time)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "challenge_id": self.id, "game_id": self.game_id, "state": self.state,
                "target": self.target.username, "challenger": self.challenger.username,
                "house": self.house.describe() if self.house else None,
                "challenger_color": self.challenger_color, "message": self.message,
                "rejection_details": self.rejection_details, "notification": self.notification}


@dataclass
class OpenChallenge:
    """``POST /api/v1/challenges``: a challenge nobody is named in; on the seek graph until taken or withdrawn."""

    id: int
    game_id: int
    challenger: Account
    settings: GameSettings
    color: str
    komi: Any  # as sent (None: automatic)
    min_ranking: float
    max_ranking: float
    state: str = "pending"  # pending | accepted | canceled
    accepted_by: str | None = None
    taker: int | None = None  # the house opponent about to take it

    def entry(self) -> dict[str, Any]:
        """Its ``SeekgraphChallengeMessage`` (goban's ServerToClient.ts)."""
        s = self.settings
        tc = s.time_control
        return {"challenge_id": self.id, "user_id": self.challenger.id, "username": self.challenger.username,
                "ranking": self.challenger.ranking, "professional": False, "min_rank": self.min_ranking,
                "max_rank": self.max_ranking, "game_id": self.game_id, "name": s.name, "ranked": s.ranked,
                "handicap": s.handicap, "komi": self.komi, "komi_auto": "automatic" if self.komi is None else
                "custom", "rules": s.rules, "width": s.width, "height": s.height,
                "challenger_color": self.color, "disable_analysis": s.disable_analysis,
                "time_control": tc["system"], "time_control_parameters": tc, "time_per_move": 0, "rengo": False,
                "rengo_nominees": [], "rengo_black_team": [], "rengo_white_team": [], "rengo_participants": [],
                "rengo_casual_mode": False, "rengo_auto_start": False, "invite_only": False, "uuid": ""}

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "challenge_id": self.id, "game_id": self.game_id, "state": self.state,
                "open": True, "target": None, "accepted_by": self.accepted_by,
                "challenger": self.challenger.username, "challenger_color": self.color,
                "width": self.settings.width, "height": self.settings.height, "ranked": self.settings.ranked,
                "rules": self.settings.rules, "handicap": self.settings.handicap,
                "min_ranking": self.min_ranking, "max_ranking": self.max_ranking,
                "time_control": self.settings.time_control}


class Conn:
    """One realtime connection (either transport).  Outgoing frames go through one queue, so replies and
    pushes leave in the order they were produced."""

    def __init__(self, transport: str, send: Callable[[Any], Awaitable[None]],
                 drop: Callable[[], Awaitable[None]]) -> None:
        self.transport = transport
        self._send = send
        self.drop = drop
        self.account: Account | None = None
        self.games: set[int] = set()
        self.channels: set[str] = set()
        self.bot_config: Any = None
        self.bot_status: Any = None
        self.connected_at = time.time()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def push(self, event: str, data: Any) -> None:
        if not self.closed:
            self.queue.put_nowait((event, data))

    def reply(self, request_id: Any, data: Any, error: dict[str, str] | None = None) -> None:
        if not self.closed:
            self.queue.put_nowait((request_id, data, error) if error else (request_id, data))

    async def _write(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            try:
                await self._send(item)
            except Exception as exc:  # the peer went away: the reader side notices and cleans up
                log.debug("sandbox: send failed on %s connection: %s", self.transport, exc)
                return

    def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)

    def describe(self) -> dict[str, Any]:
        return {"transport": self.transport, "username": self.account.username if self.account else None,
                "authenticated": self.account is not None, "games": sorted(self.games),
                "bot_config": self.bot_config, "bot_status": self.bot_status, "connected_at": self.connected_at}


def _move_of(data: dict[str, Any]) -> Any:
    if "move" not in data:
        raise GameError("game/move needs a move: {game_id, move: \"dd\"}")
    return data["move"]


GameOp = Callable[[SandboxGame, int, dict[str, Any], int], Any]
GAME_OPS: dict[str, GameOp] = {  # game command -> what it does, for player id p at time now
    "game/move": lambda g, p, d, now: g.play(p, _move_of(d), now),
    "game/resign": lambda g, p, d, now: g.resign(p, now),
    "game/cancel": lambda g, p, d, now: g.cancel(p, now),
    "game/pause": lambda g, p, d, now: g.pause(p, now),
    "game/resume": lambda g, p, d, now: g.resume(p, now),
    "game/removed_stones/set": lambda g, p, d, now: g.set_removed(p, d.get("stones", ""),
                                                                  bool(d.get("removed", True)), now),
    "game/removed_stones/accept": lambda g, p, d, now: g.accept_removed(p, d.get("stones", ""), now),
    "game/removed_stones/reject": lambda g, p, d, now: g.reject_removed(p, now),
    "game/undo/request": lambda g, p, d, now: g.request_undo(p, d.get("move_number"), now),
    "game/undo/accept": lambda g, p, d, now: g.accept_undo(p, d.get("move_number"), now),
    "game/undo/cancel": lambda g, p, d, now: g.cancel_undo(p, now),
    "game/timed_out": lambda g, p, d, now: g.tick(now),
}


def _game_op(command: str) -> Callable[..., Awaitable[Any]]:
    """The realtime handler of one game command: the authenticated player acts, refusals become game errors."""
    op = GAME_OPS[command]

    async def run(self: OgsSandbox, conn: Conn, data: dict[str, Any]) -> Any:
        game = self._game_for(data, command)
        acct = self._need_account(conn, command, game.id)
        try:
            op(game, acct.id, data, now_ms())
        except GameError as exc:
            raise RequestError("game_error", str(exc), game.id) from None
        finally:
            self.after(game)
        return None

    return run


class OgsSandbox:
    """The server's state and behaviour; lives on the event loop (not thread-safe by itself)."""

    def __init__(self, *, data_dir: Path | None = None, stone_removal_timeout: float | None = 10.0) -> None:
        self.data_dir = data_dir
        self.stone_removal_timeout = stone_removal_timeout
        self.accounts: dict[int, Account] = {}
        self.challenges: dict[int, Challenge] = {}
        self.games: dict[int, SandboxGame] = {}
        self.houses: dict[int, dict[Color, House]] = {}
        self.conns: set[Conn] = set()
        self.tokens: dict[str, int] = {}  # OAuth access tokens
        self.refresh_tokens: dict[str, int] = {}
        self.sessions: dict[str, tuple[int, str]] = {}  # v0 login: sessionid -> (account id, csrf token)
        self.notifications: dict[int, dict[str, dict[str, Any]]] = {}  # account id -> id -> notification
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.house_tasks: dict[tuple[int, Color], asyncio.Task[None]] = {}
        self.over: set[int] = set()  # finished games already wrapped up
        # when each move event of a game was broadcast (time.monotonic(), system-wide on Linux), for benchmarks
        self.move_times: dict[int, list[float]] = {}
        self.closing = False
        # fault rules for tests (control API /sandbox/faults): hold every game/connect's gamedata until released,
        # as a slow server does between announcing a game (active_game) and serving its data
        self.hold_gamedata = False
        self.held_gamedata: list[tuple[Conn, int, bool]] = []  # (connection, game id, with chat)
        self.lose_challenge_answers = 0  # the next N create-challenge calls make the challenge, then drop the answer
        # house opponents that answer the challenges bots send (account id -> its spec, see add_opponent)
        self.opponents: dict[int, dict[str, Any]] = {}
        self.quiet_seek_graph = False  # fault: the seek graph pushes nothing
        self.open_challenges: dict[int, OpenChallenge] = {}  # POST /api/v1/challenges (no opponent named)
        self.seek_graph: set[Conn] = set()  # connections subscribed with seek_graph/connect
        self._ids = {"account": 1000, "game": 5000, "challenge": 9000, "notification": 0}
        self.rng = random.Random()
        self.started = time.time()
        self.load_accounts()
        # Game ids grow across runs (tenths of a second since the epoch, mod 10^8), so the records and transcripts a
        # bridge keys by game id never mix two sandbox runs' games.
        self._ids["game"] = max(self._ids["game"], 5000 + int(self.started * 10) % 10**8)

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # --- accounts ------------------------------------------------------------------------------------------
    def find(self, username: str) -> Account | None:
        for a in self.accounts.values():
            if a.username == username:
                return a
        return None

    def add_account(self, username: Any, *, is_bot: bool, apikey: Any = None, password: Any = None,
                    ranking: Any = 15.0, house: bool = False) -> Account:
        if not isinstance(username, str) or not username.strip() or len(username) > 100:
            raise HttpError(400, "username must be a non-empty string of at most 100 characters")
        if apikey is not None and (not isinstance(apikey, str) or len(apikey) < 4):
            raise HttpError(400, "apikey must be a string of at least 4 characters (or omit it to get one)")
        if password is not None and (not isinstance(password, str) or not password):
            raise HttpError(400, "password must be a non-empty string")
        if isinstance(ranking, bool) or not isinstance(ranking, int | float):
            raise HttpError(400, f"ranking must be a number (OGS ranking: 30 = 1 dan... 0 = 30 kyu), got {ranking!r}")
        existing = self.find(username)
        if existing is not None:
            if existing.house or existing.is_bot != is_bot:
                raise HttpError(409, f"username {username!r} is already taken by another kind of account")
            if apikey is not None:
                existing.apikey = apikey
            if password is not None:
                existing.password = password
            acct = existing
        else:
            acct = Account(self._next("account"), username, is_bot, apikey=apikey, password=password,
                           ranking=float(ranking), house=house)
            if is_bot and acct.apikey is None:
                acct.apikey = secrets.token_hex(20)
            self.accounts[acct.id] = acct
        for secret in (acct.apikey, acct.password):
            if secret:
                register_secret(secret)
        if not house:
            self.save_accounts()
        return acct

    def house_account(self, spec: dict[str, Any]) -> Account:
        name = spec.get("username") or f"house-{spec.get('house')}"
        acct = self.find(name)
        ranking = spec.get("ranking", 15.0)
        if acct is None:
            acct = self.add_account(name, is_bot=True, ranking=ranking, house=True)
        elif not acct.house:
            raise HttpError(409, f"challenger.username {name!r} is a registered account, not a house player; "
                                 f"use {{\"user\": {name!r}}} to have that account play")
        return acct

    def load_accounts(self) -> None:
        if self.data_dir is None:
            return
        path = self.data_dir / "accounts.json"
        if not path.is_file():
            return
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
            for row in rows:
                self.add_account(row["username"], is_bot=bool(row["is_bot"]), apikey=row.get("apikey"),
                                 password=row.get("password"), ranking=row.get("ranking", 15.0))
        except (OSError, ValueError, KeyError, TypeError, HttpError) as exc:
            log.error("sandbox: cannot load %s (%s); starting without its accounts. Fix or delete the file",
                      path, exc)

    def save_accounts(self) -> None:
        if self.data_dir is None:
            return
        rows = [{"username": a.username, "is_bot": a.is_bot, "apikey": a.apikey, "password": a.password,
                 "ranking": a.ranking} for a in self.accounts.values() if not a.house]
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path = self.data_dir / "accounts.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows, indent=1), encoding="utf-8")
            tmp.chmod(0o600)
            tmp.replace(path)
        except OSError as exc:
            log.error("sandbox: cannot save accounts to %s: %s", self.data_dir, exc)

    # --- connections ---------------------------------------------------------------------------------------
    def conns_of(self, account_id: int) -> list[Conn]:
        return [c for c in self.conns if c.account is not None and c.account.id == account_id and not c.closed]

    def push_to_account(self, account_id: int, event: str, data: Any) -> None:
        for c in self.conns_of(account_id):
            c.push(event, data)

    def remove_conn(self, conn: Conn) -> None:
        self.seek_graph.discard(conn)
        if conn in self.conns:
            self.conns.discard(conn)
            conn.close()
            log.info("sandbox: %s connection of %s closed", conn.transport,
                     conn.account.username if conn.account else "an anonymous client")

    async def drop(self, username: str | None) -> int:
        victims = [c for c in list(self.conns)
                   if username is None or (c.account is not None and c.account.username == username)]
        for c in victims:
            self.remove_conn(c)
            with contextlib.suppress(Exception):
                await c.drop()
        return len(victims)

    # --- realtime dispatch ---------------------------------------------------------------------------------
    async def handle(self, conn: Conn, command: Any, data: Any, request_id: Any) -> None:
        """Run one client message and answer it (reply if it had an id, else an error event on refusal)."""
        if not isinstance(command, str):
            conn.push("ERROR", f"malformed message: the first element must be a command name, got {command!r}")
            return
        log.debug("sandbox <- %s %s %s", conn.account.username if conn.account else "-", command, scrub(data))
        try:
            result = await self.dispatch(conn, command, data)
        except RequestError as exc:
            self.refused(conn, command, exc, request_id)
            return
        if request_id is not None:
            conn.reply(request_id, result)

    def refused(self, conn: Conn, command: str, exc: RequestError, request_id: Any) -> None:
        log.info("sandbox: refused %s from %s: %s", command, conn.account.username if conn.account else "-",
                 exc.message)
        if exc.game_id is not None:
            game = self.games.get(exc.game_id)
            if game is not None:
                game.errors.append(f"{command}: {exc.message}")
            conn.push(f"game/{exc.game_id}/error", exc.message)
        if request_id is not None:
            conn.reply(request_id, None, {"code": exc.code, "message": exc.message})
        elif exc.game_id is None:
            conn.push("ERROR", exc.message)

    async def dispatch(self, conn: Conn, command: str, data: Any) -> Any:
        handler = self.HANDLERS.get(command)
        if handler is None:
            if command in self.IGNORED:
                return None
            raise RequestError("unknown_command", f"unknown command {command!r}")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise RequestError("bad_request", f"{command}: the data must be an object, got {type(data).__name__}")
        return await handler(self, conn, data)

    def _need_account(self, conn: Conn, command: str, game_id: int | None = None) -> Account:
        if conn.account is None:
            raise RequestError("not_authenticated", f"{command}: authenticate first (send authenticate with "
                                                    f"your bot_username and bot_apikey)", game_id)
        return conn.account

    def _game_for(self, data: dict[str, Any], command: str) -> SandboxGame:
        gid = data.get("game_id")
        if isinstance(gid, str) and gid.isdigit():
            gid = int(gid)
        if not isinstance(gid, int) or isinstance(gid, bool):
            raise RequestError("bad_request", f"{command}: game_id must be a game number, got {gid!r}")
        game = self.games.get(gid)
        if game is None:
            raise RequestError("game_not_found", f"{command}: there is no game {gid} on this server", gid)
        return game

    # authentication
    async def _authenticate(self, conn: Conn, data: dict[str, Any]) -> Any:
        acct = self._check_auth(data)
        conn.account = acct
        log.info("sandbox: %s authenticated on %s as %s (id %d)", "bot" if acct.is_bot else "user",
                 conn.transport, acct.username, acct.id)
        asyncio.get_running_loop().call_soon(self._after_auth, conn)
        return {"id": acct.id, "username": acct.username}

    def _check_auth(self, data: dict[str, Any]) -> Account:
        if data.get("bot_username") or data.get("bot_apikey"):
            if not data.get("bot_username"):  # gtp2ogs without `username` in its config sends the key alone
                for cand in self.accounts.values():
                    if cand.is_bot and not cand.house and same_secret(cand.apikey, data.get("bot_apikey")):
                        return cand
                raise RequestError("authentication_failed", "authenticate: no bot account has this API key; "
                                                            "use the key POST /sandbox/bots returned")
            acct = self.find(str(data.get("bot_username", "")))
            if acct is None or acct.house or not acct.is_bot:
                raise RequestError("authentication_failed",
                                   f"authenticate: no bot account named {data.get('bot_username')!r} on this "
                                   f"server; create it with POST /sandbox/bots")
            if not same_secret(acct.apikey, data.get("bot_apikey")):
                raise RequestError("authentication_failed",
                                   f"authenticate: wrong API key for bot {acct.username!r}; use the key "
                                   f"POST /sandbox/bots returned")
            return acct
        if data.get("auth") and data.get("player_id") is not None:
            acct = self.accounts.get(to_int(data.get("player_id")))
            if acct is None or not (same_secret(acct.chat_auth, data.get("auth"))
                                    or same_secret(acct.notification_auth, data.get("auth"))):
                raise RequestError("authentication_failed", "authenticate: player_id and auth do not match; use "
                                                            "chat_auth from GET /api/v1/ui/config")
            return acct
        if data.get("apikey"):
            ident = data.get("bot_id", data.get("player_id"))
            acct = self.accounts.get(to_int(ident)) if ident is not None else None
            if acct is None or not same_secret(acct.apikey, data.get("apikey")):
                raise RequestError("authentication_failed", "authenticate: bot_id and apikey do not match")
            return acct
        if data.get("jwt"):
            for acct in self.accounts.values():
                if same_secret(acct.user_jwt, data.get("jwt")):
                    return acct
            raise RequestError("authentication_failed", "authenticate: unknown or expired jwt; get user_jwt from "
                                                        "GET /api/v1/ui/config")
        raise RequestError("authentication_failed",
                           "authenticate needs {jwt: \"\", bot_username, bot_apikey} (bots) or "
                           "{auth: chat_auth, player_id, username, jwt} (users)")

    def _after_auth(self, conn: Conn) -> None:
        acct = conn.account
        if acct is None or conn.closed:
            return
        for game in self.games.values():
            if not game.finished and any(p.id == acct.id for p in game.players.values()):
                conn.push("active_game", game.active_game())
        for note in self.notifications.get(acct.id, {}).values():
            conn.push("notification", note)

    async def _bot_id(self, conn: Conn, data: dict[str, Any]) -> Any:
        acct = self.find(str(data.get("id", "")))
        if acct is None or not acct.is_bot or acct.house:
            raise RequestError("unknown_bot", f"bot/id: no bot account named {data.get('id')!r}")
        return {"id": acct.id, "jwt": ""}

    async def _notification_connect(self, conn: Conn, data: dict[str, Any]) -> Any:
        if conn.account is None:
            conn.account = self._check_auth(data)
            asyncio.get_running_loop().call_soon(self._after_auth, conn)
        return "connected"

    async def _chat_connect(self, conn: Conn, data: dict[str, Any]) -> Any:
        if conn.account is None and (data.get("auth") or data.get("apikey") or data.get("jwt")):
            conn.account = self._check_auth(data)
        return "connected"

    async def _ping(self, conn: Conn, data: dict[str, Any]) -> Any:
        conn.push("net/pong", {"client": data.get("client"), "server": now_ms()})
        return None

    async def _bot_config(self, conn: Conn, data: dict[str, Any]) -> Any:
        self._need_account(conn, "bot/config")
        conn.bot_config = scrub(data)
        return None

    async def _bot_status(self, conn: Conn, data: dict[str, Any]) -> Any:
        self._need_account(conn, "bot/status")
        conn.bot_status = scrub(data)
        return None

    async def _notification_delete(self, conn: Conn, data: dict[str, Any]) -> Any:
        acct = self._need_account(conn, "notification/delete")
        nid = str(data.get("notification_id", ""))
        self.notifications.get(acct.id, {}).pop(nid, None)
        return None

    async def _hostinfo(self, conn: Conn, data: dict[str, Any]) -> Any:
        return {"hostname": "ogs-sandbox", "clients": len(self.conns), "uptime": int(time.time() - self.started),
                "ggs-version": "sandbox"}

    # games
    async def _game_connect(self, conn: Conn, data: dict[str, Any]) -> Any:
        game = self._game_for(data, "game/connect")
        conn.games.add(game.id)
        if self.hold_gamedata:
            self.held_gamedata.append((conn, game.id, bool(data.get("chat"))))
            return None
        self._send_gamedata(conn, game, bool(data.get("chat")))
        return None

    def _send_gamedata(self, conn: Conn, game: SandboxGame, chat: bool) -> None:
        conn.push(f"game/{game.id}/gamedata", game.gamedata(now_ms()))
        if chat:
            for line in game.chat:
                conn.push(f"game/{game.id}/chat", {"channel": line["channel"], "line": line})

    def set_faults(self, spec: Any) -> dict[str, Any]:
        """``POST /sandbox/faults``: ``{"hold_gamedata": bool, "lose_challenge_answers": N, "quiet_seek_graph":
        bool}``; turning the hold off sends what it held; the next N challenges a bot creates (direct or open) are
        made but their answers lost (the connection is cut before the reply); a quiet seek graph pushes nothing."""
        if not isinstance(spec, dict) or set(spec) - {"hold_gamedata", "lose_challenge_answers", "quiet_seek_graph"}:
            raise HttpError(400, "faults: send {\"hold_gamedata\": true|false, \"lose_challenge_answers\": N, "
                                 "\"quiet_seek_graph\": true|false}")
        quiet = spec.get("quiet_seek_graph", self.quiet_seek_graph)
        if not isinstance(quiet, bool):
            raise HttpError(400, f"quiet_seek_graph must be true or false, got {quiet!r}")
        self.quiet_seek_graph = quiet
        lose = spec.get("lose_challenge_answers", self.lose_challenge_answers)
        if isinstance(lose, bool) or not isinstance(lose, int) or lose < 0:
            raise HttpError(400, f"lose_challenge_answers must be a whole number >= 0, got {lose!r}")
        self.lose_challenge_answers = lose
        hold = spec.get("hold_gamedata", self.hold_gamedata)
        if not isinstance(hold, bool):
            raise HttpError(400, f"hold_gamedata must be true or false, got {hold!r}")
        self.hold_gamedata = hold
        if not hold:
            held, self.held_gamedata = self.held_gamedata, []
            for conn, gid, chat in held:
                game = self.games.get(gid)
                if game is not None and conn in self.conns and gid in conn.games:
                    self._send_gamedata(conn, game, chat)
        return self.faults()

    def faults(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hold_gamedata": self.hold_gamedata, "held": len(self.held_gamedata)}
        if self.lose_challenge_answers:
            out["lose_challenge_answers"] = self.lose_challenge_answers
        if self.quiet_seek_graph:
            out["quiet_seek_graph"] = True
        return out

    async def _game_disconnect(self, conn: Conn, data: dict[str, Any]) -> Any:
        gid = to_int(data.get("game_id"))
        conn.games.discard(gid)
        return None

    async def _chat_join(self, conn: Conn, data: dict[str, Any]) -> Any:
        channel = data.get("channel")
        if isinstance(channel, str):
            conn.channels.add(channel)
        return None

    async def _chat_part(self, conn: Conn, data: dict[str, Any]) -> Any:
        conn.channels.discard(str(data.get("channel")))
        return None

    async def _game_chat(self, conn: Conn, data: dict[str, Any]) -> Any:
        game = self._game_for(data, "game/chat")
        acct = self._need_account(conn, "game/chat", game.id)
        channel = data.get("type", "main")
        if game.color_of(acct.id) is None and channel in ("main", "malkovich"):
            channel = "spectator"
        try:
            game.add_chat(acct.player(), channel, data.get("body"), data.get("move_number"), now_ms())
        except GameError as exc:
            raise RequestError("game_error", str(exc), game.id) from None
        return None

    async def _seek_graph_connect(self, conn: Conn, data: dict[str, Any]) -> Any:
        if data.get("channel") != "global":
            raise RequestError("invalid_channel", "seek_graph/connect: channel must be \"global\"")
        self.seek_graph.add(conn)
        if not self.quiet_seek_graph:
            conn.push("seekgraph/global", [oc.entry() for oc in self.open_challenges.values()
                                           if oc.state == "pending"])
        return None

    async def _seek_graph_disconnect(self, conn: Conn, data: dict[str, Any]) -> Any:
        self.seek_graph.discard(conn)
        return None

    HANDLERS: dict[str, Callable[..., Awaitable[Any]]] = {
        "authenticate": _authenticate,
        "bot/id": _bot_id,
        "notification/connect": _notification_connect,
        "chat/connect": _chat_connect,
        "bot/connect": _chat_connect,
        "net/ping": _ping,
        "bot/config": _bot_config,
        "bot/status": _bot_status,
        "notification/delete": _notification_delete,
        "hostinfo": _hostinfo,
        "game/connect": _game_connect,
        "game/disconnect": _game_disconnect,
        "chat/join": _chat_join,
        "chat/part": _chat_part,
        "game/chat": _game_chat,
        "seek_graph/connect": _seek_graph_connect,
        "seek_graph/disconnect": _seek_graph_disconnect,
        **{c: _game_op(c) for c in GAME_OPS},
    }
    IGNORED = frozenset({"net/connects", "net/route_latency", "net/timeout", "net/unrecoverable_error",
                         "game/latency", "challenge/keepalive", "user/monitor", "chat/pm/load", "ui-pushes/subscribe",
                         "ui-pushes/unsubscribe", "automatch/list", "gamelist/count/subscribe",
                         "gamelist/count/unsubscribe",
                         "remote_storage/sync", "game/delayed_resign", "game/clear_delayed_resign"})

    # --- games: events, timers, house players --------------------------------------------------------------
    def emitter(self, game_id: int) -> Callable[[str, Any], None]:
        def emit(event: str, data: Any) -> None:
            game = self.games.get(game_id)
            if event == "active_game":
                if game is not None:
                    for p in game.players.values():
                        self.push_to_account(p.id, "active_game", data)
                return
            log.debug("sandbox -> game %d: %s", game_id, event)
            if event.endswith("/move"):
                self.move_times.setdefault(game_id, []).append(time.monotonic())
            for c in list(self.conns):
                if game_id in c.games:
                    c.push(event, data)

        return emit

    def after(self, game: SandboxGame) -> None:
        """Run after every change to a game: re-arm its timer, wake its house players, keep records."""
        if self.closing:
            return
        loop = asyncio.get_running_loop()
        old = self.timers.pop(game.id, None)
        if old is not None:
            old.cancel()
        if game.finished:
            self._game_over(game)
            return
        deadline = game.next_deadline()
        if deadline is not None:
            delay = max(0.0, (deadline - now_ms()) / 1000) + 0.002
            self.timers[game.id] = loop.call_later(delay, self._on_timer, game.id)
        for color in self.houses.get(game.id, {}):
            key = (game.id, color)
            task = self.house_tasks.get(key)
            if (task is None or task.done()) and self._house_action(game, color) is not None:
                self.house_tasks[key] = loop.create_task(self._house_turn(game, color))

    def _on_timer(self, game_id: int) -> None:
        self.timers.pop(game_id, None)
        game = self.games.get(game_id)
        if game is not None and not game.finished:
            game.tick(now_ms())
            self.after(game)

    def _game_over(self, game: SandboxGame) -> None:
        if game.id in self.over:
            return
        self.over.add(game.id)
        log.info("sandbox: game %d finished: %s (%s)", game.id, game.outcome, game.result_string())
        for color, house in self.houses.pop(game.id, {}).items():
            task = self.house_tasks.pop((game.id, color), None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
            asyncio.get_running_loop().create_task(house.close())
        if self.data_dir is not None:
            try:
                gdir = self.data_dir / "games"
                gdir.mkdir(parents=True, exist_ok=True)
                (gdir / f"{game.id}.sgf").write_text(game.sgf(), encoding="utf-8")
                (gdir / f"{game.id}.json").write_text(json.dumps(game.summary(now_ms()), indent=1), encoding="utf-8")
            except OSError as exc:
                log.error("sandbox: cannot write the record of game %d to %s: %s", game.id, self.data_dir, exc)

    def _house_action(self, game: SandboxGame, color: Color) -> str | None:
        me = game.players[color].id
        house = self.houses.get(game.id, {}).get(color)
        if house is None or game.finished:
            return None
        undo = game.pending_undo()
        if game.phase == "play":
            if undo is not None and undo.requested_by != me and house.accept_undo:
                return "accept_undo"
            if game.to_move == color and not game.paused and not (undo is not None and undo.requested_by == me):
                return "move"
        elif game.phase == "stone removal" and house.rejected < house.reject_removals:
            return "reject_removal"
        elif game.phase == "stone removal" and color not in game.accepted:
            return "accept_removal"
        return None

    @staticmethod
    def _state_key(game: SandboxGame) -> tuple[Any, ...]:
        undo = game.pending_undo()
        return (game.phase, len(game.moves), frozenset(game.removal), frozenset(game.accepted),
                frozenset(game.pause_control), undo.move_number if undo else None)

    async def _house_turn(self, game: SandboxGame, color: Color) -> None:
        house = self.houses[game.id][color]
        player = game.players[color]
        try:
            action = self._house_action(game, color)
            key = self._state_key(game)
            await asyncio.sleep(house.delay)
            if game.finished or self._house_action(game, color) != action or self._state_key(game) != key:
                return
            now = now_ms()
            if action == "accept_undo":
                undo = game.pending_undo()
                game.accept_undo(player.id, undo.move_number if undo else None, now)
            elif action == "accept_removal":
                game.accept_removed(player.id, encode_points(game.removal), now)
            elif action == "reject_removal":
                house.rejected += 1
                game.reject_removed(player.id, now)
            elif action == "move":
                try:
                    choice = await house.choose(game, color)
                except Exception as exc:  # a broken engine: the house resigns, saying why
                    house.error = f"{type(exc).__name__}: {exc}"
                    log.warning("sandbox: house player %s in game %d failed: %s", player.username, game.id, exc)
                    if not game.finished:
                        game.add_chat(player, "main", f"house engine failed ({house.error}); resigning", None,
                                      now_ms())
                        game.resign(player.id, now_ms())
                    return
                if game.finished or self._state_key(game) != key:
                    return
                now = now_ms()
                if choice == "resign":
                    game.resign(player.id, now)
                else:
                    try:
                        game.play(player.id, [choice[0], choice[1]] if isinstance(choice, tuple) else [-1, -1], now)
                    except GameError as exc:  # e.g. a scripted move made illegal by the bot's play
                        fallback = "resigning" if choice is None or game.placing_handicap else "passing instead"
                        game.errors.append(f"house {player.username}: {exc}; {fallback}")
                        if not game.finished and fallback == "resigning":
                            game.resign(player.id, now_ms())
                        elif not game.finished:
                            game.play(player.id, [-1, -1], now_ms())
        except GameError as exc:
            game.errors.append(f"house {player.username}: {exc}")
        finally:
            if self.house_tasks.get((game.id, color)) is asyncio.current_task():
                del self.house_tasks[(game.id, color)]
            if game.id in self.games:
                self.after(game)

    # --- challenges ----------------------------------------------------------------------------------------
    def game_settings(self, spec: dict[str, Any]) -> tuple[GameSettings, str, Any]:
        """A challenge spec's game (validated): ``(settings, challenger_color, komi as sent)``."""
        width, height = _size(spec)
        rules = spec.get("rules", "chinese")
        try:
            rs = ruleset(str(rules))
        except ValueError as exc:
            raise HttpError(400, f"rules: {exc}") from None
        handicap = spec.get("handicap", 0)
        max_handicap = min(25, width * height // 2)
        if isinstance(handicap, bool) or not isinstance(handicap, int) or not 0 <= handicap <= max_handicap:
            raise HttpError(400, f"handicap must be a whole number from 0 to {max_handicap} on {width}x{height}, "
                                 f"got {handicap!r}")
        komi = spec.get("komi")
        if komi is not None and (isinstance(komi, bool) or not isinstance(komi, int | float) or abs(komi) > 1000):
            raise HttpError(400, f"komi must be a number or null (automatic), got {komi!r}")
        color = spec.get("challenger_color", "automatic")
        if color not in ("black", "white", "automatic", "random"):
            raise HttpError(400, f"challenger_color must be black, white, automatic or random, got {color!r}")
        try:
            tc = normalize_time_control(spec.get("time_control", DEFAULT_TIME_CONTROL), width, height)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        free = spec.get("free_handicap")
        stars = fixed_handicap_points(width, height, handicap)
        if free is None:
            free = default_free_handicap(rs.name, width, height, handicap)
        if not isinstance(free, bool):
            raise HttpError(400, f"free_handicap must be true, false or null (rules default), got {free!r}")
        if handicap and not free and stars is None:
            raise HttpError(400, f"fixed handicap {handicap} has no standard placement on {width}x{height}; "
                                 f"use free_handicap: true")
        srt = spec.get("stone_removal_timeout", self.stone_removal_timeout)
        if srt is not None and (isinstance(srt, bool) or not isinstance(srt, int | float) or srt < 0):
            raise HttpError(400, f"stone_removal_timeout must be seconds >= 0 or null (wait for both players), "
                                 f"got {srt!r}")
        for key in ("ranked", "disable_analysis"):
            if not isinstance(spec.get(key, False), bool):
                raise HttpError(400, f"{key} must be true or false")
        name = spec.get("name", "Friendly Match")
        if not isinstance(name, str):
            raise HttpError(400, "name must be a string")
        settings = GameSettings(
            width=width, height=height, rules=rs.name, ranked=bool(spec.get("ranked", False)), handicap=handicap,
            komi=float(komi) if komi is not None else rs.auto_komi(handicap),
            free_handicap=bool(free) if handicap else rs.free_handicap,
            initial_black=tuple(stars) if handicap and not free and stars else (),
            time_control=tc, name=name, disable_analysis=bool(spec.get("disable_analysis", False)),
            stone_removal_timeout=float(srt) if srt is not None else None)
        return settings, color, komi

    def create_challenge(self, spec: Any, *, house_target: Account | None = None) -> Challenge:
        """A challenge to a bot (control API: from a house player or a registered account), or, with
        ``house_target``, a bot's challenge to a house opponent (``spec["challenger"]`` names the bot)."""
        if not isinstance(spec, dict):
            raise HttpError(400, "the challenge must be a JSON object such as {\"target\": \"mybot\"}")
        target = house_target or self.find(str(spec.get("target", "")))
        if target is None or (target.house and house_target is None):
            raise HttpError(404, f"target {spec.get('target')!r} is not a registered account; create it with "
                                 f"POST /sandbox/bots first")
        settings, color, komi = self.game_settings(spec)
        width, height, handicap, tc, name = (settings.width, settings.height, settings.handicap,
                                             settings.time_control, settings.name)
        rs = ruleset(settings.rules)

        cspec = spec.get("challenger", {"house": "random"})
        if not isinstance(cspec, dict):
            raise HttpError(400, "challenger must be {\"house\": \"random\"|\"scripted\"|\"gtp\", ...} or "
                                 "{\"user\": USERNAME}")
        house: House | None = None
        if "user" in cspec:
            challenger = self.find(str(cspec["user"]))
            if challenger is None or challenger.house:
                raise HttpError(404, f"challenger.user {cspec['user']!r} is not a registered account")
            if challenger.id == target.id:
                raise HttpError(400, "a bot cannot challenge itself")
            if house_target is not None:
                try:
                    house = make_house(self.opponents[target.id], name=target.username)
                except ValueError as exc:
                    raise HttpError(400, str(exc)) from None
        else:
            try:
                house = make_house(cspec, name=f"house-{spec.get('target')}")
            except ValueError as exc:
                raise HttpError(400, str(exc)) from None
            challenger = self.house_account(cspec)

        cid = self._next("challenge")
        gid = self._next("game")
        nid = f"{target.id}:{self._next('notification')}"
        min_rank = spec.get("min_ranking", int(challenger.ranking))
        note = {
            "id": nid, "type": "challenge", "player_id": target.id, "timestamp": int(time.time()),
            "read_timestamp": 0, "read": 0, "aux_delivered": 0,
            "challenge_id": cid, "game_id": gid, "challenger_color": color,
            "user": {"id": challenger.id, "username": challenger.username, "ranking": challenger.ranking,
                     "professional": False, "ui_class": "bot" if challenger.is_bot else ""},
            "rules": rs.name, "ranked": settings.ranked, "aga_rated": False,
            "disable_analysis": settings.disable_analysis, "handicap": handicap, "komi": komi,
            "width": width, "height": height, "time_control": tc, "name": name,
            "min_ranking": min_rank, "max_ranking": spec.get("max_ranking", 1000),
        }
        ch = Challenge(cid, gid, target, challenger, house, settings, color, note)
        self.challenges[cid] = ch
        self.notifications.setdefault(target.id, {})[nid] = note
        self.push_to_account(target.id, "notification", note)
        log.info("sandbox: challenge %d (game %d) from %s to %s: %dx%d %s, handicap %d, %s", cid, gid,
                 challenger.username, target.username, width, height, rs.name, handicap, tc["system"])
        return ch

    def _resolve(self, ch: Challenge) -> None:
        nid = ch.notification["id"]
        if self.notifications.get(ch.target.id, {}).pop(nid, None) is not None:
            self.push_to_account(ch.target.id, "notification", {"id": nid, "type": "delete"})

    def accept(self, ch: Challenge, who: Account) -> SandboxGame:
        if who.id != ch.target.id:
            raise HttpError(403, f"challenge {ch.id} is addressed to {ch.target.username}, not {who.username}")
        if ch.state != "pending":
            raise HttpError(404, f"challenge {ch.id} is no longer open (it was {ch.state})")
        color = ch.challenger_color
        if color == "automatic" and ch.settings.handicap and ch.target.ranking != ch.challenger.ranking:
            color = "black" if ch.challenger.ranking < ch.target.ranking else "white"
        if color not in ("black", "white"):
            color = self.rng.choice(["black", "white"])
        colors: dict[Color, Account] = {"black": ch.challenger, "white": ch.target} if color == "black" else \
            {"black": ch.target, "white": ch.challenger}
        ch.state = "accepted"
        self._resolve(ch)
        game = SandboxGame(ch.game_id, ch.settings, colors["black"].player(), colors["white"].player(), now_ms(),
                           self.emitter(ch.game_id))
        self.games[game.id] = game
        if ch.house is not None:
            house_id = ch.target.id if ch.target.house else ch.challenger.id
            hc: Color = "black" if colors["black"].id == house_id else "white"
            self.houses[game.id] = {hc: ch.house}
        log.info("sandbox: game %d started: %s (black) vs %s (white)", game.id, colors["black"].username,
                 colors["white"].username)
        for acct in colors.values():
            self.push_to_account(acct.id, "active_game", game.active_game())
        self.after(game)
        return game

    def reject(self, ch: Challenge, who: Account, message: Any, details: Any) -> None:
        if who.id != ch.target.id:
            raise HttpError(403, f"challenge {ch.id} is addressed to {ch.target.username}, not {who.username}")
        if ch.state != "pending":
            raise HttpError(404, f"challenge {ch.id} is no longer open (it was {ch.state})")
        if isinstance(details, str):
            with contextlib.suppress(ValueError):
                details = json.loads(details)
        ch.state = "rejected"
        ch.message = message if isinstance(message, str) else None
        ch.rejection_details = details
        self._resolve(ch)
        log.info("sandbox: challenge %d rejected by %s: %s", ch.id, who.username, ch.message)
        if not ch.challenger.house:  # as OGS tells a challenger (the web client's ChallengeModal waits for it)
            nid = f"{ch.challenger.id}:{self._next('notification')}"
            note = {"id": nid, "type": "gameOfferRejected", "player_id": ch.challenger.id,
                    "timestamp": int(time.time()), "read_timestamp": 0, "read": 0, "aux_delivered": 0,
                    "game_id": ch.game_id, "challenge_id": ch.id, "message": ch.message,
                    "rejection_details": details, "user": {"id": who.id, "username": who.username}}
            self.notifications.setdefault(ch.challenger.id, {})[nid] = note
            self.push_to_account(ch.challenger.id, "notification", note)

    def cancel(self, ch: Challenge, who: Account) -> None:
        """The challenger withdraws its challenge (``DELETE /api/v1/me/challenges/{id}``)."""
        if who.id != ch.challenger.id:
            raise HttpError(403, f"challenge {ch.id} was sent by {ch.challenger.username}, not {who.username}")
        if ch.state != "pending":
            raise HttpError(404, f"challenge {ch.id} is no longer open (it was {ch.state})")
        ch.state = "canceled"
        self._resolve(ch)
        log.info("sandbox: challenge %d canceled by %s", ch.id, who.username)

    # --- house opponents: they answer the challenges bots send ----------------------------------------------
    def add_opponent(self, spec: Any) -> Account:
        """``POST /sandbox/opponents``: a house player bots can challenge. Besides the house keys (``house``,
        ``delay``, ``seed``, ...): ``answer_delay`` (seconds before it answers, default 0.2), ``silent`` (never
        answers), and its decline rule, checked in this order: ``decline_all``, ``decline_ranked`` (declines ranked
        games), ``decline_sizes`` (a list of board sizes it declines). It declines as gtp2ogs does (a
        ``rejection_code``); the challenger gets OGS's ``gameOfferRejected`` notification."""
        if not isinstance(spec, dict) or not isinstance(spec.get("username"), str):
            raise HttpError(400, "an opponent is {\"username\": NAME, \"house\": \"random\", ...}")
        spec = dict(spec)
        spec.setdefault("house", "random")
        try:
            make_house(spec, name=spec["username"])  # validated now, built per challenge
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        delay = spec.get("answer_delay", 0.2)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise HttpError(400, f"answer_delay must be seconds >= 0, got {delay!r}")
        sizes = spec.get("decline_sizes", [])
        if not isinstance(sizes, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in sizes):
            raise HttpError(400, f"decline_sizes must be a list of board sizes, got {sizes!r}")
        take = spec.setdefault("accept_open", 0)
        if isinstance(take, bool) or not isinstance(take, int) or take < 0:
            raise HttpError(400, f"accept_open must be a whole number >= 0 (open challenges to take), got {take!r}")
        acct = self.house_account(spec)
        self.opponents[acct.id] = spec
        self._offer_open()
        return acct

    def bot_challenge(self, who: Account, player_id: int, body: dict[str, Any]) -> Challenge:
        """``POST /api/v1/players/{id}/challenge``: OGS's challenge body ``{challenger_color, min_ranking,
        max_ranking, game{name, rules, ranked, width, height, handicap, komi_auto, komi, time_control_parameters,
        ...}}``. The challenged is a house opponent (it answers by its rule) or a registered account (a bot that
        answers the ``notification`` itself, as on OGS)."""
        target = self.accounts.get(player_id)
        if target is None:
            raise HttpError(404, "Not found.")
        if target.id == who.id:
            raise HttpError(400, "You cannot challenge yourself")
        if target.house and target.id not in self.opponents:
            raise HttpError(400, f"{target.username} does not take challenges; make a house player that does with "
                                 f"POST /sandbox/opponents")
        spec = _spec_of(who, body)
        if target.id not in self.opponents:  # a registered account (another bot): it answers itself
            return self.create_challenge({**spec, "target": target.username})
        ch = self.create_challenge(spec, house_target=target)
        delay = float(self.opponents[target.id].get("answer_delay", 0.2))
        if not self.opponents[target.id].get("silent"):
            asyncio.get_running_loop().call_later(delay, self._opponent_answers, ch.id)
        return ch

    def _opponent_answers(self, cid: int) -> None:
        ch = self.challenges.get(cid)
        if ch is None or ch.state != "pending" or self.closing:
            return
        refusal = _refusal(self.opponents.get(ch.target.id, {}), ch.settings)
        if refusal is None:
            try:
                self.accept(ch, ch.target)
            except HttpError as exc:
                log.warning("sandbox: house opponent %s could not accept challenge %d: %s", ch.target.username, cid,
                            exc.message)
            return
        code, message = refusal
        self.reject(ch, ch.target, message, {"rejection_code": code, "details": {}})

    # --- open challenges and the seek graph ------------------------------------------------------------------
    def open_challenge(self, who: Account, body: dict[str, Any]) -> OpenChallenge:
        """``POST /api/v1/challenges``: an open challenge (no opponent named; anyone whose rank is within
        ``min_ranking``..``max_ranking`` may accept). The seek graph's subscribers see it at once; a house opponent
        with ``accept_open`` left takes it by its rule."""
        spec = _spec_of(who, body)
        settings, color, komi = self.game_settings(spec)
        lo, hi = spec["min_ranking"], spec["max_ranking"]
        for key, v in (("min_ranking", lo), ("max_ranking", hi)):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise HttpError(400, f"{key} must be a number, got {v!r}")
        oc = OpenChallenge(self._next("challenge"), self._next("game"), who, settings, color, komi, lo, hi)
        self.open_challenges[oc.id] = oc
        log.info("sandbox: open challenge %d (game %d) from %s: %dx%d %s, %s", oc.id, oc.game_id, who.username,
                 settings.width, settings.height, settings.rules, settings.time_control["system"])
        self._push_graph([oc.entry()])
        self._offer_open()
        return oc

    def cancel_open(self, oc: OpenChallenge, who: Account) -> None:
        if who.id != oc.challenger.id:
            raise HttpError(403, f"challenge {oc.id} was sent by {oc.challenger.username}, not {who.username}")
        if oc.state != "pending":
            raise HttpError(404, f"challenge {oc.id} is no longer open (it was {oc.state})")
        oc.state = "canceled"
        log.info("sandbox: open challenge %d canceled by %s", oc.id, who.username)
        self._push_graph([{"challenge_id": oc.id, "delete": True}])

    def accept_open(self, oc: OpenChallenge, who: Account) -> SandboxGame:
        """``who`` (a house opponent) takes the open challenge: its game starts; the seek graph says so
        (``game_started``), then drops the entry (``delete``)."""
        if oc.state != "pending":
            raise HttpError(404, f"challenge {oc.id} is no longer open (it was {oc.state})")
        try:
            house = make_house(self.opponents[who.id], name=who.username) if who.id in self.opponents else None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        ch = Challenge(oc.id, oc.game_id, who, oc.challenger, house, oc.settings, oc.color, {"id": ""})
        game = self.accept(ch, who)
        oc.state, oc.accepted_by = "accepted", who.username
        self._push_graph([{"challenge_id": oc.id, "game_started": True, "game_id": game.id,
                           "creator": oc.challenger.id, "black": game.players["black"].entry(),
                           "white": game.players["white"].entry(), "time_control": oc.settings.time_control["system"],
                           "time_control_parameters": oc.settings.time_control},
                          {"challenge_id": oc.id, "delete": True}])
        return game

    def _offer_open(self) -> None:
        """Match the pending open challenges with the house opponents that accept open ones (``accept_open``)."""
        for oc in self.open_challenges.values():
            if oc.state != "pending" or oc.taker is not None:
                continue
            for acct_id, rule in self.opponents.items():
                acct = self.accounts[acct_id]
                if (rule.get("accept_open", 0) <= 0 or acct_id == oc.challenger.id
                        or _refusal(rule, oc.settings) is not None
                        or not oc.min_ranking <= acct.ranking <= oc.max_ranking):
                    continue
                rule["accept_open"] -= 1
                oc.taker = acct_id
                delay = float(rule.get("answer_delay", 0.2))
                if delay > 0:
                    asyncio.get_running_loop().call_later(delay, self._open_taken, oc.id)
                else:  # at once: before the creator has the create call's answer
                    self._open_taken(oc.id)
                break

    def _open_taken(self, cid: int) -> None:
        oc = self.open_challenges.get(cid)
        if oc is None or oc.taker is None or self.closing:
            return
        if oc.state != "pending":  # withdrawn meanwhile: the house opponent takes the next one instead
            self.opponents[oc.taker]["accept_open"] += 1
            self._offer_open()
            return
        try:
            self.accept_open(oc, self.accounts[oc.taker])
        except HttpError as exc:
            log.warning("sandbox: house opponent could not take open challenge %d: %s", cid, exc.message)

    def _push_graph(self, entries: list[dict[str, Any]]) -> None:
        for conn in list(self.seek_graph):
            if not conn.closed and not self.quiet_seek_graph:
                conn.push("seekgraph/global", entries)

    # --- control helpers -----------------------------------------------------------------------------------
    def game_or_404(self, gid: Any) -> SandboxGame:
        game = self.games.get(to_int(gid))
        if game is None:
            raise HttpError(404, f"there is no started game {gid!r} (a challenge's game starts when accepted)")
        return game

    def game_view(self, gid: Any) -> dict[str, Any]:
        """GET /sandbox/games/ID: a started game's summary, or a stub (phase ``challenge`` or ``declined``) for the
        game id a challenge has reserved but not started."""
        game = self.games.get(to_int(gid))
        if game is not None:
            return game.summary(now_ms())
        for ch in self.challenges.values():
            if ch.game_id == to_int(gid):
                return {"id": ch.game_id, "game_id": ch.game_id, "challenge_id": ch.id,
                        "phase": "challenge" if ch.state == "pending" else "declined",
                        "challenge_state": ch.state, "width": ch.settings.width, "height": ch.settings.height,
                        "players": {}, "target": ch.target.username, "challenger": ch.challenger.username,
                        "moves": [], "move_strings": [], "move_colors": [], "outcome": None, "winner": None,
                        "score": "", "errors": [], "chat": []}
        raise HttpError(404, f"there is no game {gid!r} (no challenge reserved this id)")

    def move_times_view(self, with_times: bool) -> list[dict[str, Any]]:
        """GET /sandbox/move_times: per started game, its phase, players, move colours and (``with_times``) when
        each move was broadcast, in seconds of ``time.monotonic()``."""
        out = []
        for game in self.games.values():
            row: dict[str, Any] = {"game_id": game.id, "phase": game.phase,
                                   "black": game.players["black"].username, "white": game.players["white"].username,
                                   "move_colors": [c for c, _, _ in game.moves]}
            if with_times:
                row["times"] = list(self.move_times.get(game.id, []))
            out.append(row)
        return out

    def control_side(self, game: SandboxGame, body: dict[str, Any]) -> Player:
        """The player a control action acts for: ``username`` in the body, else the house side, else the
        challenger's side."""
        name = body.get("username")
        if name is not None:
            for p in game.players.values():
                if p.username == name:
                    return p
            raise HttpError(400, f"{name!r} is not a player in game {game.id}")
        houses = self.houses.get(game.id, {})
        if houses:
            return game.players[next(iter(houses))]
        for ch in self.challenges.values():
            if ch.game_id == game.id:
                color = game.color_of(ch.challenger.id)
                if color is not None:
                    return game.players[color]
        return game.players["white"]

    async def shutdown(self) -> None:
        self.closing = True
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for task in list(self.house_tasks.values()):
            task.cancel()
        for task in list(self.house_tasks.values()):
            with contextlib.suppress(BaseException):
                await task
        self.house_tasks.clear()
        houses = [h for hs in self.houses.values() for h in hs.values()]
        houses += [ch.house for ch in self.challenges.values() if ch.house is not None]
        for h in houses:
            with contextlib.suppress(Exception):
                await h.close()
        await self.drop(None)


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        return -1
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return -1


def _size(spec: dict[str, Any]) -> tuple[int, int]:
    size = spec.get("size")
    width = spec.get("width", size if size is not None else 19)
    height = spec.get("height", size if size is not None else width)
    for key, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 25:
            raise HttpError(400, f"{key} must be a whole number from 1 to 25, got {v!r}")
    return width, height


def _spec_of(who: Account, body: dict[str, Any]) -> dict[str, Any]:
    """OGS's challenge body ``{challenger_color, min_ranking, max_ranking, game{...}}`` as a sandbox spec."""
    game = body.get("game")
    if not isinstance(game, dict):
        raise HttpError(400, "the challenge needs a game object: {game: {rules, ranked, width, height, ...}}")
    tc = game.get("time_control_parameters")
    if isinstance(tc, str):
        with contextlib.suppress(ValueError):
            tc = json.loads(tc)
    komi = game.get("komi") if game.get("komi_auto") == "custom" else None
    spec = {"width": game.get("width", 19), "height": game.get("height", 19), "rules": game.get("rules",
            "japanese"), "ranked": game.get("ranked", False), "handicap": game.get("handicap", 0), "komi": komi,
            "challenger_color": body.get("challenger_color", "automatic"), "name": game.get("name",
            "Friendly Match"), "time_control": tc, "min_ranking": body.get("min_ranking", -1000),
            "max_ranking": body.get("max_ranking", 1000), "challenger": {"user": who.username}}
    if spec["handicap"] == -1:  # automatic: from the ranks (equal in the sandbox)
        spec["handicap"] = 0
    return spec


def _refusal(rule: dict[str, Any], s: GameSettings) -> tuple[str, str] | None:
    """A house opponent's decline rule: ``(rejection_code, message)``, or None when it plays the game."""
    if rule.get("decline_all"):
        return "not_accepting_new_challenges", "This bot is not accepting new challenges at this time."
    if rule.get("decline_ranked") and s.ranked:
        return "ranked_not_allowed", "This bot only plays unranked games."
    if s.width in rule.get("decline_sizes", []) or s.height in rule.get("decline_sizes", []):
        return "board_size_not_allowed", f"This bot does not play on {s.width}x{s.height}."
    return None
