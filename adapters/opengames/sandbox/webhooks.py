"""Webhook delivery: ``match_found``, ``your_turn`` and ``game_over`` POSTed to an agent's registered URL with
its ``token`` in the JSON body.

One worker thread per agent, created on its first event, sends that agent's events in order; a slow or dead
receiver delays only its own agent. Each POST has a timeout; a connection error, a timeout, a 429 or a 5xx is
retried a few times with a growing pause; any other answer ends the delivery (a 4xx is the receiver refusing
it, e.g. a wrong token). The delivery log (``GET /sandbox/webhooks``) never shows the token.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import requests

from bridge.adapters.opengames.sandbox.core import Webhook
from bridge.adapters.opengames.sandbox.game import iso

log = logging.getLogger("bridge.opengames.sandbox")

_STOP = object()


class WebhookDispatcher:
    """Queues events per agent and delivers them from worker threads; ``close()`` stops them (undelivered
    events are dropped)."""

    def __init__(
        self,
        lookup: Callable[[str], Webhook | None],
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self._lookup = lookup
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[Any]] = {}
        self._workers: dict[str, threading.Thread] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)

    def submit(self, agent_id: str, payload: dict[str, Any]) -> None:
        """Queues ``payload`` for ``agent_id``'s webhook, if it has one (looked up now)."""
        hook = self._lookup(agent_id)
        if hook is None or self._stop.is_set():
            return
        with self._lock:
            q = self._queues.get(agent_id)
            if q is None:
                q = self._queues[agent_id] = queue.Queue()
                worker = threading.Thread(
                    target=self._work,
                    args=(agent_id, q),
                    daemon=True,
                    name=f"og-sandbox-webhook-{agent_id[:8]}",
                )
                self._workers[agent_id] = worker
                worker.start()
        q.put((hook, payload))

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for q in self._queues.values():
                q.put(_STOP)
            workers = list(self._workers.values())
        for w in workers:
            w.join(self.timeout + 1)

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.log)

    def _work(self, agent_id: str, q: queue.Queue[Any]) -> None:
        session = requests.Session()
        try:
            while not self._stop.is_set():
                item = q.get()
                if item is _STOP:
                    return
                hook, payload = item
                self._deliver(session, agent_id, hook, payload)
        finally:
            session.close()

    def _deliver(
        self, session: requests.Session, agent_id: str, hook: Webhook, payload: dict[str, Any]
    ) -> None:
        entry: dict[str, Any] = {
            "agent_id": agent_id,
            "event": payload.get("event"),
            "game_id": payload.get("game_id"),
            "turn": payload.get("turn"),
            "url": hook.url,
            "queued_at": iso(time.time()),
            "attempts": 0,
            "http_status": None,
            "delivered": False,
            "error": None,
        }
        body = payload | {"token": hook.token}
        for attempt in range(self.retries + 1):
            if self._stop.is_set():
                entry["error"] = "sandbox stopped"
                break
            entry["attempts"] = attempt + 1
            try:
                resp = session.post(
                    hook.url,
                    json=body,
                    timeout=self.timeout,
                    headers={"User-Agent": "open-games-sandbox/1.0"},
                )
                entry["http_status"] = resp.status_code
                if resp.status_code < 300:
                    entry["delivered"], entry["error"] = True, None
                    break
                entry["error"] = f"HTTP {resp.status_code}"
                if resp.status_code != 429 and resp.status_code < 500:
                    break  # the receiver refused it: retrying would not help
            except requests.RequestException as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries and self._stop.wait(self.backoff * 2**attempt):
                entry["error"] = "sandbox stopped"
                break
        if not entry["delivered"]:
            log.info(
                "sandbox: webhook %s for agent %s to %s not delivered: %s",
                entry["event"],
                agent_id,
                hook.url,
                entry["error"],
            )
        with self._lock:
            self.log.append(entry)
