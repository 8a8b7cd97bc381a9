"""WebSocket frames (RFC 6455, section 5) on a connected socket: the OGS transport's move path.

websocket-client opens the connection (URL, TLS, proxy, the HTTP upgrade); after that, frames are read and written
here. Reading a frame through websocket-client takes two or three ``recv`` calls (header, length, payload) and a
frame object; here one ``recv`` brings whatever has arrived (often several frames) into a buffer that is cut into
messages. On one loopback game this took ~50 µs off each opponent move's path, and as much again off our move's
(``scripts/bench_scale.py``; README, "Scale benchmark").

What a client needs and no more: text and binary messages, fragmented or not; ping answered by pong (by the
caller, which owns the send lock); pong ignored; close reported. No extension is negotiated, so a frame with an
RSV bit set is a protocol error, as is a control frame that is fragmented or longer than 125 bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = (TEXT, BINARY)
CONTROL_OPCODES = (CLOSE, PING, PONG)
MAX_MESSAGE = 64 * 1024 * 1024  # bytes: a server's message larger than this is a broken connection
READ_SIZE = 65536


class FrameError(Exception):
    """The peer broke the framing rules (the connection cannot go on)."""


class ConnectionEnded(Exception):
    """The socket reached its end (the peer closed it without a close frame)."""


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final, masked client frame (every client frame is masked: RFC 6455, 5.3)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4) if mask is None else mask
    return head + key + unmask(payload, key)


def unmask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR the 4-byte ``key`` repeated (masking and unmasking are the same operation)."""
    n = len(payload)
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keystream, "little")).to_bytes(n, "little")


class FrameReader:
    """Messages from a stream of server frames. ``recv(n)`` is the socket's (blocking; b"" at its end)."""

    def __init__(self, recv: Callable[[int], bytes], max_message: int = MAX_MESSAGE) -> None:
        self._recv = recv
        self._buf = bytearray()
        self._pos = 0
        self._max = max_message
        self._parts: list[bytes] = []
        self._parts_size = 0
        self._opcode: int | None = None  # the opcode of the fragmented message being gathered

    def next(self) -> tuple[int, bytes]:
        """The next whole message or control frame: (opcode, payload). Raises FrameError, ConnectionEnded and
        the socket's OSError."""
        while True:
            frame = self._frame()
            if frame is None:
                data = self._recv(READ_SIZE)
                if not data:
                    raise ConnectionEnded("the server closed the connection")
                if self._pos:
                    del self._buf[:self._pos]
                    self._pos = 0
                self._buf += data
                continue
            fin, opcode, payload = frame
            if opcode in CONTROL_OPCODES:
                if not fin or len(payload) > 125:
                    raise FrameError(f"a control frame (opcode {opcode}) that is fragmented or over 125 bytes")
                return opcode, payload
            if opcode == CONTINUATION:
                if self._opcode is None:
                    raise FrameError("a continuation frame with no message to continue")
                self._gather(payload)
                if fin:
                    opcode, self._opcode = self._opcode, None
                    whole = b"".join(self._parts)
                    self._parts, self._parts_size = [], 0
                    return opcode, whole
                continue
            if opcode not in DATA_OPCODES:
                raise FrameError(f"a frame with the unknown opcode {opcode}")
            if self._opcode is not None:
                raise FrameError("a new message began before the fragmented one before it ended")
            if fin:
                return opcode, payload
            self._opcode = opcode
            self._gather(payload)

    def _gather(self, payload: bytes) -> None:
        self._parts_size += len(payload)
        if self._parts_size > self._max:
            raise FrameError(f"a message over {self._max} bytes")
        self._parts.append(payload)

    def _frame(self) -> tuple[bool, int, bytes] | None:
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have < 2:
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        if b0 & 0x70:
            raise FrameError("a frame with a reserved bit set (no extension was negotiated)")
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if have < 4:
                return None
            length = int.from_bytes(buf[pos + 2:pos + 4], "big")
            head = 4
        elif length == 127:
            if have < 10:
                return None
            length = int.from_bytes(buf[pos + 2:pos + 10], "big")
            head = 10
        if length > self._max:
            raise FrameError(f"a frame of {length} bytes (over {self._max})")
        masked = b1 & 0x80
        if masked:
            head += 4
        end = head + length
        if have < end:
            return None
        if masked:  # a server must not mask (5.1); accepted all the same
            payload = unmask(bytes(buf[pos + head:pos + end]), bytes(buf[pos + head - 4:pos + head]))
        else:
            payload = bytes(buf[pos + head:pos + end])
        self._pos = pos + end
        if self._pos == len(buf):
            buf.clear()
            self._pos = 0
        return bool(b0 & 0x80), b0 & 0x0F, payload
