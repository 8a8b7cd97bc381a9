"""The OGS client adapter: realtime connection, authentication, challenges, game state, reconnects.

Threads: the transport's reader thread only enqueues (event, receipt time); one adapter thread (``run``) owns
all state, processes the queue in order, sends pings, and reconnects; REST calls (accept/reject) run on a
small worker pool so that a slow HTTP answer never delays a game's events. Sessions call the
:class:`OgsGoActions` of their game from their own threads; those calls are queued to the adapter thread
too, tagged with the connection they were made on, so nothing meant for a dead connection is sent on the
next one (the session re-sends a lost move after the resync, see ``GoState.sync_id``).
"""

from __future__ import annotations

import logging
import queue
import random
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bridge.adapters.ogs.api import OgsRest, RestError
from bridge.adapters.ogs.codec import (
    RawClock,
    corrected_clock,
    decode_move_array,
    decode_point,
    decode_points,
    default_handicap_stones,
    describe_time_control,
    encode_point,
    encode_points,
    parse_clock,
    parse_result,
    parse_time_control,
    pause_reasons,
    stops_play,
)
from bridge.adapters.ogs.config import OgsServerConfig
from bridge.adapters.ogs.policy import Challenge, Decision, bot_config, decide, parse_challenge
from bridge.adapters.ogs.transport import (
    RequestRefused,
    RequestTimeout,
    Transport,
    TransportError,
    http_url,
    make_transport,
)
from bridge.errors import AuthError, ConfigError, FatalAdapterError, ServerError
from bridge.events import (
    ActionRejected,
    ChatReceived,
    CheckLine,
    GameAbandoned,
    GameEvent,
    GameInbox,
    Host,
    StateUpdate,
    UndoRequested,
    engine_problem,
    host_ready,
)
from bridge.games.gotypes import (
    ClockState,
    Color,
    GoResult,
    GoSettings,
    GoState,
    Move,
    Phase,
    Point,
    TimeControl,
    color_of_move,
)
from bridge.redact import redact

log = logging.getLogger("bridge.ogs")

PONG_MISSES = 3  # pings without a pong before the connection counts as dead
GAMEDATA_WAIT = 15.0  # seconds to wait for a game's gamedata before asking again
GAMEDATA_TRIES = 4  # game/connect attempts before the game is given up
FINISH_WAIT = 8.0  # seconds to wait for the final gamedata after a bare "finished" phase
RESERVATION_TTL = 60.0  # an accepted challenge whose game never shows up stops counting this long after the accept
STABLE_CONNECTION = 30.0  # a connection that lived this long resets the reconnect backoff
RULE_KOMI = {"chinese": 7.5, "aga": 7.5, "japanese": 6.5, "korean": 6.5, "ing": 7.5, "nz": 7.0}
FREE_HANDICAP_RULES = {"chinese", "ing", "nz"}
IGNORED_GAME_EVENTS = {"reset-chats", "latency", "auto_resign", "clear_auto_resign", "player_update",
                       "conditional_moves", "stalling_score_estimate", "chat/remove", "undo_canceled"}


# --- clock synchronisation ---------------------------------------------------------------------------
class ClockSync:
    """Latency and server clock drift from ``net/ping``/``net/pong`` (goban's formulas), as the median of
    the recent samples so that one slow pong does not move every clock. Drift > 0: our clock is ahead."""

    def __init__(self, samples: int = 9) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=samples)

    def add(self, client_ms: float, server_ms: float, now_ms: float) -> tuple[float, float]:
        latency = max(0.0, now_ms - client_ms)
        drift = now_ms - latency / 2 - server_ms
        self._samples.append((latency, drift))
        return latency, drift

    @property
    def latency(self) -> float:
        return statistics.median(s[0] for s in self._samples) if self._samples else 0.0

    @property
    def drift(self) -> float:
        return statistics.median(s[1] for s in self._samples) if self._samples else 0.0

    @property
    def count(self) -> int:
        return len(self._samples)


# --- credentials ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Credentials:
    apikey: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    password: str | None = None


def _resolve_credentials(server: OgsServerConfig) -> _Credentials:
    """Read the secrets now (each is registered with bridge.redact). Raises ConfigError."""
    if server.auth == "apikey":
        assert server.api_key is not None
        return _Credentials(apikey=server.api_key.resolve("server.api_key").get_secret_value())
    assert server.password is not None
    secret = server.client_secret.resolve("server.client_secret").get_secret_value() \
        if server.client_secret is not None else None
    return _Credentials(client_id=server.client_id, client_secret=secret,
                        password=server.password.resolve("server.password").get_secret_value())


# --- gamedata ------------------------------------------------------------------------------------------
@dataclass
class _GameData:
    width: int
    height: int
    komi: float
    rules: str
    handicap: int
    free_handicap: bool
    initial_black: tuple[Point, ...]
    initial_white: tuple[Point, ...]
    initial_player: Color
    time_control: TimeControl
    black_id: int | None
    white_id: int | None
    black_name: str
    white_name: str
    ranked: bool
    moves: list[Move]
    phase: Phase
    clock: Any
    removal: frozenset[Point]
    accepted_stones: dict[Color, frozenset[Point]]
    winner_id: int | None
    outcome: str
    paused: bool | None
    pause_reasons: frozenset[str] = frozenset()


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} is not a number (got {value!r})")
    try:
        return int(float(value))
    except ValueError:
        raise ValueError(f"{what} is not a number (got {value!r})") from None


def _opt_id(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _required_id(data: Mapping[str, Any], key: str) -> int:
    """``data[key]`` as an id; ValueError saying whether it is missing or what it holds instead."""
    value = data.get(key)
    ident = _opt_id(value)
    if ident is None:
        if value is None:
            raise ValueError(f"field {key!r} is missing")
        raise ValueError(f"field {key!r} is not a number (got {_short_repr(value)})")
    return ident


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _player(data: Mapping[str, Any], color: Color) -> tuple[int | None, str]:
    players = data.get("players")
    entry = players.get(color) if isinstance(players, Mapping) else None
    if isinstance(entry, Mapping):
        return _opt_id(entry.get("id")), str(entry.get("username") or color)
    return _opt_id(data.get(f"{color}_player_id")), color


def _decode_moves(raw: Any, width: int, height: int, what: str) -> list[Move]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{what} is not a list")
    out: list[Move] = []
    for i, item in enumerate(raw):
        out.append(_decode_move(item, width, height, f"{what}[{i}]"))
    return out


def _decode_move(item: Any, width: int, height: int, what: str) -> Move:
    if isinstance(item, str):
        try:
            move = decode_point(item)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    elif isinstance(item, list | tuple):
        try:
            move = decode_move_array([_as_int(v, what) for v in item[:2]])
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    else:
        raise ValueError(f"{what} is not a move (got {item!r})")
    if move is not None and not (0 <= move[0] < width and 0 <= move[1] < height):
        raise ValueError(f"{what}: {move} is off the {width}x{height} board")
    return move


def _points(value: Any, what: str) -> tuple[Point, ...]:
    if value in (None, ""):
        return ()
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string of two-letter coordinates")
    return tuple(decode_points(value))


def parse_gamedata(data: Any) -> _GameData:
    """A ``game/ID/gamedata`` payload -> validated fields. Raises ValueError naming the bad field."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    width = _as_int(data.get("width", 19), "width")
    height = _as_int(data.get("height", 19), "height")
    if not (1 <= width <= 25 and 1 <= height <= 25):
        raise ValueError(f"board size {width}x{height} is not supported (1..25)")
    rules = str(data.get("rules") or "japanese").lower()
    handicap = _as_int(data.get("handicap") or 0, "handicap")
    if data.get("komi") is not None:
        komi = _as_float(data["komi"], "komi")
    else:  # goban's defaults per rule set; with a handicap only the fraction is kept
        komi = RULE_KOMI.get(rules, 0.0)
        if handicap:
            komi -= int(komi)
    tc = parse_time_control(data.get("time_control"), "time_control")
    standard = width == height and width in (9, 13, 19)
    free = data.get("free_handicap_placement")
    if free is None:
        free = rules in FREE_HANDICAP_RULES or not standard
    free = bool(free)
    initial = data.get("initial_state")
    initial_black: tuple[Point, ...] = ()
    initial_white: tuple[Point, ...] = ()
    if isinstance(initial, Mapping):
        initial_black = _points(initial.get("black"), "initial_state.black")
        initial_white = _points(initial.get("white"), "initial_state.white")
    elif initial is None and handicap > 1 and not free:
        stones = default_handicap_stones(width, height, handicap)
        if stones is None:
            free = True
        else:  # goban places the stones itself and gives white the first move
            initial_black = stones
            data = {**data, "initial_player": "white"}
    for p in initial_black + initial_white:
        if not (0 <= p[0] < width and 0 <= p[1] < height):
            raise ValueError(f"initial_state stone {p} is off the {width}x{height} board")
    raw_initial = data.get("initial_player")
    initial_player: Color = "white" if (initial_black and handicap > 1 and not free) else "black"
    if raw_initial in ("black", "white"):
        initial_player = "white" if raw_initial == "white" else "black"
    black_id, black_name = _player(data, "black")
    white_id, white_name = _player(data, "white")
    phase = data.get("phase", "play")
    if phase not in ("play", "stone removal", "finished"):
        raise ValueError(f"unknown phase {phase!r}")
    removed = data.get("removed")
    removal = frozenset(_points(removed, "removed")) if isinstance(removed, str) else frozenset()
    accepted: dict[Color, frozenset[Point]] = {}
    players = data.get("players")
    if isinstance(players, Mapping):
        for color in ("black", "white"):
            entry = players.get(color)
            if isinstance(entry, Mapping) and isinstance(entry.get("accepted_stones"), str):
                accepted["black" if color == "black" else "white"] = frozenset(
                    _points(entry["accepted_stones"], f"players.{color}.accepted_stones"))
    pause_control = data.get("pause_control")
    reasons = pause_reasons(pause_control)
    paused = stops_play(reasons) if isinstance(pause_control, Mapping) else None
    return _GameData(
        width=width, height=height, komi=komi, rules=rules, handicap=max(0, handicap), free_handicap=free,
        initial_black=initial_black, initial_white=initial_white, initial_player=initial_player,
        time_control=tc, black_id=black_id, white_id=white_id, black_name=black_name, white_name=white_name,
        ranked=bool(data.get("ranked", False)),
        moves=_decode_moves(data.get("moves"), width, height, "moves"),
        phase=phase, clock=data.get("clock"), removal=removal, accepted_stones=accepted,
        winner_id=_opt_id(data.get("winner")), outcome=str(data.get("outcome") or ""), paused=paused,
        pause_reasons=reasons)


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} is not a number (got {value!r})")
    try:
        out = float(value)
    except ValueError:
        raise ValueError(f"{what} is not a number (got {value!r})") from None
    if out != out:
        raise ValueError(f"{what} is not a number")
    return out


# --- challenge accounting ------------------------------------------------------------------------------
@dataclass
class _Reservation:
    """A challenge the adapter decided to accept. It counts against every limit (the daemon's game cap, games
    per opponent) from that decision on: while the accept is in flight and until its game is followed, when the
    game itself (with the reservation's opponent) takes over. A failed accept releases it."""

    challenge_id: int
    user_id: int | None
    game_id: str | None
    accepted_at: float | None = None  # monotonic time the server confirmed the accept (None: in flight)


# --- one game ------------------------------------------------------------------------------------------
@dataclass
class _Game:
    game_id: str
    wire_id: int | str
    actions: OgsGoActions
    my_color: Color | None = None
    settings: GoSettings | None = None
    black_id: int | None = None
    white_id: int | None = None
    moves: list[Move] = field(default_factory=list)
    phase: Phase = "play"
    raw_clock: RawClock | None = None
    clock: ClockState | None = None
    paused: bool = False
    paused_since: float | None = None
    pause_reasons: frozenset[str] = frozenset()
    resume_sent: float = 0.0  # monotonic time of our last game/resume
    removal: frozenset[Point] = frozenset()
    accepted_stones: dict[Color, frozenset[Point]] = field(default_factory=dict)  # as goban tracks them
    result: GoResult | None = None
    inbox: GameInbox | None = None
    sync_id: int = 0
    needs_sync: bool = True  # the next gamedata is a (re)load: bump sync_id
    connect_sent: float = 0.0  # monotonic time of the last game/connect without an answer yet
    connect_tries: int = 0
    finish_deadline: float | None = None
    undo_requested: int | None = None
    undo_count: int = 1
    chat_ids: set[str] = field(default_factory=set)
    last_posted: GoState | None = None
    bad_gamedata_warned: bool = False  # one warning per game for unreadable gamedata frames
    opponent_hint: int | None = None  # the opponent before the gamedata says (accepted challenge, active_game)

    @property
    def speed(self) -> str:
        return self.settings.time_control.speed if self.settings else ""

    def opponent_id(self) -> int | None:
        if self.my_color == "black":
            return self.white_id
        if self.my_color == "white":
            return self.black_id
        return self.opponent_hint

    @property
    def removal_accepted(self) -> frozenset[Color]:
        """Who accepted the current proposal (goban: a player's accepted_stones equal the current removal)."""
        return frozenset(c for c, stones in self.accepted_stones.items() if stones == self.removal)

    def snapshot(self) -> GoState | None:
        if self.settings is None:
            return None
        to_move = color_of_move(self.settings, len(self.moves))
        return GoState(game_id=self.game_id, settings=self.settings, moves=tuple(self.moves),
                       phase=self.phase, to_move=to_move, clock=self.clock, removal=self.removal,
                       removal_accepted=self.removal_accepted, result=self.result, sync_id=self.sync_id)


class OgsGoActions:
    """:class:`bridge.events.GoActions` for one OGS game; callable from any thread."""

    def __init__(self, adapter: OgsAdapter, game_id: str) -> None:
        self._adapter = adapter
        self.game_id = game_id

    def play(self, move: Move) -> None:
        self._adapter._submit(self.game_id, "play", move)

    def resign(self) -> None:
        self._adapter._submit(self.game_id, "resign", None)

    def cancel(self) -> None:
        """Cancel a game in which the bot has not moved yet (OGS allows it only then; no one loses)."""
        self._adapter._submit(self.game_id, "cancel", None)

    def set_removal(self, stones: Iterable[Point], removed: bool) -> None:
        self._adapter._submit(self.game_id, "set_removal", (frozenset(stones), removed))

    def accept_removal(self, stones: frozenset[Point]) -> None:
        self._adapter._submit(self.game_id, "accept_removal", frozenset(stones))

    def answer_undo(self, accept: bool, move_number: int) -> None:
        self._adapter._submit(self.game_id, "answer_undo", (accept, move_number))

    def chat(self, body: str, channel: str = "main") -> None:
        self._adapter._submit(self.game_id, "chat", (body, channel))


class _Dropped(Exception):
    """The current connection is gone (reason in the message)."""


# --- the adapter ---------------------------------------------------------------------------------------
class OgsAdapter:
    """Connects one bot account to an OGS server (or the sandbox) and serves its games."""

    def __init__(self, server: OgsServerConfig, config: Any) -> None:
        self.server = server
        self.config = config
        self.url = http_url(server.url)
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._gen = 0  # connection generation; events and actions carry the one they belong to
        self._live_gen = -1  # the generation currently authenticated (-1: none)
        self._transport: Transport | None = None
        self._rest: OgsRest | None = None
        self._host: Host | None = None
        self._stop = threading.Event()
        self._games: dict[str, _Game] = {}
        self._done: OrderedDict[str, None] = OrderedDict()  # recently finished games: late events ignored
        self._handled_challenges: OrderedDict[int, None] = OrderedDict()
        self._reservations: dict[int, _Reservation] = {}  # challenge id -> accepted, game not followed yet
        self._sync = ClockSync()
        self.bot_id: int | None = None
        self.bot_username: str = server.username
        self._last_status: dict[str, int] | None = None
        self._next_ping = 0.0
        self._last_pong = 0.0
        self._executor: ThreadPoolExecutor | None = None
        # counters; "accepts_failed": accepted challenges whose accept call failed (their reservation released)
        self.stats: dict[str, int] = {"connects": 0, "drops": 0, "bad_messages": 0, "challenges_accepted": 0,
                                      "challenges_declined": 0, "accepts_failed": 0}

    # --- public seam ---------------------------------------------------------------------------------
    def run(self, host: Host, stop: threading.Event) -> None:
        """Connect, authenticate, serve; reconnect with capped exponential backoff and jitter on any drop.
        Returns when ``stop`` is set. Raises ConfigError when a secret cannot be read, FatalAdapterError when
        the server refuses the credentials (the adapter contract)."""
        self._host = host
        self._stop = stop
        creds = _resolve_credentials(self.server)
        self._rest = OgsRest(self.url, self.server.request_timeout)
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ogs-rest")
        attempt = 0
        offline_since: float | None = None
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self._connect(creds)
                    host_ready(host)
                    if offline_since is not None:
                        log.info("reconnected to %s as %s after %.1f s offline (%d attempt(s))", self.url,
                                 self.bot_username, time.monotonic() - offline_since, attempt)
                    attempt = 0 if offline_since is None else attempt
                    offline_since = None
                    self._serve()
                    reason = "stopped"
                except _Dropped as exc:
                    reason = str(exc)
                    self.stats["drops"] += 1
                    log.warning("connection to %s lost: %s", self.url, reason)
                except AuthError as exc:  # refused credentials do not fix themselves: the adapter contract's
                    raise FatalAdapterError(str(exc)) from None  # fatal condition (one line, exit status 77)
                except (ServerError, TransportError) as exc:
                    reason = str(exc)
                    log.warning("cannot connect to %s: %s", self.url, redact(reason))
                except Exception:  # a bug here must not end the bot: log it and reconnect
                    reason = "internal error"
                    log.exception("OGS adapter error; reconnecting")
                finally:
                    self._disconnect()
                if stop.is_set():
                    break
                if offline_since is None:
                    offline_since = time.monotonic()
                if time.monotonic() - started >= STABLE_CONNECTION and reason != "internal error":
                    attempt = 0
                delay = self._backoff(attempt)
                attempt += 1
                log.info("reconnecting to %s in %.1f s", self.url, delay)
                stop.wait(delay)
        finally:
            self._disconnect()
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
            if self._rest is not None:
                self._rest.close()

    # A reload (SIGHUP) may change these server keys live; any other needs a restart.
    reloadable_server_keys = frozenset({"accept"})

    def reconfigure(self, config: Any) -> None:
        """Take a reloaded configuration: the next challenge is judged by its ``server.accept`` and its daemon
        cap; bot/config is sent again. Only ``reloadable_server_keys`` differ from the running server config."""
        self.config, self.server = config, config.server
        self._queue.put(("reconfigured",))

    def check(self) -> list[CheckLine]:
        """Reach the server and authenticate once; one line per fact. Never raises for expected failures."""
        lines: list[CheckLine] = []
        try:
            creds = _resolve_credentials(self.server)
        except ConfigError as exc:
            return [CheckLine(False, str(exc))]
        rest = OgsRest(self.url, self.server.request_timeout)
        transport = make_transport(self.server.transport)
        pongs: queue.Queue[Any] = queue.Queue()
        transport.on_event = lambda name, data: pongs.put((data, time.time() * 1000)) \
            if name == "net/pong" else None
        try:
            started = time.monotonic()
            oauth = None
            if creds.password is not None:
                try:
                    oauth = rest.oauth_login(creds.client_id or "", creds.client_secret, self.server.username,
                                             creds.password)
                except AuthError as exc:
                    return [CheckLine(False, str(exc))]
                except ServerError as exc:
                    return [CheckLine(False, f"cannot log in at {self.url}: {exc}; check server.url")]
                lines.append(CheckLine(True, f"OAuth login at {self.url} accepted for {oauth.username}"))
            try:
                transport.connect(self.url, min(self.server.request_timeout, 15.0))
            except TransportError as exc:
                lines.append(CheckLine(False, f"cannot reach {self.url} over the {transport.name} transport: "
                                              f"{exc}; check server.url and server.transport"))
                return lines
            ms = (time.monotonic() - started) * 1000
            lines.append(CheckLine(True, f"server reachable at {self.url} ({transport.name} transport, "
                                         f"connected in {ms:.0f} ms)"))
            try:
                transport.send("net/ping", {"client": int(time.time() * 1000), "drift": 0, "latency": 0})
                ident = self._authenticate(transport, creds, oauth)
            except AuthError as exc:
                lines.append(CheckLine(False, str(exc)))
                return lines
            except (ServerError, TransportError) as exc:
                lines.append(CheckLine(False, f"authentication with {self.url} failed: {exc}"))
                return lines
            bot_id, username = ident
            lines.append(CheckLine(True, f"authenticated as {username} (id {bot_id})"))
            if username.casefold() != self.server.username.casefold():
                lines.append(CheckLine(False, f"the credentials belong to {username}, not "
                                              f"{self.server.username}: fix server.username or the key"))
            try:
                data, now = pongs.get(timeout=5)
                sync = ClockSync()
                latency, drift = sync.add(float(data["client"]), float(data["server"]), now)
                lines.append(CheckLine(True, f"keepalive works: round trip {latency:.0f} ms, "
                                             f"server clock offset {drift:+.0f} ms"))
            except (queue.Empty, KeyError, TypeError, ValueError):
                lines.append(CheckLine(False, "the server did not answer net/ping within 5 s "
                                              "(the bridge would treat the connection as dead)"))
        finally:
            transport.close()
            rest.close()
        return lines

    # --- connection lifecycle ----------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        lo, hi = self.server.reconnect_min_delay, self.server.reconnect_max_delay
        base = min(hi, lo * (2 ** min(attempt, 30)))
        return base / 2 + random.uniform(0, base / 2)

    def _connect(self, creds: _Credentials) -> None:
        assert self._rest is not None
        self._gen += 1
        gen = self._gen
        oauth = None
        if creds.password is not None:
            oauth = self._rest.oauth_login(creds.client_id or "", creds.client_secret, self.server.username,
                                           creds.password)
        transport = make_transport(self.server.transport)
        transport.on_event = lambda name, data: self._queue.put(
            ("event", gen, name, data, time.time() * 1000.0, time.monotonic()))
        transport.on_disconnect = lambda reason: self._queue.put(("dropped", gen, reason))
        self._transport = transport
        transport.connect(self.url, min(self.server.request_timeout, 15.0))
        self.stats["connects"] += 1
        now = time.monotonic()
        self._last_pong = now
        self._send_ping()
        self._next_ping = now + self.server.ping_interval
        self.bot_id, self.bot_username = self._authenticate(transport, creds, oauth)
        if oauth is None:
            assert creds.apikey is not None
            self._rest.use_apikey(creds.apikey, self.bot_id)
        self._live_gen = gen
        log.info("connected to %s as %s (id %s) over %s", self.url, self.bot_username, self.bot_id,
                 transport.name)
        self._send_bot_config()
        self._last_status = None
        self._send_status()
        for game in self._games.values():  # resume every game still in progress
            game.needs_sync = True
            self._connect_game(game)

    def _authenticate(self, transport: Transport, creds: _Credentials, oauth: Any) -> tuple[int, str]:
        if oauth is not None:
            payload: dict[str, Any] = {"auth": oauth.chat_auth, "player_id": oauth.user_id,
                                       "username": oauth.username, "jwt": oauth.user_jwt}
        else:
            payload = {"jwt": "", "bot_username": self.server.username, "bot_apikey": creds.apikey}
        refused = AuthError(f"authentication refused for {self.server.username}: check "
                            f"{'server.api_key' if oauth is None else 'the OAuth credentials'}")
        try:
            reply = transport.request("authenticate", payload, self.server.request_timeout)
        except RequestRefused as exc:
            error = exc.error
            if isinstance(error, Mapping):
                error = error.get("message") or error.get("code") or error
            raise AuthError(f"{refused} (server said: {redact(str(error))[:200]})") from None
        except RequestTimeout:  # no answer is not a refusal: retried like any other drop
            raise ServerError(f"the server did not answer 'authenticate' within "
                              f"{self.server.request_timeout:g} s") from None
        if not isinstance(reply, Mapping) or _opt_id(reply.get("id")) is None:
            raise refused
        if oauth is not None:
            return int(reply["id"]), str(reply.get("username") or oauth.username)
        return int(reply["id"]), str(reply.get("username") or self.server.username)

    def _disconnect(self) -> None:
        self._live_gen = -1
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    # --- the serving loop ----------------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                item = None
            if item is not None:
                self._handle_item(item)
            self._tick()

    def _handle_item(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "event":
            _, gen, name, data, wall_ms, mono = item
            if gen != self._live_gen:
                return
            try:
                self._on_event(name, data, wall_ms, mono)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                self.stats["bad_messages"] += 1
                log.warning("ignoring a malformed %r message from the server: %s", name, redact(str(exc)))
            except _Dropped:
                raise
            except Exception:  # a bug must cost one message, not the connection or the adapter
                log.exception("error while handling the server's %r message", name)
        elif kind == "dropped":
            _, gen, reason = item
            if gen == self._live_gen:
                raise _Dropped(reason)
        elif kind == "action":
            _, gen, game_id, what, arg = item
            try:
                self._do_action(gen, game_id, what, arg)
            except Exception:
                log.exception("game %s: error while sending %s", game_id, what)
        elif kind == "accepted":
            self._on_accepted(item[1], item[2])
        elif kind == "accept_failed":
            self._release(item[1].challenge_id)
        elif kind == "reconfigured" and self._live_gen >= 0:
            self._send_bot_config()  # the server shows the new policy and cap

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_ping:
            self._send_ping()
            self._next_ping = now + self.server.ping_interval
        silent = now - self._last_pong
        if silent > PONG_MISSES * self.server.ping_interval:
            raise _Dropped(f"no net/pong for {silent:.1f} s ({PONG_MISSES} ping intervals): "
                           f"treating the connection as dead")
        for game in list(self._games.values()):
            if game.finish_deadline is not None and now >= game.finish_deadline:
                log.warning("game %s: the server sent no final game data after the end; closing it without "
                            "a result", game.game_id)
                self._forget(game)
            elif game.connect_sent and now - game.connect_sent > GAMEDATA_WAIT:
                if game.connect_tries >= GAMEDATA_TRIES:
                    log.warning("game %s: no game data after %d requests; giving the game up", game.game_id,
                                game.connect_tries)
                    self._post(game, GameAbandoned(f"the server sent no game data after {game.connect_tries} "
                                                   f"requests"))
                    self._forget(game)
                else:
                    log.info("game %s: still no game data; asking again", game.game_id)
                    self._connect_game(game)
        self._resume_long_pauses(now)
        self._expire_reservations(now)
        self._send_status()

    def _resume_long_pauses(self, now: float) -> None:
        """Like gtp2ogs: a pause by a player (and nothing else) longer than max_pause_time is ended."""
        limit = self.server.max_pause_time
        if limit <= 0:
            return
        server_now = time.time() * 1000.0 - self._sync.drift
        for game in self._games.values():
            if (not game.paused or game.paused_since is None or game.pause_reasons != {"paused"}
                    or game.phase != "play" or now - game.resume_sent < 30.0):
                continue
            if server_now - game.paused_since > limit * 1000.0:
                game.resume_sent = now
                log.info("game %s: paused for more than %g s; resuming it", game.game_id, limit)
                self._send("game/chat", {"game_id": game.wire_id, "type": "main", "move_number": len(game.moves),
                                         "body": "Maximum pause time reached, unpausing clock"})
                self._send("game/resume", {"game_id": game.wire_id})

    # --- sending --------------------------------------------------------------------------------------------
    def _send(self, command: str, data: Any) -> bool:
        transport = self._transport
        if transport is None or self._live_gen < 0:
            return False
        try:
            transport.send(command, data)
            return True
        except TransportError as exc:
            log.debug("send %s failed: %s", command, exc)
            return False

    def _send_ping(self) -> None:
        transport = self._transport
        if transport is None:
            return
        try:
            transport.send("net/ping", {"client": int(time.time() * 1000),
                                        "drift": round(self._sync.drift, 1),
                                        "latency": round(self._sync.latency, 1)})
        except TransportError:
            pass

    def _send_bot_config(self) -> None:
        payload = bot_config(self.server.accept, bot_id=self.bot_id, username=self.bot_username,
                             max_games=self._max_games() or 1)
        self._send("bot/config", payload)

    def _send_status(self) -> None:
        if self._live_gen < 0:
            return
        counts = {f"ongoing_{s}_count": 0 for s in ("blitz", "rapid", "live", "correspondence")}
        for game in self._games.values():
            key = f"ongoing_{game.speed}_count"
            if key in counts and game.phase != "finished" and not game.paused:
                counts[key] += 1
        if counts != self._last_status and self._send("bot/status", counts):
            self._last_status = counts

    def _max_games(self) -> int | None:
        try:
            return int(self.config.daemon.max_concurrent_games)
        except (AttributeError, TypeError, ValueError):
            return None

    # --- actions from sessions ----------------------------------------------------------------------------
    def _submit(self, game_id: str, what: str, arg: Any) -> None:
        self._queue.put(("action", self._live_gen, game_id, what, arg))

    def _do_action(self, gen: int, game_id: str, what: str, arg: Any) -> None:
        game = self._games.get(game_id)
        if gen < 0 or gen != self._live_gen:
            log.info("game %s: %s not sent: the connection it was meant for is gone (the game resumes from "
                     "the server's state after the reconnect)", game_id, what)
            return
        wire: int | str = game.wire_id if game is not None else _wire_id(game_id)
        if what == "play":
            move: Move = arg
            if game is not None and game.settings is not None and move is not None:
                w, h = game.settings.width, game.settings.height
                if not (0 <= move[0] < w and 0 <= move[1] < h):
                    log.warning("game %s: move %s is off the %dx%d board; not sent", game_id, move, w, h)
                    self._post(game, ActionRejected(f"move {move} is off the {w}x{h} board"))
                    return
            try:
                text = encode_point(move)
            except ValueError as exc:
                if game is not None:
                    self._post(game, ActionRejected(str(exc)))
                return
            log.debug("game %s: playing %s", game_id, text)
            self._send("game/move", {"game_id": wire, "move": text})
        elif what == "resign":
            log.info("game %s: resigning", game_id)
            self._send("game/resign", {"game_id": wire})
        elif what == "cancel":
            log.info("game %s: cancelling", game_id)
            self._send("game/cancel", {"game_id": wire})
        elif what == "set_removal":
            stones, removed = arg
            self._send("game/removed_stones/set", {"game_id": wire, "removed": bool(removed),
                                                   "stones": encode_points(stones)})
        elif what == "accept_removal":
            self._send("game/removed_stones/accept", {"game_id": wire, "stones": encode_points(arg),
                                                      "strict_seki_mode": False})
        elif what == "answer_undo":
            accept, move_number = arg
            if accept:
                self._send("game/undo/accept", {"game_id": wire, "move_number": int(move_number)})
            else:  # OGS has no "reject": the request lapses when the next move is played
                log.info("game %s: undo request at move %s declined", game_id, move_number)
        elif what == "chat":
            body, channel = arg
            move_number = len(game.moves) if game is not None else 0
            self._send("game/chat", {"game_id": wire, "type": channel if channel in ("main", "malkovich") else
                                     "main", "move_number": move_number, "body": redact(str(body))})

    # --- events ---------------------------------------------------------------------------------------------
    def _on_event(self, name: str, data: Any, wall_ms: float, mono: float) -> None:
        if name == "net/pong":
            if not isinstance(data, Mapping):
                raise ValueError("expected an object")
            self._last_pong = mono
            self._sync.add(float(data["client"]), float(data["server"]), wall_ms)
        elif name == "notification":
            self._on_notification(data)
        elif name == "active_game":
            self._on_active_game(data)
        elif name == "ERROR":
            log.warning("the server reports an error: %s", redact(str(data))[:300])
        elif name.startswith("game/"):
            parts = name.split("/", 2)
            if len(parts) < 3:
                log.debug("ignoring event %s", name)
                return
            game = self._games.get(parts[1])
            if game is None:
                log.debug("ignoring %s: not a game we follow", name)
                return
            self._on_game_event(game, parts[2], data, wall_ms, mono)
        else:
            log.debug("ignoring event %s", name)

    # --- challenges -----------------------------------------------------------------------------------------
    def _on_notification(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        ntype = data.get("type")
        if ntype != "challenge":
            if ntype != "delete" and data.get("id") is not None:
                self._send("notification/delete", {"notification_id": data["id"]})
            log.debug("notification %s ignored", ntype)
            return
        cid = _opt_id(data.get("challenge_id"))
        if cid is not None and cid in self._handled_challenges:
            log.debug("challenge %s already handled", cid)
            return
        try:
            challenge = parse_challenge(data)
        except ValueError as exc:
            self.stats["bad_messages"] += 1
            log.warning("ignoring a malformed 'notification' (challenge %s) from the server: %s", cid, exc)
            if cid is not None:
                self._remember_challenge(cid)
                self._rest_async(self._reject_unreadable, cid)
            return
        self._remember_challenge(challenge.challenge_id)
        assert self._host is not None
        if engine_problem(self._host) is not None:  # no game while the engine cannot start: say so
            engine_down = Decision(False, "not_accepting_new_challenges",
                                   "This bot's engine cannot start right now; please try again later.")
            log.info("rejecting challenge %s from %s (id %s): the engine cannot start", challenge.challenge_id,
                     challenge.username, challenge.user_id)
            self._rest_async(self._reject, challenge.challenge_id, engine_down.reason,
                             engine_down.rejection_details())
            return
        max_games = self._max_games()
        active = self._host.active_games()
        uncounted, opponent_games = self._commitments(challenge.user_id)
        can = self._host.can_accept_game() and (max_games is None or active + uncounted < max_games)
        decision = decide(self.server.accept, challenge, can_accept=can, active_games=active + uncounted,
                          max_games=max_games, games_with_opponent=opponent_games)
        who = f"{challenge.username} (id {challenge.user_id})"
        if decision.accept:
            log.info("accepting challenge %s from %s: %s", challenge.challenge_id, who, challenge.describe())
            self.stats["challenges_accepted"] += 1
            # counted from now on, not from the server's answer: the next challenge in a burst sees it
            self._reservations[challenge.challenge_id] = _Reservation(
                challenge.challenge_id, challenge.user_id,
                str(challenge.game_id) if challenge.game_id is not None else None)
            self._rest_async(self._accept, challenge)
        else:
            log.info("rejecting challenge %s from %s (%s): %s: %s", challenge.challenge_id, who,
                     challenge.describe(), decision.code, decision.reason)
            self.stats["challenges_declined"] += 1
            self._rest_async(self._reject, challenge.challenge_id, decision.reason,
                             decision.rejection_details())

    def _remember_challenge(self, cid: int) -> None:
        self._handled_challenges[cid] = None
        while len(self._handled_challenges) > 1000:
            self._handled_challenges.popitem(last=False)

    def _commitments(self, user_id: int | None) -> tuple[int, int]:
        """``(games the host does not count yet, games against user_id)`` over everything this adapter has
        committed to: reservations (accepted challenges not yet followed) and followed games not finished. The
        host counts a game once its session is open; a followed game waits for its gamedata to open one."""
        uncounted = len(self._reservations)
        with_user = sum(1 for r in self._reservations.values() if user_id is not None and r.user_id == user_id)
        for game in self._games.values():
            if game.phase == "finished":
                continue
            if game.inbox is None or game.inbox.finished:
                uncounted += 1
            if user_id is not None and game.opponent_id() == user_id:
                with_user += 1
        return uncounted, with_user

    def _release(self, cid: int) -> None:
        """The accept failed: the challenge no longer counts against any limit."""
        self.stats["accepts_failed"] += 1
        if self._reservations.pop(cid, None) is not None:
            log.info("challenge %s: not accepted after all; it no longer counts against the limits", cid)

    def _expire_reservations(self, now: float) -> None:
        for cid, res in list(self._reservations.items()):
            if res.accepted_at is not None and now - res.accepted_at > RESERVATION_TTL:
                del self._reservations[cid]
                log.warning("challenge %s was accepted %.0f s ago but its game %s never started; it no longer "
                            "counts against the limits", cid, now - res.accepted_at, res.game_id or "(unknown)")

    def _rest_async(self, fn: Any, *args: Any) -> None:
        assert self._executor is not None
        try:
            self._executor.submit(fn, *args)
        except RuntimeError:  # shutting down
            pass

    def _accept(self, challenge: Challenge) -> None:
        """On a REST worker. Always ends with "accepted" or "accept_failed" queued, so the reservation taken
        for this challenge becomes its game or is released."""
        assert self._rest is not None
        try:
            reply = self._rest.accept_challenge(challenge.challenge_id)
        except Exception as exc:  # RestError, or a bug: either way the reservation must not outlive it
            if not isinstance(exc, RestError):
                log.exception("accepting challenge %s failed", challenge.challenge_id)
            log.warning("accepting challenge %s failed: %s; declining it", challenge.challenge_id, exc)
            try:
                self._rest.reject_challenge(challenge.challenge_id,
                                            "Error accepting game challenge, challenge has been removed.")
            except RestError as exc2:
                log.warning("declining challenge %s failed too: %s", challenge.challenge_id, exc2)
            self._queue.put(("accept_failed", challenge))
            return
        game_id = challenge.game_id
        if game_id is None and isinstance(reply, Mapping):
            game_id = _opt_id(reply.get("game_id"))
        self._queue.put(("accepted", challenge, str(game_id) if game_id is not None else None))

    def _reject(self, cid: int, message: str, details: dict[str, Any]) -> None:
        assert self._rest is not None
        try:
            self._rest.reject_challenge(cid, message, details)
        except RestError as exc:
            log.warning("rejecting challenge %s failed: %s", cid, exc)

    def _reject_unreadable(self, cid: int) -> None:
        assert self._rest is not None
        try:
            self._rest.reject_challenge(cid, "This bot could not read the challenge; please try again.")
        except RestError as exc:
            log.warning("declining unreadable challenge %s failed: %s", cid, exc)

    def _on_accepted(self, challenge: Challenge, game_id: str | None) -> None:
        log.info("challenge %s accepted; game %s", challenge.challenge_id, game_id)
        res = self._reservations.get(challenge.challenge_id)
        if res is not None:
            res.accepted_at = time.monotonic()
            res.game_id = res.game_id or game_id
        if game_id is not None:
            self._follow(game_id)

    # --- games: discovery ----------------------------------------------------------------------------------
    def _on_active_game(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        game_id = str(_required_id(data, "id"))
        ids = {_opt_id(p.get("id")) for p in (data.get("black"), data.get("white")) if isinstance(p, Mapping)}
        ids.discard(None)
        others = ids - {self.bot_id}
        if ids and self.bot_id is not None and self.bot_id not in ids:
            log.debug("active_game %s is not ours", game_id)
            return
        game = self._games.get(game_id)
        if data.get("phase") == "finished":
            if game is not None and game.result is None and game.finish_deadline is None:
                self._expect_end(game)
            return
        if game is None:
            self._follow(game_id, next(iter(others)) if len(others) == 1 else None)

    def _follow(self, game_id: str, opponent: int | None = None) -> None:
        # the accepted challenge becomes this game: from now on the game itself counts, against the same
        # opponent until its gamedata names the players (and stops counting when the game is forgotten)
        reserved = [cid for cid, res in self._reservations.items() if res.game_id == game_id]
        for cid in reserved:
            opponent = opponent if opponent is not None else self._reservations[cid].user_id
            del self._reservations[cid]
        if game_id in self._games or game_id in self._done:
            return
        game = _Game(game_id=game_id, wire_id=_wire_id(game_id), actions=OgsGoActions(self, game_id),
                     opponent_hint=opponent)
        self._games[game_id] = game
        log.info("following game %s", game_id)
        self._connect_game(game)

    def _connect_game(self, game: _Game) -> None:
        game.connect_tries += 1
        game.connect_sent = time.monotonic()
        self._send("game/connect", {"game_id": game.wire_id, "chat": True})

    def _forget(self, game: _Game) -> None:
        self._games.pop(game.game_id, None)
        self._done[game.game_id] = None
        while len(self._done) > 1000:
            self._done.popitem(last=False)
        self._send("game/disconnect", {"game_id": game.wire_id})
        self._send_status()

    def _expect_end(self, game: _Game) -> None:
        """The game ended but we lack the result: ask for the final gamedata and wait a little for it."""
        game.finish_deadline = time.monotonic() + FINISH_WAIT
        self._send("game/connect", {"game_id": game.wire_id, "chat": True})

    # --- games: events -------------------------------------------------------------------------------------
    def _on_game_event(self, game: _Game, kind: str, data: Any, wall_ms: float, mono: float) -> None:
        if kind == "gamedata":
            self._on_gamedata(game, data, wall_ms, mono)
            return
        if kind in IGNORED_GAME_EVENTS:
            return
        if kind == "error":
            message = redact(str(data))[:300]
            log.warning("game %s: the server refused our action: %s", game.game_id, message)
            self._post(game, ActionRejected(message))
            return
        if game.settings is None:
            log.debug("game %s: %s before its game data; ignored (the game data will carry it)", game.game_id,
                      kind)
            return
        if kind == "move":
            self._on_move(game, data)
        elif kind == "clock":
            self._on_clock(game, data, wall_ms, mono)
            self._post_state(game)
        elif kind == "phase":
            self._on_phase(game, data)
        elif kind == "removed_stones":
            self._on_removed_stones(game, data)
        elif kind == "removed_stones_accepted":
            self._on_removed_stones_accepted(game, data)
        elif kind == "undo_requested":
            number, count = _undo_payload(data)
            game.undo_requested, game.undo_count = number, count or 1
            log.info("game %s: the opponent asks to undo (move %d)", game.game_id, number)
            self._post(game, UndoRequested(number))
        elif kind == "undo_accepted":
            _, count = _undo_payload(data)
            steps = count or game.undo_count or 1
            if 0 < steps <= len(game.moves):
                del game.moves[-steps:]
            game.undo_requested = None
            log.info("game %s: undo accepted: %d move(s) taken back", game.game_id, steps)
            self._post_state(game)
            self._send("game/connect", {"game_id": game.wire_id, "chat": True})  # confirm with fresh data
        elif kind == "chat":
            self._on_chat(game, data)
        else:
            log.debug("game %s: event %s ignored", game.game_id, kind)

    def _on_gamedata(self, game: _Game, data: Any, wall_ms: float, mono: float) -> None:
        gd = parse_gamedata(data)
        assert self._host is not None
        if self.bot_id is not None and self.bot_id == gd.black_id:
            color: Color | None = "black"
        elif self.bot_id is not None and self.bot_id == gd.white_id:
            color = "white"
        else:
            color = None
        if color is None and (game.my_color is not None or gd.black_id is None or gd.white_id is None):
            # One frame that does not name its players (or names others in a game we already play) is a bad
            # frame, not news: the last good state stands, and a game we play is never dropped because of it.
            if not game.bad_gamedata_warned:
                game.bad_gamedata_warned = True
                log.warning("game %s: ignored a gamedata frame that does not name the bot as a player (black %s, "
                            "white %s); %s", game.game_id, gd.black_id, gd.white_id,
                            "keeping the last good state" if game.my_color is not None
                            else "waiting for a readable one")
            return
        game.connect_sent = 0.0
        game.connect_tries = 0
        if color is None:
            log.warning("game %s: we are not a player in it (black %s, white %s); not following it",
                        game.game_id, gd.black_id, gd.white_id)
            self._post(game, GameAbandoned("the bot is not a player of this game"))
            self._forget(game)
            return
        first = game.settings is None
        game.my_color = color
        game.black_id, game.white_id = gd.black_id, gd.white_id
        game.settings = GoSettings(
            width=gd.width, height=gd.height, komi=gd.komi, rules=gd.rules, my_color=color,
            handicap=gd.handicap, free_handicap=gd.free_handicap, initial_black=gd.initial_black,
            initial_white=gd.initial_white, initial_player=gd.initial_player, time_control=gd.time_control,
            black_name=gd.black_name, white_name=gd.white_name, ranked=gd.ranked)
        game.moves = list(gd.moves)
        game.phase = gd.phase
        game.removal, game.accepted_stones = gd.removal, dict(gd.accepted_stones)
        if gd.paused is not None:
            game.paused, game.pause_reasons = gd.paused, gd.pause_reasons
        if gd.clock is not None:
            try:
                self._on_clock(game, gd.clock, wall_ms, mono)
            except ValueError as exc:
                log.warning("game %s: ignoring the malformed clock in its game data: %s", game.game_id, exc)
        if gd.phase == "finished":
            winner: Color | None = None
            if gd.winner_id is not None:
                winner = "black" if gd.winner_id == gd.black_id else "white" if gd.winner_id == gd.white_id \
                    else None
            game.result = parse_result(gd.outcome, winner)
        if game.needs_sync:
            game.sync_id += 1
            game.needs_sync = False
        if first:
            log.info("game %s: %s vs %s, %dx%d, %s, komi %g, handicap %d, %s; we play %s", game.game_id,
                     gd.black_name, gd.white_name, gd.width, gd.height, gd.rules, gd.komi, gd.handicap,
                     describe_time_control(gd.time_control), color)
        if gd.phase != "finished" and (game.inbox is None or game.inbox.finished):
            game.inbox = self._host.open_game(game.game_id, color, game.actions)
        self._post_state(game, force=True)
        if gd.phase == "finished":
            self._finish(game)

    def _on_move(self, game: _Game, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        assert game.settings is not None
        number = _as_int(data.get("move_number"), "move_number")
        move = _decode_move(data.get("move"), game.settings.width, game.settings.height, "move")
        have = len(game.moves)
        if number <= have:
            if number >= 1 and game.moves[number - 1] != move:
                log.warning("game %s: move %d is %s here but the server now says %s; reloading the game",
                            game.game_id, number, game.moves[number - 1], move)
                self._send("game/connect", {"game_id": game.wire_id, "chat": True})
            return  # a duplicate (replay after a reconnect, or an echo we already have)
        if number > have + 1:
            log.warning("game %s: move %d arrived but we have only %d moves; reloading the game",
                        game.game_id, number, have)
            self._send("game/connect", {"game_id": game.wire_id, "chat": True})
            return
        game.moves.append(move)
        game.undo_requested = None
        if game.phase == "stone removal":  # a move means play resumed (a missed phase event)
            game.phase = "play"
            game.removal, game.accepted_stones = frozenset(), {}
        self._post_state(game)

    def _on_clock(self, game: _Game, data: Any, wall_ms: float, mono: float) -> None:
        assert game.settings is not None
        tc = game.settings.time_control
        raw = parse_clock(data, tc)
        if raw.paused is not None:
            game.paused = raw.paused
            game.paused_since = raw.paused_since if raw.paused else None
            if raw.pause_reasons or not raw.paused:
                game.pause_reasons = raw.pause_reasons
        game.raw_clock = raw
        if raw.current_player is not None and raw.current_player == game.black_id:
            to_move: Color = "black"
        elif raw.current_player is not None and raw.current_player == game.white_id:
            to_move = "white"
        else:
            to_move = color_of_move(game.settings, len(game.moves))
        game.clock = corrected_clock(raw, tc, to_move, server_now_ms=wall_ms - self._sync.drift,
                                     received_at=mono, paused=game.paused, paused_since=game.paused_since)

    def _on_phase(self, game: _Game, data: Any) -> None:
        if data not in ("play", "stone removal", "finished"):
            raise ValueError(f"unknown phase {data!r}")
        if data == game.phase:
            return
        log.info("game %s: phase %s", game.game_id, data)
        game.phase = data
        if data == "play":
            game.removal, game.accepted_stones = frozenset(), {}
            self._send("game/connect", {"game_id": game.wire_id, "chat": True})  # resumed: fresh data
        self._post_state(game)
        if data == "finished" and game.result is None:
            self._expect_end(game)

    def _on_removed_stones(self, game: _Game, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        if isinstance(data.get("all_removed"), str):
            removal = frozenset(_points(data["all_removed"], "all_removed"))
        elif isinstance(data.get("stones"), str):
            stones = frozenset(_points(data["stones"], "stones"))
            removal = game.removal | stones if data.get("removed") else game.removal - stones
        else:
            return  # e.g. {strict_seki_mode} only
        game.removal = removal
        self._post_state(game)

    def _on_removed_stones_accepted(self, game: _Game, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        pid = _opt_id(data.get("player_id"))
        color: Color | None = "black" if pid is not None and pid == game.black_id else \
            "white" if pid is not None and pid == game.white_id else None
        stones = frozenset(_points(data["stones"], "stones")) if isinstance(data.get("stones"), str) \
            else game.removal
        if pid == 0:  # both players at once (goban)
            game.accepted_stones = {"black": stones, "white": stones}
        elif color is not None:
            game.accepted_stones[color] = stones
        if data.get("phase") == "finished":
            game.phase = "finished"
            wid = _opt_id(data.get("winner"))
            winner: Color | None = "black" if wid is not None and wid == game.black_id else \
                "white" if wid is not None and wid == game.white_id else None
            if data.get("outcome"):
                game.result = parse_result(data.get("outcome"), winner)
            self._post_state(game)
            if game.result is not None:
                self._finish(game)
            else:
                self._expect_end(game)
            return
        self._post_state(game)

    def _on_chat(self, game: _Game, data: Any) -> None:
        if not isinstance(data, Mapping) or not isinstance(data.get("line"), Mapping):
            raise ValueError("expected {channel, line{...}}")
        line = data["line"]
        body = line.get("body")
        if not isinstance(body, str):
            return  # analysis/review attachments
        chat_id = str(line.get("chat_id") or f"{line.get('date')}-{line.get('player_id')}-{body}")
        if chat_id in game.chat_ids:
            return  # resent after a reconnect
        game.chat_ids.add(chat_id)
        if self.bot_id is not None and _opt_id(line.get("player_id")) == self.bot_id:
            return
        channel = str(data.get("channel") or line.get("channel") or "main")
        self._post(game, ChatReceived(username=str(line.get("username") or "?"), body=body, channel=channel))

    # --- posting --------------------------------------------------------------------------------------------
    def _post(self, game: _Game, event: GameEvent) -> None:
        if game.inbox is None:
            return
        try:
            game.inbox.post(event)
        except Exception:
            log.exception("game %s: the session refused an event", game.game_id)

    def _post_state(self, game: _Game, force: bool = False) -> None:
        state = game.snapshot()
        if state is None or (not force and state == game.last_posted):
            return
        game.last_posted = state
        self._post(game, StateUpdate(state))

    def _finish(self, game: _Game) -> None:
        result = game.result
        if result is not None:
            log.info("game %s finished: %s (%s)", game.game_id, result.score, result.reason)
        self._forget(game)


def _wire_id(game_id: str) -> int | str:
    return int(game_id) if game_id.isdigit() else game_id


def _undo_payload(data: Any) -> tuple[int, int | None]:
    """``undo_requested``/``undo_accepted``: a number, a numeric string, or
    ``{move_number, undo_move_count?}``."""
    if isinstance(data, Mapping):
        number = _as_int(data.get("move_number"), "move_number")
        count = data.get("undo_move_count")
        return number, _as_int(count, "undo_move_count") if count is not None else None
    return _as_int(data, "move_number"), None


__all__ = ["ClockSync", "OgsAdapter", "OgsGoActions", "parse_gamedata"]
