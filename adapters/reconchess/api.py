"""The reconchess server's HTTP API (the seed ``003``): one table of endpoints and a small client over
``requests``, with the answers decoded into python-chess / reconchess values and checked.

Wire facts (from reconchess 1.6.9, the official client): HTTP basic auth on every call; bodies are JSON
(``reconchess.ChessJSONEncoder``: squares are ints 0-63, moves ``{"type": "Move", "value": "e2e4"}``, colours
``true`` = white); answers wrap their value (``{"sense_result": [...]}``).

Retries: a 5xx answer, a timeout or a connection error is retried with capped exponential backoff and jitter
(tenacity), for as long as the official client does (forever) unless ``RetryPolicy.give_up`` says otherwise,
and abortably: setting the ``stop`` event ends the wait at once (:class:`Stopped`). Other answers are final. A
POST whose first attempt may have reached the server (its answer was lost) is flagged: if a later attempt is
then refused (400 "already sensed"), :attr:`ApiError.maybe_done` tells the caller to settle it from the game's
state instead of treating the refusal as an error.

Secrets: the password (and the ``Authorization`` header's base64 form) are registered with
:mod:`bridge.redact`, and every message passes through :func:`bridge.redact.redact`.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import chess
import requests
from reconchess import ChessJSONDecoder, ChessJSONEncoder, GameHistory, GameHistoryDecoder, WinReason

from bridge import httpapi
from bridge.errors import ProtocolError
from bridge.httpapi import RetryPolicy as RetryPolicy
from bridge.httpapi import Stopped as Stopped
from bridge.httpapi import short as _short
from bridge.redact import redact, register_secret

log = logging.getLogger("bridge.reconchess")

# name -> (method, path template)
ENDPOINTS: dict[str, tuple[str, str]] = {
    "version": ("GET", "/api/version"),
    "users": ("GET", "/api/users/"),
    "me": ("POST", "/api/users/me"),
    "max_games": ("POST", "/api/users/me/max_games"),
    "ranked": ("POST", "/api/users/me/ranked"),
    "get_bot_version": ("GET", "/api/users/me/version"),
    "new_bot_version": ("POST", "/api/users/me/version"),
    "invitations": ("GET", "/api/invitations/"),
    "invite": ("POST", "/api/invitations/"),
    "accept": ("POST", "/api/invitations/{invitation_id}"),
    "finish": ("POST", "/api/invitations/{invitation_id}/finish"),
    "color": ("GET", "/api/games/{game_id}/color"),
    "starting_board": ("GET", "/api/games/{game_id}/starting_board"),
    "opponent_name": ("GET", "/api/games/{game_id}/opponent_name"),
    "ready": ("POST", "/api/games/{game_id}/ready"),
    "sense_actions": ("GET", "/api/games/{game_id}/sense_actions"),
    "move_actions": ("GET", "/api/games/{game_id}/move_actions"),
    "seconds_left": ("GET", "/api/games/{game_id}/seconds_left"),
    "opponent_move_results": ("GET", "/api/games/{game_id}/opponent_move_results"),
    "sense": ("POST", "/api/games/{game_id}/sense"),
    "move": ("POST", "/api/games/{game_id}/move"),
    "end_turn": ("POST", "/api/games/{game_id}/end_turn"),
    "is_over": ("GET", "/api/games/{game_id}/is_over"),
    "is_my_turn": ("GET", "/api/games/{game_id}/is_my_turn"),
    "game_status": ("GET", "/api/games/{game_id}/game_status"),
    "resign": ("POST", "/api/games/{game_id}/resign"),
    "error_resign": ("POST", "/api/games/{game_id}/error_resign"),
    "winner_color": ("GET", "/api/games/{game_id}/winner_color"),
    "win_reason": ("GET", "/api/games/{game_id}/win_reason"),
    "game_history": ("GET", "/api/games/{game_id}/game_history"),
}


class ApiError(httpapi.ApiError):
    """The server answered a call with a final error status (4xx), or a call gave up retrying (status 0).

    ``maybe_done``: an earlier attempt of this POST may have been carried out by the server (its answer was
    lost), so a refusal now may only mean "already done"."""

    def __init__(self, message: str, status: int = 0, text: str = "", maybe_done: bool = False) -> None:
        super().__init__(message, status, maybe_done)
        self.text = redact(text)


class Unauthorized(httpapi.Unauthorized):
    """HTTP 401: bad credentials, or this account is not a player of the game."""


@dataclass(frozen=True)
class GameStatus:
    is_my_turn: bool
    is_over: bool


MoveResult = tuple[chess.Move | None, chess.Move | None, int | None]
SenseResult = list[tuple[int, chess.Piece | None]]


class RbcApi(httpapi.HttpApi):
    """One HTTP session with the server. Not shared between threads: each game loop makes its own."""

    log = log

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(
            user_agent="bridge-games (reconchess bot bridge)",
            timeout=timeout,
            retry=retry,
            stop=stop,
            session=session,
        )
        self.base_url = base_url.rstrip("/")
        self.username = username
        register_secret(password)
        register_secret(base64.b64encode(f"{username}:{password}".encode()).decode("ascii"))
        self.http.auth = (username, password)

    def _retrying(self, delay: float) -> str:
        return "retrying with backoff"

    # --- the raw call ---------------------------------------------------------------------------------
    def call(
        self,
        endpoint: str,
        body: Any = None,
        *,
        decoder: type[json.JSONDecoder] = ChessJSONDecoder,
        authenticate: bool = True,
        once: bool = False,
        **path: Any,
    ) -> Any:
        """Call ``ENDPOINTS[endpoint]`` and return the decoded JSON answer (``None`` for an empty body).

        ``once``: never send again an attempt that may have reached the server (see ``HttpApi._send``).

        Raises :class:`Unauthorized` (401), :class:`ApiError` (other final statuses, or retries given up),
        :class:`Stopped` (the stop event was set while retrying), :class:`ProtocolError` (an answer that is
        not JSON)."""
        method, template = ENDPOINTS[endpoint]
        where = f"{method} {template.format(**path)}"
        url = self.base_url + template.format(**path)
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        if method == "POST":
            kwargs["data"] = json.dumps(body if body is not None else {}, cls=ChessJSONEncoder)
            kwargs["headers"] = {"Content-Type": "application/json"}
        if not authenticate:
            kwargs["auth"] = None
        try:
            resp, maybe_done = self._send(method, url, where, self.base_url, once=once, **kwargs)
        except httpapi.GaveUp as exc:
            raise ApiError(
                f"{where} at {self.base_url}: no answer after {exc.attempts} "
                f"attempts in {exc.seconds:.0f} s ({exc.reason}); check that the server "
                f"is up and server.url is right",
                0,
                maybe_done=exc.maybe_done,
            ) from None
        if resp.status_code == 401:
            raise Unauthorized(
                f"{where}: the server refused the credentials of {self.username!r} (HTTP 401: "
                f"{_short(resp.text) or 'no reason given'}); check server.username and "
                f"server.password"
            )
        if resp.status_code != 200:
            raise ApiError(
                f"{where} answered HTTP {resp.status_code}: {_short(resp.text) or 'no reason given'}",
                resp.status_code,
                resp.text,
                maybe_done=maybe_done,
            )
        if not resp.content.strip():
            return None
        try:
            return json.loads(resp.content, cls=decoder)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProtocolError(
                f"{where}: the answer is not valid reconchess JSON ({type(exc).__name__}: "
                f"{_short(str(exc))}): {_short(resp.text)}"
            ) from None

    # --- answer checking ------------------------------------------------------------------------------
    @staticmethod
    def _field(answer: Any, key: str, where: str) -> Any:
        if not isinstance(answer, dict) or key not in answer:
            raise ProtocolError(f"{where}: expected an object with {key!r}, got {_short(repr(answer))}")
        return answer[key]

    def _get(self, endpoint: str, key: str, check: Callable[[Any, str], Any], **path: Any) -> Any:
        method, template = ENDPOINTS[endpoint]
        where = f"{method} {template.format(**path)}"
        return check(self._field(self.call(endpoint, **path), key, where), f"{where}: {key}")

    # --- account and invitations ----------------------------------------------------------------------
    def version(self) -> str:
        return str(self._get("version", "version", _check_str))

    def me(self) -> dict[str, Any]:
        answer = self.call("me")
        if not isinstance(answer, dict) or not isinstance(answer.get("username"), str):
            raise ProtocolError(
                f"POST /api/users/me: expected {{id, username, max_games}}, got {_short(repr(answer))}"
            )
        return answer

    def set_max_games(self, max_games: int) -> None:
        self.call("max_games", {"max_games": max_games})

    def set_ranked(self, ranked: bool) -> None:
        self.call("ranked", {"ranked": ranked})

    def bot_version(self) -> int:
        return int(self._get("get_bot_version", "version", _check_int))

    def new_bot_version(self) -> int:
        answer = self.call("new_bot_version")
        return int(
            _check_int(
                self._field(answer, "version", "POST /api/users/me/version"),
                "POST /api/users/me/version: version",
            )
        )

    def users(self) -> list[str]:
        return list(self._get("users", "usernames", _check_str_list))

    def invitations(self) -> list[int]:
        return list(self._get("invitations", "invitations", _check_int_list))

    def invite(self, opponent: str, color: bool) -> int:
        """Send an invitation; its game's id. Sent once: an attempt that may have reached the server is never
        sent again (a second attempt would make a second game); :attr:`ApiError.maybe_done` then says to settle
        it."""
        answer = self.call("invite", {"opponent": opponent, "color": color}, once=True)
        return int(_check_int(self._field(answer, "game_id", "POST /api/invitations/"), "game_id"))

    def accept(self, invitation_id: int) -> int:
        where = f"POST /api/invitations/{invitation_id}"
        answer = self.call("accept", invitation_id=invitation_id)
        return int(_check_int(self._field(answer, "game_id", where), f"{where}: game_id"))

    def finish(self, invitation_id: int) -> None:
        self.call("finish", invitation_id=invitation_id)

    # --- one game -------------------------------------------------------------------------------------
    def color(self, game_id: int) -> bool:
        return bool(self._get("color", "color", _check_bool, game_id=game_id))

    def starting_board(self, game_id: int) -> chess.Board:
        board: chess.Board = self._get("starting_board", "board", _check_board, game_id=game_id)
        return board

    def opponent_name(self, game_id: int) -> str:
        return str(self._get("opponent_name", "opponent_name", _check_str, game_id=game_id))

    def ready(self, game_id: int) -> None:
        self.call("ready", game_id=game_id)

    def sense_actions(self, game_id: int) -> list[int]:
        return list(self._get("sense_actions", "sense_actions", _check_squares, game_id=game_id))

    def move_actions(self, game_id: int) -> list[chess.Move]:
        return list(self._get("move_actions", "move_actions", _check_moves, game_id=game_id))

    def seconds_left(self, game_id: int) -> float:
        return float(self._get("seconds_left", "seconds_left", _check_number, game_id=game_id))

    def opponent_move_results(self, game_id: int) -> int | None:
        value: int | None = self._get(
            "opponent_move_results", "opponent_move_results", _check_opt_square, game_id=game_id
        )
        return value

    def sense(self, game_id: int, square: int | None) -> SenseResult:
        where = f"POST /api/games/{game_id}/sense"
        answer = self.call("sense", {"square": square}, game_id=game_id)
        return _check_sense_result(self._field(answer, "sense_result", where), f"{where}: sense_result")

    def move(self, game_id: int, move: chess.Move | None) -> MoveResult:
        where = f"POST /api/games/{game_id}/move"
        answer = self.call("move", {"requested_move": move}, game_id=game_id)
        return _check_move_result(self._field(answer, "move_result", where), f"{where}: move_result")

    def end_turn(self, game_id: int) -> None:
        self.call("end_turn", game_id=game_id)

    def game_status(self, game_id: int) -> GameStatus:
        where = f"GET /api/games/{game_id}/game_status"
        answer = self.call("game_status", game_id=game_id)
        return GameStatus(
            is_my_turn=_check_bool(self._field(answer, "is_my_turn", where), where),
            is_over=_check_bool(self._field(answer, "is_over", where), where),
        )

    def resign(self, game_id: int) -> None:
        self.call("resign", game_id=game_id)

    def error_resign(self, game_id: int) -> None:
        self.call("error_resign", game_id=game_id)

    def winner_color(self, game_id: int) -> bool | None:
        value = self._get("winner_color", "winner_color", _check_opt_bool, game_id=game_id)
        return None if value is None else bool(value)

    def win_reason(self, game_id: int) -> WinReason | None:
        value: WinReason | None = self._get("win_reason", "win_reason", _check_win_reason, game_id=game_id)
        return value

    def game_history(self, game_id: int) -> GameHistory | None:
        where = f"GET /api/games/{game_id}/game_history"
        answer = self.call("game_history", decoder=GameHistoryDecoder, game_id=game_id)
        value = self._field(answer, "game_history", where)
        if value is not None and not isinstance(value, GameHistory):
            raise ProtocolError(f"{where}: game_history is not a GameHistory object: {_short(repr(value))}")
        return value


# --- value checks: each returns the value or raises ProtocolError naming the field ----------------------
def _bad(where: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(f"{where}: expected {expected}, got {_short(repr(value))}")


def _check_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, "a string", value)
    return value


def _check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(where, "true or false", value)
    return value


def _check_opt_bool(value: Any, where: str) -> bool | None:
    return None if value is None else _check_bool(value, where)


def _check_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(where, "an integer", value)
    return value


def _check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, "a number", value)
    return float(value)


def _check_square(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
        raise _bad(where, "a square 0-63", value)
    return value


def _check_opt_square(value: Any, where: str) -> int | None:
    return None if value is None else _check_square(value, where)


def _check_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(where, "a list", value)
    return value


def _check_int_list(value: Any, where: str) -> list[int]:
    return [_check_int(v, f"{where}[{i}]") for i, v in enumerate(_check_list(value, where))]


def _check_str_list(value: Any, where: str) -> list[str]:
    return [_check_str(v, f"{where}[{i}]") for i, v in enumerate(_check_list(value, where))]


def _check_squares(value: Any, where: str) -> list[int]:
    return [_check_square(v, f"{where}[{i}]") for i, v in enumerate(_check_list(value, where))]


def _check_move(value: Any, where: str) -> chess.Move:
    if not isinstance(value, chess.Move):
        raise _bad(where, 'a move {"type": "Move", "value": UCI}', value)
    return value


def _check_opt_move(value: Any, where: str) -> chess.Move | None:
    return None if value is None else _check_move(value, where)


def _check_moves(value: Any, where: str) -> list[chess.Move]:
    return [_check_move(v, f"{where}[{i}]") for i, v in enumerate(_check_list(value, where))]


def _check_board(value: Any, where: str) -> chess.Board:
    if not isinstance(value, chess.Board):
        raise _bad(where, 'a board {"type": "Board", "value": FEN}', value)
    return value


def _check_win_reason(value: Any, where: str) -> WinReason | None:
    if value is not None and not isinstance(value, WinReason):
        raise _bad(where, 'a win reason {"type": "WinReason", "value": NAME} or null', value)
    return value


def _check_sense_result(value: Any, where: str) -> SenseResult:
    out: SenseResult = []
    for i, item in enumerate(_check_list(value, where)):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise _bad(f"{where}[{i}]", "[square, piece or null]", item)
        square = _check_square(item[0], f"{where}[{i}][0]")
        piece = item[1]
        if piece is not None and not isinstance(piece, chess.Piece):
            raise _bad(f"{where}[{i}][1]", 'a piece {"type": "Piece", "value": "p"} or null', piece)
        out.append((square, piece))
    if len(out) > 9:
        raise _bad(where, "at most 9 squares", value)
    return out


def _check_move_result(value: Any, where: str) -> MoveResult:
    items = _check_list(value, where)
    if len(items) != 3:
        raise _bad(where, "[requested move, taken move, capture square]", value)
    return (
        _check_opt_move(items[0], f"{where}[0]"),
        _check_opt_move(items[1], f"{where}[1]"),
        _check_opt_square(items[2], f"{where}[2]"),
    )
