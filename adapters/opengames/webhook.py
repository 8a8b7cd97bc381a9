"""The receiver of Open Games' webhooks, inside the daemon (stdlib ``http.server``, one thread per request).

The platform POSTs a JSON body for three events (the seed): ``match_found`` (``game_id``, ``opponent_name``),
``your_turn`` (``game_id``, ``turn``) and ``game_over`` (``game_id``, ``winner_name``, ``you_won``...), each
with the ``token`` registered at ``POST /webhooks/register``. The receiver:

- answers ``401`` to a body whose ``token`` is not ours (compared in constant time, ``hmac.compare_digest``),
  ``413`` to a body larger than ``max_body`` (``411`` without a ``Content-Length``), ``400`` to a body that is
  not a JSON object, ``405`` to anything but POST; each refusal is one WARNING line (never with the token);
- drops a ``your_turn`` whose turn number is not above the last turn seen or played in that game (a late or
  repeated webhook for a turn already played, e.g. through a fallback poll);
- queues the rest for the game loops (:meth:`WebhookReceiver.wait_for`).
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bridge.redact import register_secret

log = logging.getLogger("bridge.opengames.webhook")

EVENTS = frozenset({"match_found", "your_turn", "game_over"})
MAX_QUEUED = 1000
DRAIN_FACTOR = 16  # an oversized body up to this many times max_body is read and discarded before the 413


@dataclass(frozen=True)
class WebhookEvent:
    event: str
    game_id: str | None
    turn: int | None
    data: dict[str, Any] = field(repr=False)  # the body without its token
    received: float = 0.0


class WebhookReceiver:
    """``WebhookReceiver(host, port, token).start()``; ``url`` is where it listens; ``stop()`` ends it."""

    def __init__(self, host: str, port: int, token: str, *, max_body: int = 65536,
                 public_url: str | None = None) -> None:
        if not token:
            raise ValueError("the webhook token is empty")
        register_secret(token)
        self.host = host
        self.max_body = max_body
        self._token = token.encode("utf-8")
        self._public_url = public_url
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._queue: deque[WebhookEvent] = deque(maxlen=MAX_QUEUED)
        self._last_turn: dict[str, int] = {}
        self.stats: Counter[str] = Counter()

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        """Bind and serve in a thread. Raises OSError when the address cannot be bound."""
        handler = _make_handler(self)
        server = _Server((self.host, self._requested_port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="opengames-webhook", daemon=True)
        self._thread.start()
        log.info("webhook receiver listening on %s", self.listen_url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._cond:
            self._cond.notify_all()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def listen_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    @property
    def url(self) -> str:
        """The URL to register with the platform."""
        return self._public_url or self.listen_url

    # --- the game loops' side ------------------------------------------------------------------------------
    def played(self, game_id: str, turn: int) -> None:
        """A turn of ``game_id`` was played: a later ``your_turn`` for it (or an earlier turn) is dropped."""
        with self._cond:
            if turn > self._last_turn.get(game_id, -1):
                self._last_turn[game_id] = turn
            stale = [e for e in self._queue if e.event == "your_turn" and e.game_id == game_id
                     and e.turn is not None and e.turn <= turn]
            for e in stale:
                self._queue.remove(e)
                self.stats["late_your_turn"] += 1

    def wait_for(self, match: Callable[[WebhookEvent], bool], timeout: float,
                 stop: threading.Event | None = None) -> WebhookEvent | None:
        """Take the first queued event ``match`` accepts, waiting up to ``timeout`` seconds (None on timeout
        or when ``stop`` is set)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self._queue:
                    if match(e):
                        self._queue.remove(e)
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    return None
                self._cond.wait(min(left, 0.25))

    def discard(self, game_id: str) -> None:
        """Forget the queued events of a finished game."""
        with self._cond:
            for e in [e for e in self._queue if e.game_id == game_id]:
                self._queue.remove(e)

    # --- the HTTP side -------------------------------------------------------------------------------------
    def token_ok(self, token: Any) -> bool:
        if not isinstance(token, str):
            return False
        return hmac.compare_digest(token.encode("utf-8"), self._token)

    def accept(self, data: dict[str, Any]) -> str:
        """Queue a verified body; returns what became of it (for the answer and the stats)."""
        event = data.get("event")
        game = data.get("game_id")
        game_id = str(game) if game not in (None, "") else None
        turn = data.get("turn")
        turn = turn if isinstance(turn, int) and not isinstance(turn, bool) else None
        if event not in EVENTS:
            self.stats["ignored"] += 1
            log.info("webhook: ignored an event of unknown kind %r", event)
            return "ignored"
        body = {k: v for k, v in data.items() if k != "token"}
        with self._cond:
            if event == "your_turn" and game_id is not None and turn is not None:
                if turn <= self._last_turn.get(game_id, -1):
                    self.stats["late_your_turn"] += 1
                    log.info("webhook: your_turn for game %s turn %d is late or repeated (turn %d already "
                             "seen or played); dropped", game_id, turn, self._last_turn[game_id])
                    return "duplicate"
                self._last_turn[game_id] = turn
            self._queue.append(WebhookEvent(str(event), game_id, turn, body, time.monotonic()))
            self.stats[str(event)] += 1
            self._cond.notify_all()
        log.debug("webhook: %s for game %s (turn %s)", event, game_id, turn)
        return "queued"


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that stalls or drops mid-request: one DEBUG line, not a traceback on stderr."""
        exc = sys.exc_info()[1]
        log.debug("webhook receiver: a request from %s failed: %s: %s", client_address[0],
                  type(exc).__name__, exc)


def _make_handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bridge-webhook"
        sys_version = ""
        timeout = 10  # seconds: a client that stalls mid-request is dropped

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("webhook %s: " + format, self.client_address[0], *args)

        def _answer(self, status: int, payload: dict[str, Any], close: bool = False) -> None:
            body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: int, what: str, stat: str, close: bool = False) -> None:
            receiver.stats[stat] += 1
            log.warning("webhook receiver: refused a %s from %s: %s (HTTP %d)", self.command,
                        self.client_address[0], what, status)
            self._answer(status, {"detail": what}, close)

        def do_POST(self) -> None:
            length_text = self.headers.get("Content-Length")
            if length_text is None:
                self._refuse(411, "no Content-Length", "bad_request", close=True)
                return
            try:
                length = int(length_text)
                if length < 0:
                    raise ValueError
            except ValueError:
                self._refuse(400, f"Content-Length {length_text[:20]!r} is not a size", "bad_request", True)
                return
            if length > receiver.max_body:
                if length <= receiver.max_body * DRAIN_FACTOR:
                    self._drain(length)
                self._refuse(413, f"a body of {length} bytes, above the limit of {receiver.max_body} "
                                  f"(webhook.max_body)", "too_large", close=True)
                return
            raw = self.rfile.read(length)
            try:
                data = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                data = None
            if not isinstance(data, dict):
                self._refuse(400, "the body is not a JSON object", "bad_request")
                return
            if not receiver.token_ok(data.get("token")):
                self._refuse(401, "a wrong or missing webhook token", "unauthorized")
                return
            outcome = receiver.accept(data)
            self._answer(200, {"ok": True, "outcome": outcome})

        def _drain(self, length: int) -> None:
            left = length
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)

        def _not_allowed(self) -> None:
            self._refuse(405, f"method {self.command} (the receiver takes POST only)", "bad_request", True)

        do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed

    return Handler
