"""The OGS move path, one hand-off each way (a unit test of the adapter with a recording transport and host: no
socket, no adapter thread, no sleep): a server event is handled on the thread that receives it, up to the game's
inbox; a session's request is written on the session's thread, at once, in the order the session made them, as
typed messages (no action strings)."""

from __future__ import annotations

import threading

from test_ogs_periodic import START, serving_adapter

from bridge.games.go_events import ActionRejected, StateUpdate


def test_a_server_move_reaches_the_games_inbox_on_the_receiving_thread() -> None:
    adapter, _, host = serving_adapter(1)
    game = next(iter(adapter._games))
    before = len(host.inboxes[game.game_id].events)
    adapter._receive(1, f"game/{game.game_id}/move", {"move_number": 1, "move": [2, 3, 0]}, 0.0, START)
    events = host.inboxes[game.game_id].events[before:]  # no serving loop ran: posted by this very call
    assert [type(e) for e in events] == [StateUpdate]
    assert isinstance(events[0], StateUpdate) and events[0].state.moves == ((2, 3),)


def test_an_old_connections_event_is_dropped_and_an_early_one_waits_for_the_live_connection() -> None:
    adapter, _, host = serving_adapter(1)
    game = next(iter(adapter._games))
    inbox = host.inboxes[game.game_id]
    before = len(inbox.events)
    adapter._receive(0, f"game/{game.game_id}/move", {"move_number": 1, "move": [2, 3, 0]}, 0.0, START)
    assert len(inbox.events) == before and game.moves == []  # generation 0 is gone
    adapter._gen, adapter._live_gen = 2, -1  # generation 2 is connecting (authenticating)
    adapter._receive(2, f"game/{game.game_id}/move", {"move_number": 1, "move": [2, 3, 0]}, 0.0, START)
    assert len(inbox.events) == before and len(adapter._early) == 1


def test_a_sessions_requests_are_written_at_once_on_its_thread_in_its_order() -> None:
    adapter, transport, _ = serving_adapter(1)
    game = next(iter(adapter._games))
    transport.sent.clear()
    actions = game.actions
    done = threading.Event()

    def session() -> None:  # as a session thread does: chat, then the move, then a second chat
        actions.chat("hello")
        actions.play((3, 3))
        actions.chat("bye")
        done.set()

    thread = threading.Thread(target=session)
    thread.start()
    thread.join()
    assert done.is_set()
    assert [c for c, _ in transport.sent] == ["game/chat", "game/move", "game/chat"]
    assert transport.sent[1][1] == {"game_id": game.wire_id, "move": "dd"}


def test_a_move_off_the_board_is_refused_to_the_session_not_sent() -> None:
    adapter, transport, host = serving_adapter(1)
    game = next(iter(adapter._games))
    transport.sent.clear()
    game.actions.play((30, 3))
    assert transport.sent == []
    assert isinstance(host.inboxes[game.game_id].events[-1], ActionRejected)


def test_nothing_is_written_while_no_connection_is_live() -> None:
    adapter, transport, _ = serving_adapter(1)
    game = next(iter(adapter._games))
    transport.sent.clear()
    adapter._live_gen = -1
    game.actions.play((3, 3))
    assert transport.sent == []
