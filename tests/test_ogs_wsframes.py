"""The server-to-client WebSocket frame reader (RFC 6455 section 5) on scripted socket reads: frames cut out of
reads of any size, fragments joined, control frames between fragments, and each breach of the framing refused
with what was wrong. The reader against a real aiohttp server: tests/test_ogs_transport.py."""

from __future__ import annotations

import pytest
from helpers import server_frame as frame

from bridge.adapters.ogs.wsframes import (
    BINARY,
    CLOSE,
    CONTINUATION,
    MAX_MESSAGE,
    PING,
    PONG,
    TEXT,
    ConnectionEnded,
    FrameError,
    FrameReader,
    client_frame,
)


class Reads:
    """A socket's recv that hands out ``data`` in pieces of ``size`` bytes (or as given), then the end."""

    def __init__(self, data: bytes | list[bytes], size: int | None = None) -> None:
        if isinstance(data, bytes):
            step = size or len(data) or 1
            data = [data[i:i + step] for i in range(0, len(data), step)]
        self.pieces = list(data)
        self.asked: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.asked.append(n)
        return self.pieces.pop(0) if self.pieces else b""


def read_all(reader: FrameReader) -> list[tuple[int, bytes]]:
    out = []
    while True:
        try:
            out.append(reader.next())
        except ConnectionEnded:
            return out


PAYLOADS = [b"", b"x", b"a" * 125, b"b" * 126, b"c" * 65535, b"d" * 65536, "Jérôme 囲碁".encode() * 9000]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100, 65536, None])
def test_frames_of_every_length_encoding_come_out_whole_whatever_the_reads_cut(size: int | None) -> None:
    stream = b"".join(frame(TEXT, p) for p in PAYLOADS) + frame(BINARY, b"\x00\xff")
    reader = FrameReader(Reads(stream, size))
    assert read_all(reader) == [(TEXT, p) for p in PAYLOADS] + [(BINARY, b"\x00\xff")]
    if size is None:  # everything in one read: one read for the frames, one more to see the end
        assert reader.reads == 2


def test_a_fragmented_message_is_joined_and_a_control_frame_between_its_fragments_comes_out_first() -> None:
    stream = (frame(TEXT, b'["game/1/', fin=False) + frame(PING, b"hi") + frame(CONTINUATION, b'move", ', fin=False)
              + frame(CONTINUATION, b"{}]") + frame(TEXT, b"next") + frame(PONG, b"") + frame(CLOSE, b"\x03\xe8bye"))
    for size in (1, 5, None):
        assert read_all(FrameReader(Reads(stream, size))) == [
            (PING, b"hi"), (TEXT, b'["game/1/move", {}]'), (TEXT, b"next"), (PONG, b""), (CLOSE, b"\x03\xe8bye")]


@pytest.mark.parametrize(("stream", "what"), [
    (frame(TEXT, b"{}", rsv=0x40), "reserved bits"),
    (frame(TEXT, b"{}", masked=True), "masked"),
    (frame(0x3, b"{}"), "reserved opcode 0x3"),
    (frame(0xB, b""), "reserved opcode 0xb"),
    (frame(PING, b"p" * 126), "control frame"),
    (frame(CLOSE, b"", fin=False), "fragmented"),
    (frame(CONTINUATION, b"orphan"), "outside a fragmented message"),
    (frame(TEXT, b"one", fin=False) + frame(TEXT, b"two"), "before the fragmented one"),
    (bytes((0x81, 127)) + (1 << 40).to_bytes(8, "big"), "beyond"),
], ids=["rsv", "masked", "opcode-3", "opcode-b", "long-ping", "fragmented-close", "orphan-continuation",
        "message-inside-message", "huge-length"])
def test_each_breach_of_the_framing_is_refused_with_what_was_wrong(stream: bytes, what: str) -> None:
    reads = Reads(stream)
    with pytest.raises(FrameError, match=what):
        FrameReader(reads).next()
    assert len(reads.asked) <= 1  # refused from the header: nothing read (nor allocated) for a claimed payload


def test_fragments_may_not_add_up_beyond_the_largest_message() -> None:
    """Each fragment's length is fine; their sum is not (the reader must not grow without bound)."""
    piece = MAX_MESSAGE // 2 + 1

    class Endless:
        def __init__(self) -> None:
            self.sent = 0

        def __call__(self, n: int) -> bytes:
            opcode = TEXT if self.sent == 0 else CONTINUATION
            self.sent += 1
            return bytes((opcode, 127)) + piece.to_bytes(8, "big") + b"\x00" * piece

    with pytest.raises(FrameError, match="grew beyond"):
        FrameReader(Endless()).next()


def test_the_end_of_the_stream_between_or_inside_frames_is_the_connection_s_end() -> None:
    whole = frame(TEXT, b"hello")
    reader = FrameReader(Reads(whole))
    assert reader.next() == (TEXT, b"hello")
    with pytest.raises(ConnectionEnded):
        reader.next()
    for cut in (1, 2, len(whole) - 1):
        with pytest.raises(ConnectionEnded):
            FrameReader(Reads(whole[:cut])).next()


def test_our_frames_are_masked_as_rfc_6455_s_own_example() -> None:
    """Section 5.7: a single-frame masked text message "Hello" with the key 37 fa 21 3d."""
    assert client_frame(TEXT, b"Hello", mask=bytes((0x37, 0xFA, 0x21, 0x3D))) == bytes(
        (0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58))


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}-bytes")
def test_our_frames_of_every_length_unmask_to_their_payload(payload: bytes) -> None:
    data = client_frame(TEXT, payload)
    assert data[0] == 0x81 and data[1] & 0x80  # FIN + text, masked
    length = data[1] & 0x7F
    head = 2 if length < 126 else 4 if length == 126 else 10
    if head > 2:
        length = int.from_bytes(data[2:head], "big")
    assert length == len(payload)
    key, body = data[head:head + 4], data[head + 4:]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(body)) == payload
    assert client_frame(TEXT, payload) != data or not payload  # a fresh random key each frame
