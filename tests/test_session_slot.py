"""The Go session reads its inbox as a slot (bridge/slot.py): the newest snapshot by version, the other events in
order. Unit tests of one session, not started (its steps are called directly), with a scripted stand-in for the
player (no engine process, no socket, no thread, no sleep)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_go_faults import RecordingActions, _config_text, _state

from bridge.config import load_config_text
from bridge.events import ChatReceived, StateUpdate, UndoRequested
from bridge.games.gotypes import GoResult, GoState, Move
from bridge.session import GameSession, SlotPool


class ScriptedPlayer:
    """Answers genmove with ``move``; ``during`` runs inside genmove (what arrives while the engine thinks)."""

    aborted = None
    engine = None
    restarts = 0
    start_failed = False

    def __init__(self, move: Move, during: Callable[[], None] = lambda: None) -> None:
        self.move, self.during = move, during
        self.asked: list[GoState] = []
        self.invalidated = 0

    def genmove(self, state: GoState) -> list[Move]:
        self.asked.append(state)
        self.during()
        return [self.move]

    def invalidate(self) -> None:
        self.invalidated += 1

    def abort(self, why: str) -> None:
        pass

    def close(self) -> None:
        pass


OPENED: list[GameSession] = []


@pytest.fixture(autouse=True)
def _close_transcripts() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().transcript.close()


def session_with(tmp_path: Path, player: ScriptedPlayer, go: str = "{}") -> tuple[GameSession, RecordingActions]:
    config = load_config_text(_config_text(tmp_path, [sys.executable, "-c", "pass"], go=go))
    actions = RecordingActions()
    session = GameSession("g1", "black", actions, config, server="test", slots=SlotPool(1))
    session.player = player  # type: ignore[assignment]
    session._greeted = True
    OPENED.append(session)
    return session, actions


def step(session: GameSession) -> GoState | None:
    """One turn of the session's loop: the newest snapshot, handled."""
    state = session._next_state(0.0)
    if state is not None:
        session.state = state
        session._handle(state)
    return state


def plays(actions: RecordingActions) -> list[Any]:
    return [arg for what, arg in actions.calls if what == "play"]


def test_only_the_newest_snapshot_is_handled_and_each_only_once(tmp_path: Path) -> None:
    player = ScriptedPlayer((2, 2))
    session, actions = session_with(tmp_path, player)
    for moves in ((), ((4, 4),), ((4, 4), (3, 3))):  # three snapshots before the session looks
        session.post(StateUpdate(_state(moves)))
    assert step(session) == _state(((4, 4), (3, 3)))
    assert [len(s.moves) for s in player.asked] == [2] and plays(actions) == [(2, 2)]
    assert step(session) is None  # the slot's version was taken: nothing new


def test_a_clock_update_while_the_engine_thinks_does_not_drop_its_move(tmp_path: Path) -> None:
    ticked = _state(()).with_(sync_id=0, removal=frozenset())
    session: GameSession

    def clock_only() -> None:
        session.post(StateUpdate(ticked))  # a new version of the same position (here: the same snapshot again)

    player = ScriptedPlayer((2, 2), clock_only)
    session, actions = session_with(tmp_path, player)
    session.post(StateUpdate(_state(())))
    step(session)
    assert plays(actions) == [(2, 2)]


def test_a_changed_game_while_the_engine_thinks_drops_its_move_and_is_handled_next(tmp_path: Path) -> None:
    session: GameSession
    newer = _state(((4, 4), (3, 3)))

    def opponent_moved_again() -> None:  # a resync shows more moves: the engine's answer is stale
        session.post(StateUpdate(newer))

    player = ScriptedPlayer((2, 2), opponent_moved_again)
    session, actions = session_with(tmp_path, player)
    session.post(StateUpdate(_state(())))
    step(session)
    assert plays(actions) == []
    assert session._next_state(0.0) == newer  # the version comparison left it in the slot for the loop


def test_an_undo_request_while_the_engine_thinks_wins_over_its_move(tmp_path: Path) -> None:
    session: GameSession

    def undo() -> None:
        session.post(UndoRequested(1))

    player = ScriptedPlayer((2, 2), undo)
    session, actions = session_with(tmp_path, player, go="{undo: accept}")
    session.post(StateUpdate(_state(())))
    step(session)
    assert plays(actions) == [] and player.invalidated == 1
    session._next_state(0.0)  # the side channel: the request is answered
    assert ("answer_undo", (True, 1)) in actions.calls


def test_side_events_are_handled_in_order_and_a_finished_game_is_not_replaced(tmp_path: Path) -> None:
    player = ScriptedPlayer((2, 2))
    session, _ = session_with(tmp_path, player)
    over = _state(((4, 4),), phase="finished", result=GoResult("white", "Resignation", "W+R"))
    session.post(ChatReceived("opp", "first"))
    session.post(StateUpdate(over))
    session.post(ChatReceived("opp", "second"))
    session.post(StateUpdate(_state(((4, 4),))))  # in play, after the end: stale
    assert session._next_state(0.0) == over
    session.transcript.close()
    text = session.transcript_path.read_text()
    assert text.index("chat from opp: first") < text.index("chat from opp: second")
    assert player.asked == []
