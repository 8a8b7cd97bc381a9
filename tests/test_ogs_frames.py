"""WebSocket frames (bridge/adapters/ogs/frames.py): unit tests on byte streams cut every way a socket may cut
them. The transport's tests (tests/test_ogs_transport.py) run the same code against a real aiohttp server."""

from __future__ import annotations

import os

import pytest

from bridge.adapters.ogs.frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    ConnectionEnded,
    FrameError,
    FrameReader,
    encode_frame,
    unmask,
)


def server_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None, rsv: int = 0) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if mask is not None:
        return head + mask + unmask(payload, mask)
    return head + payload


def reader_of(stream: bytes, cut: int) -> tuple[FrameReader, list[int]]:
    """A reader whose socket hands out ``stream`` ``cut`` bytes at a time (then its end)."""
    chunks = [stream[i:i + cut] for i in range(0, len(stream), cut)]
    calls: list[int] = []

    def recv(size: int) -> bytes:
        calls.append(size)
        return chunks.pop(0) if chunks else b""

    return FrameReader(recv), calls


def read_all(reader: FrameReader) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    with pytest.raises(ConnectionEnded):
        while True:
            out.append(reader.next())
    return out


STREAM = (server_frame(TEXT, b'["a",1]') + server_frame(PING, b"hi") + server_frame(TEXT, b"x" * 300)
          + server_frame(BINARY, b"\x00\xff") + server_frame(TEXT, b'["frag', fin=False)
          + server_frame(PONG, b"") + server_frame(0, b'mented"', fin=False) + server_frame(0, b"]")
          + server_frame(TEXT, "é".encode() * 40000, mask=b"\x01\x02\x03\x04") + server_frame(CLOSE, b"\x03\xe8"))
EXPECTED = [(TEXT, b'["a",1]'), (PING, b"hi"), (TEXT, b"x" * 300), (BINARY, b"\x00\xff"), (PONG, b""),
            (TEXT, b'["fragmented"]'), (TEXT, "é".encode() * 40000), (CLOSE, b"\x03\xe8")]


@pytest.mark.parametrize("cut", [1, 2, 3, 7, 126, 4096, 1 << 20])
def test_a_stream_gives_the_same_messages_however_the_socket_cuts_it(cut: int) -> None:
    reader, _ = reader_of(STREAM, cut)
    assert read_all(reader) == EXPECTED


def test_frames_that_came_in_one_read_cost_one_read() -> None:
    frames = b"".join(server_frame(TEXT, f'["e",{i}]'.encode()) for i in range(50))
    reader, calls = reader_of(frames, len(frames))
    assert [payload for _, payload in read_all(reader)] == [f'["e",{i}]'.encode() for i in range(50)]
    assert len(calls) == 2  # the whole stream, then its end


@pytest.mark.parametrize(("stream", "message"), [
    (server_frame(TEXT, b"{}", rsv=0x40), "reserved bit"),
    (server_frame(0x3, b""), "unknown opcode 3"),
    (server_frame(0, b"x"), "continuation frame with no message"),
    (server_frame(TEXT, b"a", fin=False) + server_frame(TEXT, b"b"), "new message began"),
    (server_frame(PING, b"p", fin=False), "fragmented or over 125 bytes"),
    (server_frame(PING, b"p" * 126), "fragmented or over 125 bytes"),
])
def test_a_broken_frame_is_a_frame_error(stream: bytes, message: str) -> None:
    reader, _ = reader_of(stream, 1 << 20)
    with pytest.raises(FrameError, match=message):
        reader.next()


def test_a_message_over_the_limit_is_refused_before_it_is_read_whole() -> None:
    big = server_frame(TEXT, b"a" * 2000)
    chunks = [big[:10]]
    reader = FrameReader(lambda size: chunks.pop(0), max_message=1000)
    with pytest.raises(FrameError, match="over 1000"):
        reader.next()  # the header says 2,000 bytes: refused with 10 bytes read
    parts = server_frame(TEXT, b"a" * 600, fin=False) + server_frame(0, b"b" * 600)
    reader, _ = reader_of(parts, 1 << 20)
    reader._max = 1000
    with pytest.raises(FrameError, match="over 1000 bytes"):
        reader.next()


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 125, 126, 65535, 65536, 100_000])
def test_a_client_frame_is_final_masked_and_unmasks_to_its_payload(n: int) -> None:
    payload = os.urandom(n)
    frame = encode_frame(TEXT, payload, mask=b"\xa1\xb2\xc3\xd4")
    assert frame[0] == 0x80 | TEXT and frame[1] & 0x80
    reader, _ = reader_of(frame, 1 << 20)
    assert reader.next() == (TEXT, payload)  # the reader accepts a masked frame and unmasks it


def test_each_client_frame_has_a_fresh_mask() -> None:
    keys = {encode_frame(TEXT, b"same")[2:6] for _ in range(20)}
    assert len(keys) > 1  # RFC 6455 10.3: unpredictable masks (20 equal keys by chance: 2^-608)
