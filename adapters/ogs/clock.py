"""Clock synchronisation with the OGS server from ``net/ping``/``net/pong`` round trips."""

from __future__ import annotations

import statistics
from collections import deque


class ClockSync:
    """Latency and server clock drift from ``net/ping``/``net/pong`` (goban's formulas), as the median of
    the recent samples so that one slow pong does not move every clock. Drift > 0: our clock is ahead.

    The medians are computed when a sample is added (once a ping interval), not on every read: every clock
    event of every game reads the drift."""

    def __init__(self, samples: int = 9) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=samples)
        self._latency = 0.0
        self._drift = 0.0

    def add(self, client_ms: float, server_ms: float, now_ms: float) -> tuple[float, float]:
        latency = max(0.0, now_ms - client_ms)
        drift = now_ms - latency / 2 - server_ms
        self._samples.append((latency, drift))
        self._latency = statistics.median(s[0] for s in self._samples)
        self._drift = statistics.median(s[1] for s in self._samples)
        return latency, drift

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def drift(self) -> float:
        return self._drift

    @property
    def count(self) -> int:
        return len(self._samples)
