"""A scripted UCI engine for tests (a real subprocess): it handshakes, then misbehaves on ``go`` as its first
argument says:

    hang     never answers
    garbage  answers an illegal move and an unparseable info line
    normal   answers e2e4
"""

import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "normal"
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "uci":
        print("id name FakeUci", flush=True)
        print("option name Hash type spin default 16 min 1 max 1024", flush=True)
        print("option name MultiPV type spin default 1 min 1 max 500", flush=True)
        print("uciok", flush=True)
    elif cmd == "isready":
        print("readyok", flush=True)
    elif cmd.startswith("go"):
        if mode == "hang":
            continue
        if mode == "garbage":
            print("info depth 1 score cp zz pv e2e5", flush=True)
            print("bestmove e2e5", flush=True)
        else:
            print("info depth 1 score cp 10 pv e2e4", flush=True)
            print("bestmove e2e4", flush=True)
    elif cmd == "quit":
        break
