"""GtpStyleChannel and GtpEngine against real GNU Go and the scripted fake GTP engine (real subprocesses)."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import wait_for

from bridge.engines.framing import GtpStyleChannel, Reply
from bridge.engines.gtp import REQUIRED_COMMANDS, GtpEngine
from bridge.engines.process import EngineProcess
from bridge.errors import (
    EngineError,
    EngineRefusedError,
    EngineTerminatedError,
    EngineTimeoutError,
)
from bridge.games.gotypes import parse_gtp_vertex
from bridge.redact import register_secret
from bridge.transcript import Transcript

FakeCmd = Callable[..., list[str]]
Starter = Callable[..., GtpEngine]


def processes_with(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``marker``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(entry))
    return pids


@pytest.fixture
def start() -> Iterator[Starter]:
    """GtpEngine.start with teardown: every engine is closed and its process group must be gone."""
    engines: list[GtpEngine] = []

    def make(command: list[str], **kw: object) -> GtpEngine:
        kw.setdefault("quit_grace", 0.3)
        kw.setdefault("startup_timeout", 10.0)
        e = GtpEngine.start(command, **kw)  # type: ignore[arg-type]
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.close()
        assert not e.alive


@pytest.fixture
def gnugo(start: Starter, gnugo_command: list[str], tmp_path: Path) -> GtpEngine:
    return start(gnugo_command, name="gnugo", transcript=Transcript(tmp_path / "gnugo.txt"))


# --- GNU Go -----------------------------------------------------------------------------------------
def test_gnugo_handshake_and_listing(gnugo: GtpEngine) -> None:
    assert gnugo.engine_name == "GNU Go"
    assert re.fullmatch(r"3\.\d+(\.\d+)?", gnugo.engine_version)
    assert gnugo.protocol_version == "2"
    assert REQUIRED_COMMANDS <= gnugo.commands
    assert gnugo.supports("showboard") and gnugo.supports("final_status_list")
    assert not gnugo.supports("kata-set-rules") and not gnugo.supports("kgs-time_settings")
    assert gnugo.broken is None and gnugo.alive


def test_gnugo_plays_a_9x9_move(gnugo: GtpEngine) -> None:
    assert gnugo.command("boardsize", "9") == ""
    gnugo.command("clear_board")
    gnugo.command("komi", "6.5")
    gnugo.command("play", "b", "E5")
    t0 = time.monotonic()
    answer = gnugo.genmove("white", timeout=10.0)
    assert time.monotonic() - t0 < 5.0
    assert answer == answer.lower()
    move = parse_gtp_vertex(answer, 9, 9)
    assert move is not None and move != (4, 4)  # a vertex on the board, not the occupied E5


def test_gnugo_multiline_showboard(gnugo: GtpEngine) -> None:
    gnugo.command("boardsize", "9")
    gnugo.command("clear_board")
    gnugo.command("play", "black", "C3")
    board = gnugo.command("showboard").splitlines()
    assert board[0].split() == list("ABCDEFGHJ")
    assert len(board) == 11 and all(row.split()[0] == str(9 - i) for i, row in enumerate(board[1:10]))
    assert board[7].split()[3] == "X"  # row 3, column C


def test_gnugo_refusal_is_distinct_and_leaves_the_engine_usable(gnugo: GtpEngine) -> None:
    gnugo.command("boardsize", "9")
    gnugo.command("play", "b", "E5")
    with pytest.raises(EngineRefusedError) as info:
        gnugo.command("play", "w", "E5")
    assert info.value.command == "play w E5" and info.value.reply == "illegal move"
    assert not isinstance(info.value, (EngineTimeoutError, EngineTerminatedError))
    with pytest.raises(EngineRefusedError):
        gnugo.command("boardsize", "99")
    assert gnugo.broken is None
    assert gnugo.command("name") == "GNU Go"


def test_unlisted_command_is_never_sent(gnugo: GtpEngine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"does not support 'kata-set-rules'") as info:
        gnugo.command("kata-set-rules", "chinese")
    assert not isinstance(info.value, EngineRefusedError)
    with pytest.raises(EngineError, match="not a GTP command name"):
        gnugo.command("play b")
    assert gnugo.command("name") == "GNU Go"  # the engine is fine
    text = (tmp_path / "gnugo.txt").read_text()
    assert "kata-set-rules" not in text and "play b" not in text


def test_transcript_has_every_line_each_way_with_ids(gnugo: GtpEngine, tmp_path: Path) -> None:
    gnugo.command("boardsize", "9")
    gnugo.genmove("b", timeout=10.0)
    gnugo.close()
    lines = (tmp_path / "gnugo.txt").read_text().splitlines()
    body = [x.split(" ", 1)[1].rstrip() for x in lines]  # without the timestamp (GNU Go ends "= " with a space)
    assert body[0].startswith("gnugo ## started pid ")
    assert body[1:7] == ["gnugo >> 1 protocol_version", "gnugo << =1 2", "gnugo <<",
                         "gnugo >> 2 name", "gnugo << =2 GNU Go", "gnugo <<"]
    assert "gnugo >> 5 boardsize 9" in body and "gnugo << =5" in body
    assert "gnugo >> 6 genmove b" in body and any(b.startswith("gnugo << =6 ") for b in body)
    assert "gnugo >> quit" in body and body[-1].startswith("gnugo ## stopped pid ")


def test_process_group_is_gone_after_close(start: Starter, gnugo_command: list[str]) -> None:
    e = start(gnugo_command)
    pgid = e.pid
    assert pgid is not None and os.getpgid(pgid) == pgid
    t0 = time.monotonic()
    e.close()
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    e.close()  # idempotent
    assert e.broken is not None
    with pytest.raises(EngineError):
        e.command("name")


def test_round_trip_of_name(gnugo: GtpEngine) -> None:
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        assert gnugo.command("name") == "GNU Go"
    mean_ms = (time.perf_counter() - t0) / n * 1000
    print(f"mean GTP round trip of `name` on GNU Go over {n} calls: {mean_ms:.3f} ms")
    assert mean_ms < 20.0


# --- misbehaving engines (the scripted fake) --------------------------------------------------------
def test_hung_engine_times_out_and_the_channel_refuses_more(start: Starter, fake_gtp_command: FakeCmd,
                                                            tmp_path: Path) -> None:
    log = tmp_path / "received.txt"
    e = start(fake_gtp_command("--hang-on", "genmove", "--log", str(log)))
    t0 = time.monotonic()
    with pytest.raises(EngineTimeoutError, match=r"did not answer '5 genmove b' within 0\.5 s"):
        e.genmove("b", timeout=0.5)
    assert 0.5 <= time.monotonic() - t0 < 1.2
    assert e.broken is not None and "did not answer" in e.broken
    with pytest.raises(EngineError, match="restart the engine"):
        e.command("name")
    assert log.read_text().splitlines()[-1] == "5 genmove b"  # nothing more was sent
    t0 = time.monotonic()
    e.close()  # the hung fake never reads quit: SIGTERM ends it
    assert time.monotonic() - t0 < 2.0


def test_crash_is_terminated_error_with_exit_code(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command("--crash-on", "genmove", "--exit-code", "7"))
    with pytest.raises(EngineTerminatedError, match=r"exited with code 7.*fake: crashing on genmove.*5 genmove b"):
        e.genmove("b", timeout=5.0)
    assert not e.alive and e.broken is not None


def test_garbage_reply_is_a_protocol_error(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command("--garbage-on", "genmove"))
    with pytest.raises(EngineError, match="'this is not gtp', which is not a GTP reply") as info:
        e.genmove("b", timeout=5.0)
    assert type(info.value) is EngineError
    assert e.broken is not None


def test_mismatched_id_is_a_protocol_error(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command("--wrong-id-on", "komi"))
    with pytest.raises(EngineError, match=r"with id 105.*out of step"):
        e.command("komi", "6.5")


def test_crlf_no_ids_and_blank_lines_are_tolerated(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command("--crlf", "--no-ids", "--blank-before", "--moves", "Q16,PASS,Resign"))
    assert e.engine_name == "FakeGTP" and e.supports("showboard")
    assert e.command("showboard") == "   A B C\n 3 . . . 3\n 2 . X . 2"
    assert [e.genmove("b", 5.0) for _ in range(3)] == ["q16", "pass", "resign"]


def test_big_reply_is_not_truncated(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command())
    assert e.command("fake-big", "150000") == "x" * 150000


def test_missing_list_commands_falls_back_to_the_required_set(
    start: Starter, fake_gtp_command: FakeCmd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    e = start(fake_gtp_command("--refuse", "list_commands"))
    assert e.commands == REQUIRED_COMMANDS
    assert any("no list_commands" in r.getMessage() for r in caplog.records)
    with pytest.raises(EngineError, match="does not support 'showboard'"):
        e.command("showboard")
    assert e.genmove("w", 5.0) == "d4"


def test_unlisted_command_never_reaches_the_fake(start: Starter, fake_gtp_command: FakeCmd, tmp_path: Path) -> None:
    log = tmp_path / "received.txt"
    listed = ",".join(sorted(REQUIRED_COMMANDS))
    e = start(fake_gtp_command("--list", listed, "--log", str(log)))
    assert not e.supports("showboard")
    with pytest.raises(EngineError, match="does not support 'showboard'"):
        e.command("showboard")
    e.command("name")
    e.close()
    received = log.read_text().splitlines()
    # ids 1-4 were the handshake: id 5 is the next request, nothing was numbered for showboard
    assert received[-2:] == ["5 name", "quit"] and not any("showboard" in x for x in received)


def test_stderr_reaches_the_callback_and_transcript_not_the_reply(
    start: Starter, fake_gtp_command: FakeCmd, tmp_path: Path
) -> None:
    got: list[str] = []
    t = Transcript(tmp_path / "t.txt")
    e = start(fake_gtp_command("--stderr-lines", "MAIN: hello", "--stderr-lines", "MALKOVICH: thinking"),
              name="fake", on_stderr=got.append, transcript=t)
    assert e.genmove("b", 5.0) == "d4"
    wait_for(lambda: len(got) >= 2, 3, "both stderr lines")
    assert got == ["MAIN: hello", "MALKOVICH: thinking"]
    assert e.stderr_tail() == got
    text = (tmp_path / "t.txt").read_text()
    assert "fake !! MAIN: hello" in text and "<< MAIN" not in text


def test_engine_ignoring_sigterm_is_killed_in_bounded_time(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command("--ignore-quit", "--ignore-sigterm"), quit_grace=0.3)
    pgid = e.pid
    assert pgid is not None
    t0 = time.monotonic()
    e.close()
    assert time.monotonic() - t0 < 2.5
    assert e.process.returncode == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def test_close_from_another_thread_interrupts_a_genmove(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command("--hang-on", "genmove"))
    timer = threading.Timer(0.3, e.close)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(EngineTerminatedError, match="the bridge is stopping it"):
        e.genmove("b", timeout=20.0)
    assert time.monotonic() - t0 < 3.0
    timer.join()


def test_secret_never_appears_in_the_transcript(start: Starter, fake_gtp_command: FakeCmd, tmp_path: Path) -> None:
    secret = "tok-" + uuid.uuid4().hex
    register_secret(secret)
    t = Transcript(tmp_path / "t.txt")
    e = start(fake_gtp_command("--name", secret, "--stderr-on", "fake-echo", "--stderr-lines", f"key={secret}"),
              transcript=t)
    assert e.engine_name == secret  # the caller gets the real answer...
    assert e.command("fake-echo", "my", secret) == f"my {secret}"
    e.close()
    text = (tmp_path / "t.txt").read_text()
    assert secret not in text  # ...the transcript never holds it
    assert "<< =2 ***" in text and ">> 5 fake-echo my ***" in text and "key=***" in text


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match=r"/opt/nowhere/katago.*not found"):
        GtpEngine.start(["/opt/nowhere/katago", "gtp"], name="katago")


def test_slow_start_fails_the_handshake_and_stops_the_process(fake_gtp_command: FakeCmd) -> None:
    marker = "marker-" + uuid.uuid4().hex
    t0 = time.monotonic()
    with pytest.raises(EngineTimeoutError, match=r"failed its GTP start-up handshake.*1 protocol_version"):
        GtpEngine.start(fake_gtp_command("--slow-start", "30", "--name", marker), startup_timeout=0.5,
                        quit_grace=0.2)
    assert time.monotonic() - t0 < 2.5
    assert processes_with(marker) == []


def test_handshake_crash_reports_stderr(fake_gtp_command: FakeCmd) -> None:
    with pytest.raises(EngineTerminatedError, match=r"handshake.*exited with code 3.*crashing on protocol_version"):
        GtpEngine.start(fake_gtp_command("--crash-on", "protocol_version"))


def test_a_program_that_is_not_a_gtp_engine(tmp_path: Path) -> None:
    marker = "marker-" + uuid.uuid4().hex
    code = f"import sys  # {marker}\nprint('Welcome! Type a move:', flush=True)\nsys.stdin.read()"
    with pytest.raises(EngineError, match=r"'Welcome! Type a move:', which is not a GTP reply.*gnugo --mode gtp"):
        GtpEngine.start([sys.executable, "-c", code], startup_timeout=5.0)
    assert processes_with(marker) == []


def test_genmove_checks_color_and_answer(start: Starter, fake_gtp_command: FakeCmd) -> None:
    e = start(fake_gtp_command("--moves", "D4 E5"))  # two words: not a move
    with pytest.raises(ValueError, match="color"):
        e.genmove("red", 5.0)
    with pytest.raises(EngineError, match="not a vertex"):
        e.genmove("B", 5.0)


def test_context_manager_closes(gnugo_command: list[str]) -> None:
    with GtpEngine.start(gnugo_command, name="gnugo") as e:
        assert e.command("name") == "GNU Go"
    assert not e.alive and e.process.returncode == 0


# --- the framing on its own (reused by the Battleship line protocol) -------------------------------
def test_channel_ids_increase_and_failures_come_back_as_replies(fake_gtp_command: FakeCmd) -> None:
    p = EngineProcess(fake_gtp_command("--refuse", "komi"), name="fake")
    p.start()
    ch = GtpStyleChannel(p, first_id=10)
    try:
        assert ch.request("name", 5.0) == Reply(ok=True, id=10, text="FakeGTP")
        assert ch.request("komi 7", 5.0) == Reply(ok=False, id=11, text="refused by fake")
        assert ch.request("  version ", None) == Reply(ok=True, id=12, text="1.0")
        with pytest.raises(EngineError, match="one non-empty line"):
            ch.request("name\nversion", 5.0)
        assert ch.broken is None
    finally:
        ch.close(grace=0.2)
    assert ch.broken is not None and not p.alive
