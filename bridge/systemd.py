"""The daemon's side of systemd's service protocol, without a new dependency.

- :class:`Notifier` speaks sd_notify(3): one datagram per message to the AF_UNIX socket named by
  ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace), carrying ``READY=1``, ``RELOADING=1``,
  ``STOPPING=1``, ``WATCHDOG=1`` and ``STATUS=...`` lines. Outside systemd (no variable) every call is a no-op.
- :func:`watchdog_interval` reads ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``) as sd_watchdog_enabled(3) does.
- :func:`stderr_is_journal` tells whether stderr is connected to the journal (``$JOURNAL_STREAM`` names the
  device and inode of that stream), so that log lines can carry sd-daemon(3) ``<N>`` priority prefixes instead of
  a timestamp of their own.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger("bridge.systemd")

# The variables a service manager hands to its main process only; engines (our children) must not inherit them.
_MANAGER_ONLY = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _socket_address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace (Linux)
    if value.startswith("/"):
        return value
    return None  # vsock and other forms: not for us


class Notifier:
    """Sends sd_notify messages; silent (and harmless) when the daemon is not run by systemd with Type=notify.

    Reads and removes ``$NOTIFY_SOCKET``/``$WATCHDOG_*`` from the environment when created, so that engine
    processes started later do not inherit them."""

    def __init__(self, environ: dict[str, str] | None = None, *, unset: bool = True) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.socket_name = raw  # for messages: the environment variable is removed below
        self.address = _socket_address(raw) if raw else None
        if raw and self.address is None:
            log.warning("NOTIFY_SOCKET=%r is not a path or an abstract socket name; not notifying systemd", raw)
        self.watchdog = watchdog_interval(env)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._warned = False
        if unset and environ is None:
            for name in _MANAGER_ONLY:
                os.environ.pop(name, None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send one message (its lines joined by newlines). True if it was sent."""
        if self.address is None:
            return False
        payload = "\n".join(lines).encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self.address)
                return True
            except OSError as exc:
                if not self._warned:  # once: a notification socket that went away must not flood the log
                    self._warned = True
                    log.warning("cannot notify systemd through %s (%s): its readiness, status and watchdog pings "
                                "may be lost from now on, and with WatchdogSec= systemd then restarts the daemon (the "
                                "games resume); if it repeats, check that the unit has Type=notify and "
                                "NotifyAccess=main", self.socket_name, exc.strerror or exc)
                return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd (>= 253, Type=notify-reload) match this to the reload it asked for.
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval(environ: dict[str, str] | os._Environ[str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises), or
    None when the service has no watchdog or the variable is meant for another process (``$WATCHDOG_PID``)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number of microseconds; no watchdog pings", usec)
        return None
    return value / 2e6 if value > 0 else None


def stderr_is_journal(environ: dict[str, str] | os._Environ[str] | None = None, fd: int = 2) -> bool:
    """True if ``fd`` is the stream systemd connected to the journal (``$JOURNAL_STREAM`` = ``DEVICE:INODE``)."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError):
        return False
