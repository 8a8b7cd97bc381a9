"""Issue 10, the engine side of a Go move: the commands of one move go to the engine in one write and their answers
are read in order (one round trip a move), and the transcript is flushed once per exchange, not once per line —
without losing a line, an error or a hang limit. Scripted fake engines over real pipes; one daemon end to end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import pytest
from helpers import api, challenge, sandbox_game, wait_for

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.errors import EngineRefusedError, EngineTimeoutError
from bridge.games import gotypes
from bridge.games.go import GoPlayer
from bridge.games.gotypes import GoSettings, GoState, Move, color_of_move
from bridge.transcript import Transcript

ROOT = Path(__file__).resolve().parent.parent


def _state(moves: list[Move], my_color: gotypes.Color = "white") -> GoState:
    settings = GoSettings(width=9, height=9, komi=6.5, rules="japanese", my_color=my_color)
    return GoState("g1", settings, tuple(moves), to_move=color_of_move(settings, len(moves)))


def _sent(p: GoPlayer) -> list[str]:
    """The commands the transcript shows as sent (``>>`` lines), without their ids."""
    assert p.transcript.path is not None
    return [re.sub(r"^.*? >> (\d+ )?", "", line) for line in p.transcript.path.read_text().splitlines()
            if " >> " in line]


def test_the_commands_of_a_move_go_to_the_engine_together(player_factory: Callable[..., GoPlayer],
                                                           fake_gtp_command: Callable[..., list[str]]) -> None:
    """An engine that answers nothing before it has the move request (--batch-until genmove) still plays: the
    game's set-up, the opponent's move and genmove arrive in one write. Sent one at a time, each waiting for the
    previous answer, the first of them would wait for its answer until the hang limit."""
    p = player_factory(fake_gtp_command("--batch-until", "genmove", "--moves", "E5,C3"), max_move_time=1.0,
                       move_margin=1.0)
    assert p.genmove(_state([(2, 2)])) == [(4, 4)]  # board, komi, the opponent's C7, genmove: one exchange
    assert p.genmove(_state([(2, 2), (4, 4), (6, 6)])) == [(2, 6)]  # the next move: play G3 + genmove
    sent = _sent(p)
    assert sent[sent.index("boardsize 9"):] == ["boardsize 9", "clear_board", "komi 6.5", "time_settings 0 1 0",
                                                "play black C7", "genmove w", "play black G3", "genmove w"]


def test_a_move_costs_one_transcript_flush(player_factory: Callable[..., GoPlayer],
                                           fake_gtp_command: Callable[..., list[str]]) -> None:
    """Every line of a move's exchange (what was sent, every answer line) is in the file when genmove returns,
    written with one flush, where each line used to be flushed on its own (six or more a move)."""
    p = player_factory(fake_gtp_command("--moves", "E5,C3"))
    p.genmove(_state([(2, 2)]))
    file = p.transcript._file
    assert file is not None
    real: TextIO = file
    flushes: list[int] = []

    class Counting:
        def write(self, text: str) -> int:
            return real.write(text)

        def flush(self) -> None:
            flushes.append(1)
            real.flush()

        def close(self) -> None:
            real.close()

    p.transcript._file = Counting()  # type: ignore[assignment]
    assert p.genmove(_state([(2, 2), (4, 4), (6, 6)])) == [(2, 6)]
    assert len(flushes) == 1, f"{len(flushes)} flushes for one move"
    assert p.transcript.path is not None
    text = p.transcript.path.read_text()
    assert re.search(r" >> \d+ play black G3\n.* >> \d+ genmove w\n", text), text
    assert re.search(r" << =\d+ C3\n", text), text


def test_a_refused_command_is_reported_and_the_engine_stays_in_step(player_factory: Callable[..., GoPlayer],
                                                                    fake_gtp_command: Callable[..., list[str]]
                                                                    ) -> None:
    """A ``?`` to one command of the exchange is that command's error (not the move's), the answers after it are
    still read (the next command gets its own answer), and the game is replayed from scratch next time (the
    engine's board is unknown after a refused command)."""
    p = player_factory(fake_gtp_command("--refuse", "play", "--moves", "E5"))
    with pytest.raises(EngineRefusedError) as err:
        p.genmove(_state([(2, 2)]))
    assert err.value.command == "play black C7"
    assert p.engine is not None and p.engine.broken is None
    assert p.engine.command("name") == "FakeGTP"  # in step: the genmove's answer was read and dropped
    with pytest.raises(EngineRefusedError):
        p.genmove(_state([(2, 2)]))
    assert _sent(p).count("boardsize 9") == 2


def test_each_command_keeps_its_own_hang_limit(player_factory: Callable[..., GoPlayer],
                                               fake_gtp_command: Callable[..., list[str]]) -> None:
    """An engine frozen while it is told the opponent's move is caught at the command limit (here 0.5 s), not at
    the end of the move's much longer limit; frozen in genmove, at the move's limit."""
    p = player_factory(fake_gtp_command("--hang-on", "play"), max_move_time=60.0)
    p.start().command_timeout = 0.5
    began = time.monotonic()
    with pytest.raises(EngineTimeoutError, match="play black C7"):
        p.genmove(_state([(2, 2)]))
    assert time.monotonic() - began < 10
    q = player_factory(fake_gtp_command("--hang-on", "genmove"), max_move_time=0.5, move_margin=0.5)
    began = time.monotonic()
    with pytest.raises(EngineTimeoutError, match="genmove w"):
        q.genmove(_state([(2, 2)]))
    assert 0.9 <= time.monotonic() - began < 10


def test_a_slow_answer_does_not_keep_the_commands_off_the_disk(player_factory: Callable[..., GoPlayer],
                                                              fake_gtp_command: Callable[..., list[str]]) -> None:
    """While the engine thinks, what was sent is already in the file (a daemon killed then still shows it)."""
    p = player_factory(fake_gtp_command("--genmove-delay", "3", "--moves", "E5"))
    p.start()
    result: list[object] = []
    thinking = threading.Thread(target=lambda: result.append(p.genmove(_state([(2, 2)]))))
    thinking.start()
    try:
        assert p.transcript.path is not None
        path = p.transcript.path
        wait_for(lambda: " genmove w\n" in path.read_text(), 2.5, "the genmove line on disk")
        assert not result, "the engine answered before the line was seen: the test proves nothing"
    finally:
        thinking.join(10)
    assert result == [[(4, 4)]]


# --- the transcript's hold ----------------------------------------------------------------------------------------
def test_held_lines_reach_the_file_when_the_hold_ends(tmp_path: Path) -> None:
    t = Transcript(tmp_path / "t.log")
    path = tmp_path / "t.log"
    t.note("before")
    assert "before" in path.read_text()
    with pytest.raises(RuntimeError), t.hold():
        t.write(">>", "1 genmove b", "e")
        with t.hold():  # nested: only the outermost flushes
            t.write("<<", "=1 D4", "e")
        assert "genmove" not in path.read_text()
        raise RuntimeError("the engine died")
    assert re.search(r"e >> 1 genmove b\n.*e << =1 D4\n", path.read_text())  # an error ends the hold too
    with t.hold():
        t.write("!!", "last words", "e")
    t.close()
    assert "last words" in path.read_text()


def test_a_long_hold_flushes_on_the_next_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.transcript as tr

    t = Transcript(tmp_path / "t.log")
    monkeypatch.setattr(tr, "HOLD_MAX_SECONDS", 0.0)  # every held line is already old enough
    with t.hold():
        t.write("!!", "thinking", "e")
        assert "thinking" in (tmp_path / "t.log").read_text()
    t.close()


# --- end to end: a daemon stopped with SIGTERM in the middle of a game ----------------------------------------
@pytest.mark.e2e
def test_a_sigtermed_daemon_leaves_every_transcript_line(tmp_path: Path, sandbox: SandboxServer) -> None:
    """`gamebridge run` with the instant engine, SIGTERM in the middle of a game: the transcript has every line —
    an answer to every command sent but the last quit, each move of the bot the server got, and the session's
    end."""
    api(sandbox, "POST", "/sandbox/bots", json={"username": "term-bot", "apikey": "term-key-123456"})
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(f"""\
server:
  kind: ogs
  url: {sandbox.url}
  username: term-bot
  api_key: {{env: TERM_BOT_KEY}}
engine:
  command: [{sys.executable}, -S, {ROOT / 'scripts' / 'instant_gtp.py'}]
daemon:
  data_dir: {tmp_path / 'runs'}
""")
    daemon = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", str(cfg)], cwd=ROOT,
                              env={**os.environ, "TERM_BOT_KEY": "term-key-123456"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def connected() -> bool:
            assert daemon.poll() is None, daemon.communicate()[0][-2000:]
            return any(c["username"] == "term-bot" and c["authenticated"]
                       for c in api(sandbox, "GET", "/sandbox/connections"))

        wait_for(connected, 60, "the daemon to connect")
        game_id = challenge(sandbox, "term-bot", {"house": "random", "delay": 0.05}, width=19,
                            height=19, challenger_color="black")["game_id"]

        def bot_moves() -> list[Any]:
            game = sandbox_game(sandbox, game_id) or {}
            return list(game.get("moves", []))[1::2]  # the house is black

        wait_for(lambda: len(bot_moves()) >= 8, 60, "eight moves of the bot")
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, out[-2000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    text = (tmp_path / "runs" / "transcripts" / f"ogs-{game_id}.log").read_text()
    sent = {int(m.group(1)): m.group(2) for m in re.finditer(r" >> (\d+) (\S+)", text)}
    answered = {int(m.group(1)) for m in re.finditer(r" << [=?](\d+)", text)}
    missing = sorted(set(sent) - answered - {n for n, c in sent.items() if c == "quit"})
    assert not missing, f"commands without their answer in the transcript: {missing}\n{text[-3000:]}"
    answers = re.findall(r" << =\d+ ([A-T]\d+|pass)\n", text)
    letters = "ABCDEFGHJKLMNOPQRST"
    for move in bot_moves():
        vertex = "pass" if move[0] < 0 else f"{letters[move[0]]}{19 - move[1]}"
        assert vertex in answers, f"the bot's {vertex} is not in the transcript"
    assert text.rstrip().endswith("session ended"), text[-500:]
