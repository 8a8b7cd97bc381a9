"""OGS REST client: transient failures are retried with backoff (Retry-After honoured), final ones are not,
and the API key never appears in an error. Against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bridge.adapters.ogs import api
from bridge.adapters.ogs.api import OgsRest, RestError


class Script:
    """Answers to give, in order (status, headers); the last one repeats."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str]]] = [(200, {})]
        self.calls: list[tuple[float, str]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            script.calls.append((time.monotonic(), body))
            status, headers = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            payload = json.dumps({"ok": status == 200}).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # a short poll: shutdown() waits for the loop's next look (0.5 s by default, at every test's end)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_server_errors_are_retried_then_succeed(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(502, {}), (500, {}), (200, {})]
    rest = OgsRest(url, timeout=5)
    rest.use_apikey("secret-api-key-777", 42)
    assert rest.accept_challenge(7) == {"ok": True}
    assert len(script.calls) == 3
    assert "apikey=secret-api-key-777" in script.calls[-1][1] and "bot_id=42" in script.calls[-1][1]


def test_rate_limit_honours_retry_after(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(429, {"Retry-After": "1"}), (200, {})]
    rest = OgsRest(url, timeout=5)
    rest.accept_challenge(7)
    (t0, _), (t1, _) = script.calls
    assert t1 - t0 >= 0.95


def test_client_errors_are_final_and_never_show_the_key(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(403, {})]
    rest = OgsRest(url, timeout=5)
    rest.use_apikey("secret-api-key-888", 42)
    with pytest.raises(RestError) as info:
        rest.accept_challenge(7)
    assert info.value.status == 403 and len(script.calls) == 1
    assert "secret-api-key-888" not in str(info.value)


def test_no_answer_is_retried_a_bounded_number_of_times(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "RETRY_ATTEMPTS", 2)
    rest = OgsRest("http://127.0.0.1:9", timeout=2)
    started = time.monotonic()
    with pytest.raises(RestError) as info:
        rest.accept_challenge(7)
    assert info.value.status == 0 and "failed" in str(info.value)
    assert time.monotonic() - started < api.RETRY_MAX_SECONDS


def test_a_challenge_is_sent_once_even_when_the_server_fails(server: tuple[str, Script]) -> None:
    """A 5xx to the create call may come after the server made the challenge: it is not retried (issue 11: a
    lost answer never makes a second challenge; the adapter settles it from the list of its challenges)."""
    url, script = server
    script.answers = [(502, {}), (200, {})]
    rest = OgsRest(url, timeout=5)
    rest.use_apikey("secret-api-key-777", 42)
    body = {"challenger_color": "white", "game": {"width": 9, "height": 9}}
    with pytest.raises(RestError) as err:
        rest.challenge_player(1001, body)
    assert err.value.status == 502
    assert len(script.calls) == 1
    sent = json.loads(script.calls[0][1])
    assert sent["game"] == {"width": 9, "height": 9} and sent["bot_id"] == 42
    rest.close()
