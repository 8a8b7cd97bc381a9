"""The UCI driver (bridge/engines/uci.py) against real Stockfish and small scripted UCI engines (real subprocesses)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import chess
import pytest
from helpers import wait_for

from bridge.config import EngineConfig
from bridge.engines.uci import UciEngine
from bridge.errors import EngineError
from bridge.transcript import Transcript

FAKE_UCI = Path(__file__).parent / "fakes" / "fake_uci.py"  # scripted: hang, garbage or normal on "go"


@pytest.fixture
def fake_uci() -> Callable[[str], list[str]]:
    return lambda mode: [sys.executable, str(FAKE_UCI), mode]


@pytest.fixture
def transcript(tmp_path: Path) -> Iterator[Transcript]:
    t = Transcript(tmp_path / "uci.log")
    yield t
    t.close()


@pytest.fixture
def engines() -> Iterator[list[UciEngine]]:
    """Engines made by a test; closed afterwards whatever happened."""
    made: list[UciEngine] = []
    yield made
    for e in made:
        e.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _cfg(command: list[str], **kw: object) -> EngineConfig:
    return EngineConfig.model_validate({"protocol": "uci", "command": command, **kw})


def test_options_applied_and_lines_in_transcript(stockfish: str, transcript: Transcript,
                                                 engines: list[UciEngine]) -> None:
    engine = UciEngine(_cfg([stockfish], options={"Threads": 1, "Hash": 8}), name="sf", transcript=transcript)
    engines.append(engine)
    assert engine.engine_name.startswith("Stockfish")
    infos = engine.analyse(chess.Board(), seconds=0.02, multipv=2)
    assert len(infos) == 2
    assert all(info["pv"][0] in chess.Board().legal_moves for info in infos)
    move = engine.play(chess.Board("7k/8/8/8/8/8/8/K6R w - - 0 1"), seconds=0.05)
    assert move == chess.Move.from_uci("h1h8") or move is not None
    engine.close()
    text = transcript.path.read_text() if transcript.path else ""
    assert " sf >> setoption name Hash value 8" in text
    assert " sf << uciok" in text  # the handshake, logged before the engine object existed
    assert " sf >> go movetime 20" in text
    assert " sf << bestmove " in text
    assert " sf << info depth" not in text  # info lines only on request


def test_info_lines_on_request(stockfish: str, transcript: Transcript, engines: list[UciEngine]) -> None:
    engine = UciEngine(_cfg([stockfish]), name="sf", transcript=transcript, info_lines=True)
    engines.append(engine)
    engine.analyse(chess.Board(), seconds=0.02)
    engine.close()
    assert " sf << info depth" in (transcript.path.read_text() if transcript.path else "")


def test_unknown_option_lists_the_valid_ones(stockfish: str) -> None:
    with pytest.raises(EngineError) as err:
        UciEngine(_cfg([stockfish], options={"Thread": 2}), name="sf")
    message = str(err.value)
    assert "'Thread'" in message and "engine.options" in message
    assert "Threads" in message and "Hash" in message  # what it offers


def test_bad_option_value_is_one_clear_error(stockfish: str) -> None:
    with pytest.raises(EngineError, match=r"engine\.options"):
        UciEngine(_cfg([stockfish], options={"Hash": "lots"}), name="sf")


def test_not_a_uci_engine(tmp_path: Path) -> None:
    script = tmp_path / "mute.py"
    script.write_text("import sys\nfor line in sys.stdin:\n    pass\n")
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"handshake within 0\.5 s"):
        UciEngine(_cfg([sys.executable, str(script)], startup_timeout=0.5), name="mute")
    # the 0.5 s limit, not the default 20 s (with room for a starved machine: it took over 5 s under load once)
    assert time.monotonic() - started < 15


def test_killed_engine_is_replaced(stockfish: str, transcript: Transcript, engines: list[UciEngine]) -> None:
    engine = UciEngine(_cfg([stockfish], max_restarts=2), name="sf", transcript=transcript)
    engines.append(engine)
    first = engine.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not _alive(first), 5, f"the engine (pid {first}) to die")
    infos = engine.analyse(chess.Board(), seconds=0.02)
    assert infos[0]["pv"]
    assert engine.restarts == 1
    assert engine.pid not in (None, first)
    assert "restarting the engine (1 of 2 restarts)" in (transcript.path.read_text() if transcript.path else "")


def test_hung_engine_times_out_then_gives_up(fake_uci: Callable[[str], list[str]], transcript: Transcript,
                                            engines: list[UciEngine]) -> None:
    engine = UciEngine(_cfg(fake_uci("hang"), move_margin=0.3, max_restarts=1), name="fake", transcript=transcript)
    engines.append(engine)
    first = engine.pid
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"within its budget \+ 0.3 s.*restarted 1 times"):
        engine.analyse(chess.Board(), seconds=0.05)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 5, elapsed  # two attempts of 0.05 + 0.3 s, plus one restart
    assert engine.restarts == 1
    assert first is not None and not _alive(first)  # the hung process was killed, not left behind
    text = transcript.path.read_text() if transcript.path else ""
    assert "did not answer analyse within its budget" in text


def test_stopping_a_hung_engine_puts_no_python_chess_noise_in_the_journal(
        fake_uci: Callable[[str], list[str]], transcript: Transcript, engines: list[UciEngine],
        caplog: pytest.LogCaptureFixture) -> None:
    """Seen in a soak's journal: every hung Stockfish the bridge killed added "stockfish: python-chess: Exception in
    callback BaseSubprocessTransport._call_connection_lost(None) (InvalidStateError: invalid state)" at INFO, and to
    the transcript: asyncio's complaint about the pipe of a process we had just killed ourselves, which reads like a
    new fault. The incident is said once (the hang, the restart); what the old process's event loop says while it is
    torn down goes to DEBUG."""
    caplog.set_level(logging.INFO, logger="bridge")
    engine = UciEngine(_cfg(fake_uci("hang"), move_margin=0.3, max_restarts=1), name="fake", transcript=transcript)
    engines.append(engine)
    with pytest.raises(EngineError, match="did not answer analyse"):
        engine.analyse(chess.Board(), seconds=0.05)
    engine.close()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [m for m in said if "python-chess" in m or "Exception in callback" in m], said
    assert any("did not answer analyse within its budget + 0.3 s (engine.move_margin): restarting the engine "
               "(1 of 1 restarts)" in m for m in said), said
    text = transcript.path.read_text() if transcript.path else ""
    assert "Exception in callback" not in text and "restarting the engine (1 of 1 restarts)" in text


def test_a_deadline_bounds_a_hang_and_defers_the_restart(fake_uci: Callable[[str], list[str]],
                                                         transcript: Transcript, engines: list[UciEngine]) -> None:
    """With a deadline (a short clock), a hung engine is given up on by then, not after move_margin; with no time
    left for a restart and a second try, the process is killed and the restart waits for the next request."""
    engine = UciEngine(_cfg(fake_uci("hang"), move_margin=5.0, max_restarts=2), name="fake", transcript=transcript)
    engines.append(engine)
    first = engine.pid
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"within its budget \+ 1.2 s \(what the clock allows\); no time left"):
        engine.analyse(chess.Board(), seconds=0.05, deadline=started + 1.25)
    elapsed = time.monotonic() - started
    assert 1.2 <= elapsed < 3.0, elapsed
    assert engine.restarts == 0 and engine.pid is None
    assert first is not None and not _alive(first)
    started = time.monotonic()  # the next request makes the deferred restart (counted), then the same
    with pytest.raises(EngineError, match="no time left"):
        engine.analyse(chess.Board(), seconds=0.05, deadline=started + 1.25)
    assert engine.restarts == 1 and time.monotonic() - started < 3.0
    assert "(what the clock allows): restarting the engine (1 of 2 restarts)" in \
        (transcript.path.read_text() if transcript.path else "")
    # a deadline far enough off leaves room for a restart and a second try within it
    other = UciEngine(_cfg(fake_uci("hang"), move_margin=1.0, max_restarts=1), name="fake2")
    engines.append(other)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"within its budget \+ 1 s \(engine.move_margin\).*restarted 1 times"):
        other.analyse(chess.Board(), seconds=0.05, deadline=started + 10.0)
    assert other.restarts == 1 and 2.0 <= time.monotonic() - started < 6.0


def test_garbage_reply_costs_one_timeout_then_an_error(fake_uci: Callable[[str], list[str]],
                                                        engines: list[UciEngine]) -> None:
    """An illegal bestmove makes python-chess's analyse wait forever: the driver's timeout turns that into a
    restart, and with no restarts left into one EngineError (never a hang)."""
    engine = UciEngine(_cfg(fake_uci("garbage"), move_margin=0.3, max_restarts=0), name="fake")
    engines.append(engine)
    started = time.monotonic()
    with pytest.raises(EngineError, match="restarted 0 times"):
        engine.analyse(chess.Board(), seconds=0.05)
    assert time.monotonic() - started < 3


def test_max_move_time_caps_the_budget(fake_uci: Callable[[str], list[str]], transcript: Transcript,
                                       engines: list[UciEngine]) -> None:
    engine = UciEngine(_cfg(fake_uci("normal"), max_move_time=0.01), name="fake", transcript=transcript)
    engines.append(engine)
    assert engine.play(chess.Board(), seconds=30) == chess.Move.from_uci("e2e4")
    assert " fake >> go movetime 10" in (transcript.path.read_text() if transcript.path else "")


def test_close_stops_the_process_and_never_raises(stockfish: str) -> None:
    engine = UciEngine(_cfg([stockfish]), name="sf")
    pid = engine.pid
    assert pid is not None and _alive(pid)
    engine.close()
    engine.close()
    wait_for(lambda: not _alive(pid), 3, f"the engine (pid {pid}) to exit")
    with pytest.raises(EngineError, match="closed"):
        engine.analyse(chess.Board(), seconds=0.01)


@pytest.mark.parametrize("mode", ["normal", "hang"])
def test_interpreter_exits_with_engines_left_open(mode: str, fake_uci: Callable[[str], list[str]],
                                                  tmp_path: Path) -> None:
    """python-chess runs each engine in a non-daemon thread: an engine nobody closed (even one that hung and was
    given up on) must not keep the bridge from exiting, nor outlive it."""
    import subprocess

    script = tmp_path / "leave_open.py"
    script.write_text(textwrap.dedent(f"""
        import chess
        from bridge.config import EngineConfig
        from bridge.engines.uci import UciEngine
        from bridge.errors import EngineError
        cfg = EngineConfig(protocol="uci", command={fake_uci(mode)!r}, move_margin=0.2, max_restarts=0)
        engine = UciEngine(cfg, name="fake")
        print(engine.pid, flush=True)
        try:
            engine.analyse(chess.Board(), seconds=0.05)
        except EngineError:
            pass
        print(engine.pid, flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    pids = [int(p) for p in done.stdout.split() if p != "None"]
    assert pids
    wait_for(lambda: not any(_alive(p) for p in pids), 3, f"the engines {pids} to exit")


def test_an_engine_killed_while_it_starts_is_started_again(stockfish: str, tmp_path: Path, transcript: Transcript,
                                                           engines: list[UciEngine]) -> None:
    """The soak killed Stockfish during a game's start: the first start failing is one more restart, not a lost
    game (the RBC adapter error-resigned it)."""
    marker = tmp_path / "died-once"
    wrapper = tmp_path / "dies_once.sh"
    wrapper.write_text(f"#!/bin/sh\nif [ ! -e {marker} ]; then touch {marker}; kill -9 $$; fi\nexec {stockfish}\n")
    wrapper.chmod(0o755)
    engine = UciEngine(_cfg([str(wrapper)], max_restarts=2), name="sf", transcript=transcript)
    engines.append(engine)
    assert marker.exists() and engine.restarts == 1
    assert engine.engine_name.startswith("Stockfish")


def test_an_engine_that_never_starts_gives_up_after_its_restarts(tmp_path: Path) -> None:
    engine = tmp_path / "dies.sh"
    engine.write_text("#!/bin/sh\nkill -9 $$\n")
    engine.chmod(0o755)
    with pytest.raises(EngineError, match="restarted 2 times"):
        UciEngine(_cfg([str(engine)], max_restarts=2), name="dead")
