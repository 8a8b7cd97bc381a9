#!/usr/bin/env python3
"""A scripted fake of KataGo's analysis engine (``katago analysis``): a real subprocess for tests.

It speaks the JSON analysis protocol (docs/Analysis_Engine.md in KataGo): one query a line on stdin, one response a
line on stdout, matched by ``id``. For a query it replays ``initialStones`` and ``moves`` on a board (the bridge's
own Go rules) and answers a legal move for the player to move at the analysed turn (``moveInfos`` with ``order`` 0,
``pass`` when no useful move is left), with ``rootInfo.winrate`` (black's view) and, if asked, ``ownership``
(one value everywhere). Actions: ``query_version`` and ``terminate`` (answers the terminated query at once).

Usage: python fake_kata_analysis.py [flags]

  --delay SECONDS        answer each query this long after it arrived
  --hold SECONDS         keep queries this long (or until --batch are waiting), then answer the batch in reverse
                         order of arrival: answers out of order
  --batch N              with --hold: answer as soon as N queries wait (default 3)
  --winrate W            rootInfo.winrate reported (black's view; default 0.5)
  --ownership V          the ownership value reported for every point (default 0.0)
  --view V               its config's reportAnalysisWinratesAs, BLACK (default), WHITE or SIDETOMOVE; a query's
                         overrideSettings.reportAnalysisWinratesAs wins (--winrate and --ownership are black's view)
  --crash-after N        exit with status 3 on receiving the Nth query (not an action)...
  --once-file FILE       ...only if FILE does not exist (it is created): the restarted engine does not crash again
  --hang                 never answer a query (terminate included)
  --log FILE             append "PID EVENT ID" lines: got / answered / out-of-order / crash
  --seed S               random seed for the moves (default 1)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bridge.games.gorules import GoBoard, IllegalMove
from bridge.games.gotypes import Color, parse_gtp_vertex

COLORS: dict[str, Color] = {"B": "black", "W": "white"}


def log(opts: argparse.Namespace, event: str, qid: str) -> None:
    if opts.log:
        with open(opts.log, "a") as f:
            f.write(f"{os.getpid()} {event} {qid}\n")


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(query: dict[str, Any], opts: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    w, h = int(query["boardXSize"]), int(query["boardYSize"])
    board = GoBoard(w, h, ko="simple")
    for color, vertex in query.get("initialStones", []):
        board.play(COLORS[color], parse_gtp_vertex(vertex, w, h))
    moves = query["moves"]
    turn = query.get("analyzeTurns", [len(moves)])[0]
    to_move: Color = COLORS[query.get("initialPlayer", "B")]
    for color, vertex in moves[:turn]:
        board.play(COLORS[color], parse_gtp_vertex(vertex, w, h))
        to_move = "white" if color == "B" else "black"
    point = board.random_move(to_move, rng)
    if point is not None and len(moves) > w * h * 2:
        point = None  # a long game: pass, so that it ends
    x, y = point if point is not None else (0, 0)
    move = "pass" if point is None else f"{'ABCDEFGHJKLMNOPQRSTUVWXYZ'[x]}{h - y}"
    response: dict[str, Any] = {
        "id": query["id"], "isDuringSearch": False, "turnNumber": turn,
        "moveInfos": [{"move": move, "order": 0, "visits": 10, "winrate": opts.winrate, "prior": 0.5, "pv": [move]},
                      {"move": "pass", "order": 1, "visits": 1, "winrate": 0.0, "prior": 0.01}],
        "rootInfo": {"currentPlayer": "B" if to_move == "black" else "W", "visits": 11, "winrate": opts.winrate},
    }
    if query.get("includeOwnership"):
        response["ownership"] = [opts.ownership] * (w * h)
    view = query.get("overrideSettings", {}).get("reportAnalysisWinratesAs", opts.view)
    if view == "WHITE" or (view == "SIDETOMOVE" and to_move == "white"):  # the fake's numbers are black's view
        response["rootInfo"]["winrate"] = 1.0 - opts.winrate
        for info in response["moveInfos"]:
            info["winrate"] = 1.0 - info["winrate"]
        if "ownership" in response:
            response["ownership"] = [-v for v in response["ownership"]]
    return response


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--hold", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=3)
    ap.add_argument("--winrate", type=float, default=0.5)
    ap.add_argument("--ownership", type=float, default=0.0)
    ap.add_argument("--view", default="BLACK")
    ap.add_argument("--crash-after", type=int, default=0)
    ap.add_argument("--once-file", default=None)
    ap.add_argument("--hang", action="store_true")
    ap.add_argument("--log", default=None)
    ap.add_argument("--seed", type=int, default=1)
    opts = ap.parse_args()
    rng = random.Random(opts.seed)
    waiting: list[tuple[float, dict[str, Any]]] = []  # (arrival, query)
    received = 0
    buffer = ""
    eof = False
    while not eof or waiting:
        now = time.monotonic()
        due = [q for q in waiting if now - q[0] >= opts.delay]
        if opts.hold:
            ripe = len(due) >= opts.batch or (due and now - min(t for t, _ in due) >= opts.hold) or (eof and due)
            due = due if ripe else []
        if due and not opts.hang:
            order = list(reversed(due)) if opts.hold else due
            for i, (arrived, query) in enumerate(order):
                waiting.remove((arrived, query))
                try:
                    send(answer(query, opts, rng))
                except (KeyError, ValueError, IllegalMove) as exc:
                    send({"error": f"bad query: {exc}", "field": "moves", "id": query.get("id", "")})
                earlier_still_waiting = any(t < arrived for t, _ in order[i + 1:])
                log(opts, "out-of-order" if earlier_still_waiting else "answered", query["id"])
            continue
        if eof:
            if opts.hang:
                return 0
            time.sleep(0.01)
            continue
        ready = select.select([sys.stdin], [], [], 0.02)[0]
        if not ready:
            continue
        chunk = os.read(sys.stdin.fileno(), 65536).decode()
        if not chunk:
            eof = True
            continue
        buffer += chunk
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            if not line.strip():
                continue
            message = json.loads(line)
            action = message.get("action")
            if action == "query_version":
                send({"id": message["id"], "action": "query_version", "version": "1.15.3-fake",
                      "git_hash": "0" * 40})
            elif action == "terminate":
                if opts.hang:
                    continue
                send(message)
                for arrived, query in list(waiting):
                    if query["id"] == message.get("terminateId"):
                        waiting.remove((arrived, query))
                        send(answer(query, opts, rng))
                        log(opts, "terminated", query["id"])
            else:
                received += 1
                log(opts, "got", message.get("id", ""))
                if opts.crash_after and received >= opts.crash_after and not (
                        opts.once_file and os.path.exists(opts.once_file)):
                    if opts.once_file:
                        open(opts.once_file, "w").close()
                    log(opts, "crash", message.get("id", ""))
                    sys.stderr.write("fake katago: crashing\n")
                    sys.stderr.flush()
                    return 3
                waiting.append((time.monotonic(), message))
    return 0


if __name__ == "__main__":
    sys.exit(main())
