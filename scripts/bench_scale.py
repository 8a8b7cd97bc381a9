#!/usr/bin/env python3
"""Scale benchmark of the OGS path (not run in CI): the daemon's per-move overhead, CPU and memory at 1, 10, 100 and
500 games, against a minimal relay floor measured in the same run.

    python3 scripts/bench_scale.py [--levels 1,10,100,500] [--json bench_scale.json] [--quick]

Levels 500h (500 correspondence games, every engine kept), 500p (500 paced games served by ``engine.manager: pool``
with 4 engines) and 500c (500 correspondence games held with that pool) run when named.

Three kinds of process, so that each one's CPU is its own:
- the OGS sandbox (``python -m bridge.cli sandbox ogs``), whose random house player is the opponent (paced by its
  ``delay``), and which stamps every move it broadcasts (``GET /sandbox/move_times``, the machine's monotonic clock);
- ``gamebridge run`` (``python -m bridge.cli run CONFIG``) with ``scripts/instant_gtp.py``, an engine that answers
  ``genmove`` at once and logs its own think time;
- the relay floor (this script with ``--floor``): one asyncio process, aiohttp's WebSocket, that authenticates as a
  bot of the same sandbox, accepts its challenges and answers every opponent move with the same first-legal-point rule
  in-process: no engine, no bridge;
- the engine relay (``--players relay``; this script with ``--relay``): the same client, but every move comes from
  ``scripts/instant_gtp.py`` over pipes (one process a game, asyncio's subprocess API; the opponent's move and
  ``genmove`` in one write): the floor plus what any bridge to an engine process pays on this machine. Not a
  target's reference (the targets are against the floor); it tells the engine's round trip apart from the bridge's
  own layers;
- the pipe relay (``--players pipe``; ``--pipe``): the engine relay with blocking reads and writes on the engine's
  pipes instead of asyncio's (``os.write`` of the commands, ``os.read`` until the answer is whole): the thinnest
  bridge to an engine process the floor's client can be, for one game (the loop waits while the engine thinks;
  with an instant engine that stalls other games by a fraction of a millisecond a move). Information, as the
  engine relay.

Per-move overhead = the sandbox's broadcast of the bot's move - its broadcast of the opponent's move before it - the
engine's mean think time (0 for the floor), for the bot moves broadcast in the measuring window (which opens once
every game has made its warm-up moves, so engine starts stay out of it).  CPU per move =
the player process's utime+stime over the measuring window / the bot moves broadcast in it (the engines' CPU is
reported apart).  RSS: the daemon's VmRSS at the end of the window, and the engines' total at their most numerous.
Each level runs the floor, then a fresh daemon, on 19x19 games against the random house.

Writes a markdown table on stdout and the numbers as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
DAEMONS = ("bridge", "baseline")  # the players that are this repository's daemon (baseline: --baseline's checkout)
sys.path.insert(0, str(ROOT / "scripts"))
from instant_gtp import Board  # noqa: E402  (scripts/ is not a package)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
LIVE_TC = {"system": "fischer", "time_control": "fischer", "speed": "live", "initial_time": 600,
           "time_increment": 30, "max_time": 1200, "pause_on_weekends": False}
CORRESPONDENCE_TC = {"system": "fischer", "time_control": "fischer", "speed": "correspondence",
                     "initial_time": 3 * 86400, "time_increment": 86400, "max_time": 7 * 86400,
                     "pause_on_weekends": False}


@dataclass
class Level:
    games: int
    delay: float  # the house opponent's seconds per move
    moves: int  # bot moves per game measured after the warm-up
    warm: int = 2  # bot moves per game before the window opens
    correspondence: bool = False
    idle_timeout: float = 300.0  # daemon.engine_idle_timeout
    max_games: int = 0  # daemon.max_concurrent_games (0: games)
    ramp: float = 0.0  # seconds over which the challenges are spread (correspondence games arrive over time)
    pool: int = 0  # engine.manager: pool with this many engines (0: per_game, one engine per game)

    @property
    def name(self) -> str:
        held = ", engines held" if self.correspondence and not self.idle_timeout and not self.pool else ""
        pool = f", pool of {self.pool} engines" if self.pool else ""
        return f"{self.games} {'slow correspondence' if self.correspondence else 'paced'} game" + \
            ("s" if self.games > 1 else "") + held + pool

    @property
    def engine_cap(self) -> int:
        """The most engine processes the daemon may run: the pool's size, else one per game slot."""
        return self.pool or self.max_games or self.games


LEVELS = {
    "1": Level(1, delay=0.05, moves=150),
    "10": Level(10, delay=0.5, moves=40),
    "100": Level(100, delay=1.0, moves=20),
    "500": Level(500, delay=60.0, moves=2, warm=1, correspondence=True, idle_timeout=10.0, max_games=500, ramp=60.0),
    # not in the default run: the same 500 games with every engine kept (engine_idle_timeout 0), so that the
    # daemon's own cost of holding 500 games shows apart from engine restarts; it needs ~6 GB for the engines
    "500h": Level(500, delay=60.0, moves=2, warm=1, correspondence=True, idle_timeout=0.0, max_games=500,
                  ramp=60.0),
    # engine.manager: pool, 4 engines for all the games: 500 paced games at the 100-game level's rate of bot moves
    # (5 s a move each, ~100 a second), every move replayed into whichever engine is free
    "500p": Level(500, delay=5.0, moves=6, pool=4),
    # 500 correspondence games held by one daemon with the same 4 engines: its RSS and the engines alive
    "500c": Level(500, delay=60.0, moves=2, warm=1, correspondence=True, max_games=500, ramp=60.0, pool=4),
}
QUICK = {n: Level(lv.games, lv.delay, max(2, lv.moves // 10), 1, lv.correspondence, lv.idle_timeout, lv.max_games,
                  lv.ramp, lv.pool) for n, lv in LEVELS.items()}


# --- /proc -----------------------------------------------------------------------------------------------------
def proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` itself (its children apart)."""
    s = proc_stat(pid)
    return (int(s[11]) + int(s[12])) / CLK_TCK


def reaped_children_cpu(pid: int) -> float:
    s = proc_stat(pid)
    return (int(s[13]) + int(s[14])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB / 1024


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    return out


@dataclass
class Usage:
    """One sample of a player process and its children (the engines)."""

    cpu: float
    children_cpu: float
    rss: float
    engines: int
    engines_rss: float


def usage(pid: int) -> Usage:
    kids = children(pid)
    kids_cpu, kids_rss, alive = reaped_children_cpu(pid), 0.0, 0
    for k in kids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            kids_cpu += cpu_seconds(k)
            kids_rss += rss_mb(k)
            alive += 1
    return Usage(cpu_seconds(pid), kids_cpu, rss_mb(pid), alive, kids_rss)


# --- the sandbox -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "sandbox.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "sandbox", "ogs", "--port", str(self.port), "--log-level",
             "WARNING"], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.http = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.get(f"{self.url}/sandbox", timeout=5)
                break
            except requests.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the OGS sandbox did not start; see {workdir / 'sandbox.log'}") from None
                time.sleep(0.1)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, f"{self.url}{path}", timeout=60, **kw)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path} -> {r.status_code} {r.text[:300]}")
        return r.json()

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self.http.close()
        self.log.close()


def stop_process(proc: subprocess.Popen[Any], grace: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# --- one level, one player -------------------------------------------------------------------------------------
@dataclass
class Result:
    player: str  # "floor", "relay", "pipe", "bridge" or "baseline"
    level: str
    games: int
    key: str  # the level's key for --levels
    moves_measured: int = 0  # overhead samples
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    mean: float = 0.0
    engine_us: float = 0.0  # mean engine think time subtracted
    window_s: float = 0.0
    window_moves: int = 0
    cpu_ms_per_move: float = 0.0
    engines_cpu_ms_per_move: float = 0.0
    sandbox_cpu_pct: float = 0.0
    rss_mb: float = 0.0
    engines_alive_max: int = 0
    engines_alive_window_max: int = 0
    engines_alive_end: int = 0
    engines_rss_mb_max: float = 0.0
    games_finished_early: int = 0
    notes: list[str] = field(default_factory=list)
    runs: int = 1  # runs pooled into this row (--repeat)
    runs_p50: list[float] = field(default_factory=list)  # each run's own p50
    runs_cpu: list[float] = field(default_factory=list)  # each run's own CPU ms per move
    overheads: list[float] = field(default_factory=list)  # the samples (not written to the JSON)
    cpu_s: float = 0.0  # the player's CPU seconds over the window(s)
    engines_cpu_s: float = 0.0


def pooled(runs: list[Result]) -> Result:
    """One row from several runs of a level by one player: percentiles over all their samples, CPU per move
    over all their moves, the largest memory and engine counts."""
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    out = Result(first.player, first.level, first.games, first.key, runs=len(runs),
                 runs_p50=[r.p50 for r in runs], runs_cpu=[r.cpu_ms_per_move for r in runs])
    out.overheads = [x for r in runs for x in r.overheads]
    out.engine_us = statistics.mean(r.engine_us for r in runs)
    out.window_s = sum(r.window_s for r in runs)
    out.window_moves = sum(r.window_moves for r in runs)
    out.cpu_s = sum(r.cpu_s for r in runs)
    out.engines_cpu_s = sum(r.engines_cpu_s for r in runs)
    derive(out)
    out.sandbox_cpu_pct = statistics.mean(r.sandbox_cpu_pct for r in runs)
    out.rss_mb = max(r.rss_mb for r in runs)
    out.engines_alive_max = max(r.engines_alive_max for r in runs)
    out.engines_alive_window_max = max(r.engines_alive_window_max for r in runs)
    out.engines_alive_end = max(r.engines_alive_end for r in runs)
    out.engines_rss_mb_max = max(r.engines_rss_mb_max for r in runs)
    out.games_finished_early = sum(r.games_finished_early for r in runs)
    out.notes = [n for r in runs for n in r.notes]
    return out


def derive(res: Result) -> None:
    """The row's statistics from its samples and totals: percentiles, mean, CPU per move."""
    res.moves_measured = len(res.overheads)
    res.p50, res.p90, res.p99 = pct(res.overheads, .5), pct(res.overheads, .9), pct(res.overheads, .99)
    res.mean = statistics.mean(res.overheads) if res.overheads else 0.0
    if res.window_moves:
        res.cpu_ms_per_move = res.cpu_s * 1000 / res.window_moves
        res.engines_cpu_ms_per_move = res.engines_cpu_s * 1000 / res.window_moves


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def daemon_config(level: Level, url: str, username: str, times_file: Path, data_dir: Path) -> str:
    """The bridge's configuration for ``level``: the instant engine, per-game engines or the level's pool, slots
    for all its games."""
    pool = f"  manager: pool\n  pool_size: {level.pool}\n" if level.pool else ""
    return f"""
server:
  kind: ogs
  url: {url}
  username: {username}
  api_key: {{env: BENCH_SCALE_KEY}}
  accept:
    board_sizes: [19]
    max_games_per_opponent: {level.games}
    speeds: {{live: {{allowed: true}}, correspondence: {{allowed: true}}}}
engine:
  command: [{sys.executable}, -S, {ROOT / 'scripts' / 'instant_gtp.py'}, --times, {times_file}]
{pool}daemon:
  data_dir: {data_dir}
  max_concurrent_games: {level.max_games or level.games}
  engine_idle_timeout: {level.idle_timeout}
"""


def run_level(sb: Sandbox, key: str, level: Level, player: str, workdir: Path, log: Callable[[str], None],
              profile: Path | None = None, baseline: Path | None = None) -> Result:
    username = f"{player}-{secrets.token_hex(3)}"  # a fresh account: no game of an earlier level comes back
    apikey = secrets.token_hex(16)
    sb.call("POST", "/sandbox/bots", json={"username": username, "apikey": apikey})
    env = {**os.environ, "BENCH_SCALE_KEY": apikey}
    times_file = workdir / f"engine-times-{username}.txt"
    out = open(workdir / f"{username}.log", "w")
    if player == "floor":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--floor", sb.url, username]
    elif player in ("relay", "pipe"):
        cmd = [sys.executable, str(Path(__file__).resolve()), f"--{player}", sb.url, username, str(times_file)]
    else:
        config = workdir / f"{username}.yaml"
        config.write_text(daemon_config(level, sb.url, username, times_file, workdir / username))
        cmd = [sys.executable, "-m", "bridge.cli", "run", str(config)]
        if profile is not None:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--profiled", str(profile), "--", *cmd[1:]]
    # the baseline: the same daemon command in another checkout (``-m`` imports the package of the working folder)
    cwd = baseline if player == "baseline" and baseline is not None else ROOT
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    res = Result(player, level.name, level.games, key)
    try:
        _wait(lambda: any(c["username"] == username and c["authenticated"]
                          for c in sb.call("GET", "/sandbox/connections")), 60, f"{player} to connect", proc)
        for i in range(level.games):
            sb.call("POST", "/sandbox/challenges", json={
                "target": username, "width": 19, "height": 19, "rules": "japanese", "komi": 6.5,
                "challenger": {"house": "random", "delay": level.delay, "username": "bench-house"},
                "challenger_color": "white" if i % 2 else "black",
                "time_control": CORRESPONDENCE_TC if level.correspondence else LIVE_TC})
            if level.ramp:
                time.sleep(level.ramp / level.games)
        log(f"  {player}: {level.games} challenges sent")

        def mine() -> list[dict[str, Any]]:
            rows = sb.call("GET", "/sandbox/move_times", params={"times": "0"})
            return [r for r in rows if username in (r["black"], r["white"])]

        def bot_moves(row: dict[str, Any]) -> int:
            color = "black" if row["black"] == username else "white"
            return sum(1 for c in row["move_colors"] if c == color)

        def reached(n: int, base: dict[int, int] | None = None) -> Callable[[], bool]:
            """Every game has made ``n`` bot moves (beyond its count in ``base``) or is over."""
            def check() -> bool:
                rows = mine()
                if len(rows) < level.games:
                    refused = [c for c in sb.call("GET", "/sandbox/challenges")
                               if c["target"] == username and c["state"] == "rejected"]
                    if refused:
                        raise RuntimeError(f"{player} declined {len(refused)} challenge(s): {refused[0]['message']}")
                return len(rows) == level.games and all(
                    r["phase"] != "play" or bot_moves(r) >= n + (base or {}).get(r["game_id"], 0) for r in rows)
            return check

        samples: list[Usage] = []
        sampling = [True]

        def sampler() -> None:
            while sampling[0]:
                with contextlib.suppress(OSError, IndexError, ValueError):
                    samples.append(usage(proc.pid))
                time.sleep(1.0)

        import threading
        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        budget = 120 + level.games * 0.5 + level.warm * level.delay * 4
        _wait(reached(level.warm), budget, f"{level.games} games to reach {level.warm} bot moves", proc)
        n_window_start = len(samples)
        t0, u0, s0 = time.monotonic(), usage(proc.pid), cpu_seconds(sb.proc.pid)
        base = {r["game_id"]: bot_moves(r) for r in mine()}
        log(f"  {player}: window open")
        budget = 120 + (level.moves + 2) * level.delay * 4 + level.games * 0.2
        _wait(reached(level.moves, base), budget, f"{level.moves} more bot moves per game", proc)
        t1, u1, s1 = time.monotonic(), usage(proc.pid), cpu_seconds(sb.proc.pid)
        sampling[0] = False
        thread.join()
        window_samples = [*samples[n_window_start:], u1]
        rows = [r for r in sb.call("GET", "/sandbox/move_times") if username in (r["black"], r["white"])]

        engine_times: list[float] = []
        if times_file.exists():
            engine_times = [float(x) for x in times_file.read_text().split()]
        engine_ms = statistics.mean(engine_times) / 1000 if engine_times else 0.0
        overheads: list[float] = []
        window_moves = 0
        for r in rows:
            color = "black" if r["black"] == username else "white"
            first = True
            for k, (c, t) in enumerate(zip(r["move_colors"], r["times"], strict=False)):
                if c != color:
                    continue
                if not t0 <= t <= t1:
                    first = False
                    continue
                window_moves += 1
                if not first and k > 0 and r["move_colors"][k - 1] != color:
                    overheads.append((t - r["times"][k - 1]) * 1000 - engine_ms)
                first = False
            if r["phase"] != "play":
                res.games_finished_early += 1
        res.overheads = overheads
        res.engine_us = engine_ms * 1000
        res.window_s = t1 - t0
        res.window_moves = window_moves
        res.cpu_s, res.engines_cpu_s = u1.cpu - u0.cpu, u1.children_cpu - u0.children_cpu
        derive(res)
        res.runs_p50 = [res.p50]
        res.runs_cpu = [res.cpu_ms_per_move]
        res.sandbox_cpu_pct = (s1 - s0) / res.window_s * 100 if res.window_s else 0.0
        res.rss_mb = u1.rss
        res.engines_alive_max = max((s.engines for s in [*samples, u1]), default=0)
        res.engines_alive_window_max = max((s.engines for s in window_samples), default=0)
        res.engines_alive_end = u1.engines
        res.engines_rss_mb_max = max((s.engines_rss for s in [*samples, u1]), default=0.0)
        log(f"  {player}: {res.moves_measured} moves, p50 {res.p50:.2f} ms, p99 {res.p99:.2f} ms, "
            f"{res.cpu_ms_per_move:.2f} ms CPU/move, RSS {res.rss_mb:.0f} MB, engines <= {res.engines_alive_max}")
    finally:
        stop_process(proc, 60)
        out.close()
        for r in sb.call("GET", "/sandbox/move_times", params={"times": "0"}):
            if username in (r["black"], r["white"]) and r["phase"] == "play":
                with contextlib.suppress(RuntimeError):
                    sb.call("POST", f"/sandbox/games/{r['game_id']}/resign", json={"username": "bench-house"})
    return res


def _wait(predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[Any],
          step: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"the player process exited (status {proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


# --- the relay floor -------------------------------------------------------------------------------------------
class RelayEngine:
    """One ``instant_gtp.py`` process for one game of the engine relay: GTP over asyncio's subprocess pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, times_file: str) -> RelayEngine:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-S", str(ROOT / "scripts" / "instant_gtp.py"), "--times", times_file,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(proc)

    async def ask(self, *commands: str) -> str:
        """Send ``commands`` in one write; the last one's answer (each answer: ``= text`` then a blank line)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("".join(c + "\n" for c in commands).encode())
        answer = ""
        for _ in commands:
            line = await self.proc.stdout.readline()
            if not line.startswith((b"=", b"?")):
                raise RuntimeError(f"the engine answered {line!r} to {commands}")
            answer = line[1:].decode().strip()
            await self.proc.stdout.readline()  # the blank line that ends an answer
        return answer

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class PipeEngine:
    """One ``instant_gtp.py`` process for one game of the pipe relay: GTP over the pipes' file descriptors, a
    blocking write and blocking reads (the event loop waits for the answer)."""

    def __init__(self, times_file: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", str(ROOT / "scripts" / "instant_gtp.py"), "--times", times_file],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.pending = b""  # what was read beyond the last answer

    async def ask(self, *commands: str) -> str:
        """Send ``commands`` in one write; the last one's answer (each answer: ``= text`` then a blank line)."""
        os.write(self.stdin, "".join(c + "\n" for c in commands).encode())
        answer = ""
        for _ in commands:
            while b"\n\n" not in self.pending:
                data = os.read(self.stdout, 65536)
                if not data:
                    raise RuntimeError(f"the engine closed its output after {commands}")
                self.pending += data
            reply, self.pending = self.pending.split(b"\n\n", 1)
            if not reply.startswith((b"=", b"?")):
                raise RuntimeError(f"the engine answered {reply!r} to {commands}")
            answer = reply[1:].decode().strip()
        return answer

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()


async def floor_client(url: str, username: str, key: str, times_file: str | None = None,
                       blocking: bool = False) -> None:
    """Authenticate as ``username``, accept every challenge, answer every opponent move with the board's first
    legal point: the least a relay between OGS and a move generator can do. With ``times_file``, the engine
    relay: each game's moves come from an ``instant_gtp.py`` process instead (its think times go to the file),
    over asyncio's pipes, or with ``blocking`` over the pipes' descriptors (the pipe relay)."""
    import aiohttp

    boards: dict[int, tuple[Board, int]] = {}  # game id -> (board, my colour code)
    engines: dict[int, RelayEngine | PipeEngine] = {}

    def letter(color: int) -> str:  # a colour code as GTP writes it
        return "b" if color == 1 else "w"

    def point(board: Board, mv: list[int]) -> int | None:  # an OGS [x, y] move (x < 0: a pass) as a board point
        return None if mv[0] < 0 else mv[0] + mv[1] * board.width
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url.replace("http", "ws", 1) + "/", heartbeat=None, max_msg_size=0)

        async def send(command: str, data: dict[str, Any]) -> None:
            await ws.send_str(json.dumps([command, data]))

        async def accept(challenge_id: int) -> None:
            async with http.post(f"{url}/api/v1/me/challenges/{challenge_id}/accept",
                                 json={"apikey": key, "username": username}) as r:
                await r.read()

        async def move(gid: int, before: tuple[str, ...] = ()) -> None:
            board, me = boards[gid]
            engine = engines.get(gid)
            if engine is None:
                p = board.first_legal(me)
            else:
                p = board.parse_vertex(await engine.ask(*before, f"genmove {letter(me)}"))
            board.play(me, p)
            await send("game/move", {"game_id": gid, "move": [-1, -1] if p is None else
                                     [p % board.width, p // board.width]})

        def drop(gid: int) -> None:
            boards.pop(gid, None)
            engine = engines.pop(gid, None)
            if engine is not None:
                engine.close()

        await send("authenticate", {"jwt": "", "bot_username": username, "bot_apikey": key})
        tasks: set[asyncio.Task[None]] = set()
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            item = json.loads(msg.data)
            event, data = item[0], item[1] if len(item) > 1 else None
            if not isinstance(event, str) or not isinstance(data, dict | str | int | list):
                continue
            if event == "notification" and isinstance(data, dict) and data.get("type") == "challenge":
                task = asyncio.get_running_loop().create_task(accept(data["challenge_id"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif event == "active_game" and isinstance(data, dict):
                if data.get("phase") == "play" and data["id"] not in boards:
                    await send("game/connect", {"game_id": data["id"], "chat": False})
            elif event.startswith("game/"):
                _, gid_text, kind = event.split("/", 2)
                gid = int(gid_text)
                if kind == "gamedata" and isinstance(data, dict):
                    if data.get("phase") != "play":
                        drop(gid)
                        continue
                    board = Board(data["width"], data["height"])
                    me = 1 if data["players"]["black"]["username"] == username else 2
                    color = 1 if data.get("initial_player", "black") == "black" else 2
                    setup = [f"boardsize {board.width}", "clear_board"]
                    for mv in data["moves"]:
                        p = point(board, mv)
                        board.play(color, p)
                        setup.append(f"play {letter(color)} {board.vertex(p)}")
                        color = 3 - color
                    boards[gid] = (board, me)
                    if times_file is not None:
                        if gid in engines:
                            engines.pop(gid).close()
                        engines[gid] = PipeEngine(times_file) if blocking else await RelayEngine.start(times_file)
                        await engines[gid].ask(*setup)
                    if color == me:
                        await move(gid)
                elif kind == "move" and isinstance(data, dict) and gid in boards:
                    board, me = boards[gid]
                    mv = data["move"]
                    mover = 2 if data["move_number"] % 2 == 0 else 1  # no handicap: black plays the odd numbers
                    if mover != me:
                        p = point(board, mv)
                        board.play(mover, p)
                        await move(gid, (f"play {letter(mover)} {board.vertex(p)}",))
                elif kind == "phase" and data != "play":
                    drop(gid)


# --- profiling ----------------------------------------------------------------------------------------------
def profiled(out: Path, argv: list[str]) -> None:
    """Run ``python argv...`` (``-m module args``) in this process with cProfile on in every thread, and write the
    merged statistics to ``out`` when it exits (``pstats``; SIGTERM ends the daemon through its own handler).
    The profiler's clock is each thread's CPU time (``time.thread_time``), so a thread blocked on a pipe, a socket or
    a lock costs nothing: the times are CPU, the profiler's own cost included."""
    import cProfile
    import pstats
    import runpy
    import threading

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]  # run() may be overridden
    threads: dict[str, float] = {}  # thread name (digits dropped) -> CPU seconds, with no profiler: --thread-cpu
    alive: list[tuple[str, int]] = []
    cpu_only = out.suffix == ".json"

    def kind(thread: threading.Thread) -> str:
        return "".join(c for c in thread.name if not c.isdigit())

    def profiled_bootstrap(self: threading.Thread) -> None:
        if cpu_only:
            with lock:
                alive.append((kind(self), threading.get_native_id()))
            try:
                bootstrap(self)
            finally:
                with lock:
                    alive.remove((kind(self), threading.get_native_id()))
                    threads[kind(self)] = threads.get(kind(self), 0.0) + time.thread_time()
            return
        prof = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(prof)
        prof.enable()
        try:
            bootstrap(self)
        finally:
            prof.disable()

    threading.Thread._bootstrap_inner = profiled_bootstrap  # type: ignore[attr-defined]
    main_prof = cProfile.Profile(time.thread_time)
    profiles.append(main_prof)
    if argv[:1] != ["-m"] or len(argv) < 2:
        raise SystemExit("--profiled: give -m MODULE ARGS...")
    sys.argv = [argv[1], *argv[2:]]
    sys.path[0] = str(ROOT)  # the module comes from this checkout, as with ``python -m`` from ROOT
    try:
        if not cpu_only:
            main_prof.enable()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    finally:
        main_prof.disable()
        if cpu_only:
            with lock:
                threads["main"] = time.thread_time()
                for name, tid in alive:  # still running: their CPU so far
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        s = proc_stat(tid)
                        threads[name] = threads.get(name, 0.0) + (int(s[11]) + int(s[12])) / CLK_TCK
            out.write_text(json.dumps(threads, indent=1))
        else:
            with lock:
                for prof in profiles:  # threads still running are stopped here: their numbers up to now count
                    prof.disable()
                stats = pstats.Stats(profiles[0])
                for prof in profiles[1:]:
                    with contextlib.suppress(TypeError):  # a profile that never ran has no stats
                        stats.add(prof)
            stats.dump_stats(str(out))


# --- report ----------------------------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    floors = {r.key: r for r in results if r.player == "floor"}
    lines = ["| level | player | moves | p50 ms | p90 ms | p99 ms | × floor p50 | × floor p99 | CPU ms/move "
             "| engines CPU ms/move | RSS MB | engines alive (max / end) | engines RSS MB (max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f = floors.get(r.key) or floors.get(r.key.rstrip("hc"))
        ratio50 = f"{r.p50 / f.p50:.1f}" if f and f.p50 > 0 else "—"
        ratio99 = f"{r.p99 / f.p99:.1f}" if f and f.p99 > 0 else "—"
        engines = f"{r.engines_alive_max} / {r.engines_alive_end}" if r.player in DAEMONS else "—"
        eng_rss = f"{r.engines_rss_mb_max:.0f}" if r.player in DAEMONS else "—"
        eng_cpu = f"{r.engines_cpu_ms_per_move:.2f}" if r.player != "floor" else "—"
        lines.append(f"| {r.level} | {r.player} | {r.moves_measured} | {r.p50:.2f} | {r.p90:.2f} | {r.p99:.2f} | "
                     f"{ratio50 if r.player != 'floor' else '1'} | {ratio99 if r.player != 'floor' else '1'} | "
                     f"{r.cpu_ms_per_move:.2f} | {eng_cpu} | {r.rss_mb:.0f} | {engines} | {eng_rss} |")
    return "\n".join(lines)


def targets(results: list[Result]) -> list[tuple[str, bool | None, str]]:
    """The issue's targets: (what, met (None: not measured), the numbers)."""
    by = {(r.key, r.player): r for r in results}
    out: list[tuple[str, bool | None, str]] = []

    def get(key: str, player: str) -> Result | None:
        return by.get((key, player))

    b1, f1 = get("1", "bridge"), get("1", "floor")
    if b1 and f1:
        out.append(("1 game: p50 ≤ 1.5 × floor", b1.p50 <= 1.5 * f1.p50, f"{b1.p50:.2f} vs 1.5 × {f1.p50:.2f}"))
        out.append(("1 game: p99 ≤ 3 ms", b1.p99 <= 3.0, f"{b1.p99:.2f} ms"))
    b100, f100 = get("100", "bridge"), get("100", "floor")
    if b100 and f100:
        out.append(("100 games: p50 ≤ 3 × floor", b100.p50 <= 3 * f100.p50,
                    f"{b100.p50:.2f} vs 3 × {f100.p50:.2f}"))
        out.append(("100 games: CPU ≤ 0.8 ms per move", b100.cpu_ms_per_move <= 0.8,
                    f"{b100.cpu_ms_per_move:.2f} ms"))
    b10 = get("10", "bridge")
    for key in ("500", "500h", "500p", "500c"):
        b = get(key, "bridge")
        if b10 and b:
            out.append((f"{b.level}: CPU per move ≤ 1.5 × at 10", b.cpu_ms_per_move <= 1.5 * b10.cpu_ms_per_move,
                        f"{b.cpu_ms_per_move:.2f} vs 1.5 × {b10.cpu_ms_per_move:.2f}"))
        if b:
            lv = LEVELS[key]
            out.append((f"{b.level}: RSS ≤ 150 MB", b.rss_mb <= 150, f"{b.rss_mb:.0f} MB"))
            out.append((f"{b.level}: engines ≤ the configured number ({lv.engine_cap})",
                        b.engines_alive_max <= lv.engine_cap, f"max {b.engines_alive_max}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,10,100,500",
                    help="comma-separated levels among 1, 10, 100, 500, 500h (500 games with every engine kept), "
                         "500p (500 paced games, a pool of 4 engines) and 500c (500 correspondence games, the same "
                         "pool)")
    ap.add_argument("--json", default="bench_scale.json", help="where to write the numbers")
    ap.add_argument("--quick", action="store_true", help="a tenth of the moves (a smoke run)")
    ap.add_argument("--players", default="floor,bridge",
                    help="which players to run, in turn: floor, relay (the floor asking an instant engine "
                         "process over asyncio's pipes), pipe (the same over blocking pipes), bridge, baseline (the "
                         "bridge of the --baseline checkout; default floor,bridge)")
    ap.add_argument("--baseline", help="another checkout of this repository (e.g. a git worktree at another commit): "
                                       "the player 'baseline' runs its daemon, so that two versions take turns in "
                                       "one run and each run's bridge/baseline ratios are printed (an A/B test)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each level N times, the players taking turns (floor, bridge, floor, ...), and pool "
                         "each player's samples: a load that comes and goes then weighs on both alike")
    ap.add_argument("--workdir", help="keep logs, configs and transcripts here (default: a temporary folder)")
    ap.add_argument("--profile", help="run the daemon under cProfile, every thread, and write its statistics to "
                                      "PROFILE-LEVEL.pstats (the profiler's own cost is in the times)")
    ap.add_argument("--thread-cpu", help="no profiler: write each kind of daemon thread's CPU seconds, start-up "
                                         "included, to THREAD_CPU-LEVEL.json")
    ap.add_argument("--floor", nargs=2, metavar=("URL", "USERNAME"), help=argparse.SUPPRESS)
    ap.add_argument("--relay", nargs=3, metavar=("URL", "USERNAME", "TIMES"), help=argparse.SUPPRESS)
    ap.add_argument("--pipe", nargs=3, metavar=("URL", "USERNAME", "TIMES"), help=argparse.SUPPRESS)
    ap.add_argument("--profiled", help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.profiled:
        profiled(Path(args.profiled), args.rest[1:] if args.rest[:1] == ["--"] else args.rest)
        return
    if args.floor or args.relay or args.pipe:  # the floor (URL USERNAME) or a relay (URL USERNAME TIMES)
        url, username, *times = args.floor or args.relay or args.pipe
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            asyncio.run(floor_client(url, username, os.environ["BENCH_SCALE_KEY"], times[0] if times else None,
                                     blocking=bool(args.pipe)))
        return
    chosen = LEVELS if not args.quick else QUICK
    try:
        levels = [(n, chosen[n]) for n in args.levels.split(",")]
    except KeyError:
        raise SystemExit(f"--levels: choose among {', '.join(map(str, LEVELS))}, got {args.levels!r}") from None
    players = [p for p in args.players.split(",") if p]
    if not players or set(players) - {"floor", "relay", "pipe", *DAEMONS}:
        raise SystemExit(f"--players: among floor, relay, pipe, bridge and baseline, got {args.players!r}")
    baseline = Path(args.baseline).resolve() if args.baseline else None
    if ("baseline" in players) != (baseline is not None):
        raise SystemExit("--baseline DIR and the player 'baseline' go together")
    if baseline is not None and not (baseline / "bridge" / "cli.py").is_file():
        raise SystemExit(f"--baseline: {baseline} is not a checkout of this repository (no bridge/cli.py)")

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        workdir = Path(args.workdir) if args.workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()
        started = time.time()
        sb = Sandbox(workdir)
        stack.callback(sb.stop)
        results: list[Result] = []
        for key, level in levels:
            runs: dict[str, list[Result]] = {}
            for rep in range(max(args.repeat, 1)):
                for player in players:
                    if player in ("floor", "relay", "pipe") and key in ("500h", "500c"):
                        continue  # the same games as 500 for the floor (it holds no engine)
                    log(f"{level.name}: {player}" + (f" (run {rep + 1} of {args.repeat})" if args.repeat > 1 else ""))
                    prof = None
                    if args.profile and player == "bridge":
                        prof = Path(f"{args.profile}-{key}.pstats")
                    elif args.thread_cpu and player == "bridge":
                        prof = Path(f"{args.thread_cpu}-{key}.json")
                    runs.setdefault(player, []).append(run_level(sb, key, level, player, workdir, log, prof,
                                                                 baseline))
            results += [pooled(r) for r in runs.values()]
        meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
                "seconds": round(time.time() - started), "cpus": os.cpu_count(), "load_before": load,
                "load_after": os.getloadavg(), "python": sys.version.split()[0], "quick": args.quick,
                "levels": {key: {"name": lv.name, **asdict(lv)} for key, lv in levels}, "repeat": args.repeat}
    rows = [{k: v for k, v in asdict(r).items() if k != "overheads"} for r in results]
    Path(args.json).write_text(json.dumps({"meta": meta, "results": rows,
                                           "targets": [{"target": t, "met": m, "measured": v}
                                                       for t, m, v in targets(results)]}, indent=1))
    print(table(results))
    print()
    for t, met, value in targets(results):
        print(f"- {t}: {'met' if met else 'NOT met'} ({value})")
    for kind, what in (("relay", "engine relay"), ("pipe", "pipe relay")):
        relays = {r.key: r for r in results if r.player == kind}
        for r in results:
            relay = relays.get(r.key)
            if r.player == "bridge" and relay is not None and relay.p50 > 0:
                print(f"- {r.level}: the bridge's p50 is {r.p50 / relay.p50:.2f} x the {what}'s "
                      f"({r.p50:.2f} vs {relay.p50:.2f} ms; information, not a target)")
    bases = {r.key: r for r in results if r.player == "baseline"}
    for r in results:
        base = bases.get(r.key)
        if r.player == "bridge" and base is not None and base.p50 > 0 and base.cpu_ms_per_move > 0:
            pairs = list(zip(r.runs_p50, base.runs_p50, strict=True))
            cpus = list(zip(r.runs_cpu, base.runs_cpu, strict=True))
            print(f"- {r.level}: bridge / baseline, pooled: p50 {r.p50 / base.p50:.3f}, CPU a move "
                  f"{r.cpu_ms_per_move / base.cpu_ms_per_move:.3f}; run by run, p50 "
                  + ", ".join(f"{a / b:.2f}" for a, b in pairs if b > 0) + "; CPU "
                  + ", ".join(f"{a / b:.2f}" for a, b in cpus if b > 0)
                  + f" (the bridge faster in {sum(a < b for a, b in pairs)} of {len(pairs)} runs' p50)")
    for r in results:
        if r.runs > 1:
            print(f"- {r.level}, {r.player}: {r.runs} runs pooled; each run's p50: "
                  + ", ".join(f"{x:.2f}" for x in r.runs_p50) + " ms")
    print(f"\nload average before {load[0]:.2f}, after {meta['load_after'][0]:.2f}; {meta['seconds']} s; "
          f"numbers in {args.json}")


if __name__ == "__main__":
    main()
