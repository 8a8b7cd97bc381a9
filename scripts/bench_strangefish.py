#!/usr/bin/env python3
"""Head-to-head RBC benchmark over HTTP: the bridge daemon against StrangeFish2 (or a house bot) on the sandbox.

Each game: a reconchess sandbox (``bridge.adapters.reconchess.sandbox``, reconchess's ``LocalGame`` as referee)
on a loopback port with the clock given (default 900 s + 5 s for both sides); the bridge as a real daemon
(``gamebridge run CONFIG``: Stockfish, default ``rbc:`` settings) whose ``server.seek`` invites the opponent
with the colour this game gets; the opponent is

* ``strangefish``: StrangeFish2 at full strength through its own tournament client
  (``scripts/modified_rc_connect.py`` of its checkout, run as it is, with its own Python): it accepts the
  invitation, plays over HTTP, and runs its between-turns computation (``while_we_wait``) while we think;
* ``random``, ``attacker``, ``trout``: reconchess's house bots, played by the sandbox (the regression check).

Colours alternate over the results file (an even number of earlier games against that opponent: we play
white). Each game's history (reconchess's GameHistory JSON) and logs are kept in a folder of its own under
``--out``; one entry per game is appended to ``--results`` (our git commit, colours, winner, win reason,
half-turns, each side's time per turn), so a long run can be split over several sittings. At the end a
summary of every game in the results file: score with its 95 % Wilson interval (overall and per colour),
losses on time, and how each loss happened.

    git clone https://github.com/ginoperrotta/reconchess-strangefish2 ../sf2
    python3 -m venv ../sf2venv && ../sf2venv/bin/pip install numpy tqdm click reconchess==1.6.9
    nice -n 10 python3 scripts/bench_strangefish.py --strangefish ../sf2 --python ../sf2venv/bin/python \\
        --games 2 --seconds 900 --increment 5 --results runs/sf2/results.json --out runs/sf2
    python3 scripts/bench_strangefish.py --opponent trout --games 4 --results runs/house.json --out runs/house
    python3 scripts/bench_strangefish.py --games 0 --results runs/sf2/results.json     # the summary only
    kill -USR1 PID    # the game under way finishes and is recorded, no new one starts (SIGINT or SIGTERM drop it)

StrangeFish2's score cache (``w_cache.pk``, ``b_cache.pk``) and opening books (``opening_books/``) are not in
its repository: it plays without them (its log says so; the results record it). If you have them, put them
in the checkout: the client runs from there and loads them. Its throwaway sandbox password is on its command
line (its client takes it so); the sandbox listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import chess
import reconchess
from reconchess import GameHistory, WinReason

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rbc import wilson

from bridge.adapters.reconchess.sandbox import ReconchessSandbox
from bridge.adapters.reconchess.sandbox.core import SandboxGame

ROOT = Path(__file__).resolve().parent.parent
STOCKFISH = "/usr/games/stockfish"
HOUSE = ("random", "attacker", "trout")
OPPONENTS = ("strangefish", *HOUSE)
OUR_NAME = "bridge"
SF2_NAME = "strangefish2"
SF2_URL = "https://github.com/ginoperrotta/reconchess-strangefish2"
SF2_CLIENT = Path("scripts") / "modified_rc_connect.py"
START_TIMEOUT = 180.0  # seconds for the invitation to be accepted and the game to start
PIECE_NAMES = {chess.PAWN: "pawn", chess.KNIGHT: "knight", chess.BISHOP: "bishop", chess.ROOK: "rook",
               chess.QUEEN: "queen", chess.KING: "king"}


class BenchError(Exception):
    """A failure that ends the run with one line (what, where, what to do)."""


# --- the results file -----------------------------------------------------------------------------------------
def load_results(path: Path) -> list[dict[str, Any]]:
    """The games recorded so far ([] when the file does not exist yet)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"--results {path}: unreadable ({exc}); move it away or name another file") from None
    games = data.get("games") if isinstance(data, dict) else None
    if not isinstance(games, list):
        raise BenchError(f'--results {path}: not a results file (expected {{"games": [...]}}); name another file')
    return games


def append_result(path: Path, game: dict[str, Any]) -> list[dict[str, Any]]:
    """Add one game to the results file (rewritten whole, atomically: a run cut short loses no earlier game)."""
    games = [*load_results(path), game]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"games": games}, indent=1) + "\n")
    os.replace(tmp, path)
    return games


def clock_label(seconds: float, increment: float) -> str:
    return f"{seconds:g}+{increment:g}"


def next_color_is_white(games: list[dict[str, Any]], opponent: str, clock: str) -> bool:
    """Colours alternate per opponent and clock across the whole results file: white after an even count."""
    return sum(1 for g in games if g.get("opponent") == opponent and g.get("clock") == clock) % 2 == 0


def git_commit(root: Path = ROOT) -> str:
    """Our commit, with ``-dirty`` when tracked files differ from it; ``unknown`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


# --- how a game was lost --------------------------------------------------------------------------------------
def _turns(history: GameHistory) -> list[Any]:
    return list(history.turns()) if not history.is_empty() else []


def describe_loss(history: GameHistory, our_color: bool) -> dict[str, Any]:
    """What the history says about a game we lost: win reason, half-turn, whether our king was captured, and a
    one-line guess at what happened."""
    reason = history.get_win_reason()
    turns = _turns(history)
    half_turns = len(turns)
    info: dict[str, Any] = {"win_reason": reason.name if reason is not None else None, "half_turn": half_turns,
                            "king_captured": reason == WinReason.KING_CAPTURE}
    if reason == WinReason.TIMEOUT:
        info["guess"] = f"lost on time at half-turn {half_turns}"
        return info
    if reason == WinReason.RESIGN:
        info["guess"] = f"resigned (or error-resigned) at half-turn {half_turns}"
        return info
    if reason != WinReason.KING_CAPTURE or not turns:
        info["guess"] = f"lost ({info['win_reason']}) at half-turn {half_turns}"
        return info
    last = turns[-1]
    taken = history.taken_move(last)
    before = history.truth_board_before_move(last)
    attacker = before.piece_at(taken.from_square) if taken is not None else None
    piece = PIECE_NAMES[attacker.piece_type] if attacker is not None else "a piece"
    line = (f"king captured by a {piece} ({chess.square_name(taken.from_square)}x"
            f"{chess.square_name(taken.to_square)}) at half-turn {half_turns}") if taken is not None else \
        f"king captured at half-turn {half_turns}"
    ours = [t for t in turns if t.color == our_color]
    if ours:
        mine = ours[-1]
        board = history.truth_board_before_move(mine)
        king = board.king(our_color)
        sense = history.sense(mine)
        seen_from = taken.from_square if taken is not None else None
        if sense is None:
            line += "; we did not sense on our last turn"
        elif king is not None:
            distance = chess.square_distance(sense, king)
            covers_king = distance <= 1
            covers_attacker = seen_from is not None and chess.square_distance(sense, seen_from) <= 1
            where = "next to" if covers_king else f"{distance} squares from"
            line += (f"; our last sense ({chess.square_name(sense)}) was {where} our king "
                     f"({chess.square_name(king)})")
            if seen_from is not None:
                line += (f" and {'saw' if covers_attacker else 'did not see'} the {piece} on "
                         f"{chess.square_name(seen_from)}")
            info["sense_distance_from_king"] = distance
            info["sense_saw_attacker"] = covers_attacker
        info["attacker"] = piece
    info["guess"] = line
    return info


# --- the summary ----------------------------------------------------------------------------------------------
def _score(games: list[dict[str, Any]]) -> tuple[int, int, int, float, float, float]:
    wins = sum(1 for g in games if g["result"] == "win")
    losses = sum(1 for g in games if g["result"] == "loss")
    draws = len(games) - wins - losses
    n = len(games)
    points = wins + draws / 2
    low, high = wilson(points, n)
    return wins, losses, draws, (points / n if n else 0.0), low, high


def _score_line(label: str, games: list[dict[str, Any]]) -> str:
    wins, losses, draws, score, low, high = _score(games)
    return (f"{label}: {len(games)} games, {wins} won, {losses} lost, {draws} drawn: score {score:.0%} "
            f"(95 % Wilson {low:.0%}–{high:.0%})")


def _tally(games: list[dict[str, Any]]) -> str:
    """``won-lost`` (``-drawn`` when there are draws)."""
    wins, losses, draws = _score(games)[:3]
    return f"{wins}-{losses}" + (f"-{draws}" if draws else "")


def _median(values: Iterable[float]) -> str:
    v = list(values)
    return f"{statistics.median(v):.1f}" if v else "-"


def fewest_seconds_left(game: dict[str, Any]) -> float:
    """The fewest seconds we had on the clock after one of our turns (before its increment), from each turn's
    time and the game's clock ("900+5": the start, then the increment added after each turn)."""
    start, _, increment = str(game["clock"]).partition("+")
    left = low = float(start)
    for used in game["seconds_per_turn"]["us"]:
        left -= used
        low = min(low, left)
        left += float(increment or 0)
    return low


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}" if abs(seconds) >= 10 else f"{seconds:.1f}"


def summarize(games: list[dict[str, Any]]) -> list[str]:
    """The summary of every game in a results file, one block per opponent and clock."""
    lines: list[str] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for g in games:
        groups.setdefault((g["opponent"], g["clock"]), []).append(g)
    for (opponent, clock), group in sorted(groups.items()):
        lines.append(_score_line(f"{opponent} at {clock}", group))
        for color in ("white", "black"):
            of_color = [g for g in group if g["our_color"] == color]
            if of_color:
                lines.append("  " + _score_line(f"as {color}", of_color))
        ours_on_time = [g for g in group if g["result"] == "loss" and g["win_reason"] == "TIMEOUT"]
        theirs_on_time = [g for g in group if g["result"] == "win" and g["win_reason"] == "TIMEOUT"]
        crashes = [g for g in group if g.get("opponent_stats", {}).get("crashed")]
        lines.append(f"  losses on time: {len(ours_on_time)} (must be none); the opponent's: {len(theirs_on_time)}"
                     + (f", of which {len(crashes)} a crash of its client (error-resign)" if crashes else ""))
        ours = [t for g in group for t in g["seconds_per_turn"]["us"]]
        theirs = [t for g in group for t in g["seconds_per_turn"]["opponent"]]
        lines.append(f"  seconds a turn, median / max: ours {_median(ours)} / {max(ours, default=0):.1f}, "
                     f"the opponent's {_median(theirs)} / {max(theirs, default=0):.1f}; clock used a game, median: "
                     f"ours {_median(g['seconds_used']['us'] for g in group)} s, the opponent's "
                     f"{_median(g['seconds_used']['opponent'] for g in group)} s")
        lows = sorted((fewest_seconds_left(g), g["game_id"]) for g in group if g["seconds_per_turn"]["us"])
        if lows:
            lines.append(f"  our fewest seconds left after a turn: {_secs(lows[0][0])} s (game {lows[0][1]}); in the "
                         f"median game {_secs(lows[(len(lows) - 1) // 2][0])} s")
        by_commit: dict[str, list[dict[str, Any]]] = {}
        for g in group:  # in the order played: which code (and which rbc.belief) played which games
            by_commit.setdefault(g["commit"][:12] + (" (belief: arrays)" if g.get("belief") == "arrays" else ""),
                                 []).append(g)
        if len(by_commit) > 1:
            lines.append("  by our commit: " + ", ".join(
                f"{commit} {_tally(games_of)}" for commit, games_of in by_commit.items()))
        for g in group:
            if g["result"] == "loss":
                lines.append(f"  lost game {g['game_id']} as {g['our_color']} (commit {g['commit'][:12]}): "
                             f"{g['win_reason']} at half-turn {g['half_turns']}, king captured: "
                             f"{'yes' if g['loss']['king_captured'] else 'no'} — {g['loss']['guess']}")
    return lines


# --- the clock of each side, turn by turn -----------------------------------------------------------------------
class ClockWatch(threading.Thread):
    """Records the seconds each side used on each of its turns, from the referee's clock: woken by the game's
    condition (notified on every sense, move and turn end). A turn missed between two wake-ups (a house bot
    that plays in milliseconds) shares the time of the turns seen with it."""

    def __init__(self, game: SandboxGame) -> None:
        super().__init__(name=f"clock-watch-{game.id}", daemon=True)
        self.game = game
        self.used: dict[bool, list[float]] = {chess.WHITE: [], chess.BLACK: []}
        self.stop = threading.Event()

    def run(self) -> None:
        game = self.game
        start = game.clock.seconds_per_player or 0.0
        increment = game.clock.seconds_increment
        left = {chess.WHITE: start, chess.BLACK: start}
        with game.cond:
            while True:
                local = game.local
                finished = game.finished
                for color in (chess.WHITE, chess.BLACK):
                    begun = sum(1 for t in game.turns if t["color"] == ("white" if color else "black"))
                    to_move = game.started and local.turn == color
                    if not finished:  # turns ended (end_turn): all begun but the one in progress
                        done = begun - (1 if to_move and game.phase != "sense" else 0)
                    else:  # the side to move at the end used its last turn too (a clock that fell before it sensed)
                        done = begun + (1 if to_move and game.phase == "sense" else 0)
                    new = done - len(self.used[color])
                    if new > 0:
                        now_left = local.seconds_left_by_color[color]
                        ended = new - (1 if finished and to_move else 0)  # the game's last turn got no increment
                        spent = left[color] - now_left + increment * ended
                        self.used[color].extend([max(0.0, spent / new)] * new)
                        left[color] = now_left
                if finished or self.stop.is_set():
                    return
                game.cond.wait(1.0)


# --- StrangeFish2 ---------------------------------------------------------------------------------------------
def check_strangefish(checkout: Path, python: str, stockfish: str) -> str:
    """Check the checkout and its Python before the first game; returns its commit (or ``unknown``)."""
    if not (checkout / SF2_CLIENT).is_file() or not (checkout / "strangefish" / "strangefish_strategy.py").is_file():
        raise BenchError(f"--strangefish {checkout}: not a StrangeFish2 checkout (no {SF2_CLIENT}); "
                         f"fetch it with: git clone {SF2_URL}")
    probe = ("import sys, numpy, tqdm, click, chess, reconchess; "
             "from strangefish.strangefish_strategy import StrangeFish2; "
             "print(reconchess.__version__, '%d.%d' % sys.version_info[:2])")
    try:
        out = subprocess.run([python, "-c", probe], cwd=checkout, env=sf2_env(checkout, stockfish),
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"--python {python}: cannot run it ({exc}); give the Python of StrangeFish2's venv") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(f"--python {python} cannot import StrangeFish2 from {checkout}: {last}; install its needs "
                         f"there: pip install numpy tqdm click reconchess=={reconchess.__version__}")
    version, py = out.stdout.split()[-2:]
    if tuple(int(x) for x in py.split(".")) >= (3, 11):
        raise BenchError(f"--python {python} is Python {py}: StrangeFish2 needs 3.10 or older (its sense_min_states "
                         f"calls random.sample on a set, which Python 3.11 refuses: it would crash mid-game); make "
                         f"its venv with python3.10 -m venv")
    if version != reconchess.__version__:
        raise BenchError(f"--python {python} has reconchess {version}, the sandbox serves {reconchess.__version__} "
                         f"(its client refuses a mismatch): pip install reconchess=={reconchess.__version__}")
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sf2_env(checkout: Path, stockfish: str) -> dict[str, str]:
    return dict(os.environ, STOCKFISH_EXECUTABLE=stockfish, PYTHONPATH=str(checkout), RC_DISABLE_PBAR="true",
                PYTHONUNBUFFERED="1")


SF2_PATTERNS = {
    "between_turn_calls": re.compile(r"Running the `while_we_wait` method"),
    "expanded_between_turns": re.compile(r"Expanding (current|stored old) boards for next turn's board set"),
    "set_over_limit": re.compile(r"Board set has exceeded limit, storing"),
    "rebuilt_from_stored": re.compile(r"Repopulating exhausted board set"),
    "aggressive_backup_plan": re.compile(r"Time is running out! Switching to aggressive backup plan"),
}


def strangefish_stats(log: str) -> dict[str, Any]:
    """What StrangeFish2's own game log says: how often its between-turns computation ran, its board set at the
    start of each of its turns, how often the set ran over its limit (1,000) and was rebuilt, what it scored,
    and whether its score cache and opening book were loaded."""
    stats: dict[str, Any] = {k: len(p.findall(log)) for k, p in SF2_PATTERNS.items()}
    boards = [int(n) for n in re.findall(r"There are (\d+) possible boards at the start of our turn", log)]
    stats["boards_at_turn_start"] = boards
    scored = re.search(r"During this game, scored (\d+) positions at average ([\d.]+) seconds per score", log)
    stats["positions_scored"] = int(scored.group(1)) if scored else None
    stats["seconds_per_score"] = float(scored.group(2)) if scored else None
    stats["score_cache_loaded"] = bool(re.search(r"Loaded \d+ cached scores", log))
    stats["opening_book_loaded"] = "Loaded opening book" in log
    return stats


def _descendants(pid: int) -> list[int]:
    """Every live process under ``pid`` (StrangeFish2's client forks a process per game, and its Stockfish is put
    in a process group of its own, so a group kill would miss it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_tree(process: subprocess.Popen[bytes], wait: float) -> None:
    """Let ``process`` exit by itself within ``wait`` seconds; else terminate it and everything it started."""
    try:
        process.wait(wait)
        return
    except subprocess.TimeoutExpired:
        pass
    pids = [*_descendants(process.pid), process.pid]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        try:
            process.wait(10)
            if not any(Path(f"/proc/{p}").exists() for p in pids[:-1]):
                return
            time.sleep(1)  # the children were signalled too; give them a moment before the kill
        except subprocess.TimeoutExpired:
            continue


# --- one game -------------------------------------------------------------------------------------------------
@dataclass
class Setup:
    opponent: str
    seconds: float
    increment: float
    stockfish: str
    threads: int
    hash_mb: int
    out: Path
    results: Path
    strangefish: Path | None = None
    python: str | None = None
    sf2_commit: str | None = None
    belief: str = "boards"  # rbc.belief of our player
    commit: str = field(default_factory=git_commit)

    @property
    def clock(self) -> str:
        return clock_label(self.seconds, self.increment)

    @property
    def opponent_user(self) -> str:
        return SF2_NAME if self.opponent == "strangefish" else self.opponent


def bridge_config(setup: Setup, url: str, white: bool, data_dir: Path) -> str:
    """The daemon's config: our defaults (an ``rbc:`` section only for ``--belief arrays``), seeking exactly one game
    with this colour."""
    rbc = "rbc:\n  belief: arrays\n" if setup.belief == "arrays" else ""
    return f"""server:
  kind: reconchess
  url: {url}
  username: {OUR_NAME}
  password: {{env: BENCH_RBC_PASSWORD}}
  max_games: 1
  seek: {{opponents: [{setup.opponent_user}], color: {'white' if white else 'black'}, max_games: 1, stop_after: 1}}
engine:
  protocol: uci
  command: [{setup.stockfish}]
  options: {{Threads: {setup.threads}, Hash: {setup.hash_mb}}}
daemon:
  max_concurrent_games: 1
  data_dir: {data_dir}
{rbc}"""


def _find_game(sandbox: ReconchessSandbox, known: set[int], processes: dict[str, subprocess.Popen[bytes]],
               logs: dict[str, Path]) -> SandboxGame:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for game in list(sandbox.state.games.values()):
            if game.id not in known and OUR_NAME in game.names.values():
                return game
        _check_alive(processes, logs)
        time.sleep(0.2)
    raise BenchError(f"no game was created within {START_TIMEOUT:.0f} s of starting the daemon; see {logs['bridge']}")


def _check_alive(processes: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path]) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            tail = logs[name].read_text(errors="replace").strip().splitlines()[-3:]
            raise BenchError(f"{name} exited (code {process.returncode}) before its game started; its log "
                             f"{logs[name]} ends: {' | '.join(tail) or '(empty)'}")


def _wait_over(game: SandboxGame, processes: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path]) -> None:
    """Until the referee ends the game (its clock thread ends it even if a side stops playing); before it starts,
    also watch that the invitation is taken and both processes live."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with game.cond:
            game.refresh()
            if game.finished:
                return
            if game.started:
                game.cond.wait(1.0)
                continue
        if time.monotonic() > deadline:
            raise BenchError(f"game {game.id} did not start within {START_TIMEOUT:.0f} s (invitation not "
                             f"accepted?); see {', '.join(str(p) for p in logs.values())}")
        _check_alive(processes, logs)
        time.sleep(0.5)


def play_game(setup: Setup, sandbox: ReconchessSandbox, password: str, sf2_password: str,
              white: bool) -> dict[str, Any]:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = setup.out / f"{setup.opponent}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "bridge.yaml"
    config.write_text(bridge_config(setup, sandbox.url, white, folder / "bridge"))
    logs: dict[str, Path] = {"bridge": folder / "bridge.log"}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    files: list[TextIO] = []
    known = set(sandbox.state.games)
    watch: ClockWatch | None = None
    started = time.monotonic()
    try:
        if setup.opponent == "strangefish":
            assert setup.strangefish is not None and setup.python is not None
            logs["strangefish"] = folder / "strangefish-client.log"
            files.append(logs["strangefish"].open("w"))
            processes["strangefish"] = subprocess.Popen(
                [setup.python, str(SF2_CLIENT), SF2_NAME, sf2_password, "--server-url", sandbox.url,
                 "--max-concurrent-games", "1", "--limit-games", "1"],
                cwd=setup.strangefish, env=sf2_env(setup.strangefish, setup.stockfish), stdin=subprocess.DEVNULL,
                stdout=files[-1], stderr=subprocess.STDOUT, start_new_session=True)
        files.append(logs["bridge"].open("w"))
        processes["bridge"] = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "run", str(config)], cwd=ROOT,
            env=dict(os.environ, BENCH_RBC_PASSWORD=password, PYTHONUNBUFFERED="1"), stdin=subprocess.DEVNULL,
            stdout=files[-1], stderr=subprocess.STDOUT, start_new_session=True)
        game = _find_game(sandbox, known, processes, logs)
        print(f"game {game.id}: {OUR_NAME} ({'white' if white else 'black'}) against {setup.opponent_user}, "
              f"{setup.clock}; logs in {folder}", file=sys.stderr, flush=True)
        watch = ClockWatch(game)
        watch.start()
        _wait_over(game, processes, logs)
        watch.join(10)
        # the daemon finishes its side (its records of the game) before it is stopped
        record = folder / "bridge" / "records" / f"reconchess-{game.id}.pgn"
        deadline = time.monotonic() + 30
        while not record.exists() and processes["bridge"].poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if watch is not None:
            watch.stop.set()
        bridge = processes.get("bridge")
        if bridge is not None and bridge.poll() is None:
            bridge.send_signal(signal.SIGTERM)
        over = watch is not None and game.finished
        for process in processes.values():
            stop_tree(process, 60 if over else 5)  # after the game: time for StrangeFish2's client to finish
        for f in files:
            f.close()
    wall = time.monotonic() - started
    return record_game(setup, game, watch, white, folder, wall)


def record_game(setup: Setup, game: SandboxGame, watch: ClockWatch | None, white: bool, folder: Path,
                wall: float) -> dict[str, Any]:
    history = game.game_history()
    if history is None:
        raise BenchError(f"game {game.id} ended without a history")
    history_path = folder / f"history-{game.id}.json"
    history.save(str(history_path))
    ours = chess.WHITE if white else chess.BLACK
    winner = history.get_winner_color()
    reason = history.get_win_reason()
    result = "draw" if winner is None else ("win" if winner == ours else "loss")
    used = watch.used if watch is not None else {chess.WHITE: [], chess.BLACK: []}
    entry: dict[str, Any] = {
        "opponent": setup.opponent_user,
        "clock": setup.clock,
        "game_id": game.id,
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": setup.commit,
        "belief": setup.belief,
        "our_color": "white" if white else "black",
        "result": result,
        "winner": None if winner is None else ("us" if winner == ours else "opponent"),
        "win_reason": reason.name if reason is not None else None,
        "half_turns": len(_turns(history)),
        "seconds_used": {"us": round(sum(used[ours]), 2), "opponent": round(sum(used[not ours]), 2)},
        "seconds_per_turn": {"us": [round(t, 2) for t in used[ours]],
                             "opponent": [round(t, 2) for t in used[not ours]]},
        "seconds_left": {"us": round(game.local.seconds_left_by_color[ours], 2),
                         "opponent": round(game.local.seconds_left_by_color[not ours], 2)},
        "wall_seconds": round(wall, 1),
        "engine": {"stockfish": setup.stockfish, "threads": setup.threads, "hash_mb": setup.hash_mb},
        "history": str(history_path),
    }
    if result == "loss":
        entry["loss"] = describe_loss(history, ours)
    if setup.opponent == "strangefish":
        assert setup.strangefish is not None
        log = setup.strangefish / "game_logs" / f"game_{game.id}.log"
        if log.exists():
            shutil.copy(log, folder / "strangefish-game.log")
            entry["opponent_stats"] = strangefish_stats(log.read_text(errors="replace"))
        client = folder / "strangefish-client.log"
        crashed = client.exists() and "closed on account of error" in client.read_text(errors="replace")
        entry.setdefault("opponent_stats", {})["crashed"] = crashed  # its client error-resigned: not a real loss
        entry["opponent_commit"] = setup.sf2_commit
    return entry


def game_line(g: dict[str, Any]) -> str:
    return (f"game {g['game_id']} as {g['our_color']}: {g['result']} ({g['win_reason']}) in {g['half_turns']} "
            f"half-turns, {g['wall_seconds']:.0f} s; clock used: ours {g['seconds_used']['us']:.0f} s, the "
            f"opponent's {g['seconds_used']['opponent']:.0f} s")


@contextlib.contextmanager
def running_sandbox(setup: Setup) -> Iterator[ReconchessSandbox]:
    sandbox = ReconchessSandbox("127.0.0.1", 0, seconds_per_player=setup.seconds, seconds_increment=setup.increment,
                                stockfish=setup.stockfish).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def run(setup: Setup, games: int, stop_after: float | None = None,
        finish: threading.Event | None = None) -> list[dict[str, Any]]:
    """Play ``games`` games, each appended to the results as it ends; no new game starts once ``stop_after``
    (a ``time.monotonic()`` instant) has passed or ``finish`` is set (SIGUSR1)."""
    recorded = load_results(setup.results)
    if games <= 0:
        return recorded
    password, sf2_password = secrets.token_hex(12), secrets.token_hex(12)
    with running_sandbox(setup) as sandbox:
        sandbox.add_user(OUR_NAME, password)
        if setup.opponent == "strangefish":
            sandbox.add_user(SF2_NAME, sf2_password)
        for played in range(games):
            why = "--hours" if stop_after is not None and time.monotonic() >= stop_after else \
                "SIGUSR1" if finish is not None and finish.is_set() else None
            if why is not None:
                print(f"{why}: {played} of {games} games played; no new game starts now", file=sys.stderr,
                      flush=True)
                break
            white = next_color_is_white(recorded, setup.opponent_user, setup.clock)
            entry = play_game(setup, sandbox, password, sf2_password, white)
            recorded = append_result(setup.results, entry)
            print(game_line(entry), file=sys.stderr, flush=True)
            if "loss" in entry:
                print(f"  {entry['loss']['guess']}", file=sys.stderr, flush=True)
            stats = entry.get("opponent_stats")
            if stats:
                boards = stats["boards_at_turn_start"]
                print(f"  StrangeFish2: between-turns computation ran {stats['between_turn_calls']} times; board set "
                      f"at its turns' start: max {max(boards, default=0)}, median {_median(boards)}; over its limit "
                      f"{stats['set_over_limit']} times, rebuilt {stats['rebuilt_from_stored']} times; score cache "
                      f"{'loaded' if stats['score_cache_loaded'] else 'absent'}, opening book "
                      f"{'loaded' if stats['opening_book_loaded'] else 'absent'}"
                      + ("; ITS CLIENT CRASHED (error-resigned): see strangefish-client.log"
                         if stats["crashed"] else ""),
                      file=sys.stderr, flush=True)
    return recorded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--opponent", choices=OPPONENTS, default="strangefish")
    parser.add_argument("--strangefish", type=Path, help=f"a checkout of StrangeFish2 (git clone {SF2_URL})")
    parser.add_argument("--python", help="the Python with StrangeFish2's needs (numpy, tqdm, click, reconchess); "
                                         "default: CHECKOUT/.venv/bin/python")
    parser.add_argument("-n", "--games", type=int, default=2, help="games to play now (default 2; 0: summary only)")
    parser.add_argument("--hours", type=float, default=None,
                        help="start no new game once this many hours have passed (the game under way finishes): "
                             "a long run split into sittings that end on time; `kill -USR1 PID` does the same "
                             "at once")
    parser.add_argument("--seconds", type=float, default=900.0, help="seconds per player (default 900)")
    parser.add_argument("--increment", type=float, default=5.0, help="seconds added per turn (default 5)")
    parser.add_argument("--stockfish", default=STOCKFISH, help=f"Stockfish for both sides (default {STOCKFISH})")
    parser.add_argument("--threads", type=int, default=1, help="our Stockfish's threads (default 1)")
    parser.add_argument("--hash", type=int, default=64, help="our Stockfish's hash MB (default 64)")
    parser.add_argument("--belief", choices=("boards", "arrays"), default="boards",
                        help="our player's rbc.belief (default boards, the default of the config)")
    parser.add_argument("--results", type=Path, default=Path("runs/bench_strangefish/results.json"),
                        help="the results file games are appended to (default runs/bench_strangefish/results.json)")
    parser.add_argument("--out", type=Path, default=None, help="where each game's folder goes (default: beside "
                                                               "the results file)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        setup = Setup(opponent=args.opponent, seconds=args.seconds, increment=args.increment,
                      stockfish=args.stockfish, threads=args.threads, hash_mb=args.hash,
                      out=(args.out or args.results.parent).resolve(), results=args.results.resolve(),
                      belief=args.belief)
        if args.games > 0:
            if not os.access(args.stockfish, os.X_OK):
                raise BenchError(f"--stockfish {args.stockfish}: not an executable (apt-get install stockfish)")
            if args.opponent == "strangefish":
                if args.strangefish is None:
                    raise BenchError(f"--opponent strangefish needs --strangefish CHECKOUT (git clone {SF2_URL})")
                setup.strangefish = args.strangefish.resolve()
                setup.python = args.python or str(setup.strangefish / ".venv" / "bin" / "python")
                setup.sf2_commit = check_strangefish(setup.strangefish, setup.python, args.stockfish)
        finish = threading.Event()

        def finish_soon(signum: int, frame: Any) -> None:
            if not finish.is_set():
                finish.set()
                print("bench_strangefish: SIGUSR1: the game under way finishes; no new game starts", file=sys.stderr,
                      flush=True)

        signal.signal(signal.SIGUSR1, finish_soon)

        def stop_now(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt  # as Ctrl-C: the game's processes (daemon, engines, opponent) are stopped

        signal.signal(signal.SIGTERM, stop_now)
        games = run(setup, args.games, None if args.hours is None else time.monotonic() + args.hours * 3600,
                    finish)
    except BenchError as exc:
        print(f"bench_strangefish: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_strangefish: interrupted; the games finished before are in the results file", file=sys.stderr)
        return 130
    print("\n".join(summarize(games)) if games else f"no games in {setup.results} yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
