#!/usr/bin/env python3
"""The engine side of one Go move, alone (not run in CI): a GoPlayer drives ``scripts/instant_gtp.py`` through a
19x19 game against a first-legal-point opponent in this process, no server, no session.

    python3 scripts/bench_go_move.py [--moves 150] [--runs 3]

Per bot move (``GoPlayer.genmove``: the opponent's move told, genmove asked, the answer parsed, the transcript
written): wall time p50/p99, this process's CPU (the calling thread and the engine's reader threads; the engine's own
CPU is not counted), the calling thread's CPU, and the CPU spent in ``Transcript.write`` and in the engine requests.
The opponent's move is computed outside the measured span.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from instant_gtp import Board  # noqa: E402

import bridge.engines.framing as framing  # noqa: E402
from bridge.config import EngineConfig  # noqa: E402
from bridge.games.go import GoPlayer  # noqa: E402
from bridge.games.gotypes import ClockState, GoSettings, GoState, PlayerClock, TimeControl  # noqa: E402
from bridge.transcript import Transcript  # noqa: E402

spent: dict[str, float] = {}


def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        began = time.thread_time()
        try:
            return fn(*args, **kw)
        finally:
            spent[name] = spent.get(name, 0.0) + time.thread_time() - began
    return wrapper


def run(moves: int) -> str:
    cfg = EngineConfig(command=[sys.executable, "-S", str(ROOT / "scripts" / "instant_gtp.py")])
    tc = TimeControl(system="fischer", speed="live", initial_time=600, time_increment=30, max_time=1200)
    settings = GoSettings(19, 19, 6.5, "japanese", "white", time_control=tc)
    with tempfile.TemporaryDirectory() as tmp:
        transcript = Transcript(Path(tmp) / "t.log")
        player = GoPlayer(cfg, name="bench", transcript=transcript)
        board = Board(19, 19)
        played: list[tuple[int, int] | None] = []
        walls: list[float] = []
        cpus: list[float] = []
        own: list[float] = []

        def move(measure: bool) -> None:
            p = board.first_legal(1)
            board.play(1, p)
            played.append(None if p is None else (p % 19, p // 19))
            state = GoState("g", settings, tuple(played), to_move="white",
                            clock=ClockState("white", PlayerClock(500), PlayerClock(500)))
            c0, t0, o0 = time.process_time(), time.perf_counter(), time.thread_time()
            answer = player.genmove(state)
            if measure:
                walls.append((time.perf_counter() - t0) * 1e6)
                cpus.append((time.process_time() - c0) * 1e6)
                own.append((time.thread_time() - o0) * 1e6)
            assert isinstance(answer, list)
            m = answer[0]
            board.play(2, None if m is None else m[0] + m[1] * 19)
            played.append(m)

        try:
            for _ in range(3):
                move(False)
            spent.clear()
            for _ in range(moves):
                move(True)
        finally:
            player.close()
            transcript.close()
        lines = sum(1 for _ in open(Path(tmp) / "t.log"))
    walls.sort()
    parts = ", ".join(f"{k} {v / moves * 1e6:.0f}" for k, v in sorted(spent.items()))
    return (f"wall p50 {statistics.median(walls):.0f} µs, p99 {walls[min(int(.99 * moves), moves - 1)]:.0f}; "
            f"CPU {statistics.mean(cpus):.0f} µs a move (calling thread {statistics.mean(own):.0f}); {parts} "
            f"(µs a move); {lines} transcript lines")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=150)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    Transcript.write = counted("Transcript.write (every thread)", Transcript.write)  # type: ignore[method-assign]
    framing.GtpStyleChannel._read_reply = counted(  # type: ignore[method-assign]
        "reading the replies (calling thread)", framing.GtpStyleChannel._read_reply)
    for _ in range(args.runs):
        print(run(args.moves), flush=True)


if __name__ == "__main__":
    main()
