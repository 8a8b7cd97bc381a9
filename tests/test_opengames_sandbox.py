"""The Open Games sandbox over real HTTP on 127.0.0.1: raw ``requests`` agents, real webhook receivers, house
opponents, the dataset validated against its JSON Schema."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from helpers import wait_for

from bridge.adapters.opengames.sandbox import OpenGamesSandbox
from bridge.games.battleship_rules import cell_name, parse_cell

SCHEMA_PATH = (
    Path(__file__).resolve().parent.parent
    / "adapters"
    / "opengames"
    / "sandbox"
    / "dataset_record.schema.json"
)
ALL_CELLS = [cell_name((r, c)) for r in range(10) for c in range(10)]

# A fixed placement for move tests (the dataset's format: cells from the bow).
#    1 2 3 4 5 6 7 8 9 10
# A  C C C C C . . . . .      Carrier A1-A5 (top edge)
# B  B . . . . . . . . .      Battleship B1-E1 (vertical, left edge)
# C  B . . . . . . . . .
# D  B . R R R . . . . .      Cruiser D3-D5
# E  B . . . . . . . . .
# F  . . . . . . . . . .
# G  . . . . . . . . S .      Submarine G9-I9 (vertical)
# H  . . . . . . . . S .
# I  . . . . . . . . S .
# J  . . . . . . . . D D      Destroyer J9-J10 (bottom-right corner)
FLEET = {
    "Carrier": ["A1", "A2", "A3", "A4", "A5"],
    "Battleship": ["B1", "C1", "D1", "E1"],
    "Cruiser": ["D3", "D4", "D5"],
    "Submarine": ["G9", "H9", "I9"],
    "Destroyer": ["J9", "J10"],
}


class Agent:
    """A raw HTTP agent: a requests session with its bearer key."""

    def __init__(self, sandbox: OpenGamesSandbox, name: str, key: str, agent_id: str) -> None:
        self.api = sandbox.api_url
        self.name = name
        self.key = key
        self.id = agent_id
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.api + path, timeout=10, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.http.post(self.api + path, json=body, timeout=10, **kw)

    def delete(self, path: str) -> requests.Response:
        return self.http.delete(self.api + path, timeout=10)

    def state(self, game_id: str) -> dict[str, Any]:
        r = self.get(f"/mcp/game/{game_id}/state")
        assert r.status_code == 200, r.text
        return r.json()

    def shoot(self, game_id: str, cell: Any, **extra: Any) -> requests.Response:
        return self.post(f"/mcp/game/{game_id}/action", {"type": "shoot", "data": cell, **extra})

    def move(self, game_id: str, *moves: dict[str, Any]) -> requests.Response:
        return self.post(f"/mcp/game/{game_id}/action", {"type": "move", "data": list(moves)})


def register(sandbox: OpenGamesSandbox, name: str, description: str = "") -> Agent:
    """Registers through the public API, as a user would."""
    r = requests.post(
        sandbox.api_url + "/agents/register", json={"name": name, "description": description}, timeout=10
    )
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    return Agent(sandbox, name, agent["api_key"], agent["id"])


def start_game(sandbox: OpenGamesSandbox, a: Agent, b: Agent, **kw: Any) -> str:
    game_id = sandbox.create_game(a.id, b.id, **kw)
    assert a.post(f"/mcp/game/join?game_id={game_id}").json()["player_role"] == 1
    assert b.post(f"/mcp/game/join?game_id={game_id}").json()["player_role"] == 2
    return game_id


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture
def og() -> Iterator[OpenGamesSandbox]:
    """A fast sandbox: pairing every 0.1 s, no rate limit, house players without delay, fixed seeds."""
    sandbox = OpenGamesSandbox(
        pairing_interval=0.1, rate_limit=None, house_delay=0.0, turn_timeout=30, seed=7
    )
    sandbox.start()
    yield sandbox
    sandbox.stop()


class Receiver:
    """A webhook receiver on a free loopback port; ``fail_first`` answers 500 to that many POSTs."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.cond:
                    failing = receiver.fail_first > 0
                    if failing:
                        receiver.fail_first -= 1
                    else:
                        receiver.events.append(body)
                    receiver.cond.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def wait(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.events), timeout), self.events

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for r in made:
        r.close()


# --- a whole game through matchmaking -----------------------------------------------------------------------
def test_two_raw_agents_play_a_full_game_through_matchmaking(og: OpenGamesSandbox) -> None:
    alice = register(og, "Alice", "scans the board in order")
    bob = register(og, "Bob", "shoots where the ships are")
    assert re.fullmatch(r"og_[0-9a-f]{64}", alice.key)
    joined = alice.post("/matchmaking/join", {}).json()
    assert joined == {"message": "Joined matchmaking queue", "position": 1, "queue_size": 1}
    assert alice.post("/matchmaking/join", {}).status_code == 409  # already in the queue
    assert bob.post("/matchmaking/join", {}).json()["position"] == 2

    status = wait_for(lambda: (s := alice.get("/matchmaking/status").json())["matched"] and s)
    assert status["in_queue"] is True and status["position"] == 0 and status["game_id"]
    game_id = status["game_id"]
    assert bob.get("/matchmaking/status").json()["game_id"] == game_id

    first = alice.post(f"/mcp/game/join?game_id={game_id}").json()  # Alice waited longest: player 1
    assert first["player_role"] == 1 and first["waiting_for_opponent"] is True
    assert alice.state(game_id)["is_my_turn"] is False  # not started before both joined
    second = bob.post(f"/mcp/game/join?game_id={game_id}").json()
    assert second["player_role"] == 2 and second["opponent_connected"] is True
    assert [g["game_id"] for g in requests.get(og.api_url + "/games/live", timeout=5).json()] == [game_id]

    # Bob knows Alice's true fleet (control API) and sinks it; Alice scans A1, A2, ... in order.
    truth = og.game(game_id)
    targets = [cell_name(tuple(p)) for s in truth["fleets"]["player1"]["ships"] for p in s["positions"]]
    alice_shots = iter(ALL_CELLS)
    turns = 0
    while True:
        sa = alice.state(game_id)
        if sa["game_over"]:
            break
        if sa["is_my_turn"]:
            assert sa["turn"] % 2 == 1  # player 1 plays the odd turns
            r = alice.shoot(game_id, next(alice_shots), reasoning="Scanning in reading order.")
        else:
            sb = bob.state(game_id)
            assert sb["is_my_turn"] and sb["turn"] % 2 == 0
            r = bob.shoot(game_id, targets.pop(0), message="Found you")
            assert r.json()["result"]["hit"] is True  # "A5" is row A, column 5: the [0, 4] of positions
        assert r.status_code == 200 and r.json()["valid"] is True, r.text
        turns += 1
    final_a, final_b = alice.state(game_id), bob.state(game_id)
    assert final_b["game_over"] and final_b["winner"] == 2 and final_b["end_reason"] == "all_ships_sunk"
    assert all(s["is_sunk"] for s in final_a["own_board"]["ships"])
    assert final_b["opponent_board"]["ships_remaining"] == 0
    assert sorted(final_b["opponent_board"]["sunk_ships"]) == sorted(
        ["Carrier", "Battleship", "Cruiser", "Submarine", "Destroyer"]
    )
    assert len(final_b["opponent_board"]["my_hits"]) == 17
    assert final_b["own_board"]["opponent_misses"] == final_a["opponent_board"]["my_misses"]
    assert alice.shoot(game_id, "J10").status_code == 409  # the game is over

    # Results everywhere: stats, leaderboard, games, dataset.
    stats = requests.get(og.api_url + f"/agents/{bob.id}/stats", timeout=5).json()
    assert stats["wins"] == 1 and stats["hit_rate"] == 1.0 and stats["avg_turns_to_win"] == 17
    board = requests.get(og.api_url + "/leaderboard?sort_by=wins", timeout=5).json()
    assert [row["name"] for row in board] == ["Bob", "Alice"] and board[0]["rank"] == 1
    games = requests.get(og.api_url + f"/games?agent_id={alice.id}", timeout=5).json()
    assert games[0]["game_id"] == game_id and games[0]["winner_name"] == "Bob"
    record = requests.get(og.api_url + f"/dataset/{game_id}.json", timeout=5).json()
    validator().validate(record)
    assert record["total_turns"] == turns == 34 and record["result"] == {
        "winner_player": 2,
        "winner_name": "Bob",
        "reason": "all_ships_sunk",
    }
    assert all("reasoning" in t for t in record["turns"] if t["player"] == 1)
    assert all("message_after" in t and "reasoning" not in t for t in record["turns"] if t["player"] == 2)
    assert len(record["messages"]) == 17
    assert bob.get("/matchmaking/status").json()["game_over"] is True
    assert bob.post("/matchmaking/join", {}).status_code == 200  # the game is over: a new place in the queue


def test_matchmaking_pairs_the_two_longest_waiting_agents_fifo(og: OpenGamesSandbox) -> None:
    og.pairing_interval = 3600.0  # pair by hand below
    agents = [register(og, n) for n in ("First", "Second", "Third")]
    time.sleep(0.2)  # the worker's current interval ends
    for a in agents:
        assert a.post("/matchmaking/join", {}).status_code == 200
    info = requests.get(og.api_url + "/matchmaking/queue-info", timeout=5).json()
    assert info["queue_size"] == 3
    [game_id] = requests.post(og.url + "/sandbox/matchmaking/pair", timeout=5).json()["game_ids"]
    assert agents[0].post(f"/mcp/game/join?game_id={game_id}").json()["player_role"] == 1
    assert agents[1].post(f"/mcp/game/join?game_id={game_id}").json()["player_role"] == 2
    third = agents[2].get("/matchmaking/status").json()
    assert third == {
        "in_queue": True,
        "matched": False,
        "game_id": None,
        "position": 1,
        "queue_size": 1,
        "wait_seconds": third["wait_seconds"],
    }
    assert agents[2].post(f"/mcp/game/join?game_id={game_id}").status_code == 403  # not a player there
    assert agents[2].delete("/matchmaking/leave").json()["left"] is True
    assert agents[2].get("/matchmaking/status").json()["in_queue"] is False
    assert agents[2].post("/mcp/game/join?game_id=nope").status_code == 404
    assert agents[2].post("/mcp/game/join").status_code == 422


def test_pairing_worker_runs_every_interval() -> None:
    with OpenGamesSandbox(pairing_interval=0.3, rate_limit=None) as og:
        a, b = register(og, "A"), register(og, "B")
        a.post("/matchmaking/join", {})
        b.post("/matchmaking/join", {})
        started = time.monotonic()
        wait_for(lambda: a.get("/matchmaking/status").json()["matched"], timeout=5)
        assert time.monotonic() - started <= 1.0


# --- agents and auth ----------------------------------------------------------------------------------------
def test_agents_keys_and_auth(og: OpenGamesSandbox) -> None:
    bot = register(og, "MyBot", "My AI agent")
    me = bot.get("/agents/me").json()
    assert me["id"] == bot.id and me["name"] == "MyBot" and "api_key" not in json.dumps(me)
    assert bot.get("/agents/status").json()["is_active"] is True
    api = og.api_url
    assert requests.get(api + f"/agents/{bot.id}", timeout=5).json()["description"] == "My AI agent"
    assert requests.get(api + "/agents/profile?name=mybot", timeout=5).json()["id"] == bot.id
    names = [a["name"] for a in requests.get(api + "/agents?skip=0&limit=100", timeout=5).json()]
    assert {"random", "hunt-target", "MyBot"} <= set(names)
    assert requests.get(api + "/agents?limit=0", timeout=5).status_code == 422
    assert requests.get(api + "/agents/nobody", timeout=5).status_code == 404
    taken = requests.post(api + "/agents/register", json={"name": "mybot"}, timeout=5)
    assert taken.status_code == 409 and "already exists" in taken.json()["detail"]
    assert requests.post(api + "/agents/register", json={"name": ""}, timeout=5).status_code == 422
    bad_json = requests.post(api + "/agents/register", data=b"{nope", timeout=5)
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["detail"]

    for header, why in [
        (None, "missing"),
        ("Basic abc", "Bearer"),
        ("Bearer og_123", "format"),
        ("Bearer og_" + "0" * 64, "no agent"),
    ]:
        r = requests.get(api + "/agents/me", headers={"Authorization": header} if header else {}, timeout=5)
        assert r.status_code == 401 and why in r.json()["detail"]
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(api + "/nothing/here", timeout=5).status_code == 404
    assert requests.post(api + "/agents/me", timeout=5).status_code == 405
    for path in ("/games/types", "/platform/stats", "/mcp/rules", "/mcp/tools", "/mcp/info", "/dataset"):
        assert requests.get(api + path, timeout=5).status_code == 200, path


# --- moves --------------------------------------------------------------------------------------------------
def test_ship_moves_validity(og: OpenGamesSandbox) -> None:
    a, b = register(og, "Mover"), register(og, "Shooter")
    game_id = start_game(og, a, b, placement={"player1": FLEET, "player2": FLEET})

    def fleet() -> dict[str, list[list[int]]]:
        return {s["name"]: s["positions"] for s in a.state(game_id)["own_board"]["ships"]}

    before = fleet()
    assert before["Carrier"] == [[0, 0], [0, 1], [0, 2], [0, 3], [0, 4]]  # A1-A5: row A, columns 1-5
    rejected = [
        ({"ship": "Carrier", "action": "translate"}, "requires a direction"),
        ({"ship": "Carrier", "action": "translate", "direction": "up"}, "leave the board"),
        ({"ship": "Destroyer", "action": "translate", "direction": "right"}, "leave the board"),
        ({"ship": "Carrier", "action": "translate", "direction": "down"}, "overlap Battleship"),
        ({"ship": "Submarine", "action": "rotate"}, "leave the board"),
        ({"ship": "Carrier", "action": "rotate"}, "overlap Battleship"),
        ({"ship": "Zeppelin", "action": "rotate"}, "no ship"),
        ({"ship": "Cruiser", "action": "fly"}, "translate"),
    ]
    for move, why in rejected:
        r = a.move(game_id, move)
        assert r.status_code == 400 and r.json()["valid"] is False and why in r.json()["detail"], (
            move,
            r.text,
        )
    # one invalid ship rejects the whole action; a ship moves at most once
    r = a.move(
        game_id,
        {"ship": "Cruiser", "action": "translate", "direction": "down"},
        {"ship": "Carrier", "action": "translate", "direction": "up"},
    )
    assert r.status_code == 400 and "Carrier" in r.json()["detail"]
    r = a.move(game_id, {"ship": "Cruiser", "action": "rotate"}, {"ship": "Cruiser", "action": "rotate"})
    assert r.status_code == 400 and "at most once" in r.json()["detail"]
    for body in ({"type": "move", "data": []}, {"type": "move", "data": "Carrier up"}, {"type": "jump"}):
        assert a.post(f"/mcp/game/{game_id}/action", body).status_code == 400
    assert fleet() == before and a.state(game_id)["turn"] == 1  # nothing changed, still turn 1

    # moves are applied in order: the Carrier can go down once the Battleship has left B1
    r = a.move(
        game_id,
        {"ship": "Battleship", "action": "translate", "direction": "down"},
        {"ship": "Carrier", "action": "translate", "direction": "down"},
        {"ship": "Cruiser", "action": "rotate"},
    )
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    moved = {m["name"]: m["positions"] for m in r.json()["result"]["moved_ships"]}
    expected = {
        "Battleship": [[2, 0], [3, 0], [4, 0], [5, 0]],  # C1-F1
        "Carrier": [[1, 0], [1, 1], [1, 2], [1, 3], [1, 4]],  # B1-B5
        "Cruiser": [[3, 2], [4, 2], [5, 2]],  # rotated about its bow D3: D3-F3
    }
    assert moved == expected
    after = fleet()
    assert {k: after[k] for k in expected} == expected and after["Destroyer"] == before["Destroyer"]
    state = b.state(game_id)
    assert state["is_my_turn"] and state["turn"] == 2
    assert state["opponent_board"]["my_hits"] == [] and state["own_board"]["opponent_misses"] == []


def test_moves_of_hit_ships_and_actions_view(og: OpenGamesSandbox) -> None:
    a, b = register(og, "P1"), register(og, "P2")
    game_id = start_game(og, a, b, placement={"player1": FLEET, "player2": FLEET})
    assert b.move(game_id, {"ship": "Cruiser", "action": "rotate"}).status_code == 409  # not B's turn
    assert a.shoot(game_id, "D4").json()["result"] == {
        "hit": True,
        "ship_sunk": False,
        "ship_sunk_name": None,
    }
    ships = {s["name"]: s for s in b.state(game_id)["own_board"]["ships"]}
    assert ships["Cruiser"]["hits"] == [[3, 3]] and ships["Cruiser"]["can_move"] is False
    assert ships["Carrier"]["can_move"] is True
    actions = b.get(f"/mcp/game/{game_id}/actions").json()
    assert actions["can_shoot"] and actions["can_move"]
    movable = {s["name"]: s for s in actions["movable_ships"]}
    assert "Cruiser" not in movable
    assert movable["Destroyer"]["directions"] == ["left"] and movable["Destroyer"]["can_rotate"] is False
    assert movable["Carrier"]["can_rotate"] is False  # it would cross the Battleship
    r = b.move(game_id, {"ship": "Cruiser", "action": "translate", "direction": "up"})
    assert r.status_code == 400 and "has been hit" in r.json()["detail"]
    assert a.get(f"/mcp/game/{game_id}/actions").json()["can_shoot"] is False
    assert b.shoot(game_id, "A1").json()["result"]["hit"] is True
    assert a.shoot(game_id, "D4").status_code == 400  # a hit cell cannot be shot again
    assert a.shoot(game_id, "K1").status_code == 400 and a.shoot(game_id, 5).status_code == 400
    # a missed cell can be shot again (a ship may have moved there)
    assert a.shoot(game_id, "F6").json()["result"]["hit"] is False
    assert (
        b.move(game_id, {"ship": "Destroyer", "action": "translate", "direction": "left"}).status_code == 200
    )
    assert a.shoot(game_id, "F6").json()["valid"] is True
    view = b.state(game_id)["own_board"]
    assert view["opponent_misses"] == [[5, 5], [5, 5]] and view["opponent_hits"] == [[3, 3]]


def test_ship_moves_can_be_switched_off() -> None:
    with OpenGamesSandbox(ship_moves=False, rate_limit=None) as og:
        a, b = register(og, "A"), register(og, "B")
        game_id = start_game(og, a, b)
        assert all(s["can_move"] is False for s in a.state(game_id)["own_board"]["ships"])
        r = a.move(game_id, {"ship": "Destroyer", "action": "rotate"})
        assert r.status_code == 400 and "not enabled" in r.json()["detail"]


# --- timeouts -----------------------------------------------------------------------------------------------
def test_turn_timeout_forfeits_the_game() -> None:
    with OpenGamesSandbox(turn_timeout=0.4, rate_limit=None) as og:
        a, b = register(og, "Slow"), register(og, "Quick")
        game_id = start_game(og, a, b)
        state = a.state(game_id)
        assert state["turn_timeout_seconds"] == 0.4 and state["turn_elapsed_seconds"] < 0.4
        started = time.monotonic()
        final = wait_for(lambda: (s := b.state(game_id))["game_over"] and s, timeout=5)
        assert 0.35 <= time.monotonic() - started <= 1.5
        assert final["winner"] == 2 and final["end_reason"] == "timeout" and final["winner_name"] == "Quick"
        r = a.shoot(game_id, "A1")
        assert r.status_code == 409 and "over" in r.json()["detail"]
        record = requests.get(og.api_url + f"/dataset/{game_id}.json", timeout=5).json()
        validator().validate(record)
        assert record["result"]["reason"] == "timeout" and record["total_turns"] == 0

        # a matched player who never joins forfeits to one who did; a game nobody joined is abandoned
        c, d = register(og, "Joiner"), register(og, "Absent")
        joined_game = og.create_game(c.id, d.id)
        nobody_game = og.create_game(c.id, d.id)
        c.post(f"/mcp/game/join?game_id={joined_game}")
        wait_for(lambda: c.state(joined_game)["game_over"], timeout=5)
        assert c.state(joined_game)["winner"] == 1
        wait_for(lambda: og.game(nobody_game)["status"] == "abandoned", timeout=5)
        assert requests.get(og.api_url + f"/dataset/{nobody_game}.json", timeout=5).status_code == 404


def test_control_api_forces_a_timeout(og: OpenGamesSandbox) -> None:
    a, b = register(og, "A"), register(og, "B")
    game_id = start_game(og, a, b)
    assert a.shoot(game_id, "A1").status_code == 200
    r = requests.post(og.url + f"/sandbox/games/{game_id}/timeout", timeout=5)
    assert r.status_code == 200 and r.json()["winner_player"] == 1  # B was to move
    assert requests.post(og.url + f"/sandbox/games/{game_id}/timeout", timeout=5).status_code == 409


# --- webhooks -----------------------------------------------------------------------------------------------
def test_webhooks_are_delivered_with_the_token(
    og: OpenGamesSandbox, receiver_factory: Callable[..., Receiver]
) -> None:
    hook_a, hook_b = receiver_factory(), receiver_factory(fail_first=1)  # B's first delivery fails once
    a, b = register(og, "HookA"), register(og, "HookB")
    for agent, hook, token in ((a, hook_a, "secret-a"), (b, hook_b, "secret-b")):
        r = agent.post(
            "/webhooks/register", {"webhook_url": hook.url, "webhook_token": token, "endpoint_type": "agent"}
        )
        assert r.status_code == 200 and r.json()["webhook_url"] == hook.url
        info = agent.get("/webhooks/me").json()
        assert info["registered"] is True and token not in json.dumps(info)
    assert a.post("/webhooks/register", {"webhook_url": "ftp://x", "webhook_token": "t"}).status_code == 422
    assert a.post("/webhooks/register", {"webhook_url": hook_a.url}).status_code == 422

    a.post("/matchmaking/join", {})
    b.post("/matchmaking/join", {})
    hook_a.wait(lambda ev: any(e["event"] == "match_found" for e in ev))
    hook_b.wait(lambda ev: any(e["event"] == "match_found" for e in ev))
    found = hook_a.events[0]
    assert found["token"] == "secret-a" and found["opponent_name"] == "HookB"
    game_id = found["game_id"]
    a.post(f"/mcp/game/join?game_id={game_id}")
    b.post(f"/mcp/game/join?game_id={game_id}")
    hook_a.wait(lambda ev: any(e["event"] == "your_turn" for e in ev))
    assert next(e for e in hook_a.events if e["event"] == "your_turn") == {
        "event": "your_turn",
        "game_id": game_id,
        "turn": 1,
        "token": "secret-a",
    }
    a.shoot(game_id, "A1")
    hook_b.wait(lambda ev: any(e["event"] == "your_turn" for e in ev))
    assert next(e for e in hook_b.events if e["event"] == "your_turn")["turn"] == 2
    assert all(e["token"] == "secret-b" for e in hook_b.events)
    og.force_timeout(game_id)  # B forfeits
    hook_a.wait(lambda ev: any(e["event"] == "game_over" for e in ev))
    hook_b.wait(lambda ev: any(e["event"] == "game_over" for e in ev))
    over_a = next(e for e in hook_a.events if e["event"] == "game_over")
    over_b = next(e for e in hook_b.events if e["event"] == "game_over")
    assert over_a["you_won"] is True and over_a["winner_id"] == a.id and over_a["winner_name"] == "HookA"
    assert over_b["you_won"] is False and over_b["token"] == "secret-b"

    log = requests.get(og.url + "/sandbox/webhooks", timeout=5).json()
    assert "secret" not in json.dumps(log)
    retried = next(e for e in log if e["agent_id"] == b.id and e["event"] == "match_found")
    assert retried["delivered"] is True and retried["attempts"] == 2
    # removed: no more deliveries
    assert b.delete("/webhooks/me").json()["removed"] is True
    assert b.get("/webhooks/me").json()["registered"] is False
    count = len(hook_b.events)
    b.post("/matchmaking/join", {})
    a.post("/matchmaking/join", {})
    hook_a.wait(lambda ev: sum(e["event"] == "match_found" for e in ev) == 2)
    time.sleep(0.2)
    assert len(hook_b.events) == count


# --- spectators ---------------------------------------------------------------------------------------------
def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_spectate_shows_no_ship_positions(og: OpenGamesSandbox) -> None:
    a, b = register(og, "Seen"), register(og, "Watched")
    game_id = start_game(og, a, b, placement={"player1": FLEET, "player2": FLEET})
    a.shoot(game_id, "A1", reasoning="Corner first.")
    b.move(game_id, {"ship": "Destroyer", "action": "translate", "direction": "left"})
    a.shoot(game_id, "E5")
    api = og.api_url
    views = [
        requests.get(api + f"/games/{game_id}/spectate", timeout=5).json(),
        requests.get(api + f"/games/{game_id}", timeout=5).json(),
        requests.get(api + "/games/live", timeout=5).json(),
    ]
    for view in views:
        keys = _keys(view)
        assert not keys & {"positions", "ships", "fleets", "initial_placement", "moves", "seed"}, keys
        text = json.dumps(view)
        assert "#" not in text  # board_ascii draws no ship
        assert "Destroyer" not in text  # which ship moved stays hidden
    spectate = views[0]
    assert spectate["boards"]["player2"]["hits"] == [[0, 0]]
    assert spectate["boards"]["player2"]["misses"] == [[4, 4]]
    assert spectate["turns"][0]["reasoning"] == "Corner first."
    assert spectate["turns"][1] == {"turn": 2, "player": 2, "action_type": "move", "ships_moved": 1}
    # the player's own state shows the opponent no positions either
    opponent = a.state(game_id)["opponent_board"]
    assert not _keys(opponent) & {"positions", "ships"}
    # the control API has the truth
    truth = og.game(game_id)
    destroyer = next(s for s in truth["fleets"]["player2"]["ships"] if s["name"] == "Destroyer")
    assert destroyer["cells"] == ["J8", "J9"]


# --- dataset ------------------------------------------------------------------------------------------------
def test_dataset_records_validate_and_page(og: OpenGamesSandbox) -> None:
    a, b = register(og, "DataA", "first"), register(og, "DataB", "second")
    ids = []
    for n in range(3):
        game_id = start_game(og, a, b, seed=100 + n, placement={"player2": FLEET})
        assert (
            a.shoot(game_id, "A1", reasoning="Probe.", message="hello" if n == 0 else None).status_code == 200
        )
        r = b.move(
            game_id,
            {"ship": "Destroyer", "action": "translate", "direction": "left"},
            {"ship": "Cruiser", "action": "rotate"},
        )
        assert r.status_code == 200
        og.force_timeout(game_id)  # player 1 forfeits
        ids.append(game_id)
    # a house game too, with moves
    og.add_house("random", moves=True)
    og.add_house("hunt-target", moves=True)
    wait_for(
        lambda: len(requests.get(og.api_url + "/dataset/games.jsonl", timeout=5).text.splitlines()) == 4,
        timeout=30,
    )
    check = validator()
    r = requests.get(og.api_url + "/dataset/games.jsonl", timeout=5)
    assert r.headers["Content-Type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in r.text.splitlines()]
    for record in records:
        check.validate(record)
        assert record["total_turns"] == len(record["turns"])
        assert [t["turn"] for t in record["turns"]] == list(range(1, len(record["turns"]) + 1))
        assert all(t["player"] == 2 - t["turn"] % 2 for t in record["turns"])
        single = requests.get(og.api_url + f"/dataset/{record['game_id']}.json", timeout=5).json()
        assert single == record
    assert [r["game_id"] for r in records[:3]] == ids
    first = records[0]
    assert first["seed"] == 100 and first["agents"]["player1"]["description"] == "first"
    assert first["turns"][0]["reasoning"] == "Probe." and first["turns"][0]["message_after"] == "hello"
    assert first["messages"][0]["message"] == "hello"
    assert "message_after" not in records[1]["turns"][0]
    assert first["initial_placement"] == og.game(ids[0])["initial_placement"]
    assert first["initial_placement"]["player2"] == FLEET  # not where the moves left it
    assert first["turns"][1]["moves"] == [
        {"ship": "Destroyer", "action": "translate", "direction": "left"},
        {"ship": "Cruiser", "action": "rotate"},
    ]
    assert first["result"] == {"winner_player": 2, "winner_name": "DataB", "reason": "timeout"}
    # paging
    page = requests.get(og.api_url + "/dataset/games.jsonl?skip=1&limit=2", timeout=5).text.splitlines()
    assert [json.loads(x)["game_id"] for x in page] == [rec["game_id"] for rec in records[1:3]]
    meta = requests.get(og.api_url + "/dataset", timeout=5).json()
    assert meta["total_games"] == 4 and meta["schema_version"] == "1.0"
    # a game in progress is not in the dataset
    live = start_game(og, a, b)
    assert requests.get(og.api_url + f"/dataset/{live}.json", timeout=5).status_code == 404
    # the schema rejects a broken record
    broken = dict(records[0], turns=[{"turn": 1, "player": 1, "action_type": "shoot"}])
    assert not check.is_valid(broken)


# --- rate limits and faults ---------------------------------------------------------------------------------
def test_the_default_sandbox_has_no_rate_limit_as_the_seed_states_none() -> None:
    with OpenGamesSandbox() as og:
        bot = register(og, "Busy")
        codes = [bot.get("/matchmaking/status").status_code for _ in range(60)]
        assert codes == [200] * 60


def test_polling_too_fast_gets_429_with_retry_after() -> None:
    with OpenGamesSandbox(rate_limit=10.0) as og:
        bot = register(og, "Eager")
        codes = [bot.get("/matchmaking/status") for _ in range(30)]
        ok = [r for r in codes if r.status_code == 200]
        limited = [r for r in codes if r.status_code == 429]
        assert len(ok) == 20 and len(limited) == 10  # 10 requests/s over a 2 s window
        limited_at = time.monotonic()
        retry_after = int(limited[0].headers["Retry-After"])
        assert 1 <= retry_after <= 2 and "too many requests" in limited[0].json()["detail"]
        assert requests.get(og.api_url + "/platform/stats", timeout=5).status_code == 200  # public: no limit
        # a polite client (3 requests a second) is never limited (the limit is per agent); meanwhile, once
        # Retry-After has passed, the eager one is served again
        other = register(og, "Polite")
        served_again = False
        for _ in range(9):
            assert other.get("/matchmaking/status").status_code == 200
            if not served_again and time.monotonic() - limited_at >= retry_after:
                assert bot.get("/matchmaking/status").status_code == 200
                served_again = True
            time.sleep(0.33)  # the polite pace itself: 3 requests a second over a whole 2 s window and more
        assert served_again


def test_fault_injection_and_lost_answers(og: OpenGamesSandbox) -> None:
    a, b = register(og, "A"), register(og, "B")
    r = requests.post(
        og.url + "/sandbox/fail", json={"seconds": 0.5, "status": 429, "retry_after": 3}, timeout=5
    )
    assert r.status_code == 200
    r = a.get("/agents/me")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3" and "detail" in r.json()
    time.sleep(0.6)
    assert a.get("/agents/me").status_code == 200
    og.fail(0.5, 500, match="/matchmaking/")
    assert a.post("/matchmaking/join", {}).status_code == 500
    assert a.get("/agents/me").status_code == 200  # only the matching paths fail
    time.sleep(0.6)
    # a lost answer: the shot is carried out but the connection closes before the answer
    game_id = start_game(og, a, b)
    requests.post(og.url + "/sandbox/drop", json={"match": "/action", "count": 1, "after": True}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        a.shoot(game_id, "C3")
    state = a.state(game_id)
    assert state["is_my_turn"] is False and state["opponent_board"]["my_misses"] + state["opponent_board"][
        "my_hits"
    ] == [[2, 2]]
    # malformed fault rules are refused with what is expected (the parsers the reconchess sandbox shares)
    bad: list[tuple[str, object]] = [("fail", {"seconds": -1}), ("fail", {"seconds": 1, "status": True}),
                                     ("fail_next", {"count": 0}), ("fail_next", {"status": 302}),
                                     ("stall", {"seconds": 601}), ("stall", {"count": 1.5}), ("drop", {"after": 1}),
                                     ("drop", [])]
    for path, body in bad:
        r = requests.post(f"{og.url}/sandbox/{path}", json=body, timeout=5)
        assert r.status_code == 422 and "expected" in r.text, (path, body, r.text)


# --- house opponents ----------------------------------------------------------------------------------------
def test_house_opponents_play_full_games(og: OpenGamesSandbox) -> None:
    # house vs house through matchmaking, ship moves on; and a raw agent against each house player
    for _ in range(2):
        r = requests.post(og.url + "/sandbox/house", json={"kind": "random", "moves": True}, timeout=5)
        assert r.status_code == 200 and r.json()["name"] == "random"
        requests.post(og.url + "/sandbox/house", json={"kind": "hunt-target", "moves": True}, timeout=5)
    raw = register(og, "Raw")
    shots = {}
    for kind in ("random", "hunt-target"):
        assert raw.post("/matchmaking/join", {}).status_code == 200
        og.add_house(kind, moves=False)
        game_id = wait_for(lambda: (s := raw.get("/matchmaking/status").json())["matched"] and s["game_id"])
        raw.post(f"/mcp/game/join?game_id={game_id}")
        cells = iter(ALL_CELLS)
        while not (state := raw.state(game_id))["game_over"]:
            if state["is_my_turn"]:
                assert raw.shoot(game_id, next(cells)).status_code == 200
            else:
                time.sleep(0.005)
        shots[kind] = len(state["own_board"]["opponent_hits"]) + len(state["own_board"]["opponent_misses"])
    wait_for(lambda: len(requests.get(og.api_url + "/games?limit=10", timeout=5).json()) == 4, timeout=30)
    games = requests.get(og.api_url + "/games?limit=10", timeout=5).json()
    assert all(g["end_reason"] == "all_ships_sunk" for g in games)
    house_games = [
        g for g in games if {g["player1"]["name"], g["player2"]["name"]} == {"random", "hunt-target"}
    ]
    assert len(house_games) == 2
    records = [
        requests.get(og.api_url + f"/dataset/{g['game_id']}.json", timeout=5).json() for g in house_games
    ]
    check = validator()
    for record in records:
        check.validate(record)
        assert all(t.get("reasoning") for t in record["turns"])  # house players explain every action
    hunter_moves = [
        t
        for rec in records
        for t in rec["turns"]
        if t["action_type"] == "move" and rec["agents"][f"player{t['player']}"]["name"] == "hunt-target"
    ]
    assert hunter_moves, "hunt-target with ship moves never moved a ship"
    # the hunter targets around its hits: it needs far fewer shots than random
    stats = {
        k: requests.get(og.api_url + "/agents/profile?name=" + k, timeout=5).json()
        for k in ("random", "hunt-target")
    }
    assert stats["hunt-target"]["hit_rate"] > stats["random"]["hit_rate"]
    assert shots["hunt-target"] < shots["random"]  # the hunter needed fewer shots at the raw agent's fleet


# --- persistence and the command ----------------------------------------------------------------------------
def test_data_dir_keeps_agents_and_dataset(tmp_path: Path) -> None:
    with OpenGamesSandbox(data_dir=tmp_path, rate_limit=None) as og:
        a, b = register(og, "Keeper"), register(og, "Other")
        game_id = start_game(og, a, b)
        og.force_timeout(game_id)
    assert "og_" not in (tmp_path / "agents.json").read_text()  # only key hashes are stored
    with OpenGamesSandbox(data_dir=tmp_path, rate_limit=None) as og:
        again = Agent(og, "Keeper", a.key, a.id)
        assert again.get("/agents/me").json()["id"] == a.id
        assert again.get("/agents/me").json()["losses"] == 1
        record = requests.get(og.api_url + f"/dataset/{game_id}.json", timeout=5).json()
        validator().validate(record)
        assert requests.get(og.api_url + f"/games/{game_id}", timeout=5).json()["winner_name"] == "Other"
        assert len([x for x in og.state.agents.values() if x.name == "random"]) == 1


def test_run_sandbox_serves_until_sigterm() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "from bridge.adapters.opengames.sandbox import run_sandbox; "
        f"run_sandbox('127.0.0.1', {port}, agents=['Demo'], pairing_interval=0.2)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        key = re.search(r"API key (og_[0-9a-f]{64})", first)
        assert key, first
        r = requests.get(
            f"http://127.0.0.1:{port}/api/v1/agents/me",
            headers={"Authorization": f"Bearer {key.group(1)}"},
            timeout=5,
        )
        assert r.json()["name"] == "Demo"
        assert requests.get(f"http://127.0.0.1:{port}/sandbox", timeout=5).json()["sandbox"] == "opengames"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_cells_follow_board_ascii(og: OpenGamesSandbox) -> None:
    a, b = register(og, "Ascii"), register(og, "Other")
    game_id = start_game(og, a, b, placement={"player1": FLEET})
    rows = a.state(game_id)["board_ascii"].split("\n")
    assert rows[0] == " 1 2 3 4 5 6 7 8 9 10"
    assert rows[1] == "A # # # # # . . . . ."
    assert rows[10] == "J . . . . . . . . # #"
    for name, cells in FLEET.items():
        assert [list(parse_cell(c)) for c in cells] == next(
            s["positions"] for s in a.state(game_id)["own_board"]["ships"] if s["name"] == name
        )
