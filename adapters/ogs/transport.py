"""The framing of OGS's realtime API, and nothing of its vocabulary.

Two implementations of one interface:

- :class:`WebSocketTransport` — what OGS speaks today (goban's ``GobanSocket``): a plain WebSocket at the
  server root; client frames ``[command, data]`` or ``[command, data, request_id]``; server frames
  ``[request_id, data, error]`` (a reply) or ``[event, data]`` (an event). A reader thread receives.
- :class:`SocketIOTransport` — the legacy socket.io transport at ``/socket.io/`` (the seeds, gtp2ogs <= 7),
  through python-socketio's synchronous client over WebSocket only; requests use socket.io acks.

Events are delivered in the server's order, on the transport's reader thread, to ``on_event(name, data)``;
a lost connection is reported once to ``on_disconnect(reason)``. Neither callback may block.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import ssl
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bridge.adapters.ogs.wsframes import BINARY, CLOSE, PING, PONG, TEXT, FrameError, FrameReader, client_frame
from bridge.errors import ServerError
from bridge.redact import redact
from bridge.slot import yield_to_woken

log = logging.getLogger(__name__)

EventCallback = Callable[[str, Any], None]
DisconnectCallback = Callable[[str], None]


class TransportError(ServerError):
    """The connection could not be made or was lost."""


class TransportClosed(TransportError):
    """The connection closed while (or before) a request was waiting for its answer."""


class RequestTimeout(TransportError):
    """The server did not answer a request in time."""


class RequestRefused(ServerError):
    """The server answered a request with an error."""

    def __init__(self, command: str, error: Any) -> None:
        self.command = command
        self.error = error
        super().__init__(redact(f"server refused {command!r}: {_short(error)}"))


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _ignore_event(name: str, data: Any) -> None:
    return None


def _ignore_disconnect(reason: str) -> None:
    return None


class Transport(ABC):
    """One realtime connection. ``connect`` once; after a disconnect make a new transport."""

    name = "transport"

    def __init__(self) -> None:
        self.on_event: EventCallback = _ignore_event
        self.on_disconnect: DisconnectCallback = _ignore_disconnect
        self._disconnect_reported = False
        self._report_lock = threading.Lock()

    @abstractmethod
    def connect(self, url: str, timeout: float) -> None:
        """Open the connection to the server root ``url`` (http/https/ws/wss). Raises TransportError."""

    @abstractmethod
    def send(self, command: str, data: Any) -> None:
        """Send a command without waiting. Raises TransportClosed when not connected."""

    @abstractmethod
    def request(self, command: str, data: Any, timeout: float) -> Any:
        """Send a command and wait for its answer. Raises RequestTimeout, TransportClosed, RequestRefused."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent, never raises). Does not call ``on_disconnect``."""

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    def _report_disconnect(self, reason: str) -> None:
        with self._report_lock:
            if self._disconnect_reported:
                return
            self._disconnect_reported = True
        try:
            self.on_disconnect(reason)
        except Exception:  # a callback bug must not kill the reader thread silently
            log.exception("handling the loss of the OGS connection (%s) failed (a bug: please report it with this "
                          "traceback); the adapter notices the drop when the server's pongs stop, then reconnects",
                          redact(reason))

    def _deliver(self, name: str, data: Any) -> None:
        try:
            self.on_event(name, data)
        except Exception:
            log.exception("the server's %r event was dropped after an unexpected error (a bug: please report it "
                          "with this traceback); the connection stays up", name)


def websocket_url(url: str) -> str:
    """``https://online-go.com`` -> ``wss://online-go.com/`` (the server root; a path given is kept)."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise TransportError(f"server url {url!r} is not an http(s):// or ws(s):// address; fix server.url")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def http_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    return urlunsplit((scheme, parts.netloc, "", "", "")).rstrip("/")


class _Waiter:
    __slots__ = ("data", "done", "error", "failure")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.data: Any = None
        self.error: Any = None
        self.failure: str | None = None


class WebSocketTransport(Transport):
    """OGS's current transport: JSON arrays over a plain WebSocket at the root (the handshake websocket-client's,
    the frames both ways :mod:`.wsframes`'s)."""

    name = "websocket"
    # Seconds one frame may take to go out (the socket's send timeout, and the wait for the send lock). A server
    # that stops reading fills the socket's buffers and then blocks the send; every sender shares the lock, so the
    # adapter's pings would block too and the missing pongs would never be noticed. As long as three missed pongs.
    SEND_TIMEOUT = 30.0

    def __init__(self) -> None:
        super().__init__()
        self._ws: Any = None
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiters: dict[int, tuple[str, _Waiter]] = {}
        self._waiters_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._frames: FrameReader | None = None
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self._open = False

    def connect(self, url: str, timeout: float) -> None:
        import websocket

        target = websocket_url(url)
        try:
            ws = websocket.create_connection(target, timeout=timeout, enable_multithread=True,
                                             skip_utf8_validation=True)
        except Exception as exc:  # DNS, refused, TLS, bad handshake...
            raise TransportError(redact(f"cannot open a WebSocket to {target}: {exc}")) from None
        ws.settimeout(None)
        sock = ws.sock
        if sock is None:  # websocket-client returned without a socket: not connected after all
            raise TransportError(f"cannot open a WebSocket to {target}: no connection after the handshake")
        try:  # a send blocked longer than this fails (EAGAIN) instead of holding every sender
            seconds = self.SEND_TIMEOUT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                            struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000)))
        except (OSError, AttributeError, struct.error) as exc:  # not Linux: the lock's timeout still bounds it
            log.debug("no send timeout on the WebSocket's socket (%s)", exc)
        self._ws = ws
        self._sock = sock
        self._frames = FrameReader(sock.recv)
        self._open = True
        self._reader = threading.Thread(target=self._read_loop, name="ogs-ws-reader", daemon=True)
        self._reader.start()

    @property
    def connected(self) -> bool:
        return self._open and not self._closing.is_set()

    def _write(self, frame: list[Any]) -> None:
        if not self.connected:
            raise TransportClosed("not connected")
        data = client_frame(TEXT, json.dumps(frame, separators=(",", ":")).encode("utf-8"))
        try:
            self._send_frame(data)
        except Exception as exc:
            self._lost(f"send failed: {self._send_failure(exc)}")
            raise TransportClosed(f"connection lost while sending {frame[0]!r}") from None

    def _send_frame(self, data: bytes) -> None:
        """One whole frame on the socket, under the send lock; neither the lock nor the send waits longer than
        SEND_TIMEOUT (TimeoutError, or the socket's BlockingIOError)."""
        if not self._send_lock.acquire(timeout=self.SEND_TIMEOUT):
            raise TimeoutError("another send has been blocked for longer")
        try:
            self._sock.sendall(data)  # type: ignore[union-attr]  # connected: set with _open
        finally:
            self._send_lock.release()

    def _send_failure(self, exc: Exception) -> str:
        if isinstance(exc, BlockingIOError | TimeoutError | ssl.SSLWantWriteError):
            return (f"the server has taken none of our frames for {self.SEND_TIMEOUT:g} s (its end of the "
                    f"connection is stuck)")
        return str(exc) or type(exc).__name__

    def send(self, command: str, data: Any) -> None:
        self._write([command, data])

    def request(self, command: str, data: Any, timeout: float) -> Any:
        request_id = next(self._ids)
        waiter = _Waiter()
        with self._waiters_lock:
            self._waiters[request_id] = (command, waiter)
        try:
            self._write([command, data, request_id])
            if not waiter.done.wait(timeout):
                raise RequestTimeout(f"no answer to {command!r} within {timeout:g} s")
        finally:
            with self._waiters_lock:
                self._waiters.pop(request_id, None)
        if waiter.failure is not None:
            raise TransportClosed(f"connection lost while waiting for {command!r}: {waiter.failure}")
        if waiter.error is not None:
            raise RequestRefused(command, waiter.error)
        return waiter.data

    def _read_loop(self) -> None:
        """The server's frames, in order (:mod:`.wsframes`, a socket read of whatever has arrived at a time);
        websocket-client only opened the connection."""
        reason = "connection closed by the server"
        frames = self._frames
        assert frames is not None
        try:
            while not self._closing.is_set():
                try:
                    opcode, payload = frames.next()
                except FrameError as exc:
                    reason = f"connection lost: the server broke the WebSocket framing: {exc}"
                    break
                except Exception as exc:  # the socket: reset, shut down by close(), TLS error, end of stream
                    if not self._closing.is_set():
                        reason = f"connection lost: {type(exc).__name__}: {exc}" if str(exc) else \
                            f"connection lost: {type(exc).__name__}"
                    break
                if opcode == TEXT:
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        log.warning("OGS sent a text frame of %d bytes that is not UTF-8 (%s), ignored",
                                    len(payload), exc.reason)
                        continue
                    self._dispatch(text)
                    yield_to_woken()  # a game woken by this frame asks its engine before the next frame is handled
                elif opcode == PING:
                    self._pong(payload)
                elif opcode == CLOSE:
                    self._answer_close(payload)
                    break
                elif opcode == BINARY:  # OGS speaks JSON text frames; never print raw bytes into the log
                    log.warning("OGS sent a binary frame of %d bytes, ignored (the protocol is JSON text frames)",
                                len(payload))
                # PONG: an answer to a ping we never send; nothing to do
        finally:
            self._lost(reason)

    def _pong(self, payload: bytes) -> None:
        try:
            self._send_frame(client_frame(PONG, payload))
        except Exception as exc:  # the connection is going: the next read (or the adapter's pings) says so
            log.debug("answering the server's ping failed: %s", self._send_failure(exc))

    def _answer_close(self, payload: bytes) -> None:
        """The server's close frame: logged at debug with its code, answered with ours (section 5.5.1)."""
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        log.debug("the server closed the WebSocket (code %s, %r)", code, payload[2:].decode("utf-8", "replace")[:200])
        self._send_close()

    def _send_close(self) -> None:
        """Our close frame, if the send lock comes within a second (a blocked send must not hold up a close)."""
        if not self._send_lock.acquire(timeout=1.0):
            return
        try:
            self._ws.send_close()
        except Exception:
            pass
        finally:
            self._send_lock.release()

    def _dispatch(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            log.warning("OGS sent a frame that is not JSON, ignored: %s", _short(text, 200))
            return
        if not isinstance(frame, list) or not frame:
            log.warning("OGS sent a frame that is not a [name, data] array, ignored: %s", _short(text, 200))
            return
        head = frame[0]
        if isinstance(head, int) and not isinstance(head, bool):
            with self._waiters_lock:
                entry = self._waiters.get(head)
            if entry is None:
                log.debug("answer to unknown or expired request %s ignored", head)
                return
            waiter = entry[1]
            waiter.data = frame[1] if len(frame) > 1 else None
            waiter.error = frame[2] if len(frame) > 2 else None
            waiter.done.set()
        elif isinstance(head, str):
            self._deliver(head, frame[1] if len(frame) > 1 else None)
        else:
            log.warning("OGS sent a frame whose head is neither an event name nor a request id, ignored: %s",
                        _short(text, 200))

    def _lost(self, reason: str) -> None:
        was_open = self._open
        self._open = False
        with self._waiters_lock:
            for _, waiter in self._waiters.values():
                waiter.failure = reason
                waiter.done.set()
        self._shutdown_socket()
        if was_open and not self._closing.is_set():
            self._report_disconnect(reason)

    def _shutdown_socket(self) -> None:
        ws = self._ws
        if ws is None:
            return
        sock = getattr(ws, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            ws.shutdown()
        except Exception:
            pass

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        ws = self._ws
        if ws is not None and self._open:
            self._send_close()
        self._open = False
        self._lost("closed by us")
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)


class SocketIOTransport(Transport):
    """The legacy transport: socket.io (python-socketio's sync client) over WebSocket at ``/socket.io/``."""

    name = "socketio"

    def __init__(self) -> None:
        super().__init__()
        self._client: Any = None
        self._send_lock = threading.Lock()
        self._closing = threading.Event()
        self._waiters: set[_Waiter] = set()
        self._waiters_lock = threading.Lock()

    def connect(self, url: str, timeout: float) -> None:
        import socketio

        client = _ordered_socketio_client()
        client.on("*", self._on_any)
        client.on("disconnect", self._on_sio_disconnect)
        target = http_url(url)
        try:
            client.connect(target, transports=["websocket"], socketio_path="socket.io", wait_timeout=timeout)
        except socketio.exceptions.ConnectionError as exc:
            _quiet_disconnect(client)
            raise TransportError(redact(f"cannot open socket.io at {target}/socket.io/: {exc}")) from None
        except Exception as exc:
            _quiet_disconnect(client)
            raise TransportError(redact(f"cannot open socket.io at {target}/socket.io/: {exc}")) from None
        self._client = client

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.connected) and not self._closing.is_set()

    def _on_any(self, event: str, *args: Any) -> None:
        self._deliver(event, args[0] if args else None)

    def _on_sio_disconnect(self, *args: Any) -> None:
        reason = f"connection lost ({args[0]})" if args else "connection lost"
        with self._waiters_lock:
            for waiter in self._waiters:
                waiter.failure = reason
                waiter.done.set()
        if not self._closing.is_set():
            self._report_disconnect(reason)

    def send(self, command: str, data: Any) -> None:
        if not self.connected:
            raise TransportClosed("not connected")
        try:
            with self._send_lock:
                self._client.emit(command, data)
        except Exception as exc:
            raise TransportClosed(f"connection lost while sending {command!r}: {exc}") from None

    def request(self, command: str, data: Any, timeout: float) -> Any:
        if not self.connected:
            raise TransportClosed("not connected")
        waiter = _Waiter()

        def on_ack(*args: Any) -> None:
            waiter.data = args[0] if args else None
            waiter.error = args[1] if len(args) > 1 else None
            waiter.done.set()

        with self._waiters_lock:
            self._waiters.add(waiter)
        try:
            try:
                with self._send_lock:
                    self._client.emit(command, data, callback=on_ack)
            except Exception as exc:
                raise TransportClosed(f"connection lost while sending {command!r}: {exc}") from None
            if not waiter.done.wait(timeout):
                raise RequestTimeout(f"no answer to {command!r} within {timeout:g} s")
        finally:
            with self._waiters_lock:
                self._waiters.discard(waiter)
        if waiter.failure is not None:
            raise TransportClosed(f"connection lost while waiting for {command!r}: {waiter.failure}")
        if waiter.error is not None:
            raise RequestRefused(command, waiter.error)
        return waiter.data

    def close(self) -> None:
        """Disconnect, and wait (5 s at most) for the engine.io reader and writer threads to end: a closed
        transport leaves nothing running (an old connection's threads used to log into later ones)."""
        if self._closing.is_set():
            return
        self._closing.set()
        client = self._client
        if client is not None:
            _quiet_disconnect(client)
            deadline = time.monotonic() + 5.0
            for name in ("read_loop_task", "write_loop_task"):
                task = getattr(client.eio, name, None)
                if isinstance(task, threading.Thread) and task is not threading.current_thread():
                    task.join(max(0.0, deadline - time.monotonic()))


def _quiet_disconnect(client: Any) -> None:
    try:
        client.disconnect()
    except Exception:
        pass
    try:
        client.eio.disconnect(abort=True)
    except Exception:
        pass


def _ordered_socketio_client() -> Any:
    """A ``socketio.Client`` that runs event handlers on its reader thread, in the server's order.

    python-engineio starts one thread per incoming message by default, which can deliver a ``move`` after
    a later ``gamedata``; our handlers only enqueue (they never block), so running them inline is safe.
    Built on two small documented-by-source hooks (``_engineio_client_class``, ``_trigger_event``)."""
    import engineio
    import socketio

    class OrderedEngineIOClient(engineio.Client):
        def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
            kwargs["run_async"] = False
            return super()._trigger_event(event, *args, **kwargs)

        def disconnect(self, abort: bool = False, reason: Any = None) -> None:
            # A socket.io goodbye from the server is handled on the reader thread (handlers run inline, above),
            # and python-socketio then disconnects engine.io, which would join the reader thread from itself
            # ("cannot join current thread", logged with a traceback). The reader ends by itself: don't wait.
            if getattr(self, "read_loop_task", None) is threading.current_thread():
                abort = True
            super().disconnect(abort=abort, reason=reason)
            # disconnect(abort=True) empties the send queue, the writer's wake-up (None) with it when the writer
            # has not taken it yet (a busy machine): the writer then sleeps out its ping timeout (~50 s, then
            # logs "packet queue is empty, aborting") and the reader waits for it. Wake it again; a stray None
            # in the queue of a client that is never reused is harmless.
            if getattr(self, "queue", None) is not None:
                self.queue.put(None)

    class OrderedSocketIOClient(socketio.Client):
        def _engineio_client_class(self) -> Any:
            return OrderedEngineIOClient

    return OrderedSocketIOClient(reconnection=False, logger=False, engineio_logger=False,
                                 handle_sigint=False)


TRANSPORTS: dict[str, type[Transport]] = {"websocket": WebSocketTransport, "socketio": SocketIOTransport}


def make_transport(kind: str) -> Transport:
    try:
        return TRANSPORTS[kind]()
    except KeyError:
        raise TransportError(f"unknown transport {kind!r}; one of {sorted(TRANSPORTS)}") from None
