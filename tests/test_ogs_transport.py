"""The OGS realtime transports against real servers on loopback (socket.io, and aiohttp's plain WebSocket): a
server-side goodbye, binary frames, pings, every payload length, close frames and broken frames."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from aiohttp import web
from helpers import server_frame, wait_for

from bridge.adapters.ogs.transport import SocketIOTransport, WebSocketTransport


class LoopbackApp:
    """An aiohttp application on 127.0.0.1 (a free port), served by an event loop in a thread of its own."""

    def __init__(self, app: web.Application, name: str) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.port = 0

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self) -> None:
        async def _stop() -> None:
            await self.runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()  # its self-pipe (a socket pair) would outlive the test


class GoodbyeServer(LoopbackApp):
    """A socket.io server that says goodbye (a socket.io DISCONNECT packet) to every client on request."""

    def __init__(self) -> None:
        super().__init__(web.Application(), "goodbye-server")
        self.sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
        self.sids: list[str] = []
        self.sio.on("connect", self._connect)
        self.sio.attach(self.app, socketio_path="socket.io")

    async def _connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        self.sids.append(sid)

    def goodbye(self) -> None:
        async def _go() -> None:
            for sid in list(self.sids):
                await self.sio.disconnect(sid)

        asyncio.run_coroutine_threadsafe(_go(), self.loop).result(5)


@pytest.fixture
def goodbye_server() -> Iterator[GoodbyeServer]:
    server = GoodbyeServer()
    server.start()
    yield server
    server.stop()


def test_a_socketio_goodbye_from_the_server_is_reported_once_without_a_thread_traceback(
        goodbye_server: GoodbyeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    transport = SocketIOTransport()
    reasons: list[str] = []
    lost = threading.Event()

    def on_disconnect(reason: str) -> None:
        reasons.append(reason)
        lost.set()

    transport.on_disconnect = on_disconnect
    transport.connect(f"http://127.0.0.1:{goodbye_server.port}", 5.0)
    assert transport.connected
    reader_threads = {t for t in threading.enumerate() if t.name != "goodbye-server"}
    goodbye_server.goodbye()
    assert lost.wait(5.0), "the server's goodbye was never reported"
    # the engine.io threads of this connection end by themselves, and none ends with an exception
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        alive = [t for t in reader_threads if t.is_alive() and t is not threading.main_thread()]
        if not alive:
            break
        time.sleep(0.05)
    transport.close()
    # python-engineio logs a handler's exception with its traceback ("message handler error"): there must be none
    tracebacks = [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]
    assert tracebacks == [], [f"{r.name}: {r.getMessage()} {r.exc_info}" for r in tracebacks]
    assert len(reasons) == 1 and reasons[0].startswith("connection lost"), reasons
    assert not transport.connected


def test_a_binary_websocket_frame_is_one_warning_without_its_bytes(caplog: pytest.LogCaptureFixture) -> None:
    payload = b"\x00\xff\xfeRAW-BYTES-MUST-NOT-BE-LOGGED" * 4

    async def script(ws: web.WebSocketResponse, server: WsServer) -> None:
        await ws.send_bytes(payload)
        await ws.send_str('["hello", {"after": "binary"}]')
        async for _ in ws:
            pass

    caplog.set_level(logging.DEBUG, logger="bridge")
    with WsServer(script) as server:
        transport, events, _ = _connected(server)
        try:
            wait_for(lambda: events, 5.0)
        finally:
            transport.close()
    assert events == [("hello", {"after": "binary"})]  # the connection goes on after the binary frame
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bridge")]
    assert not any("RAW-BYTES" in m for m in ours), ours
    assert sum(f"binary frame of {len(payload)} bytes" in m for m in ours) == 1, ours


@pytest.mark.parametrize(("data", "message"), [
    ({}, "field 'id' is missing"),
    ({"id": None}, "field 'id' is missing"),
    ({"id": "notanumber"}, "field 'id' is not a number (got 'notanumber')"),
    ({"id": True}, "field 'id' is not a number (got True)"),
])
def test_an_unreadable_id_says_what_it_holds(data: dict[str, Any], message: str) -> None:
    from bridge.adapters.ogs.codec import required_id

    with pytest.raises(ValueError) as info:
        required_id(data, "id")
    assert str(info.value) == message
    assert required_id({"id": "42"}, "id") == 42


# --- the WebSocket transport (websocket-client) against a real aiohttp server: pings, lengths, closes --------------
class WsServer(LoopbackApp):
    """An aiohttp WebSocket server at ``/``; ``script(ws, server)`` runs per connection."""

    def __init__(self, script: Any, **options: Any) -> None:
        super().__init__(web.Application(), "ws-test-server")
        self.app.router.add_get("/", self._handler)
        self.script = script
        self.options = options
        self.received: list[Any] = []

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(**self.options)
        await ws.prepare(request)
        await self.script(ws, self)
        return ws

    def __enter__(self) -> WsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _connected(server: WsServer) -> tuple[WebSocketTransport, list[tuple[str, Any]], list[str]]:
    """A transport connected to ``server``, with the events it delivers and the disconnect reasons it reports."""
    transport = WebSocketTransport()
    events: list[tuple[str, Any]] = []
    reasons: list[str] = []
    transport.on_event = lambda name, data: events.append((name, data))
    transport.on_disconnect = reasons.append
    transport.connect(f"http://127.0.0.1:{server.port}", 5.0)
    return transport, events, reasons


def test_the_server_s_pings_are_answered_so_its_heartbeat_keeps_the_connection() -> None:
    """aiohttp's heartbeat pings every 0.1 s and closes a connection whose pong does not come in time."""

    async def script(ws: web.WebSocketResponse, server: WsServer) -> None:
        await asyncio.sleep(0.8)  # eight heartbeats
        await ws.send_str('["still", {"here": true}]')
        async for _ in ws:
            pass

    with WsServer(script, heartbeat=0.1) as server:
        transport, events, reasons = _connected(server)
        try:
            wait_for(lambda: events or reasons)
        finally:
            transport.close()
    assert events == [("still", {"here": True})] and reasons == []


def test_messages_of_every_length_encoding_both_ways_and_text_beyond_ascii() -> None:
    """7-bit, 16-bit and 64-bit payload lengths, to the server (masked: aiohttp refuses unmasked client frames)
    and back; a name with accents and a CJK character survives both ways (the frames are not UTF-8-validated
    by the client: skip_utf8_validation)."""

    async def script(ws: web.WebSocketResponse, server: WsServer) -> None:
        async for msg in ws:
            server.received.append(msg.data)
            await ws.send_str(msg.data)  # echoed as an event frame

    bodies = ["é", "x" * 125, "y" * 126, "z" * 65535, "w" * 65536, "Jérôme 囲碁 " * 20000]
    with WsServer(script) as server:
        transport, events, reasons = _connected(server)
        try:
            for body in bodies:
                transport.send("chat", {"body": body})
            wait_for(lambda: len(events) == len(bodies) or reasons)
        finally:
            transport.close()
    assert reasons == []
    assert [data["body"] for _, data in events] == bodies
    assert len(server.received) == len(bodies)


def test_a_close_from_the_server_is_reported_once() -> None:
    async def script(ws: web.WebSocketResponse, server: WsServer) -> None:
        await ws.send_str('["hello", 1]')
        await ws.close(code=4001, message=b"server going down")

    with WsServer(script) as server:
        transport, events, reasons = _connected(server)
        try:
            wait_for(lambda: reasons)
            assert not transport.connected
        finally:
            transport.close()
    assert events == [("hello", 1)]
    assert reasons == ["connection closed by the server"]  # once, whatever the code


def test_a_frame_that_breaks_the_framing_ends_the_connection_with_one_reason() -> None:
    """A frame with a reserved bit set (no extension was negotiated), written raw on the server's socket."""

    async def script(ws: web.WebSocketResponse, server: WsServer) -> None:
        await ws.send_str('["before", 1]')
        writer = ws._writer
        assert writer is not None
        writer.transport.write(bytes((0x80 | 0x40 | 0x1, 2)) + b"{}")
        async for _ in ws:
            pass

    with WsServer(script) as server:
        transport, events, reasons = _connected(server)
        try:
            wait_for(lambda: reasons)
        finally:
            transport.close()
    assert events == [("before", 1)]
    assert len(reasons) == 1 and reasons[0].startswith("connection lost:") and "rsv" in reasons[0].lower(), reasons


def test_frames_that_arrive_together_or_in_pieces_come_out_whole_and_in_order() -> None:
    """The socket is read a chunk at a time: 300 frames of every length encoding (and a ping among them) written
    in one go, then one frame whose header and payload come in three writes 50 ms apart, each come out once, in
    order, and the ping is still answered; far fewer socket reads than the 2-3 a frame of websocket-client alone
    (894 for these 302 frames)."""
    texts = [f'["n", {{"i": {i}, "pad": "{"x" * (i * 7 % 70000)}"}}]' for i in range(300)]

    async def script(ws: web.WebSocketResponse, server: WsServer) -> None:
        writer = ws._writer
        assert writer is not None
        burst = [server_frame(0x1, t.encode()) for t in texts[:150]] + [server_frame(0x9, b"are you there")] + \
            [server_frame(0x1, t.encode()) for t in texts[150:]]
        writer.transport.write(b"".join(burst))
        last = server_frame(0x1, b'["last", {"split": true}]')
        for piece in (last[:1], last[1:9], last[9:]):
            await asyncio.sleep(0.05)
            writer.transport.write(piece)
        async for msg in ws:  # the pong comes back as a message (autoping off)
            server.received.append((msg.type, msg.data))

    with WsServer(script, autoping=False) as server:
        transport, events, reasons = _connected(server)
        try:
            wait_for(lambda: len(events) == len(texts) + 1 or reasons)
            wait_for(lambda: server.received)
            assert transport._frames is not None
            reads = transport._frames.reads
        finally:
            transport.close()
    assert reasons == []
    assert [data["i"] for _, data in events[:-1]] == list(range(300))
    assert events[-1] == ("last", {"split": True})
    assert server.received[0] == (web.WSMsgType.PONG, b"are you there")
    assert 0 < reads < (len(texts) + 2) // 2, f"{reads} socket reads for {len(texts) + 2} frames"


def test_a_server_that_stops_taking_our_frames_ends_the_connection_instead_of_blocking_every_sender(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The server accepts the connection and then reads nothing: once the socket's buffers are full a send blocks.
    Every sender shares the send lock (the games' moves, the adapter's pings, the reader's pongs, close), so one
    blocked send would hold them all and the adapter would never get to notice the missing pongs. A send that
    cannot go out within the transport's send timeout (here 1 s) ends the connection with one reason instead,
    and the next send fails at once."""
    monkeypatch.setattr(WebSocketTransport, "SEND_TIMEOUT", 1.0)

    done = threading.Event()

    async def script(ws: web.WebSocketResponse, server: WsServer) -> None:
        while not done.is_set():  # reads nothing: aiohttp stops reading the socket once its own buffer is full
            await asyncio.sleep(0.1)

    with WsServer(script, max_msg_size=0) as server:
        transport, _, reasons = _connected(server)
        outcome: list[BaseException | None] = []

        def flood() -> None:
            try:
                for _ in range(400):  # 400 MB at most; loopback buffers are a few MB
                    transport.send("flood", {"pad": "x" * 1_000_000})
                outcome.append(None)
            except BaseException as exc:  # the test inspects it
                outcome.append(exc)

        sender = threading.Thread(target=flood, daemon=True)
        started = time.monotonic()
        sender.start()
        sender.join(30)
        try:
            assert not sender.is_alive(), "a send blocked for 30 s on a server that reads nothing"
            assert outcome and type(outcome[0]).__name__ == "TransportClosed", outcome
            assert time.monotonic() - started < 20
            wait_for(lambda: reasons)
            assert reasons == ["send failed: the server has taken none of our frames for 1 s (its end of the "
                               "connection is stuck)"], reasons
            with pytest.raises(Exception, match="not connected"):
                transport.send("after", {})
        finally:
            closing = threading.Thread(target=transport.close, daemon=True)
            closing.start()
            closing.join(10)
            done.set()
            assert not closing.is_alive(), "close() blocked"
