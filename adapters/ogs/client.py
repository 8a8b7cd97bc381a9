"""The OGS client adapter: realtime connection, authentication, the serving loop, reconnects.

Threads: the transport's reader thread handles each server event itself, in the server's order (parsing, the
per-game state machine, and the write of the game's newest snapshot into its session's slot: one hand-off from
the connection to the game). The adapter's state is shared with one adapter thread (``run``), which sends pings,
runs the periodic work on its timer, takes the REST workers' results from its queue, and reconnects; both hold
``_lock`` while they touch it. REST calls (accept/reject) run on a small worker pool so that a slow HTTP answer
never delays a game's events. Sessions call the :class:`~bridge.adapters.ogs.actions.OgsGoActions` of their game
from their own threads; each call is written at once on the live connection (the transport's send is thread-safe:
a game's requests go out in the order its session made them), and nothing is written while no connection is
authenticated (the session re-sends a lost move after the resync, see ``GoState.sync_id``).

The parts: :mod:`.games` (the per-game state machine), :mod:`.challenges` (accept/decline and reservations),
:mod:`.actions` (what sessions ask, written as commands), :mod:`.codec` (OGS's payloads), :mod:`.clock`
(server clock sync), :mod:`.credentials`. Work over all games (status, pause resumption, overdue game data,
reservation expiry) runs on a timer (``PERIODIC_INTERVAL`` or a game's own deadline, whichever comes first),
never per event: the serving loop only compares the time with the next due time.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bridge.adapters.ogs.actions import OgsGoActions, send_action
from bridge.adapters.ogs.api import OgsRest
from bridge.adapters.ogs.challenges import Challenges
from bridge.adapters.ogs.clock import ClockSync
from bridge.adapters.ogs.codec import opt_id, required_id
from bridge.adapters.ogs.config import OgsServerConfig
from bridge.adapters.ogs.credentials import Credentials, resolve_credentials
from bridge.adapters.ogs.games import Game, Games
from bridge.adapters.ogs.policy import bot_config
from bridge.adapters.ogs.seeking import Outgoing, Seeking
from bridge.adapters.ogs.transport import (
    RequestRefused,
    RequestTimeout,
    Transport,
    TransportError,
    http_url,
    make_transport,
)
from bridge.errors import AuthError, ConfigError, FatalAdapterError, ServerError
from bridge.events import CheckLine, GameInbox, Host, host_ready
from bridge.games.go_events import ActionRejected, GoAction, GoActions
from bridge.games.gotypes import Color
from bridge.redact import redact

log = logging.getLogger("bridge.ogs")

PONG_MISSES = 3  # pings without a pong before the connection counts as dead
STABLE_CONNECTION = 30.0  # a connection that lived this long resets the reconnect backoff
PERIODIC_INTERVAL = 1.0  # seconds between two rounds of the work over all games


class _Dropped(Exception):
    """The current connection is gone (reason in the message)."""


# --- the adapter ---------------------------------------------------------------------------------------
class OgsAdapter:
    """Connects one bot account to an OGS server (or the sandbox) and serves its games."""

    def __init__(self, server: OgsServerConfig, config: Any) -> None:
        self.server = server
        self.config = config
        self.url = http_url(server.url)
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()  # REST results and reloads, not game events
        self._lock = threading.RLock()  # the adapter's state: the reader thread (events) and the adapter thread
        self._early: list[tuple[str, Any, float, float]] = []  # events of the connection before it is live
        self._gen = 0  # connection generation; events and actions carry the one they belong to
        self._live_gen = -1  # the generation currently authenticated (-1: none)
        self._transport: Transport | None = None
        self._rest: OgsRest | None = None
        self._host: Host | None = None
        self._stop = threading.Event()
        self._games = Games(self)
        self._challenges = Challenges(self, self._games)
        self.seeking: Seeking | None = None
        if server.seek is not None:
            self.seeking = Seeking(self, self._games, server.seek, server.username)
            self._challenges.outgoing = self.seeking.commitments
        self._sync = ClockSync()
        self.bot_id: int | None = None
        self.bot_username: str = server.username
        self._last_status: dict[str, int] | None = None
        self._next_ping = 0.0
        self._next_periodic = 0.0  # monotonic time the periodic work is next due
        self._last_pong = 0.0
        self._executor: ThreadPoolExecutor | None = None
        # counters; "accepts_failed": accepted challenges whose accept call failed (their reservation released)
        self.stats: dict[str, int] = {"connects": 0, "drops": 0, "bad_messages": 0, "challenges_accepted": 0,
                                      "challenges_declined": 0, "accepts_failed": 0, "challenges_sent": 0,
                                      "challenges_cancelled": 0, "challenges_settled": 0}

    # --- public seam ---------------------------------------------------------------------------------
    def run(self, host: Host, stop: threading.Event) -> None:
        """Connect, authenticate, serve; reconnect with capped exponential backoff and jitter on any drop.
        Returns when ``stop`` is set. Raises ConfigError when a secret cannot be read, FatalAdapterError when
        the server refuses the credentials (the adapter contract)."""
        self._host = host
        self._stop = stop
        creds = resolve_credentials(self.server)
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
                    log.exception("unexpected error in the OGS adapter for %s (a bug: please report it with this "
                                  "traceback); reconnecting, and the games go on from the server's state", self.url)
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
            if self.seeking is not None and self._rest is not None:
                self.seeking.cancel_all(self._rest)
            if self._rest is not None:
                self._rest.close()

    # A reload (SIGHUP) may change these server keys live; any other needs a restart.
    # (server.seek is not among them: a seek policy added, removed or changed takes a restart)
    reloadable_server_keys = frozenset({"accept", "hidden"})

    def reconfigure(self, config: Any) -> None:
        """Take a reloaded configuration: the next challenge is judged by its ``server.accept`` and its daemon
        cap; bot/config is sent again. Only ``reloadable_server_keys`` differ from the running server config."""
        self.config, self.server = config, config.server
        if self.seeking is not None and config.server.seek is not None:
            self.seeking.reconfigure(config.server.seek)
        self._queue.put(("reconfigured",))

    def check(self) -> list[CheckLine]:
        """Reach the server and authenticate once; one line per fact. Never raises for expected failures."""
        lines: list[CheckLine] = []
        try:
            creds = resolve_credentials(self.server)
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

    def _connect(self, creds: Credentials) -> None:
        assert self._rest is not None
        self._gen += 1
        gen = self._gen
        oauth = None
        if creds.password is not None:
            oauth = self._rest.oauth_login(creds.client_id or "", creds.client_secret, self.server.username,
                                           creds.password)
        transport = make_transport(self.server.transport)
        transport.on_event = lambda name, data: self._receive(gen, name, data, time.time() * 1000.0,
                                                              time.monotonic())
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
        with self._lock:  # the events that came during authentication first, then the reader's own
            self._live_gen = gen
            log.info("connected to %s as %s (id %s) over %s", self.url, self.bot_username, self.bot_id,
                     transport.name)
            self._send_bot_config()
            if self.seeking is not None and self.seeking.open:  # our open challenges show there (and lost ones)
                self.send("seek_graph/connect", {"channel": "global"})
            self._last_status = None
            self._send_status()
            self._games.reconnected(time.monotonic())  # resume every game still in progress
            early, self._early = self._early, []
            for name, data, wall_ms, mono in early:
                self._handle_event(name, data, wall_ms, mono)

    def _authenticate(self, transport: Transport, creds: Credentials, oauth: Any) -> tuple[int, str]:
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
        if not isinstance(reply, Mapping) or opt_id(reply.get("id")) is None:
            raise refused
        if oauth is not None:
            return int(reply["id"]), str(reply.get("username") or oauth.username)
        return int(reply["id"]), str(reply.get("username") or self.server.username)

    def _disconnect(self) -> None:
        with self._lock:
            self._live_gen = -1
            self._early = []
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
            with self._lock:
                if item is not None:
                    self._handle_item(item)
                self._tick(time.monotonic())

    def _receive(self, gen: int, name: str, data: Any, wall_ms: float, mono: float) -> None:
        """A server event, on the transport's reader thread: handled here and now, in the server's order."""
        with self._lock:
            if gen != self._gen:
                return  # an old connection's
            if gen != self._live_gen:
                if self._transport is not None:  # still authenticating: handled once the connection is live
                    self._early.append((name, data, wall_ms, mono))
                return
            self._handle_event(name, data, wall_ms, mono)

    def _handle_event(self, name: str, data: Any, wall_ms: float, mono: float) -> None:
        try:
            self._on_event(name, data, wall_ms, mono)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            self.stats["bad_messages"] += 1
            log.warning("ignoring a malformed %r message from the server: %s", name, redact(str(exc)))
        except Exception:  # a bug must cost one message, not the connection or the adapter
            log.exception("the server's %r message was dropped after an unexpected error (a bug: please report it "
                          "with this traceback); the connection and the other messages go on", name)

    def _handle_item(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "dropped":
            _, gen, reason = item
            if gen == self._live_gen:
                raise _Dropped(reason)
        elif kind == "accepted":
            _, challenge, game_id = item
            self._challenges.on_accepted(challenge, game_id)
            if game_id is not None:
                self._follow(game_id)
        elif kind == "accept_failed":
            self._challenges.release(item[1].challenge_id)
        elif kind in ("seek_sent", "seek_failed", "seek_cancelled", "seek_lost") and self.seeking is not None:
            self._on_seek_item(item)
        elif kind == "reconfigured" and self._live_gen >= 0:
            self._send_bot_config()  # the server shows the new policy and cap

    def _on_seek_item(self, item: tuple[Any, ...]) -> None:
        seeking = self.seeking
        assert seeking is not None
        kind, out = item[0], item[1]
        assert isinstance(out, Outgoing)
        if kind == "seek_sent":
            seeking.on_sent(out, item[2], item[3])
        elif kind == "seek_failed":
            seeking.on_failed(out, item[2], item[3] if len(item) > 3 else True)
        elif kind == "seek_lost":
            seeking.on_lost(out, item[2], time.monotonic())
        else:
            seeking.on_cancelled(out, item[2])

    def _tick(self, now: float) -> None:
        """After every queue item and every idle 0.1 s (server events do not pass here): O(1) unless something is
        due."""
        if now >= self._next_ping:
            self._send_ping()
            self._next_ping = now + self.server.ping_interval
        silent = now - self._last_pong
        if silent > PONG_MISSES * self.server.ping_interval:
            raise _Dropped(f"no net/pong for {silent:.1f} s ({PONG_MISSES} ping intervals): "
                           f"treating the connection as dead")
        if now >= self._next_periodic or now >= self._games.next_due:
            self._periodic(now)

    def _periodic(self, now: float) -> None:
        """The work over all games and reservations, when due (never per event)."""
        self._next_periodic = now + PERIODIC_INTERVAL
        self._games.check(now)
        self._games.resume_long_pauses(now, self.server.max_pause_time,
                                       self._sync.server_now_ms(time.time() * 1000.0, now))
        self._challenges.expire(now)
        if self.seeking is not None and self._live_gen >= 0:
            self.seeking.tick(now)
        self._send_status()

    # --- sending --------------------------------------------------------------------------------------------
    def send(self, command: str, data: Any) -> bool:
        """Write one command on the live connection; False when there is none or the write failed."""
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
            transport.send("net/ping", {"client": self._sync.ping_stamp(time.time() * 1000.0, time.monotonic()),
                                        "drift": round(self._sync.drift, 1),
                                        "latency": round(self._sync.latency, 1)})
        except TransportError:
            pass

    def _send_bot_config(self) -> None:
        payload = bot_config(self.server.accept, bot_id=self.bot_id, username=self.bot_username,
                             max_games=self.max_games() or 1)
        payload["hidden"] = bool(getattr(self.server, "hidden", False))  # off OGS's public bot list
        self.send("bot/config", payload)

    def _send_status(self) -> None:
        if self._live_gen < 0:
            return
        counts = self._games.status()
        if counts != self._last_status and self.send("bot/status", counts):
            self._last_status = counts

    # --- what the parts use (games.Link, challenges.Desk) -----------------------------------------------------
    def max_games(self) -> int | None:
        try:
            return int(self.config.daemon.max_concurrent_games)
        except (AttributeError, TypeError, ValueError):
            return None

    def uncounted_games(self) -> int:
        return self._challenges.commitments(None)[0]

    def server_now_ms(self, wall_ms: float, mono: float) -> float:
        return self._sync.server_now_ms(wall_ms, mono)

    def open_inbox(self, game_id: str, color: Color, actions: GoActions) -> GameInbox:
        return self.host().open_game(game_id, color, actions)

    def host(self) -> Host:
        assert self._host is not None
        return self._host

    def rest(self) -> OgsRest:
        assert self._rest is not None
        return self._rest

    def run_rest(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._executor is not None
        try:
            self._executor.submit(fn, *args)
        except RuntimeError:  # shutting down
            pass

    def enqueue(self, item: tuple[Any, ...]) -> None:
        self._queue.put(item)

    # --- actions from sessions ----------------------------------------------------------------------------
    def _act(self, game_id: str, action: GoAction) -> None:
        """A session's request, on the session's thread: written at once on the live connection (no queue, no
        lock of the adapter's: the transport's send is thread-safe; reading a game's settings is atomic)."""
        if self._live_gen < 0:
            log.info("game %s: %s not sent: no live connection (the game resumes from the server's state after "
                     "the reconnect)", game_id, type(action).__name__)
            return
        try:
            send_action(self._games.get(game_id), game_id, action, self.send, self._reject_action)
        except Exception:
            log.exception("game %s: error while sending %s", game_id, type(action).__name__)

    def _reject_action(self, game: Game, reason: str) -> None:
        self._games.post(game, ActionRejected(reason))

    # --- events ---------------------------------------------------------------------------------------------
    def _on_event(self, name: str, data: Any, wall_ms: float, mono: float) -> None:
        if name == "net/pong":
            if not isinstance(data, Mapping):
                raise ValueError("expected an object")
            self._last_pong = mono
            self._sync.add(float(data["client"]), float(data["server"]), wall_ms, mono)
        elif name == "notification":
            if (isinstance(data, Mapping) and data.get("type") == "gameOfferRejected"
                    and self.seeking is not None and self.seeking.on_rejected(data)):
                if data.get("id") is not None:
                    self.send("notification/delete", {"notification_id": data["id"]})
                return
            self._challenges.on_notification(data)
        elif name == "active_game":
            self._on_active_game(data)
        elif name == "seekgraph/global":
            if self.seeking is not None:
                self.seeking.on_seekgraph(data)
        elif name == "ERROR":
            log.warning("the OGS server at %s sent an error: %s; the bridge goes on; if it repeats, look at the "
                        "bot's account on the site", self.url, redact(str(data))[:300])
        elif name.startswith("game/"):
            parts = name.split("/", 2)
            if len(parts) < 3:
                log.debug("ignoring event %s", name)
                return
            game = self._games.get(parts[1])
            if game is None:
                log.debug("ignoring %s: not a game we follow", name)
                return
            self._games.on_event(game, parts[2], data, wall_ms, mono)
        else:
            log.debug("ignoring event %s", name)

    def _on_active_game(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        game_id = str(required_id(data, "id"))
        ids = {opt_id(p.get("id")) for p in (data.get("black"), data.get("white")) if isinstance(p, Mapping)}
        ids.discard(None)
        others = ids - {self.bot_id}
        if ids and self.bot_id is not None and self.bot_id not in ids:
            log.debug("active_game %s is not ours", game_id)
            return
        game = self._games.get(game_id)
        if data.get("phase") == "finished":
            if game is not None and game.result is None and game.finish_deadline is None:
                self._games.expect_end(game)
            return
        if game is None:
            self._follow(game_id, next(iter(others)) if len(others) == 1 else None)

    def _follow(self, game_id: str, opponent: int | None = None) -> None:
        # the accepted challenge becomes this game: from now on the game itself counts, against the same
        # opponent until its gamedata names the players (and stops counting when the game is forgotten)
        if self.seeking is not None:
            incoming = any(res.game_id == game_id or (res.game_id is None and res.user_id == opponent is not None)
                           for res in self._challenges.reservations.values())
            claimed = self.seeking.claim(game_id, incoming, opponent)
            opponent = opponent if opponent is not None else claimed
        opponent = self._challenges.claim(game_id, opponent)
        self._games.follow(game_id, OgsGoActions(self._act, game_id), opponent)


__all__ = ["OgsAdapter"]
