"""The OGS adapter's work over all games (status, overdue game data, long pauses, reservation expiry) runs on a
timer, not after every event: the work per event does not grow with the number of games. A unit test of the
adapter's serving step with a recording transport and host (no socket, no thread, no timing assertion)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import bridge.adapters.ogs.clock as clock_module
from bridge.adapters.ogs import client
from bridge.adapters.ogs.client import OgsAdapter
from bridge.adapters.ogs.clock import ClockSync
from bridge.adapters.ogs.config import OgsServerConfig
from bridge.adapters.ogs.transport import Transport
from bridge.events import GameContext
from bridge.games.go_events import GameEvent, StateUpdate

BOT_ID, HUMAN_ID = 42, 77
START = 1000.0  # the fake monotonic clock's start


class RecordingTransport(Transport):
    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, Any]] = []

    def connect(self, url: str, timeout: float) -> None:
        pass

    def send(self, command: str, data: Any) -> None:
        self.sent.append((command, data))

    def request(self, command: str, data: Any, timeout: float) -> Any:
        raise AssertionError("no request expected")

    def close(self) -> None:
        pass

    @property
    def connected(self) -> bool:
        return True


class Inbox:
    finished = False

    def __init__(self) -> None:
        self.events: list[GameEvent] = []

    def post(self, event: GameEvent) -> None:
        self.events.append(event)


class Host:
    def __init__(self) -> None:
        self.inboxes: dict[str, Inbox] = {}

    def open_game(self, game_id: str, my_color: Any, actions: Any) -> Inbox:
        return self.inboxes.setdefault(game_id, Inbox())

    def active_games(self) -> int:
        return len(self.inboxes)

    def can_accept_game(self) -> bool:
        return True

    def run_game(self, game_id: str, target: Callable[[GameContext], None]) -> bool:
        return False


def gamedata(game_id: int) -> dict[str, Any]:
    return {"game_id": game_id, "width": 9, "height": 9, "komi": 6.5, "rules": "japanese", "phase": "play",
            "moves": [], "players": {"black": {"id": BOT_ID, "username": "bot"},
                                     "white": {"id": HUMAN_ID, "username": "human"}},
            "time_control": {"system": "fischer", "speed": "correspondence", "initial_time": 86400,
                             "time_increment": 3600, "max_time": 86400}}


def serving_adapter(games: int) -> tuple[OgsAdapter, RecordingTransport, Host]:
    """An adapter as ``_connect`` leaves it, following ``games`` games that have their game data."""
    server = OgsServerConfig.model_validate({"kind": "ogs", "url": "http://127.0.0.1:1", "username": "bot",
                                             "api_key": {"env": "UNUSED_KEY"}, "max_pause_time": 300,
                                             "ping_interval": 30.0})
    adapter = OgsAdapter(server, None)
    transport, host = RecordingTransport(), Host()
    adapter._transport, adapter._host, adapter._gen, adapter._live_gen, adapter.bot_id = transport, host, 1, 1, BOT_ID
    adapter._last_pong, adapter._next_ping = START, START + 30.0
    for i in range(games):
        adapter._receive(1, "active_game", {"id": 5000 + i, "phase": "play"}, 0.0, START)
        adapter._receive(1, f"game/{5000 + i}/gamedata", gamedata(5000 + i), 0.0, START)
    assert len(host.inboxes) == games
    return adapter, transport, host


def count_walks(adapter: OgsAdapter, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every call of the work over all games (each walks every game or reservation)."""
    calls: Counter[str] = Counter()
    for owner, name in ((adapter._games, "check"), (adapter._games, "resume_long_pauses"),
                        (adapter._games, "status"), (adapter._challenges, "expire")):
        real = getattr(owner, name)

        def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(owner, name, counted)
    return calls


def serve(adapter: OgsAdapter, events: int, now: float) -> None:
    """``events`` events as the reader thread hands them over, each followed by the adapter thread's timer step,
    spread over the games: moves and pongs."""
    games = list(adapter._games)
    for k in range(events):
        if k % 10 == 9:
            adapter._receive(1, "net/pong", {"client": now * 1000 - 20, "server": now * 1000}, now * 1000, now)
        else:
            game = games[k % len(games)]
            adapter._receive(1, f"game/{game.game_id}/move",
                             {"move_number": len(game.moves) + 1, "move": [k % 9, (k // 9) % 9, 0]}, now * 1000, now)
        adapter._tick(now)


def test_the_work_over_all_games_runs_on_the_timer_not_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: dict[int, Counter[str]] = {}
    for games in (1, 500):
        adapter, transport, host = serving_adapter(games)
        calls = count_walks(adapter, monkeypatch)
        adapter._tick(START)  # the first round is due at once
        assert calls == Counter({"check": 1, "resume_long_pauses": 1, "status": 1, "expire": 1})
        assert transport.sent[-1] == ("bot/status", {"ongoing_blitz_count": 0, "ongoing_rapid_count": 0,
                                                     "ongoing_live_count": 0,
                                                     "ongoing_correspondence_count": games})
        serve(adapter, 1000, START + client.PERIODIC_INTERVAL / 2)  # 1000 events within one interval
        assert sum(calls.values()) == 4, f"{games} games: work over all games ran per event: {calls}"
        serve(adapter, 1000, START + client.PERIODIC_INTERVAL)  # the next round is due: it runs once
        assert calls == Counter({"check": 2, "resume_long_pauses": 2, "status": 2, "expire": 2})
        moves = sum(len(g.moves) for g in adapter._games)
        posted = sum(isinstance(e, StateUpdate) for i in host.inboxes.values() for e in i.events)
        assert moves == 1800 and posted == games + 1800, "every move event was handled and posted"
        walks[games] = calls
    assert walks[1] == walks[500]


def test_a_games_own_deadline_brings_the_check_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timer is not the only trigger: a game whose game data is overdue is asked again at its deadline."""
    monkeypatch.setattr(client, "PERIODIC_INTERVAL", 3600.0)
    adapter, transport, _ = serving_adapter(3)
    adapter._tick(START)
    game = next(iter(adapter._games))
    adapter._games.connect(game, START)  # e.g. a reload: game data expected within GAMEDATA_WAIT
    calls = count_walks(adapter, monkeypatch)
    adapter._tick(START + 1.0)
    assert calls["check"] == 0
    transport.sent.clear()
    adapter._tick(START + 15.5)
    assert calls["check"] == 1
    assert transport.sent == [("game/connect", {"game_id": game.wire_id, "chat": True})]


def test_the_clock_sync_median_is_computed_when_a_sample_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    medians = Counter[str]()
    real = statistics.median

    def counted(data: Any) -> Any:
        medians["median"] += 1
        return real(data)

    monkeypatch.setattr(clock_module.statistics, "median", counted)
    sync = ClockSync(samples=3)
    for client_ms, server_ms, now_ms in ((0, 100, 40), (1000, 1120, 1080), (2000, 2050, 2200)):
        sync.add(client_ms, server_ms, now_ms)
    assert medians["median"] == 6  # latency and drift, once per sample
    for _ in range(1000):
        assert sync.latency == 80.0 and sync.drift == -80.0
    assert medians["median"] == 6
