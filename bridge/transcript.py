"""A per-game transcript of every line exchanged with the engines, the file users attach to bug reports.

Each line reads ``<timestamp> <source> <direction> <text>``, e.g.::

    2026-11-21T07:32:05.123 gnugo >> 3 genmove b
    2026-11-21T07:32:05.130 gnugo << =3 D4
    2026-11-21T07:32:05.131 gnugo !! MAIN: thinking...
    2026-11-21T07:32:05.200 bridge ## restarting the engine after a timeout

Directions: ``>>`` to the engine, ``<<`` from the engine (stdout), ``!!`` engine stderr, ``##`` a note from the
bridge.  Every line is redacted (:func:`bridge.redact.redact`) and flushed at once, so the file is complete
even after a crash.  Several engines (say, the one started after a restart) may share a transcript; writes
from different threads never interleave inside a line.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TextIO

from bridge.errors import BridgeError
from bridge.redact import redact

log = logging.getLogger("bridge.transcript")

DIRECTIONS = frozenset({">>", "<<", "!!", "##"})


class Transcript:
    """Append lines to ``path`` (created with its parent folders); ``path=None`` discards everything."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._failed = False
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "a", encoding="utf-8", errors="replace", buffering=1)
            except OSError as exc:
                raise BridgeError(
                    f"cannot open the transcript file {path}: {exc.strerror or exc}; "
                    f"check that its folder exists and is writable, or change the transcript setting"
                ) from None

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, direction: str, text: str, source: str = "bridge") -> None:
        """Record ``text`` (each of its lines) as going ``direction``; ``source`` names the engine."""
        if direction not in DIRECTIONS:
            raise ValueError(f"transcript direction must be one of {sorted(DIRECTIONS)}, not {direction!r}")
        if self._file is None:
            return
        stamp = datetime.now().isoformat(timespec="milliseconds")
        source = source.replace(" ", "_") or "-"
        lines = redact(text).split("\n") if text else [""]
        prefix = f"{stamp} {source} {direction}"
        out = "".join(f"{prefix} {line}\n" if line else f"{prefix}\n" for line in (x.rstrip("\r") for x in lines))
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(out)
                self._file.flush()
            except (OSError, ValueError) as exc:
                if not self._failed:  # say it once, never take the game down for a transcript
                    self._failed = True
                    log.warning("cannot write the transcript %s: %s; further lines are lost", self.path, exc)

    def note(self, text: str, source: str = "bridge") -> None:
        """A remark from the bridge itself (``##``): restarts, timeouts, what was decided and why."""
        self.write("##", text, source)

    def close(self) -> None:
        with self._lock:
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
