"""Unit tests of the systemd pieces: sd_notify datagrams (path and abstract sockets), the watchdog and journal
variables, journal-style log lines, the rotated log file, secrets from $CREDENTIALS_DIRECTORY, the reload plan and
the resizable slot pool. (The daemon under a real notify socket: tests/test_daemon_systemd.py.)"""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_config_text, resolve_secrets
from bridge.errors import ConfigError

ROOT = Path(__file__).parent.parent


def _config(extra_daemon: str = "", secret: str = "{credential: ogs-key}", accept: str = "{}",
            url: str = "http://127.0.0.1:9") -> Any:
    return load_config_text(f"""\
server:
  kind: ogs
  url: {url}
  username: bot
  api_key: {secret}
  accept: {accept}
engine:
  command: [/usr/games/gnugo, --mode, gtp]
daemon:
  max_concurrent_games: 2
{extra_daemon}""", "test.yaml")


# --- secrets from systemd credentials ------------------------------------------------------------------------
def test_a_credential_is_read_from_the_credentials_directory_and_redacted(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.redact import redact

    (tmp_path / "ogs-key").write_text("cred-secret-value-123\nsecond line ignored\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    secrets = resolve_secrets(_config())
    assert secrets["server.api_key"].get_secret_value() == "cred-secret-value-123"
    assert redact("key=cred-secret-value-123") == "key=***"


def test_a_credential_outside_systemd_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError) as err:
        resolve_secrets(_config())
    msg = str(err.value)
    assert msg.startswith("server.api_key: credential 'ogs-key'"), msg
    assert "not running under systemd with LoadCredential=ogs-key:PATH" in msg and "\n" not in msg


def test_a_missing_credential_names_the_unit_line_to_add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match=r"no credential 'ogs-key' in \$CREDENTIALS_DIRECTORY .*"
                                          r"add LoadCredential=ogs-key:PATH"):
        resolve_secrets(_config())
    (tmp_path / "ogs-key").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_secrets(_config())


@pytest.mark.parametrize("secret,error", [
    ("{credential: ../etc/shadow}", "is not a credential name"),
    ("{credential: k, env: X}", "give exactly one of"),
    ("notinline", "never written inline"),
])
def test_bad_credential_references_are_config_errors(secret: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        _config(secret=secret)


@pytest.mark.e2e
def test_run_with_a_credential_but_no_credentials_directory_is_one_line_and_exit_78(tmp_path: Path) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text("server:\n  kind: ogs\n  url: http://127.0.0.1:9\n  username: bot\n"
                   "  api_key: {credential: ogs-key}\nengine:\n  command: [/usr/games/gnugo, --mode, gtp]\n"
                   f"daemon:\n  data_dir: {tmp_path / 'runs'}\n")
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    p = subprocess.run([sys.executable, "-m", "bridge.cli", "run", str(cfg)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 78, p.stdout + p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not running under systemd with LoadCredential=ogs-key" in lines[0], lines


# --- the log file: rotated by the daemon, or reopened after logrotate -------------------------------------------
@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_the_log_file_is_rotated_by_size_with_the_configured_backups(tmp_path: Path, restore_logging: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.logsetup import setup_logging

    cfg = _config(f"  log_file: {tmp_path / 'daemon.log'}\n  log_max_bytes: 2000\n  log_backups: 2\n")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    d = cfg.daemon
    setup_logging(d.log_level, d.log_file, max_bytes=d.log_max_bytes, backups=d.log_backups, journal=False)
    log = logging.getLogger("bridge.test")
    for i in range(300):
        log.info("line %03d of a long run %s", i, "x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["daemon.log", "daemon.log.1", "daemon.log.2"], files
    assert all((tmp_path / f).stat().st_size <= 2000 for f in files)
    assert "line 299" in (tmp_path / "daemon.log").read_text()


def test_without_a_size_the_log_file_is_reopened_after_logrotate_moves_it(tmp_path: Path, restore_logging: None,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.logsetup import setup_logging

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    path = tmp_path / "daemon.log"
    setup_logging("INFO", path, max_bytes=0, journal=False)
    log = logging.getLogger("bridge.test")
    log.info("before the rotation")
    path.rename(tmp_path / "daemon.log.1")  # what logrotate does (without copytruncate)
    log.info("after the rotation")
    assert "after the rotation" in path.read_text()
    assert "after" not in (tmp_path / "daemon.log.1").read_text()


# --- journal lines ---------------------------------------------------------------------------------------------
def test_journal_lines_carry_priorities_and_no_timestamp(restore_logging: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.logsetup import setup_logging
    from bridge.redact import register_secret

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    setup_logging("DEBUG", journal=True)
    register_secret("journal-secret-77")
    log = logging.getLogger("bridge.test")
    log.debug("d")
    log.info("i with journal-secret-77")
    log.warning("w")
    log.error("e")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("crash")
    lines = err.getvalue().splitlines()
    assert lines[:4] == ["<7>bridge.test: d", "<6>bridge.test: i with ***", "<4>bridge.test: w",
                         "<3>bridge.test: e"], lines
    assert lines[4] == "<3>bridge.test: crash" and len(lines) > 6
    assert all(line.startswith("<3>") for line in lines[4:]), lines[4:]  # the traceback keeps its priority


def test_stderr_is_the_journal_only_when_journal_stream_names_it(tmp_path: Path) -> None:
    from bridge.systemd import stderr_is_journal

    with open(tmp_path / "f", "w") as f:
        st = os.fstat(f.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fd=f.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, fd=f.fileno())
        assert not stderr_is_journal({}, fd=f.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"}, fd=f.fileno())


# --- sd_notify -------------------------------------------------------------------------------------------------
def _recv(sock: socket.socket) -> list[str]:
    sock.settimeout(5)
    return sock.recv(4096).decode().split("\n")


def test_notify_to_a_path_socket_and_the_variables_are_not_inherited(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from bridge.systemd import Notifier

    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "n.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    try:
        n = Notifier()
        assert n.watchdog == 5.0
        assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ  # engines won't get them
        assert n.ready("serving") and _recv(server) == ["READY=1", "STATUS=serving"]
        assert n.reloading()
        msg = _recv(server)
        assert msg[0] == "RELOADING=1" and msg[1].startswith("MONOTONIC_USEC=") and int(msg[1].split("=")[1]) > 0
        assert n.ping() and _recv(server) == ["WATCHDOG=1"]
        assert n.stopping() and _recv(server) == ["STOPPING=1"]
        server.close()
        with caplog.at_level(logging.WARNING, logger="bridge.systemd"):
            assert not n.ping() and not n.ping()
        # the socket's name, although the variable is gone (it said "its socket"), once, and what follows
        [said] = [r.getMessage() for r in caplog.records if "cannot notify systemd" in r.getMessage()]
        assert f"cannot notify systemd through {tmp_path / 'n.sock'} (" in said, said
        assert "systemd then restarts the daemon" in said and "NotifyAccess=main" in said
        n.close()
    finally:
        server.close()


def test_notify_to_an_abstract_socket() -> None:
    from bridge.systemd import Notifier

    name = f"bridge-test-{os.getpid()}-{threading.get_ident()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.enabled and n.status("3 games") and _recv(server) == ["STATUS=3 games"]
        n.close()
    finally:
        server.close()


def test_without_systemd_notifying_does_nothing(tmp_path: Path) -> None:
    from bridge.systemd import Notifier, watchdog_interval

    n = Notifier({})
    assert not n.enabled and not n.ready() and n.watchdog is None
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not gone.ping()  # one warning, no exception
    gone.close()
    assert watchdog_interval({"WATCHDOG_USEC": "2000000"}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None  # another process's
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


# --- the reload plan -------------------------------------------------------------------------------------------
class _Reconfigurable:
    reloadable_server_keys = frozenset({"accept"})

    def reconfigure(self, config: Any) -> None:
        pass


def test_the_reload_plan_applies_live_keys_and_names_restart_keys(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.reload import plan_reload

    (tmp_path / "ogs-key").write_text("old-secret-value-1\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    old = _config()
    old_secrets = resolve_secrets(old)
    (tmp_path / "ogs-key").write_text("new-secret-value-2\n")
    new = _config("  max_concurrent_games: 5\n  log_level: DEBUG\n  data_dir: elsewhere\n",
                  accept="{decline_all: true}", url="http://127.0.0.1:10").model_copy(
        update={"engine": old.engine.model_copy(update={"command": ["/usr/games/gnugo", "--level", "2"]})})
    new_secrets = resolve_secrets(new)
    plan = plan_reload(old, new, old_secrets, new_secrets, _Reconfigurable())
    assert plan.applied == ["daemon.log_level", "daemon.max_concurrent_games", "server.accept.decline_all"]
    assert plan.restart == ["daemon.data_dir", "engine.command", "server.url", "server.api_key (the secret's value)"]
    assert plan.logging_changed
    c = plan.config
    assert c.server.accept.decline_all and c.server.url == old.server.url  # the server connection is kept
    assert c.daemon.max_concurrent_games == 5 and c.daemon.data_dir == old.daemon.data_dir
    assert c.engine.command == old.engine.command
    text = plan.describe()
    assert "secret-value" not in text and "needs a restart" in text
    # an adapter that cannot reconfigure: server.accept needs a restart too
    plain = plan_reload(old, new, old_secrets, new_secrets, object())
    assert "server.accept.decline_all" in plain.restart and not plain.config.server.accept.decline_all
    assert plan_reload(old, old, old_secrets, old_secrets).describe() == "nothing changed"


def test_the_slot_pool_grows_and_shrinks_without_taking_slots_from_games() -> None:
    from bridge.daemon import ResizableSlotPool

    stop = threading.Event()
    pool = ResizableSlotPool(2)
    assert pool.acquire(stop) and pool.acquire(stop)
    got = threading.Event()

    def third() -> None:
        if pool.acquire(stop):
            got.set()

    t = threading.Thread(target=third)
    t.start()
    assert not got.wait(0.3)  # full
    pool.resize(3)  # a reload raises the cap: the waiter gets its slot at once
    assert got.wait(5)
    t.join()
    pool.resize(1)  # lowered below what is in use: nothing is taken back; new games wait
    pool.release()
    pool.release()
    late = threading.Thread(target=third)
    got.clear()
    late.start()
    assert not got.wait(0.3)  # 1 in use, cap 1
    pool.release()
    assert got.wait(5)
    late.join()
    stop.set()


@pytest.mark.e2e
def test_a_config_error_in_the_journal_has_the_error_priority(tmp_path: Path) -> None:
    """Under systemd the one line of a configuration error reaches the journal as an error (`journalctl -p err`)."""
    cfg = tmp_path / "bot.yaml"
    cfg.write_text("server:\n  kind: ogs\n  username: bot\n  api_key: {env: SD_UNSET_VARIABLE}\n"
                   "engine:\n  command: [/usr/games/gnugo, --mode, gtp]\n")
    r, w = os.pipe()
    st = os.fstat(w)
    env = {k: v for k, v in os.environ.items() if k != "SD_UNSET_VARIABLE"}
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    try:
        p = subprocess.run([sys.executable, "-m", "bridge.cli", "run", str(cfg)], cwd=ROOT, env=env, stderr=w,
                           stdout=subprocess.DEVNULL, timeout=60)
    finally:
        os.close(w)
    with os.fdopen(r, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert p.returncode == 78
    assert len(lines) == 1 and lines[0].startswith("<3>bridge: configuration error: server.api_key:"), lines
