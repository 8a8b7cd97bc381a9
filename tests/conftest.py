"""Shared fixtures. Keep each fixture small and documented; add new ones below the existing ones."""

from __future__ import annotations

import gc
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest
from helpers import children_of, gone_or_zombie

from bridge.leelaz_network import write_network
from bridge.transcript import Transcript

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from procnet import tcp_sockets  # scripts/ is not a package

if TYPE_CHECKING:
    from bridge.adapters.ogs.sandbox import SandboxServer
    from bridge.daemon import Daemon

GNUGO = "/usr/games/gnugo"
FAKE_GTP = Path(__file__).parent / "fakes" / "fake_gtp.py"
CHECKOUT = Path(__file__).resolve().parent.parent

# The processes the tests start (`python -m bridge.cli`, the scripts) import this checkout's package, wherever they
# run: in a git worktree that shares another checkout's .venv, the editable install would give them that checkout's.
os.environ["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])])


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


@pytest.fixture
def ogs_bot(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Daemon]]:
    """``ogs_bot(username, command, server=..., engine=..., go=..., daemon=...)`` -> a started daemon
    (bridge.daemon.Daemon) that plays on the ``sandbox`` as a new bot ``username`` with the engine ``command``, its
    data in tmp_path/username; the keywords add to its config (tests/helpers.py ``ogs_config_text``). Every daemon
    it started is shut down afterwards."""
    from helpers import ogs_config_text

    from bridge.config import load_config_text
    from bridge.daemon import Daemon

    daemons: list[Daemon] = []

    def start(username: str, command: list[str], **sections: Any) -> Daemon:
        key = secrets.token_hex(12)
        sandbox.add_bot(username, key)
        env = f"TEST_KEY_{username.upper().replace('-', '_')}"
        monkeypatch.setenv(env, key)
        text = ogs_config_text(sandbox.url, username, env, command, tmp_path / username, **sections)
        d = Daemon(load_config_text(text, f"<{username}>"))
        daemons.append(d)
        d.start()
        return d

    yield start
    for d in daemons:
        d.shutdown()


class _HasPlayer(Protocol):
    def player(self, *, name: str, transcript: Transcript, on_stderr: Any) -> Any: ...


@pytest.fixture
def game_player(tmp_path: Path) -> Iterator[Callable[[Any, str], Any]]:
    """``game_player(manager, name)`` -> ``manager.player(...)`` for one game named ``name`` (a shared engine
    manager: the pool, the KataGo analysis engine), its transcript in tmp_path/NAME.log, closed afterwards."""
    transcripts: list[Transcript] = []

    def make(manager: _HasPlayer, name: str) -> Any:
        t = Transcript(tmp_path / f"{name}.log")
        transcripts.append(t)
        return manager.player(name=name, transcript=t, on_stderr=None)

    yield make
    for t in transcripts:
        t.close()


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


def _describe_sockets(inodes: set[str]) -> list[str]:
    """``tcp 127.0.0.1:PORT -> 127.0.0.1:PORT`` (or ``listening on``) for each inode, from /proc/net."""
    if not inodes:  # the usual case: no need to read the tables (thousands of rows after a few hundred tests)
        return []
    table = tcp_sockets()
    out = []
    for i in sorted(inodes):
        t = table.get(i)
        if t is None:
            out.append(f"socket inode {i} (not TCP)")
        elif t.listening:
            out.append(f"{t.table} listening on {t.local}")
        else:
            out.append(f"{t.table} {t.local} -> {t.remote}")
    return out


PROC_CHILDREN = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")  # CONFIG_PROC_CHILDREN


def _parents_from_stat() -> dict[int, int]:
    """Every process's parent, from /proc/PID/stat (where /proc/PID/task/TID/children is missing)."""
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
        if len(fields) > 1:
            parents[int(entry)] = int(fields[1])
    return parents


def _descendants() -> dict[int, str]:
    """This process's live descendants (zombies excluded): pid -> command line."""
    parents = None if PROC_CHILDREN else _parents_from_stat()
    out: dict[int, str] = {}
    frontier = [os.getpid()]
    while frontier:
        parent = frontier.pop()
        kids = children_of(parent) if parents is None else [p for p, pp in parents.items() if pp == parent]
        for pid in kids:
            if pid in out:
                continue
            frontier.append(pid)  # a zombie's children are still ours to find
            if gone_or_zombie(pid):
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out[pid] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                out[pid] = "?"
    return out


def _leaks(threads: set[threading.Thread], sockets: set[str], children: dict[int, str]) -> list[str]:
    """What is still alive that was not before the test, after waiting up to LEAK_GRACE for it to end."""
    deadline = time.monotonic() + LEAK_GRACE
    collect = False  # a full collection costs ~50 ms: only once something is left over
    while True:
        if collect:
            gc.collect()  # a socket or a thread's last reference may sit in a cycle
        new_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()
                       and not isinstance(t, threading._DummyThread)  # foreign threads: not ours to join
                       and not t.name.startswith(tuple(LONG_LIVED_THREADS))]
        new_sockets = _socket_inodes() - sockets
        new_children = {pid: cmd for pid, cmd in _descendants().items() if pid not in children}
        if not (new_threads or new_sockets or new_children) or time.monotonic() >= deadline:
            break
        if not collect:
            collect = True
            continue  # look again after a collection
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


# --- e2e: what the fast subset (-m "not e2e") leaves out ----------------------------------------------------------
# A test is e2e when it runs a real engine (GNU Go, Stockfish, Leela Zero, the reference Battleship engine), starts
# a whole daemon (bridge.daemon.Daemon, in this process or as `gamebridge`), or plays games through a sandbox end
# to end. Tests that ask for a real engine's fixture are marked here; whole files of e2e tests carry a module-level
# ``pytestmark = pytest.mark.e2e``; and a test that is not marked but starts an engine or a daemon anyway fails
# (e2e_guard), naming what it started, so that a new e2e test cannot land in the fast subset unnoticed.
E2E_FIXTURES = frozenset({
    "gnugo_command", "stockfish", "leelaz_command",  # real engines (this file)
    "ogs_bot",  # a whole daemon (this file)
    "make_daemon", "make_bot", "run_bridge", "start_daemon", "start_gtp2ogs",  # whole daemons (their test files)
})
REAL_ENGINE_MARKS = ("/usr/games/", "battleship_engine.py", "bridge.cli", "bin/gamebridge")


FAST_WORKERS = 6  # the fast subset mostly waits (timeouts, backoffs, clocks): 6 workers suit even 2 cores


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``-m "not e2e"`` alone runs the fast subset on FAST_WORKERS pytest-xdist workers (when xdist is installed
    and no ``-n`` was given; ``--dist worksteal``): ~50 s instead of ~130 s on a 2-core machine. The whole suite
    and the e2e tests run in one process, in file order, as before; ``-n 0`` or ``-p no:xdist`` keeps the fast
    subset in one too."""
    if (config.getoption("markexpr", "") == "not e2e" and config.pluginmanager.hasplugin("xdist")
            and config.getoption("numprocesses", None) is None and not config.getoption("collectonly")
            and "PYTEST_XDIST_WORKER" not in os.environ):
        config.option.numprocesses = FAST_WORKERS
        if config.getoption("dist", "no") in ("no", "load"):
            config.option.dist = "worksteal"  # an idle worker takes queued tests from a busy one: no long tail


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    if "PYTEST_XDIST_WORKER" in os.environ:
        # The tests marked `long` first (every worker collects the same order; xdist hands the first ones out one
        # per worker): a two-minute test that starts last holds the run's end while the other workers sit idle.
        items.sort(key=lambda item: item.get_closest_marker("long") is None)


def _e2e_reason(argv: list[Any]) -> str | None:
    """What makes running ``argv`` an e2e step (a real engine or the bridge's own command), or None. A script the
    command runs is read too: a shell wrapper that execs GNU Go counts as GNU Go."""
    words = [str(a) for a in argv]
    for word in words[:4]:
        if any(mark in word for mark in REAL_ENGINE_MARKS):
            return " ".join(words)
        if word.endswith((".sh", ".py")) and os.path.isfile(word):
            try:
                text = Path(word).read_text(errors="replace")[:20_000]
            except OSError:
                continue
            if any(mark in text for mark in REAL_ENGINE_MARKS):
                return f"{' '.join(words)} (which runs a real engine or the bridge)"
    return None


@pytest.fixture(autouse=True)
def e2e_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails a test that is not marked e2e but starts a real engine, the bridge's command or a whole daemon."""
    if request.node.get_closest_marker("e2e") is not None:
        yield
        return
    from bridge.daemon import Daemon

    started: list[str] = []
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    daemon_start = Daemon.start

    def spy_execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> Any:
        why = _e2e_reason([args] if isinstance(args, str | bytes | os.PathLike) else list(args))
        if why is not None:
            started.append(f"process {why}")
        return execute_child(self, args, *rest, **kw)

    def spy_daemon_start(self: Daemon) -> None:
        started.append("a whole daemon (bridge.daemon.Daemon)")
        daemon_start(self)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", spy_execute_child)
    monkeypatch.setattr(Daemon, "start", spy_daemon_start)
    yield
    if started:
        pytest.fail(f"{request.node.nodeid} is not marked e2e but started " + "; ".join(dict.fromkeys(started))
                    + ": mark it @pytest.mark.e2e (or the module: pytestmark = pytest.mark.e2e)", pytrace=False)


@pytest.fixture
def player_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make(command, **engine_keys)``: a GoPlayer over that engine command with its own transcript; every one
    made is closed (engine and transcript) afterwards."""
    from bridge.config import EngineConfig
    from bridge.games.go import GoPlayer

    made: list[GoPlayer] = []

    def make(command: list[str], **kw: object) -> GoPlayer:
        cfg = EngineConfig(command=command, **kw)
        p = GoPlayer(cfg, name="test", transcript=Transcript(tmp_path / f"t{len(made)}.log"))
        made.append(p)
        return p

    yield make
    for p in made:
        p.close(hung=True)  # an engine a test left hung is stopped at once, not after engine.quit_grace
        p.transcript.close()
