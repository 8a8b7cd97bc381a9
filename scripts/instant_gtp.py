#!/usr/bin/env python3
"""An instant GTP engine for benchmarks: ``genmove`` answers at once with the first empty point (from the top-left,
row by row) that is legal for it (not occupied, not suicide, not the simple-ko point), or ``pass``.

    python3 scripts/instant_gtp.py [--times FILE]

It tracks the board from ``boardsize``, ``clear_board`` and ``play`` (captures, suicide, simple ko) and lists only
the GTP commands the bridge requires.  With ``--times FILE`` it appends its own think time of every ``genmove``, in
microseconds, one line each (the file may be shared by many engines: each line is one small appended write), so
that a benchmark can subtract the engine's time from the bridge's.

Standard library only (the board is also what ``scripts/bench_scale.py``'s relay floor plays with).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # GTP columns: no I
COMMANDS = ("protocol_version", "name", "version", "known_command", "list_commands", "quit", "boardsize",
            "clear_board", "komi", "play", "genmove")


class Board:
    """A Go board of ``width`` x ``height``, points as ``(x, y)`` from the top-left; 0 empty, 1 black, 2 white."""

    def __init__(self, width: int = 19, height: int = 19) -> None:
        self.width = width
        self.height = height
        self.cells = [0] * (width * height)
        self.ko = -1  # the point the side to move may not play (simple ko), -1 if none
        self.neighbors: list[tuple[int, ...]] = []
        for i in range(width * height):
            x, y = i % width, i // width
            around = [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
            self.neighbors.append(tuple(a + b * width for a, b in around if 0 <= a < width and 0 <= b < height))

    def _group(self, start: int) -> tuple[list[int], set[int]]:
        """The stones connected to ``start`` and their liberties."""
        color = self.cells[start]
        stones, libs, todo, seen = [], set(), [start], {start}
        while todo:
            p = todo.pop()
            stones.append(p)
            for n in self.neighbors[p]:
                c = self.cells[n]
                if c == 0:
                    libs.add(n)
                elif c == color and n not in seen:
                    seen.add(n)
                    todo.append(n)
        return stones, libs

    def legal(self, color: int, p: int) -> bool:
        """Whether ``color`` may play at ``p``: empty, not the ko point, and not suicide."""
        if self.cells[p] != 0 or p == self.ko:
            return False
        for n in self.neighbors[p]:
            c = self.cells[n]
            if c == 0:
                return True
            libs = self._group(n)[1]
            if c == color and len(libs) > 1:
                return True  # joins a group that keeps a liberty
            if c != color and libs == {p}:
                return True  # captures
        return False

    def play(self, color: int, p: int | None) -> None:
        """Put a stone (``None``: a pass), removing what it captures; a suicide removes its own group."""
        self.ko = -1
        if p is None:
            return
        self.cells[p] = color
        captured: list[int] = []
        for n in self.neighbors[p]:
            if self.cells[n] == 3 - color:
                stones, libs = self._group(n)
                if not libs:
                    captured += stones
        for s in captured:
            self.cells[s] = 0
        stones, libs = self._group(p)
        if not libs:
            for s in stones:
                self.cells[s] = 0
        elif len(captured) == 1 and len(stones) == 1 and len(libs) == 1:
            self.ko = captured[0]

    def first_legal(self, color: int) -> int | None:
        for p in range(len(self.cells)):
            if self.cells[p] == 0 and self.legal(color, p):
                return p
        return None

    def vertex(self, p: int | None) -> str:
        if p is None:
            return "pass"
        return f"{LETTERS[p % self.width]}{self.height - p // self.width}"

    def parse_vertex(self, text: str) -> int | None:
        text = text.strip().upper()
        if text == "PASS":
            return None
        x, row = LETTERS.index(text[0]), int(text[1:])
        if not (0 <= x < self.width and 1 <= row <= self.height):
            raise ValueError(text)
        return x + (self.height - row) * self.width


def color_code(text: str) -> int:
    return 1 if text.strip().lower() in ("b", "black") else 2


def serve(inp: TextIO, out: TextIO, times: TextIO | None) -> None:
    board = Board()
    for raw in inp:
        thought: float | None = None
        parts = raw.split("#", 1)[0].split()
        if not parts:
            continue
        ident = ""
        if parts[0].isdigit():
            ident, parts = parts[0], parts[1:]
        if not parts:
            continue
        cmd, args = parts[0], parts[1:]
        ok, answer = True, ""
        try:
            if cmd == "protocol_version":
                answer = "2"
            elif cmd == "name":
                answer = "instant"
            elif cmd == "version":
                answer = "1"
            elif cmd == "known_command":
                answer = "true" if args and args[0] in COMMANDS else "false"
            elif cmd == "list_commands":
                answer = "\n".join(COMMANDS)
            elif cmd == "boardsize":
                size = int(args[0])
                board = Board(size, size)
            elif cmd == "clear_board":
                board = Board(board.width, board.height)
            elif cmd == "komi":
                float(args[0])
            elif cmd == "play":
                board.play(color_code(args[0]), board.parse_vertex(args[1]))
            elif cmd == "genmove":
                started = time.perf_counter()
                color = color_code(args[0])
                p = board.first_legal(color)
                board.play(color, p)
                answer = board.vertex(p)
                thought = time.perf_counter() - started
            elif cmd == "quit":
                out.write(f"={ident}\n\n")
                out.flush()
                return
            else:
                ok, answer = False, "unknown command"
        except (IndexError, ValueError):
            ok, answer = False, "syntax error"
        out.write(f"{'=' if ok else '?'}{ident} {answer}\n\n")
        out.flush()
        if thought is not None and times is not None:  # after the answer: the log is no part of the move
            times.write(f"{thought * 1e6:.1f}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--times", help="append each genmove's think time (microseconds) to this file")
    args = ap.parse_args()
    times = open(args.times, "a", buffering=1) if args.times else None
    try:
        serve(sys.stdin, sys.stdout, times)
    finally:
        if times is not None:
            times.close()


if __name__ == "__main__":
    main()
