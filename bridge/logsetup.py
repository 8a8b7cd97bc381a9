"""Logging for the commands: stderr (the journal, when systemd connected it) and an optional, rotated log file.

Under systemd, stderr is the journal: it stamps every line itself, so our lines carry no timestamp of their own but
a ``<N>`` syslog priority prefix on each line (sd-daemon(3)), which journald strips and records as the line's
priority (``journalctl -p warning`` then works). Elsewhere the lines are as before: time, level, logger, message.

The log file (``daemon.log_file``) is rotated by the daemon itself when ``daemon.log_max_bytes`` > 0
(``RotatingFileHandler``: no external tool needed, bounded disk use); with 0 it is left to logrotate, and a
``WatchedFileHandler`` reopens the file when logrotate has moved it away.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from bridge.redact import RedactingFilter
from bridge.systemd import stderr_is_journal

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
NOISY = ("urllib3", "websocket", "socketio", "engineio", "aiohttp.access")

# syslog priorities (sd-daemon(3): SD_ERR = "<3>", SD_WARNING = "<4>", SD_INFO = "<6>", SD_DEBUG = "<7>")
_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def syslog_priority(levelno: int) -> int:
    for level, priority in _PRIORITY:
        if levelno >= level:
            return priority
    return 7


class JournalFormatter(logging.Formatter):
    """``<N>logger: message``, with the prefix on every line (a traceback's lines keep the record's priority)."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


class _FileFailures(logging.FileHandler):
    """A log file that cannot be written (a full disk, a removed mount): one error through ``fallback`` (stderr,
    the journal) that says which file and what to do, instead of logging's traceback on stderr for every line; and
    one line when the file is written again. The lines themselves still reach stderr."""

    fallback: logging.Handler | None = None
    _failing = False  # the file could not be written, and has not been since
    _failed_now = False  # the record being emitted could not be written

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)
        if self._failing and not self._failed_now:
            self._failing = False
            self._tell(logging.WARNING, f"the log file {self.baseFilename} is written again (lines logged while it "
                                        f"could not be are only on stderr)")

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed_now = True
        if self._failing:
            return
        self._failing = True
        exc = sys.exc_info()[1]
        reason = getattr(exc, "strerror", None) or exc
        self._tell(logging.ERROR, f"cannot write the log file {self.baseFilename} ({reason}): its lines go to stderr "
                                  f"(the journal under systemd) only until it can be written again; free space in "
                                  f"{Path(self.baseFilename).parent}, or change daemon.log_file or lower "
                                  f"daemon.log_max_bytes and daemon.log_backups")

    def _tell(self, level: int, message: str) -> None:
        if self.fallback is not None:
            self.fallback.handle(logging.LogRecord("bridge.log", level, __file__, 0, message, None, None))


class _RotatingFile(_FileFailures, logging.handlers.RotatingFileHandler):
    pass


class _WatchedFile(_FileFailures, logging.handlers.WatchedFileHandler):
    pass


def file_handler(path: Path, max_bytes: int, backups: int, fallback: logging.Handler | None = None) -> logging.Handler:
    """The log file's handler; ``fallback`` (the stderr handler) is told when the file cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler: _FileFailures
    if max_bytes > 0:
        handler = _RotatingFile(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    else:
        handler = _WatchedFile(path, encoding="utf-8")
    handler.fallback = fallback
    return handler


def setup_logging(level: str = "INFO", log_file: Path | None = None, *, max_bytes: int = 0, backups: int = 0,
                  journal: bool | None = None) -> None:
    """(Re)configure the root logger: replaces the handlers a previous call installed (a reload calls it again).
    ``journal``: None = detect from ``$JOURNAL_STREAM``."""
    root = logging.getLogger()
    if journal is None:
        journal = stderr_is_journal()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JournalFormatter() if journal else logging.Formatter(TEXT_FORMAT))
    handlers: list[logging.Handler] = [stream]
    if log_file is not None:
        fh = file_handler(log_file, max_bytes, backups, fallback=stream)
        fh.setFormatter(logging.Formatter(TEXT_FORMAT))
        handlers.append(fh)
    for h in list(root.handlers):  # only now: a log file that cannot be opened leaves the logging as it was
        root.removeHandler(h)
        h.close()
    for h in handlers:
        h.addFilter(RedactingFilter())
        root.addHandler(h)
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
