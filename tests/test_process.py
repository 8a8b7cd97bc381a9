"""EngineProcess and Transcript against real subprocesses (the scripted fake GTP engine and GNU Go)."""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import wait_for

from bridge.engines.process import EngineProcess
from bridge.errors import BridgeError, EngineError, EngineTerminatedError, EngineTimeoutError
from bridge.redact import register_secret
from bridge.transcript import Transcript

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (\S+) (>>|<<|!!|##)( .*)?$")
FakeCmd = Callable[..., list[str]]


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after "pid (comm)": state, ppid, pgrp, ... ([] once the process is reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2:].split()


def _running(pid: int | str) -> bool:
    """Alive and not a zombie: a killed orphan is dead once it is a zombie, whenever init gets to reap it."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def group_gone(pgid: int, within: float = 3.0) -> bool:
    """True once no process of the group runs (zombies waiting for init to reap them count as gone)."""
    def members() -> list[str]:
        return [e for e in os.listdir("/proc") if e.isdigit() and _running(e) and _stat(e)[2:3] == [str(pgid)]]

    wait_for(lambda: not members(), within, f"process group {pgid} to end", step=0.05)
    return True


def pid_gone(pid: int, within: float = 3.0) -> bool:
    wait_for(lambda: not _running(pid), within, f"process {pid} to end", step=0.05)
    return True


@pytest.fixture
def spawn() -> Iterator[Callable[..., EngineProcess]]:
    """Start EngineProcesses; every one is stopped (quickly) at teardown."""
    started: list[EngineProcess] = []

    def make(command: list[str], **kw: object) -> EngineProcess:
        kw.setdefault("name", "fake")
        p = EngineProcess(command, **kw)  # type: ignore[arg-type]
        p.start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop(grace=0.2)


# --- Transcript ------------------------------------------------------------------------------------
def test_transcript_lines_are_stamped_named_redacted_and_flushed(tmp_path: Path) -> None:
    register_secret("sk-transcript-Secret-42")
    path = tmp_path / "games" / "g1.txt"  # the folder is created
    t = Transcript(path)
    t.write(">>", "3 genmove b", "gnugo")
    t.write("<<", "=3 D4\nsecond line", "gnugo")
    t.write("!!", "api key is sk-transcript-Secret-42", "gnugo")
    t.note("restart after timeout")
    t.write("<<", "", "gnugo")
    # flushed at once: readable before close
    lines = path.read_text().splitlines()
    assert len(lines) == 6
    assert all(LINE.match(x) for x in lines), lines
    assert lines[0].endswith(" gnugo >> 3 genmove b")
    assert lines[1].endswith(" gnugo << =3 D4") and lines[2].endswith(" gnugo << second line")
    assert "sk-transcript-Secret-42" not in path.read_text() and lines[3].endswith("!! api key is ***")
    assert lines[4].endswith(" bridge ## restart after timeout")
    assert lines[5].endswith(" gnugo <<")
    with pytest.raises(ValueError):
        t.write("->", "bad direction")
    t.close()
    t.write(">>", "after close is dropped")
    t.close()  # idempotent
    assert len(path.read_text().splitlines()) == 6


def test_transcript_none_discards_and_context_manager(tmp_path: Path) -> None:
    with Transcript(None) as t:
        t.write(">>", "nothing")
        assert not t.enabled
    with Transcript(tmp_path / "t.txt") as t2:
        t2.note("hello")
        assert t2.enabled
    assert "hello" in (tmp_path / "t.txt").read_text()


def test_transcript_threads_never_interleave(tmp_path: Path) -> None:
    t = Transcript(tmp_path / "t.txt")

    def writer(k: int) -> None:
        for i in range(300):
            t.write("<<", f"thread {k} line {i} " + "y" * 500, f"engine{k}")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.close()
    lines = (tmp_path / "t.txt").read_text().splitlines()
    assert len(lines) == 1800
    for line in lines:
        m = LINE.match(line)
        assert m and m.group(1) == "engine" + line.split(" thread ")[1].split()[0]


def test_transcript_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BridgeError, match=r"cannot open the transcript file .*file/t\.txt"):
        Transcript(tmp_path / "file" / "t.txt")


# --- start-up errors --------------------------------------------------------------------------------
def test_missing_binary_names_the_command_and_the_fix() -> None:
    p = EngineProcess(["/no/such/dir/gnugo", "--mode", "gtp"], name="gnugo")
    with pytest.raises(EngineError, match=r"/no/such/dir/gnugo.*not found.*full path"):
        p.start()
    assert not p.alive and p.pid is None
    p.stop()  # a no-op, never raises


def test_permission_denied_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "engine.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    with pytest.raises(EngineError, match=r"permission denied.*chmod \+x"):
        EngineProcess([str(script)], name="e").start()


def test_missing_cwd_and_empty_command(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"working directory .* does not exist"):
        EngineProcess(["/bin/cat"], name="e", cwd=tmp_path / "nope").start()
    with pytest.raises(EngineError, match="command is empty"):
        EngineProcess([], name="e").start()


# --- I/O --------------------------------------------------------------------------------------------
def test_lines_each_way_with_cwd_and_env(spawn: Callable[..., EngineProcess], tmp_path: Path) -> None:
    code = "import os,sys\nfor l in sys.stdin: print(os.getcwd(), os.environ['FAKE_X'], l.strip(), flush=True)"
    p = spawn([sys.executable, "-c", code], cwd=tmp_path, env={"FAKE_X": "42"})
    assert p.alive and p.pid is not None and p.pgid == p.pid
    assert os.getpgid(p.pid) == p.pid and os.getsid(p.pid) == p.pid  # own session and group
    p.send_line("hello")
    assert p.read_line(5.0) == f"{tmp_path} 42 hello"
    with pytest.raises(EngineError, match="line break"):
        p.send_line("two\nlines")


def test_read_timeout_is_bounded(spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd) -> None:
    p = spawn(fake_gtp_command("--hang-on", "name"))
    p.send_line("1 name")
    t0 = time.monotonic()
    with pytest.raises(EngineTimeoutError, match=r"wrote nothing within 0\.3 s"):
        p.read_line(0.3)
    assert 0.29 <= time.monotonic() - t0 < 1.0
    assert p.alive


def test_crash_reports_exit_code_and_stderr(spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd) -> None:
    p = spawn(fake_gtp_command("--crash-on", "name", "--exit-code", "7"))
    p.send_line("1 name")
    with pytest.raises(EngineTerminatedError, match=r"exited with code 7.*fake: crashing on name"):
        p.read_line(5.0)
    with pytest.raises(EngineTerminatedError):  # stays terminated
        p.read_line(5.0)
    assert p.returncode == 7 and not p.alive
    with pytest.raises(EngineTerminatedError, match="exited with code 7"):
        for _ in range(100):  # the first writes may land in the pipe buffer before EPIPE shows
            p.send_line("2 name")


def test_stderr_goes_to_callback_log_and_transcript_not_stdout(
    spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[str] = []
    t = Transcript(tmp_path / "t.txt")
    caplog.set_level("DEBUG", logger="bridge.engine")  # the engine loggers take its level
    p = spawn(fake_gtp_command("--stderr-on", "name", "--stderr-lines", "MAIN: hello",
                               "--stderr-lines", "DISCUSSION: hi there"), on_stderr=got.append, transcript=t)
    p.send_line("1 name")
    assert p.read_line(5.0) == "=1 FakeGTP"
    assert p.read_line(5.0) == ""
    assert wait_for(lambda: len(got) == 2)
    assert got == ["MAIN: hello", "DISCUSSION: hi there"]
    assert p.stderr_tail() == got and p.stderr_tail(1) == ["DISCUSSION: hi there"]
    with pytest.raises(EngineTimeoutError):
        p.read_line(0.1)  # nothing else on stdout
    text = (tmp_path / "t.txt").read_text()
    assert " fake !! MAIN: hello" in text and " fake !! DISCUSSION: hi there" in text
    assert "<< MAIN" not in text and " fake >> 1 name" in text and " fake << =1 FakeGTP" in text
    assert any("stderr: MAIN: hello" in r.getMessage() for r in caplog.records)


def test_failing_stderr_callback_does_not_stop_capture(
    spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd
) -> None:
    seen: list[str] = []

    def bad(line: str) -> None:
        seen.append(line)
        raise RuntimeError("callback bug")

    p = spawn(fake_gtp_command("--stderr-on", "name", "--stderr-lines", "a", "--stderr-lines", "b"), on_stderr=bad)
    p.send_line("1 name")
    assert p.read_line(5.0) == "=1 FakeGTP"
    assert wait_for(lambda: seen == ["a", "b"])


def test_long_lines_are_not_truncated(spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd) -> None:
    p = spawn(fake_gtp_command())
    p.send_line("1 fake-big 300000")
    assert p.read_line(5.0) == "=1 " + "x" * 300000


def test_a_line_without_end_is_a_failed_read_not_unbounded_memory(spawn: Callable[..., EngineProcess]) -> None:
    """A broken engine writes 40 MB without a line break (then a line). It was all kept in memory, waiting for
    the newline (a flood of hundreds of MB took the daemon and every game with it, under the unit's MemoryMax).
    Past MAX_LINE_BYTES the read fails with one clear error (the engine is treated as failed), what was held is
    let go, the rest of that line is skipped, and the next line reads as usual. KataGo's longest analysis lines
    (a few hundred KB) stay far below the limit."""
    from bridge.engines.process import MAX_LINE_BYTES

    code = ("import sys\nsys.stdin.readline()\nsys.stdout.buffer.write(b'x' * 40_000_000 + b'\\n= after\\n')\n"
            "sys.stdout.flush()\nsys.stdin.readline()")
    p = spawn([sys.executable, "-c", code])
    assert MAX_LINE_BYTES <= 16 * 1024 * 1024
    p.send_line("go")
    with pytest.raises(EngineError, match=r"engine fake \(pid \d+\) wrote more than 16 MB without a line break"):
        p.read_line(20.0)
    assert len(p._partial) <= MAX_LINE_BYTES  # what the process holds in memory
    assert p.read_line(20.0) == "= after"


def test_a_stderr_line_without_end_is_cut(spawn: Callable[..., EngineProcess], tmp_path: Path) -> None:
    """The same on stderr (forwarded to the chat, the transcript, the error messages' tail): a 20 MB line is cut
    at MAX_STDERR_CHARS and said to be; the lines after it are read as usual."""
    from bridge.engines.process import MAX_STDERR_CHARS

    got: list[str] = []
    code = ("import sys\nsys.stderr.write('y' * 20_000_000 + '\\nnext line\\n')\nsys.stderr.flush()\n"
            "sys.stdin.readline()")
    p = spawn([sys.executable, "-c", code], on_stderr=got.append)
    assert wait_for(lambda: len(got) == 2, 20)
    assert got[0] == "y" * MAX_STDERR_CHARS + f" [line cut at {MAX_STDERR_CHARS} characters]"
    assert got[1] == "next line"
    assert p.stderr_tail() == got


# --- stopping ---------------------------------------------------------------------------------------
def test_stop_after_quit_is_clean(
    spawn: Callable[..., EngineProcess], gnugo_command: list[str], tmp_path: Path
) -> None:
    t = Transcript(tmp_path / "t.txt")
    p = spawn(gnugo_command, name="gnugo", transcript=t)
    pgid = p.pgid
    assert pgid is not None
    t0 = time.monotonic()
    p.stop()
    assert time.monotonic() - t0 < 1.0
    assert p.returncode == 0 and not p.alive
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    text = t.path.read_text() if t.path else ""
    assert " gnugo >> quit" in text and "exited after quit, it exited with code 0" in text


def test_stop_escalates_to_sigterm(spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd) -> None:
    p = spawn(fake_gtp_command("--ignore-quit"))
    t0 = time.monotonic()
    p.stop(grace=0.3)
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert p.returncode == -signal.SIGTERM


def test_stop_kills_an_engine_that_ignores_quit_and_sigterm(
    spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd, tmp_path: Path
) -> None:
    t = Transcript(tmp_path / "t.txt")
    p = spawn(fake_gtp_command("--ignore-quit", "--ignore-sigterm"), transcript=t)
    p.send_line("1 name")  # an answer means the fake is in its command loop: its SIGTERM handler is installed
    assert p.read_line(10.0).startswith("=1")
    pgid = p.pgid
    assert pgid is not None
    t0 = time.monotonic()
    p.stop(grace=0.3)
    elapsed = time.monotonic() - t0
    assert 0.6 <= elapsed < 2.5, elapsed
    assert p.returncode == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert "killed with SIGKILL" in (tmp_path / "t.txt").read_text()


def test_stop_kills_the_whole_group_including_children(
    spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    p = spawn(fake_gtp_command("--spawn-child", "--print-pid", str(pidfile)))
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text() != "")
    child = int(pidfile.read_text())
    assert os.getpgid(child) == p.pgid
    pgid = p.pgid
    assert pgid is not None
    p.stop(grace=0.3)  # the fake exits on quit; its child does not, until the group is signalled
    assert p.returncode == 0
    assert pid_gone(child) and group_gone(pgid)


def test_stop_is_idempotent_and_concurrent(spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd) -> None:
    p = spawn(fake_gtp_command("--ignore-quit"))
    threads = [threading.Thread(target=p.stop, kwargs={"grace": 0.2}) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=5)
    assert not any(th.is_alive() for th in threads)
    assert p.returncode == -signal.SIGTERM
    p.stop()
    with pytest.raises(EngineTerminatedError):
        p.send_line("1 name")


def test_stop_does_not_block_on_an_engine_that_stopped_reading(
    spawn: Callable[..., EngineProcess], fake_gtp_command: FakeCmd
) -> None:
    p = spawn(fake_gtp_command("--hang-on", "name"))
    p.send_line("1 name")
    errors: list[BaseException] = []

    def flood() -> None:  # fills the pipe until the write blocks
        try:
            for _ in range(10000):
                p.send_line("2 play b " + "A1 " * 3000)
        except BaseException as exc:
            errors.append(exc)

    th = threading.Thread(target=flood)
    th.start()
    time.sleep(0.5)
    assert th.is_alive()  # blocked writing
    t0 = time.monotonic()
    p.stop(grace=0.2)
    assert time.monotonic() - t0 < 4.0
    th.join(timeout=5)
    assert not th.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], EngineTerminatedError)


def test_engine_is_stopped_at_interpreter_exit(fake_gtp_command: FakeCmd, tmp_path: Path) -> None:
    # the fake ignores quit and end-of-file: only the atexit hook's SIGTERM can end it
    script = textwrap.dedent(f"""
        from bridge.engines.process import EngineProcess
        p = EngineProcess({fake_gtp_command("--ignore-quit")!r}, name="fake")
        p.start()
        print(p.pid, flush=True)
        keep = p  # still referenced at exit: the atexit hook must stop it
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[0])
    assert pid_gone(pid), "the engine outlived the interpreter"


def test_abandoned_engine_is_killed_when_collected(fake_gtp_command: FakeCmd) -> None:
    p = EngineProcess(fake_gtp_command("--ignore-quit"), name="fake")
    p.start()
    pid = p.pid
    assert pid is not None
    del p
    gc.collect()
    assert pid_gone(pid), "an engine dropped without stop() kept running"


@pytest.mark.parametrize("protocol", ["pipes", "uci"])
def test_an_engine_dies_with_a_daemon_killed_by_sigkill(tmp_path: Path, protocol: str) -> None:
    """A daemon killed with SIGKILL cannot stop its engines; an engine that never reads end-of-file (hung, or
    searching) must not outlive it all the same (PR_SET_PDEATHSIG)."""
    pidfile = tmp_path / "engine.pid"
    engine = tmp_path / "engine.py"
    # answers the UCI handshake, then ignores its stdin for good, as a hung engine does
    engine.write_text(
        "import os, sys, time\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "for line in sys.stdin:\n"
        "    if line.strip() == 'uci':\n"
        "        print('id name deaf'); print('uciok', flush=True)\n"
        "    elif line.strip() == 'isready':\n"
        "        print('readyok', flush=True)\n"
        "        break\n"
        "os.close(0)\n"
        "time.sleep(120)\n")
    if protocol == "pipes":
        body = ("from bridge.engines.process import EngineProcess\n"
                f"p = EngineProcess([sys.executable, {str(engine)!r}], name='deaf')\n"
                "p.start()\n")
    else:
        body = ("from bridge.config import EngineConfig\nfrom bridge.engines.uci import UciEngine\n"
                f"cfg = EngineConfig(protocol='uci', command=[sys.executable, {str(engine)!r}])\n"
                "e = UciEngine(cfg, name='deaf')\n")
    script = "import sys, time\n" + body + "print('started', flush=True)\ntime.sleep(120)\n"
    daemon = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        assert daemon.stdout is not None and daemon.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(pidfile.read_text())
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        assert not _alive(pid), f"the engine (pid {pid}) outlived its daemon killed with SIGKILL"
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        if pidfile.exists() and _alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- stdout read on the caller's thread -------------------------------------------------------------------
def test_a_late_answer_and_last_words_reach_the_transcript_at_stop(
        spawn: Callable[..., EngineProcess], tmp_path: Path) -> None:
    """Nobody reads stdout after a timed-out read: what the engine wrote since is read into the transcript when it
    is stopped, partial last line included."""
    code = ("import sys,time\nfor l in sys.stdin:\n    time.sleep(0.3)\n"
            "    sys.stdout.write('late ' + l.strip() + '\\nlast words'); sys.stdout.flush(); time.sleep(30)")
    transcript = Transcript(tmp_path / "t.txt")
    p = spawn([sys.executable, "-c", code], transcript=transcript)
    p.send_line("answer")
    with pytest.raises(EngineTimeoutError):
        p.read_line(0.05)
    time.sleep(0.5)  # the engine writes its late answer meanwhile; nobody reads it
    p.stop(grace=0.2)
    transcript.close()
    read = [line.split(" << ", 1)[1] for line in (tmp_path / "t.txt").read_text().splitlines() if " << " in line]
    assert read == ["late answer", "last words"]


def test_lines_split_over_writes_and_crlf(spawn: Callable[..., EngineProcess]) -> None:
    code = ("import sys,time\nsys.stdout.buffer.write(b'= par'); sys.stdout.flush(); time.sleep(0.2)\n"
            "sys.stdout.buffer.write(b't one\\r\\n\\xff two\\nthree\\n'); sys.stdout.flush(); time.sleep(30)")
    p = spawn([sys.executable, "-c", code])
    assert [p.read_line(5.0) for _ in range(3)] == ["= part one", "\ufffd two", "three"]
    with pytest.raises(EngineTimeoutError):
        p.read_line(0.05)


def test_a_reader_waiting_forever_ends_when_the_engine_is_stopped(
        spawn: Callable[..., EngineProcess]) -> None:
    """The KataGo analysis reader waits with no limit on its own thread; stop() from another thread ends it."""
    p = spawn([sys.executable, "-c", "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                     "time.sleep(60)"])
    outcome: list[BaseException] = []

    def reader() -> None:
        try:
            p.read_line(None)
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    p.stop(grace=0.2)
    t.join(5.0)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], EngineTerminatedError)
    assert "the bridge is stopping it" in str(outcome[0])


def test_readers_on_two_threads_take_turns(spawn: Callable[..., EngineProcess]) -> None:
    code = "import sys\nfor l in sys.stdin: print(l.strip(), flush=True)"
    p = spawn([sys.executable, "-c", code])
    got: list[str] = []
    lock = threading.Lock()

    def reader() -> None:
        for _ in range(100):
            line = p.read_line(10.0)
            with lock:
                got.append(line)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    p.send_lines([f"line {i}" for i in range(200)])
    for t in threads:
        t.join(15.0)
    assert sorted(got, key=lambda s: int(s.split()[1])) == [f"line {i}" for i in range(200)]


def test_transcript_stamps_are_local_time_to_the_millisecond(tmp_path: Path) -> None:
    """The stamp's date and time are formatted once a second and cached: each line still gets its own time."""
    from datetime import datetime, timedelta
    t = Transcript(tmp_path / "t.txt")
    stamps: list[tuple[datetime, datetime, datetime]] = []
    for _ in range(5):
        before = datetime.now()
        t.write("<<", "x")
        after = datetime.now()
        t.flush()
        last = (tmp_path / "t.txt").read_text().splitlines()[-1]
        stamps.append((before, datetime.fromisoformat(last.split()[0]), after))
        time.sleep(0.3)  # crosses at least one second boundary over the loop
    t.close()
    for before, stamp, after in stamps:
        assert before - timedelta(milliseconds=1) <= stamp <= after
    assert len({s.second for _, s, _ in stamps}) >= 2


def test_redact_replaces_the_longer_secret_first() -> None:
    from bridge.redact import redact
    register_secret("abcd1234")
    register_secret("xxabcd1234yy")
    assert redact("key xxabcd1234yy and abcd1234") == "key *** and ***"


def test_an_engine_named_after_its_game_leaves_no_logger_behind(fake_gtp_command: FakeCmd,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """scripts/endurance.py saw the daemon's memory climb ~2 KB a game: each game's engine took a logger named
    after it (``bridge.engine.ogs-GAME``), and Python's logging keeps every named logger for the life of the process.
    Engine loggers are now the engine's own (not registered); they still log under their name, at the level and
    through the handlers of ``bridge.engine``."""
    import gc
    import logging

    registry = logging.Logger.manager.loggerDict
    caplog.set_level("DEBUG", logger="bridge.engine")
    for i in range(3):
        p = EngineProcess(fake_gtp_command(), name=f"leak-check-{i}")
        p.start()
        p.stop()
        del p
    gc.collect()
    assert not [n for n in registry if "leak-check" in n], sorted(n for n in registry if n.startswith("bridge."))
    started = [r for r in caplog.records if r.name.startswith("bridge.engine.leak-check-") and "started pid" in
               r.getMessage()]
    assert [r.name for r in started] == [f"bridge.engine.leak-check-{i}" for i in range(3)]
    caplog.clear()
    logging.getLogger("bridge.engine").setLevel(logging.WARNING)  # a reload's new level holds for a live engine
    p = EngineProcess(fake_gtp_command(), name="leak-check-level")
    p.log.debug("not shown")
    logging.getLogger("bridge.engine").setLevel(logging.DEBUG)
    p.log.debug("shown")
    assert [r.getMessage() for r in caplog.records if r.name == "bridge.engine.leak-check-level"] == ["shown"]
