"""The sandbox's state: users, invitations and games, each game refereed by reconchess's own ``LocalGame``
(the official rules and clocks). Transport-free: the HTTP layer (``server.py``) and the house players
(``house.py``) call the same methods, under one lock per game.

A turn is three steps for the side to move, in order: sense, move, end_turn (``SandboxGame.phase``). The
clocks start when both players are ready (or ``ready_timeout`` seconds after the invitation was accepted, so
that a player who never shows up loses on time). A game ends as soon as ``LocalGame.is_over()`` says so:
checked on every call and by a ticker thread, so a flag falls even while nobody asks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import chess
from reconchess import GameHistory, LocalGame, Player, WinReason

log = logging.getLogger("bridge.reconchess.sandbox")

DEFAULT_SECONDS = 900.0  # the tournament clock: 15 minutes a player...
DEFAULT_INCREMENT = 5.0  # ...plus 5 seconds a turn
ACTIVE_WINDOW = 60.0  # a user seen within this many seconds counts as active (GET /api/users/)


class SandboxError(Exception):
    """A refused request: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _id_base() -> int:
    """Ids keep growing across sandbox runs (records named by game id never collide)."""
    return max(1, int(time.time()) - 1_700_000_000)


@dataclass
class User:
    id: int
    username: str
    password: str | None  # None: a house player (cannot log in)
    house: str | None = None  # the house bot's name
    max_games: int = 4
    ranked: bool = False
    version: int = 0
    last_seen: float = 0.0

    def public(self, *keys: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "username": self.username}
        for key in keys:
            out[key] = getattr(self, key)
        return out


@dataclass
class Clock:
    seconds_per_player: float | None = DEFAULT_SECONDS
    seconds_increment: float = DEFAULT_INCREMENT
    reversible_moves_limit: int | None = 100
    full_turn_limit: int | None = None


@dataclass
class Invitation:
    id: int
    inviter: str
    invitee: str
    game_id: int
    created: float = field(default_factory=time.time)
    accepted: bool = False
    finished_by: set[str] = field(default_factory=set)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "inviter": self.inviter,
            "invitee": self.invitee,
            "game_id": self.game_id,
            "accepted": self.accepted,
            "finished_by": sorted(self.finished_by),
        }


def _name(color: bool) -> str:
    return "white" if color else "black"


class SandboxGame:
    """One game between two usernames, refereed by ``LocalGame``. Every method takes the game's lock."""

    def __init__(self, game_id: int, white: str, black: str, clock: Clock, ready_timeout: float) -> None:
        self.id = game_id
        self.names = {chess.WHITE: white, chess.BLACK: black}
        self.clock = clock
        self.ready_timeout = ready_timeout
        self.local = LocalGame(
            seconds_per_player=clock.seconds_per_player,
            seconds_increment=clock.seconds_increment,
            reversible_moves_limit=clock.reversible_moves_limit,
            full_turn_limit=clock.full_turn_limit,
        )
        self.local.store_players(white, black)
        self.starting_fen = self.local.board.fen()
        self.cond = threading.Condition(threading.RLock())
        self.ready = {chess.WHITE: False, chess.BLACK: False}
        self.bound_at: float | None = None  # when both players were known (invitation accepted)
        self.started = False
        self.finished = False
        self.phase = "sense"  # of the side to move: sense -> move -> end
        self.capture_for: dict[bool, int | None] = {chess.WHITE: None, chess.BLACK: None}
        self.turns: list[dict[str, Any]] = []
        self.created = time.time()
        self.ended_at: float | None = None
        self.on_end: list[Callable[[SandboxGame], None]] = []

    # --- who is who ------------------------------------------------------------------------------------
    def color_of(self, username: str) -> bool:
        for color, name in self.names.items():
            if name == username:
                return color
        raise SandboxError(401, f"{username} is not a player of game {self.id}")

    def bind(self) -> None:
        with self.cond:
            if self.bound_at is None:
                self.bound_at = time.monotonic()
                self.cond.notify_all()

    # --- state upkeep -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Start the clocks after the ready timeout; end the game when LocalGame says it is over."""
        with self.cond:
            if self.finished:
                return
            if (
                not self.started
                and self.bound_at is not None
                and time.monotonic() - self.bound_at > self.ready_timeout
            ):
                log.info(
                    "game %d: starting without %s after %.0f s (ready timeout)",
                    self.id,
                    " and ".join(self.names[c] for c in self.ready if not self.ready[c]),
                    self.ready_timeout,
                )
                self._start()
            if self.local.is_over():
                self._finish()

    def _start(self) -> None:
        self.started = True
        self.local.start()
        self.cond.notify_all()

    def _finish(self) -> None:
        if self.finished:
            return
        self.local.end()
        self.finished = True
        self.ended_at = time.time()
        log.info(
            "game %d over: %s (%s)",
            self.id,
            "draw"
            if self.local.get_winner_color() is None
            else f"{_name(self.local.get_winner_color())} wins",
            self.local.get_win_reason(),
        )
        self.cond.notify_all()
        for callback in self.on_end:
            try:
                callback(self)
            except Exception:  # a listener's bug must not break the game
                log.exception("game %d: end listener failed", self.id)

    def _require(self, color: bool, phase: str, action: str) -> None:
        self.refresh()
        if self.finished:
            raise SandboxError(400, f"cannot {action}: game {self.id} is over")
        if not self.started:
            raise SandboxError(
                400, f"cannot {action}: game {self.id} has not started (waiting for both players to be ready)"
            )
        if self.local.turn != color:
            raise SandboxError(400, f"cannot {action}: it is not your turn in game {self.id}")
        if self.phase != phase:
            reasons = {
                ("sense", "move"): "you already sensed this turn",
                ("sense", "end"): "you already sensed and moved this turn",
                ("move", "sense"): "you have not sensed yet this turn",
                ("move", "end"): "you already moved this turn",
                ("end", "sense"): "you have not sensed and moved yet",
                ("end", "move"): "you have not moved yet",
            }
            raise SandboxError(400, f"cannot {action}: {reasons.get((phase, self.phase), 'out of order')}")

    # --- the seed's game endpoints ----------------------------------------------------------------------
    def mark_ready(self, color: bool) -> None:
        with self.cond:
            self.ready[color] = True
            if not self.started and not self.finished and all(self.ready.values()):
                self._start()

    def status(self, color: bool) -> tuple[bool, bool]:
        """(is_my_turn, is_over)."""
        with self.cond:
            self.refresh()
            return self.started and not self.finished and self.local.turn == color, self.finished

    def sense_actions(self, color: bool) -> list[int]:
        with self.cond:
            self.refresh()
            if self.finished or not self.started or self.local.turn != color:
                raise SandboxError(400, f"cannot list sense actions: not your turn in game {self.id}")
            return list(chess.SQUARES)

    def move_actions(self, color: bool) -> list[chess.Move]:
        with self.cond:
            self.refresh()
            if self.finished or not self.started or self.local.turn != color or self.phase == "end":
                raise SandboxError(400, f"cannot list move actions: not your turn in game {self.id}")
            return list(self.local.move_actions())

    def seconds_left(self, color: bool) -> float:
        with self.cond:
            self.refresh()
            if self.started and not self.finished and self.local.turn == color:
                return float(self.local.get_seconds_left())
            return float(self.local.seconds_left_by_color[color])

    def opponent_move_results(self, color: bool) -> int | None:
        with self.cond:
            return self.capture_for[color]

    def sense(self, color: bool, square: int | None) -> list[tuple[int, chess.Piece | None]]:
        if square is not None and (
            isinstance(square, bool) or not isinstance(square, int) or not 0 <= square <= 63
        ):
            raise SandboxError(400, f"malformed request: square must be 0-63 or null, not {square!r}")
        with self.cond:
            self._require(color, "sense", "sense")
            result = self.local.sense(square)
            self.phase = "move"
            self.turns.append(
                {
                    "color": _name(color),
                    "sense": square,
                    "requested": None,
                    "taken": None,
                    "capture_square": None,
                }
            )
            self.cond.notify_all()
            return list(result)

    def move(
        self, color: bool, requested: chess.Move | None
    ) -> tuple[chess.Move | None, chess.Move | None, int | None]:
        if requested is not None and not isinstance(requested, chess.Move):
            raise SandboxError(
                400, 'malformed request: requested_move must be {"type": "Move", "value": UCI} or null'
            )
        with self.cond:
            self._require(color, "move", "move")
            try:
                req, taken, capture = self.local.move(requested)
            except ValueError:
                raise SandboxError(
                    400,
                    f"cannot move: {requested.uci() if requested else None} is not one of your move actions",
                ) from None
            self.phase = "end"
            self.capture_for[not color] = capture
            self.turns[-1].update(
                requested=req.uci() if req else None,
                taken=taken.uci() if taken else None,
                capture_square=capture,
            )
            self.refresh()
            self.cond.notify_all()
            return req, taken, capture

    def end_turn(self, color: bool) -> None:
        with self.cond:
            self.refresh()
            if self.finished and self.local.turn == color and self.phase == "end":
                return  # e.g. the move captured the king: ending that turn is still fine
            self._require(color, "end", "end the turn")
            self.local.end_turn()
            self.phase = "sense"
            self.refresh()
            self.cond.notify_all()

    def resign(self, color: bool) -> None:
        with self.cond:
            self.refresh()
            if self.finished:
                raise SandboxError(400, f"cannot resign: game {self.id} is over")
            if not self.started or self.local.turn != color:
                raise SandboxError(400, "cannot resign: you can only resign during your turn")
            self.local.resign()
            self._finish()

    def error_resign(self, color: bool) -> None:
        """Zero the player's clock (the seed: "instead of waiting for the time to run out")."""
        with self.cond:
            self.refresh()
            if self.finished:
                return
            self.local.seconds_left_by_color[color] = 0
            self.refresh()
            if not self.finished:  # e.g. not started yet and it is the other side's clock that is asked
                self._finish()

    def winner_color(self) -> bool | None:
        with self.cond:
            self.refresh()
            return self.local.get_winner_color() if self.finished else None

    def win_reason(self) -> WinReason | None:
        with self.cond:
            self.refresh()
            return self.local.get_win_reason() if self.finished else None

    def game_history(self) -> GameHistory | None:
        with self.cond:
            self.refresh()
            return self.local.get_game_history() if self.finished else None

    # --- for the house players and the control API --------------------------------------------------------
    def wait_for_turn(self, color: bool, stop: threading.Event, poll: float = 0.2) -> bool:
        """Block until it is ``color``'s turn to sense (True), or the game is over or ``stop`` set (False)."""
        with self.cond:
            while not stop.is_set():
                self.refresh()
                if self.finished:
                    return False
                if self.started and self.local.turn == color and self.phase == "sense":
                    return True
                self.cond.wait(poll)
            return False

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            self.refresh()
            winner = self.local.get_winner_color() if self.finished else None
            reason = self.local.get_win_reason() if self.finished else None
            left = {_name(c): round(self.seconds_left(c), 3) for c in (chess.WHITE, chess.BLACK)}
            return {
                "id": self.id,
                "white": self.names[chess.WHITE],
                "black": self.names[chess.BLACK],
                "starting_fen": self.starting_fen,
                "fen": self.local.board.fen(en_passant="fen"),
                "turn": _name(self.local.turn),
                "phase": self.phase,
                "ready": {_name(c): r for c, r in self.ready.items()},
                "started": self.started,
                "over": self.finished,
                "winner_color": winner,
                "winner": None if winner is None else self.names[winner],
                "win_reason": reason.name if reason is not None else None,
                "seconds_left": left,
                "clock": {
                    "seconds_per_player": self.clock.seconds_per_player,
                    "seconds_increment": self.clock.seconds_increment,
                    "reversible_moves_limit": self.clock.reversible_moves_limit,
                    "full_turn_limit": self.clock.full_turn_limit,
                },
                "moves": [dict(t) for t in self.turns],
            }


HouseFactory = Callable[[], Player]


class SandboxState:
    """Users, invitations and games. Thread-safe (one lock for the tables, one per game)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        ready_timeout: float = 60.0,
        house: dict[str, HouseFactory] | None = None,
        start_house: Callable[[SandboxGame, bool, HouseFactory], None] | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.ready_timeout = ready_timeout
        self._lock = threading.Lock()
        base = _id_base()
        self._next_user = 1
        self._next_invitation = base
        self._next_game = base
        self.users: dict[str, User] = {}
        self.invitations: dict[int, Invitation] = {}
        self.games: dict[int, SandboxGame] = {}
        self.house = dict(house or {})
        self._start_house = start_house
        for name in self.house:
            self._new_user(name, None, house=name)

    # --- users -------------------------------------------------------------------------------------------
    def _new_user(self, username: str, password: str | None, house: str | None = None) -> User:
        user = User(self._next_user, username, password, house=house)
        self._next_user += 1
        self.users[username] = user
        return user

    def add_user(self, username: str, password: str) -> User:
        if (
            not isinstance(username, str)
            or not username.strip()
            or not isinstance(password, str)
            or not password
        ):
            raise SandboxError(400, "malformed request: give a non-empty username and password")
        with self._lock:
            if username in self.users:
                raise SandboxError(409, f"username {username!r} is already in use")
            return self._new_user(username, password)

    def authenticate(self, username: str, password: str) -> User:
        with self._lock:
            user = self.users.get(username)
            if user is None or user.password is None or user.password != password:
                raise SandboxError(401, "invalid username or password")
            user.last_seen = time.time()
            return user

    def active_usernames(self) -> list[str]:
        now = time.time()
        with self._lock:
            return [u.username for u in self.users.values() if u.house or now - u.last_seen <= ACTIVE_WINDOW]

    # --- invitations ---------------------------------------------------------------------------------------
    def invite(
        self, inviter: str, invitee: str, inviter_color: bool, clock: Clock | None = None
    ) -> Invitation:
        """Create an invitation and its game. A house invitee accepts at once; a house player (either side)
        plays server-side in a thread of its own."""
        if not isinstance(inviter_color, bool):
            raise SandboxError(400, "malformed request: color must be true (white) or false (black)")
        with self._lock:
            if invitee not in self.users:
                raise SandboxError(404, f"no user named {invitee!r}")
            if invitee == inviter:
                raise SandboxError(400, "you cannot invite yourself")
            white, black = (inviter, invitee) if inviter_color else (invitee, inviter)
            game = SandboxGame(self._next_game, white, black, clock or self.clock, self.ready_timeout)
            self._next_game += 1
            invitation = Invitation(self._next_invitation, inviter, invitee, game.id)
            self._next_invitation += 1
            self.games[game.id] = game
            self.invitations[invitation.id] = invitation
            houses = [
                (color, self.users[name].house)
                for color, name in game.names.items()
                if self.users[name].house
            ]
            if self.users[invitee].house:
                invitation.accepted = True
        if invitation.accepted:
            game.bind()
        for color, house in houses:
            assert house is not None
            if self._start_house is not None:
                self._start_house(game, color, self.house[house])
        log.info(
            "invitation %d: %s invites %s (%s to play white); game %d",
            invitation.id,
            inviter,
            invitee,
            white,
            game.id,
        )
        return invitation

    def pending_invitations(self, username: str) -> list[int]:
        with self._lock:
            return [i.id for i in self.invitations.values() if i.invitee == username and not i.accepted]

    def _invitation(self, invitation_id: int) -> Invitation:
        invitation = self.invitations.get(invitation_id)
        if invitation is None:
            raise SandboxError(404, f"no invitation {invitation_id}")
        return invitation

    def accept(self, username: str, invitation_id: int) -> int:
        with self._lock:
            invitation = self._invitation(invitation_id)
            if invitation.invitee != username:
                raise SandboxError(401, f"invitation {invitation_id} is not addressed to {username}")
            if invitation.accepted:  # as the server does: an accepted invitation is no longer open
                raise SandboxError(400, f"invitation {invitation_id} was already accepted")
            invitation.accepted = True
            game = self.games[invitation.game_id]
        game.bind()
        return invitation.game_id

    def finish(self, username: str, invitation_id: int) -> None:
        with self._lock:
            invitation = self._invitation(invitation_id)
            if username not in (invitation.invitee, invitation.inviter):
                raise SandboxError(401, f"invitation {invitation_id} is not yours")
            invitation.finished_by.add(username)

    # --- games ---------------------------------------------------------------------------------------------
    def game(self, game_id: int) -> SandboxGame:
        with self._lock:
            game = self.games.get(game_id)
        if game is None:
            raise SandboxError(404, f"no game {game_id}")
        return game

    def tick(self) -> None:
        with self._lock:
            live = [g for g in self.games.values() if not g.finished]
        for game in live:
            game.refresh()
