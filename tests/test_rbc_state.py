"""The RBC game state file (bridge/games/rbc_state.py): round trip, atomic writes, and every kind of unreadable
file refused with StateError (never a crash, never a half-read state)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import chess
import pytest

from bridge.games.rbc_state import (
    RbcGameState,
    StateError,
    TurnRecord,
    load_state,
    remove_state,
    save_state,
    state_path,
)


def _state() -> RbcGameState:
    return RbcGameState(
        game_id="42", color=chess.BLACK, opponent="trout", starting_fen=chess.STARTING_FEN, ready=True,
        server={"url": "http://x", "username": "bot", "invitation_id": 7},
        turns=[
            TurnRecord(capture=None, sense=20, sense_result=[(11, chess.Piece.from_symbol("P")), (12, None)],
                       requested=chess.Move.from_uci("e7e5"), taken=chess.Move.from_uci("e7e5"), move="known",
                       ended=True),
            TurnRecord(capture=36, sense=None, sense_result=[], requested=chess.Move.from_uci("d8h4"),
                       taken=chess.Move.from_uci("d8g5"), move="uncertain", ended=True),
            TurnRecord(capture=None, sense=44, sense_result=[(44, chess.Piece.from_symbol("q"))],
                       requested=chess.Move.from_uci("a7a8q"), move="sent"),
        ])


def test_round_trip_and_atomic_write(tmp_path: Path) -> None:
    path = state_path(tmp_path, "reconchess", "42")
    assert path == tmp_path / "state" / "reconchess-42.json"
    save_state(path, _state())
    assert load_state(path) == _state()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    state = _state()
    state.turns[-1].move = "known"
    save_state(path, state)
    assert load_state(path).turns[-1].move == "known"
    remove_state(path)
    remove_state(path)  # twice: no error
    assert not path.exists()


def test_a_failed_write_keeps_the_old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = state_path(tmp_path, "reconchess", "42")
    save_state(path, _state())

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    state = _state()
    state.turns.clear()
    with pytest.raises(OSError):
        save_state(path, state)
    assert load_state(path) == _state()
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def _edit(data: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    target: Any = data
    *keys, last = where.split(".")
    for key in keys:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(("where", "value", "message"), [
    ("version", 2, "state version 2"),
    ("color", "red", "color is 'red'"),
    ("starting_fen", "not a fen", "is not a FEN"),
    ("turns", {}, "turns is not a list"),
    ("turns.0.sense_result.0", [64, None], "64 is not a square"),
    ("turns.0.sense_result.0", [3, "X"], "'X' is not a piece"),
    ("turns.1.taken", "e9e4", "'e9e4' is not a UCI move"),
    ("turns.1.move", "maybe", "move outcome is 'maybe'"),
    ("turns.0.ended", False, "a turn before the last one did not end"),
    ("ready", "yes", "wrong type"),
])
def test_an_edited_file_is_refused(tmp_path: Path, where: str, value: Any, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_edit(_state().to_json(), where, value)))
    with pytest.raises(StateError, match=message):
        load_state(path)


@pytest.mark.parametrize("raw", [b"", b"{\"version\": 1, \"tur", b"\xff\xfe", b"[]", b"null"])
def test_a_torn_or_foreign_file_is_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(raw)
    with pytest.raises(StateError):
        load_state(path)
