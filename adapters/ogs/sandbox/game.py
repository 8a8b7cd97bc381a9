"""One game on the sandbox: the state machine an OGS game goes through, refereed by :mod:`bridge.games.gorules`.

No I/O and no clock of its own: every operation takes ``now`` (ms since the epoch) and reports what the server
must broadcast through the ``emit(event_name, data)`` callback given at construction, in OGS's order.  Refusals
raise :class:`GameError`, whose text the server sends as ``game/ID/error``.

Phases: ``play`` -> (two passes in a row) ``stone removal`` -> (both players accept the same removal, or the
auto-score timeout) ``finished``; ``finished`` also by resignation, timeout or cancellation.  A rejected removal
returns to ``play``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.adapters.ogs.analysis import read_analysis_body
from bridge.adapters.ogs.codec import decode_move_array, decode_point, encode_point, encode_points
from bridge.adapters.ogs.sandbox.clock import PlayerClock, average_move_time
from bridge.games.gorules import GoBoard, IllegalMove, ruleset
from bridge.games.gotypes import Color, Move, Point, other

Emit = Callable[[str, Any], None]
PAUSES_PER_PLAYER = 4
COLORS: tuple[Color, Color] = ("black", "white")


class GameError(Exception):
    """A refused game command; the message is what OGS-style clients get in ``game/ID/error``."""


@dataclass(frozen=True)
class Player:
    id: int
    username: str
    ranking: float = 15.0
    professional: bool = False

    def entry(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "rank": self.ranking, "ranking": self.ranking,
                "professional": self.professional}


@dataclass
class GameSettings:
    width: int = 19
    height: int = 19
    rules: str = "chinese"
    ranked: bool = False
    handicap: int = 0
    komi: float = 7.5
    free_handicap: bool = False
    initial_black: tuple[Point, ...] = ()
    time_control: dict[str, Any] = field(default_factory=lambda: {"system": "none", "time_control": "none",
                                                                  "speed": "correspondence",
                                                                  "pause_on_weekends": False})
    name: str = "Friendly Match"
    disable_analysis: bool = False
    stone_removal_timeout: float | None = 10.0  # seconds until the server scores with the current removal


@dataclass
class UndoRecord:
    move_number: int
    requested_by: int
    state: str = "pending"  # pending | accepted | declined | canceled


def now_ms() -> int:
    return int(time.time() * 1000)


class SandboxGame:
    def __init__(self, game_id: int, settings: GameSettings, black: Player, white: Player, start: int,
                 emit: Emit) -> None:
        self.id = game_id
        self.s = settings
        self.players: dict[Color, Player] = {"black": black, "white": white}
        self.emit = emit
        self.rules = ruleset(settings.rules)
        self.start_time = start
        self.moves: list[tuple[Color, Move, int]] = []  # colour, move, ms taken
        self.board = self._fresh_board()
        self.phase = "play"
        self.passes_in_row = 0
        self.clocks: dict[Color, PlayerClock] = {c: PlayerClock.initial(settings.time_control)
                                                  for c in COLORS}
        self.last_move = start  # ms: when the current turn began (shifted forward by pauses)
        self.pause_control: dict[str, Any] = {}
        self.paused_since: int | None = None
        self.pauses_left: dict[int, int] = {black.id: PAUSES_PER_PLAYER, white.id: PAUSES_PER_PLAYER}
        self.removal: set[Point] = set()
        self.accepted: dict[Color, str] = {}
        self.removal_expiration: int | None = None
        self.undos: list[UndoRecord] = []
        self.chat: list[dict[str, Any]] = []
        self.errors: list[str] = []  # refused commands, for the control API
        self.outcome = ""
        self.winner: Color | None = None
        self.score: dict[str, Any] | None = None
        self.end_time: int | None = None

    # --- derived state ---------------------------------------------------------------------------------
    def _fresh_board(self) -> GoBoard:
        return GoBoard(self.s.width, self.s.height, ko=self.rules.ko, allow_suicide=self.rules.allow_suicide,
                       black=self.s.initial_black)

    @property
    def initial_player(self) -> Color:
        return "white" if self.s.initial_black else "black"

    def color_for(self, index: int) -> Color:
        """Whose move the ``index``-th entry of ``moves`` is (0-based)."""
        n = self.s.handicap
        if self.s.free_handicap and n > 1:
            if index < n:
                return "black"
            return "white" if (index - n) % 2 == 0 else "black"
        first = self.initial_player
        return first if index % 2 == 0 else other(first)

    @property
    def to_move(self) -> Color:
        return self.color_for(len(self.moves))

    @property
    def placing_handicap(self) -> bool:
        return self.s.free_handicap and self.s.handicap > 1 and len(self.moves) < self.s.handicap

    def color_of(self, player_id: int) -> Color | None:
        for c, p in self.players.items():
            if p.id == player_id:
                return c
        return None

    def _require_player(self, player_id: int) -> Color:
        color = self.color_of(player_id)
        if color is None:
            raise GameError(f"you are not a player in game {self.id}")
        return color

    @property
    def paused(self) -> bool:
        return bool(self.pause_control) and self.phase == "play"

    @property
    def finished(self) -> bool:
        return self.phase == "finished"

    def used_ms(self, now: int) -> int:
        """How long the player to move has been thinking in this turn (excluding pauses)."""
        ref = self.paused_since if self.paused and self.paused_since is not None else now
        return max(0, ref - self.last_move)

    def timeout_at(self) -> int | None:
        """When the player to move loses on time (ms), or None (no limit, paused, not in play)."""
        if self.phase != "play" or self.paused:
            return None
        budget = self.clocks[self.to_move].budget()
        if budget is None:
            return None
        return self.last_move + int(budget * 1000)

    def next_deadline(self) -> int | None:
        """The next instant at which :meth:`tick` has something to do."""
        if self.phase == "stone removal":
            return self.removal_expiration
        return self.timeout_at()

    # --- wire forms ----------------------------------------------------------------------------------------
    def move_array(self, index: int) -> list[int]:
        _, mv, ms = self.moves[index]
        if mv is None:
            return [-1, -1, ms]
        return [mv[0], mv[1], ms]

    def clock_json(self, now: int) -> dict[str, Any]:
        b, w = self.players["black"], self.players["white"]
        expiration = self.timeout_at()
        clock: dict[str, Any] = {
            "game_id": self.id, "title": self.s.name,
            "current_player": self.players[self.to_move].id,
            "black_player_id": b.id, "white_player_id": w.id,
            "last_move": self.last_move,
            "expiration": expiration if expiration is not None else 0,
            "now": now,
        }
        if self.s.time_control["system"] != "none":
            clock["black_time"] = self.clocks["black"].wire()
            clock["white_time"] = self.clocks["white"].wire()
        if self.pause_control:
            clock["paused_since"] = self.paused_since
            clock["pause"] = {"paused": True, "paused_since": self.paused_since,
                              "pause_control": dict(self.pause_control)}
        if self.phase == "stone removal":
            clock["stone_removal_mode"] = True
            if self.removal_expiration is not None:
                clock["stone_removal_expiration"] = self.removal_expiration
        return clock

    def _players_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c, p in self.players.items():
            entry = p.entry()
            if c in self.accepted:
                entry["accepted_stones"] = self.accepted[c]
                entry["accepted_strict_seki_mode"] = False
            out[c] = entry
        return out

    def gamedata(self, now: int) -> dict[str, Any]:
        rs = self.rules
        b, w = self.players["black"], self.players["white"]
        data: dict[str, Any] = {
            "game_id": self.id, "game_name": self.s.name, "phase": self.phase,
            "width": self.s.width, "height": self.s.height, "komi": self.s.komi, "handicap": self.s.handicap,
            "rules": self.s.rules, "ranked": self.s.ranked, "private": False,
            "disable_analysis": self.s.disable_analysis, "time_control": dict(self.s.time_control),
            "start_time": self.start_time // 1000, "clock": self.clock_json(now),
            "initial_player": self.initial_player,
            "initial_state": {"black": encode_points(self.s.initial_black), "white": ""},
            "free_handicap_placement": self.s.free_handicap,
            "moves": [self.move_array(i) for i in range(len(self.moves))],
            "players": self._players_json(),
            "player_pool": {str(p.id): p.entry() for p in (b, w)},
            "black_player_id": b.id, "white_player_id": w.id,
            "pause_control": dict(self.pause_control),
            "removed": encode_points(self.removal),
            "allow_self_capture": rs.allow_suicide, "allow_ko": False,
            "allow_superko": rs.ko == "simple",
            "superko_algorithm": {"simple": "noresult", "positional": "psk", "situational": "ssk"}[rs.ko],
            "score_territory": True, "score_territory_in_seki": rs.area_scoring, "score_stones": rs.area_scoring,
            "score_prisoners": not rs.area_scoring, "score_handicap": rs.handicap_bonus != "none",
            "aga_handicap_scoring": rs.handicap_bonus == "handicap-1", "score_passes": True,
            "white_must_pass_last": False, "opponent_plays_first_after_resume": not rs.area_scoring,
            "strict_seki_mode": False, "automatic_stone_removal": False,
        }
        if self.paused_since is not None and self.pause_control:
            data["paused_since"] = self.paused_since
        if self.finished:
            data["outcome"] = self.outcome
            data["winner"] = self.players[self.winner].id if self.winner else None
            data["end_time"] = (self.end_time or now) // 1000
            if self.score is not None:
                data["score"] = self.score
        return data

    def active_game(self) -> dict[str, Any]:
        def side(c: Color) -> dict[str, Any]:
            p = self.players[c]
            return {"id": p.id, "username": p.username, "rank": p.ranking, "professional": p.professional,
                    "accepted": c in self.accepted}

        tc = self.s.time_control
        return {"id": self.id, "phase": self.phase, "name": self.s.name,
                "player_to_move": self.players[self.to_move].id, "width": self.s.width, "height": self.s.height,
                "move_number": len(self.moves), "paused": 1 if self.paused else 0, "private": False,
                "black": side("black"), "white": side("white"), "rengo": False, "dropped_player": 0,
                "rengo_casual_mode": False,
                "time_per_move": average_move_time(tc, self.s.width, self.s.height),
                "clock_expiration": self.timeout_at() or 0, "bot_game": True, "ranked": self.s.ranked,
                "handicap": self.s.handicap, "komi": self.s.komi}

    # --- play ----------------------------------------------------------------------------------------------
    def _parse_move(self, raw: Any) -> Move:
        try:
            if isinstance(raw, str):
                mv = decode_point(raw)
            elif isinstance(raw, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in raw[:2]):
                mv = decode_move_array(raw)
            elif isinstance(raw, dict) and all(type(raw.get(k)) is int for k in ("x", "y")):
                mv = decode_move_array([raw["x"], raw["y"]])
            else:
                raise ValueError
        except ValueError:
            raise GameError(f"move {raw!r} is not a move: send two letters such as \"dd\" (x from the left, "
                            f"y from the top), \"..\" for a pass, or [x, y]") from None
        if mv is not None and not (0 <= mv[0] < self.s.width and 0 <= mv[1] < self.s.height):
            raise GameError(f"move {raw!r} is off the {self.s.width}x{self.s.height} board")
        return mv

    def play(self, player_id: int, raw: Any, now: int) -> None:
        color = self._require_player(player_id)
        if self.phase != "play":
            raise GameError(f"game {self.id} is in the {self.phase} phase; no moves can be played")
        if self.paused:
            raise GameError(f"game {self.id} is paused; send game/resume before moving")
        if color != self.to_move:
            raise GameError(f"it is not your turn: {self.to_move} ({self.players[self.to_move].username}) "
                            f"is to move in game {self.id}")
        mv = self._parse_move(raw)
        if mv is None and self.placing_handicap:
            raise GameError(f"black must place {self.s.handicap - len(self.moves)} more handicap stone(s) "
                            f"before passing")
        if self.tick(now):
            raise GameError(f"your time ran out before this move arrived; game {self.id} is lost on time")
        used = self.used_ms(now)
        try:
            self.board.play(color, mv)
        except IllegalMove as exc:
            detail = f" ({exc.detail})" if exc.detail else ""
            raise GameError(f"illegal move {encode_point(mv)} by {color}: {exc.reason}{detail}") from None
        self.clocks[color].spend(used / 1000)
        self.moves.append((color, mv, used))
        self.last_move = now
        self._cancel_pending_undo(exclude=player_id)
        self.emit(f"game/{self.id}/move", {"game_id": self.id, "move_number": len(self.moves),
                                           "move": self.move_array(len(self.moves) - 1)})
        self.passes_in_row = self.passes_in_row + 1 if mv is None else 0
        if self.passes_in_row >= 2:
            self._enter_stone_removal(now)
        else:
            self.emit(f"game/{self.id}/clock", self.clock_json(now))

    def resign(self, player_id: int, now: int) -> None:
        color = self._require_player(player_id)
        if self.finished:
            raise GameError(f"game {self.id} is already finished")
        self._finish(other(color), "Resignation", now)

    def cancel(self, player_id: int, now: int) -> None:
        color = self._require_player(player_id)
        if self.finished:
            raise GameError(f"game {self.id} is already finished")
        own_moves = sum(1 for c, _, _ in self.moves if c == color)
        limit = self.s.handicap if (color == "black" and self.s.free_handicap) else 0
        if own_moves > limit:
            raise GameError(f"game {self.id} can only be cancelled before your first move; resign instead")
        self._finish(None, "Cancellation", now)

    def tick(self, now: int) -> bool:
        """Apply what time has decided by ``now`` (a loss on time, the end of the stone removal phase).
        Returns True if the game ended."""
        if self.phase == "play":
            deadline = self.timeout_at()
            if deadline is not None and now >= deadline:
                loser = self.to_move
                self._zero_clock(loser)
                self._finish(other(loser), "Timeout", now)
                return True
        elif self.phase == "stone removal":
            if self.removal_expiration is not None and now >= self.removal_expiration:
                self._finish_by_score(now, accepted_by=None)
                return True
        return False

    def _zero_clock(self, color: Color) -> None:
        c = self.clocks[color]
        c.thinking_time = 0.0
        c.periods = 0
        c.block_time = 0.0

    # --- pause ---------------------------------------------------------------------------------------------
    def pause(self, player_id: int | None, now: int, *, system: bool = False) -> None:
        if self.phase != "play":
            raise GameError(f"game {self.id} is in the {self.phase} phase and cannot be paused")
        value: Any
        if system:
            key, value = "system", True
        else:
            assert player_id is not None
            self._require_player(player_id)
            if "paused" in self.pause_control:
                raise GameError(f"game {self.id} is already paused")
            if self.pauses_left[player_id] <= 0:
                raise GameError("you have no pauses left in this game")
            self.pauses_left[player_id] -= 1
            key, value = "paused", {"pausing_player_id": player_id, "pauses_left": self.pauses_left[player_id]}
        if not self.pause_control:
            self.paused_since = now
        self.pause_control[key] = value
        self.emit(f"game/{self.id}/clock", self.clock_json(now))

    def resume(self, player_id: int | None, now: int, *, everything: bool = False) -> None:
        if player_id is not None:
            self._require_player(player_id)
        if not self.pause_control or self.phase != "play":
            raise GameError(f"game {self.id} is not paused")
        if everything:
            self.pause_control.clear()
        else:
            self.pause_control.pop("paused", None)
        if self.pause_control:  # still paused for another reason
            self.emit(f"game/{self.id}/clock", self.clock_json(now))
            return
        since = self.paused_since if self.paused_since is not None else now
        self.last_move += max(0, now - since)
        clock = self.clock_json(now)
        clock["pause"] = {"paused": False, "paused_since": since, "pause_control": {}}
        self.paused_since = None
        self.emit(f"game/{self.id}/clock", clock)

    # --- stone removal -------------------------------------------------------------------------------------
    def _enter_stone_removal(self, now: int) -> None:
        self.phase = "stone removal"
        self.removal = set()
        self.accepted = {}
        self.pause_control = {"stone-removal": True}
        self.paused_since = now
        t = self.s.stone_removal_timeout
        self.removal_expiration = now + int(t * 1000) if t is not None else None
        self.emit(f"game/{self.id}/phase", "stone removal")
        self.emit(f"game/{self.id}/clock", self.clock_json(now))
        self.emit(f"game/{self.id}/removed_stones", {"removed": False, "stones": "", "all_removed": ""})

    def _parse_stones(self, raw: Any) -> set[Point]:
        pts: set[Point] = set()
        try:
            if isinstance(raw, str):
                items: list[Any] = [raw[i:i + 2] for i in range(0, len(raw), 2)]
                if len(raw) % 2:
                    raise ValueError
            elif isinstance(raw, list):
                items = raw
            else:
                raise ValueError
            for item in items:
                mv = self._parse_move(item)
                if mv is not None:
                    pts.add(mv)
        except (ValueError, GameError):
            raise GameError(f"stones {raw!r} are not a list of points: send concatenated two-letter "
                            f"coordinates such as \"ddpp\" or a list of {{x, y}}") from None
        return pts

    def set_removed(self, player_id: int, stones: Any, removed: bool, now: int) -> None:
        self._require_player(player_id)
        if self.phase != "stone removal":
            raise GameError(f"game {self.id} is not in the stone removal phase")
        pts = {p for p in self._parse_stones(stones) if self.board.get(p) is not None}
        if removed:
            self.removal |= pts
        else:
            self.removal -= pts
        self.accepted = {}
        self.emit(f"game/{self.id}/removed_stones", {"removed": removed, "stones": encode_points(pts),
                                                     "all_removed": encode_points(self.removal)})

    def accept_removed(self, player_id: int, stones: Any, now: int) -> None:
        color = self._require_player(player_id)
        if self.phase != "stone removal":
            raise GameError(f"game {self.id} is not in the stone removal phase")
        proposed = {p for p in self._parse_stones(stones if stones is not None else "")
                    if self.board.get(p) is not None}
        if proposed != self.removal:
            raise GameError(f"the stones you accepted ({encode_points(proposed) or 'none'}) differ from the "
                            f"current removal ({encode_points(self.removal) or 'none'}); accept the current one")
        self.accepted[color] = encode_points(self.removal)
        if len(self.accepted) == 2:
            self._finish_by_score(now, accepted_by=player_id)
            return
        self.emit(f"game/{self.id}/removed_stones_accepted", {
            "player_id": player_id, "stones": self.accepted[color], "strict_seki_mode": False,
            "players": self._players_json(), "phase": "stone removal"})

    def reject_removed(self, player_id: int, now: int) -> None:
        self._require_player(player_id)
        if self.phase != "stone removal":
            raise GameError(f"game {self.id} is not in the stone removal phase")
        self.phase = "play"
        self.removal = set()
        self.accepted = {}
        self.removal_expiration = None
        self.pause_control = {}
        self.paused_since = None
        self.passes_in_row = 0
        self.last_move = now
        self.emit(f"game/{self.id}/phase", "play")
        self.emit(f"game/{self.id}/clock", self.clock_json(now))

    def _finish_by_score(self, now: int, accepted_by: int | None) -> None:
        dead = {p for p in self.removal if self.board.get(p) is not None}
        detail = self.board.score_detail(self.s.komi, self.s.rules, dead, self.s.handicap)
        terr = self.board.territory(dead)
        score: dict[str, Any] = {}
        for c in COLORS:
            d = detail[c]
            positions = set(terr[c])
            if self.rules.area_scoring:
                positions |= {p for p, col in self.board.stones.items() if col == c and p not in dead}
            score[c] = {"total": d["total"], "stones": int(d["stones"]), "territory": int(d["territory"]),
                        "prisoners": int(d["prisoners"]), "handicap": int(d["handicap"]), "komi": d["komi"],
                        "scoring_positions": encode_points(positions)}
        diff = score["black"]["total"] - score["white"]["total"]
        winner: Color | None = "black" if diff > 0 else "white" if diff < 0 else None
        self.score = score
        outcome = f"{abs(diff):g} points"
        for c in COLORS:
            self.accepted.setdefault(c, encode_points(self.removal))
        self._finish(winner, outcome, now, removal_event=accepted_by if accepted_by is not None else 0)

    # --- undo ----------------------------------------------------------------------------------------------
    def request_undo(self, player_id: int, move_number: Any, now: int) -> None:
        self._require_player(player_id)
        if self.phase != "play":
            raise GameError(f"game {self.id} is in the {self.phase} phase; undo is only possible during play")
        if not self.moves:
            raise GameError("there is no move to undo")
        n = len(self.moves)
        if move_number is not None and move_number != n:
            raise GameError(f"undo request for move {move_number!r}, but the last move is number {n}")
        if self.pending_undo() is not None:
            raise GameError("an undo request is already pending")
        self.undos.append(UndoRecord(n, player_id))
        self.emit(f"game/{self.id}/undo_requested", n)

    def pending_undo(self) -> UndoRecord | None:
        if self.undos and self.undos[-1].state == "pending":
            return self.undos[-1]
        return None

    def accept_undo(self, player_id: int, move_number: Any, now: int) -> None:
        self._require_player(player_id)
        rec = self.pending_undo()
        if rec is None:
            raise GameError("there is no undo request to accept")
        if rec.requested_by == player_id:
            raise GameError("you cannot accept your own undo request")
        if move_number is not None and move_number != rec.move_number:
            raise GameError(f"undo accept for move {move_number!r}, but the request is for move {rec.move_number}")
        if self.phase != "play" or len(self.moves) != rec.move_number:
            rec.state = "canceled"
            raise GameError("the undo request no longer matches the game")
        rec.state = "accepted"
        self.moves.pop()
        self._rebuild_board()
        self.last_move = now
        self.passes_in_row = 0
        for i in range(len(self.moves) - 1, -1, -1):
            if self.moves[i][1] is not None:
                break
            self.passes_in_row += 1
        self.emit(f"game/{self.id}/undo_accepted", rec.move_number)
        self.emit(f"game/{self.id}/clock", self.clock_json(now))
        self.emit(f"game/{self.id}/gamedata", self.gamedata(now))

    def cancel_undo(self, player_id: int, now: int) -> None:
        self._require_player(player_id)
        rec = self.pending_undo()
        if rec is None or rec.requested_by != player_id:
            raise GameError("you have no pending undo request")
        rec.state = "canceled"
        self.emit(f"game/{self.id}/undo_canceled", rec.move_number)

    def _cancel_pending_undo(self, exclude: int) -> None:
        rec = self.pending_undo()
        if rec is not None:
            rec.state = "declined" if rec.requested_by != exclude else "canceled"
            self.emit(f"game/{self.id}/undo_canceled", rec.move_number)

    def _rebuild_board(self) -> None:
        board = self._fresh_board()
        for color, mv, _ in self.moves:
            board.play(color, mv)
        self.board = board

    # --- chat ----------------------------------------------------------------------------------------------
    def add_chat(self, player: Player, channel: str, body: Any, move_number: Any, now: int) -> dict[str, Any]:
        if channel not in ("main", "malkovich", "spectator", "moderator", "hidden", "personal"):
            raise GameError(f"chat type {channel!r} is not one of main, malkovich, spectator")
        if not isinstance(body, str | dict) or (isinstance(body, str) and not body.strip()):
            raise GameError("chat body must be a non-empty string or an object such as {type: \"translated\", ...}")
        if isinstance(body, dict) and body.get("type") == "analysis":
            try:
                read_analysis_body(body, len(self.moves))
            except ValueError as exc:
                raise GameError(str(exc)) from None
        line = {"chat_id": uuid.uuid4().hex[:12], "body": body, "date": now // 1000,
                "move_number": move_number if isinstance(move_number, int) else len(self.moves),
                "channel": channel, "player_id": player.id, "username": player.username}
        self.chat.append(line)
        self.emit(f"game/{self.id}/chat", {"channel": channel, "line": line})
        return line

    # --- the end -------------------------------------------------------------------------------------------
    def _finish(self, winner: Color | None, outcome: str, now: int, removal_event: int | None = None) -> None:
        self.phase = "finished"
        self.winner = winner
        self.outcome = outcome
        self.end_time = now
        self.pause_control = {}
        self.paused_since = None
        self.removal_expiration = None
        rec = self.pending_undo()
        if rec is not None:
            rec.state = "canceled"
        data = self.gamedata(now)
        if removal_event is not None:
            self.emit(f"game/{self.id}/removed_stones_accepted", {
                "player_id": removal_event, "stones": encode_points(self.removal), "strict_seki_mode": False,
                "players": self._players_json(), "phase": "finished", "score": self.score,
                "winner": data["winner"], "outcome": outcome, "end_time": now // 1000})
        self.emit(f"game/{self.id}/gamedata", data)
        self.emit(f"game/{self.id}/phase", "finished")
        self.emit(f"game/{self.id}/clock", self.clock_json(now))
        self.emit("active_game", self.active_game())

    # --- control API and records ---------------------------------------------------------------------------
    def result_string(self) -> str:
        """The SGF RE value: B+R, W+T, B+3.5, 0 (jigo), Void (cancelled), '' (in progress)."""
        if not self.finished:
            return ""
        if self.outcome == "Cancellation":
            return "Void"
        if self.winner is None:
            return "0"
        side = "B" if self.winner == "black" else "W"
        if self.outcome == "Resignation":
            return f"{side}+R"
        if self.outcome == "Timeout":
            return f"{side}+T"
        return f"{side}+{self.outcome.split()[0]}"

    def summary(self, now: int) -> dict[str, Any]:
        """The game as the control API shows it (GET /sandbox/games/ID)."""
        used = self.used_ms(now) / 1000 if self.phase == "play" else 0.0
        clocks = {c: self.clocks[c].left_now(used if c == self.to_move else 0.0) for c in COLORS}
        return {
            "id": self.id, "game_id": self.id, "name": self.s.name, "phase": self.phase,
            "width": self.s.width, "height": self.s.height, "rules": self.s.rules, "ranked": self.s.ranked,
            "handicap": self.s.handicap, "komi": self.s.komi, "free_handicap_placement": self.s.free_handicap,
            "initial_state": {"black": encode_points(self.s.initial_black), "white": ""},
            "initial_player": self.initial_player, "time_control": dict(self.s.time_control),
            "players": {c: {"id": p.id, "username": p.username} for c, p in self.players.items()},
            "to_move": self.to_move if not self.finished else None,
            "moves": [self.move_array(i) for i in range(len(self.moves))],
            "move_strings": [encode_point(mv) for _, mv, _ in self.moves],
            "move_colors": [c for c, _, _ in self.moves],
            "clocks": clocks, "clock": self.clock_json(now), "paused": self.paused,
            "pause_control": dict(self.pause_control),
            "removal": encode_points(self.removal), "removal_accepted": dict(self.accepted),
            "undo_requests": [{"move_number": u.move_number, "requested_by": self._name(u.requested_by),
                               "state": u.state} for u in self.undos],
            "chat": list(self.chat), "errors": list(self.errors),
            "captures": dict(self.board.captures),
            "outcome": self.outcome or None,
            "winner": ({"username": self.players[self.winner].username, "color": self.winner,
                        "id": self.players[self.winner].id} if self.winner else None),
            "score": self.result_string(), "score_detail": self.score,
            "end_time": self.end_time // 1000 if self.end_time else None,
        }

    def _name(self, player_id: int) -> str:
        for p in self.players.values():
            if p.id == player_id:
                return p.username
        return str(player_id)

    def sgf(self) -> str:
        def esc(text: str) -> str:
            return text.replace("\\", "\\\\").replace("]", "\\]")

        size = str(self.s.width) if self.s.width == self.s.height else f"{self.s.width}:{self.s.height}"
        head = [f"FF[4]GM[1]CA[UTF-8]AP[bridge-ogs-sandbox]SZ[{size}]KM[{self.s.komi:g}]",
                f"RU[{esc(self.s.rules)}]PB[{esc(self.players['black'].username)}]"
                f"PW[{esc(self.players['white'].username)}]GN[{esc(self.s.name)}]"]
        if self.s.handicap:
            head.append(f"HA[{self.s.handicap}]")
        if self.s.initial_black:
            head.append("AB" + "".join(f"[{encode_point(p)}]" for p in self.s.initial_black) + "PL[W]")
        if self.finished:
            head.append(f"RE[{self.result_string()}]")
        body = "".join(f";{'B' if c == 'black' else 'W'}[{'' if mv is None else encode_point(mv)}]"
                       for c, mv, _ in self.moves)
        return f"(;{''.join(head)}{body})\n"
