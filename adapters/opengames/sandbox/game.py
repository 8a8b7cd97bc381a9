"""One Open Games Battleship game as the sandbox referees it: two agents, the rules model, the turn clock, the
players' views (own fleet; opponent without ship positions), the spectators' view, and the dataset record.

All game logic is :mod:`bridge.games.battleship_rules`; this module adds who plays, when, and what each side
may see. Every method is called with the sandbox state's lock held (:class:`~.core.SandboxState`).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bridge.games.battleship_rules import (
    ROW_LETTERS,
    Board,
    Cell,
    Game,
    Rules,
    RulesError,
    Ship,
    ShipMove,
    cell_name,
    parse_cell,
    random_placement,
)

SCHEMA_VERSION = "1.0"
GAME_TYPE = "battleship"
MAX_REASONING = 4000  # characters kept of an action's reasoning (longer texts are cut)
MAX_MESSAGE = 1000  # characters kept of an action's chat message

Status = Literal["waiting", "in_progress", "completed", "abandoned"]


class ApiError(Exception):
    """An HTTP error answer: ``{"detail": detail, **extra}`` with ``status``."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


def iso(t: float) -> str:
    """A wall-clock time as ISO 8601 UTC with milliseconds, e.g. ``2025-01-31T12:00:00.123Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ascii_board(rules: Rules, ships: set[Cell], hits: set[Cell], misses: set[Cell]) -> str:
    """A board drawn as the seed's ``board_ascii``: the header `` 1 2 ... 10``, then ``A . . #`` per row.
    ``#`` ship, ``X`` hit, ``o`` miss, ``.`` water or unknown."""
    lines = [" " + " ".join(str(c + 1) for c in range(rules.cols))]
    for r in range(rules.rows):
        marks = []
        for c in range(rules.cols):
            cell = (r, c)
            marks.append("X" if cell in hits else "#" if cell in ships else "o" if cell in misses else ".")
        lines.append(f"{ROW_LETTERS[r]} " + " ".join(marks))
    return "\n".join(lines)


def _text(value: Any, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{what} must be a string, not {type(value).__name__}", valid=False)
    value = " ".join(value.split())
    return value[:limit] if value else None


@dataclass
class Seat:
    """One side of a game: the agent playing it and whether it has joined the session."""

    agent_id: str
    name: str
    description: str
    house: str | None = None  # "random" / "hunt-target" for a house opponent
    joined: bool = False


@dataclass
class SandboxGame:
    """A game between ``seats[1]`` (moves first) and ``seats[2]``; ships placed from ``seed``."""

    seats: dict[int, Seat]
    rules: Rules
    turn_timeout: float
    seed: int = field(default_factory=lambda: random.SystemRandom().randrange(2**31))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: float = field(default_factory=time.time)
    created_mono: float = field(default_factory=time.monotonic)
    status: Status = "waiting"
    started_at: float | None = None
    completed_at: float | None = None
    turn_started_mono: float = 0.0
    winner: int | None = None
    end_reason: str | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    turn_seconds: list[float] = field(default_factory=list)  # how long each turn's player took (control API)
    placement: dict[int, list[Ship]] | None = None  # fleets set by the control API instead of the seed's

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        fleet1 = random_placement(self.rules, rng)
        fleet2 = random_placement(self.rules, rng)
        if self.placement:
            fleet1 = self.placement.get(1, fleet1)
            fleet2 = self.placement.get(2, fleet2)
        self.game = Game.new(self.rules, fleet1, fleet2)
        self.initial: dict[int, list[Ship]] = {1: fleet1, 2: fleet2}
        self.turn_started_mono = self.created_mono

    # --- who and when ----------------------------------------------------------------------------------
    def role_of(self, agent_id: str) -> int:
        for role, seat in self.seats.items():
            if seat.agent_id == agent_id:
                return role
        raise ApiError(403, f"you are not a player in game {self.id}")

    @property
    def over(self) -> bool:
        return self.status in ("completed", "abandoned")

    @property
    def to_move(self) -> int | None:
        return self.game.to_move if self.status == "in_progress" else None

    @property
    def turn(self) -> int:
        """The number of the turn being played (from 1; player 1 plays the odd turns); when the game is over,
        the number of the last turn played."""
        return len(self.turns) if self.over else len(self.turns) + 1

    def elapsed(self, now: float) -> float:
        """Seconds since the current turn began (since the match while players are still joining)."""
        return 0.0 if self.over else max(0.0, now - self.turn_started_mono)

    def join(self, role: int, now: float) -> bool:
        """Marks ``role`` connected; returns True if this started the game."""
        self.seats[role].joined = True
        if self.status == "waiting" and all(s.joined for s in self.seats.values()):
            self.status = "in_progress"
            self.started_at = time.time()
            self.turn_started_mono = now
            return True
        return False

    def check_timeout(self, now: float) -> bool:
        """Ends the game if the player to move (or to join) let ``turn_timeout`` pass; True if it ended
        now."""
        if self.over or now - self.turn_started_mono < self.turn_timeout:
            return False
        self.force_timeout()
        return True

    def force_timeout(self) -> None:
        """The deadline passes now: the player to move forfeits; while players are joining, one who never
        joined forfeits to one who did, and a game nobody joined is abandoned."""
        if self.status == "in_progress":
            self._finish(3 - self.game.to_move, "timeout")
        elif self.status == "waiting":
            joined = [r for r, s in self.seats.items() if s.joined]
            if len(joined) == 1:
                self._finish(joined[0], "timeout")
            else:
                self.status = "abandoned"
                self.completed_at = time.time()
                self.end_reason = "abandoned"

    def _finish(self, winner: int, reason: str) -> None:
        self.status = "completed"
        self.winner = winner
        self.end_reason = reason
        self.completed_at = time.time()
        if self.started_at is None:
            self.started_at = self.created_at

    # --- actions -------------------------------------------------------------------------------------------
    def act(self, role: int, body: Any, now: float) -> dict[str, Any]:
        """Carries out one action of ``role`` (the seed's ``POST .../action`` body); returns the answer.
        Raises ApiError (and nothing changes) if it is not ``role``'s turn or the action is invalid."""
        if not isinstance(body, dict):
            raise ApiError(
                400, 'the action must be a JSON object: {"type": "shoot"|"move", "data": ...}', valid=False
            )
        if self.over:
            raise ApiError(409, f"game {self.id} is over", valid=False)
        if self.status == "waiting":
            raise ApiError(
                409,
                "the game has not started: both players must join it first "
                "(POST /api/v1/mcp/game/join?game_id=...)",
                valid=False,
            )
        if self.game.to_move != role:
            raise ApiError(
                409, f"it is not your turn (turn {self.turn} is player {self.game.to_move}'s)", valid=False
            )
        reasoning = _text(body.get("reasoning"), "reasoning", MAX_REASONING)
        message = _text(body.get("message"), "message", MAX_MESSAGE)
        kind = body.get("type")
        turn: dict[str, Any] = {"turn": self.turn, "player": role}
        answer: dict[str, Any]
        if kind == "shoot":
            data = body.get("data")
            if not isinstance(data, str):
                raise ApiError(
                    400,
                    f'a shoot action\'s "data" is a cell such as "A5" (row A-'
                    f"{ROW_LETTERS[self.rules.rows - 1]}, column 1-{self.rules.cols}), "
                    f"not {data!r}",
                    valid=False,
                )
            try:
                cell = parse_cell(data, self.rules.rows, self.rules.cols)
                result = self.game.shoot(cell)
            except (ValueError, RulesError) as exc:
                raise ApiError(400, f"invalid shot: {exc}", valid=False) from None
            res = {"hit": result.hit, "sunk": result.kind == "sunk", "sunk_ship_name": result.ship}
            turn |= {"action_type": "shoot", "coordinate": cell_name(cell), "result": res}
            answer = {
                "valid": True,
                "result": {
                    "hit": result.hit,
                    "ship_sunk": result.kind == "sunk",
                    "ship_sunk_name": result.ship,
                },
            }
        elif kind == "move":
            moves = self._parse_moves(body.get("data"))
            try:
                moved = self.game.move(moves)
            except RulesError as exc:
                raise ApiError(400, f"invalid move action (nothing was moved): {exc}", valid=False) from None
            turn |= {
                "action_type": "move",
                "moves": [
                    {"ship": m.ship, "action": m.action} | ({"direction": m.direction} if m.direction else {})
                    for m in moves
                ],
            }
            answer = {
                "valid": True,
                "result": {
                    "moved_ships": [
                        {
                            "name": s.name,
                            "positions": [list(c) for c in s.cells],
                            "orientation": s.orientation,
                        }
                        for s in moved.values()
                    ]
                },
            }
        else:
            raise ApiError(400, f'the action "type" must be "shoot" or "move", not {kind!r}', valid=False)
        if reasoning:
            turn["reasoning"] = reasoning
        if message:
            turn["message_after"] = message
            self.messages.append(
                {
                    "turn": turn["turn"],
                    "player": role,
                    "agent_name": self.seats[role].name,
                    "message": message,
                    "timestamp": iso(time.time()),
                }
            )
        self.turns.append(turn)
        self.turn_seconds.append(round(now - self.turn_started_mono, 3))
        self.turn_started_mono = now
        if self.game.winner is not None:
            self._finish(self.game.winner, "all_ships_sunk")
        return answer | {"turn": turn["turn"], "game_over": self.over, "winner": self.winner}

    def _parse_moves(self, data: Any) -> list[ShipMove]:
        if not isinstance(data, list) or not data:
            raise ApiError(
                400,
                'a move action\'s "data" is a non-empty list of ship moves, e.g. '
                '[{"ship": "Carrier", "action": "translate", "direction": "up"}, '
                '{"ship": "Destroyer", "action": "rotate"}]',
                valid=False,
            )
        moves = []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise ApiError(
                    400,
                    f"ship move {i + 1} must be an object with ship, action and (for "
                    f"translate) direction, not {item!r}",
                    valid=False,
                )
            ship, action, direction = item.get("ship"), item.get("action"), item.get("direction")
            if not isinstance(ship, str):
                raise ApiError(
                    400,
                    f'ship move {i + 1}: "ship" must be a ship name '
                    f"({', '.join(s.name for s in self.rules.fleet)})",
                    valid=False,
                )
            if action == "rotate":
                direction = None  # a direction given with rotate is ignored
            elif action == "translate":
                if direction not in ("up", "down", "left", "right"):
                    raise ApiError(
                        400,
                        f"ship move {i + 1} ({ship}): translate requires a direction "
                        f"(up, down, left or right), not {direction!r}",
                        valid=False,
                    )
            else:
                raise ApiError(
                    400,
                    f'ship move {i + 1} ({ship}): "action" must be "translate" or "rotate", not {action!r}',
                    valid=False,
                )
            try:
                moves.append(ShipMove(self.rules.spec(ship).name, action, direction))
            except (ValueError, RulesError) as exc:
                raise ApiError(400, f"ship move {i + 1}: {exc}", valid=False) from None
        return moves

    # --- views -------------------------------------------------------------------------------------------
    def _can_move(self, board: Board, name: str) -> bool:
        return self.status == "in_progress" and board.can_move(name)

    def player_view(self, role: int, now: float) -> dict[str, Any]:
        """``GET /mcp/game/G/state`` for ``role``: own ships with positions; the opponent's without."""
        me, opp = self.game.boards[role], self.game.boards[3 - role]
        ships = []
        for spec in self.rules.fleet:
            ship = me.ships[spec.name]
            ships.append(
                {
                    "name": ship.name,
                    "size": ship.length,
                    "positions": [list(c) for c in ship.cells],
                    "orientation": ship.orientation,
                    "hits": [list(c) for c in ship.cells if c in me.hits],
                    "is_sunk": me.is_sunk(ship.name),
                    "can_move": self._can_move(me, ship.name),
                }
            )
        sunk = [r.ship for _, r in opp.shots if r.kind == "sunk"]
        occupied = {c for s in me.ships.values() for c in s.cells}
        ascii_text = (
            ascii_board(self.rules, occupied, me.hits, me.misses)
            + "\n\n"
            + ascii_board(self.rules, set(), opp.hits, opp.misses)
        )
        opponent = self.seats[3 - role]
        return {
            "game_id": self.id,
            "game_type": GAME_TYPE,
            "status": self.status,
            "player_id": role,
            "opponent_name": opponent.name,
            "turn": self.turn,
            "is_my_turn": self.to_move == role and not self.over,
            "waiting_for_opponent": self.status == "waiting",
            "ship_moves_enabled": self.rules.moves_enabled,
            "own_board": {
                "ships": ships,
                "opponent_hits": [list(c) for c, r in me.shots if r.hit],
                "opponent_misses": [list(c) for c, r in me.shots if not r.hit],
            },
            "opponent_board": {
                "ships_remaining": len(self.rules.fleet) - len(sunk),
                "ships_sunk": len(sunk),
                "my_hits": [list(c) for c, r in opp.shots if r.hit],
                "my_misses": [list(c) for c, r in opp.shots if not r.hit],
                "sunk_ships": sunk,
            },
            "board_ascii": ascii_text,
            "messages": list(self.messages),
            "turn_elapsed_seconds": round(self.elapsed(now), 3),
            "turn_timeout_seconds": self.turn_timeout,
            "game_over": self.over,
            "winner": self.winner,
            "winner_name": self.seats[self.winner].name if self.winner else None,
            "end_reason": self.end_reason,
        }

    def actions_view(self, role: int) -> dict[str, Any]:
        """``GET /mcp/game/G/actions``: what ``role`` may do this turn."""
        me = self.game.boards[role]
        my_turn = self.to_move == role
        movable = []
        for name in me.ships:
            if not self._can_move(me, name):
                continue
            legal = me.legal_moves(name)
            directions = [m.direction for m in legal if m.action == "translate"]
            movable.append(
                {
                    "name": name,
                    "size": me.ships[name].length,
                    "can_translate": bool(directions),
                    "can_rotate": any(m.action == "rotate" for m in legal),
                    "directions": directions,
                }
            )
        can_move = my_turn and any(m["can_translate"] or m["can_rotate"] for m in movable)
        return {
            "game_id": self.id,
            "turn": self.turn,
            "is_my_turn": my_turn,
            "can_shoot": my_turn,
            "can_move": can_move,
            "movable_ships": movable,
            "valid_actions": (["shoot"] + (["move"] if can_move else [])) if my_turn else [],
            "game_over": self.over,
        }

    def summary(self) -> dict[str, Any]:
        """Public details (no ship positions): ``GET /games/G``, ``/games``, ``/games/live``."""
        return {
            "game_id": self.id,
            "game_type": GAME_TYPE,
            "status": self.status,
            "player1": {"agent_id": self.seats[1].agent_id, "name": self.seats[1].name},
            "player2": {"agent_id": self.seats[2].agent_id, "name": self.seats[2].name},
            "turn": self.turn,
            "total_turns": len(self.turns),
            "current_player": self.to_move,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at) if self.started_at else None,
            "completed_at": iso(self.completed_at) if self.completed_at else None,
            "game_over": self.over,
            "winner_player": self.winner,
            "winner_id": self.seats[self.winner].agent_id if self.winner else None,
            "winner_name": self.seats[self.winner].name if self.winner else None,
            "end_reason": self.end_reason,
        }

    def spectate(self, now: float) -> dict[str, Any]:
        """``GET /games/G/spectate``: shots, sunk ships, reasoning and chat; no ship positions, and a move
        turn shows only how many ships moved."""
        boards = {}
        for role in (1, 2):
            board = self.game.boards[role]
            sunk = [r.ship for _, r in board.shots if r.kind == "sunk"]
            boards[f"player{role}"] = {
                "name": self.seats[role].name,
                "ships_remaining": len(self.rules.fleet) - len(sunk),
                "sunk_ships": sunk,
                "hits": [list(c) for c, r in board.shots if r.hit],
                "misses": [list(c) for c, r in board.shots if not r.hit],
                "board_ascii": ascii_board(self.rules, set(), board.hits, board.misses),
            }
        turns = []
        for t in self.turns:
            public = {k: v for k, v in t.items() if k != "moves"}
            if "moves" in t:
                public["ships_moved"] = len(t["moves"])
            turns.append(public)
        return self.summary() | {
            "boards": boards,  # "playerN": the shots fired AT player N's fleet
            "turns": turns,
            "messages": list(self.messages),
            "turn_elapsed_seconds": round(self.elapsed(now), 3),
            "turn_timeout_seconds": self.turn_timeout,
        }

    def truth(self, now: float) -> dict[str, Any]:
        """The control API's view: everything, true ship positions included."""
        fleets = {}
        for role in (1, 2):
            board = self.game.boards[role]
            fleets[f"player{role}"] = {
                "ships": [
                    {
                        "name": s.name,
                        "positions": [list(c) for c in s.cells],
                        "cells": [cell_name(c) for c in s.cells],
                        "orientation": s.orientation,
                        "is_sunk": board.is_sunk(s.name),
                    }
                    for s in board.ships.values()
                ],
                "board_ascii": ascii_board(
                    self.rules, {c for s in board.ships.values() for c in s.cells}, board.hits, board.misses
                ),
            }
        return self.summary() | {
            "seed": self.seed,
            "seats": {
                f"player{r}": {"agent_id": s.agent_id, "name": s.name, "house": s.house, "joined": s.joined}
                for r, s in self.seats.items()
            },
            "fleets": fleets,
            "initial_placement": self._placement(),
            "turns": list(self.turns),
            "turn_seconds": list(self.turn_seconds),
            "messages": list(self.messages),
            "turn_elapsed_seconds": round(self.elapsed(now), 3),
            "turn_timeout_seconds": self.turn_timeout,
        }

    def _placement(self) -> dict[str, dict[str, list[str]]]:
        return {
            f"player{role}": {s.name: [cell_name(c) for c in s.cells] for s in ships}
            for role, ships in self.initial.items()
        }

    def record(self) -> dict[str, Any]:
        """The dataset record (schema_version 1.0) of a completed game."""
        assert self.status == "completed" and self.winner is not None and self.completed_at is not None
        started = self.started_at if self.started_at is not None else self.created_at
        return {
            "schema_version": SCHEMA_VERSION,
            "game_id": self.id,
            "game_type": GAME_TYPE,
            "started_at": iso(started),
            "completed_at": iso(self.completed_at),
            "duration_seconds": round(self.completed_at - started, 3),
            "total_turns": len(self.turns),
            "seed": self.seed,
            "agents": {
                f"player{r}": {"name": s.name, "description": s.description, "agent_id": s.agent_id}
                for r, s in self.seats.items()
            },
            "result": {
                "winner_player": self.winner,
                "winner_name": self.seats[self.winner].name,
                "reason": self.end_reason,
            },
            "initial_placement": self._placement(),
            "turns": [dict(t) for t in self.turns],
            "messages": [dict(m) for m in self.messages],
        }
