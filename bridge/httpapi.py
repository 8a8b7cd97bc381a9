"""What the HTTP game-server clients share (``adapters/reconchess/api.py``, ``adapters/opengames/api.py``): the
error classes, the retry policy, and one call's send-and-retry loop over a ``requests.Session``.

The loop (:meth:`HttpApi._send`): a 5xx answer, a timeout or a connection error (and, where the server uses it,
a 429) is retried with capped exponential backoff and jitter (tenacity), a 429 after its ``Retry-After``
(capped by ``RetryPolicy.max_delay``), until the ``stop`` event is set (:class:`Stopped`, at once: the waits
are on the event), the call's deadline passes or ``RetryPolicy.give_up`` seconds have gone by
(:class:`GaveUp`). Other answers are returned to the caller, who decides what they mean. A request that may
have reached the server while its answer was lost is flagged (``maybe_done``); with ``once`` it is not sent
again (:class:`GaveUp` with ``lost``).

Server-neutral: no URL, field or config key is named here; the adapters word their own errors.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import tenacity
import urllib3

from bridge.errors import AuthError, BridgeError, ServerError
from bridge.redact import redact


class ApiError(ServerError):
    """A final error answer (4xx), or a call that gave up retrying (``status`` 0). The adapters subclass it
    with the server's reason.

    ``maybe_done``: an earlier attempt of this call may have been carried out by the server (its answer was
    lost), so a refusal now may only mean "already done"."""

    def __init__(self, message: str, status: int = 0, maybe_done: bool = False) -> None:
        super().__init__(redact(message))
        self.status = status
        self.maybe_done = maybe_done


class Unauthorized(AuthError):
    """HTTP 401: the server refused the credentials."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(redact(message))
        self.status = status


class Stopped(BridgeError):
    """A call was abandoned because the daemon is stopping."""


class GaveUp(Exception):
    """A call got no usable answer: retries ran out (``give_up`` seconds, or the deadline), or (``lost``) a
    ``once`` request that may have reached the server failed and was not sent again. The caller turns it into
    its own :class:`ApiError`. ``reason``: the last failure; ``attempts``, ``seconds``: what was tried."""

    def __init__(self, reason: str, attempts: int, seconds: float, maybe_done: bool, lost: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.seconds = seconds
        self.maybe_done = maybe_done
        self.lost = lost


class Transient(Exception):
    """A failure worth retrying: a 5xx, 429, timeout or connection error."""

    def __init__(self, text: str, retry_after: float | None = None, maybe_sent: bool = True) -> None:
        super().__init__(text)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class RetryPolicy:
    min_delay: float = 0.5
    max_delay: float = 30.0
    give_up: float = 0.0  # seconds; 0 = never


def short(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def never_sent(exc: requests.RequestException) -> bool:
    """True when the request surely did not reach the server (the connection could not even be made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", exc.args[0])
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def retry_after(resp: requests.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), None if absent or bad."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def close_session(session: requests.Session) -> None:
    """Close a session and every pooled connection now. urllib3 2 leaves the pools it drops to the garbage
    collector, so a pool still referenced - by a failed call's response in a traceback kept by a log record,
    say - kept its socket open after the client was closed."""
    for adapter in session.adapters.values():
        pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        if pools is not None:
            for key in pools.keys():
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
    session.close()


class HttpApi:
    """One HTTP session with a server, retrying as the module says. Not shared between threads.

    Subclasses set ``log`` (their logger) and ``retry_rate_limited`` (whether a 429 is retried after its
    ``Retry-After``, or returned as a final answer), and may override :meth:`_reason` (the reason an error
    answer gives, for messages) and :meth:`_retrying` (the tail of the first retry's warning)."""

    log: logging.Logger = logging.getLogger("bridge.httpapi")
    retry_rate_limited = False

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        retry: RetryPolicy | None,
        stop: threading.Event | None,
        session: requests.Session | None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.stop = stop or threading.Event()
        self.http = session or requests.Session()
        self.http.headers["User-Agent"] = user_agent
        self.http.headers["Accept"] = "application/json"
        self.calls = 0
        self.retries = 0
        self.rate_limited = 0

    def close(self) -> None:
        close_session(self.http)

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def _reason(self, resp: requests.Response) -> str:
        return short(resp.text)

    def _retrying(self, delay: float) -> str:
        return f"retrying in {delay:.1f} s"

    def _send(
        self,
        method: str,
        url: str,
        where: str,
        server: str,
        *,
        once: bool = False,
        deadline: float | None = None,
        give_up: float | None = None,
        **kwargs: Any,
    ) -> tuple[requests.Response, bool]:
        """Send ``method url`` (``kwargs`` go to ``requests``), retrying transient failures; return the first
        other answer and whether an earlier attempt may have been carried out (``maybe_done``).

        ``where`` (``"GET /path"``) and ``server`` (its root URL) name the call in logs; ``once``: never send
        again a request that may have reached the server; ``deadline`` (``time.monotonic()``): stop retrying
        when the next attempt would start after it; ``give_up``: seconds of retrying (default: the
        policy's). Raises :class:`Stopped` or :class:`GaveUp`."""
        log = self.log
        maybe_done = False
        failures: list[str] = []
        started = time.monotonic()
        give_up = self.retry.give_up if give_up is None else give_up
        backoff = tenacity.wait_exponential(multiplier=self.retry.min_delay, max=self.retry.max_delay)
        jitter = tenacity.wait_random(0, self.retry.min_delay)

        def attempt_once() -> requests.Response:
            nonlocal maybe_done
            self.calls += 1
            try:
                resp = self.http.request(method, url, **kwargs)
            except requests.RequestException as exc:
                sent = not never_sent(exc)
                if sent and method != "GET":
                    maybe_done = True
                raise Transient(f"{type(exc).__name__}: {short(str(exc))}", maybe_sent=sent) from None
            if resp.status_code == 429 and self.retry_rate_limited:
                self.rate_limited += 1
                raise Transient(f"HTTP 429 (rate limited): {self._reason(resp)}", retry_after(resp), False)
            if resp.status_code >= 500:
                if method != "GET":
                    maybe_done = True
                raise Transient(f"HTTP {resp.status_code}: {self._reason(resp)}")
            return resp

        def retry_if(exc: BaseException) -> bool:
            if not isinstance(exc, Transient):
                return False
            return not (once and exc.maybe_sent)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, Transient) and exc.retry_after is not None:
                return min(exc.retry_after, self.retry.max_delay)
            # capped exponential backoff plus jitter
            return backoff(state) + jitter(state)

        def stop_rule(state: tenacity.RetryCallState) -> bool:
            if self.stop.is_set():
                return True
            now = time.monotonic()
            if deadline is not None and now + (state.upcoming_sleep or 0.0) >= deadline:
                return True
            return give_up > 0 and now - started >= give_up

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome is not None else None
            failures.append(str(exc))
            if len(failures) == 1:
                tail = self._retrying(state.upcoming_sleep or 0.0)
                log.warning("%s at %s failed (%s); %s", where, server, redact(str(exc)), tail)
            else:
                log.debug("%s: attempt %d failed (%s)", where, state.attempt_number, redact(str(exc)))

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retry_if),
            wait=wait,
            stop=stop_rule,
            sleep=self._sleep,
            before_sleep=before_sleep,
        )
        try:
            resp = retrying(attempt_once)
        except Transient as exc:  # not retried (``once``): a request whose answer was lost
            raise GaveUp(str(exc), len(failures) + 1, time.monotonic() - started, True, True) from None
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception() if exc.last_attempt is not None else None
            if self.stop.is_set():
                raise Stopped(f"{where}: abandoned, the bridge is stopping") from None
            raise GaveUp(
                str(last), exc.last_attempt.attempt_number, time.monotonic() - started, maybe_done, False
            ) from None
        if failures:
            log.info(
                "%s answered again after %d failed attempt(s) in %.1f s",
                where,
                len(failures),
                time.monotonic() - started,
            )
        return resp, maybe_done

