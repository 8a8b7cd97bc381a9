#!/usr/bin/env python3
"""A real GTP engine behind a delaying proxy: ``slow_gtp.py [--delay S] [--stderr LINE] -- COMMAND...``.

Each ``genmove`` (or ``--slow-command CMD``) is held for ``--delay`` seconds before it reaches the engine (so a
test can act while the engine "thinks"), ``--hang-once FILE`` makes the first genmove of the first process that
finds FILE missing never answer (it creates FILE; a restarted proxy then plays normally), and ``--stderr LINE`` is
written to stderr before each genmove (e.g. ``MAIN: thinking``)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=1.0)
    ap.add_argument("--stderr", action="append", default=[])
    ap.add_argument("--hang-once", default=None)
    ap.add_argument("--slow-command", default="genmove", help="the command held back (default genmove)")
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()
    engine = subprocess.Popen(args.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert engine.stdin is not None and engine.stdout is not None
    for line in sys.stdin:
        if args.slow_command in line.split():
            for text in args.stderr:
                print(text, file=sys.stderr, flush=True)
            time.sleep(args.delay)
            if args.hang_once and not os.path.exists(args.hang_once):
                open(args.hang_once, "w").close()
                while True:
                    time.sleep(3600)
        engine.stdin.write(line)
        engine.stdin.flush()
        if not line.strip():
            continue
        while True:
            out = engine.stdout.readline()
            if not out:
                return 1
            sys.stdout.write(out)
            sys.stdout.flush()
            if not out.strip():
                break
        if line.split()[-1:] == ["quit"] or line.strip().endswith("quit"):
            break
    engine.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
