"""`python -m bridge.cli run` as systemd runs it: a real AF_UNIX datagram socket as $NOTIFY_SOCKET, the watchdog,
SIGHUP reloads, credentials from $CREDENTIALS_DIRECTORY; the OGS sandbox over real sockets, real GNU Go."""

from __future__ import annotations

import itertools
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.adapters.ogs.sandbox import SandboxServer

pytestmark = pytest.mark.e2e

BRIDGE = [sys.executable, "-m", "bridge.cli"]
ROOT = Path(__file__).parent.parent


class NotifySocket:
    """What systemd's manager side of sd_notify is: a datagram socket; each message is recorded with its time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: queue.Queue[tuple[float, list[str]]] = queue.Queue()
        self.seen: list[tuple[float, list[str]]] = []
        self._stop = threading.Event()
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._read, name="notify-socket", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.put((time.monotonic(), data.decode().split("\n")))

    def wait_for(self, line: str, timeout: float, *, on_message: Callable[[list[str]], None] | None = None
                 ) -> tuple[float, list[str]]:
        """The next message with a line starting with ``line`` (earlier ones are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line!r} from the daemon within {timeout} s; got {self.seen}")
            try:
                item = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(item)
            if on_message is not None:
                on_message(item[1])
            if any(x.startswith(line) for x in item[1]):
                return item

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


class Output:
    """The daemon's merged stdout/stderr, read by a thread; lines can be waited for."""

    def __init__(self, proc: subprocess.Popen[str], stream: Any = None) -> None:
        self.proc = proc
        self.stream = stream if stream is not None else proc.stdout
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, name="daemon-output", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.stream is not None
        for line in self.stream:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60.0, start: int = 0) -> tuple[int, str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if rx.search(self.lines[i]):
                        return i, self.lines[i]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.thread.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r} (exit {self.proc.poll()}); output:\n"
                                         + "\n".join(self.lines[-40:]))
                self.cond.wait(min(left, 0.2))

    def text(self) -> str:
        with self.cond:
            return "\n".join(self.lines)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], Output]]]:
    procs: list[subprocess.Popen[str]] = []
    streams: list[Any] = []

    def start(config: Path, env: dict[str, str], *, journal: bool = False) -> tuple[subprocess.Popen[str], Output]:
        """``journal``: stderr is a pipe named by $JOURNAL_STREAM, as systemd sets it for a journal stream."""
        full = {k: v for k, v in os.environ.items()
                if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY",
                             "JOURNAL_STREAM")}
        full.update(env)
        if not journal:
            proc = subprocess.Popen([*BRIDGE, "run", str(config)], cwd=ROOT, env=full, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            procs.append(proc)
            return proc, Output(proc)
        r, w = os.pipe()
        st = os.fstat(w)
        full["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        try:
            proc = subprocess.Popen([*BRIDGE, "run", str(config)], cwd=ROOT, env=full, stdout=w, stderr=w, text=True)
        finally:
            os.close(w)
        procs.append(proc)
        stream = os.fdopen(r, encoding="utf-8")
        streams.append(stream)
        return proc, Output(proc, stream)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    for stream in streams:
        stream.close()


def ogs_config(path: Path, url: str, secret: str, *, accept: str = "{}", max_games: int = 2) -> Path:
    path.write_text(f"""\
server:
  kind: ogs
  url: {url}
  username: sd-bot
  api_key: {secret}
  reconnect_min_delay: 0.2
  reconnect_max_delay: 1.0
  accept: {accept}
engine:
  command: [/usr/games/gnugo, --mode, gtp, --level, "1"]
daemon:
  data_dir: {path.parent / 'runs'}
  max_concurrent_games: {max_games}
""")
    return path


def sandbox_connections(sandbox: SandboxServer) -> list[dict[str, Any]]:
    reply: list[dict[str, Any]] = requests.get(f"{sandbox.url}/sandbox/connections", timeout=5).json()
    return reply


@pytest.mark.alone  # the watchdog's pace: pings 0.4-1.0 s apart
def test_ready_after_the_server_is_reached_then_watchdog_pings_and_stopping(
        tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket, gnugo_command: list[str],
        start_daemon: Callable[..., tuple[subprocess.Popen[str], Output]]) -> None:
    """Type=notify: READY=1 only once the bot is authenticated on the server (and its engine answered), STATUS
    lines, WATCHDOG=1 at half of $WATCHDOG_USEC, STOPPING=1 on SIGTERM. The key comes from a systemd credential."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ogs-key").write_text("sd-credential-key-0123\n")
    sandbox.add_bot("sd-bot", "sd-credential-key-0123")
    cfg = ogs_config(tmp_path / "bot.yaml", sandbox.url, "{credential: ogs-key}")
    proc, out = start_daemon(cfg, {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000",
                                   "CREDENTIALS_DIRECTORY": str(creds)})
    _, ready = notify_socket.wait_for("READY=1", timeout=60)
    # when READY=1 arrives the bot is already authenticated on the server, and its bot/config sent
    conns = [c for c in sandbox_connections(sandbox) if c["username"] == "sd-bot"]
    assert conns and conns[0]["authenticated"] and conns[0]["bot_config"], conns
    assert not any("WATCHDOG=1" in m for _, m in notify_socket.seen), notify_socket.seen  # none before READY
    status = [line for line in ready if line.startswith("STATUS=")]
    assert status and "0 game" in status[0], ready
    # then the watchdog: pings about 0.5 s apart (half of WATCHDOG_USEC), each within systemd's 1 s deadline
    times = [notify_socket.wait_for("WATCHDOG=1", timeout=10)[0] for _ in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.4 < g < 1.0 for g in gaps), gaps
    proc.send_signal(signal.SIGTERM)
    notify_socket.wait_for("STOPPING=1", timeout=30)
    assert proc.wait(30) == 0, out.text()[-2000:]
    assert "sd-credential-key-0123" not in out.text()


def _drain(notify_socket: NotifySocket) -> list[list[str]]:
    while not notify_socket.messages.empty():
        notify_socket.seen.append(notify_socket.messages.get())
    return [m for _, m in notify_socket.seen]


def test_no_ready_while_the_server_cannot_be_reached_and_journal_lines(
        tmp_path: Path, notify_socket: NotifySocket, gnugo_command: list[str],
        start_daemon: Callable[..., tuple[subprocess.Popen[str], Output]]) -> None:
    """No READY=1 while the server is down. Its stderr being the journal ($JOURNAL_STREAM), every line has a
    <N> priority prefix and no timestamp of its own."""
    key = tmp_path / "key"
    key.write_text("sd-unreachable-key-99\n")
    cfg = ogs_config(tmp_path / "bot.yaml", "http://127.0.0.1:9", f"{{file: {key}}}")
    proc, out = start_daemon(cfg, {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "600000"},
                             journal=True)
    out.wait_for(r"the engine is ready")
    out.wait_for(r"reconnecting to http://127\.0\.0\.1:9 in")
    out.wait_for(r"reconnecting to http://127\.0\.0\.1:9 in", start=len(out.lines))  # a second failed attempt
    assert not any("READY=1" in m for m in _drain(notify_socket)), notify_socket.seen
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, out.text()[-2000:]
    lines = out.text().splitlines()
    assert "<6>bridge.daemon: bridge daemon starting: server ogs, up to 2 games at once" in lines, lines[:5]
    assert any(re.match(r"<4>bridge\.ogs: cannot connect to http://127\.0\.0\.1:9", line) for line in lines), lines
    assert all(re.match(r"<[0-7]>", line) for line in lines), [x for x in lines if not re.match(r"<[0-7]>", x)]
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in lines), lines[:5]


def test_no_ready_while_the_engine_does_not_work(
        tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket,
        start_daemon: Callable[..., tuple[subprocess.Popen[str], Output]]) -> None:
    key = tmp_path / "key"
    key.write_text("sd-broken-engine-key-1\n")
    sandbox.add_bot("sd-bot", "sd-broken-engine-key-1")
    cfg = ogs_config(tmp_path / "bot.yaml", sandbox.url, f"{{file: {key}}}")
    cfg.write_text(cfg.read_text().replace('[/usr/games/gnugo, --mode, gtp, --level, "1"]', "[/bin/false]"))
    proc, out = start_daemon(cfg, {"NOTIFY_SOCKET": str(notify_socket.path)})
    out.wait_for(r"connected to \S+ as sd-bot")
    _, line = out.wait_for(r"the engine cannot start")
    assert "gamebridge check" in line, line
    notify_socket.wait_for("STATUS=engine cannot start", timeout=10)
    assert not any("READY=1" in m for m in _drain(notify_socket)), notify_socket.seen
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, out.text()[-2000:]


def _challenge(sandbox: SandboxServer, **body: Any) -> dict[str, Any]:
    reply: dict[str, Any] = requests.post(f"{sandbox.url}/sandbox/challenges", json={"target": "sd-bot", **body},
                                          timeout=5).json()
    return reply


def _wait_challenge(sandbox: SandboxServer, cid: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = requests.get(f"{sandbox.url}/sandbox/challenges/{cid}", timeout=5).json()
        if state["state"] != "pending":
            return state
        assert time.monotonic() < deadline, f"challenge {cid} still pending after {timeout} s"
        time.sleep(0.1)  # polling the sandbox's state: it has no push for it


def _game(sandbox: SandboxServer, game_id: int) -> dict[str, Any]:
    reply: dict[str, Any] = requests.get(f"{sandbox.url}/sandbox/games/{game_id}", timeout=5).json()
    return reply


def _wait_moves(sandbox: SandboxServer, game_id: int, at_least: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        game = _game(sandbox, game_id)
        if len(game.get("moves", [])) >= at_least:
            return game
        assert game.get("phase") != "finished", game
        assert time.monotonic() < deadline, f"game {game_id}: fewer than {at_least} moves after {timeout} s"
        time.sleep(0.1)


def test_sighup_reloads_the_policy_refuses_a_broken_file_and_keeps_the_game(
        tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket, gnugo_command: list[str],
        start_daemon: Callable[..., tuple[subprocess.Popen[str], Output]]) -> None:
    key = tmp_path / "key"
    key.write_text("sd-reload-key-4567\n")
    sandbox.add_bot("sd-bot", "sd-reload-key-4567")
    cfg = ogs_config(tmp_path / "bot.yaml", sandbox.url, f"{{file: {key}}}")
    proc, out = start_daemon(cfg, {"NOTIFY_SOCKET": str(notify_socket.path)})
    out.wait_for(r"connected to \S+ as sd-bot")
    # a long game in progress (19x19, the house thinks 0.3 s a move) across both reloads
    game_id = _challenge(sandbox, size=19, challenger={"house": "random", "delay": 0.3})["game_id"]
    _wait_moves(sandbox, game_id, 4)

    # 1. decline_all: true (and a lower game cap, a log level, a go setting); SIGHUP
    ogs_config(cfg, sandbox.url, f"{{file: {key}}}", accept="{decline_all: true}", max_games=3)
    mark = len(out.lines)
    proc.send_signal(signal.SIGHUP)
    _, line = out.wait_for(r"configuration reloaded", start=mark)
    notify_socket.wait_for("RELOADING=1", timeout=10)
    notify_socket.wait_for("READY=1", timeout=10)
    assert "server.accept.decline_all" in line and "daemon.max_concurrent_games" in line, line
    assert proc.poll() is None
    declined = _wait_challenge(sandbox, _challenge(sandbox, size=9)["challenge_id"])
    assert declined["state"] == "rejected", declined

    # 2. a file that no longer validates: refused with the reason, the old configuration kept
    cfg.write_text(cfg.read_text().replace("max_concurrent_games: 3", "max_concurrent_games: -1"))
    mark = len(out.lines)
    proc.send_signal(signal.SIGHUP)
    _, line = out.wait_for(r"reload refused", start=mark)
    assert "daemon.max_concurrent_games" in line and "kept" in line, line
    assert proc.poll() is None
    still = _wait_challenge(sandbox, _challenge(sandbox, size=9)["challenge_id"])
    assert still["state"] == "rejected", still  # decline_all from the last good file still holds

    # 3. the engine command and the server url need a restart: said so, nothing else done
    text = cfg.read_text().replace("max_concurrent_games: -1", "max_concurrent_games: 3")
    cfg.write_text(text.replace('"1"]', '"2"]'))
    mark = len(out.lines)
    proc.send_signal(signal.SIGHUP)
    _, line = out.wait_for(r"configuration reloaded", start=mark)
    assert re.search(r"needs a restart.*engine\.command", line), line
    assert "sd-reload-key-4567" not in out.text()

    # the game in progress kept going through all of it: more moves, then it ends normally
    before = len(_game(sandbox, game_id)["moves"])
    _wait_moves(sandbox, game_id, before + 4)
    requests.post(f"{sandbox.url}/sandbox/games/{game_id}/resign", json={}, timeout=5)
    out.wait_for(rf"game {game_id}: SGF record written")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, out.text()[-3000:]
    assert (tmp_path / "runs" / "records" / f"ogs-{game_id}.sgf").exists(), out.text()[-3000:]


@pytest.mark.parametrize("kind", ["reconchess", "opengames"])
def test_ready_on_the_http_servers_too(kind: str, tmp_path: Path, notify_socket: NotifySocket, stockfish: str,
                                       start_daemon: Callable[..., tuple[subprocess.Popen[str], Output]]) -> None:
    """The reconchess and Open Games adapters announce themselves too: READY=1 after their server answered."""
    sandbox: Any
    if kind == "reconchess":
        from bridge.adapters.reconchess.sandbox import ReconchessSandbox

        sandbox = ReconchessSandbox("127.0.0.1", 0).start()
        sandbox.add_user("sd-bot", "sd-rbc-password-1")
        secret = "sd-rbc-password-1"
        server = (f"  kind: reconchess\n  url: {sandbox.url}\n  username: sd-bot\n  password: {{env: SD_SECRET}}\n"
                  f"  poll_interval: 0.3\n")
        engine = f"  protocol: uci\n  command: [{stockfish}]\n"
        connected = r"connected to reconchess server"
    else:
        from bridge.adapters.opengames.sandbox import OpenGamesSandbox

        sandbox = OpenGamesSandbox(port=0, pairing_interval=0.1, house_delay=0.0, rate_limit=None, seed=1).start()
        secret = sandbox.add_agent("sdbot")["api_key"]
        server = (f"  kind: opengames\n  url: {sandbox.url}\n  agent: sdbot\n  api_key: {{env: SD_SECRET}}\n"
                  f"  poll_interval: 0.2\n")
        engine = f"  protocol: line\n  command: [{sys.executable}, {ROOT / 'scripts' / 'battleship_engine.py'}]\n"
        connected = r"connected to Open Games"
    try:
        cfg = tmp_path / "bot.yaml"
        cfg.write_text(f"server:\n{server}engine:\n{engine}daemon:\n  data_dir: {tmp_path / 'runs'}\n")
        proc, out = start_daemon(cfg, {"NOTIFY_SOCKET": str(notify_socket.path), "SD_SECRET": secret})
        notify_socket.wait_for("READY=1", timeout=60)
        out.wait_for(connected)  # logged before the adapter announces itself
        proc.send_signal(signal.SIGTERM)
        notify_socket.wait_for("STOPPING=1", timeout=30)
        assert proc.wait(30) == 0, out.text()[-2000:]
    finally:
        sandbox.stop()
