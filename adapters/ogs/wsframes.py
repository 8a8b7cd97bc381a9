"""WebSocket framing (RFC 6455 section 5) on a connected socket: the server's frames read, ours built.

websocket-client opens the connection (handshake, TLS, proxies); the frames are read and written here. The
library's reader asks the socket for each frame's header and payload separately and builds several objects a frame
behind a lock, which was a quarter of the OGS reader thread's time (four frames a bot move); :class:`FrameReader`
takes whatever has arrived in one read and cuts every complete frame out of it. :func:`client_frame` builds one of
our frames (masked, as a client's must be) in one call, where the library's send took ~60 us cold.

What it checks, as a client must (section 5.1, 5.2, 5.4, 5.5): no reserved bits (no extension is negotiated), no
masked frame from the server, no reserved opcode, control frames whole (FIN set) and at most 125 bytes, continuation
frames only inside a fragmented message and no new message inside one, and a message no larger than
:data:`MAX_MESSAGE` (a bad length field must not make the daemon allocate gigabytes). Each breach raises
:class:`FrameError` with what was wrong; the transport then drops the connection and reconnects.
"""

from __future__ import annotations

import os
from collections.abc import Callable

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_KNOWN = frozenset((CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG))
READ_CHUNK = 65536  # bytes asked of the socket at once: every frame that has arrived, not a header at a time
MAX_MESSAGE = 64 * 1024 * 1024  # OGS's largest frames (game data of a long game) are tens of kilobytes


def client_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One whole frame from the client (FIN set), masked as section 5.3 requires: ``mask`` (4 bytes) or 4 random
    bytes, XORed over the payload."""
    key = os.urandom(4) if mask is None else mask
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    if not n:
        return head + key
    keys = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")
    return head + key + masked


class FrameError(Exception):
    """The server broke the WebSocket framing; the message says how."""


class ConnectionEnded(Exception):
    """The socket reached its end (the server closed the TCP connection) without a close frame."""


class FrameReader:
    """Whole messages and control frames from ``recv`` (a socket's ``recv``: blocks, returns ``b""`` at the end).

    ``next()`` returns ``(opcode, payload)``: TEXT or BINARY with a whole message (fragments joined), or a control
    frame (CLOSE, PING, PONG) as it comes, even between the fragments of a message. ``reads`` counts socket reads.
    """

    __slots__ = ("_buf", "_fragment_opcode", "_fragment_size", "_fragments", "_pos", "_recv", "reads")

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self._buf = b""
        self._pos = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0
        self.reads = 0

    def _fill(self, size: int) -> None:
        """Read until ``size`` bytes from the current position are at hand, keeping those not yet used. The reads
        are joined once, however many a large frame takes (appending each read to the rest would copy a frame of n
        bytes n / READ_CHUNK times)."""
        have = len(self._buf) - self._pos
        if have >= size:
            return
        pieces = [self._buf[self._pos:]] if have else []
        while have < size:
            chunk = self._recv(READ_CHUNK)
            self.reads += 1
            if not chunk:
                raise ConnectionEnded("the server closed the connection")
            pieces.append(chunk)
            have += len(chunk)
        self._buf = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._pos = 0

    def next(self) -> tuple[int, bytes]:
        while True:
            opcode, fin, payload = self._frame()
            if opcode >= CLOSE:  # a control frame
                return opcode, payload
            if opcode == CONTINUATION:
                if not self._fragment_opcode:
                    raise FrameError("a continuation frame came outside a fragmented message")
                self._fragment_size += len(payload)
                if self._fragment_size > MAX_MESSAGE:
                    raise FrameError(f"a fragmented message grew beyond {MAX_MESSAGE} bytes")
                self._fragments.append(payload)
                if not fin:
                    continue
                opcode, payload = self._fragment_opcode, b"".join(self._fragments)
                self._fragments, self._fragment_opcode, self._fragment_size = [], 0, 0
                return opcode, payload
            if self._fragment_opcode:
                raise FrameError("a new message began before the fragmented one before it ended")
            if fin:
                return opcode, payload
            self._fragment_opcode, self._fragments, self._fragment_size = opcode, [payload], len(payload)

    def _frame(self) -> tuple[int, bool, bytes]:
        """One frame: its opcode, FIN bit and payload."""
        self._fill(2)
        buf, pos = self._buf, self._pos
        first, second = buf[pos], buf[pos + 1]
        if first & 0x70:
            raise FrameError(f"reserved bits (rsv) set in a frame's header ({first:#04x}) with no extension agreed")
        opcode = first & 0x0F
        if opcode not in _KNOWN:
            raise FrameError(f"reserved opcode {opcode:#x}")
        if second & 0x80:
            raise FrameError("a masked frame from the server (only clients mask)")
        length = second & 0x7F
        head = 2
        if length >= 126:
            head = 4 if length == 126 else 10
            self._fill(head)
            buf, pos = self._buf, self._pos
            length = int.from_bytes(buf[pos + 2:pos + head], "big")
        fin = bool(first & 0x80)
        if opcode >= CLOSE and (length > 125 or not fin):
            raise FrameError(f"a control frame (opcode {opcode:#x}) of {length} bytes"
                             f"{'' if fin else ', fragmented'}: control frames are whole and at most 125 bytes")
        if length > MAX_MESSAGE:
            raise FrameError(f"a frame of {length} bytes, beyond the {MAX_MESSAGE} this client accepts")
        self._fill(head + length)
        buf, start = self._buf, self._pos + head
        end = start + length
        payload = buf[start:end]
        if end == len(buf):
            self._buf, self._pos = b"", 0
        else:
            self._pos = end
        return opcode, fin, payload
