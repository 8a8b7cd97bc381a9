"""What a game's session asks the bot to do, and how each request is written to the server.

Sessions call :class:`OgsGoActions` of their game from their own threads; each call builds a typed request
(:data:`bridge.events.GoAction`) and hands it to the adapter's ``act``, which writes it at once with
:func:`send_action` on the live connection (the transport's send is thread-safe). There is no queue on the way
out: a game's requests reach the wire in the order its session made them, so a move never overtakes an earlier
action of the same game."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from bridge.adapters.ogs.analysis import analysis_body
from bridge.adapters.ogs.codec import encode_point, encode_points, wire_id
from bridge.adapters.ogs.games import Game
from bridge.games.go_analysis import EngineAnalysis
from bridge.games.go_events import AcceptRemoval, AnswerUndo, Cancel, Chat, GoAction, Play, Resign, SetRemoval
from bridge.games.gotypes import Move, Point
from bridge.redact import redact

log = logging.getLogger("bridge.ogs")

Act = Callable[[str, GoAction], None]  # (game id, request): write it on the live connection
Send = Callable[[str, Any], bool]  # (command, payload): write to the live connection


class OgsGoActions:
    """:class:`bridge.events.GoActions` for one OGS game; callable from any thread."""

    def __init__(self, act: Act, game_id: str) -> None:
        self._act = act
        self.game_id = game_id

    def play(self, move: Move) -> None:
        self._act(self.game_id, Play(move))

    def resign(self) -> None:
        self._act(self.game_id, Resign())

    def cancel(self) -> None:
        """Cancel a game in which the bot has not moved yet (OGS allows it only then; no one loses)."""
        self._act(self.game_id, Cancel())

    def set_removal(self, stones: Iterable[Point], removed: bool) -> None:
        self._act(self.game_id, SetRemoval(frozenset(stones), removed))

    def accept_removal(self, stones: frozenset[Point]) -> None:
        self._act(self.game_id, AcceptRemoval(frozenset(stones)))

    def answer_undo(self, accept: bool, move_number: int) -> None:
        self._act(self.game_id, AnswerUndo(accept, move_number))

    def chat(self, body: str | dict[str, Any], channel: str = "main") -> None:
        self._act(self.game_id, Chat(body, channel))

    def analysis(self, analysis: EngineAnalysis, from_move: int, channel: str = "main") -> None:
        """The engine's thinking as an analysis message (a variation OGS shows on the board) after
        ``from_move`` moves."""
        self.chat(analysis_body(analysis, from_move), channel)


def send_action(game: Game | None, game_id: str, action: GoAction, send: Send,
                reject: Callable[[Game, str], None]) -> None:
    """Write one request of ``game`` (``None``: a game no longer followed) as OGS commands; a move that cannot be
    written is refused to the session through ``reject``."""
    wire: int | str = game.wire_id if game is not None else wire_id(game_id)
    if isinstance(action, Play):
        move = action.move
        if game is not None and game.settings is not None and move is not None:
            w, h = game.settings.width, game.settings.height
            if not (0 <= move[0] < w and 0 <= move[1] < h):
                log.warning("game %s: move %s is off the %dx%d board; not sent", game_id, move, w, h)
                reject(game, f"move {move} is off the {w}x{h} board")
                return
        try:
            text = encode_point(move)
        except ValueError as exc:
            if game is not None:
                reject(game, str(exc))
            return
        log.debug("game %s: playing %s", game_id, text)
        if game is not None:
            game.move_sent = len(game.moves) + 1
        send("game/move", {"game_id": wire, "move": text})
    elif isinstance(action, Resign):
        log.info("game %s: resigning", game_id)
        send("game/resign", {"game_id": wire})
    elif isinstance(action, Cancel):
        log.info("game %s: cancelling", game_id)
        send("game/cancel", {"game_id": wire})
    elif isinstance(action, SetRemoval):
        send("game/removed_stones/set", {"game_id": wire, "removed": bool(action.removed),
                                         "stones": encode_points(action.stones)})
    elif isinstance(action, AcceptRemoval):
        send("game/removed_stones/accept", {"game_id": wire, "stones": encode_points(action.stones),
                                            "strict_seki_mode": False})
    elif isinstance(action, AnswerUndo):
        if action.accept:
            send("game/undo/accept", {"game_id": wire, "move_number": int(action.move_number)})
        else:  # OGS has no "reject": the request lapses when the next move is played
            log.info("game %s: undo request at move %s declined", game_id, action.move_number)
    elif isinstance(action, Chat):
        channel = action.channel
        move_number = game.chat_move_number() if game is not None else 0
        send("game/chat", {"game_id": wire, "type": channel if channel in ("main", "malkovich") else
                           "main", "move_number": move_number, "body": _redacted(action.body)})


def _redacted(body: Any) -> Any:
    """A chat body with every secret taken out: a text, or an object (an analysis) whose texts are redacted."""
    if isinstance(body, dict):
        return {str(k): _redacted(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_redacted(v) for v in body]
    if isinstance(body, int | float | bool) or body is None:
        return body
    return redact(str(body))
