"""House opponents: the agents ``random`` and ``hunt-target``, each playing one game server-side in a thread.

A house player sees only what any agent sees (its ``state`` and ``actions`` views, and the answers to its own
actions) and plays through the same :class:`~.core.SandboxState` methods as the HTTP endpoints, after a small
delay each turn.

- ``random`` shoots a random cell it has not shot yet; with ship moves on it moves a random ship 3 % of the
  time.
- ``hunt-target`` hunts on one checkerboard colour, then targets around its open hits (along the line once two
  hits line up); with ship moves on it moves an unhit ship away from the opponent's hits when one touches it
  (half the time), and otherwise moves a random ship 3 % of the time.

Both take a missed cell for water until they have shot every cell, then re-shoot the misses they fired longest
ago (a moved ship may hide there).
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from bridge.adapters.opengames.sandbox.core import SandboxState
from bridge.adapters.opengames.sandbox.game import ApiError, SandboxGame
from bridge.games.battleship_rules import Cell, cell_name

log = logging.getLogger("bridge.opengames.sandbox")

DIRS = ((-1, 0), (1, 0), (0, -1), (0, 1))


class Strategy:
    """Chooses actions from an agent's views; ``learn`` is told the answer to each of its own actions."""

    def __init__(self, rng: random.Random, moves: bool, rows: int = 10, cols: int = 10) -> None:
        self.rng = rng
        self.moves = moves
        self.rows = rows
        self.cols = cols
        self.turns = 0

    def choose(self, view: dict[str, Any], actions: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def learn(self, action: dict[str, Any], answer: dict[str, Any]) -> None:
        self.turns += 1

    def _shot_cells(self, view: dict[str, Any]) -> tuple[set[Cell], set[Cell]]:
        opp = view["opponent_board"]
        hits = {(r, c) for r, c in opp["my_hits"]}
        misses = {(r, c) for r, c in opp["my_misses"]} - hits
        return hits, misses

    def _unshot(self, view: dict[str, Any]) -> list[Cell]:
        """The cells never shot; once there are none, the missed cells shot longest ago (a ship may have
        moved onto them since)."""
        hits, misses = self._shot_cells(view)
        fresh = [(r, c) for r in range(self.rows) for c in range(self.cols) if (r, c) not in hits | misses]
        if fresh:
            return fresh
        last_shot = {(r, c): i for i, (r, c) in enumerate(view["opponent_board"]["my_misses"])}
        stale = sorted(misses, key=lambda cell: last_shot[cell])
        return stale[: max(1, len(stale) // 4)]

    def _random_move(
        self, actions: dict[str, Any], ship: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        ships = [s for s in actions.get("movable_ships", []) if s["can_translate"] or s["can_rotate"]]
        if ship is None:
            if not ships or not actions.get("can_move"):
                return None
            ship = self.rng.choice(ships)
        options: list[dict[str, Any]] = [
            {"ship": ship["name"], "action": "translate", "direction": d} for d in ship["directions"]
        ]
        if ship["can_rotate"]:
            options.append({"ship": ship["name"], "action": "rotate"})
        return self.rng.choice(options) if options else None


class RandomStrategy(Strategy):
    def choose(self, view: dict[str, Any], actions: dict[str, Any]) -> dict[str, Any]:
        message = "Have fun!" if self.turns == 0 else None
        if self.moves and self.rng.random() < 0.03:
            move = self._random_move(actions)
            if move is not None:
                return {
                    "type": "move",
                    "data": [move],
                    "reasoning": "Random: moving a ship for a change.",
                    "message": message,
                }
        cell = self.rng.choice(self._unshot(view))
        return {
            "type": "shoot",
            "data": cell_name(cell),
            "reasoning": f"Random: {cell_name(cell)}, a cell I have not shot (lately).",
            "message": message,
        }


class HuntTargetStrategy(Strategy):
    def __init__(self, rng: random.Random, moves: bool, rows: int = 10, cols: int = 10) -> None:
        super().__init__(rng, moves, rows, cols)
        self.open_hits: set[Cell] = set()  # hits not yet known to belong to a sunk ship
        self.sizes = {"Carrier": 5, "Battleship": 4, "Cruiser": 3, "Submarine": 3, "Destroyer": 2}

    def choose(self, view: dict[str, Any], actions: dict[str, Any]) -> dict[str, Any]:
        message = "Good luck!" if self.turns == 0 else None
        if self.moves and actions.get("can_move"):
            move = self._evasion(view, actions)
            if move is not None:
                return move | {"message": message}
        hits, misses = self._shot_cells(view)
        shot = hits | misses
        targets = self._targets(shot)
        if targets:
            cell = self.rng.choice(targets)
            reasoning = (
                f"Target mode: {len(self.open_hits)} open hit(s) on ships not yet sunk; "
                f"{cell_name(cell)} continues them."
            )
        else:
            fresh = self._unshot(view)
            if fresh[0] in shot:
                cell = self.rng.choice(fresh)
                reasoning = (
                    f"Hunt mode: I have shot every cell; {cell_name(cell)} was missed long ago and a "
                    f"ship may have moved there since."
                )
            else:
                parity = [c for c in fresh if (c[0] + c[1]) % 2 == 0]
                cell = self.rng.choice(parity or fresh)
                reasoning = f"Hunt mode: {cell_name(cell)} is an unexplored cell of my search pattern."
        return {"type": "shoot", "data": cell_name(cell), "reasoning": reasoning, "message": message}

    def _on_board(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.rows and 0 <= cell[1] < self.cols

    def _targets(self, shot: set[Cell]) -> list[Cell]:
        if not self.open_hits:
            return []
        lined: list[Cell] = []
        for r, c in self.open_hits:
            for dr, dc in ((0, 1), (1, 0)):
                if (r + dr, c + dc) in self.open_hits:  # two hits in a line: extend the line both ways
                    for sign in (1, -1):
                        cell = (r, c)
                        while cell in self.open_hits:
                            cell = (cell[0] + sign * dr, cell[1] + sign * dc)
                        if self._on_board(cell) and cell not in shot:
                            lined.append(cell)
        if lined:
            return sorted(set(lined))
        around = {(r + dr, c + dc) for r, c in self.open_hits for dr, dc in DIRS}
        return sorted(c for c in around if self._on_board(c) and c not in shot)

    def learn(self, action: dict[str, Any], answer: dict[str, Any]) -> None:
        super().learn(action, answer)
        if action.get("type") != "shoot":
            return
        result = answer.get("result", {})
        if not result.get("hit"):
            return
        r = ord(action["data"][0].upper()) - ord("A")
        c = int(action["data"][1:]) - 1
        self.open_hits.add((r, c))
        if result.get("ship_sunk"):
            self._close((r, c), self.sizes.get(result.get("ship_sunk_name") or "", 1))

    def _close(self, cell: Cell, size: int) -> None:
        """The ship of ``size`` sunk at ``cell``: forget the line of open hits it most likely was."""
        for dr, dc in ((0, 1), (1, 0)):
            for start in range(size):
                run = [(cell[0] + (i - start) * dr, cell[1] + (i - start) * dc) for i in range(size)]
                if all(x in self.open_hits for x in run):
                    self.open_hits.difference_update(run)
                    return
        self.open_hits.discard(cell)

    def _evasion(self, view: dict[str, Any], actions: dict[str, Any]) -> dict[str, Any] | None:
        threats = {(r, c) for r, c in view["own_board"]["opponent_hits"]}
        movable = {
            s["name"]: s for s in actions.get("movable_ships", []) if s["can_translate"] or s["can_rotate"]
        }
        for ship in view["own_board"]["ships"]:
            if ship["name"] not in movable:
                continue
            cells = {(r, c) for r, c in ship["positions"]}
            near = any((r + dr, c + dc) in threats for r, c in cells for dr, dc in DIRS)
            if near and self.rng.random() < 0.5:
                move = self._away(ship, movable[ship["name"]], threats)
                if move is not None:
                    return {
                        "type": "move",
                        "data": [move],
                        "reasoning": f"Evading: my {ship['name']} is next to your hits; I move it away.",
                    }
        if self.rng.random() < 0.03:
            move = self._random_move(actions)
            if move is not None:
                return {
                    "type": "move",
                    "data": [move],
                    "reasoning": "Repositioning a ship to stay unpredictable.",
                }
        return None

    def _away(
        self, ship: dict[str, Any], options: dict[str, Any], threats: set[Cell]
    ) -> dict[str, Any] | None:
        deltas = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
        cells = [(r, c) for r, c in ship["positions"]]

        def distance(moved: list[Cell]) -> int:
            return min(abs(r - tr) + abs(c - tc) for r, c in moved for tr, tc in threats)

        best: tuple[int, dict[str, Any]] | None = None
        for d in options["directions"]:
            dr, dc = deltas[d]
            score = distance([(r + dr, c + dc) for r, c in cells])
            if best is None or score > best[0]:
                best = (score, {"ship": ship["name"], "action": "translate", "direction": d})
        return best[1] if best is not None and best[0] > distance(cells) else None


STRATEGIES: dict[str, type[Strategy]] = {"random": RandomStrategy, "hunt-target": HuntTargetStrategy}


class HousePlayer(threading.Thread):
    """Plays ``role`` of ``game`` for house agent ``kind`` until the game ends or ``stop`` is set."""

    def __init__(
        self,
        state: SandboxState,
        game: SandboxGame,
        role: int,
        kind: str,
        moves: bool,
        delay: float,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"og-house-{kind}-{game.id[:8]}", daemon=True)
        self.state = state
        self.game = game
        self.role = role
        self.delay = delay
        self.stop_event = stop
        rules = state.rules
        self.strategy = STRATEGIES[kind](
            random.Random(game.seed * 2 + role), moves and rules.moves_enabled, rules.rows, rules.cols
        )
        self.error: str | None = None

    def _ready(self) -> bool:
        return self.stop_event.is_set() or self.game.over or self.game.to_move == self.role

    def run(self) -> None:
        game, state = self.game, self.state
        try:
            agent = state.agent(game.seats[self.role].agent_id)
            state.join_game(agent, game.id)
            while not self.stop_event.is_set():
                if not state.wait(self._ready, 0.5):
                    continue
                if game.over or self.stop_event.is_set() or self.stop_event.wait(self.delay):
                    break
                view = state.state(agent, game.id)
                if not view["is_my_turn"]:
                    continue
                action = self.strategy.choose(view, state.actions(agent, game.id))
                try:
                    answer = state.act(agent, game.id, action)
                except ApiError as exc:
                    if exc.status == 409:  # the game ended or the turn passed meanwhile: look again
                        continue
                    log.warning(
                        "game %s: house %s's action %s was refused (%s); shooting instead",
                        game.id,
                        agent.name,
                        action,
                        exc.detail,
                    )
                    action = {
                        "type": "shoot",
                        "data": cell_name(self.strategy.rng.choice(self.strategy._unshot(view))),
                        "reasoning": "Falling back to a random shot.",
                    }
                    answer = state.act(agent, game.id, action)
                self.strategy.learn(action, answer)
        except Exception as exc:  # a house player must never take the sandbox down; its turn clock runs out
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("game %s: house player %d failed", game.id, self.role)
