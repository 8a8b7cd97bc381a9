"""What a game's session receives, held the way it is read: the newest snapshot in a slot, other events in order.

A server sends a game as a stream of full snapshots (each replaces the one before) mixed with a few events that
are not snapshots (an undo request, a chat line, a refusal, the game abandoned). The session only ever wants the
newest snapshot, and every one of the others, in the order they came. :class:`Latest` is the slot: writers
overwrite it, each write gets the next version number, and a reader asks "anything newer than version v?" -- so
"the game changed while the engine thought" is a comparison of two integers, and no snapshot is ever queued behind
or reordered with another. :class:`Mailbox` pairs a slot with an ordered side channel and one wake-up event.

Nothing here knows a game or a server; every method is thread-safe and O(1) (``take_events``: O(events taken)).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
E = TypeVar("E")


class Wake:
    """A wake-up flag for one waiting thread, on one raw lock (held = not set): ``set`` is a lock release and
    ``wait`` an acquire, so a wake-up costs one futex call each side instead of ``threading.Event``'s condition
    (a waiter lock made and queued, the condition's lock taken on both sides). ``wait`` consumes the flag."""

    __slots__ = ("_lock", "_waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._waiting = False  # a thread is (about to be) blocked in wait

    def set(self, handoff: bool = False) -> None:
        """Set the flag. ``handoff``: the woken thread has urgent work (e.g. its turn to move): if it was
        waiting, this thread's next :func:`yield_to_woken` lets it run first."""
        try:
            self._lock.release()
        except RuntimeError:  # already set
            return
        if handoff and self._waiting:
            _woke.waiter = True  # for yield_to_woken, on this (the setting) thread

    def is_set(self) -> bool:
        return not self._lock.locked()

    def clear(self) -> None:
        self._lock.acquire(blocking=False)

    def wait(self, timeout: float) -> bool:
        """Wait until set (or ``timeout`` seconds); True if it was set. The flag is cleared."""
        self._waiting = True
        try:
            return self._lock.acquire(timeout=min(max(timeout, 0.0), threading.TIMEOUT_MAX))
        finally:
            self._waiting = False


HANDOFF = 50e-6  # seconds a reading thread sleeps after it woke a waiting one (the sleep takes ~0.1 ms in all)
HANDOFF_SPACING = 0.02  # seconds between two yields of one reading thread, at the least (50 a second at most)


class _Woke(threading.local):
    waiter = False
    last = -1.0  # time.monotonic() of this thread's last yield


_woke = _Woke()


def yield_to_woken() -> None:
    """For a thread that reads a connection and hands what it reads to waiting threads, between two messages: if
    it woke a waiting thread with urgent work (``handoff``) since the last call, sleep :data:`HANDOFF` so that the
    woken thread takes the GIL first. Otherwise the reader keeps the GIL through the messages it has already read
    (a move's clock comes in the same read as the move), and the woken game waits for it before it can ask its
    engine. Each yield is a timer wake-up (at 100 games, one after every wake-up cost ~10 % of the daemon's CPU),
    hence only for urgent work, and at most once per :data:`HANDOFF_SPACING`: under load the reader's throughput
    comes first. Measured with the scale benchmark (docs/scale_history.md)."""
    if _woke.waiter:
        _woke.waiter = False
        now = time.monotonic()
        if now - _woke.last >= HANDOFF_SPACING:
            _woke.last = now
            time.sleep(HANDOFF)


class Latest(Generic[T]):
    """The newest value of something, the version of that value (the number of accepted writes), and an event.

    ``keep(current, new)`` (optional) says that ``current`` must stay instead of ``new`` (e.g. a finished game is
    never replaced by an older in-play snapshot); such a write is refused and changes nothing."""

    def __init__(self, keep: Callable[[T, T], bool] | None = None, wake: Wake | None = None) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._version = 0
        self._keep = keep
        self.wake = wake if wake is not None else Wake()

    def put(self, value: T, handoff: bool = False) -> int:
        """Make ``value`` the newest; returns its version (0 when ``keep`` refused it). ``handoff``: see
        :meth:`Wake.set`."""
        with self._lock:
            if self._value is not None and self._keep is not None and self._keep(self._value, value):
                return 0
            self._version += 1
            self._value = value
            version = self._version
        self.wake.set(handoff)
        return version

    def get(self) -> tuple[int, T | None]:
        """(version, value) of the newest value; (0, None) before the first write."""
        with self._lock:
            return self._version, self._value

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def newer_than(self, version: int) -> T | None:
        """The newest value when it is newer than ``version``, else None."""
        with self._lock:
            return self._value if self._version > version else None


class Mailbox(Generic[T, E]):
    """A session's inbox: the newest snapshot (a :class:`Latest`) and an ordered side channel of other events,
    sharing one wake-up event. Writers: ``put_snapshot`` / ``push``; the one reader: ``wait``, ``take_events``,
    ``snapshot``. ``pending(kind)`` counts events of a type pushed and not yet taken (no looking into the queue)."""

    def __init__(self, keep: Callable[[T, T], bool] | None = None) -> None:
        self.wake = Wake()
        self.snapshot: Latest[T] = Latest(keep, self.wake)
        self._lock = threading.Lock()
        self._events: deque[E] = deque()
        self._pending: Counter[type] = Counter()

    def put_snapshot(self, value: T, handoff: bool = False) -> int:
        return self.snapshot.put(value, handoff)

    def push(self, event: E) -> None:
        with self._lock:
            self._events.append(event)
            self._pending[type(event)] += 1
        self.wake.set()

    def take_events(self) -> list[E]:
        """Every side event pushed so far, oldest first (they are then no longer pending)."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            self._pending.clear()
        return events

    def pending(self, kind: type) -> int:
        with self._lock:
            return self._pending[kind]

    def wait(self, timeout: float) -> bool:
        """Wait until something was written since the last ``wait`` (or ``timeout``); True if something was.
        The event is cleared before returning, and the caller reads afterwards, so no write is missed."""
        return self.wake.wait(timeout)

    def interrupt(self) -> None:
        """Wake the reader without writing anything (e.g. to stop it)."""
        self.wake.set()
