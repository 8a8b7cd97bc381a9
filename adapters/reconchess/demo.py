"""``gamebridge demo`` on the reconchess sandbox: Stockfish through the bridge plays Reconnaissance Blind Chess in
a game the bot finds itself (server.seek), with the true board and the bridge's belief after each turn."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any, TextIO

from bridge.config import load_config_text
from bridge.daemon import Daemon
from bridge.errors import BridgeError
from bridge.events import RBC_DEMO_INCREMENT, RBC_DEMO_SECONDS, DemoOptions

STOCKFISH = "/usr/games/stockfish"
RBC_BOT = "demo-rbc-bot"
RBC_PASSWORD_ENV = "BRIDGE_DEMO_RECONCHESS_PASSWORD"


def run_rbc_demo(*, opponent: str = "random", seconds: float = RBC_DEMO_SECONDS,
                 increment: float = RBC_DEMO_INCREMENT, data_dir: Path = Path("runs/demo"),
                 out: TextIO, timeout: float = 900.0) -> int:
    """Stockfish through the bridge plays Reconnaissance Blind Chess against a house bot of the reconchess sandbox;
    after each turn: the true board, what the bridge sensed and moved, and how many boards it still thinks possible."""
    import chess

    from bridge.adapters.reconchess.client import ReconchessAdapter
    from bridge.adapters.reconchess.sandbox import ReconchessSandbox
    from bridge.games.rbc import make_player

    if not os.access(STOCKFISH, os.X_OK):
        raise BridgeError(f"{STOCKFISH} is missing: install it with `apt-get install stockfish` "
                          f"(or run scripts/setup.sh)")
    data_dir.mkdir(parents=True, exist_ok=True)
    sandbox = ReconchessSandbox("127.0.0.1", 0, seconds_per_player=seconds,
                                 seconds_increment=increment).start()
    daemon: Daemon | None = None
    try:
        password = secrets.token_hex(12)
        sandbox.add_user(RBC_BOT, password)
        os.environ[RBC_PASSWORD_ENV] = password
        config = load_config_text(f"""
server:
  kind: reconchess
  url: {sandbox.url}
  username: {RBC_BOT}
  password: {{env: {RBC_PASSWORD_ENV}}}
  poll_interval: 0.5
  status_interval: 0.05
  seek: {{opponents: [{opponent}], color: white, stop_after: 1, every: 1}}
engine:
  protocol: uci
  command: [{STOCKFISH}]
  options: {{Threads: 1, Hash: 32}}
daemon:
  data_dir: {data_dir}
""", "<demo>")
        players: list[Any] = []

        def factory(ctx: Any) -> Any:
            player = make_player(ctx)
            players.append(player)
            return player

        adapter = ReconchessAdapter(config.server, config, player_factory=factory)  # type: ignore[attr-defined]
        daemon = Daemon(config, adapter=adapter)
        daemon.start()
        # nobody invites the bot: it finds its own game (server.seek), inviting the house player
        deadline = time.monotonic() + 60
        while not (sent := [g for g in sandbox.games() if g.get("white") == RBC_BOT]):
            if time.monotonic() > deadline:
                out.write("the bot did not invite anybody within 60 s\n")
                return 1
            time.sleep(0.1)
        game_id = sent[0]["id"]
        out.write(f"\nReconnaissance Blind Chess: reconchess sandbox {sandbox.url}; the bot {RBC_BOT} (Stockfish, "
                  f"white) invited house {opponent} itself (server.seek), {seconds:g} s + {increment:g} s a turn; "
                  f"game {game_id}\n")
        shown = 0
        board = chess.Board()
        deadline = time.monotonic() + timeout
        game: dict[str, Any] = {}
        while time.monotonic() < deadline:
            game = sandbox.game(game_id)
            if shown == 0 and game.get("starting_fen"):
                board = chess.Board(game["starting_fen"])
            turns = game.get("moves", [])
            complete = len(turns) if game.get("over") else len(turns) - 1  # the last one may still be moving
            for turn in turns[shown:complete]:
                shown += 1
                taken = turn.get("taken")
                board.push(chess.Move.from_uci(taken) if taken else chess.Move.null())
                if turn.get("color") != "white":
                    continue  # the bridge plays white: show the game after each of its turns
                sense = turn.get("sense")
                sensed = chess.square_name(sense) if isinstance(sense, int) else "nothing"
                requested = turn.get("requested") or "pass"
                played = taken or "pass"
                if turn.get("capture_square") is not None:
                    played += f" (captured on {chess.square_name(turn['capture_square'])})"
                turn_no = (shown + 1) // 2
                belief = _boards_after(players, turn_no)
                out.write(f"\nturn {turn_no}: sensed around {sensed}; asked {requested}, played {played}"
                          f"; the bridge now thinks {belief} boards possible\n{board}\n")
            if game.get("over"):
                break
            time.sleep(0.1)
        else:
            out.write("the RBC demo game did not finish in time\n")
            return 1
        wc = game.get("winner_color")
        winner = "nobody" if wc is None else "white (the bridge)" if wc else f"black ({opponent})"
        out.write(f"\nresult: {winner} wins by {game.get('win_reason')}\n")
        records = data_dir / "records"
        for _ in range(50):
            if list(records.glob(f"reconchess-{game_id}.*")):
                break
            time.sleep(0.1)
        out.write(f"records: {records / f'reconchess-{game_id}.json'} and .pgn\n")
        return 0
    finally:
        if daemon is not None:
            daemon.shutdown()
        sandbox.stop()


def _boards_after(players: list[Any], turn: int, wait: float = 5.0) -> int | str:
    """The boards the bridge's player thought possible right after its move of ``turn`` (it notes them once the
    server has told it the move's result, a moment after the server shows the move); "?" if it never does."""
    deadline = time.monotonic() + wait
    while True:
        counts = players[-1].boards_after_turn if players else {}
        if turn in counts:
            return int(counts[turn])
        if time.monotonic() > deadline:
            return "?"
        time.sleep(0.02)


def rbc_demo(opts: DemoOptions) -> int:
    return run_rbc_demo(opponent=opts.rbc_opponent, seconds=opts.rbc_seconds,
                        increment=opts.rbc_increment, data_dir=opts.data_dir, out=opts.out)
