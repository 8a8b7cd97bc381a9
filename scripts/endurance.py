#!/usr/bin/env python3
"""Endurance benchmark of a long-running daemon (not run in CI): many OGS games one after another through one
``gamebridge run``, and what the daemon holds between them — memory, threads, open files, engine processes, the
data folder. A daemon under systemd for weeks plays thousands of games; a resource kept per game (a thread never
joined, a socket or pipe never closed, a session or a game's state never dropped) shows as a count that climbs with
the games, long before it takes the service down.

    python3 scripts/endurance.py [--games 300] [--concurrent 4] [--sample-every 25] [--json FILE] [--keep DIR]

The OGS sandbox (``python -m bridge.cli sandbox ogs``) serves the games; the daemon plays them with
``scripts/instant_gtp.py`` (an engine that answers at once), per-game engines (the default manager: an engine is
started and stopped for every game, the path where a leak would hide). The opponent is the sandbox's scripted house
player: a few moves, then it resigns (``--opponent scripted``; ``random`` plays 9x9 games out to the end, through
scoring). Up to ``--concurrent`` games run at once; every ``--sample-every`` games the benchmark lets the games in
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
from bench_scale import Sandbox, children, rss_mb, stop_process  # noqa: E402  (scripts/ is not a package)

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


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def fds_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


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
                 workdir: Path, log: Any = sys.stderr) -> None:
        self.games, self.concurrent, self.every = games, concurrent, sample_every
        self.opponent, self.size, self.workdir = opponent, size, workdir
        self.print = lambda *a: print(*a, file=log, flush=True)
        self.samples: list[Sample] = []
        self.sent = 0
        self.last_sent = 0.0
        self.problems: list[str] = []

    def run(self) -> list[Sample]:
        sb = Sandbox(self.workdir)
        proc = None
        out = open(self.workdir / "daemon.log", "w")
        try:
            username = f"endure-{secrets.token_hex(3)}"
            key = secrets.token_hex(16)
            sb.call("POST", "/sandbox/bots", json={"username": username, "apikey": key})
            data_dir = self.workdir / "data"
            config = self.workdir / "endurance.yaml"
            config.write_text(daemon_config(sb.url, username, data_dir, self.concurrent, self.size))
            proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", str(config)], cwd=ROOT,
                                    env={**os.environ, "ENDURANCE_KEY": key}, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            self._wait(lambda: any(c["username"] == username and c["authenticated"]
                                   for c in sb.call("GET", "/sandbox/connections")), 60, "the daemon to connect",
                       proc)
            started = time.monotonic()
            finished = 0
            while finished < self.games:
                target = min(self.games, finished + self.every)
                while finished < target:  # keep `concurrent` games in flight up to the next sample
                    rows = self._mine(sb, username)
                    live = sum(1 for r in rows if r["phase"] not in ("finished",))
                    finished = sum(1 for r in rows if r["phase"] == "finished")
                    pending = self.sent - len(rows)
                    while live + pending < self.concurrent and self.sent < target:
                        self._challenge(sb, username)
                        pending += 1
                    if proc.poll() is not None:
                        raise RuntimeError(f"the daemon exited ({proc.returncode}); see {self.workdir}/daemon.log")
                    if pending > 0 and time.monotonic() - self.last_sent > 10:
                        refused = [c for c in sb.call("GET", "/sandbox/challenges")
                                   if c["target"] == username and c["state"] == "rejected"]
                        if refused:
                            raise RuntimeError(f"the daemon declined a challenge: {refused[0].get('message')}")
                    time.sleep(0.05)
                self._settle(proc)
                files, mb = folder_size(data_dir)
                sample = Sample(finished, time.monotonic() - started, rss_mb(proc.pid), threads_of(proc.pid),
                                fds_of(proc.pid), len(children(proc.pid)), files, mb)
                self.samples.append(sample)
                self.print(f"  {sample.games:5d} games {sample.seconds:7.1f} s: RSS {sample.rss_mb:6.1f} MB, "
                           f"{sample.threads} threads, {sample.fds} fds, {sample.children} children, "
                           f"{sample.data_files} files ({sample.data_mb:.1f} MB)")
            errors = [r for r in self._mine(sb, username) if r["phase"] != "finished"]
            if errors:
                self.problems.append(f"{len(errors)} game(s) not finished")
        finally:
            if proc is not None:
                stop_process(proc, 60)
                if proc.returncode not in (0, None):
                    self.problems.append(f"the daemon exited with status {proc.returncode} after SIGTERM")
            out.close()
            sb.stop()
        return self.samples

    def _mine(self, sb: Sandbox, username: str) -> list[dict[str, Any]]:
        rows = sb.call("GET", "/sandbox/move_times", params={"times": "0"})
        return [r for r in rows if username in (r["black"], r["white"])]

    def _challenge(self, sb: Sandbox, username: str) -> None:
        challenger: dict[str, Any] = ({"house": "scripted", "moves": SCRIPTED} if self.opponent == "scripted"
                                      else {"house": "random", "delay": 0})
        challenger["username"] = "endurance-house"
        sb.call("POST", "/sandbox/challenges", json={
            "target": username, "width": self.size, "height": self.size, "rules": "japanese", "komi": 6.5,
            "challenger": challenger, "challenger_color": "white", "time_control": LIVE})
        self.sent += 1
        self.last_sent = time.monotonic()

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

    @staticmethod
    def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[Any]) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({proc.returncode}) while waiting for {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)


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
    lines += [f"PROBLEM: {p}" for p in problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--games", type=int, default=300)
    p.add_argument("--concurrent", type=int, default=4, help="games in flight at once")
    p.add_argument("--sample-every", type=int, default=25, help="games between quiet samples")
    p.add_argument("--opponent", choices=["scripted", "random"], default="scripted")
    p.add_argument("--size", type=int, default=9)
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
                        opponent=args.opponent, size=args.size, workdir=workdir)
        samples = run.run()
        print(report(samples, run.problems))
        if args.json is not None:
            args.json.write_text(json.dumps({
                "games": args.games, "concurrent": args.concurrent, "opponent": args.opponent,
                "samples": [asdict(s) for s in samples], "rss_slope_kb_per_100_games": slope_kb_per_100(samples),
                "problems": run.problems}, indent=1))
        return 1 if run.problems else 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
