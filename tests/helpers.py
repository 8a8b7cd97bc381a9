"""Helpers shared by test files (``from helpers import wait_for``): waiting on a condition, and the OGS sandbox's
control API as the Go tests use it. Fixtures belong in conftest.py; plain functions here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import requests

if TYPE_CHECKING:
    from bridge.adapters.ogs.sandbox import SandboxServer

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float = 10.0, what: str = "condition",
             step: float = 0.02) -> T:
    """Wait until ``predicate()`` is true and return its value; fail naming ``what`` after ``timeout`` seconds.
    For state that nothing announces (a file, another process, a server's state behind HTTP): the poll is the
    event. Where something can be waited on directly (a threading.Event, a queue, a process's exit), wait on it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


# --- the OGS sandbox's control API ----------------------------------------------------------------------------
BYOYOMI_FAST = {"system": "byoyomi", "time_control": "byoyomi", "speed": "live", "main_time": 120,
                "period_time": 10, "periods": 3, "pause_on_weekends": False}


def api(sandbox: SandboxServer, method: str, path: str, **kw: Any) -> Any:
    """One call to the sandbox's HTTP API; fails the test on an error status."""
    r = requests.request(method, f"{sandbox.url}{path}", timeout=10, **kw)
    assert r.status_code < 300, f"{method} {path} -> {r.status_code} {r.text}"
    return r.json()


def challenge(sandbox: SandboxServer, target: str, challenger: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """A 9x9 unranked japanese challenge (komi 6.5, byo-yomi 120 s + 3 x 10 s unless ``time_control`` says
    otherwise) from ``challenger`` (``{"user": NAME}`` or ``{"house": ...}``) to the bot ``target``."""
    body: dict[str, Any] = {"target": target, "challenger": challenger, "width": 9, "height": 9,
                            "rules": "japanese", "komi": 6.5, "ranked": False, "handicap": 0,
                            "time_control": BYOYOMI_FAST}
    body.update(settings)
    result: dict[str, Any] = api(sandbox, "POST", "/sandbox/challenges", json=body)
    return result


def sandbox_game(sandbox: SandboxServer, game_id: Any) -> dict[str, Any] | None:
    """The sandbox's view of a game, None while it does not exist (the bot has not accepted the challenge yet)."""
    r = requests.get(f"{sandbox.url}/sandbox/games/{game_id}", timeout=10)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    game: dict[str, Any] = r.json()
    return game


def wait_finished(sandbox: SandboxServer, game_id: Any, timeout: float = 240.0) -> dict[str, Any]:
    """The game once the sandbox says it is finished."""
    last: dict[str, Any] = {}

    def finished() -> dict[str, Any] | None:
        game = sandbox_game(sandbox, game_id)
        if game is not None:
            last.update(game)
        return game if game is not None and game.get("phase") == "finished" else None

    try:
        return wait_for(finished, timeout, f"game {game_id} to finish", step=0.1)
    except AssertionError:
        raise AssertionError(f"game {game_id} did not finish within {timeout:g} s: phase {last.get('phase')}, "
                             f"{len(last.get('moves', []))} moves") from None
