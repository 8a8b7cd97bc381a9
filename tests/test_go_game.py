"""Go on the one game loop (bridge/games/go_game.py through bridge/session.py): unit tests of one session with a
scripted server (an actions object that answers each move with the next snapshot, as OGS does) and a scripted player
(no engine process, no socket). The session's own thread runs the loop; the tests wait on what it does, never on
fixed sleeps."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from test_go_faults import _config_text

import bridge.games.go_game as go_game
from bridge.config import load_config_text
from bridge.errors import EngineError
from bridge.games.go_events import ActionRejected, ChatReceived, StateUpdate, UndoRequested
from bridge.games.gotypes import GoResult, GoSettings, GoState, Move, Point
from bridge.session import GameSession, SlotPool


def state(moves: tuple[Move, ...] = (), **kw: Any) -> GoState:
    settings = GoSettings(width=9, height=9, komi=6.5, rules="japanese", my_color="black")
    return GoState("g1", settings, moves, to_move="black" if len(moves) % 2 == 0 else "white", **kw)


class ScriptedPlayer:
    """Answers genmove from ``moves`` in turn (an exception in the list is raised); ``during`` runs inside genmove
    (what arrives while the engine thinks)."""

    aborted: str | None = None
    engine = None
    restarts = 0
    start_failed = False
    start_seconds = 0.0
    analyzes = False

    def __init__(self, *moves: Move | Exception, during: Callable[[int], None] = lambda i: None,
                 dead: frozenset[Point] | None = None) -> None:
        self.moves = list(moves)
        self.during = during
        self.dead = dead
        self.asked: list[GoState] = []
        self.invalidated = 0
        self.restarted: list[str] = []
        self.asked_event = threading.Event()

    def genmove(self, st: GoState) -> list[Move]:
        self.asked.append(st)
        self.asked_event.set()
        self.during(len(self.asked))
        answer = self.moves.pop(0) if self.moves else None
        if isinstance(answer, Exception):
            raise answer
        return [answer]

    def dead_stones(self, st: GoState) -> frozenset[Point] | None:
        self.asked.append(st)
        return self.dead

    def hang_limit(self, budget: float) -> float:
        return budget

    def invalidate(self) -> None:
        self.invalidated += 1

    def restart(self, why: str) -> None:
        self.restarted.append(why)

    def abort(self, why: str) -> None:
        self.aborted = why

    def close(self) -> None:
        pass


class ScriptedServer:
    """The adapter's actions for one game: a move is answered with the next snapshot (unless ``drop`` says to lose
    it, or ``refuse`` to refuse it); the opponent answers with ``replies`` in turn; every call is recorded."""

    def __init__(self, replies: list[Move] | None = None) -> None:
        self.session: GameSession | None = None
        self.current = state()
        self.replies = list(replies or [])
        self.calls: list[tuple[str, Any]] = []
        self.drop = 0
        self.refuse = 0
        self.lock = threading.Lock()

    def post(self, st: GoState) -> None:
        self.current = st
        assert self.session is not None
        self.session.post(StateUpdate(st))

    def play(self, move: Move) -> None:
        with self.lock:
            self.calls.append(("play", move))
        assert self.session is not None
        if self.refuse:
            self.refuse -= 1
            self.session.post(ActionRejected("not your turn"))
            return
        if self.drop:
            self.drop -= 1
            return
        after = state((*self.current.moves, move), sync_id=self.current.sync_id)
        self.post(after)
        if self.replies:
            self.post(state((*after.moves, self.replies.pop(0)), sync_id=after.sync_id))

    def _add(self, what: str, arg: Any = None) -> None:
        with self.lock:
            self.calls.append((what, arg))

    def resign(self) -> None:
        self._add("resign")
        self.post(self.current.with_(phase="finished", result=GoResult("white", "Resignation", "W+R")))

    def cancel(self) -> None:
        self._add("cancel")

    def set_removal(self, stones: Any, removed: bool) -> None:
        self._add("set_removal", (frozenset(stones), removed))

    def accept_removal(self, stones: frozenset[Point]) -> None:
        self._add("accept_removal", stones)

    def answer_undo(self, accept: bool, move_number: int) -> None:
        self._add("answer_undo", (accept, move_number))

    def chat(self, body: str, channel: str = "main") -> None:
        self._add("chat", body)

    def plays(self) -> list[Move]:
        with self.lock:
            return [arg for what, arg in self.calls if what == "play"]


SESSIONS: list[GameSession] = []


@pytest.fixture(autouse=True)
def _stop_sessions() -> Iterator[None]:
    yield
    while SESSIONS:
        s = SESSIONS.pop()
        s.stop()
        s.join(10)
        assert not s.is_alive()


def session_with(tmp_path: Path, player: ScriptedPlayer, server: ScriptedServer, go: str = "{}",
                 start: bool = True) -> GameSession:
    config = load_config_text(_config_text(tmp_path, [sys.executable, "-c", "pass"], go=go))
    session = GameSession("g1", "black", server, config, server="test", slots=SlotPool(1))
    session.player = player
    server.session = session
    SESSIONS.append(session)
    if start:
        session.start()
    return session


def finish(server: ScriptedServer, session: GameSession) -> str:
    server.post(server.current.with_(phase="finished", result=GoResult("black", "Resignation", "B+R")))
    session.join(10)
    assert session.finished
    return session.transcript_path.read_text()


def test_only_the_newest_snapshot_is_decided_and_each_position_once(tmp_path: Path) -> None:
    server = ScriptedServer()
    player = ScriptedPlayer((2, 2))
    session = session_with(tmp_path, player, server, start=False)
    for moves in ((), ((4, 4),), ((4, 4), (3, 3))):  # three snapshots before the game looks
        server.post(state(moves))
    session.start()
    wait_for(lambda: server.plays() == [(2, 2)], 10, "the move")
    server.post(server.current.with_(sync_id=1))  # a resync showing the same position: nothing to decide
    finish(server, session)
    assert [len(s.moves) for s in player.asked] == [2] and server.plays() == [(2, 2)]


def test_a_clock_update_while_the_engine_thinks_keeps_its_move(tmp_path: Path) -> None:
    server = ScriptedServer(replies=[(5, 5)])
    player = ScriptedPlayer((2, 2), (3, 3), during=lambda i: server.post(server.current.with_()) if i == 1 else None)
    session = session_with(tmp_path, player, server)
    server.post(state())
    wait_for(lambda: server.plays() == [(2, 2), (3, 3)], 10, "both moves")
    finish(server, session)


def test_a_changed_game_while_the_engine_thinks_drops_its_move_and_decides_again(tmp_path: Path) -> None:
    server = ScriptedServer()
    newer = state(((4, 4), (3, 3)))
    player = ScriptedPlayer((2, 2), (6, 6), during=lambda i: server.post(newer) if i == 1 else None)
    session = session_with(tmp_path, player, server)
    server.post(state())
    wait_for(lambda: server.plays() == [(6, 6)], 10, "the move on the newer position")
    text = finish(server, session)
    assert [len(s.moves) for s in player.asked] == [0, 2]
    assert "the game changed while the engine thought; the engine decision is dropped" in text


def test_an_undo_request_while_the_engine_thinks_wins_over_its_move(tmp_path: Path) -> None:
    server = ScriptedServer()
    assert_session: list[GameSession] = []
    player = ScriptedPlayer((2, 2), during=lambda i: assert_session[0].post(UndoRequested(1)) if i == 1 else None)
    session = session_with(tmp_path, player, server, go="{undo: accept}")
    assert_session.append(session)
    server.post(state(((4, 4),)).with_(to_move="black"))
    wait_for(lambda: ("answer_undo", (True, 1)) in server.calls, 10, "the undo answer")
    assert server.plays() == []
    text = finish(server, session)
    assert "an undo request arrived while the engine thought" in text


def test_side_events_in_order_and_a_finished_game_is_not_replaced(tmp_path: Path) -> None:
    server = ScriptedServer()
    player = ScriptedPlayer((2, 2))
    session = session_with(tmp_path, player, server, start=False)
    over = state(((4, 4),), phase="finished", result=GoResult("white", "Resignation", "W+R"))
    session.post(ChatReceived("opp", "first"))
    session.post(StateUpdate(over))
    session.post(ChatReceived("opp", "second"))
    session.post(StateUpdate(state(((4, 4),))))  # in play, after the end: stale
    session.start()
    session.join(10)
    assert session.result_state == over and player.asked == []
    text = session.transcript_path.read_text()
    assert text.index("chat from opp: first") < text.index("chat from opp: second")
    assert (tmp_path / "records" / "test-g1.sgf").exists()


def test_a_move_lost_with_the_connection_is_sent_again_after_the_resync(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_game, "RESEND_GRACE", 0.2)
    server = ScriptedServer()
    server.drop = 1
    player = ScriptedPlayer((2, 2))
    session = session_with(tmp_path, player, server)
    server.post(state())
    wait_for(lambda: server.plays() == [(2, 2)], 10, "the first send")
    server.post(server.current.with_(sync_id=1))  # reconnected: the move is not there
    wait_for(lambda: server.plays() == [(2, 2), (2, 2)], 10, "the move sent again")
    wait_for(lambda: server.current.moves == ((2, 2),), 10, "the move landed")
    text = finish(server, session)
    assert len(player.asked) == 1, "the engine was not asked again"
    assert "move 1: the answer to 'move C7' was lost" in text  # the log names the point as GTP does
    assert "the state shows it was not carried out: sending it again" in text


def test_a_move_that_lands_late_after_the_resync_is_not_sent_twice(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_game, "RESEND_GRACE", 5.0)
    server = ScriptedServer()
    server.drop = 1
    session = session_with(tmp_path, ScriptedPlayer((2, 2)), server)
    server.post(state())
    wait_for(lambda: server.plays() == [(2, 2)], 10, "the first send")
    server.post(server.current.with_(sync_id=1))  # reconnected: the move is not there yet ...
    server.post(state(((2, 2),), sync_id=1))  # ... and then it lands (it was in flight)
    wait_for(lambda: session.loop is not None and session.loop.result.turns == 1, 10, "the move counted as landed")
    finish(server, session)
    assert server.plays() == [(2, 2)]


def test_refusals_resynchronise_the_engine_and_three_at_one_position_give_the_bridges_own_move(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_game, "REJECT_SETTLE", 0.05)
    server = ScriptedServer()
    server.refuse = 3
    player = ScriptedPlayer((2, 2), (3, 3), (4, 4))
    session = session_with(tmp_path, player, server)
    server.post(state())
    wait_for(lambda: len(server.plays()) == 4, 10, "three refused moves and the bridge's own")
    plays = server.plays()
    assert plays[:3] == [(2, 2), (3, 3), (4, 4)]
    assert plays[3] is not None and plays[3] not in plays[:3], plays  # a move (not a pass), none refused before
    assert player.invalidated == 3
    text = finish(server, session)
    assert "the server refused 3 moves here: playing a fallback move instead" in text


def test_when_the_bridges_own_moves_are_refused_too_it_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_game, "REJECT_SETTLE", 0.05)
    server = ScriptedServer()
    server.refuse = 5
    player = ScriptedPlayer((2, 2), (3, 3), (4, 4))
    session = session_with(tmp_path, player, server)
    server.post(state())
    wait_for(lambda: len(server.plays()) == 6, 10, "five refused moves and a pass")
    plays = server.plays()
    assert plays[5] is None and None not in plays[:5], plays
    assert len(set(plays[:5])) == 5, plays  # the bridge's own moves avoid the refused points
    text = finish(server, session)
    assert "the server refused 5 moves here: passing instead" in text


def test_two_passes_wait_for_the_removal_phase_then_play_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_game, "PHASE_WAIT", 0.3)
    server = ScriptedServer()
    player = ScriptedPlayer((2, 2))
    session = session_with(tmp_path, player, server)
    server.post(state(((4, 4), (3, 3), None, None)))
    wait_for(lambda: server.plays() == [(2, 2)], 10, "the move after the wait")
    text = finish(server, session)
    assert "waiting for the stone removal phase" in text


def test_stone_removal_accepts_what_the_engine_agrees_with_and_proposes_otherwise(tmp_path: Path) -> None:
    server = ScriptedServer()
    dead = frozenset({(0, 0)})
    player = ScriptedPlayer(dead=dead)
    session = session_with(tmp_path, player, server)
    moves: tuple[Move, ...] = ((0, 0), (3, 3), None, None)
    server.post(state(moves, phase="stone removal", removal=frozenset({(0, 0), (3, 3)})))
    wait_for(lambda: ("set_removal", (frozenset({(3, 3)}), False)) in server.calls, 10, "the counter-proposal")
    server.post(state(moves, phase="stone removal", removal=dead))
    wait_for(lambda: ("accept_removal", dead) in server.calls, 10, "the acceptance")
    finish(server, session)


def test_an_engine_failure_restarts_and_replays_then_moves(tmp_path: Path) -> None:
    server = ScriptedServer()
    player = ScriptedPlayer(EngineError("engine died"), (2, 2))
    session = session_with(tmp_path, player, server)
    server.post(state())
    wait_for(lambda: server.plays() == [(2, 2)], 10, "the move after the restart")
    finish(server, session)
    assert player.restarted == ["engine died"]


def test_the_restarts_used_up_resign_once_a_move_of_ours_stands(tmp_path: Path) -> None:
    server = ScriptedServer(replies=[(5, 5)])
    player = ScriptedPlayer((2, 2), *[EngineError("engine died")] * 5)
    session = session_with(tmp_path, player, server)
    server.post(state())
    session.join(10)
    assert session.finished and server.plays() == [(2, 2)]
    assert ("resign", None) in server.calls and ("cancel", None) not in server.calls
    assert len(player.restarted) == 3  # engine.max_restarts


def test_no_move_of_ours_yet_cancels_instead_of_resigning(tmp_path: Path) -> None:
    server = ScriptedServer()
    player = ScriptedPlayer(*[EngineError("engine cannot start")] * 5)
    session = session_with(tmp_path, player, server)
    server.post(state())
    wait_for(lambda: ("cancel", None) in server.calls, 10, "the cancel")
    assert ("resign", None) not in server.calls
    finish(server, session)


def test_the_engine_s_answer_is_on_disk_once_the_move_is_sent_even_before_its_echo(tmp_path: Path) -> None:
    """The loop holds the transcript for the whole turn (one flush a turn, after the send): a move whose echo
    never comes must not keep the engine's answer off the disk while the bridge waits for it (up to ECHO_WAIT)."""
    server = ScriptedServer()
    server.drop = 1  # the move is never echoed
    holder: list[GameSession] = []
    player = ScriptedPlayer((3, 3), during=lambda i: holder[0].transcript.write("<<", "= D4 (the answer)",
                                                                                     "engine"))
    session = session_with(tmp_path, player, server, start=False)
    holder.append(session)
    session.start()
    server.post(state())
    wait_for(lambda: server.plays() == [(3, 3)], 10)
    wait_for(lambda: "= D4 (the answer)" in session.transcript_path.read_text(), 5)
    assert session.is_alive()  # still waiting for the echo


def test_only_a_snapshot_that_puts_us_to_move_asks_the_reader_to_hand_over(tmp_path: Path) -> None:
    """The adapter's reader yields to the game it woke (a timer wake-up, ~3 a bot move before) only when the
    snapshot is our move to make: not for a clock tick or our own move's echo (the opponent to move), nor in the
    stone removal phase. At 100 games the three yields cost 15 % of the daemon's CPU (docs/scale_history.md)."""
    server = ScriptedServer()
    session = session_with(tmp_path, ScriptedPlayer(), server, start=False)
    SESSIONS.remove(session)  # never started: nothing to stop
    asked: list[bool] = []
    put = session.inbox.put_snapshot

    def recorded(value: GoState, handoff: bool = False) -> int:
        asked.append(handoff)
        return put(value, handoff)

    session.inbox.put_snapshot = recorded  # type: ignore[method-assign]
    session.post(StateUpdate(state()))  # black (us) to move
    session.post(StateUpdate(state(((4, 4),))))  # white to move
    session.post(StateUpdate(state(((4, 4), (3, 3)), phase="stone removal")))
    session.post(StateUpdate(state(((4, 4), (3, 3)))))
    assert asked == [True, False, False, True]
