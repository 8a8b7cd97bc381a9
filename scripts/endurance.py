#!/usr/bin/env python3
"""Endurance benchmark of a long-running daemon (not run in CI): many OGS games one after another through one
``gamebridge run``, and what the daemon holds between them — memory, threads, open files, engine processes, the
data folder. A daemon under systemd for weeks plays thousands of games; a resource kept per game (a thread never
joined, a socket or pipe never closed, a session or a game's state never dropped) shows as a count that climbs with
the games, long before it takes the service down.

    python3 scripts/endurance.py [--games 300] [--concurrent 4] [--sample-every 25] [--json FILE] [--keep DIR]
    python3 scripts/endurance.py --server reconchess --games 40 --concurrent 2 --sample-every 4

OGS (the default): the OGS sandbox (``python -m bridge.cli sandbox ogs``) serves the games; the daemon plays them with
``scripts/instant_gtp.py`` (an engine that answers at once), per-game engines (the default manager: an engine is
started and stopped for every game, the path where a leak would hide). The opponent is the sandbox's scripted house
player: a few moves, then it resigns (``--opponent scripted``; ``random`` plays 9x9 games out to the end, through
scoring). Reconchess (``--server reconchess``): the reconchess sandbox (in this process) and the daemon with
Stockfish (``--stockfish``) and the default RBC player (``--belief``), against the house random bot on a short clock
(``--rbc-seconds``, 20 s + 1 s a turn), so each game builds and drops a belief of thousands of boards. Up to
``--concurrent`` games run at once; every ``--sample-every`` games the benchmark lets the games in
flight finish, waits for the daemon to settle (no game, no engine) and samples it there, so that every sample is the
same quiet state: VmRSS, threads, open file descriptors, child processes, the data folder's size and file count.

Reports (markdown on stdout, the numbers with ``--json``): the samples, the RSS slope after the warm-up (the first
sample is the baseline, the slope fitted over the rest, in KB per 100 games), and the threads, descriptors and
children of each quiet sample against the first. A leak-free daemon keeps the last three flat; its RSS settles
(allocator arenas, caches) rather than climbing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_scale import Sandbox, _wait, children, rss_mb, stop_process  # noqa: E402  (scripts/ is not a package)
from procnet import tcp_sockets  # noqa: E402

SCRIPTED = ["cc", "gg", "cg", "gc", "ee", "resign"]  # far from the instant engine's first points (top-left, row 1)
LIVE = {"system": "fischer", "time_control": "fischer", "speed": "live", "initial_time": 300, "time_increment": 10,
        "max_time": 600, "pause_on_weekends": False}


@dataclass
class Sample:
    games: int  # games finished when sampled
    seconds: float  # since the daemon connected
    rss_mb: float
    threads: int
    fds: int
    children: int
    data_files: int
    data_mb: float
    fd_kinds: str = ""  # what the descriptors are: "3 pipe, 1 socket to 127.0.0.1:8080, ..."
    sockets: int = 0  # of the descriptors, the sockets (TCP ones to the server, and any other kind)


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def fd_kinds(pid: int) -> dict[str, int]:
    """The process's descriptors by kind (pipes, TCP sockets by peer, files by folder): what a count that grew
    was."""
    kinds: dict[str, int] = {}
    peers: dict[str, str] | None = None
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            peers = {inode: t.remote for inode, t in tcp_sockets(f"/proc/{pid}/net").items()} \
                if peers is None else peers
            peer = peers.get(target[8:-1])
            kind = f"socket to {peer}" if peer else "socket"
        elif target.startswith(("pipe:", "anon_inode:")):
            kind = target.split(":[")[0]
        else:
            kind = f"file in {os.path.dirname(target)}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def shown_kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


# TCP sockets a daemon may hold once it has played a while: its realtime connection (OGS's WebSocket) and the HTTP
# keep-alive connections of its REST calls, at most one for each of the two workers that make them. The second one
# opens only the first time two calls overlap, which may be after the first sample.
SERVER_SOCKETS = 3


def held_back(samples: list[Sample]) -> list[str]:
    """What the daemon held at a later sample beyond what it held at the first (all games over at both): a
    resource kept per game climbs with every batch. No child process, no more threads, no more descriptors other
    than TCP sockets (engine pipes, files), and TCP sockets within SERVER_SOCKETS."""
    if not samples:
        return []
    first = samples[0]
    found: list[str] = []
    for s in samples:
        what = []
        if s.children:
            what.append(f"{s.children} child process(es)")
        if s.threads > first.threads:
            what.append(f"{s.threads} threads (after {first.games} games: {first.threads})")
        if s.fds - s.sockets > first.fds - first.sockets:
            what.append(f"{s.fds - s.sockets} descriptors other than sockets (after {first.games} games: "
                        f"{first.fds - first.sockets})")
        if s.sockets > max(first.sockets, SERVER_SOCKETS):
            what.append(f"{s.sockets} TCP sockets (after {first.games} games: {first.sockets}; at most "
                        f"{SERVER_SOCKETS} expected)")
        if what:
            found.append(f"after {s.games} games: " + ", ".join(what) + f"; descriptors: {s.fd_kinds}")
    return found


def folder_size(path: Path) -> tuple[int, float]:
    files, size = 0, 0
    for p in path.rglob("*"):
        if p.is_file():
            files += 1
            size += p.stat().st_size
    return files, size / 1e6


def daemon_config(url: str, username: str, data_dir: Path, concurrent: int, size: int) -> str:
    """Room for twice the games in flight: a game over on the server may still be closing in the daemon (records,
    the engine's stop) when the next challenge comes."""
    return f"""
server:
  kind: ogs
  url: {url}
  username: {username}
  api_key: {{env: ENDURANCE_KEY}}
  accept:
    board_sizes: [{size}]
    max_games_per_opponent: {2 * concurrent}
engine:
  command: [{sys.executable}, -S, {ROOT / 'scripts' / 'instant_gtp.py'}]
go: {{greeting: "good game", farewell: "thanks"}}
daemon:
  data_dir: {data_dir}
  max_concurrent_games: {2 * concurrent}
"""


class Endurance:
    def __init__(self, *, games: int, concurrent: int, sample_every: int, opponent: str, size: int,
                 workdir: Path, log: Any = sys.stderr, server: str = "ogs", stockfish: str = "/usr/games/stockfish",
                 belief: str = "boards", rbc_seconds: float = 20.0) -> None:
        self.games, self.concurrent, self.every = games, concurrent, sample_every
        self.server, self.stockfish, self.belief, self.rbc_seconds = server, stockfish, belief, rbc_seconds
        self.opponent, self.size, self.workdir = opponent, size, workdir
        self.print = lambda *a: print(*a, file=log, flush=True)
        self.samples: list[Sample] = []
        self.sent = 0
        self.last_sent = 0.0
        self.problems: list[str] = []

    def run(self) -> list[Sample]:
        proc = None
        out = open(self.workdir / "daemon.log", "w")
        server = OgsGames(self) if self.server == "ogs" else RbcGames(self)
        try:
            data_dir = self.workdir / "data"
            config = self.workdir / "endurance.yaml"
            env = server.start(config, data_dir)
            proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", str(config)], cwd=ROOT,
                                    env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            _wait(server.connected, 60, "the daemon to connect", proc, step=0.1)
            started = time.monotonic()
            finished = 0
            while finished < self.games:
                target = min(self.games, finished + self.every)
                while finished < target:  # keep `concurrent` games in flight up to the next sample
                    live, finished = server.counts()
                    while live < self.concurrent and self.sent < target:
                        server.challenge()
                        self.sent += 1
                        self.last_sent = time.monotonic()
                        live += 1
                    if proc.poll() is not None:
                        raise RuntimeError(f"the daemon exited ({proc.returncode}); see {self.workdir}/daemon.log")
                    refused = server.refused() if time.monotonic() - self.last_sent > 10 else None
                    if refused:
                        raise RuntimeError(f"the daemon declined a game: {refused}")
                    time.sleep(0.05 if self.server == "ogs" else 0.3)
                self._settle(proc)
                files, mb = folder_size(data_dir)
                kinds = fd_kinds(proc.pid)
                sample = Sample(finished, time.monotonic() - started, rss_mb(proc.pid), threads_of(proc.pid),
                                sum(kinds.values()), len(children(proc.pid)), files, mb, shown_kinds(kinds),
                                sum(n for k, n in kinds.items() if k.startswith("socket")))
                self.samples.append(sample)
                self.print(f"  {sample.games:5d} games {sample.seconds:7.1f} s: RSS {sample.rss_mb:6.1f} MB, "
                           f"{sample.threads} threads, {sample.fds} fds, {sample.children} children, "
                           f"{sample.data_files} files ({sample.data_mb:.1f} MB)")
            self.problems += server.problems()
        finally:
            if proc is not None:
                stop_process(proc, 60)
                if proc.returncode not in (0, None):
                    self.problems.append(f"the daemon exited with status {proc.returncode} after SIGTERM")
            out.close()
            server.stop()
        return self.samples

    def _settle(self, proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
        """Wait until the daemon holds no game: no engine child, and its thread count the same for a second."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = threads_of(proc.pid)
            if n != last or children(proc.pid):
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= 1.0:
                return
            time.sleep(0.1)
        self.problems.append(f"the daemon did not settle within {timeout:.0f} s after game {self.sent}")


class OgsGames:
    """The OGS sandbox as a process; games against its scripted or random house player."""

    def __init__(self, run: Endurance) -> None:
        self.run = run
        self.sb: Sandbox | None = None
        self.username = f"endure-{secrets.token_hex(3)}"

    def start(self, config: Path, data_dir: Path) -> dict[str, str]:
        self.sb = Sandbox(self.run.workdir)
        key = secrets.token_hex(16)
        self.sb.call("POST", "/sandbox/bots", json={"username": self.username, "apikey": key})
        config.write_text(daemon_config(self.sb.url, self.username, data_dir, self.run.concurrent, self.run.size))
        return {"ENDURANCE_KEY": key}

    def connected(self) -> bool:
        assert self.sb is not None
        return any(c["username"] == self.username and c["authenticated"]
                   for c in self.sb.call("GET", "/sandbox/connections"))

    def _mine(self) -> list[dict[str, Any]]:
        assert self.sb is not None
        rows = self.sb.call("GET", "/sandbox/move_times", params={"times": "0"})
        return [r for r in rows if self.username in (r["black"], r["white"])]

    def counts(self) -> tuple[int, int]:
        """(games in flight, counting challenges not yet started; games finished)"""
        rows = self._mine()
        finished = sum(1 for r in rows if r["phase"] == "finished")
        return self.run.sent - finished, finished

    def challenge(self) -> None:
        assert self.sb is not None
        challenger: dict[str, Any] = ({"house": "scripted", "moves": SCRIPTED} if self.run.opponent == "scripted"
                                      else {"house": "random", "delay": 0})
        challenger["username"] = "endurance-house"
        self.sb.call("POST", "/sandbox/challenges", json={
            "target": self.username, "width": self.run.size, "height": self.run.size, "rules": "japanese",
            "komi": 6.5, "challenger": challenger, "challenger_color": "white", "time_control": LIVE})

    def refused(self) -> str | None:
        assert self.sb is not None
        if len(self._mine()) == self.run.sent:
            return None
        refused = [c for c in self.sb.call("GET", "/sandbox/challenges")
                   if c["target"] == self.username and c["state"] == "rejected"]
        return str(refused[0].get("message")) if refused else None

    def problems(self) -> list[str]:
        left = [r for r in self._mine() if r["phase"] != "finished"]
        return [f"{len(left)} game(s) not finished"] if left else []

    def stop(self) -> None:
        if self.sb is not None:
            self.sb.stop()


class RbcGames:
    """The reconchess sandbox in this process; games against its random house bot, the daemon with Stockfish."""

    def __init__(self, run: Endurance) -> None:
        self.run = run
        self.rc: Any = None
        self.ids: list[int] = []

    def start(self, config: Path, data_dir: Path) -> dict[str, str]:
        from bridge.adapters.reconchess.sandbox import ReconchessSandbox

        self.rc = ReconchessSandbox("127.0.0.1", 0).start()
        password = secrets.token_hex(12)
        self.rc.add_user("endure-rbc", password)
        n = 2 * self.run.concurrent
        config.write_text(f"""
server:
  kind: reconchess
  url: {self.rc.url}
  username: endure-rbc
  password: {{env: ENDURANCE_RBC_PASSWORD}}
  max_games: {n}
  poll_interval: 0.3
engine:
  protocol: uci
  command: [{self.run.stockfish}]
  options: {{Threads: 1, Hash: 16}}
rbc: {{belief: {self.run.belief}}}
daemon:
  data_dir: {data_dir}
  max_concurrent_games: {n}
""")
        return {"ENDURANCE_RBC_PASSWORD": password}

    def connected(self) -> bool:
        return True  # the daemon polls; the first invitation waits for it

    def counts(self) -> tuple[int, int]:
        over = sum(1 for g in self.ids if self.rc.game(g)["over"])
        return len(self.ids) - over, over

    def challenge(self) -> None:
        color = len(self.ids) % 2 == 0
        self.ids.append(int(self.rc.invite("endure-rbc", opponent="random", color=color,
                                           seconds_per_player=self.run.rbc_seconds,
                                           seconds_increment=1)["game_id"]))

    def refused(self) -> str | None:
        return None

    def problems(self) -> list[str]:
        games = [self.rc.game(g) for g in self.ids]
        lost = [g for g in games if g.get("win_reason") in ("TIMEOUT", "RESIGN") and g.get("winner_color")
                is not None and g.get("winner_color") != (g.get("white") == "endure-rbc")]
        return [f"{len(lost)} RBC game(s) lost on time or by resignation"] if lost else []

    def stop(self) -> None:
        if self.rc is not None:
            self.rc.stop()


def slope_kb_per_100(samples: list[Sample]) -> float | None:
    """Least-squares slope of RSS over games after the first sample (the warm-up), in KB per 100 games."""
    pts = [(s.games, s.rss_mb * 1024) for s in samples[1:]]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return 100 * sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def report(samples: list[Sample], problems: list[str]) -> str:
    lines = ["| games | s | RSS MB | threads | fds | children | data files | data MB |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {s.games} | {s.seconds:.0f} | {s.rss_mb:.1f} | {s.threads} | {s.fds} | {s.children} | "
              f"{s.data_files} | {s.data_mb:.1f} |" for s in samples]
    if samples:
        first, last = samples[0], samples[-1]
        slope = slope_kb_per_100(samples)
        lines.append("")
        lines.append(f"RSS: {first.rss_mb:.1f} MB after {first.games} games, {last.rss_mb:.1f} MB after "
                     f"{last.games}; slope after the first sample: "
                     + (f"{slope:+.0f} KB per 100 games" if slope is not None else "n/a (too few samples)"))
        lines.append(f"threads {first.threads} -> {last.threads} (max {max(s.threads for s in samples)}), "
                     f"fds {first.fds} -> {last.fds} (max {max(s.fds for s in samples)}), "
                     f"children {first.children} -> {last.children}")
        lines.append(f"descriptors after {first.games} games: {first.fd_kinds or '?'}; after {last.games}: "
                     f"{last.fd_kinds or '?'}")
    lines += [f"HELD BACK: {p}" for p in held_back(samples)]
    lines += [f"PROBLEM: {p}" for p in problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--games", type=int, default=300)
    p.add_argument("--concurrent", type=int, default=4, help="games in flight at once")
    p.add_argument("--sample-every", type=int, default=25, help="games between quiet samples")
    p.add_argument("--opponent", choices=["scripted", "random"], default="scripted")
    p.add_argument("--size", type=int, default=9)
    p.add_argument("--server", choices=["ogs", "reconchess"], default="ogs")
    p.add_argument("--stockfish", default="/usr/games/stockfish", help="the UCI engine of --server reconchess")
    p.add_argument("--belief", choices=["boards", "arrays"], default="boards", help="rbc.belief (reconchess)")
    p.add_argument("--rbc-seconds", type=float, default=20.0, help="each side's clock (reconchess), + 1 s a turn")
    p.add_argument("--json", type=Path, default=None, help="write the samples and the summary here")
    p.add_argument("--keep", type=Path, default=None, help="keep the run's folder here (default: a temporary one)")
    args = p.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = args.keep
        tmp = None
    else:
        tmp = tempfile.TemporaryDirectory(prefix="endurance-")
        workdir = Path(tmp.name)
    try:
        run = Endurance(games=args.games, concurrent=args.concurrent, sample_every=args.sample_every,
                        opponent=args.opponent, size=args.size, workdir=workdir, server=args.server,
                        stockfish=args.stockfish, belief=args.belief, rbc_seconds=args.rbc_seconds)
        samples = run.run()
        print(report(samples, run.problems))
        if args.json is not None:
            args.json.write_text(json.dumps({
                "server": args.server, "games": args.games, "concurrent": args.concurrent, "opponent": args.opponent,
                "belief": args.belief if args.server == "reconchess" else None,
                "samples": [asdict(s) for s in samples], "rss_slope_kb_per_100_games": slope_kb_per_100(samples),
                "problems": run.problems}, indent=1))
        return 1 if run.problems or held_back(samples) else 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
