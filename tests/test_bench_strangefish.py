"""The head-to-head RBC benchmark's parts (scripts/bench_strangefish.py): the Wilson interval, the results file that
accumulates games across runs and alternates colours, the summary (score, per colour, losses on time, how each
loss happened, read from a real reconchess game history), the clock watch on a real sandbox game, the reading of
StrangeFish2's log, and the one-line refusals of a bad setup. Fast: no engine, no StrangeFish2."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import chess
import pytest
from helpers import children_of, kill_all, processes_naming, stopped_by_sigterm, wait_for
from reconchess import GameHistory, LocalGame

from bridge.adapters.reconchess.sandbox.core import Clock, SandboxGame
from bridge.config import load_config_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_strangefish as bench  # noqa: E402
from bench_rbc import wilson  # noqa: E402


def test_wilson_interval() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(10, 10)  # all won: the lower bound is n / (n + z^2)
    assert low == pytest.approx(10 / (10 + 1.96**2), abs=1e-9) and high == 1.0
    low, high = wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = wilson(12, 20)  # the bar: 60 % of 20 games
    assert (round(low, 3), round(high, 3)) == (0.387, 0.781)
    low, high = wilson(12.5, 20)  # a draw counts a half: strictly between 12 and 13 wins
    assert wilson(12, 20)[0] < low < wilson(13, 20)[0] and wilson(12, 20)[1] < high < wilson(13, 20)[1]


def _game(result: str, color: str, *, reason: str = "KING_CAPTURE", opponent: str = "strangefish2",
          clock: str = "900+5", gid: int = 1, loss: dict[str, Any] | None = None,
          commit: str = "abcdef0123456789") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "opponent": opponent, "clock": clock, "game_id": gid, "commit": commit, "our_color": color,
        "result": result, "win_reason": reason, "half_turns": 30,
        "seconds_used": {"us": 100.0, "opponent": 400.0},
        "seconds_per_turn": {"us": [3.0, 4.0], "opponent": [20.0, 30.0]},
    }
    if loss is not None:
        entry["loss"] = loss
    return entry


def test_results_accumulate_across_runs_and_colours_alternate(tmp_path: Path) -> None:
    results = tmp_path / "sub" / "results.json"
    assert bench.load_results(results) == []
    assert bench.next_color_is_white([], "strangefish2", "900+5")
    first = bench.append_result(results, _game("win", "white", gid=1))
    assert [g["game_id"] for g in first] == [1]
    assert not bench.next_color_is_white(first, "strangefish2", "900+5")
    # a later run (a new process would read the same file): appended, nothing lost, colours go on alternating
    second = bench.append_result(results, _game("loss", "black", gid=2))
    assert [g["game_id"] for g in bench.load_results(results)] == [1, 2] == [g["game_id"] for g in second]
    assert json.loads(results.read_text())["games"][1]["result"] == "loss"
    assert bench.next_color_is_white(second, "strangefish2", "900+5")
    # each opponent and clock alternates on its own
    assert bench.next_color_is_white(second, "trout", "900+5")
    assert bench.next_color_is_white(second, "strangefish2", "120+2")
    assert not (tmp_path / "sub" / "results.json.tmp").exists()


def test_a_damaged_results_file_is_one_clear_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    results.write_text('{"games": [')
    with pytest.raises(bench.BenchError, match="unreadable"):
        bench.load_results(results)
    results.write_text("[]")
    with pytest.raises(bench.BenchError, match="not a results file"):
        bench.append_result(results, _game("win", "white"))
    assert results.read_text() == "[]"  # left as it was
    assert bench.main(["--games", "0", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench_strangefish: --results") and "Traceback" not in err[0]


def _play(game: LocalGame, plies: list[tuple[int | None, str | None]]) -> None:
    for sense, move in plies:
        game.sense(sense)
        game.move(chess.Move.from_uci(move) if move else None)
        if game.is_over():
            break
        game.end_turn()


def knight_rush_history() -> GameHistory:
    """White rushes a knight to f6 and takes the king on e8 at half-turn 7; black senses far away (h1, a1)."""
    game = LocalGame()
    game.store_players("attacker", "bridge")
    game.start()
    _play(game, [(chess.E4, "b1c3"), (chess.H1, "a7a6"), (chess.E4, "c3d5"), (chess.A1, "a6a5"),
                 (chess.E4, "d5f6"), (chess.H1, "h7h6"), (chess.E4, "f6e8")])
    assert game.is_over()
    game.end()
    history = game.get_game_history()
    assert history is not None
    return history


def test_a_knight_rush_loss_is_described_from_the_history(tmp_path: Path) -> None:
    saved = tmp_path / "h.json"
    knight_rush_history().save(str(saved))
    history = GameHistory.from_file(str(saved))  # as the benchmark keeps it
    loss = bench.describe_loss(history, chess.BLACK)
    assert loss["win_reason"] == "KING_CAPTURE" and loss["king_captured"] and loss["half_turn"] == 7
    assert loss["guess"] == ("king captured by a knight (f6xe8) at half-turn 7; our last sense (h1) was 7 squares "
                             "from our king (e8) and did not see the knight on f6")
    assert loss["sense_distance_from_king"] == 7 and loss["sense_saw_attacker"] is False


def test_a_resignation_is_not_a_king_capture() -> None:
    game = LocalGame()
    game.store_players("bridge", "trout")
    game.start()
    _play(game, [(None, "e2e4")])
    game.resign()
    game.end()
    history = game.get_game_history()
    assert history is not None
    loss = bench.describe_loss(history, chess.BLACK)
    assert not loss["king_captured"] and loss["win_reason"] == "RESIGN" and "resigned" in loss["guess"]


def test_summary_scores_colours_time_losses_and_each_loss() -> None:
    knight = {"king_captured": True, "guess": "king captured by a knight (f6xe8) at half-turn 7"}
    games = [
        _game("win", "white", gid=1), _game("win", "white", gid=2), _game("draw", "black", reason="MOVE_LIMIT", gid=3),
        _game("loss", "black", gid=4, loss=knight),
        _game("loss", "black", reason="TIMEOUT", gid=5, loss={"king_captured": False, "guess": "lost on time"}),
        _game("win", "black", reason="TIMEOUT", gid=6),
        _game("win", "white", opponent="random", gid=7),
    ]
    lines = bench.summarize(games)
    text = "\n".join(lines)
    # 3 wins, 1 draw, 2 losses of 6: score 3.5 / 6; Wilson as wilson(3.5, 6)
    low, high = wilson(3.5, 6)
    assert (f"strangefish2 at 900+5: 6 games, 3 won, 2 lost, 1 drawn: score 58% (95 % Wilson {low:.0%}–{high:.0%})"
            in lines)
    assert "  as white: 2 games, 2 won, 0 lost, 0 drawn: score 100% (95 % Wilson 34%–100%)" in lines
    assert any(line.startswith("  as black: 4 games, 1 won, 2 lost, 1 drawn: score 38%") for line in lines)
    assert "  losses on time: 1 (must be none); the opponent's: 1" in lines
    assert ("  lost game 4 as black (commit abcdef012345): KING_CAPTURE at half-turn 30, king captured: yes — king "
            "captured by a knight (f6xe8) at half-turn 7") in lines
    assert "lost game 5 as black" in text and "king captured: no — lost on time" in text
    assert "random at 900+5: 1 games, 1 won" in text  # another opponent: a block of its own
    assert "by our commit" not in text  # one commit played them all


def test_summary_tells_which_commit_played_which_games() -> None:
    """Results files gather games of several versions of the player: the summary tallies each commit's games, in
    the order they were played (a score over 20 games means something only for one player)."""
    games = [_game("loss", "black", gid=1, commit="1111111111111111", loss={"king_captured": True, "guess": "-"}),
             _game("win", "white", gid=2, commit="2222222222222222"),
             _game("draw", "black", reason="MOVE_LIMIT", gid=3, commit="2222222222222222"),
             _game("win", "black", gid=4, commit="2222222222222222")]
    assert "  by our commit: 111111111111 0-1, 222222222222 2-0-1" in bench.summarize(games)


def test_summary_tells_our_fewest_seconds_left() -> None:
    """"Never a loss on time" is read with its margin: the fewest seconds we had left after a turn (before that
    turn's increment), in the tightest game and in the median one, from each turn's time, the start and the
    increment of the clock."""
    tight = _game("win", "black", gid=2)
    tight["seconds_per_turn"]["us"] = [850.0, 40.0]  # 50 left, +5, then 15
    middle = _game("loss", "white", gid=1, loss={"king_captured": True, "guess": "-"})
    middle["seconds_per_turn"]["us"] = [100.0, 300.0, 200.0]  # 800, 505, 310
    easy = _game("win", "white", gid=3)  # 897, 898
    lines = bench.summarize([middle, tight, easy])
    assert "  our fewest seconds left after a turn: 15 s (game 2); in the median game 310 s" in lines
    other = _game("win", "white", gid=4, clock="60+1")
    other["seconds_per_turn"]["us"] = [59.5]
    assert ("  our fewest seconds left after a turn: 0.5 s (game 4); in the median game 0.5 s"
            in bench.summarize([other]))


def test_clock_watch_records_each_sides_time_per_turn() -> None:
    """On a real sandbox game (the referee's LocalGame clock): white thinks ~0.3 s a turn, black ~0.05 s."""
    game = SandboxGame(1, "bridge", "strangefish2", Clock(60, 2), ready_timeout=60)
    game.bind()
    game.mark_ready(chess.WHITE)
    game.mark_ready(chess.BLACK)
    watch = bench.ClockWatch(game)
    watch.start()
    done = threading.Event()
    try:
        for white_move, black_move in (("e2e4", "e7e5"), ("g1f3", "b8c6")):
            time.sleep(0.3)  # white's thinking, on the clock
            game.sense(chess.WHITE, chess.E4)
            game.move(chess.WHITE, chess.Move.from_uci(white_move))
            game.end_turn(chess.WHITE)
            time.sleep(0.05)
            game.sense(chess.BLACK, None)
            game.move(chess.BLACK, chess.Move.from_uci(black_move))
            game.end_turn(chess.BLACK)
        time.sleep(0.3)
        game.sense(chess.WHITE, None)
        game.resign(chess.WHITE)  # the game's last turn: no increment
        done.set()
        watch.join(10)
        assert not watch.is_alive()
    finally:
        watch.stop.set()
        with game.cond:
            game.cond.notify_all()
        watch.join(10)
    white, black = watch.used[chess.WHITE], watch.used[chess.BLACK]
    assert len(white) == 3 and len(black) == 2, (white, black)
    assert all(0.28 <= t < 3.0 for t in white), white  # slept 0.3 s a turn (the bound above allows a loaded machine)
    assert all(0.03 <= t < 3.0 for t in black), black
    assert sum(white) > sum(black), (white, black)
    # the record adds up to the referee's clock: what each side had, plus increments, minus what is left
    assert sum(white) == pytest.approx(60 + 2 * 2 - game.local.seconds_left_by_color[chess.WHITE], abs=1e-6)
    assert sum(black) == pytest.approx(60 + 2 * 2 - game.local.seconds_left_by_color[chess.BLACK], abs=1e-6)


SF2_LOG = """\
game-7.agent DEBUG: "Running the `while_we_wait` method. 20 boards left to expand for next turn." from x line 1
game-7.agent DEBUG: "Expanding current boards for next turn's board set" from x line 2
game-7.agent DEBUG: "Running the `while_we_wait` method. 0 boards left to expand for next turn." from x line 1
game-7.agent WARNING: "Parameter `load_score_cache` is True, but the score cache file, w_cache.pk, was not found!"
game-7.agent DEBUG: "Finished expanding and filtering the set of possible board states. There are 1 possible boards \
at the start of our turn 1." from x line 3
game-7.agent DEBUG: "Board set has exceeded limit, storing 4000 to process later." from x line 4
game-7.agent DEBUG: "Finished expanding and filtering the set of possible board states. There are 1000 possible boards \
at the start of our turn 9." from x line 3
game-7.agent DEBUG: "Repopulating exhausted board set from 4000 stored boards" from x line 5
game-7.agent DEBUG: "During this game, scored 5120 positions at average 0.01234 seconds per score using search depth \
7. Engine cache had 3 hits and 4 misses." from x line 6
"""


def test_strangefish_log_is_read() -> None:
    stats = bench.strangefish_stats(SF2_LOG)
    assert stats["between_turn_calls"] == 2 and stats["expanded_between_turns"] == 1
    assert stats["boards_at_turn_start"] == [1, 1000]
    assert stats["set_over_limit"] == 1 and stats["rebuilt_from_stored"] == 1
    assert stats["positions_scored"] == 5120 and stats["seconds_per_score"] == pytest.approx(0.01234)
    assert not stats["score_cache_loaded"] and not stats["opening_book_loaded"]
    assert stats["aggressive_backup_plan"] == 0


def test_a_missing_checkout_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = bench.main(["--strangefish", str(tmp_path), "--games", "1", "--results", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "not a StrangeFish2 checkout" in err[0] and "git clone https://github.com/ginoperrotta/" in err[0]
    assert not (tmp_path / "r.json").exists()
    assert bench.main(["--games", "1", "--results", str(tmp_path / "r.json")]) == 2
    assert "--opponent strangefish needs --strangefish" in capsys.readouterr().err


def fake_checkout(tmp_path: Path, answer: str) -> tuple[Path, str]:
    """A directory shaped like StrangeFish2's checkout, and a stand-in for its Python that answers the harness's
    probe with ``answer`` (reconchess version, Python version)."""
    checkout = tmp_path / "sf2"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "strangefish").mkdir()
    (checkout / "scripts" / "modified_rc_connect.py").write_text("")
    (checkout / "strangefish" / "strangefish_strategy.py").write_text("")
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho {answer}\n")
    python.chmod(0o755)
    return checkout, str(python)


def test_strangefish_on_python_3_11_is_refused_before_a_game(tmp_path: Path) -> None:
    """StrangeFish2 calls random.sample on a set (sense_min_states), which Python 3.11 refuses: measured, it
    crashed mid-game (TypeError: Population must be a sequence) and its client error-resigned. The harness
    refuses such a Python up front, with what to do."""
    checkout, python = fake_checkout(tmp_path, "1.6.9 3.11")
    with pytest.raises(bench.BenchError, match=r"is Python 3\.11: StrangeFish2 needs 3\.10 or older .*python3\.10"):
        bench.check_strangefish(checkout, python, "/usr/games/stockfish")
    checkout, python = fake_checkout(tmp_path / "b", "1.6.8 3.10")
    with pytest.raises(bench.BenchError, match=r"has reconchess 1\.6\.8, the sandbox serves 1\.6\.9"):
        bench.check_strangefish(checkout, python, "/usr/games/stockfish")
    checkout, python = fake_checkout(tmp_path / "c", "1.6.9 3.10")
    assert bench.check_strangefish(checkout, python, "/usr/games/stockfish") == "unknown"  # not a git checkout


def test_the_array_belief_is_asked_for_in_the_config_and_kept_apart_in_the_summary(tmp_path: Path) -> None:
    """--belief arrays: the daemon's config says rbc.belief: arrays (and validates), each game records it, and the
    summary tallies those games apart from the default player's."""
    engine = sys.executable  # any executable: the config is validated, no engine is started
    setup = bench.Setup(opponent="random", seconds=900, increment=5, stockfish=engine, threads=1,
                        hash_mb=16, out=tmp_path, results=tmp_path / "r.json", belief="arrays", commit="c0ffee")
    text = bench.bridge_config(setup, "http://127.0.0.1:1", True, tmp_path / "data")
    config: Any = load_config_text(text, "bench", tmp_path)
    assert config.rbc.belief == "arrays" and config.rbc.max_boards == 400_000
    plain = bench.bridge_config(bench.Setup(opponent="random", seconds=900, increment=5, stockfish=engine, threads=1,
                                            hash_mb=16, out=tmp_path, results=tmp_path / "r.json", commit="c0ffee"),
                                "http://127.0.0.1:1", True, tmp_path / "data")
    default: Any = load_config_text(plain, "bench", tmp_path)
    assert "rbc" not in plain and default.rbc.belief == "boards"
    games = [_game("win", "white", gid=1, commit="2222222222222222"),
             {**_game("win", "black", gid=2, commit="2222222222222222"), "belief": "arrays"}]
    assert "  by our commit: 222222222222 1-0, 222222222222 (belief: arrays) 1-0" in bench.summarize(games)


@pytest.mark.e2e
@pytest.mark.parametrize("belief", ["boards", "arrays"])
def test_one_game_against_random_end_to_end(stockfish: str, tmp_path: Path, belief: str) -> None:
    """The harness as a person runs it, against the house bot random with a short clock (~15 s): the sandbox, the
    bridge daemon with Stockfish seeking its game, the result appended, the history kept, the summary printed;
    with each rbc.belief."""
    results = tmp_path / "results.json"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_strangefish.py"), "--opponent", "random",
                          "--games", "1", "--seconds", "15", "--increment", "1", "--results", str(results),
                          "--stockfish", stockfish, "--belief", belief], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    [game] = bench.load_results(results)
    assert game["belief"] == belief
    assert game["opponent"] == "random" and game["clock"] == "15+1" and game["our_color"] == "white"
    try:  # the commit of this checkout, where git and a .git are at hand (CI's fresh chroot has neither)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    assert game["commit"].removesuffix("-dirty") == head, (game["commit"], head)
    assert not (game["result"] == "loss" and game["win_reason"] == "TIMEOUT"), game
    assert game["win_reason"] in ("KING_CAPTURE", "TIMEOUT", "RESIGN", "MOVE_LIMIT", "TURN_LIMIT"), game
    us, them = game["seconds_per_turn"]["us"], game["seconds_per_turn"]["opponent"]
    assert len(us) + len(them) == game["half_turns"] and len(us) - len(them) in (0, 1), game
    assert sum(us) == pytest.approx(game["seconds_used"]["us"], abs=0.05) and 0 < sum(us) < 15 + len(us)
    history = GameHistory.from_file(game["history"])
    assert history.num_turns() == game["half_turns"]
    folder = Path(game["history"]).parent
    assert (folder / "bridge" / "records" / f"reconchess-{game['game_id']}.pgn").exists()  # the daemon finished
    assert run.stdout.startswith("random at 15+1: 1 games, "), run.stdout


@pytest.mark.e2e
def test_sigterm_stops_the_daemon_and_the_engine_of_the_game_under_way(stockfish: str, tmp_path: Path) -> None:
    """Seen by hand: a benchmark stopped with SIGTERM (kill, pkill, systemd) left its bridge daemon running, with
    its Stockfish, seeking games on a sandbox that was gone. SIGTERM now stops the game's processes like Ctrl-C."""
    out = tmp_path / "runs"
    bench_run = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "bench_strangefish.py"), "--opponent",
                                  "random", "--games", "1", "--seconds", "300", "--results",
                                  str(tmp_path / "results.json"), "--out", str(out), "--stockfish", stockfish],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ours() -> list[int]:
        """The processes started for this run: their command line names its folder."""
        return processes_naming(str(out), but=bench_run.pid)

    try:
        wait_for(ours, 60, "the daemon", step=0.2)
        time.sleep(3)  # into the game
        daemons = ours()
        children = [c for pid in daemons for c in children_of(pid)]
        stopped_by_sigterm(bench_run, daemons + children, "benchmark", timeout=60)
    finally:
        kill_all(bench_run, ours())


def test_hours_end_a_run_between_games(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--hours: the game under way finishes, no new one starts once the time is up; what was played is kept."""
    import contextlib

    class FakeSandbox:
        def add_user(self, name: str, password: str) -> None:
            pass

    clock = [0.0]
    played: list[bool] = []

    def play(setup: Any, sandbox: Any, password: str, sf2_password: str, white: bool) -> dict[str, Any]:
        played.append(white)
        clock[0] += 600.0  # each game takes ten minutes
        entry = _game("win", "white" if white else "black", gid=len(played), opponent="random", clock="60+1")
        return {**entry, "wall_seconds": 600.0}

    monkeypatch.setattr(bench, "running_sandbox", lambda setup: contextlib.nullcontext(FakeSandbox()))
    monkeypatch.setattr(bench, "play_game", play)
    monkeypatch.setattr(bench.time, "monotonic", lambda: clock[0])
    setup = bench.Setup(opponent="random", seconds=60, increment=1, stockfish="/usr/games/stockfish", threads=1,
                        hash_mb=16, out=tmp_path, results=tmp_path / "results.json", commit="x")
    games = bench.run(setup, 10, stop_after=1500.0)  # 25 minutes: games start at 0, 10 and 20 minutes
    assert len(played) == 3 and played == [True, False, True]
    assert [g["game_id"] for g in games] == [1, 2, 3] == [g["game_id"] for g in bench.load_results(setup.results)]
    assert "3 of 10 games played; no new game starts now" in capsys.readouterr().err


def test_sigusr1_finishes_the_game_under_way_and_starts_no_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """kill -USR1 PID: the game under way is played out and recorded, no new one starts, the summary is printed
    (a sitting ended on time without losing the game in progress, as SIGINT does)."""
    import contextlib
    import os
    import signal

    class FakeSandbox:
        def add_user(self, name: str, password: str) -> None:
            pass

    played: list[bool] = []

    def play(setup: Any, sandbox: Any, password: str, sf2_password: str, white: bool) -> dict[str, Any]:
        played.append(white)
        if len(played) == 2:
            os.kill(os.getpid(), signal.SIGUSR1)  # the operator's signal arrives during the second game
        entry = _game("win", "white" if white else "black", gid=len(played), opponent="random", clock="60+1")
        return {**entry, "wall_seconds": 60.0}

    monkeypatch.setattr(bench, "running_sandbox", lambda setup: contextlib.nullcontext(FakeSandbox()))
    monkeypatch.setattr(bench, "play_game", play)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)  # never the default (it would kill pytest)
    try:
        code = bench.main(["--opponent", "random", "--games", "10", "--results", str(tmp_path / "results.json")])
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert code == 0
    assert len(played) == 2
    assert [g["game_id"] for g in bench.load_results(tmp_path / "results.json")] == [1, 2]  # both recorded
    captured = capsys.readouterr()
    assert "SIGUSR1: the game under way finishes; no new game starts" in captured.err
    assert "2 of 10 games played; no new game starts now" in captured.err
    assert captured.out.startswith("random at 60+1: 2 games, 2 won"), captured.out
