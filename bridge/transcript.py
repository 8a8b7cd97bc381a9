"""A per-game transcript of every line exchanged with the engines, the file users attach to bug reports.

Each line reads ``<timestamp> <source> <direction> <text>``, e.g.::

    2026-11-21T07:32:05.123 gnugo >> 3 genmove b
    2026-11-21T07:32:05.130 gnugo << =3 D4
    2026-11-21T07:32:05.131 gnugo !! MAIN: thinking...
    2026-11-21T07:32:05.200 bridge ## restarting the engine after a timeout

Directions: ``>>`` to the engine, ``<<`` from the engine (stdout), ``!!`` engine stderr, ``##`` a note from the
bridge. Every line is redacted (:func:`bridge.redact.redact`) and flushed at once, so the file is complete even
after a crash -- except inside :meth:`Transcript.hold`, which the engine drivers take around one exchange (the
commands of one move and their answers): its lines are flushed together when it ends, or when the oldest of them has
waited :data:`HOLD_MAX_SECONDS` and another line comes (a driver waiting longer for an answer flushes too), so a
move costs one flush instead of one per line; a hold always ends with a flush, whatever ends it (an answer, an
error, the engine stopped, the daemon stopping), and :meth:`Transcript.close` flushes. A transcript has a cap
(``daemon.transcript_max_mb``, per game): engine stderr stops being recorded first (at 90 % of the cap), the
engine's output and the commands to it next (at 95 %), so the bridge's notes (the turn summaries, what went wrong, the
game's end: what explains a bug report) keep the rest; what was dropped is noted when it starts and, line and byte
counts per stream, when the transcript is closed. Several engines (say, the one started after a restart) may share a
transcript; writes from different threads never interleave inside a line.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TextIO

from bridge.errors import BridgeError
from bridge.redact import redact

log = logging.getLogger("bridge.transcript")

DIRECTIONS = frozenset({">>", "<<", "!!", "##"})
STREAMS = {"!!": "engine stderr", "<<": "engine output", ">>": "commands to the engine", "##": "bridge notes"}
DEFAULT_CAP_MB = 10.0
STDERR_SHARE = 0.9  # engine stderr stops at this share of the cap; the rest is for moves and notes
ENGINE_SHARE = 0.95  # the engine's output and the commands to it stop here; the rest is the bridge's notes
SHARES = {"!!": STDERR_SHARE, "<<": ENGINE_SHARE, ">>": ENGINE_SHARE, "##": 1.0}
STILL_RECORDED = {"!!": " (moves and notes are, up to the cap)", "<<": " (the bridge's notes are, up to the cap)",
                  ">>": " (the bridge's notes are, up to the cap)", "##": ""}  # said when a stream stops
_second: tuple[int, str] = (-1, "")  # Transcript._format's cache: a second (epoch) and its local time, formatted
HOLD_MAX_SECONDS = 0.25  # inside a hold, a line waits at most about this long for its flush (see the module doc)


def transcript_cap(config: object) -> int | None:
    """The per-game cap in bytes from ``config.daemon.transcript_max_mb`` (None: no cap)."""
    daemon = getattr(config, "daemon", None)
    mb = getattr(daemon, "transcript_max_mb", DEFAULT_CAP_MB)
    return int(mb * 1_000_000) if mb and mb > 0 else None


class Transcript:
    """Append lines to ``path`` (created with its parent folders); ``path=None`` discards everything.
    ``max_bytes`` caps the file (None: no cap); a file that already exists counts with its size."""

    def __init__(self, path: Path | None, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._failed = False
        self._written = 0
        self._dropped: dict[str, list[int]] = {}  # direction -> [lines, bytes]
        self._holds = 0  # open hold() blocks: lines are written but not flushed
        self._unflushed_since: float | None = None  # monotonic time of the oldest line not yet flushed
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "a", encoding="utf-8", errors="replace")
                self._written = path.stat().st_size
            except OSError as exc:
                raise BridgeError(f"cannot open the transcript file {path}: {exc.strerror or exc}") from None

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, direction: str, text: str, source: str = "bridge") -> None:
        """Record ``text`` (each of its lines) as going ``direction``; ``source`` names the engine."""
        if direction not in DIRECTIONS:
            raise ValueError(f"transcript direction must be one of {sorted(DIRECTIONS)}, not {direction!r}")
        if self._file is None:
            return
        if self.max_bytes is not None and direction in self._dropped and direction != "##":
            with self._lock:  # this stream is already past its cap: count it without formatting it
                self._count_drop(direction, text)
            return
        out = self._format(direction, text, source)
        with self._lock:
            if self._file is None:
                return
            if self.max_bytes is not None:
                limit = self.max_bytes * SHARES[direction]
                if self._written + len(out.encode("utf-8", "replace")) > limit:
                    first = direction not in self._dropped
                    self._count_drop(direction, text)
                    if first:
                        self._put(self._format("##", f"transcript cap of {self.max_bytes} bytes reached: "
                                                     f"{STREAMS[direction]} is no longer recorded"
                                                     f"{STILL_RECORDED[direction]}", "bridge"))
                    return
            self._put(out)

    @staticmethod
    def _format(direction: str, text: str, source: str) -> str:
        global _second
        now = time.time()
        whole = int(now)
        cached = _second
        if cached[0] != whole:  # the date and time to the second, formatted once a second
            cached = _second = (whole, datetime.fromtimestamp(whole).strftime("%Y-%m-%dT%H:%M:%S"))
        stamp = f"{cached[1]}.{int((now - whole) * 1000):03d}"
        source = source.replace(" ", "_") or "-"
        lines = redact(text).split("\n") if text else [""]
        prefix = f"{stamp} {source} {direction}"
        return "".join(f"{prefix} {line}\n" if line else f"{prefix}\n" for line in (x.rstrip("\r") for x in lines))

    def _count_drop(self, direction: str, text: str) -> None:
        counts = self._dropped.setdefault(direction, [0, 0])
        counts[0] += text.count("\n") + 1
        counts[1] += len(text.encode("utf-8", "replace")) + 1

    def _put(self, out: str) -> None:
        """Write (the lock is held)."""
        if self._file is None:
            return
        try:
            self._file.write(out)
            self._written += len(out.encode("utf-8", "replace"))
            if self._holds:
                now = time.monotonic()
                if self._unflushed_since is None:
                    self._unflushed_since = now
                if now - self._unflushed_since < HOLD_MAX_SECONDS:
                    return
            self._file.flush()
            self._unflushed_since = None
        except (OSError, ValueError) as exc:
            self._write_failed(exc)

    def _write_failed(self, exc: Exception) -> None:
        if not self._failed:  # say it once, never take the game down for a transcript
            self._failed = True
            folder = self.path.parent if self.path is not None else None
            log.warning("cannot write the transcript %s: %s; further lines of it are lost (the game goes on); make "
                        "sure %s has free space, and lower daemon.transcript_max_mb if transcripts fill it",
                        self.path, exc, folder)

    def _flush(self) -> None:
        """Flush what was written (the lock is held)."""
        if self._file is None or self._unflushed_since is None:
            return
        self._unflushed_since = None
        try:
            self._file.flush()
        except (OSError, ValueError) as exc:
            self._write_failed(exc)

    def flush(self) -> None:
        """Write out the lines a :meth:`hold` kept back so far."""
        with self._lock:
            self._flush()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Lines written meanwhile, from any thread, are flushed together when the block ends (or when the oldest
        has waited :data:`HOLD_MAX_SECONDS` and another comes). Blocks may nest; the outermost one flushes."""
        with self._lock:
            self._holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                if not self._holds:
                    self._flush()

    def dropped_summary(self) -> str | None:
        """What the cap dropped so far, per stream, or None."""
        with self._lock:
            if not self._dropped:
                return None
            parts = [f"{n} lines ({b} bytes) of {STREAMS[d]}" for d, (n, b) in sorted(self._dropped.items())]
        return f"transcript cap of {self.max_bytes} bytes: dropped " + ", ".join(parts)

    def note(self, text: str, source: str = "bridge") -> None:
        """A remark from the bridge itself (``##``): restarts, timeouts, what was decided and why."""
        self.write("##", text, source)

    def close(self) -> None:
        summary = self.dropped_summary()
        with self._lock:
            if summary is not None:
                self._put(self._format("##", summary, "bridge"))
            f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                log.warning("closing the transcript %s failed: %s", self.path, exc)

    def __enter__(self) -> Transcript:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
