"""``gamebridge demo`` on the OGS sandbox: GNU Go through the bridge plays a house opponent (the board after every
move), then the engine's thinking: Leela Zero's analysis chat messages as OGS shows them."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, TextIO

import requests

from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.errors import BridgeError
from bridge.events import DemoOptions
from bridge.games.gorules import GoBoard, IllegalMove
from bridge.games.gotypes import Color, Point, color_of_move, gtp_vertex

GNUGO = "/usr/games/gnugo"
BOT = "demo-bot"
KEY_ENV = "BRIDGE_DEMO_OGS_KEY"


def render_board(width: int, height: int, stones: dict[Point, Color], last: Point | None = None) -> str:
    """An ASCII board with GTP coordinates: X black, O white, the last move in parentheses."""
    cols = "ABCDEFGHJKLMNOPQRSTUVWXYZ"[:width]
    lines = ["    " + " ".join(cols)]
    for y in range(height):
        cells = ["X" if stones.get((x, y)) == "black" else "O" if stones.get((x, y)) == "white" else "."
                 for x in range(width)]
        seps = [" "] * (width + 1)
        if last is not None and last[1] == y:
            seps[last[0]], seps[last[0] + 1] = "(", ")"
        text = "".join(seps[i] + cells[i] for i in range(width)) + seps[width]
        lines.append(f"{height - y:>3}{text}")
    return "\n".join(lines)


def _positions(game: dict[str, Any], start: int) -> list[tuple[int, Color, Point | None, GoBoard]]:
    """(move number, colour, point, board after it) for every move from index ``start`` on (each board a copy)."""
    from bridge.adapters.ogs.codec import decode_points

    w, h = int(game["width"]), int(game["height"])
    init = game.get("initial_state") or {}
    board = GoBoard(w, h, black=decode_points(init.get("black", "")), white=decode_points(init.get("white", "")))
    settings = _settings_for_colors(game)
    out: list[tuple[int, Color, Point | None, GoBoard]] = []
    if start == 0:
        out.append((0, "black", None, board.copy()))
    for i, mv in enumerate(game.get("moves", [])):
        x, y = int(mv[0]), int(mv[1])
        point = None if x < 0 else (x, y)
        color = color_of_move(settings, i)
        try:
            board.play(color, point)
        except IllegalMove:
            pass  # the sandbox referee already refused illegal moves; nothing to show
        if i + 1 >= start:
            out.append((i + 1, color, point, board.copy()))
    return out


def _settings_for_colors(game: dict[str, Any]) -> Any:
    from bridge.games.gotypes import GoSettings

    return GoSettings(int(game["width"]), int(game["height"]), float(game.get("komi") or 0), "japanese", "black",
                      handicap=int(game.get("handicap") or 0),
                      free_handicap=bool(game.get("free_handicap_placement")),
                      initial_player=game.get("initial_player", "black"))


def _challenge(url: str, bot: str, challenger: dict[str, Any], size: int, challenger_color: str) -> Any:
    """A house challenge to ``bot`` on the sandbox (japanese, komi 6.5, byo-yomi 300 s + 3 x 30 s): its game id."""
    body = {"target": bot, "challenger": challenger, "width": size, "height": size, "rules": "japanese",
            "komi": 6.5, "ranked": False, "handicap": 0, "challenger_color": challenger_color,
            "time_control": {"system": "byoyomi", "time_control": "byoyomi", "speed": "live",
                             "main_time": 300, "period_time": 30, "periods": 3, "pause_on_weekends": False}}
    r = requests.post(f"{url}/sandbox/challenges", json=body, timeout=10)
    r.raise_for_status()
    return r.json()["game_id"]


def run_go_demo(*, size: int = 9, opponent: str = "gnugo", data_dir: Path = Path("runs/demo"), out: TextIO,
                delay: float = 0.0, timeout: float = 600.0) -> int:
    from bridge.adapters.ogs.sandbox import SandboxServer

    if not os.access(GNUGO, os.X_OK):
        raise BridgeError(f"{GNUGO} is missing: install it with `apt-get install gnugo` (or run scripts/setup.sh)")
    data_dir.mkdir(parents=True, exist_ok=True)
    server = SandboxServer("127.0.0.1", 0)
    server.start()
    daemon: Daemon | None = None
    try:
        key = secrets.token_hex(16)
        server.add_bot(BOT, key)
        os.environ[KEY_ENV] = key
        config = load_config_text(f"""
server:
  kind: ogs
  url: {server.url}
  username: {BOT}
  api_key: {{env: {KEY_ENV}}}
  accept: {{board_sizes: [{size}]}}
engine:
  command: [{GNUGO}, --mode, gtp, --level, "5"]
  analysis: main
go:
  greeting: "Hello from GNU Go through bridge"
  farewell: "Thanks for the game"
daemon:
  data_dir: {data_dir}
""", "<demo>")
        out.write(f"sandbox: {server.url}   bot: {BOT} (GNU Go level 5)   opponent: {opponent}\n")
        daemon = Daemon(config)
        daemon.start()
        challenger: dict[str, Any] = {"house": "random"}
        if opponent == "gnugo":
            challenger = {"house": "gtp", "command": [GNUGO, "--mode", "gtp", "--level", "1"]}
        if delay:
            challenger["delay"] = delay
        game_id = _challenge(server.url, BOT, challenger, size, "white")
        out.write(f"challenge sent; game {game_id}\n")
        return _watch(server.url, game_id, size, out, timeout, daemon, data_dir)
    finally:
        if daemon is not None:
            daemon.shutdown()
        server.stop()


def _watch(url: str, game_id: Any, size: int, out: TextIO, timeout: float, daemon: Daemon, data_dir: Path) -> int:
    shown = -1
    chat_seen = 0
    deadline = time.monotonic() + timeout
    game: dict[str, Any] = {}
    while time.monotonic() < deadline:
        game = requests.get(f"{url}/sandbox/games/{game_id}", timeout=10).json()
        for line in game.get("chat", [])[chat_seen:]:
            chat_seen += 1
            body = line.get("body")
            if isinstance(body, dict) and body.get("type") == "analysis":
                out.write(f"analysis message after move {body.get('from')}: {body.get('name')}, variation "
                          f"{body.get('moves')}\n")
        if "width" in game and len(game.get("moves", [])) > shown:
            for number, color, point, board in _positions(game, shown + 1):
                what = "start" if number == 0 else \
                    f"move {number}: {color} {'passes' if point is None else gtp_vertex(point, size)}"
                out.write(f"\n{what}   captures: black {board.captures['black']}, white {board.captures['white']}\n")
                out.write(render_board(size, size, board.stones, point) + "\n")
                shown = number
            out.flush()
        if game.get("phase") == "finished":
            break
        time.sleep(0.2)
    else:
        out.write("the demo game did not finish in time\n")
        return 1
    players = game.get("players", {})
    if not any(isinstance(line.get("body"), dict) and line["body"].get("type") == "analysis"
               for line in game.get("chat", [])):
        out.write("\nanalysis messages: none (engine.analysis is on, but GNU Go prints no principal variation; "
                  "KataGo and Leela Zero do)\n")
    out.write(f"\nresult: {game.get('score') or ''} ({game.get('outcome')}); "
              f"black {players.get('black', {}).get('username')}, white {players.get('white', {}).get('username')}\n")
    # wait for the session to write its record
    sgf = data_dir / "records" / f"ogs-{game_id}.sgf"
    for _ in range(50):
        if sgf.exists():
            break
        time.sleep(0.1)
    out.write(f"SGF record: {sgf}\ntranscript: {data_dir / 'transcripts' / f'ogs-{game_id}.log'}\n")
    width = shutil.get_terminal_size((80, 20)).columns
    out.write("-" * min(width, 60) + "\n")
    return 0


LEELAZ = "/usr/games/leelaz"
PV_BOT = "demo-leela-bot"
PV_KEY_ENV = "BRIDGE_DEMO_OGS_PV_KEY"


def run_analysis_demo(*, data_dir: Path = Path("runs/demo"), out: TextIO, timeout: float = 180.0) -> int:
    """The engine's thinking on OGS (``engine.analysis``): Leela Zero through ``lz-genmove_analyze`` plays a few
    19x19 moves on the OGS sandbox against a scripted house opponent that then resigns; every analysis chat message
    the bot sends is shown as OGS would: its title and its variation from the move it starts at. Leela Zero runs with
    a tiny untrained network (``bridge/leelaz_network.py``: Debian ships none), so its moves are weak: the point is the
    path of the message, which is the same with a real network or KataGo."""
    from bridge.adapters.ogs.analysis import read_analysis_body
    from bridge.adapters.ogs.sandbox import SandboxServer
    from bridge.leelaz_network import write_network

    if not os.access(LEELAZ, os.X_OK):
        out.write(f"\nanalysis messages: skipped, {LEELAZ} is missing (apt-get install leela-zero, or run "
                  f"scripts/setup.sh)\n")
        return 0
    data_dir.mkdir(parents=True, exist_ok=True)
    network = write_network(data_dir / "leelaz-tiny-network.txt")
    server = SandboxServer("127.0.0.1", 0)
    server.start()
    daemon: Daemon | None = None
    try:
        key = secrets.token_hex(16)
        server.add_bot(PV_BOT, key)
        os.environ[PV_KEY_ENV] = key
        config = load_config_text(f"""
server:
  kind: ogs
  url: {server.url}
  username: {PV_BOT}
  api_key: {{env: {PV_KEY_ENV}}}
  accept: {{board_sizes: [19]}}
engine:
  command: [{LEELAZ}, --gtp, --cpu-only, --weights, {network}, --noponder, --visits, "16", --threads, "1",
            --seed, "1", --resignpct, "0", --timemanage, "off", --quiet]
  analysis: main
daemon:
  data_dir: {data_dir}
""", "<demo>")
        daemon = Daemon(config)
        daemon.start()
        house = ["dd", "pp", "dp", "pd", "jj", "resign"]
        game_id = _challenge(server.url, PV_BOT, {"house": "scripted", "moves": house}, 19, "black")
        out.write(f"\nThe engine's thinking on OGS: Leela Zero (tiny test network) through the bridge, "
                  f"engine.analysis: main, 19x19 on the OGS sandbox; game {game_id}\n")
        deadline = time.monotonic() + timeout
        seen = 0
        game: dict[str, Any] = {}
        while time.monotonic() < deadline:
            game = requests.get(f"{server.url}/sandbox/games/{game_id}", timeout=10).json()
            for line in game.get("chat", [])[seen:]:
                seen += 1
                msg = line.get("body")
                if not (isinstance(msg, dict) and msg.get("type") == "analysis"):
                    continue
                start, variation = read_analysis_body(msg, len(game.get("moves", [])))
                pv = " ".join(gtp_vertex(m, 19) for m in variation)
                out.write(f"analysis message ({line.get('channel')} chat), after move {start}: {msg.get('name')}; "
                          f"variation {pv}\n")
            if game.get("phase") == "finished":
                break
            time.sleep(0.2)
        else:
            out.write("the analysis demo game did not finish in time\n")
            return 1
        count = sum(1 for line in game.get("chat", [])
                    if isinstance(line.get("body"), dict) and line["body"].get("type") == "analysis")
        out.write(f"result: {game.get('score')}; {count} analysis message(s), one for each move of the bot\n")
        return 0 if count else 1
    finally:
        if daemon is not None:
            daemon.shutdown()
        server.stop()


def go_demo(opts: DemoOptions) -> int:
    return run_go_demo(size=opts.size, opponent=opts.opponent, data_dir=opts.data_dir, out=opts.out, delay=opts.delay)


def go_analysis_demo(opts: DemoOptions) -> int:
    return run_analysis_demo(data_dir=opts.data_dir, out=opts.out)
