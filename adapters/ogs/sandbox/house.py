"""House opponents: the sandbox's own players (random, scripted, a GTP engine).

A house player only chooses moves; the server decides when it is its turn, waits its ``delay`` (so that it uses
its own clock like a real player), applies the move through the same game code as a client's ``game/move``, and
makes it accept the bot's stone-removal proposal.  GTP engines run in worker threads (they block).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any

from bridge.adapters.ogs.codec import decode_point
from bridge.adapters.ogs.sandbox.game import SandboxGame
from bridge.errors import EngineError
from bridge.games.gorules import fixed_handicap_points
from bridge.games.gotypes import Color, Move, Point, gtp_vertex, parse_gtp_vertex

log = logging.getLogger("bridge.sandbox.ogs")
RESIGN = "resign"
HouseMove = Move | str  # a point, None (pass) or "resign"
KINDS = ("random", "scripted", "gtp")


def _script_item(item: Any, where: str) -> HouseMove:
    if isinstance(item, str):
        text = item.strip().lower()
        if text == RESIGN:
            return RESIGN
        if text in ("pass", "..", ""):
            return None
        try:
            return decode_point(text)
        except ValueError:
            raise ValueError(f"{where}: {item!r} is not a move (use \"dd\" letters, \"..\" or \"pass\", "
                             f"or \"resign\")") from None
    if isinstance(item, list) and len(item) >= 2 and all(isinstance(v, int) for v in item[:2]):
        return None if item[0] < 0 else (item[0], item[1])
    raise ValueError(f"{where}: {item!r} is not a move (use \"dd\", \"..\", \"resign\" or [x, y])")


class House:
    """Base class: the spec's common options and free-handicap placement."""

    kind = "house"

    def __init__(self, spec: dict[str, Any]) -> None:
        delay = spec.get("delay", 0.1)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ValueError(f"challenger.delay must be a number of seconds >= 0, got {delay!r}")
        self.delay = float(delay)
        self.accept_undo = bool(spec.get("accept_undo", False))
        rejects = spec.get("reject_removals", 0)
        if isinstance(rejects, bool) or not isinstance(rejects, int) or rejects < 0:
            raise ValueError(f"challenger.reject_removals must be a whole number >= 0, got {rejects!r}")
        self.reject_removals = rejects  # stone-removal phases to reject (a dispute) before accepting one
        self.rejected = 0
        self.rng = random.Random(spec.get("seed"))
        self.error: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"house": self.kind, "delay": self.delay, "accept_undo": self.accept_undo,
                "reject_removals": self.reject_removals}

    def handicap_stone(self, game: SandboxGame) -> Point | None:
        """Where to put the next free handicap stone: the star points OGS would use, else a random point."""
        for p in fixed_handicap_points(game.s.width, game.s.height, game.s.handicap) or []:
            if game.board.get(p) is None:
                return p
        return game.board.random_move("black", self.rng)

    async def choose(self, game: SandboxGame, color: Color) -> HouseMove:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class RandomHouse(House):
    """Uniformly random legal moves that do not fill its own eyes; passes when none is left, and (unless
    ``pass_after_pass`` is false) answers a pass with a pass, so that games end when the bot thinks they are over
    instead of after the random player has filled the whole board."""

    kind = "random"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.pass_after_pass = bool(spec.get("pass_after_pass", True))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pass_after_pass": self.pass_after_pass}

    async def choose(self, game: SandboxGame, color: Color) -> HouseMove:
        if game.placing_handicap and color == "black":
            return self.handicap_stone(game)
        if self.pass_after_pass and game.moves and game.moves[-1][1] is None:
            return None
        return game.board.random_move(color, self.rng)


class ScriptedHouse(House):
    """Plays its ``moves`` list in order (its n-th move of the game is item n), then passes."""

    kind = "scripted"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        moves = spec.get("moves", [])
        if not isinstance(moves, list):
            raise ValueError("challenger.moves must be a list such as [\"dd\", \"pp\", \"..\"]")
        self.moves = [_script_item(m, f"challenger.moves[{i}]") for i, m in enumerate(moves)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "moves": len(self.moves)}

    async def choose(self, game: SandboxGame, color: Color) -> HouseMove:
        index = sum(1 for c, _, _ in game.moves if c == color)
        if index < len(self.moves):
            return self.moves[index]
        if game.placing_handicap and color == "black":
            return self.handicap_stone(game)
        return None


class GtpHouse(House):
    """A GTP engine (through :class:`bridge.engines.gtp.GtpEngine`), started on its first move, kept in step
    with the game (new moves only; a full reload after an undo or a refused move)."""

    kind = "gtp"

    def __init__(self, spec: dict[str, Any], name: str = "house") -> None:
        super().__init__(spec)
        command = spec.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(c, str) and c for c in command):
            raise ValueError("challenger.command must be the engine's command line as a list of strings, e.g. "
                             "[\"/usr/games/gnugo\", \"--mode\", \"gtp\", \"--level\", \"1\"]")
        self.command: list[str] = command
        timeout = spec.get("move_timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"challenger.move_timeout must be a positive number of seconds, got {timeout!r}")
        self.move_timeout = float(timeout)
        self.name = name
        self.engine: Any = None
        self.synced: list[tuple[Color, Move]] = []
        self.closed = False
        self._lock = threading.Lock()  # engine start vs close: a closed house never keeps a started engine

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "command": self.command, "error": self.error}

    async def choose(self, game: SandboxGame, color: Color) -> HouseMove:
        if game.placing_handicap and color == "black":
            return self.handicap_stone(game)
        snapshot = (game.s.width, game.s.height, game.s.komi, tuple(game.s.initial_black),
                    [(c, mv) for c, mv, _ in game.moves])
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._genmove, snapshot, color)

    def _genmove(self, snapshot: tuple[int, int, float, tuple[Point, ...], list[tuple[Color, Move]]],
                 color: Color) -> HouseMove:
        from bridge.engines.gtp import GtpEngine

        width, height, komi, initial_black, moves = snapshot
        with self._lock:
            if self.closed:
                raise EngineError("the house engine was closed")
            if self.engine is None or self.engine.broken:
                if self.engine is not None:
                    self.engine.close()
                self.engine = GtpEngine.start(self.command, name=self.name, startup_timeout=20)
                self.synced = []
                self._reload(width, height, komi, initial_black)
        if moves[:len(self.synced)] != self.synced:
            self._reload(width, height, komi, initial_black)
        for c, mv in moves[len(self.synced):]:
            self.engine.command("play", c, gtp_vertex(mv, height))
            self.synced.append((c, mv))
        answer = self.engine.genmove(color, timeout=self.move_timeout)
        if answer == RESIGN:
            return RESIGN
        try:
            mv = parse_gtp_vertex(answer, width, height)
        except ValueError as exc:
            raise EngineError(f"the house engine answered genmove with {answer!r}: {exc}") from None
        self.synced.append((color, mv))
        return mv

    def _reload(self, width: int, height: int, komi: float, initial_black: tuple[Point, ...]) -> None:
        eng = self.engine
        eng.command("boardsize", str(width) if width == height else f"{width} {height}")
        eng.command("clear_board")
        eng.command("komi", f"{komi:g}")
        for p in initial_black:
            eng.command("play", "black", gtp_vertex(p, height))
        self.synced = []

    def _close(self) -> None:
        with self._lock:
            self.closed = True
            engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()

    async def close(self) -> None:
        if not self.closed or self.engine is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._close)


def make_house(spec: dict[str, Any], name: str) -> House:
    """Build a house opponent from a challenge's ``challenger`` spec.  Raises ValueError with the fix."""
    kind = spec.get("house")
    if kind == "random":
        return RandomHouse(spec)
    if kind == "scripted":
        return ScriptedHouse(spec)
    if kind == "gtp":
        return GtpHouse(spec, name=name)
    raise ValueError(f"challenger.house is {kind!r}; expected one of {', '.join(KINDS)}")
