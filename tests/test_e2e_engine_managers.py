"""End to end on the OGS sandbox: the shared engine managers bound the engine processes while many games play.

- pool: GNU Go, engine.pool_size 2, six concurrent 9x9 games: all finish, each SGF matches the server, and no more
  than 2 engine processes are ever alive (the daemon's children, sampled while it plays).
- kata_analysis: the scripted fake analysis engine, five concurrent games served by one process that answers out
  of order and crashes once: it is restarted and every game finishes.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.adapters.ogs.codec import decode_move_array
from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.games.sgf import read_sgf_moves, read_sgf_property

pytestmark = pytest.mark.e2e

FAKE_KATA = Path(__file__).parent / "fakes" / "fake_kata_analysis.py"
BYOYOMI = {"system": "byoyomi", "time_control": "byoyomi", "speed": "live", "main_time": 120,
           "period_time": 10, "periods": 3, "pause_on_weekends": False}


def api(sandbox: SandboxServer, method: str, path: str, **kw: Any) -> Any:
    r = requests.request(method, f"{sandbox.url}{path}", timeout=10, **kw)
    assert r.status_code < 300, f"{method} {path} -> {r.status_code} {r.text}"
    return r.json()


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
def start_daemon(sandbox: SandboxServer, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Daemon]]:
    daemons: list[Daemon] = []

    def start(username: str, command: list[str], engine: str, daemon: str = "") -> Daemon:
        key = secrets.token_hex(12)
        sandbox.add_bot(username, key)
        monkeypatch.setenv("TEST_KEY_MANAGER", key)
        text = f"""
server:
  kind: ogs
  url: {sandbox.url}
  username: {username}
  api_key: {{env: TEST_KEY_MANAGER}}
engine:
  command: {command!r}
  move_margin: 10
{engine}
daemon:
  data_dir: {tmp_path / username}
  max_concurrent_games: 10
{daemon}
"""
        d = Daemon(load_config_text(text, f"<{username}>"))
        d.start()
        daemons.append(d)
        return d

    yield start
    for d in daemons:
        d.shutdown()


def play_games(sandbox: SandboxServer, bot: str, n: int, timeout: float = 300.0,
               house: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``n`` concurrent 9x9 games of ``bot`` against house players (seeded random ones unless ``house``); returns
    the finished games."""
    ids = []
    for i in range(n):
        player = house or {"house": "random", "delay": 0.02, "seed": 11 + i}
        body = {"target": bot, "challenger": {**player, "username": f"house-{bot}-{i}"},
                "width": 9, "height": 9, "rules": "japanese", "komi": 6.5, "ranked": False, "handicap": 0,
                "time_control": BYOYOMI, "challenger_color": "white" if i % 2 else "black"}
        ids.append(api(sandbox, "POST", "/sandbox/challenges", json=body)["game_id"])
    finished: dict[Any, dict[str, Any]] = {}
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while len(finished) < n and not done.wait(0.25):
            for gid in ids:
                if gid in finished:
                    continue
                r = requests.get(f"{sandbox.url}/sandbox/games/{gid}", timeout=10)
                if r.status_code == 200 and r.json().get("phase") == "finished":
                    finished[gid] = r.json()
    finally:
        deadline.cancel()
    assert len(finished) == n, f"{n - len(finished)} of {n} games did not finish in {timeout:.0f} s"
    return [finished[g] for g in ids]


def assert_record_matches(d: Daemon, game: dict[str, Any]) -> None:
    path = Path(d.config.daemon.data_dir) / "records" / f"ogs-{game['game_id']}.sgf"
    done = threading.Event()
    for _ in range(100):
        if path.exists():
            break
        done.wait(0.2)
    text = path.read_text()
    assert [m for _, m in read_sgf_moves(text)] == [decode_move_array(m) for m in game["moves"]]
    assert read_sgf_property(text, "RE") == game["score"], (game.get("score"), game.get("outcome"))


def test_pool_of_two_gnugo_plays_six_concurrent_games(sandbox: SandboxServer, gnugo_command: list[str],
                                                     start_daemon: Callable[..., Daemon]) -> None:
    bot = start_daemon("pool-bot", gnugo_command, "  manager: pool\n  pool_size: 2", "  engine_idle_timeout: 0.3")
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
    texts = [(Path(bot.config.daemon.data_dir) / "transcripts" / f"ogs-{g['game_id']}.log").read_text()
             for g in games]
    assert all("leased from the pool" in t and " genmove " in t for t in texts)
    assert any(" final_status_list dead" in t for t in texts)  # the stone removal decision leases an engine too


def test_kata_analysis_serves_five_games_from_one_process_through_a_crash(
        sandbox: SandboxServer, tmp_path: Path, start_daemon: Callable[..., Daemon]) -> None:
    log = tmp_path / "fake.log"
    command = [sys.executable, str(FAKE_KATA), "--hold", "0.1", "--batch", "3", "--log", str(log),
               "--crash-after", "40", "--once-file", str(tmp_path / "crashed")]
    bot = start_daemon("kata-bot", command, "  manager: kata_analysis\n  resign_winrate: 0.01")
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
    bot = start_daemon("idle-bot", gnugo_command, "", "  engine_idle_timeout: 0.3")
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
    text = (Path(bot.config.daemon.data_dir) / "transcripts" / f"ogs-{games[0]['game_id']}.log").read_text()
    assert "engine idle for 0.3s: stopping it" in text
