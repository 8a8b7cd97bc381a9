"""End to end on the OGS sandbox: the shared engine managers bound the engine processes while many games play.

- pool: GNU Go, engine.pool_size 2, six concurrent 9x9 games: all finish, each SGF matches the server, and no more
  than 2 engine processes are ever alive (the daemon's children, sampled while it plays).
- kata_analysis: the scripted fake analysis engine, five concurrent games served by one process that answers out
  of order and crashes once: it is restarted and every game finishes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_record_matches, challenge, sandbox_game, transcript, wait_for

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.daemon import Daemon

# alone: what they count (engines alive, replays incremental or full) depends on how the games interleave, which
# another test's load changes (seen: no incremental replay at all with a second worker's games running)
pytestmark = [pytest.mark.e2e, pytest.mark.alone]

FAKE_KATA = Path(__file__).parent / "fakes" / "fake_kata_analysis.py"


def engine_children(marker: str) -> list[int]:
    """Live (not zombie) descendants of this process whose command line holds ``marker``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if fields and fields[0] not in ("Z", "X"):
                parents[int(entry)] = int(fields[1])
    mine, frontier = set(), [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in mine:
                mine.add(pid)
                frontier.append(pid)
    out = []
    for pid in mine:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(pid)
        except OSError:
            continue
    return out


class Sampler:
    """Counts the engine processes alive every 20 ms until stopped; ``most`` is the highest count seen, ``total`` the
    sum of the counts (``total / samples``: the mean)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.most = 0
        self.samples = 0
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            alive = len(engine_children(self.marker))
            self.most = max(self.most, alive)
            self.total += alive
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def start_daemon(ogs_bot: Callable[..., Daemon]) -> Callable[..., Daemon]:
    """A bot with ``command``, more lines for its engine and daemon sections, ten games at once at most."""

    def start(username: str, command: list[str], engine: str, daemon: str = "") -> Daemon:
        return ogs_bot(username, command, engine=engine, daemon=f"max_concurrent_games: 10\n{daemon}")

    return start


def play_games(sandbox: SandboxServer, bot: str, n: int, timeout: float = 300.0,
               house: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``n`` concurrent 9x9 games of ``bot`` against house players (seeded random ones unless ``house``); returns
    the finished games."""
    ids = []
    for i in range(n):
        player = house or {"house": "random", "delay": 0.02, "seed": 11 + i}
        c = challenge(sandbox, bot, {**player, "username": f"house-{bot}-{i}"},
                      challenger_color="white" if i % 2 else "black")
        ids.append(c["game_id"])
    finished: dict[Any, dict[str, Any]] = {}

    def all_finished() -> bool:
        for gid in ids:
            game = None if gid in finished else sandbox_game(sandbox, gid)
            if game is not None and game.get("phase") == "finished":
                finished[gid] = game
        return len(finished) == n

    try:
        wait_for(all_finished, timeout, f"{n} games to finish", step=0.25)
    except AssertionError:
        raise AssertionError(f"{n - len(finished)} of {n} games did not finish in {timeout:.0f} s") from None
    return [finished[g] for g in ids]


def test_pool_of_two_gnugo_plays_six_concurrent_games(sandbox: SandboxServer, gnugo_command: list[str],
                                                     start_daemon: Callable[..., Daemon]) -> None:
    bot = start_daemon("pool-bot", gnugo_command, "manager: pool\npool_size: 2", "engine_idle_timeout: 0.3")
    sampler = Sampler("gnugo")
    try:
        games = play_games(sandbox, "pool-bot", 6)
    finally:
        sampler.stop()
    assert sampler.samples > 20 and 1 <= sampler.most <= 2, (sampler.most, sampler.samples)
    for game in games:
        assert game["outcome"], game
        assert_record_matches(bot, game)
    assert sum(len(g["moves"]) for g in games) > 60
    pool = bot.go_engines
    assert getattr(pool, "incremental_replays", 0) > 0 and getattr(pool, "full_replays", 0) > 0
    # every game's transcript shows the engine lines of its own moves
    texts = [transcript(bot, g["game_id"])
             for g in games]
    assert all("leased from the pool" in t and " genmove " in t for t in texts)
    assert any(" final_status_list dead" in t for t in texts)  # the stone removal decision leases an engine too


def test_kata_analysis_serves_five_games_from_one_process_through_a_crash(
        sandbox: SandboxServer, tmp_path: Path, start_daemon: Callable[..., Daemon]) -> None:
    log = tmp_path / "fake.log"
    command = [sys.executable, str(FAKE_KATA), "--hold", "0.1", "--batch", "3", "--log", str(log),
               "--crash-after", "40", "--once-file", str(tmp_path / "crashed")]
    bot = start_daemon("kata-bot", command, "manager: kata_analysis\nresign_winrate: 0.01")
    sampler = Sampler("fake_kata_analysis")
    try:
        games = play_games(sandbox, "kata-bot", 5)
    finally:
        sampler.stop()
    assert sampler.samples > 20 and sampler.most == 1, (sampler.most, sampler.samples)
    for game in games:
        assert game["outcome"], game
        assert_record_matches(bot, game)
    events = [line.split() for line in log.read_text().splitlines()]
    pids = {pid for pid, event, _ in events if event == "got"}
    assert any(event == "crash" for _, event, _ in events)
    assert len(pids) == 2, pids  # the crashed process, then the one restarted for every game
    assert any(event == "out-of-order" for _, event, _ in events)
    assert sum(len(g["moves"]) for g in games) > 100


def test_per_game_engines_of_slow_games_are_stopped_while_idle(
        sandbox: SandboxServer, gnugo_command: list[str], start_daemon: Callable[..., Daemon]) -> None:
    """per_game at (small) scale: ten concurrent games against opponents that think 1.5 s a move. Each game's engine
    is stopped after daemon.engine_idle_timeout (0.3 s) without use and restarted on its turn, so far fewer engines
    than games are alive on average, and never more than daemon.max_concurrent_games."""
    bot = start_daemon("idle-bot", gnugo_command, "", "engine_idle_timeout: 0.3")
    sampler = Sampler("gnugo")
    slow = {"house": "scripted", "delay": 1.5, "moves": ["aa", "ia", "ai", "ii", "resign"]}
    try:
        games = play_games(sandbox, "idle-bot", 10, house=slow)
    finally:
        sampler.stop()
    mean = sampler.total / sampler.samples
    assert sampler.samples > 100 and sampler.most <= 10 and mean < 6.0, (sampler.most, mean)
    for game in games:
        assert game["outcome"], game
        assert_record_matches(bot, game)
    text = transcript(bot, games[0]["game_id"])
    assert "engine idle for 0.3s: stopping it" in text
