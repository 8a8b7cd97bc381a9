"""``gamebridge demo`` on the Open Games sandbox: the reference Battleship engine through the bridge plays a house
agent, ships allowed to move; both grids after every turn."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, TextIO

from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.errors import BridgeError
from bridge.events import DemoOptions

REFERENCE_ENGINE = Path(__file__).resolve().parents[2] / "scripts" / "battleship_engine.py"
BS_BOT = "demo-battleship-bot"
BS_KEY_ENV = "BRIDGE_DEMO_OPENGAMES_KEY"


def _side_by_side(left: str, right: str, titles: tuple[str, str]) -> str:
    a, b = left.splitlines(), right.splitlines()
    width = max((len(x) for x in a), default=0) + 4
    rows = [f"{titles[0]:<{width}}{titles[1]}"]
    rows += [f"{x:<{width}}{y}" for x, y in zip(a, b, strict=False)]
    return "\n".join(rows)


def run_battleship_demo(*, opponent: str = "hunt-target", data_dir: Path = Path("runs/demo"), out: TextIO,
                        timeout: float = 300.0, poll: float = 0.02) -> int:
    """The reference engine through the bridge plays Battleship (ships may move) against a house agent of the
    Open Games sandbox; both grids are shown (ships #, hits X, misses o) after each look at the game (every ``poll``
    seconds) that found new turns: after every turn, but for turns that came within one look (the house answers
    within 50 ms), which are listed and drawn once, as they stand after the last of them."""
    import sys

    from bridge.adapters.opengames.sandbox import OpenGamesSandbox

    if not REFERENCE_ENGINE.exists():
        raise BridgeError(f"the reference Battleship engine is missing at {REFERENCE_ENGINE}: run the demo from a "
                          f"checkout of the repository")
    data_dir.mkdir(parents=True, exist_ok=True)
    sandbox = OpenGamesSandbox("127.0.0.1", 0, pairing_interval=0.5, house_delay=0.05).start()
    daemon: Daemon | None = None
    try:
        os.environ[BS_KEY_ENV] = sandbox.add_agent(BS_BOT)["api_key"]
        config = load_config_text(f"""
server:
  kind: opengames
  url: {sandbox.url}
  agent: {BS_BOT}
  api_key: {{env: {BS_KEY_ENV}}}
  poll_interval: 0.5
  state_interval: 0.1
  games: 1
engine:
  protocol: line
  command: [{sys.executable}, {REFERENCE_ENGINE}]
daemon:
  data_dir: {data_dir}
""", "<demo>")
        daemon = Daemon(config)
        daemon.start()
        sandbox.add_house(opponent, moves=True)
        out.write(f"\nBattleship: Open Games sandbox {sandbox.url}, bot {BS_BOT} (the reference engine) vs house "
                  f"{opponent}, ship moves allowed\n")
        deadline = time.monotonic() + timeout
        game_id = None
        while game_id is None and time.monotonic() < deadline:
            mine = [g for g in sandbox.games() if BS_BOT in (g["player1"]["name"], g["player2"]["name"])]
            game_id = mine[0]["game_id"] if mine else None
            time.sleep(0.1)
        if game_id is None:
            out.write("no Battleship game started\n")
            return 1
        shown = 0
        game: dict[str, Any] = {}
        while time.monotonic() < deadline:
            game = sandbox.game(game_id)
            me = 1 if game["seats"]["player1"]["name"] == BS_BOT else 2
            names = {me: "bridge", 3 - me: opponent}
            new = game["turns"][shown:]
            for turn in new:
                shown += 1
                who = names[turn["player"]]
                if turn.get("action_type") == "shoot":
                    r = turn["result"]
                    what = f"shoots {turn['coordinate']}: " + (
                        f"sinks the {r['sunk_ship_name']}" if r["sunk"] else "hit" if r["hit"] else "miss")
                else:
                    what = "moves " + ", ".join(f"{m['ship']} {m['action']} {m.get('direction', '')}".strip()
                                                for m in turn.get("moves", []))
                out.write(f"\nturn {turn['turn']}: {who} {what}\n")
            if new:  # the grids as they are now, i.e. after the last of these turns (not after each of them)
                fleets = game["fleets"]
                out.write(_side_by_side(fleets[f"player{me}"]["board_ascii"], fleets[f"player{3 - me}"]["board_ascii"],
                                        ("the bridge's fleet", f"{opponent}'s fleet")) + "\n")
            if game.get("game_over"):
                break
            time.sleep(poll)
        else:
            out.write("the Battleship demo game did not finish in time\n")
            return 1
        winner = game.get("winner_player")
        out.write(f"\nresult: {'the bridge' if winner == me else opponent} wins after {shown} turns "
                  f"({game.get('end_reason') or 'all ships sunk'})\n")
        return 0
    finally:
        if daemon is not None:
            daemon.shutdown()
        sandbox.stop()


def battleship_demo(opts: DemoOptions) -> int:
    return run_battleship_demo(data_dir=opts.data_dir, out=opts.out)
