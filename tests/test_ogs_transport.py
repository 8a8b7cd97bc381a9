"""The OGS realtime transports against a real socket.io server on loopback: how a server-side goodbye is handled."""

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

from bridge.adapters.ogs.transport import SocketIOTransport


class GoodbyeServer:
    """A socket.io server that says goodbye (a socket.io DISCONNECT packet) to every client on request."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
        self.sids: list[str] = []
        self.sio.on("connect", self._connect)
        self.app = web.Application()
        self.sio.attach(self.app, socketio_path="socket.io")
        self.thread = threading.Thread(target=self.loop.run_forever, name="goodbye-server", daemon=True)
        self.port = 0

    async def _connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        self.sids.append(sid)

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> GoodbyeServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def goodbye(self) -> None:
        async def _go() -> None:
            for sid in list(self.sids):
                await self.sio.disconnect(sid)

        asyncio.run_coroutine_threadsafe(_go(), self.loop).result(5)

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


@pytest.fixture
def goodbye_server() -> Iterator[GoodbyeServer]:
    server = GoodbyeServer().start()
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
    from bridge.adapters.ogs.transport import WebSocketTransport

    payload = b"\x00\xff\xfeRAW-BYTES-MUST-NOT-BE-LOGGED" * 4
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="binary-ws-server", daemon=True)
    thread.start()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(payload)
        await ws.send_str('["hello", {"after": "binary"}]')
        async for _ in ws:
            pass
        return ws

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    caplog.set_level(logging.DEBUG, logger="bridge")
    events: list[tuple[str, Any]] = []
    got = threading.Event()
    transport = WebSocketTransport()

    def on_event(name: str, data: Any) -> None:
        events.append((name, data))
        got.set()

    transport.on_event = on_event
    try:
        transport.connect(f"http://127.0.0.1:{port}", 5.0)
        assert got.wait(5.0)
    finally:
        transport.close()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
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
