#!/usr/bin/env python3
"""A scripted fake GTP engine: a real subprocess for tests, well-behaved by default, misbehaving on request.

Usage: python fake_gtp.py [flags]; every misbehaviour names the GTP command that triggers it.

  --name NAME / --version V     what `name` / `version` answer
  --list "cmd1,cmd2"            the commands it lists (and accepts); default: the required set, showboard,
                                time_settings, final_status_list, fake-big, fake-echo
  --moves "D4,pass,resign"      what successive genmove calls answer (cycles)
  --hang-on CMD                 never answer CMD (sleeps; still dies on SIGTERM unless --ignore-sigterm)
  --crash-on CMD                exit with --exit-code (default 3) on CMD, after a stderr line
  --garbage-on CMD              answer CMD with a line that is not GTP
  --wrong-id-on CMD             answer CMD with another id
  --refuse CMD                  answer CMD with '? refused by fake'
  --stderr-lines "MAIN: hello"  (repeatable) lines written to stderr on each --stderr-on command
  --stderr-on CMD               default genmove
  --stderr-flood BYTES          on each --stderr-on command, also write BYTES bytes of stderr (100-byte lines)
  --env-file FILE               write the environment it was started with to FILE (JSON) at start
  --slow-start SECONDS          sleep before reading any input
  --ignore-sigterm              ignore SIGTERM
  --ignore-quit                 answer quit but keep running
  --crlf                        end lines with \\r\\n
  --no-ids                      answer without ids
  --blank-before                write an empty line before each reply
  --spawn-child                 start a child process (sleep 600) in the same process group
  --log FILE                    append every received line to FILE
  --log-pid                     prefix each --log line with the process id and a space
  --once-file FILE              --hang-on/--crash-on misbehave only if FILE does not exist (and create it): once
                                across restarts
  --genmove-delay SECONDS       think this long before answering genmove
  --print-pid FILE              write the pid of the spawned child (for --spawn-child) to FILE
  --kata-analyze                KataGo-like: lists kata-genmove_analyze and answers it in KataGo's format (`info
                                move D4 visits ... winrate 0.55 ... scoreLead ... order 0 pv D4 ...` lines, then
                                `play D4`); its moves (and those of genmove) are legal: the first free points from
                                A1 along the first line, then the second line, ...
  --lz-stderr                   Leela Zero-like: genmove plays those legal moves and prints Leela Zero's search
                                summary to stderr first (`D16 ->  6703 (V: 57.50%) (LCB: 57.46%) (N: 29.75%) PV: ...`
                                per candidate, then `N visits, N nodes, N playouts, N n/s`)
  --batch-until CMD             answer no command but the handshake's (protocol_version, name, version, list_commands,
                                known_command, quit) until CMD arrives, then all of them in order: an engine that
                                only works for a controller that sends a move's commands together
  --garbage-pv "1,2"            with --lz-stderr: on these genmoves (1 = the first), the first candidate line is
                                garbage (a win rate that is not a number)
  --kata-stderr                 KataGo-like without the analysis command: genmove plays those legal moves and
                                prints KataGo's ogsChatToStderr line first (`CHAT:Visits 4005 Winrate 55.12%
                                ScoreLead 1.5 ScoreStdev 20.6 PV D4 ...`)
  --leela-stderr                Leela 0.11-like: genmove plays those legal moves and prints Leela's summary first
                                (`MC winrate=0.55, ...` then `713 visits, score 55.00% (from 54.10%) PV: D4 ...`)

Commands: fake-big N answers one line of N 'x'; fake-echo ARGS answers ARGS; showboard answers 3 lines.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

REQUIRED = ["protocol_version", "name", "version", "known_command", "list_commands", "quit",
            "boardsize", "clear_board", "komi", "play", "genmove"]
HANDSHAKE = {"protocol_version", "name", "version", "list_commands", "known_command", "quit"}
EXTRA = ["showboard", "time_settings", "final_status_list", "fake-big", "fake-echo"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="FakeGTP")
    ap.add_argument("--version", default="1.0")
    ap.add_argument("--list", default=None)
    ap.add_argument("--moves", default="D4")
    ap.add_argument("--hang-on", action="append", default=[])
    ap.add_argument("--crash-on", action="append", default=[])
    ap.add_argument("--flood-on", action="append", default=[])  # 20 MB without a line break, then hang
    ap.add_argument("--exit-code", type=int, default=3)
    ap.add_argument("--garbage-on", action="append", default=[])
    ap.add_argument("--wrong-id-on", action="append", default=[])
    ap.add_argument("--refuse", action="append", default=[])
    ap.add_argument("--stderr-lines", action="append", default=[])
    ap.add_argument("--stderr-on", default="genmove")
    ap.add_argument("--stderr-flood", type=int, default=0)
    ap.add_argument("--env-file", default=None)
    ap.add_argument("--slow-start", type=float, default=0.0)
    ap.add_argument("--ignore-sigterm", action="store_true")
    ap.add_argument("--ignore-quit", action="store_true")
    ap.add_argument("--crlf", action="store_true")
    ap.add_argument("--no-ids", action="store_true")
    ap.add_argument("--blank-before", action="store_true")
    ap.add_argument("--spawn-child", action="store_true")
    ap.add_argument("--log", default=None)
    ap.add_argument("--print-pid", default=None)
    ap.add_argument("--log-pid", action="store_true")
    ap.add_argument("--once-file", default=None)
    ap.add_argument("--genmove-delay", type=float, default=0.0)
    ap.add_argument("--kata-analyze", action="store_true")
    ap.add_argument("--lz-stderr", action="store_true")
    ap.add_argument("--garbage-pv", default="")
    ap.add_argument("--batch-until", default=None)
    ap.add_argument("--kata-stderr", action="store_true")
    ap.add_argument("--leela-stderr", action="store_true")
    opts = ap.parse_args()

    if opts.env_file:
        with open(opts.env_file, "w") as f:
            json.dump(dict(os.environ), f)
    if opts.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if opts.spawn_child:
        child = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if opts.print_pid:
            with open(opts.print_pid, "w") as f:
                f.write(str(child.pid))
    listed = [c for c in opts.list.split(",") if c] if opts.list is not None else REQUIRED + EXTRA
    if opts.kata_analyze:
        listed.append("kata-genmove_analyze")
    board = Board()
    garbage_on = {int(x) for x in opts.garbage_pv.split(",") if x}
    moves = opts.moves.split(",")
    nl = "\r\n" if opts.crlf else "\n"
    n_genmove = 0
    if opts.slow_start:
        time.sleep(opts.slow_start)

    def reply(ok: bool, rid: str, text: str) -> None:
        if opts.blank_before:
            sys.stdout.write(nl)
        head = ("=" if ok else "?") + ("" if opts.no_ids else rid)
        lines = text.split("\n") if text else [""]
        lines[0] = f"{head} {lines[0]}".rstrip() if lines[0] else head
        sys.stdout.write(nl.join(lines) + nl + nl)
        sys.stdout.flush()

    def incoming() -> Iterator[str]:
        held: list[str] = []
        for raw in sys.stdin:
            words = raw.split()
            if words and words[0].isdigit():
                words.pop(0)
            if opts.batch_until and words and words[0] not in HANDSHAKE:
                held.append(raw)
                if words[0] == opts.batch_until:
                    yield from held
                    held.clear()
                continue
            yield raw

    for raw in incoming():
        line = raw.strip()
        if opts.log:
            with open(opts.log, "a") as f:
                f.write((f"{os.getpid()} " if opts.log_pid else "") + line + "\n")
        if not line:
            continue
        parts = line.split()
        rid = parts.pop(0) if parts[0].isdigit() else ""
        if not parts:
            continue
        cmd, args = parts[0], parts[1:]
        if cmd == opts.stderr_on:
            for s in opts.stderr_lines:
                sys.stderr.write(s + "\n")
            chunk = "e" * 99 + "\n"
            for _ in range(opts.stderr_flood // 100):
                sys.stderr.write(chunk)
            sys.stderr.flush()
        if (cmd in opts.hang_on or cmd in opts.crash_on or cmd in opts.flood_on) and opts.once_file:
            if os.path.exists(opts.once_file):
                opts.hang_on, opts.crash_on, opts.flood_on = [], [], []
            else:
                open(opts.once_file, "w").close()
        if cmd in opts.flood_on:
            sys.stdout.write("z" * 20_000_000)
            sys.stdout.flush()
            while True:
                time.sleep(3600)
        if cmd in opts.hang_on:
            while True:
                time.sleep(3600)
        if cmd in opts.crash_on:
            sys.stderr.write(f"fake: crashing on {cmd}\n")
            sys.stderr.flush()
            return opts.exit_code
        if cmd in opts.garbage_on:
            sys.stdout.write("this is not gtp" + nl + nl)
            sys.stdout.flush()
            continue
        if cmd in opts.wrong_id_on:
            reply(True, str(int(rid or "0") + 100), "")
            continue
        if cmd in opts.refuse:
            reply(False, rid, "refused by fake")
            continue
        if cmd not in listed and cmd != "quit":
            reply(False, rid, "unknown command")
            continue
        if cmd == "protocol_version":
            reply(True, rid, "2")
        elif cmd == "name":
            reply(True, rid, opts.name)
        elif cmd == "version":
            reply(True, rid, opts.version)
        elif cmd == "list_commands":
            reply(True, rid, "\n".join(listed))
        elif cmd == "known_command":
            reply(True, rid, "true" if args and args[0] in listed else "false")
        elif cmd == "genmove" and (opts.kata_analyze or opts.lz_stderr or opts.kata_stderr or opts.leela_stderr):
            if opts.genmove_delay:
                time.sleep(opts.genmove_delay)
            n_genmove += 1
            pv = board.pv()
            if opts.lz_stderr:
                lz_stderr(pv, board.pv(skip=1), garbage=n_genmove in garbage_on)
            if opts.kata_stderr:
                sys.stderr.write(f"CHAT:Visits 4005 Winrate 55.12% ScoreLead 1.5 ScoreStdev 20.6 PV {' '.join(pv)}\n")
                sys.stderr.flush()
            if opts.leela_stderr:
                sys.stderr.write("MC winrate=0.550000, NN eval=0.541000, score=W+1.5\n"
                                 f"713 visits, score 55.00% (from 54.10%) PV: {' '.join(pv)}\n")
                sys.stderr.flush()
            board.take(pv[0])
            reply(True, rid, pv[0])
        elif cmd == "genmove":
            if opts.genmove_delay:
                time.sleep(opts.genmove_delay)
            reply(True, rid, moves[n_genmove % len(moves)])
            n_genmove += 1
        elif cmd == "kata-genmove_analyze":
            n_genmove += 1
            pv = board.pv()
            other = board.pv(skip=1)
            infos = [kata_info(pv, 0, 40 + 10 * k, 0.52 + n_genmove / 100) + " " +
                     kata_info(other, 1, 5 * k, 0.31) for k in (1, 2)]
            board.take(pv[0])
            reply(True, rid, "\n".join(["", *infos, f"play {pv[0]}"]))  # "=id" alone, as KataGo
        elif cmd in ("boardsize", "clear_board", "play"):
            board.command(cmd, args)
            reply(True, rid, "")
        elif cmd == "showboard":
            reply(True, rid, "\n   A B C\n 3 . . . 3\n 2 . X . 2")
        elif cmd == "fake-big":
            reply(True, rid, "x" * int(args[0]))
        elif cmd == "fake-echo":
            reply(True, rid, " ".join(args))
        elif cmd == "quit":
            reply(True, rid, "")
            if not opts.ignore_quit:
                return 0
        else:
            reply(True, rid, "")
    # end of file on stdin: a well-behaved engine exits
    if opts.ignore_quit:
        while True:
            time.sleep(3600)
    return 0


COLUMNS = "ABCDEFGHJKLMNOPQRST"


class Board:
    """Which points are taken (captures are ignored: a captured point stays taken, which only makes the fake's
    choice of free points more careful); enough to play and show legal variations on a board with room left."""

    def __init__(self) -> None:
        self.size = 19
        self.taken: set[str] = set()

    def command(self, cmd: str, args: list[str]) -> None:
        if cmd == "boardsize":
            self.size = int(args[0])
            self.taken.clear()
        elif cmd == "clear_board":
            self.taken.clear()
        elif cmd == "play" and len(args) == 2:
            self.take(args[1])

    def take(self, vertex: str) -> None:
        if vertex.lower() not in ("pass", "resign"):
            self.taken.add(vertex.upper())

    def pv(self, skip: int = 0, length: int = 4) -> list[str]:
        free = [f"{COLUMNS[x]}{y}" for y in range(1, self.size + 1) for x in range(self.size)
                if f"{COLUMNS[x]}{y}" not in self.taken]
        return free[skip:skip + length] or ["pass"]


def kata_info(pv: list[str], order: int, visits: int, winrate: float) -> str:
    return (f"info move {pv[0]} visits {visits} edgeVisits {visits} utility 0.0412 winrate {winrate:.6f} "
            f"scoreMean 1.53 scoreStdev 20.4 scoreLead 1.53 scoreSelfplay 1.94 prior 0.2104 lcb 0.4988 "
            f"utilityLcb -0.0195 order {order} pv {' '.join(pv)}")


def lz_stderr(pv: list[str], other: list[str], *, garbage: bool) -> None:
    lines = [f"{pv[0]:>4} -> {701:7d} (V: {57.5:5.2f}%) (LCB: {57.46:5.2f}%) (N: {29.75:5.2f}%) PV: {' '.join(pv)}",
             f"{other[0]:>4} -> {12:7d} (V: {41.0:5.2f}%) (LCB: {30.02:5.2f}%) (N: {3.1:5.2f}%) PV: {' '.join(other)}"]
    if garbage:
        lines[0] = f"{pv[0]:>4} -> {701:7d} (V: 5x.50%) (LCB: 57.46%) (N: 29.75%) PV: {' '.join(pv)}"
    lines += ["4.5 average depth, 8 max depth", "712 non leaf nodes, 1.00 average children",
              "713 visits, 2860 nodes, 712 playouts, 700 n/s", ""]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
