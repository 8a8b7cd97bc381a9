#!/usr/bin/env python3
"""Benchmark of the Go path (not run in CI): GTP round trip, and the bridge's own overhead per move on OGS.

    python scripts/bench_ogs.py [--games 5] [--transport websocket|socketio] [--calls 1000]

1. GTP round trip of `name` to GNU Go over pipes (p50/p95/p99).
2. Per-move overhead of the whole chain, sandbox -> adapter -> session -> engine -> adapter -> sandbox, measured as
   the time the server charged the bot for a move minus the engine's own genmove time in the transcript (p50/p95/p99),
   over N 9x9 games of the daemon (GNU Go level 1) against the random house opponent.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.engines.gtp import GtpEngine

GNUGO = "/usr/games/gnugo"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def gtp_round_trip(calls: int) -> list[float]:
    engine = GtpEngine.start([GNUGO, "--mode", "gtp", "--level", "1"], name="bench")
    try:
        out = []
        for _ in range(calls):
            t = time.perf_counter()
            engine.command("name")
            out.append((time.perf_counter() - t) * 1000)
        return out
    finally:
        engine.close()


def _stamp(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def engine_times(transcript: str) -> list[float]:
    """Milliseconds of each genmove, from the transcript's `>> N genmove` and `<< =N` lines, in order."""
    sent: dict[str, float] = {}
    out = []
    for line in transcript.splitlines():
        m = re.search(r" >> (\d+) genmove ", line)
        if m:
            sent[m.group(1)] = _stamp(line)
            continue
        m = re.search(r" << [=?](\d+)", line)
        if m and m.group(1) in sent:
            out.append((_stamp(line) - sent.pop(m.group(1))) * 1000)
    return out


def move_overheads(games: int, transport: str) -> tuple[list[float], float]:
    server = SandboxServer("127.0.0.1", 0)
    server.start()
    overheads: list[float] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        key = secrets.token_hex(12)
        server.add_bot("bench-bot", key)
        os.environ["BENCH_OGS_KEY"] = key
        config = load_config_text(f"""
server: {{kind: ogs, url: "{server.url}", transport: {transport}, username: bench-bot,
          api_key: {{env: BENCH_OGS_KEY}}}}
engine: {{command: [{GNUGO}, --mode, gtp, --level, "1"]}}
daemon: {{data_dir: "{tmp}"}}
""")
        daemon = Daemon(config)
        daemon.start()
        try:
            for i in range(games):
                body = {"target": "bench-bot", "challenger": {"house": "random", "delay": 0.05}, "width": 9,
                        "height": 9, "challenger_color": "white" if i % 2 else "black"}
                gid = requests.post(f"{server.url}/sandbox/challenges", json=body, timeout=10).json()["game_id"]
                while True:
                    r = requests.get(f"{server.url}/sandbox/games/{gid}", timeout=10)
                    if r.status_code == 200 and r.json().get("phase") == "finished":
                        game = r.json()
                        break
                    time.sleep(0.2)
                bot_color = "black" if game["players"]["black"]["username"] == "bench-bot" else "white"
                first = game.get("initial_player", "black")
                charged = [m[2] for k, m in enumerate(game["moves"])
                           if len(m) > 2 and ((k % 2 == 0) == (first == bot_color))]
                path = Path(tmp) / "transcripts" / f"ogs-{gid}.log"
                for _ in range(50):
                    if path.exists():
                        break
                    time.sleep(0.1)
                engine = engine_times(path.read_text())
                # pair the server's charge for each bot move with that move's genmove time
                overheads += [c - e for c, e in zip(charged, engine, strict=False) if c >= e]
        finally:
            daemon.shutdown()
            server.stop()
    return overheads, (time.monotonic() - started) / max(games, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", type=int, default=5)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--transport", default="websocket", choices=["websocket", "socketio"])
    args = ap.parse_args()
    rt = gtp_round_trip(args.calls)
    ov, per_game = move_overheads(args.games, args.transport)
    print("| measure | n | p50 | p95 | p99 | mean |")
    print("|---|---|---|---|---|---|")
    print(f"| GTP `name` round trip, GNU Go (ms) | {len(rt)} | {pct(rt, .5):.2f} | {pct(rt, .95):.2f} | "
          f"{pct(rt, .99):.2f} | {statistics.mean(rt):.2f} |")
    if ov:
        print(f"| bridge overhead per move, {args.transport} (ms) | {len(ov)} | {pct(ov, .5):.1f} | "
              f"{pct(ov, .95):.1f} | {pct(ov, .99):.1f} | {statistics.mean(ov):.1f} |")
    print(f"\n{args.games} games of 9x9 vs the random house, {per_game:.1f} s per game")


if __name__ == "__main__":
    main()
