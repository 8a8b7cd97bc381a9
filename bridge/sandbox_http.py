"""What the threaded stdlib sandbox servers share (``adapters/reconchess/sandbox/server.py``,
``adapters/opengames/sandbox/server.py``): the HTTP server that can cut its open connections at stop, the base of
their request handlers (HTTP/1.1 keep-alive, no Nagle, bodies read by Content-Length, answers written with a
length), their fault rules for tests (fail for some seconds, drop the next matching requests' connections), and
their foreground run until Ctrl-C or SIGTERM.

Server-neutral: no route, field or status text is named here.
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class TrackingHTTPServer(ThreadingHTTPServer):
    """A thread per connection; :meth:`close_connections` shuts down every open one (idle keep-alive
    connections included), so that ``server_close()`` can join their threads at once."""

    daemon_threads = False  # joined at server_close(), after their connections were shut down
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve_in_thread(self, name: str) -> threading.Thread:
        """Start ``serve_forever`` on a daemon thread called ``name``; :meth:`stop` ends it."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop serving, cut every open connection and join the connection threads."""
        self.shutdown()
        self.close_connections()
        self.server_close()


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive (an idle connection is closed after ``timeout`` seconds), TCP_NODELAY, requests
    logged at debug level to ``logger``. Subclasses implement :meth:`_handle` (called with the method for
    GET and POST; they add the other ``do_*`` they need)."""

    protocol_version = "HTTP/1.1"
    timeout = 120
    logger: logging.Logger = logging.getLogger("bridge.sandbox")

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle + delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        self.logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        raise NotImplementedError

    def _content_length(self) -> int:
        """The request's Content-Length (0 if absent), -1 if it is not a number."""
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return -1

    def _reply(
        self, status: int, data: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@dataclass
class Drop:
    match: str
    count: int
    after: bool


@dataclass
class FailNext:
    """The next ``count`` requests matching ``match`` answer ``status``, before or ``after`` carrying them out."""

    match: str
    count: int
    status: int
    after: bool


@dataclass
class Stall:
    """The next ``count`` requests matching ``match`` are answered ``seconds`` late (a slow server)."""

    match: str
    count: int
    seconds: float


class Faults:
    """Fault rules for tests, for requests whose path starts with ``prefix``: :meth:`fail` (answer an error
    status for some seconds), :meth:`drop` (close the connection of the next ``count`` matching requests,
    before or ``after`` carrying them out), :meth:`fail_next` (the next ``count`` matching requests answer an
    error status, before or after carrying them out) and :meth:`stall` (answer the next ``count`` late). A rule
    matches when ``match`` is in ``"METHOD /path"``."""

    def __init__(self, prefix: str, log: logging.Logger) -> None:
        self.prefix = prefix
        self.log = log
        self._lock = threading.Lock()
        self._fail_until = 0.0
        self._fail_status = 500
        self._fail_match = ""
        self._fail_retry_after = 1
        self._drops: list[Drop] = []
        self._fail_next: list[FailNext] = []
        self._stalls: list[Stall] = []

    def fail(self, seconds: float, status: int = 500, match: str = "", retry_after: int = 1) -> None:
        with self._lock:
            self._fail_until = time.monotonic() + seconds
            self._fail_status = status
            self._fail_match = match
            self._fail_retry_after = retry_after

    def drop(self, match: str = "", count: int = 1, after: bool = True) -> None:
        with self._lock:
            self._drops.append(Drop(match, count, after))

    def take_drop(self, method: str, path: str) -> Drop | None:
        """The drop rule this request uses up, if any."""
        if not path.startswith(self.prefix):
            return None
        with self._lock:
            for drop in self._drops:
                if drop.count > 0 and drop.match in f"{method} {path}":
                    drop.count -= 1
                    self._drops = [d for d in self._drops if d.count > 0]
                    self.log.info(
                        "sandbox: dropping the connection of %s %s (%s carrying it out)",
                        method,
                        path,
                        "after" if drop.after else "without",
                    )
                    return drop
        return None

    def failing(self, method: str, path: str) -> tuple[int, int] | None:
        """``(status, retry_after)`` if this request is to fail now, else None."""
        if not path.startswith(self.prefix):
            return None
        with self._lock:
            if time.monotonic() >= self._fail_until or self._fail_match not in f"{method} {path}":
                return None
            return self._fail_status, self._fail_retry_after


    def fail_next(self, match: str = "", count: int = 1, status: int = 500, after: bool = False) -> None:
        """The next ``count`` matching requests answer ``status``; ``after``: once carried out (a server that
        did the work, then failed to say so)."""
        with self._lock:
            self._fail_next.append(FailNext(match, count, status, after))

    def stall(self, seconds: float, match: str = "", count: int = 1) -> None:
        """The next ``count`` matching requests are answered ``seconds`` late."""
        with self._lock:
            self._stalls.append(Stall(match, count, seconds))

    def take_fail_next(self, method: str, path: str) -> FailNext | None:
        """The counted failure this request uses up, if any."""
        return self._take(self._fail_next, method, path)

    def take_stall(self, method: str, path: str) -> Stall | None:
        """The stall this request uses up, if any."""
        return self._take(self._stalls, method, path)

    def _take(self, rules: list[Any], method: str, path: str) -> Any:
        if not path.startswith(self.prefix):
            return None
        with self._lock:
            for rule in rules:
                if rule.count > 0 and rule.match in f"{method} {path}":
                    rule.count -= 1
                    rules[:] = [r for r in rules if r.count > 0]
                    self.log.info("sandbox: %s on %s %s", rule, method, path)
                    return rule
        return None


# --- the fault-control requests' bodies (``POST /sandbox/fail`` and the like), checked the same way by every sandbox:
# each parser takes the request's JSON body and returns the rule, or raises ValueError("expected {...}") that the
# sandbox answers with its own error status
@dataclass
class FailFor:
    """Answer an error ``status`` to every request matching ``match`` for ``seconds``."""

    seconds: float
    status: int
    match: str
    retry_after: int


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _seconds(value: Any, most: float = math.inf) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= most


def _status(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599


def _body(body: Any, example: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object: {example}")
    return body


def fail_for_rule(body: Any) -> FailFor:
    example = '{"seconds": 5, "status": 500, "match": "", "retry_after": 1}'
    b = _body(body, example)
    rule = FailFor(b.get("seconds", -1.0), b.get("status", 500), b.get("match", ""), b.get("retry_after", 1))
    retry = rule.retry_after
    if not (_seconds(rule.seconds) and _status(rule.status) and isinstance(rule.match, str)
            and isinstance(retry, int) and not isinstance(retry, bool) and retry >= 0):
        raise ValueError(f"expected {example} (seconds >= 0, status 400-599)")
    rule.seconds = float(rule.seconds)
    return rule


def drop_rule(body: Any, match_example: str) -> Drop:
    example = f'{{"match": "{match_example}", "count": 1, "after": true}}'
    b = _body(body, example)
    rule = Drop(b.get("match", ""), b.get("count", 1), b.get("after", True))
    if not (isinstance(rule.match, str) and _count(rule.count) and isinstance(rule.after, bool)):
        raise ValueError(f"expected {example} (count >= 1)")
    return rule


def fail_next_rule(body: Any, match_example: str) -> FailNext:
    example = f'{{"match": "{match_example}", "count": 1, "status": 500, "after": false}}'
    b = _body(body, example)
    rule = FailNext(b.get("match", ""), b.get("count", 1), b.get("status", 500), b.get("after", False))
    if not (isinstance(rule.match, str) and _count(rule.count) and _status(rule.status)
            and isinstance(rule.after, bool)):
        raise ValueError(f"expected {example} (count >= 1, status 400-599)")
    return rule


def stall_rule(body: Any, match_example: str) -> Stall:
    example = f'{{"seconds": 5, "match": "{match_example}", "count": 1}}'
    b = _body(body, example)
    rule = Stall(b.get("match", ""), b.get("count", 1), b.get("seconds", -1.0))
    if not (_seconds(rule.seconds, 600) and isinstance(rule.match, str) and _count(rule.count)):
        raise ValueError(f"expected {example} (0 <= seconds <= 600, count >= 1)")
    rule.seconds = float(rule.seconds)
    return rule


def serve_in_foreground(name: str, announce: Callable[[], None], stop_server: Callable[[], None]) -> None:
    """Run a started sandbox in the foreground until Ctrl-C or SIGTERM (when called from the main thread):
    ``announce()`` prints what it serves, then ``stop_server()`` ends it ("stopping the ``name``")."""
    stop = threading.Event()
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        announce()
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print(f"stopping the {name}", flush=True)
        stop_server()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
