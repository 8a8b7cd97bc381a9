"""The systemd watchdog vouches for a daemon whose adapter makes progress, not only for one whose adapter thread is
alive: an adapter blocked for good (a call that never returns, a deadlock) stops the pings, with one ERROR line, so
that systemd restarts the daemon. Progress is seen through the stop event every adapter polls or waits on."""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

import bridge.daemon as daemon_module
from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.events import CheckLine, Host


class ScriptedAdapter:
    """Polls ``stop`` every 20 ms (``mode='poll'``), waits on it long (``'wait'``), or polls a few times and then
    blocks on an event nobody sets until the test releases it (``'stuck'``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.release = threading.Event()

    def run(self, host: Host, stop: threading.Event) -> None:
        if self.mode == "wait":
            stop.wait(30)
            return
        for _ in range(3):
            stop.wait(0.02)
        if self.mode == "stuck":
            self.release.wait(30)  # blocked: no look at ``stop`` any more
        while not stop.is_set():
            stop.wait(0.02)

    def check(self) -> list[CheckLine]:
        return []


def _adapter_started(d: Daemon) -> bool:
    return d.stop_event.thread is not None


def _daemon(tmp_path: Path, adapter: Any) -> Daemon:
    config = load_config_text(f"""
server: {{kind: reconchess, url: "http://127.0.0.1:9", username: bot, password: {{env: UNUSED_PASSWORD}}}}
engine: {{protocol: uci, command: ["/bin/true"]}}
daemon: {{data_dir: {tmp_path}}}
""", "test.yaml")
    return Daemon(config, adapter=adapter)


@pytest.mark.parametrize("mode", ["poll", "wait", "stuck"])
def test_the_watchdog_vouches_only_for_an_adapter_that_makes_progress(
        mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(daemon_module, "ADAPTER_STUCK_AFTER", 0.3)
    adapter = ScriptedAdapter(mode)
    d = _daemon(tmp_path, adapter)
    thread = threading.Thread(target=d._run_adapter, name="adapter", daemon=True)
    d._adapter_thread = thread
    thread.start()
    try:
        time.sleep(0.1)
        assert d.healthy()
        if mode == "stuck":
            wait_for(lambda: not d.healthy(), 5, "the watchdog to stop vouching for a stuck adapter")
            assert thread.is_alive()
            errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            assert len(errors) == 1 and "made no progress for" in errors[0] and "restart" in errors[0], errors
            d.healthy()
            assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1  # said once
            adapter.release.set()
            wait_for(d.healthy, 5, "the watchdog to vouch again once the adapter moves on")
        else:
            deadline = time.monotonic() + 0.8  # well past ADAPTER_STUCK_AFTER
            while time.monotonic() < deadline:
                assert d.healthy(), f"{mode}: an adapter that polls or waits on stop counted as stuck"
                time.sleep(0.05)
    finally:
        adapter.release.set()
        d.stop_event.set()
        thread.join(5)
    assert not thread.is_alive()


@pytest.mark.e2e
def test_the_built_in_adapters_show_their_pulse_while_they_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 sandbox: Any) -> None:
    """The OGS and reconchess adapters, serving their sandboxes with no game: their threads look at the stop event
    at least every few seconds (so ADAPTER_STUCK_AFTER never flags a healthy adapter)."""
    from bridge.adapters.reconchess.sandbox import ReconchessSandbox

    monkeypatch.setenv("OGS_PULSE_KEY", "k" * 24)
    monkeypatch.setenv("RBC_PULSE_PASSWORD", "pulse-password-1")
    sandbox.add_bot("pulse-bot", "k" * 24)
    rbc = ReconchessSandbox().start()
    rbc.add_user("bot", "pulse-password-1")
    configs = {
        "ogs": f"server: {{kind: ogs, url: '{sandbox.url}', username: pulse-bot, api_key: {{env: OGS_PULSE_KEY}}}}\n"
               f"engine: {{command: [/usr/games/gnugo, --mode, gtp]}}\n",
        "reconchess": f"server: {{kind: reconchess, url: '{rbc.url}', username: bot, "
                      f"password: {{env: RBC_PULSE_PASSWORD}}, poll_interval: 0.5}}\n"
                      f"engine: {{protocol: uci, command: [/usr/games/stockfish]}}\n",
    }
    try:
        for kind, text in configs.items():
            d = Daemon(load_config_text(text + f"daemon: {{data_dir: {tmp_path / kind}}}\n", f"{kind}.yaml"))
            d.start()
            try:
                wait_for(partial(_adapter_started, d), 10, f"the {kind} adapter to start")
                worst = 0.0
                deadline = time.monotonic() + 3.0
                while time.monotonic() < deadline:
                    worst = max(worst, d.stop_event.stalled_for(time.monotonic()))
                    assert d.healthy(), kind
                    time.sleep(0.02)
                assert worst < 2.0, f"{kind}: {worst:.2f} s without a look at the stop event"
            finally:
                d.shutdown()
    finally:
        rbc.stop()
