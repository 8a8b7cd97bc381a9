"""The Open Games client adapter: matchmaking, then each game run in the daemon (``Host.run_game``) by a
:class:`GameRunner` with the bridge's Battleship player (:mod:`bridge.games.battleship`).

Connecting: the API key (``og_`` + 64 hex digits) is read and checked, ``GET /agents/me`` must accept it (a
401 is final: FatalAdapterError, one ERROR line, exit status 77). In ``mode: webhook`` the receiver
(:mod:`.webhook`) starts and its URL is registered (``POST /webhooks/register``); it is removed again on the way out.

Serving, one game at a time (the platform matches an agent into one game): the game kept on disk
(:class:`GameMemory`, the daemon restarted mid-game) is resumed first, then one ``GET /matchmaking/status`` or
``GET /agents/status`` (``active_games``) names that we have not played; else ``POST
/matchmaking/join`` ("already in the queue / matched" counts as joined) and the status is polled every
``poll_interval`` seconds (webhook mode: woken by ``match_found``, polled every ``webhook.fallback_poll``).
After ``server.games`` games (0: never) the adapter stops the daemon. On the way out it leaves the queue.

A game (:class:`GameRunner`, the Open Games side of :class:`bridge.gameloop.GameLoop`, with
:class:`BattleshipSide` as the player's side): ``POST /mcp/game/join``, then the state is read (every
``state_interval`` s, or on each ``your_turn`` / ``game_over`` webhook with a ``fallback_poll``) until
``game_over``. At our turn the player is told what changed, ``GET .../actions`` says which ships may move, and the
engine gets the time left on the server's turn clock (``turn_timeout_seconds - turn_elapsed_seconds``) as the
loop's :class:`~bridge.gameloop.TurnClock` shares it; its action is sent with its reasoning and message. What is
generic -- one action per turn number, a refused action (400, 422, ``valid: false``) asked again (the engine
re-told every ship, then fallback shots), a lost answer or another error settled from the state (carried out:
the shot shows, or the fleet moved; else sent again while the turn lasts, once more blind if the state cannot be
read in time), the record written atomically -- is the loop's; this module keeps the API calls, the view
parsing, the settling rule (what in the state shows an action landed), :class:`GameMemory` and the webhook
waits. At the end the game's record is ``records/opengames-GAME.json``: the platform's dataset record if it has
one, else the bridge's own (every turn seen), and the agent's stats are logged.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from bridge.adapters.opengames.api import (
    POLITE_WINDOW,
    ApiError,
    LostAnswer,
    OpenGamesApi,
    Pacer,
    RetryPolicy,
    Stopped,
    Unauthorized,
    parse_action_answer,
    parse_state,
    short,
)
from bridge.adapters.opengames.config import API_PREFIX, OpenGamesServerConfig, key_shape_problem
from bridge.adapters.opengames.webhook import WebhookEvent, WebhookReceiver
from bridge.datadir import advice
from bridge.engines.line import EngineTurn
from bridge.errors import BridgeError, ConfigError, FatalAdapterError, ProtocolError, ServerError, UsageError
from bridge.events import CheckLine, GameContext, Host, host_ready
from bridge.gameloop import (
    Decision,
    Fault,
    FaultKind,
    GameLoop,
    Landed,
    LoopSettings,
    Record,
    Settlement,
    Snapshot,
    Verdict,
    finite,
)
from bridge.gameloop import TurnClock as TurnClock  # the turn's time (formerly here)
from bridge.games.battleship import BattleshipPlayer, BattleshipView, make_player
from bridge.games.battleship_rules import ShotResult, cell_name
from bridge.redact import redact, register_secret
from bridge.seek import Seek, Seeker

log = logging.getLogger("bridge.opengames")

PlayerFactory = Callable[[GameContext], BattleshipPlayer]
JOIN_WAIT = 300.0  # seconds to wait for the opponent to join a game before giving it up
MAX_REJECTIONS = 6  # refused actions in one turn before the bridge stops trying (the turn is then lost)
MAX_BAD_STATES = 5  # unreadable states in a row before the game is given up
REFUSALS = (400, 422)  # the statuses by which the platform says an action is invalid (it was not carried out)
GAME_OVER_GRACE = 2.0  # seconds a game that ended waits for its game_over webhook (webhook mode)
IN_GAME_MAX_DELAY = 5.0  # cap on the retry backoff of a game's calls (a recovery is noticed within this)
DEFAULT_URL = "https://www.open-games.ai"


def default_player_factory(ctx: GameContext) -> BattleshipPlayer:
    return make_player(ctx)


@dataclass
class GameResult:
    game_id: str
    player: int | None = None
    opponent: str | None = None
    outcome: str = "unknown"  # won, lost, unknown
    turns: int = 0  # our actions
    fallbacks: int = 0
    settled: int = 0  # actions whose lost answers were settled from the state
    rejected: int = 0
    error: str | None = None
    record: Path | None = None
    already_over: bool = False  # the game was over when we joined (a resumed game)
    incidents: list[str] = field(default_factory=list)


class GameMemory:
    """The game an agent is playing, kept on disk (``DATA_DIR/state/opengames-AGENT.json``) from its join to its
    end, so that a daemon restarted mid-game (SIGTERM, SIGKILL, a crash, a reboot) finds it again even if the
    platform's matchmaking status no longer names it. Holds the game id, our role, when it started and the
    bridge's own turn log (for its record); the game itself is read from the platform's state. Written
    atomically; a file that cannot be read is one warning and ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("the game kept in %s cannot be read (%s); ignoring it", self.path,
                        getattr(exc, "strerror", None) or exc)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("game_id"), str) or not data["game_id"]:
            log.warning("the game kept in %s has no game_id; ignoring it", self.path)
            return None
        return data

    def save(self, data: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(redact(json.dumps(data, ensure_ascii=False)) + "\n", encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("cannot keep the game in progress in %s (%s); a restart would rely on the platform's "
                        "matchmaking status to find it; %s", self.path, exc.strerror or exc, advice(self.path.parent))

    def forget(self, game_id: str) -> None:
        kept = self.load()
        if kept is not None and kept.get("game_id") == game_id:
            try:
                self.path.unlink()
            except OSError:
                pass


class OpenGamesAdapter:
    """Implements :class:`bridge.events.Adapter` for Open Games."""

    def __init__(self, server: OpenGamesServerConfig, config: Any,
                 player_factory: PlayerFactory | None = None) -> None:
        self.server = server
        self.config = config
        self.player_factory: PlayerFactory = player_factory or default_player_factory
        self.retry = RetryPolicy(server.retry_min_delay, server.retry_max_delay, server.retry_give_up)
        self.receiver: WebhookReceiver | None = None
        self.agent_id: str | None = None
        self.agent_name: str = server.agent
        self.results: list[GameResult] = []
        self.stats: Counter[str] = Counter()
        self.seeker = Seeker(server.seek) if server.seek is not None else None
        self.stopped_reason: str | None = None
        self._key: str | None = None
        self._token: str | None = None
        self._lock = threading.Lock()
        self._finished: set[str] = set()
        self.opponents: dict[str, str] = {}  # game id -> the opponent's name, from match_found
        self._queued = False
        # every request of this agent (matchmaking and games) goes through it
        self.pacer = Pacer(max(1, int(server.max_request_rate * POLITE_WINDOW)), POLITE_WINDOW)
        data_dir = getattr(getattr(config, "daemon", None), "data_dir", None) or "runs"
        self.memory = GameMemory(Path(data_dir) / "state" / f"opengames-{_safe(server.agent)}.json")

    # server keys a reload (SIGHUP) applies live: the polling and state intervals, the turn margin, the game count,
    # messages, the HTTP timeout, request rate and retry policy (games in progress keep their own settings; the rate
    # limit is shared by all at once). The agent, its key, the URL, the mode and the seek policy need a restart.
    reloadable_server_keys = frozenset({"poll_interval", "state_interval", "turn_margin", "games", "messages",
                                        "request_timeout", "max_request_rate", "retry_min_delay",
                                        "retry_max_delay", "retry_give_up"})

    def reconfigure(self, config: Any) -> None:
        """Take a reloaded configuration whose server keys differ from the running ones in
        ``reloadable_server_keys`` only."""
        server = config.server
        self.config, self.server = config, server
        self.retry = RetryPolicy(server.retry_min_delay, server.retry_max_delay, server.retry_give_up)
        self.pacer.limit = max(1, int(server.max_request_rate * POLITE_WINDOW))

    # --- plumbing ------------------------------------------------------------------------------------------
    def key(self) -> str:
        if self._key is None:
            self._key = self.server.resolve_key()
        return self._key

    def make_api(self, stop: threading.Event, retry: RetryPolicy | None = None,
                 timeout: float | None = None) -> OpenGamesApi:
        return OpenGamesApi(self.server.api_url, self.key(), timeout=timeout or self.server.request_timeout,
                            retry=retry or self.retry, stop=stop, pacer=self.pacer)

    def _fatal(self, stop: threading.Event, message: str) -> NoReturn:
        """The adapter contract's fatal condition: ``run`` ends with :class:`FatalAdapterError`; the daemon logs
        it as one ERROR line and `gamebridge run` exits with status 77 (under systemd the unit shows as failed)."""
        self.stopped_reason = message
        raise FatalAdapterError(message)

    def count(self, stat: str, n: int = 1) -> None:
        with self._lock:
            self.stats[stat] += n

    # --- Adapter -------------------------------------------------------------------------------------------
    def run(self, host: Host, stop: threading.Event) -> None:
        """Authenticate, then play until ``stop`` is set, ``server.games`` are played, or a fatal error."""
        try:
            self.key()
            check_engine_protocol(self.config)
            if self.server.webhook is not None and self.server.mode == "webhook":
                self._token = self.server.webhook.token.resolve("server.webhook.token").get_secret_value()
        except ConfigError as exc:
            self._fatal(stop, str(exc))
            return
        api = self.make_api(stop)
        try:
            me = self._connect(api, stop)
            if me is None:
                return
            if self.server.mode == "webhook" and not self._start_webhooks(api, stop):
                return
            host_ready(host)
            self._serve(api, host, stop)
        except Unauthorized as exc:
            self._fatal(stop, str(exc))
        except Stopped:
            pass
        finally:
            self._leave(api)
            api.close()

    def _connect(self, api: OpenGamesApi, stop: threading.Event) -> dict[str, Any] | None:
        while not stop.is_set():
            try:
                me = api.me()
            except (ApiError, ProtocolError) as exc:
                log.warning("Open Games at %s: %s; trying again in %.0f s", self.server.url, exc,
                            self.server.retry_max_delay)
                stop.wait(self.server.retry_max_delay)
                continue
            self.agent_id = str(me["id"]) if me.get("id") not in (None, "") else None
            self.agent_name = str(me.get("name") or self.server.agent)
            if self.agent_name.casefold() != self.server.agent.casefold():
                log.warning("the platform calls this agent %r, not %r (server.agent); playing as %r",
                            self.agent_name, self.server.agent, self.agent_name)
            log.info("connected to Open Games at %s as agent %s (%s mode%s)", self.server.url,
                     self.agent_name, self.server.mode,
                     f", {self.server.games} game(s)" if self.server.games else "")
            return me
        return None

    def _start_webhooks(self, api: OpenGamesApi, stop: threading.Event) -> bool:
        hook = self.server.webhook
        assert hook is not None and self._token is not None
        try:
            self.receiver = WebhookReceiver(hook.listen_host, hook.listen_port, self._token,
                                            max_body=hook.max_body, public_url=hook.public_url).start()
        except OSError as exc:
            self._fatal(stop, f"the webhook receiver cannot listen on {hook.listen_host}:{hook.listen_port} "
                              f"({exc.strerror or exc}); change server.webhook.listen_host/listen_port or "
                              f"use mode: polling")
            return False
        try:
            api.register_webhook(self.receiver.url, self._token)
        except ApiError as exc:
            self._fatal(stop, f"the platform refused the webhook URL {self.receiver.url}: {exc}; check "
                              f"server.webhook.public_url")
            return False
        log.info("webhooks registered: the platform posts to %s", self.receiver.url)
        host = self.server.url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        if hook.public_url is None and host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
            log.warning("server.webhook.public_url is not set, so the platform was given %s, which it cannot "
                        "reach unless it runs on this machine; set public_url to the address the platform "
                        "can reach (the bridge falls back to polling every %.0f s meanwhile)",
                        self.receiver.url, hook.fallback_poll)
        return True

    def _leave(self, api: OpenGamesApi) -> None:
        """On the way out: leave the queue, remove the webhook, stop the receiver (one quick try each)."""
        quick = self.make_api(threading.Event(), RetryPolicy(0.2, 0.5, give_up=2.0),
                              timeout=min(self.server.request_timeout, 5.0))
        try:
            if self._queued:
                try:
                    quick.mm_leave(give_up=2.0)
                    log.info("left the matchmaking queue")
                except BridgeError as exc:
                    log.info("could not leave the matchmaking queue on the way out: %s", exc)
                self._queued = False
            if self.receiver is not None:
                try:
                    quick.delete_webhook(give_up=2.0)
                except BridgeError as exc:
                    log.info("could not remove the webhook registration on the way out: %s", exc)
                self.receiver.stop()
                self.receiver = None
        finally:
            quick.close()

    def _serve(self, api: OpenGamesApi, host: Host, stop: threading.Event) -> None:
        played = 0
        while not stop.is_set():
            if self.server.games and played >= self.server.games:
                log.info("played %d game(s) as server.games asks; the daemon stops", played)
                stop.set()
                return
            try:
                game_id = self._find_match(api, host, stop)
            except (ApiError, ProtocolError) as exc:
                log.warning("matchmaking at %s: %s; trying again in %.0f s", self.server.url, exc,
                            self.server.retry_max_delay)
                stop.wait(self.server.retry_max_delay)
                continue
            if game_id is None:
                return
            if self._play_one(host, stop, game_id):
                played += 1

    def _find_match(self, api: OpenGamesApi, host: Host, stop: threading.Event) -> str | None:
        kept = self.memory.load()
        if kept is not None and not self._done(kept["game_id"]):
            log.info("resuming game %s, which this agent was playing when the bridge stopped (kept in %s)",
                     kept["game_id"], self.memory.path)
            return str(kept["game_id"])
        status = api.mm_status()
        if status.matched and status.game_id and not status.game_over and not self._done(status.game_id):
            log.info("the platform has us in game %s: joining it", status.game_id)
            return status.game_id
        for game_id in api.active_games():
            if not self._done(game_id):
                log.info("the platform lists game %s as one of ours in progress: joining it", game_id)
                return game_id
        while not host.can_accept_game():
            if stop.wait(self.server.poll_interval):
                return None
        seek = self._seek_turn(stop)
        if seek is None:
            return None
        try:
            return self._queue_for(api, stop, seek)
        finally:
            if self.seeker is not None:
                self.seeker.withdrawn(seek)  # no game came of it (a matched one was counted as started already)

    def _queue_for(self, api: OpenGamesApi, stop: threading.Event, seek: Seek) -> str | None:
        """Join the matchmaking queue and wait for a match: its game id, or None when the daemon stops."""
        answer = api.mm_join()
        self._queued = True
        self.count("queue_joins")
        log.info("in the matchmaking queue as %s (%s)", self.agent_name,
                 short(str(answer.get("message") or f"position {answer.get('position', '?')}")))
        stale = 0
        while not stop.is_set():
            if self.receiver is not None:
                event = self.receiver.wait_for(lambda e: e.event == "match_found", self.fallback_poll, stop)
                if event is not None and event.game_id and not self._done(event.game_id):
                    self._queued = False
                    if isinstance(event.data.get("opponent_name"), str):
                        self.opponents[event.game_id] = event.data["opponent_name"]
                    log.info("webhook match_found: game %s against %s", event.game_id,
                             event.data.get("opponent_name", "?"))
                    return self._matched(seek, event.game_id)
            elif stop.wait(self.server.poll_interval):
                return None
            if stop.is_set():
                return None
            status = api.mm_status()
            if status.matched and status.game_id:
                if not self._done(status.game_id) and not status.game_over:
                    self._queued = False
                    log.info("matched: game %s", status.game_id)
                    return self._matched(seek, status.game_id)
                stale += 1  # the platform still shows our last game: ask for a new one now and then
                if stale % 3 == 0:
                    log.info("the platform still reports finished game %s as our match; leaving and joining "
                             "the queue again", status.game_id)
                    api.mm_leave()
                    api.mm_join()
            elif not status.in_queue:
                log.info("no longer in the matchmaking queue; joining it again")
                api.mm_join()
        return None

    def _seek_turn(self, stop: threading.Event) -> Seek | None:
        """Wait until ``server.seek`` lets the agent join the queue (``every``, ``pause``); None when it never will
        again (``stop_after`` games started: the adapter then idles until the daemon stops) or the daemon stops.
        Without ``seek``: at once."""
        seeker = self.seeker
        if seeker is None:
            return Seek("", True)
        while not stop.is_set():
            if seeker.done:
                seeker.next()  # logs, once, that it seeks no more
                stop.wait()
                return None
            seek = seeker.next()
            if seek is not None:
                return seek
            stop.wait(min(1.0, self.server.poll_interval))
        return None

    def _matched(self, seek: Seek, game_id: str) -> str:
        if self.seeker is not None:
            self.seeker.started(seek, game_id)
        return game_id

    def _done(self, game_id: str) -> bool:
        with self._lock:
            return game_id in self._finished

    @property
    def fallback_poll(self) -> float:
        """Seconds between polls while webhooks are awaited."""
        return self.server.webhook.fallback_poll if self.server.webhook is not None else 15.0

    def _play_one(self, host: Host, stop: threading.Event, game_id: str) -> bool:
        """Run one game in the daemon and wait for its end; True if it counts as a game played."""
        done = threading.Event()
        box: list[GameResult] = []
        target = functools.partial(self._play, game_id=game_id, done=done, box=box)
        if not host.run_game(game_id, target):
            log.warning("game %s: the daemon would not run it (already running, or stopping)", game_id)
            with self._lock:
                self._finished.add(game_id)
            stop.wait(self.server.poll_interval)
            return False
        while not done.wait(0.5):
            if stop.is_set():
                done.wait(30)
                return False
        return bool(box) and not box[0].already_over

    def _play(self, ctx: GameContext, game_id: str, done: threading.Event, box: list[GameResult]) -> None:
        try:
            result = GameRunner(self, ctx, game_id).run()
            box.append(result)
            with self._lock:
                self.results.append(result)
                self.stats["games"] += 1
                self.stats[result.outcome if result.error is None else "unfinished"] += 1
                self.stats["fallbacks"] += result.fallbacks
                self.stats["settled"] += result.settled
                self.stats["rejected"] += result.rejected
        finally:
            with self._lock:
                self._finished.add(game_id)
            if self.receiver is not None:
                self.receiver.discard(game_id)
            if self.seeker is not None:
                self.seeker.ended(game_id)
            done.set()

    # --- gamebridge check ---------------------------------------------------------------------------
    def check(self) -> list[CheckLine]:
        """Reach the platform, authenticate, compare the agent's name: one line each. Never raises."""
        try:
            self.key()
            check_engine_protocol(self.config)
        except ConfigError as exc:
            return [CheckLine(False, str(exc))]
        timeout = min(self.server.request_timeout, 15.0)
        api = self.make_api(threading.Event(), RetryPolicy(0.2, 1.0, give_up=timeout), timeout)
        lines: list[CheckLine] = []
        try:
            started = time.monotonic()
            try:
                me = api.me()
            except Unauthorized as exc:
                return [CheckLine(True, f"Open Games reachable at {self.server.url}"),
                        CheckLine(False, str(exc))]
            except ApiError as exc:
                if exc.status == 0:
                    return [CheckLine(False, f"cannot reach Open Games at {self.server.url}: {exc}")]
                return [CheckLine(False, f"{self.server.url} does not answer like Open Games ({exc}); check "
                                         f"server.url (the API is under {API_PREFIX})")]
            except ProtocolError as exc:
                return [CheckLine(False, f"{self.server.url} does not answer like Open Games ({exc}); check "
                                         f"server.url")]
            ms = (time.monotonic() - started) * 1000
            lines.append(CheckLine(True, f"Open Games reachable at {self.server.url} (answered in "
                                         f"{ms:.0f} ms)"))
            name = str(me.get("name"))
            lines.append(CheckLine(True, f"API key accepted: agent {name}"
                                         + (f" ({me['id']})" if me.get("id") else "")))
            if name.casefold() != self.server.agent.casefold():
                lines.append(CheckLine(False, f"the platform calls this agent {name!r}, not "
                                              f"{self.server.agent!r}: fix server.agent"))
            if self.server.mode == "webhook" and self.server.webhook is not None:
                lines.append(self._check_listen())
        except ServerError as exc:
            lines.append(CheckLine(False, f"Open Games at {self.server.url}: {exc}"))
        finally:
            api.close()
        return lines

    def _check_listen(self) -> CheckLine:
        hook = self.server.webhook
        assert hook is not None
        try:
            token = hook.token.resolve("server.webhook.token").get_secret_value()
            receiver = WebhookReceiver(hook.listen_host, hook.listen_port, token, max_body=hook.max_body,
                                       public_url=hook.public_url).start()
        except ConfigError as exc:
            return CheckLine(False, str(exc))
        except OSError as exc:
            return CheckLine(False, f"the webhook receiver cannot listen on {hook.listen_host}:"
                                    f"{hook.listen_port}: {exc.strerror or exc}")
        url = receiver.url
        receiver.stop()
        return CheckLine(True, f"the webhook receiver can listen on {hook.listen_host}:{hook.listen_port}; "
                               f"the platform will be told {url}")


# --- one game ---------------------------------------------------------------------------------------------
View = Snapshot[BattleshipView]


def snapshot(view: BattleshipView) -> View:
    """The loop's view of a state: the turn number, whose turn, over, and the time left on the turn clock."""
    return Snapshot(view, view.turn, view.my_turn, view.game_over, view.turn_timeout - view.turn_elapsed)


class ActionRefused(Exception):
    """The platform answered an action with ``valid: false`` (it was not carried out)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GameRunner:
    """One game on Open Games: the adapter's side of :class:`bridge.gameloop.GameLoop` (``GameIO``), which plays
    it in the calling thread (the daemon's game thread) with a :class:`BattleshipSide`."""

    def __init__(self, adapter: OpenGamesAdapter, ctx: GameContext, game_id: str) -> None:
        self.adapter = adapter
        self.server = adapter.server
        self.ctx = ctx
        self.game_id = game_id
        policy = adapter.retry
        self.api = adapter.make_api(ctx.stop, RetryPolicy(min(policy.min_delay, IN_GAME_MAX_DELAY),
                                                          min(policy.max_delay, IN_GAME_MAX_DELAY),
                                                          policy.give_up))
        self.receiver = adapter.receiver
        self.player: BattleshipPlayer | None = None
        self.result = GameResult(game_id, opponent=adapter.opponents.get(game_id))
        self.turn_log: list[dict[str, Any]] = []
        self.started_at = datetime.now(UTC)
        self.game_over_event: WebhookEvent | None = None
        self.kept_record: Path | None = None  # the record of a game that was over when we joined, if written
        kept = adapter.memory.load()
        if kept is not None and kept.get("game_id") == game_id:  # resumed after a restart: the record goes on
            self.turn_log = [t for t in kept.get("turn_log", []) if isinstance(t, dict)]
            try:
                self.started_at = datetime.fromisoformat(str(kept.get("started_at")))
            except ValueError:
                pass

    def remember(self) -> None:
        """Keep the game on disk (GameMemory): after joining it and after each of our actions."""
        self.adapter.memory.save({"game_id": self.game_id, "agent": self.adapter.agent_name,
                                  "player": self.result.player, "started_at": self.started_at.isoformat(),
                                  "turn_log": self.turn_log})

    def note(self, text: str) -> None:
        self.ctx.transcript.note(text, "opengames")

    def incident(self, text: str, level: int = logging.WARNING) -> None:
        self.result.incidents.append(text)
        log.log(level, "game %s: %s", self.game_id, text)
        self.note(text)

    # --- the whole game ------------------------------------------------------------------------------------
    def run(self) -> GameResult:
        engine = getattr(getattr(self.ctx, "config", None), "engine", None)
        settings = LoopSettings(margin=self.server.turn_margin, max_restarts=getattr(engine, "max_restarts", 3),
                                max_rejections=MAX_REJECTIONS, server="the platform")
        side = BattleshipSide(self)
        done = GameLoop(self, side, Path(self.ctx.records_dir), settings, name=f"game {self.game_id}").run()
        self.result.settled, self.result.rejected = done.settled, done.rejected
        self.result.error = done.error
        self.result.record = done.records[0] if done.records else self.kept_record
        if self.player is not None:
            self.player.close()
            self.result.fallbacks = self.player.fallbacks
            self.result.incidents += [i for i in self.player.incidents if i not in self.result.incidents]
        return self.result

    # --- GameIO: reading -----------------------------------------------------------------------------------
    def open(self) -> View:
        g = self.game_id
        joined = self.api.game_join(g)
        role = joined.get("player_role")
        self.result.player = role if role in (1, 2) else None
        for key in ("opponent_name", "opponent"):
            if isinstance(joined.get(key), str) and not self.result.opponent:
                self.result.opponent = joined[key]
        self.note(f"Open Games game {g} at {self.server.url}: joined as player {role} "
                  f"({short(str(joined.get('message', '')))}); opponent {self.result.opponent or '?'}")
        log.info("game %s: joined as player %s against %s", g, role, self.result.opponent or "?")
        self.remember()
        view = self._first_state()
        self.result.already_over = view.game_over
        return snapshot(view)

    def _first_state(self) -> BattleshipView:
        """The first state; waits for the opponent to join (a state that is not there yet, or says so)."""
        deadline = time.monotonic() + JOIN_WAIT
        waited = False
        while True:
            try:
                raw = self.api.raw_state(self.game_id)
                waiting = isinstance(raw, dict) and raw.get("waiting_for_opponent") is True
                if waiting and not raw.get("game_over"):
                    raise _NotStarted("waiting for the opponent")
                return parse_state(raw, f"GET /mcp/game/{self.game_id}/state")
            except (_NotStarted, ApiError) as exc:
                if isinstance(exc, ApiError) and not (400 <= exc.status < 500 and exc.status != 403):
                    raise
                if time.monotonic() > deadline:
                    raise ServerError(f"the game did not start within {JOIN_WAIT:.0f} s of joining ({exc}); "
                                      f"the opponent never connected") from None
                if not waited:
                    self.note(f"waiting for the game to start ({exc})")
                    waited = True
                self.pause(min(self.server.state_interval, 2.0))

    def read(self, deadline: float | None = None) -> View:
        return snapshot(self._read_state(deadline))

    def _read_state(self, deadline: float | None = None) -> BattleshipView:
        """The game's state; ``deadline`` (``time.monotonic()``): give up by then (ApiError, ProtocolError)."""
        bad = 0
        while True:
            try:
                return self.api.state(self.game_id, deadline=deadline)
            except ProtocolError as exc:
                bad += 1
                if bad >= MAX_BAD_STATES or (deadline is not None and time.monotonic()
                                             + self.server.state_interval >= deadline):
                    raise
                self.incident(f"unreadable state ({exc}); reading it again")
                self.pause(self.server.state_interval)

    def wait(self, snap: View) -> None:
        if self.receiver is None:
            self.pause(self.server.state_interval)
            return
        g = self.game_id
        event = self.receiver.wait_for(lambda e: e.game_id == g and e.event in ("your_turn", "game_over"),
                                       self.adapter.fallback_poll, self.ctx.stop)
        if self.ctx.stop.is_set():
            raise Stopped("the daemon is stopping")
        if event is not None and event.event == "game_over":
            self.game_over_event = event

    def stale(self, snap: View) -> str | None:
        return None  # polled turn by turn: nothing changes the game while the engine thinks

    def options(self, snap: View, deadline: float) -> list[str] | None:
        """Which ships may move (``GET .../actions``); None: the state's ``can_move`` decides."""
        view = snap.state
        if not view.movable():
            return []
        if deadline <= time.monotonic():
            self.note("no time to ask GET .../actions; the state's can_move decides which ships may move")
            return None
        try:
            return self.api.actions(self.game_id, deadline=finite(deadline))
        except (ApiError, ProtocolError) as exc:
            self.note(f"GET .../actions failed ({exc}); the state's can_move decides which ships may move")
            return None

    @property
    def stopping(self) -> bool:
        return self.ctx.stop.is_set()

    def pause(self, seconds: float) -> None:
        if self.ctx.stop.wait(seconds):
            raise Stopped("the daemon is stopping")

    # --- GameIO: acting ------------------------------------------------------------------------------------
    def send(self, snap: View, turn: EngineTurn, deadline: float) -> Landed:
        message = turn.message if self.server.messages else ""
        g = self.game_id
        if turn.shot is not None:
            answer = self.api.shoot(g, turn.shot, turn.reasoning, message, deadline=finite(deadline))
        else:
            answer = self.api.move(g, turn.moves, turn.reasoning, message, deadline=finite(deadline))
        parsed = parse_action_answer(answer)
        if not parsed.valid:
            raise ActionRefused(parsed.reason or short(json.dumps(answer)))
        result: ShotResult | None = None
        if turn.shot is not None and parsed.hit is not None:
            if parsed.hit and parsed.sunk:
                result = ShotResult("sunk", parsed.sunk)
            elif parsed.sunk == "" and parsed.hit:
                result = None  # sunk, but which ship: read it from the state
            else:
                result = ShotResult("hit" if parsed.hit else "miss")
        return Landed(result, over=parsed.game_over)

    def classify(self, exc: BaseException) -> Fault:
        if isinstance(exc, Stopped):
            return Fault(FaultKind.STOPPED, str(exc))
        if isinstance(exc, ActionRefused):
            return Fault(FaultKind.REJECTED, exc.reason)
        if isinstance(exc, ApiError) and exc.status in REFUSALS and not exc.maybe_done:
            return Fault(FaultKind.REJECTED, exc.detail or str(exc))
        if isinstance(exc, ApiError | ProtocolError):
            lost = isinstance(exc, LostAnswer) or not isinstance(exc, ApiError) or exc.status == 0 or exc.maybe_done
            detail = short(exc.detail if isinstance(exc, ApiError) and exc.detail else str(exc), 120)
            status = exc.status if isinstance(exc, ApiError) else "?"
            return Fault(FaultKind.LOST, detail, None if lost else f"HTTP {status}")
        return Fault(FaultKind.FATAL, str(exc))

    def settle(self, snap: View, turn: EngineTurn, fault: Fault, deadline: float) -> Settlement[BattleshipView]:
        """Was an action that met an error, or whose answer was lost, carried out? Read from the state."""
        view = snap.state
        after = self._read_state(deadline=finite(deadline))
        moved_on = after.game_over or after.turn != view.turn or not after.my_turn
        if turn.shot is not None:
            cell = turn.shot
            new_hit = cell in set(after.my_hits) and cell not in set(view.my_hits)
            shown = new_hit or after.my_misses.count(cell) > view.my_misses.count(cell)
            if shown or (moved_on and cell in set(view.my_misses)):
                verdict = Verdict.LANDED
            else:
                verdict = Verdict.TURN_OVER if moved_on else Verdict.NOT_LANDED
        else:
            changed = after.fleet != view.fleet
            verdict = Verdict.LANDED if changed else (Verdict.TURN_OVER if moved_on else Verdict.NOT_LANDED)
        return Settlement(verdict, snapshot(after))

    def played(self, snap: View, decision: Decision[EngineTurn], turn: EngineTurn, landed: Landed,
               after: View | None) -> None:
        """Bookkeeping of an action of ours that was carried out (after the player was told of it)."""
        view = snap.state
        result = landed.result
        if turn.shot is not None and result is None and self.player is not None and self.player.history:
            result = self.player.history[-1][2]  # read from the state
        self.result.turns += 1
        if self.receiver is not None:
            self.receiver.played(self.game_id, view.turn)
        entry: dict[str, Any] = {"turn": view.turn, "player": view.player, "action_type": turn.kind}
        if turn.shot is not None:
            entry["coordinate"] = cell_name(turn.shot)
            if result is not None:
                entry["result"] = {"hit": result.hit, "sunk": result.kind == "sunk",
                                   "sunk_ship_name": result.ship}
        else:
            entry["moves"] = [str(m) for m in turn.moves]
        entry["reasoning"] = turn.reasoning
        if turn.message and self.server.messages:
            entry["message_after"] = turn.message
        entry["source"] = decision.source
        self.turn_log.append(entry)
        self.remember()
        outcome = f": {result}" if result is not None else ""
        self.note(f"turn {view.turn}: {decision.source} {turn.kind} {turn}{outcome}")

    def cancel(self) -> bool:
        return False  # the platform has no call for it (the Battleship player always has a fallback shot)

    def resign(self) -> None:
        self.note("the platform has no call to resign: the game goes on without actions of ours")

    def engine_slot(self) -> Any:
        return self.ctx.engine_slot()

    # --- GameIO: the end -----------------------------------------------------------------------------------
    def game_over(self, final_snap: View) -> None:
        final = final_snap.state
        g = self.game_id
        if self.receiver is not None and self.game_over_event is None and not self.result.already_over:
            # the state said it first: give the game_over webhook a moment, so that the platform can deliver
            # it before the receiver (at the daemon's end) is gone
            self.game_over_event = self.receiver.wait_for(
                lambda e: e.game_id == g and e.event == "game_over", GAME_OVER_GRACE, self.ctx.stop)
        self.result.outcome = self._outcome(final)
        self.note(f"game over: {self.result.outcome} (winner {final.winner!r}); {self.result.turns} "
                  f"action(s) of ours" + (f"; {self.player.summary()}" if self.player is not None else ""))
        if self.result.already_over:
            log.info("game %s was already over (%s)", g, self.result.outcome)
        else:
            log.info("game %s over: %s against %s after %d action(s) of ours (%d fallback(s))", g,
                     self.result.outcome, self.result.opponent or "?", self.result.turns,
                     self.player.fallbacks if self.player is not None else 0)

    def _outcome(self, final: BattleshipView) -> str:
        w = final.winner
        if isinstance(w, int) and not isinstance(w, bool) and w in (1, 2):
            return "won" if w == final.player else "lost"
        if isinstance(w, str) and w:
            mine = {self.adapter.agent_name.casefold(), (self.adapter.agent_id or "").casefold(),
                    f"player{final.player}", f"player {final.player}", str(final.player)}
            return "won" if w.casefold() in mine else "lost"
        if isinstance(w, dict):
            ident = {str(w.get(k, "")).casefold() for k in ("id", "name", "agent_id")}
            if ident & {self.adapter.agent_name.casefold(), (self.adapter.agent_id or "").casefold()}:
                return "won"
            return "lost" if any(ident - {""}) else "unknown"
        if self.game_over_event is not None and isinstance(self.game_over_event.data.get("you_won"), bool):
            return "won" if self.game_over_event.data["you_won"] else "lost"
        if final.all_theirs_sunk:
            return "won"
        if final.all_mine_sunk:
            return "lost"
        return "unknown"

    def records(self, final_snap: View) -> list[Record]:
        """The platform's dataset record if it has one, else the bridge's own."""
        name = f"opengames-{_safe(self.game_id)}.json"
        path = Path(self.ctx.records_dir) / name
        if self.result.already_over and path.exists():
            self.kept_record = path
            return []
        record: dict[str, Any] | None = None
        for attempt in range(3):
            try:
                record = self.api.dataset_record(self.game_id, give_up=3.0)
            except (ServerError, Stopped) as exc:
                self.note(f"the dataset record could not be read: {exc}")
                break
            if record is not None or self.ctx.stop.is_set():
                break
            if attempt < 2:
                self.ctx.stop.wait(1.0)
        source = "the platform's dataset record"
        if record is None:
            source = "the bridge's own record (the platform has no dataset record of it)"
            record = self._own_record(final_snap.state)
        return [Record(name, json.dumps(record, indent=2, ensure_ascii=False) + "\n", source)]

    def _own_record(self, final: BattleshipView) -> dict[str, Any]:
        return {
            "schema_version": "bridge-opengames-1",
            "game_id": self.game_id,
            "game_type": "battleship",
            "site": self.server.url,
            "started_at": self.started_at.isoformat(),
            "completed_at": datetime.now(UTC).isoformat(),
            "agent": self.adapter.agent_name,
            "player": final.player,
            "opponent": self.result.opponent,
            "result": {"outcome": self.result.outcome, "winner": final.winner},
            "total_turns": final.turn,
            "own_ships": {s.ship.name: [cell_name(c) for c in s.ship.cells] for s in final.ships},
            "turns": self.turn_log,
            "incidents": self.result.incidents,
        }

    def wrap_up(self, final: View, written: list[Path]) -> None:
        self.adapter.memory.forget(self.game_id)
        self._log_stats()

    def _log_stats(self) -> None:
        if not self.adapter.agent_id:
            return
        try:
            stats = self.api.agent_stats(self.adapter.agent_id)
        except (ServerError, Stopped) as exc:
            self.note(f"the agent's stats could not be read: {exc}")
            return
        shown = ", ".join(f"{k} {v}" for k, v in stats.items() if isinstance(v, int | float | str)
                          and not isinstance(v, bool) and k not in ("id", "agent_id"))
        if shown:
            log.info("agent %s stats: %s", self.adapter.agent_name, short(shown, 300))
            self.note(f"agent stats: {short(shown, 500)}")

    def stopped(self) -> None:
        self.note("the daemon is stopping: the game stays on the server; a restarted bridge resumes it "
                  "if its turn has not expired")
        log.info("game %s: left unfinished at a turn boundary (the daemon is stopping); the game stays on "
                 "the server and a restarted bridge resumes it (kept in %s)", self.game_id, self.adapter.memory.path)

    def abandoned(self, exc: BaseException) -> None:
        if isinstance(exc, ApiError) and 400 <= exc.status < 500:  # not ours to play: not resumed either
            self.adapter.memory.forget(self.game_id)

    def close(self) -> None:
        self.api.close()


class BattleshipSide:
    """The game player's side of the loop (``GamePlayer``): the :class:`BattleshipPlayer`, created when the game
    starts, with the observations it reports kept in the game's turn log. The player restarts a failed engine
    and replays the game itself (``engine.max_restarts``), and always has a fallback shot: it never raises
    EngineError to the loop."""

    def __init__(self, runner: GameRunner) -> None:
        self.runner = runner

    @property
    def player(self) -> BattleshipPlayer:
        assert self.runner.player is not None
        return self.runner.player

    def start(self, snap: View) -> None:
        self.runner.player = self.runner.adapter.player_factory(self.runner.ctx)
        self.player.start(snap.state)

    def observe(self, snap: View) -> None:
        view = snap.state
        for event in self.player.observe(view):
            theirs = event.startswith("opponent")
            self.runner.turn_log.append({"turn": view.turn - 1 if theirs else None,
                                         "player": 3 - view.player if theirs else view.player, "observed": event})

    def decide(self, snap: View, deadline: float, options: Any, refused: Sequence[EngineTurn]) -> Decision[EngineTurn]:
        exclude = {t.shot for t in refused if t.shot is not None}
        chosen = self.player.decide(snap.state, deadline, options, exclude, use_engine=len(refused) < 2)
        return Decision((chosen.turn,), chosen.source, chosen.why)

    def restart(self, why: str) -> None:
        self.player.close()  # the next decision starts a fresh engine and tells it the whole game

    def fallback(self, snap: View, why: str, refused: Sequence[EngineTurn]) -> Decision[EngineTurn] | None:
        exclude = {t.shot for t in refused if t.shot is not None}
        chosen = self.player.fallback(snap.state, why, exclude)
        return Decision((chosen.turn,), chosen.source, chosen.why)

    def played(self, snap: View, decision: Decision[EngineTurn], turn: EngineTurn, landed: Landed,
               after: View | None) -> None:
        if turn.shot is None:
            self.player.own_moved(turn)
        elif isinstance(landed.result, ShotResult):
            self.player.own_shot(turn.shot, landed.result)
        else:  # settled from the state, or the answer did not say which ship sank: read it from the state
            view = after.state if after is not None else self.runner._read_state()
            self.player.own_shot(turn.shot, None, view)

    def rejected(self, turn: EngineTurn, reason: str) -> None:
        self.player.rejected(turn, reason)

    def records(self, final: View) -> list[Record]:
        return []  # the adapter's record holds every turn

    def close(self) -> None:
        if self.runner.player is not None:
            self.runner.player.close()


def check_engine_protocol(config: Any) -> None:
    """ConfigError unless the configured engine speaks the Battleship line protocol."""
    engine = getattr(config, "engine", None)
    if engine is not None and engine.protocol != "line":
        raise ConfigError(f"engine.protocol is {engine.protocol!r}, but Open Games plays Battleship: set "
                          f"engine.protocol: line and engine.command to a Battleship line-protocol engine, "
                          f"e.g. [python3, scripts/battleship_engine.py] (docs/battleship-protocol.md)")


class _NotStarted(Exception):
    pass


def _safe(game_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", game_id)[:100] or "game"


# --- gamebridge register opengames -----------------------------------------------------------------
def default_key_file(name: str) -> Path:
    return Path("~/.config/bridge").expanduser() / f"opengames-{_safe(name)}.key"


REGISTER_TRIES = 5  # registrations sent at most (each after learning that the last created no agent)
REGISTER_PAUSE = 2.0  # seconds before the first retry of a registration (doubling)


def register_agent(name: str, *, url: str | None = None, key_file: Path | None = None,
                   description: str = "", out: TextIO | None = None) -> Path:
    """Register agent ``name`` and store its API key in ``key_file`` (created with mode 600, never
    overwritten); returns the path. Prints where the key is and how to use it, never the key.

    A registration that meets a server error or loses its answer may or may not have created the agent: the
    platform is asked (``GET /agents/profile?name=``). No agent: it is sent again (``REGISTER_TRIES`` times at
    most). An agent that did not exist before: it was created but its key was lost with the answer, and the
    platform shows a key only once and has no call to show or replace one (the seed), so the error says so and
    what to do. A name taken before we tried is refused before anything is sent."""
    if not name.strip():
        raise UsageError("register: the agent's name is empty; give --name NAME")
    path = (key_file or default_key_file(name)).expanduser()
    if path.exists():
        raise UsageError(f"register: {path} already exists; an API key is shown only once, so the bridge "
                          f"never overwrites one: move it away or give --key-file another path")
    root = (url or DEFAULT_URL).rstrip("/")
    api_url = root if root.endswith(API_PREFIX) else root + API_PREFIX
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"register: cannot create {path.parent}: {exc.strerror or exc}") from None
    api = OpenGamesApi(api_url, None, timeout=30.0, retry=RetryPolicy(0.5, 5.0, give_up=30.0))
    try:
        agent = _register(api, root, name, description)
    finally:
        api.close()
    key = str(agent["api_key"])
    register_secret(key)
    shape = key_shape_problem(key)
    if shape is not None:
        log.warning("register: the API key the platform returned for agent %r is not in the usual form (%s); it "
                    "is stored in %s anyway; if the platform refuses it, register another agent", name, shape, path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(f"register: agent {name!r} was registered but its key could not be written to "
                          f"{path} ({exc.strerror or exc}); the platform will not show it again: register "
                          f"another agent (gamebridge register opengames --name OTHER)") from None
    if out is not None:
        agent_id = agent.get("id")
        shown = f"{agent.get('name', name)}" + (f" ({agent_id})" if agent_id else "")
        out.write(f"registered agent {shown} at {root}\n"
                  f"its API key is stored in {path} (mode 600); it is not shown again\n"
                  f"use it in the configuration as:  api_key: {{file: {path}}}\n")
    return path


def _profile(api: OpenGamesApi, root: str, name: str) -> dict[str, Any] | None:
    """The agent called ``name``, None if none; ServerError if the platform cannot say."""
    try:
        return api.agent_profile(name, give_up=30.0)
    except (ApiError, ProtocolError) as exc:
        raise ServerError(f"register: Open Games at {root} cannot say whether agent {name!r} exists ({exc}); "
                          f"try again later") from None


def _register(api: OpenGamesApi, root: str, name: str, description: str) -> dict[str, Any]:
    """``POST /agents/register``, sent again while the platform shows that no agent was created."""
    if _profile(api, root, name) is not None:
        raise UsageError(f"register: the name {name!r} is taken on {root}; choose another with --name")
    pause = REGISTER_PAUSE
    for attempt in range(1, REGISTER_TRIES + 1):
        try:
            return api.register(name, description)
        except ApiError as exc:
            if isinstance(exc, LostAnswer) or exc.status == 0 or exc.status >= 500 or exc.maybe_done:
                failure = exc.detail or str(exc)
            elif exc.status == 409 and attempt > 1:  # taken now: by our own earlier try, whose answer was lost
                failure = exc.detail or str(exc)
            else:
                raise ServerError(f"register: Open Games at {root} refused to register agent {name!r}: "
                                  f"{exc}") from None
        except ProtocolError as exc:
            failure = str(exc)
        agent = _profile(api, root, name)
        if agent is not None:
            ident = agent.get("id") or agent.get("agent_id")
            created = f", created {agent['created_at']}" if agent.get("created_at") else ""
            raise ServerError(
                f"register: agent {name!r} was created on {root} (id {ident}{created}), but the answer carrying "
                f"its API key was lost ({short(failure, 120)}); the platform shows an API key only once and "
                f"has no call to show or replace it, so this agent cannot be used: register a new one with "
                f"`gamebridge register opengames --name {name}-2` (or another name), and ask the platform's "
                f"operators to delete {name!r} if you want the name back")
        if attempt == REGISTER_TRIES:
            raise ServerError(f"register: Open Games at {root} failed to register agent {name!r} {attempt} "
                              f"times ({short(failure, 120)}); no agent was created: try again later")
        log.warning("register: %s; no agent %r was created, trying again in %.0f s", short(failure, 160),
                    name, pause)
        time.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable")
