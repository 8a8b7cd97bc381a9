"""Clock synchronisation with the OGS server from ``net/ping``/``net/pong`` round trips."""

from __future__ import annotations

import statistics
from collections import deque

PINGS_REMEMBERED = 16  # pings whose send instant is kept until their pong (the rest count as lost)


class ClockSync:
    """Latency and server clock drift from ``net/ping``/``net/pong`` (goban's formulas), as the median of
    the recent samples so that one slow pong does not move every clock. Drift > 0: our clock is ahead.

    The server's clock is kept on the *monotonic* clock (:meth:`server_now_ms`): each pong measures the server's
    time at a monotonic instant (its round trip on the monotonic clock too), so a step of our wall clock (NTP
    correcting a large offset, a virtual machine resumed) changes no game clock. The wall-clock drift is still
    measured, for the pings (goban sends it) and the status.

    The medians are computed when a sample is added (once a ping interval), not on every read: every clock
    event of every game reads them."""

    def __init__(self, samples: int = 9) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=samples)
        self._offsets: deque[float] = deque(maxlen=samples)  # server ms - monotonic ms, one a pong
        self._sent: dict[int, float] = {}  # a ping's client stamp -> the monotonic instant it was sent
        self._latency = 0.0
        self._drift = 0.0
        self._offset: float | None = None

    def ping_stamp(self, wall_ms: float, mono: float) -> int:
        """The ``client`` stamp for a ping sent now (``wall_ms``, ``mono``: ``time.time() * 1000`` and
        ``time.monotonic()``), remembered so that its pong's round trip is measured on the monotonic clock."""
        stamp = int(wall_ms)
        self._sent[stamp] = mono
        while len(self._sent) > PINGS_REMEMBERED:
            del self._sent[next(iter(self._sent))]
        return stamp

    def add(self, client_ms: float, server_ms: float, now_ms: float,
            mono: float | None = None) -> tuple[float, float]:
        """A pong received at ``now_ms`` (wall) and ``mono`` (monotonic): the latency and drift it measured."""
        sent = self._sent.pop(int(client_ms), None) if mono is not None else None
        if mono is not None and sent is not None:
            latency = max(0.0, (mono - sent) * 1000.0)
        else:
            latency = max(0.0, now_ms - client_ms)
        drift = now_ms - latency / 2 - server_ms
        self._samples.append((latency, drift))
        self._latency = statistics.median(s[0] for s in self._samples)
        self._drift = statistics.median(s[1] for s in self._samples)
        if mono is not None and sent is not None:  # only a round trip timed on the monotonic clock
            self._offsets.append(server_ms + latency / 2 - mono * 1000.0)
            self._offset = statistics.median(self._offsets)
        return latency, drift

    def server_now_ms(self, wall_ms: float, mono: float) -> float:
        """The server's clock at the instant whose wall time is ``wall_ms`` and monotonic time ``mono``: from the
        monotonic clock once a pong has measured it, until then the wall clock less the drift."""
        if self._offset is None:
            return wall_ms - self._drift
        return mono * 1000.0 + self._offset

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def drift(self) -> float:
        return self._drift

    @property
    def count(self) -> int:
        return len(self._samples)
