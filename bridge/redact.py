"""Keep secrets out of logs, transcripts and error messages: every resolved secret is registered here,
and :func:`redact` (used by the logging filter and the transcript writer) replaces it with ``***``."""

from __future__ import annotations

import logging
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_longest_first: tuple[str, ...] = ()  # _secrets, longest first (a secret inside a longer one is replaced after it)


def register_secret(value: str) -> None:
    global _longest_first
    if len(value) >= 4:
        with _lock:
            _secrets.add(value)
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def redact(text: str) -> str:
    for s in _longest_first:  # a tuple replaced whole on each registration: no lock needed to read it
        if s in text:
            text = text.replace(s, "***")
    return text


def contains_secret(text: str) -> bool:
    """True if ``text`` holds a registered secret."""
    with _lock:
        return any(s in text for s in _secrets)


class RedactingFilter(logging.Filter):
    """A logging filter that formats the record's message early and redacts secrets from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string must not lose the log line
            msg = str(record.msg)
        record.msg = redact(msg)
        record.args = None
        return True
