"""The Go seam between a pushing server's adapter (OGS) and a Go session (one per game): the events an adapter
posts into a session's inbox, and the typed requests a session makes through the adapter's :class:`GoActions`.
Nothing here knows a server's URL or field names; the neutral seam (hosts, adapters, specs) is
:mod:`bridge.events`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.games.gotypes import GoState, Move, Point, gtp_vertex


# --- events: adapter -> session -------------------------------------------------------------------
@dataclass(frozen=True)
class StateUpdate:
    """A full snapshot of the game as the server sees it (idempotent: may repeat)."""

    state: GoState


@dataclass(frozen=True)
class UndoRequested:
    """The opponent asks to take back moves so that ``move_number`` moves remain... as the server counts."""

    move_number: int


@dataclass(frozen=True)
class ChatReceived:
    username: str
    body: str
    channel: str = "main"


@dataclass(frozen=True)
class GameAbandoned:
    """The adapter can no longer follow this game (it vanished from the server, access revoked...)."""

    reason: str


@dataclass(frozen=True)
class ActionRejected:
    """The server refused something the session sent (e.g. ``game/ID/error`` after a move): the session then
    re-synchronises its engine and tries again instead of waiting forever."""

    message: str


GameEvent = StateUpdate | UndoRequested | ChatReceived | GameAbandoned | ActionRejected


# --- actions: session -> adapter ------------------------------------------------------------------
# What a Go session asks the server to do, as typed messages (an adapter's GoActions builds them; its connection
# writes them). One dataclass per request: no action strings or tuples cross the seam.
@dataclass(frozen=True)
class Play:
    move: Move  # None = pass
    height: int = field(default=0, compare=False)  # the board's, for the log's name of the point (0: unknown)

    def __str__(self) -> str:
        """How logs and transcripts name it: "move Q16" (the point as on the board's edge and in GTP) when the
        board's height is known, else the column and the row from the top (0-based)."""
        if self.move is None:
            return "pass"
        if self.height > 0:
            return f"move {gtp_vertex(self.move, self.height)}"
        return f"move at column {self.move[0]}, row {self.move[1]}"


@dataclass(frozen=True)
class Resign:
    def __str__(self) -> str:
        return "resign"


@dataclass(frozen=True)
class Cancel:
    """Cancel a game in which the bot has not moved yet (no one loses)."""


@dataclass(frozen=True)
class SetRemoval:
    stones: frozenset[Point]
    removed: bool

    def __str__(self) -> str:
        return f"mark {len(self.stones)} stone(s) {'dead' if self.removed else 'alive'}"


@dataclass(frozen=True)
class AcceptRemoval:
    stones: frozenset[Point]

    def __str__(self) -> str:
        return f"accept the removal of {len(self.stones)} stone(s)"


@dataclass(frozen=True)
class AnswerUndo:
    accept: bool
    move_number: int


@dataclass(frozen=True)
class Chat:
    body: str | dict[str, Any]  # a text, or a server's structured message (an OGS analysis)
    channel: str = "main"


GoAction = Play | Resign | Cancel | SetRemoval | AcceptRemoval | AnswerUndo | Chat


class GoActions(Protocol):
    """What a Go session can ask the server to do in its game."""

    def play(self, move: Move) -> None: ...  # None = pass

    def resign(self) -> None: ...

    def set_removal(self, stones: Iterable[Point], removed: bool) -> None: ...

    def accept_removal(self, stones: frozenset[Point]) -> None: ...

    def answer_undo(self, accept: bool, move_number: int) -> None: ...

    def chat(self, body: str, channel: str = "main") -> None: ...
