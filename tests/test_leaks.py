"""The leak check of tests/conftest.py (``no_leaks``): it names a leaked thread, socket and child process."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import conftest
import pytest


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "LEAK_GRACE", 0.3)


def _before() -> tuple[set[threading.Thread], set[str], dict[int, str]]:
    return set(threading.enumerate()), conftest._socket_inodes(), conftest._descendants()


def test_a_thread_left_running_is_named(short_grace: None) -> None:
    before = _before()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="leaky-test-thread", daemon=True)
    thread.start()
    try:
        leaked = conftest._leaks(*before)
        assert leaked == ["thread 'leaky-test-thread' (daemon, Thread)"]
    finally:
        release.set()
        thread.join(5)
    assert conftest._leaks(*before) == []  # and once it ends, nothing is reported


def test_a_thread_that_ends_within_the_grace_is_no_leak(short_grace: None) -> None:
    before = _before()
    thread = threading.Thread(target=threading.Event().wait, args=(0.1,), name="short-lived")
    thread.start()
    assert conftest._leaks(*before) == []
    assert not thread.is_alive()


def test_an_open_socket_is_named_with_its_address(short_grace: None) -> None:
    before = _before()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert conftest._leaks(*before) == [f"socket: tcp listening on 127.0.0.1:{port}"]
    assert conftest._leaks(*before) == []


def test_a_child_process_is_named_and_ended(short_grace: None) -> None:
    before = _before()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leaked = conftest._leaks(*before)
        assert len(leaked) == 1 and leaked[0].startswith(f"process {child.pid}: ") and "time.sleep(60)" in leaked[0]
        assert child.wait(5) == -9  # the check ended it, so that it cannot disturb the next tests
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
