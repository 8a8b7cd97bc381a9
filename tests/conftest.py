"""Shared fixtures. Keep each fixture small and documented; add new ones below the existing ones."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bridge.leelaz_network import write_network

if TYPE_CHECKING:
    from bridge.adapters.ogs.sandbox import SandboxServer

GNUGO = "/usr/games/gnugo"
FAKE_GTP = Path(__file__).parent / "fakes" / "fake_gtp.py"


@pytest.fixture
def gnugo_command() -> list[str]:
    """GNU Go in GTP mode at level 1 (fast: ~7 ms a 9x9 genmove). Skips the test if GNU Go is missing."""
    if not os.access(GNUGO, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{GNUGO} is not installed: CI must install it (scripts/setup.sh does)")
        pytest.skip(f"{GNUGO} is not installed (apt-get install gnugo)")
    return [GNUGO, "--mode", "gtp", "--level", "1"]


@pytest.fixture
def fake_gtp_command() -> Callable[..., list[str]]:
    """``fake_gtp_command("--hang-on", "genmove")`` -> the command line of the scripted fake GTP engine
    (tests/fakes/fake_gtp.py, a real subprocess; its docstring lists the misbehaviour flags)."""

    def make(*flags: str) -> list[str]:
        return [sys.executable, str(FAKE_GTP), *flags]

    return make


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """The OGS sandbox on a free loopback port, stopped afterwards."""
    from bridge.adapters.ogs.sandbox import SandboxServer

    server = SandboxServer("127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


LEELAZ = "/usr/games/leelaz"


@pytest.fixture(scope="session")
def leelaz_command(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Leela Zero (Debian's leela-zero, 19x19 only) on the CPU with a tiny seeded network
    (bridge/leelaz_network.py): a few visits a move, one thread, fixed seed, never resigns, quiet; time
    management off (0.17's pruning of a tiny search can abort on an assertion in prune_noncontenders). Skips the
    test if it is missing (fails it in CI, where setup installs it)."""
    if not os.access(LEELAZ, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{LEELAZ} is not installed: CI must install it (scripts/setup.sh does)")
        pytest.skip(f"{LEELAZ} is not installed (apt-get install leela-zero)")
    network = write_network(tmp_path_factory.mktemp("leelaz") / "tiny-network.txt")
    return [LEELAZ, "--gtp", "--cpu-only", "--weights", str(network), "--noponder", "--visits", "8",
            "--threads", "1", "--seed", "1", "--resignpct", "0", "--timemanage", "off", "--quiet"]


STOCKFISH = "/usr/games/stockfish"


@pytest.fixture
def stockfish() -> str:
    """Stockfish from Debian. Skips the test if it is missing (fails it in CI, where setup installs it)."""
    if not os.access(STOCKFISH, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{STOCKFISH} is not installed: CI must install it (scripts/setup.sh does)")
        pytest.skip(f"{STOCKFISH} is not installed (apt-get install stockfish)")
    return STOCKFISH


# --- leaks: every test ends every thread, socket and process it started ---------------------------------------
LEAK_GRACE = 5.0  # seconds a test's threads, sockets and processes get to end after its fixtures are torn down

# Threads that may outlive the test that started them, by name prefix, with the reason. Keep this list short.
LONG_LIVED_THREADS: dict[str, str] = {}


def _socket_inodes() -> set[str]:
    """The inodes of this process's open sockets (``socket:[INODE]`` in /proc/self/fd)."""
    out: set[str] = set()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _tcp_address(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # /proc/net/tcp6: four little-endian 32-bit words
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return f"{ip}:{int(port, 16)}"


def _describe_sockets(inodes: set[str]) -> list[str]:
    """``tcp 127.0.0.1:PORT -> 127.0.0.1:PORT`` (or ``listening on``) for each inode, from /proc/net."""
    found: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[9] in inodes:
                local, remote = _tcp_address(cols[1]), _tcp_address(cols[2])
                found[cols[9]] = f"{table} listening on {local}" if cols[3] == "0A" else \
                    f"{table} {local} -> {remote}"
    return [found.get(i, f"socket inode {i} (not TCP)") for i in sorted(inodes)]


def _descendants() -> dict[int, str]:
    """This process's live descendants (zombies excluded): pid -> command line, from /proc/PID/stat's ppid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid ...
        if fields and fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    out: dict[int, str] = {}
    frontier = [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in out:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        out[pid] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    out[pid] = "?"
                frontier.append(pid)
    return out


def _leaks(threads: set[threading.Thread], sockets: set[str], children: dict[int, str]) -> list[str]:
    """What is still alive that was not before the test, after waiting up to LEAK_GRACE for it to end."""
    deadline = time.monotonic() + LEAK_GRACE
    while True:
        gc.collect()  # a socket or a thread's last reference may sit in a cycle
        new_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()
                       and not isinstance(t, threading._DummyThread)  # foreign threads: not ours to join
                       and not t.name.startswith(tuple(LONG_LIVED_THREADS))]
        new_sockets = _socket_inodes() - sockets
        new_children = {pid: cmd for pid, cmd in _descendants().items() if pid not in children}
        if not (new_threads or new_sockets or new_children) or time.monotonic() >= deadline:
            break
        for t in new_threads:
            t.join(min(0.1, max(0.0, deadline - time.monotonic())))
        if not new_threads:
            time.sleep(0.05)
    out = [f"thread {t.name!r} ({'daemon' if t.daemon else 'non-daemon'}, {t.__class__.__name__})"
           for t in new_threads]
    out += [f"socket: {d}" for d in _describe_sockets(new_sockets)]
    out += [f"process {pid}: {cmd}" for pid, cmd in sorted(new_children.items())]
    for pid in new_children:  # end it here, so that it cannot disturb the tests after this one
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return out


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test that leaves a thread, a socket or a child process behind (after its fixtures are torn
    down and LEAK_GRACE has passed), naming each. ``@pytest.mark.leaks_ok(reason)`` exempts a test."""
    threads = set(threading.enumerate())
    sockets = _socket_inodes()
    children = _descendants()
    yield
    if request.node.get_closest_marker("leaks_ok") is not None:
        return
    leaked = _leaks(threads, sockets, children)
    if leaked:
        pytest.fail(f"{request.node.nodeid} left behind: " + "; ".join(leaked), pytrace=False)
