"""The contract every registered adapter keeps (README, "Adapter contract"; bridge.events.Adapter):

- a fatal condition (the server refuses the credentials, or a setting it rejects) ends ``gamebridge run`` with
  exit status ``EXIT_FATAL`` (77) and one ERROR line, without a traceback;
- a transient one (the server is down) is retried with capped backoff: the daemon does not exit by itself.

Run over every adapter in ``bridge.registry.adapter_specs()``, each against its own sandbox, as a real daemon
process (``python -m bridge.cli run``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import EXIT_FATAL
from bridge.registry import adapter_specs

ROOT = Path(__file__).parent.parent
WRONG = "wrong-secret-" + "5f" * 8  # never registered on any sandbox
STAYS_UP = 6.0  # seconds a daemon facing a dead server must keep retrying


@contextmanager
def _reconchess() -> Iterator[str]:
    from bridge.adapters.reconchess.sandbox import ReconchessSandbox

    with ReconchessSandbox() as server:
        server.add_user("contract-bot", "the-right-password")
        yield server.url


@contextmanager
def _opengames() -> Iterator[str]:
    from bridge.adapters.opengames.sandbox import OpenGamesSandbox

    server = OpenGamesSandbox().start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def _ogs() -> Iterator[str]:
    from bridge.adapters.ogs.sandbox import SandboxServer

    server = SandboxServer().start()
    try:
        server.add_bot("contract-bot", "the-right-key")
        yield server.url
    finally:
        server.stop()


def _server_section(kind: str, url: str) -> str:
    sections = {
        "reconchess": f"  kind: reconchess\n  url: {url}\n  username: contract-bot\n"
                      f"  password: {{env: CONTRACT_SECRET}}\n  retry_max_delay: 1\n",
        "opengames": f"  kind: opengames\n  url: {url}\n  agent: contract-bot\n  api_key: {{env: CONTRACT_SECRET}}\n"
                     f"  retry_max_delay: 1\n",
        "ogs": f"  kind: ogs\n  url: {url}\n  username: contract-bot\n  api_key: {{env: CONTRACT_SECRET}}\n"
               f"  reconnect_min_delay: 0.2\n  reconnect_max_delay: 1.0\n",
    }
    return sections[kind]


SANDBOXES: dict[str, Callable[[], Any]] = {"reconchess": _reconchess, "opengames": _opengames, "ogs": _ogs}
ENGINES = {"ogs": ("gtp", "[/usr/games/gnugo, --mode, gtp]"), "reconchess": ("uci", "[/usr/games/stockfish]"),
           "opengames": ("line", f"[{sys.executable}, scripts/battleship_engine.py]")}
SECRETS = {"reconchess": WRONG, "opengames": "og_" + "ab" * 32, "ogs": WRONG}


def test_every_registered_adapter_is_covered() -> None:
    assert set(adapter_specs()) == set(SANDBOXES) == set(ENGINES), "add the new adapter to this contract test"


def _config(tmp_path: Path, kind: str, url: str) -> Path:
    protocol, command = ENGINES[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(f"server:\n{_server_section(kind, url)}engine:\n  protocol: {protocol}\n  command: {command}\n"
                    f"daemon:\n  data_dir: {tmp_path / 'runs'}\n")
    return path


def _start(tmp_path: Path, kind: str, url: str) -> subprocess.Popen[str]:
    env = dict(os.environ, CONTRACT_SECRET=SECRETS[kind], PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", str(_config(tmp_path, kind, url))],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on (bound then released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.e2e
@pytest.mark.parametrize("kind", sorted(SANDBOXES))
def test_refused_credentials_end_the_daemon_with_the_fatal_status_and_one_line(tmp_path: Path, kind: str) -> None:
    with SANDBOXES[kind]() as url:
        daemon = _start(tmp_path, kind, url)
        try:
            out, err = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.communicate()
    assert daemon.returncode == EXIT_FATAL, (daemon.returncode, err[-3000:])
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert "refused" in errors[0] and f"exit status {EXIT_FATAL}" in errors[0], errors[0]
    assert SECRETS[kind] not in out + err


@pytest.mark.e2e
@pytest.mark.parametrize("kind", sorted(SANDBOXES))
def test_a_server_that_is_down_is_retried_and_the_daemon_stays_up(tmp_path: Path, kind: str) -> None:
    daemon = _start(tmp_path, kind, _dead_url())
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            daemon.wait(timeout=STAYS_UP)  # still retrying after STAYS_UP seconds
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, err[-3000:]
    assert "Traceback" not in out + err
    assert not [line for line in err.splitlines() if " ERROR " in line]
