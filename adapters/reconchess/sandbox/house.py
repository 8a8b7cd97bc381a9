"""House opponents: reconchess's own baseline bots, each playing one game server-side in a thread.

``random`` (RandomBot), ``attacker`` (AttackerBot, scripted rushes) and ``trout`` (TroutBot: one guessed
board, Stockfish 0.5 s a move; it reads the ``STOCKFISH_EXECUTABLE`` environment variable, which the sandbox
sets when it is missing). A house player takes its turns exactly as ``reconchess.play_turn`` does, through the
same :class:`SandboxGame` methods as the HTTP endpoints; a bot that crashes is error-resigned, never left
hanging.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from typing import Any

import chess
from reconchess import Player
from reconchess.bots.attacker_bot import AttackerBot
from reconchess.bots.random_bot import RandomBot

from bridge.adapters.reconchess.sandbox.core import HouseFactory, SandboxError, SandboxGame

log = logging.getLogger("bridge.reconchess.sandbox")

STOCKFISH_ENV = "STOCKFISH_EXECUTABLE"
DEBIAN_STOCKFISH = "/usr/games/stockfish"


def find_stockfish(explicit: str | None = None) -> str | None:
    for candidate in (explicit, os.environ.get(STOCKFISH_ENV), shutil.which("stockfish"), DEBIAN_STOCKFISH):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _trout_factory(stockfish: str | None) -> HouseFactory:
    def make() -> Player:
        from reconchess.bots.trout_bot import TroutBot

        path = find_stockfish(stockfish)
        if path is None:
            raise RuntimeError(
                f"the house bot 'trout' needs Stockfish: apt-get install stockfish, or set {STOCKFISH_ENV}"
            )
        os.environ[STOCKFISH_ENV] = path  # TroutBot reads it in __init__
        return TroutBot()

    return make


def attacker() -> Player:
    """reconchess's AttackerBot on its own copy of the rush it picks: the bot pops its moves from the module's
    list itself when it plays white, and without the copy every later game of the process finds that rush used up
    (and passes every move)."""
    bot = AttackerBot()
    bot.move_sequence = list(bot.move_sequence)
    return bot


def house_bots(stockfish: str | None = None) -> dict[str, HouseFactory]:
    """The house users and how to make their player for one game."""
    return {"random": RandomBot, "attacker": attacker, "trout": _trout_factory(stockfish)}


class HousePlayer(threading.Thread):
    """Plays ``color`` of ``game`` with a new bot from ``factory`` until the game ends or ``stop`` is set."""

    def __init__(self, game: SandboxGame, color: bool, factory: HouseFactory, stop: threading.Event) -> None:
        super().__init__(name=f"house-{game.names[color]}-{game.id}", daemon=True)
        self.game = game
        self.color = color
        self.factory = factory
        self.stop_event = stop
        self.error: str | None = None

    def run(self) -> None:
        bot: Player | None = None
        game, color = self.game, self.color
        try:
            bot = self.factory()
            bot.handle_game_start(color, chess.Board(game.starting_fen), game.names[not color])
            game.mark_ready(color)
            while game.wait_for_turn(color, self.stop_event):
                try:
                    self._turn(bot)
                except SandboxError as exc:  # the game ended under us (a flag fell): look again
                    log.debug("game %d: house %s: %s", game.id, game.names[color], exc.message)
            if game.finished:
                bot.handle_game_end(game.winner_color(), game.win_reason(), game.game_history())
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("game %d: house player %s failed; error-resigning it", game.id, game.names[color])
            game.error_resign(color)
        finally:
            self._close(bot)

    def _turn(self, bot: Player) -> None:
        game, color = self.game, self.color
        started = time.monotonic()
        with game.cond:
            capture = game.opponent_move_results(color)
            sense_actions = game.sense_actions(color)
            move_actions = game.move_actions(color)
            seconds = game.seconds_left(color)
        bot.handle_opponent_move_result(capture is not None, capture)
        square = bot.choose_sense(list(sense_actions), list(move_actions), seconds)
        bot.handle_sense_result(game.sense(color, square))
        move = bot.choose_move(list(move_actions), seconds - (time.monotonic() - started))
        if (
            move is not None
            and move not in move_actions
            and chess.Move(move.from_square, move.to_square, chess.QUEEN) not in move_actions
        ):
            log.info(
                "game %d: house %s chose %s, not a move action; passing", game.id, game.names[color], move
            )
            move = None
        requested, taken, capture_square = game.move(color, move)
        game.end_turn(color)
        bot.handle_move_result(requested, taken, capture_square is not None, capture_square)

    def _close(self, bot: Player | None) -> None:
        engine: Any = getattr(bot, "engine", None)  # TroutBot's Stockfish, when the game did not end normally
        if engine is not None:
            try:
                engine.quit()
            except Exception:  # already stopped (handle_game_end quits it)
                pass
