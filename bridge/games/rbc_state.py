"""A Reconnaissance Blind Chess game's state on disk, so that a restarted bridge goes on with the game.

What is kept is what the game loop *observed*, not what the player derived from it: the colour, the starting
board, and per turn the capture square the arbiter reported, the sense and its result, and the move's result.
A restarted bridge rebuilds the player by replaying these observations through the ``reconchess.Player``
interface (``handle_opponent_move_result``, ``handle_sense_result``, ``handle_move_result``), which any player
implements. That was chosen over pickling the belief because it is small and readable (a few KB of JSON), it
survives an upgrade of the bridge between stop and start (a pickle of changed classes does not load), it works
for any player, and it cannot restore a half-updated belief: the replay re-derives it by the same code that
built it.

The file is written atomically after every step (write a temporary file beside it, fsync, rename), so it is
always either the previous or the new state, never a torn one. Every field is checked on load; anything that
does not read as a state is :class:`StateError` (the caller logs one line and plays on from the server's state).

The file is server-neutral; what only the adapter knows (its URL, account, invitation) goes in ``server``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import chess

STATE_VERSION = 1
MoveOutcome = Literal["sent", "known", "uncertain", "lost"]
SenseResult = list[tuple[int, chess.Piece | None]]


class StateError(ValueError):
    """A state file that cannot be read as one (torn, edited, another version)."""


@dataclass
class TurnRecord:
    """One of our turns, as far as it went: the record is written once the sense is done."""

    capture: int | None  # where the opponent's last move captured one of our pieces
    sense: int | None
    sense_result: SenseResult  # [] when the sense's answer was lost (its result is unknown)
    requested: chess.Move | None = None
    taken: chess.Move | None = None
    capture_square: int | None = None  # where our move captured
    # None: not chosen yet; "sent": chosen and (maybe) sent, written before sending it, so that a restart sends the
    # same move again; "known": its result came; "lost": carried out, result unknown; "uncertain": capture unknown
    move: MoveOutcome | None = None
    ended: bool = False  # end_turn done

    def to_json(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "sense": self.sense,
            "sense_result": [[sq, piece.symbol() if piece else None] for sq, piece in self.sense_result],
            "requested": self.requested.uci() if self.requested else None,
            "taken": self.taken.uci() if self.taken else None,
            "capture_square": self.capture_square,
            "move": self.move,
            "ended": self.ended,
        }

    @classmethod
    def from_json(cls, data: Any) -> TurnRecord:
        if not isinstance(data, dict):
            raise StateError(f"a turn is not an object: {data!r:.60}")
        result = data.get("sense_result")
        if not isinstance(result, list):
            raise StateError("a turn's sense_result is not a list")
        sense_result: SenseResult = []
        for item in result:
            if not (isinstance(item, list) and len(item) == 2):
                raise StateError(f"a sense result entry is not [square, piece]: {item!r:.60}")
            sense_result.append((_square(item[0]), _piece(item[1])))
        move = data.get("move")
        if move not in (None, "sent", "known", "uncertain", "lost"):
            raise StateError(f"a turn's move outcome is {move!r}")
        ended = data.get("ended")
        if not isinstance(ended, bool):
            raise StateError("a turn's 'ended' is not true or false")
        return cls(
            capture=_opt_square(data.get("capture")),
            sense=_opt_square(data.get("sense")),
            sense_result=sense_result,
            requested=_opt_move(data.get("requested")),
            taken=_opt_move(data.get("taken")),
            capture_square=_opt_square(data.get("capture_square")),
            move=move,
            ended=ended,
        )


@dataclass
class RbcGameState:
    game_id: str
    color: chess.Color
    opponent: str
    starting_fen: str
    ready: bool = False
    turns: list[TurnRecord] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)  # the adapter's own facts (url, account, invitation)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "game_id": self.game_id,
            "color": "white" if self.color else "black",
            "opponent": self.opponent,
            "starting_fen": self.starting_fen,
            "ready": self.ready,
            "server": self.server,
            "turns": [t.to_json() for t in self.turns],
        }

    @classmethod
    def from_json(cls, data: Any) -> RbcGameState:
        if not isinstance(data, dict):
            raise StateError("not a JSON object")
        if data.get("version") != STATE_VERSION:
            raise StateError(f"state version {data.get('version')!r}, this bridge reads {STATE_VERSION}")
        color = data.get("color")
        if color not in ("white", "black"):
            raise StateError(f"color is {color!r}")
        fen = data.get("starting_fen")
        try:
            if not isinstance(fen, str):
                raise TypeError
            chess.Board(fen)
        except (TypeError, ValueError):
            raise StateError(f"starting_fen {fen!r:.80} is not a FEN") from None
        turns = data.get("turns")
        if not isinstance(turns, list):
            raise StateError("turns is not a list")
        server = data.get("server")
        if not isinstance(server, dict) or not isinstance(data.get("game_id"), str) \
                or not isinstance(data.get("opponent"), str) or not isinstance(data.get("ready"), bool):
            raise StateError("game_id, opponent, ready or server is missing or of the wrong type")
        records = [TurnRecord.from_json(t) for t in turns]
        for record in records[:-1]:
            if record.move in (None, "sent") or not record.ended:
                raise StateError("a turn before the last one did not end")
        return cls(game_id=data["game_id"], color=color == "white", opponent=data["opponent"], starting_fen=fen,
                   ready=data["ready"], turns=records, server=server)


def state_path(data_dir: Path | str, server: str, game_id: str) -> Path:
    """``DATA_DIR/state/SERVER-GAME.json``."""
    return Path(data_dir) / "state" / f"{server}-{game_id}.json"


def save_state(path: Path, state: RbcGameState) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state.to_json(), indent=1).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_state(path: Path) -> RbcGameState:
    """The state in ``path``; :class:`StateError` if it cannot be read as one, OSError if it cannot be read."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"not JSON ({exc})") from None
    return RbcGameState.from_json(data)


def remove_state(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# --- field checks ---------------------------------------------------------------------------------------------
def _square(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
        raise StateError(f"{value!r:.20} is not a square 0-63")
    return value


def _opt_square(value: Any) -> int | None:
    return None if value is None else _square(value)


def _piece(value: Any) -> chess.Piece | None:
    if value is None:
        return None
    try:
        return chess.Piece.from_symbol(value)
    except (TypeError, ValueError):
        raise StateError(f"{value!r:.20} is not a piece") from None


def _opt_move(value: Any) -> chess.Move | None:
    if value is None:
        return None
    try:
        return chess.Move.from_uci(value)
    except (TypeError, ValueError, chess.InvalidMoveError):
        raise StateError(f"{value!r:.20} is not a UCI move") from None


__all__ = ["RbcGameState", "StateError", "TurnRecord", "load_state", "remove_state", "save_state", "state_path"]
