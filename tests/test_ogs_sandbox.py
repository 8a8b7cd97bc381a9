"""The OGS sandbox over real sockets: a raw JSON WebSocket client (websocket-client), a python-socketio client, and
REST with requests.  House opponents are scripted/random, or GNU Go for the GTP house."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import socketio
import websocket

from bridge.adapters.ogs.analysis import analysis_body
from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.adapters.ogs.sandbox.clock import PlayerClock, normalize_time_control
from bridge.games.go_analysis import EngineAnalysis
from bridge.games.gorules import GoBoard

KEY = "sandbox-test-key-77"
Frame = list[Any]


class WsClient:
    """A plain JSON WebSocket client as goban speaks it: ``[command, data, id]`` out, ``[id, data, error]`` and
    ``[event, data]`` in.  Frames are buffered so tests can wait for the one they want."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url.replace("http://", "ws://") + "/", timeout=5)
        self.frames: list[Frame] = []
        self.seen = 0
        self.last_id = 0
        self.gamedata: dict[int, dict[str, Any]] = {}  # the last gamedata read per game

    def send(self, command: str, data: Any = None) -> None:
        self.ws.send(json.dumps([command, data]))

    def request(self, command: str, data: Any = None, timeout: float = 5.0) -> Frame:
        self.last_id += 1
        rid = self.last_id
        self.ws.send(json.dumps([command, data, rid]))
        return self.wait(lambda f: f[0] == rid, timeout, what=f"reply to {command}")

    def _read(self, deadline: float) -> None:
        self.ws.settimeout(max(0.01, deadline - time.monotonic()))
        frame = json.loads(self.ws.recv())
        assert isinstance(frame, list) and frame, f"server sent a non-array frame: {frame!r}"
        if isinstance(frame[0], str) and frame[0].endswith("/gamedata"):
            self.gamedata[int(frame[0].split("/")[1])] = frame[1]
        self.frames.append(frame)

    def wait(self, pred: Callable[[Frame], bool], timeout: float = 5.0, what: str = "frame") -> Frame:
        """The first not-yet-consumed frame matching ``pred`` (frames before it stay available)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, f in enumerate(self.frames):
                if i >= self.seen and pred(f):
                    self.frames.pop(i)
                    return f
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s; got {self.frames[-8:]}")
            try:
                self._read(deadline)
            except websocket.WebSocketTimeoutException:
                continue

    def event(self, name: str, timeout: float = 5.0, where: Callable[[Any], bool] | None = None) -> Any:
        frame = self.wait(lambda f: f[0] == name and (where is None or where(f[1])), timeout, what=f"event {name}")
        return frame[1]

    def move(self, gid: int, n: int, timeout: float = 5.0) -> list[int]:
        """Move number ``n`` (1-based) of a game: from the move event, or from the gamedata if the move was
        made before ``game/connect`` (then no event is sent for it)."""
        known = self.gamedata.get(gid, {}).get("moves", [])
        if len(known) >= n:
            return list(known[n - 1])
        return list(self.event(f"game/{gid}/move", timeout, where=lambda d: d["move_number"] == n)["move"])

    def names(self) -> list[str]:
        return [f[0] for f in self.frames if isinstance(f[0], str)]

    def auth(self, username: str = "bot", key: str = KEY) -> dict[str, Any]:
        reply = self.request("authenticate", {"jwt": "", "bot_username": username, "bot_apikey": key})
        assert len(reply) == 2 and reply[1]["username"] == username, reply
        return dict(reply[1])

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    srv = SandboxServer(port=0, stone_removal_timeout=None).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def bot(server: SandboxServer) -> dict[str, Any]:
    return server.add_bot("bot", KEY)


@pytest.fixture
def clients(server: SandboxServer) -> Iterator[Callable[[], WsClient]]:
    made: list[WsClient] = []

    def make() -> WsClient:
        c = WsClient(server.url)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.close()


def control(server: SandboxServer, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
    r = requests.request(method, server.url + path, timeout=10, **kw)
    assert r.status_code == expect, f"{method} {path} -> {r.status_code} {r.text}"
    return r.json() if r.headers.get("Content-Type", "").startswith("application/json") else r.text


def challenge(server: SandboxServer, **spec: Any) -> dict[str, Any]:
    body = {"target": "bot", "width": 9, "height": 9, "time_control": {"system": "none"}, **spec}
    return dict(control(server, "POST", "/sandbox/challenges", json=body))


def accept(server: SandboxServer, bot: dict[str, Any], challenge_id: int) -> dict[str, Any]:
    # as gtp2ogs does it: form-encoded apikey and bot_id in the body
    return dict(control(server, "POST", f"/api/v1/me/challenges/{challenge_id}/accept",
                        data={"apikey": KEY, "bot_id": str(bot["id"])}))


def start_game(server: SandboxServer, bot: dict[str, Any], c: WsClient, **spec: Any) -> tuple[int, dict[str, Any]]:
    """Challenge the (authenticated) bot, accept by REST, connect to the game; returns (game id, gamedata)."""
    ch = challenge(server, **spec)
    note = c.event("notification", where=lambda n: n.get("type") == "challenge")
    assert note["challenge_id"] == ch["challenge_id"]
    accept(server, bot, ch["challenge_id"])
    active = c.event("active_game")
    assert active["id"] == ch["game_id"] and active["phase"] == "play"
    c.send("game/connect", {"game_id": ch["game_id"], "chat": False})
    return ch["game_id"], c.event(f"game/{ch['game_id']}/gamedata")


def wait_game(server: SandboxServer, gid: int, pred: Callable[[dict[str, Any]], bool], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        g = server.game(gid)
        if pred(g):
            return g
        assert time.monotonic() < deadline, f"game {gid} never reached the expected state: {g}"
        time.sleep(0.05)


# --- authentication, ping ------------------------------------------------------------------------------------
def test_ping_before_auth_and_api_key_authentication(server: SandboxServer, bot: dict[str, Any],
                                                     clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.send("net/ping", {"client": 12345, "drift": 0, "latency": 0})
    before = int(time.time() * 1000)
    pong = c.event("net/pong")
    assert pong["client"] == 12345 and abs(pong["server"] - before) < 2000
    # a move before authenticating is refused with a clear error event
    bad = c.request("authenticate", {"jwt": "", "bot_username": "bot", "bot_apikey": "wrong-key-0"})
    assert bad[1] is None and bad[2]["code"] == "authentication_failed"
    assert "wrong API key" in bad[2]["message"] and "wrong-key-0" not in bad[2]["message"]
    unknown = c.request("authenticate", {"jwt": "", "bot_username": "nobody", "bot_apikey": KEY})
    assert unknown[1] is None and "no bot account" in unknown[2]["message"]
    refused = c.request("bot/config", {"hidden": False})
    assert refused[2]["code"] == "not_authenticated"
    me = c.auth()
    assert me == {"id": bot["id"], "username": "bot"}
    # gtp2ogs without `username` in its config sends the key alone; the reply tells it who it is
    alone = clients().request("authenticate", {"jwt": "", "bot_apikey": KEY})
    assert alone[1] == me
    # bot/config is recorded with the API key scrubbed (gtp2ogs sends its whole config, key included)
    c.send("bot/config", {"_config_version": 2, "apikey": KEY, "username": "bot", "allowed_board_sizes": [9]})
    c.send("bot/status", {"ongoing_blitz_count": 0, "ongoing_rapid_count": 0, "ongoing_live_count": 1,
                          "ongoing_correspondence_count": 0})
    assert c.request("hostinfo", {})[1]["hostname"] == "ogs-sandbox"
    conns = control(server, "GET", "/sandbox/connections")
    mine = next(x for x in conns if x["username"] == "bot" and x["bot_config"])
    assert mine["bot_config"]["apikey"] == "***" and mine["bot_config"]["allowed_board_sizes"] == [9]
    assert mine["bot_status"]["ongoing_live_count"] == 1
    assert KEY not in json.dumps(conns)
    unknown_cmd = c.request("no/such/command", {})
    assert unknown_cmd[2]["code"] == "unknown_command"
    c.ws.send("this is not json")
    assert "not JSON" in c.event("ERROR")


# --- a whole game against a scripted house player ----------------------------------------------------------
def test_challenge_accept_play_illegal_move_and_resign(server: SandboxServer, bot: dict[str, Any],
                                                       clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    ch = challenge(server, challenger={"house": "scripted", "moves": ["cc", "gg", "cg"], "delay": 0.02},
                   challenger_color="black", rules="japanese", ranked=True, komi=None,
                   time_control={"system": "fischer", "speed": "live", "initial_time": 60, "time_increment": 5,
                                 "max_time": 120})
    note = c.event("notification")
    # every field a bot reads from a challenge notification (ogs.md, docs/ogs-wire.md)
    for key in ("id", "challenge_id", "game_id", "user", "rules", "ranked", "handicap", "komi", "width", "height",
                "challenger_color", "time_control", "min_ranking"):
        assert key in note, key
    assert note["type"] == "challenge" and note["game_id"] == ch["game_id"] and note["komi"] is None
    assert note["user"]["username"] == "house-scripted" and note["time_control"]["system"] == "fischer"
    assert note["time_control"]["speed"] == "live" and note["ranked"] is True
    assert control(server, "GET", f"/sandbox/challenges/{ch['challenge_id']}")["state"] == "pending"
    accepted = accept(server, bot, ch["challenge_id"])
    assert accepted["game_id"] == ch["game_id"]
    assert control(server, "GET", f"/sandbox/challenges/{ch['challenge_id']}")["state"] == "accepted"
    active = c.event("active_game")
    gid = active["id"]
    assert active["black"]["username"] == "house-scripted" and active["white"]["id"] == bot["id"]
    c.send("game/connect", {"game_id": gid, "chat": False})
    gd = c.event(f"game/{gid}/gamedata")
    assert gd["game_id"] == gid and gd["komi"] == 6.5 and gd["rules"] == "japanese" and gd["phase"] == "play"
    assert gd["players"]["white"]["id"] == bot["id"] and gd["initial_player"] == "black"
    assert isinstance(gd["clock"], dict) and gd["clock"]["white_time"]["thinking_time"] == 60
    # the house (black) plays cc
    mv = c.move(gid, 1)
    assert mv[:2] == [2, 2] and mv[2] >= 0 and len(mv) == 3
    clock = c.event(f"game/{gid}/clock")
    assert clock["current_player"] == bot["id"] and clock["black_time"]["thinking_time"] <= 65
    # an occupied point: an error event naming the reason, and the game is unchanged
    c.send("game/move", {"game_id": gid, "move": "cc"})
    err = c.event(f"game/{gid}/error")
    assert "occupied" in err
    assert server.game(gid)["move_strings"] == ["cc"]
    # garbage and off-board moves
    c.send("game/move", {"game_id": gid, "move": "zz9"})
    assert "not a move" in c.event(f"game/{gid}/error")
    c.send("game/move", {"game_id": gid, "move": "jj"})
    assert "off the 9x9 board" in c.event(f"game/{gid}/error")
    # a legal move, sent as [x, y]: echoed back with its number; fischer adds the increment (capped)
    c.send("game/move", {"game_id": gid, "move": [4, 4]})
    echo = c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 2)
    assert echo["move"][:2] == [4, 4]
    wclock = c.event(f"game/{gid}/clock", where=lambda d: d["current_player"] != bot["id"])
    assert 60 < wclock["white_time"]["thinking_time"] <= 65
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 3)  # house: gg
    # out of turn: two moves in a row
    c.send("game/move", {"game_id": gid, "move": "ed"})
    c.send("game/move", {"game_id": gid, "move": "ef"})
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 4)
    assert "not your turn" in c.event(f"game/{gid}/error")
    # resign: the finished gamedata, then the phase, then active_game finished
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 5)
    c.send("game/resign", {"game_id": gid})
    final = c.event(f"game/{gid}/gamedata")
    assert final["phase"] == "finished" and final["outcome"] == "Resignation"
    assert final["winner"] == active["black"]["id"] and final["end_time"] > 0
    assert c.event(f"game/{gid}/phase") == "finished"
    assert c.event("active_game", where=lambda a: a["phase"] == "finished")["id"] == gid
    order = [f[0] for f in c.frames]
    g = server.game(gid)
    assert g["score"] == "B+R" and g["winner"] == {"username": "house-scripted", "color": "black",
                                                    "id": active["black"]["id"]}
    assert g["move_strings"] == ["cc", "ee", "gg", "ed", "cg"] and g["moves"][1][:2] == [4, 4]
    assert len(g["errors"]) >= 4 and order  # refused commands are recorded for the tester
    sgf = control(server, "GET", f"/sandbox/games/{gid}/sgf")
    assert sgf.startswith("(;FF[4]GM[1]") and "SZ[9]" in sgf and ";B[cc];W[ee]" in sgf and "RE[B+R]" in sgf
    # the REST view of the game, as OGS's /api/v1/games/ID
    api = control(server, "GET", f"/api/v1/games/{gid}")
    assert api["gamedata"]["outcome"] == "Resignation" and api["white_lost"] is True


def test_reject_records_message_and_details(server: SandboxServer, bot: dict[str, Any],
                                            clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    ch = challenge(server, width=13, height=13)
    note = c.event("notification")
    body = {"delete": True, "message": "This bot only plays on these board sizes: 9x9.",
            "rejection_details": {"rejection_code": "board_size_not_allowed", "details": {"width": 13}},
            "apikey": KEY, "bot_id": bot["id"]}
    r = requests.post(f"{server.url}/api/v1/me/challenges/{note['challenge_id']}", json=body, timeout=5)
    assert r.status_code == 200, r.text
    state = control(server, "GET", f"/sandbox/challenges/{ch['challenge_id']}")
    assert state["state"] == "rejected" and state["message"].startswith("This bot only plays")
    assert state["rejection_details"]["rejection_code"] == "board_size_not_allowed"
    assert c.event("notification", where=lambda n: n["type"] == "delete")["id"] == note["id"]
    # a rejected challenge cannot be accepted; a wrong key is refused
    bad = requests.post(f"{server.url}/api/v1/me/challenges/{ch['challenge_id']}/accept",
                        data={"apikey": "nope-nope", "bot_id": bot["id"]}, timeout=5)
    assert bad.status_code == 401 and "nope-nope" not in bad.text
    gone = requests.post(f"{server.url}/api/v1/me/challenges/{ch['challenge_id']}/accept",
                         data={"apikey": KEY, "bot_id": bot["id"]}, timeout=5)
    assert gone.status_code == 404
    assert control(server, "GET", "/sandbox/games") == []
    # the game id the challenge reserved reads as declined, never started
    stub = control(server, "GET", f"/sandbox/games/{ch['game_id']}")
    assert stub["phase"] == "declined" and stub["moves"] == [] and stub["challenge_id"] == ch["challenge_id"]


# --- passes, stone removal, scoring ------------------------------------------------------------------------
def test_two_passes_stone_removal_then_accept_gives_score(server: SandboxServer, bot: dict[str, Any],
                                                          clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    # the house (white) plays a lone stone in black's area, then passes
    gid, gd = start_game(server, bot, c, width=5, height=5, rules="chinese", komi=0.5, challenger_color="white",
                         challenger={"house": "scripted", "moves": ["ee", "..", ".."], "delay": 0.02})
    assert gd["players"]["black"]["id"] == bot["id"]
    for n, mv in enumerate(["cb", "cc", "cd"]):
        c.send("game/move", {"game_id": gid, "move": mv})
        c.move(gid, 2 * n + 2)
    c.send("game/move", {"game_id": gid, "move": "ca"})
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 7)
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 8)  # house pass
    # playing 'ce' then passing: black wall on column c; white's stone at ee is dead
    c.send("game/move", {"game_id": gid, "move": "ce"})
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 9)
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 10)
    c.send("game/move", {"game_id": gid, "move": ".."})
    last = c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 11)
    assert last["move"][:2] == [-1, -1]
    assert c.event(f"game/{gid}/phase") == "stone removal"
    c.send("game/move", {"game_id": gid, "move": "aa"})
    assert "stone removal" in c.event(f"game/{gid}/error")
    # the bot marks the white stone dead; the house accepts the proposal; the bot accepts the same
    c.send("game/removed_stones/set", {"game_id": gid, "removed": True, "stones": "ee"})
    rs = c.event(f"game/{gid}/removed_stones", where=lambda d: d["all_removed"] == "ee")
    assert rs["removed"] is True
    c.event(f"game/{gid}/removed_stones_accepted", where=lambda d: d["phase"] == "stone removal")
    c.send("game/removed_stones/accept", {"game_id": gid, "stones": "aa", "strict_seki_mode": False})
    assert "differ" in c.event(f"game/{gid}/error")
    c.send("game/removed_stones/accept", {"game_id": gid, "stones": "ee", "strict_seki_mode": False})
    done = c.event(f"game/{gid}/removed_stones_accepted", where=lambda d: d["phase"] == "finished")
    final = c.event(f"game/{gid}/gamedata")
    assert c.event(f"game/{gid}/phase") == "finished"
    # the referee's own count of the same position
    board = GoBoard(5, 5)
    for color, point in [("black", (2, 1)), ("white", (4, 4)), ("black", (2, 2)), ("black", (2, 3)),
                         ("black", (2, 0)), ("black", (2, 4))]:
        board.play(color, point)  # type: ignore[arg-type]
    b, w = board.score(0.5, "chinese", {(4, 4)})
    assert (b, w) == (25.0, 0.5)
    assert final["outcome"] == f"{b - w:g} points" == done["outcome"] == "24.5 points"
    assert final["winner"] == bot["id"] and final["score"]["black"]["total"] == 25.0
    assert final["score"]["white"]["komi"] == 0.5 and final["removed"] == "ee"
    g = server.game(gid)
    assert g["score"] == "B+24.5" and g["score_detail"]["black"]["territory"] == 20
    assert g["removal_accepted"] == {"white": "ee", "black": "ee"}


def test_stone_removal_timeout_scores_automatically(server: SandboxServer, bot: dict[str, Any],
                                                    clients: Callable[[], WsClient]) -> None:
    """gtp2ogs never answers the removal phase: the server scores after stone_removal_timeout."""
    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, width=5, height=5, komi=7.5, challenger_color="white",
                        stone_removal_timeout=0.3, challenger={"house": "scripted", "moves": [], "delay": 0.01})
    c.send("game/move", {"game_id": gid, "move": ".."})
    assert c.event(f"game/{gid}/phase") == "stone removal"
    clock = c.event(f"game/{gid}/clock", where=lambda d: d.get("stone_removal_mode"))
    assert clock["stone_removal_expiration"] > clock["last_move"]
    final = c.event(f"game/{gid}/gamedata", timeout=5)
    assert final["phase"] == "finished" and final["outcome"] == "7.5 points"
    assert final["winner"] != bot["id"]


# --- clocks --------------------------------------------------------------------------------------------------
def test_clock_arithmetic_for_every_system() -> None:
    byo = PlayerClock.initial(normalize_time_control(
        {"system": "byoyomi", "main_time": 10, "period_time": 5, "periods": 3}))
    assert byo.spend(4) and byo.thinking_time == 6 and byo.periods == 3
    assert byo.spend(17) and byo.thinking_time == 0 and byo.periods == 1  # 11 s overtime: two periods gone
    assert byo.spend(4.9) and byo.periods == 1  # within the last period: it restarts
    assert not byo.spend(5.0)  # the last period used up: lost on time
    can = PlayerClock.initial(normalize_time_control(
        {"system": "canadian", "main_time": 2, "period_time": 10, "stones_per_period": 2}))
    assert can.spend(3) and (can.thinking_time, can.block_time, can.moves_left) == (0, 9, 1)
    assert can.spend(4) and (can.block_time, can.moves_left) == (10, 2)  # block done: a fresh block
    assert can.budget() == 10 and not can.spend(10)
    fis = PlayerClock.initial(normalize_time_control(
        {"system": "fischer", "initial_time": 30, "time_increment": 10, "max_time": 35}))
    assert fis.spend(1) and fis.thinking_time == 35  # capped by max_time
    assert fis.spend(20) and fis.thinking_time == 25
    simple = PlayerClock.initial(normalize_time_control({"system": "simple", "per_move": 5}))
    assert simple.budget() == 5 and simple.spend(4.9) and not simple.spend(5) and simple.wire() == 5000
    absolute = PlayerClock.initial(normalize_time_control({"system": "absolute", "total_time": 10}))
    assert absolute.spend(6) and absolute.budget() == 4 and not absolute.spend(4)
    none = PlayerClock.initial(normalize_time_control({"system": "none"}))
    assert none.budget() is None and none.spend(1e9)
    assert normalize_time_control({"system": "byoyomi", "main_time": 600, "period_time": 30,
                                   "periods": 5})["speed"] == "live"
    assert normalize_time_control({"system": "simple", "per_move": 5})["speed"] == "blitz"
    with pytest.raises(ValueError, match="periods"):
        normalize_time_control({"system": "byoyomi", "main_time": 1, "period_time": 1, "periods": 1.5})
    with pytest.raises(ValueError, match="system"):
        normalize_time_control({"system": "hourglass"})


def test_byoyomi_clock_runs_out_on_the_server(server: SandboxServer, bot: dict[str, Any],
                                              clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    # a period of 1 s: the move below lands inside the first period even when the machine is loaded (with 0.5 s it
    # once came 0.35 s late, in the second period)
    tc = {"system": "byoyomi", "speed": "blitz", "main_time": 0.3, "period_time": 1.0, "periods": 2}
    gid, gd = start_game(server, bot, c, challenger_color="white", time_control=tc,
                         challenger={"house": "scripted", "moves": [], "delay": 0.01})
    assert gd["clock"]["black_time"] == {"thinking_time": 0.3, "periods": 2, "period_time": 1.0}
    # move after ~0.45 s: main time gone, ~0.15 s into the first period -> periods stay 2, main time 0
    time.sleep(0.45)  # the clock under test: the move must come after the main time
    c.send("game/move", {"game_id": gid, "move": "ee"})
    clk = c.event(f"game/{gid}/clock", where=lambda d: d["current_player"] != bot["id"])
    assert clk["black_time"]["thinking_time"] == 0 and clk["black_time"]["periods"] == 2
    # now the bot does not answer: 2 x 1 s of overtime later it loses on time
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 2)
    started = time.monotonic()
    final = c.event(f"game/{gid}/gamedata", timeout=5)
    waited = time.monotonic() - started
    assert final["outcome"] == "Timeout" and final["winner"] != bot["id"]
    assert 1.7 < waited < 3.5
    assert server.game(gid)["score"] == "W+T"


def test_pause_resume_from_control_api(server: SandboxServer, bot: dict[str, Any],
                                       clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    tc = {"system": "absolute", "speed": "live", "total_time": 30}
    gid, _ = start_game(server, bot, c, challenger_color="white", time_control=tc,
                        challenger={"house": "scripted", "moves": ["cc"], "delay": 0.01})
    g = control(server, "POST", f"/sandbox/games/{gid}/pause", json={})
    assert g["paused"] and "paused" in g["pause_control"]
    clk = c.event(f"game/{gid}/clock", where=lambda d: "pause" in d)
    assert clk["pause"]["paused"] is True and clk["pause"]["pause_control"]["paused"]["pausing_player_id"] > 0
    c.send("game/move", {"game_id": gid, "move": "ee"})
    assert "paused" in c.event(f"game/{gid}/error")
    time.sleep(0.3)
    control(server, "POST", f"/sandbox/games/{gid}/resume", json={})
    resumed = c.event(f"game/{gid}/clock", where=lambda d: d.get("pause", {}).get("paused") is False)
    # the paused time is not charged: last_move moved forward
    assert resumed["last_move"] >= clk["last_move"] + 250
    c.send("game/move", {"game_id": gid, "move": "ee"})
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 1)
    assert server.game(gid)["clocks"]["black"]["thinking_time"] > 29.5


# --- handicap ------------------------------------------------------------------------------------------------
def test_fixed_handicap_in_initial_state_and_white_moves_first(server: SandboxServer, bot: dict[str, Any],
                                                               clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    gid, gd = start_game(server, bot, c, rules="japanese", handicap=2, challenger_color="white",
                         challenger={"house": "scripted", "moves": ["ee"], "delay": 0.01})
    assert gd["initial_state"]["black"] == "cggc" and gd["initial_player"] == "white"
    assert gd["free_handicap_placement"] is False and gd["komi"] == 0.5 and gd["handicap"] == 2
    assert c.move(gid, 1)[:2] == [4, 4]  # white's move is number 1
    assert server.game(gid)["move_colors"] == ["white"]


def test_free_handicap_black_places_stones_as_moves(server: SandboxServer, bot: dict[str, Any],
                                                    clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    gid, gd = start_game(server, bot, c, rules="chinese", handicap=2, challenger_color="white",
                         challenger={"house": "scripted", "moves": ["ee"], "delay": 0.01})
    assert gd["free_handicap_placement"] is True and gd["initial_state"]["black"] == ""
    assert gd["clock"]["current_player"] == bot["id"]
    c.send("game/move", {"game_id": gid, "move": ".."})
    assert "handicap" in c.event(f"game/{gid}/error")
    c.send("game/move", {"game_id": gid, "move": "cc"})
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 1)
    clk = c.event(f"game/{gid}/clock")
    assert clk["current_player"] == bot["id"]  # still black: the second stone
    c.send("game/move", {"game_id": gid, "move": "gg"})
    third = c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 3)
    assert third["move"][:2] == [4, 4]
    assert server.game(gid)["move_colors"] == ["black", "black", "white"]


def test_house_plays_black_free_handicap_on_star_points(server: SandboxServer, bot: dict[str, Any],
                                                        clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, rules="chinese", handicap=3, challenger_color="black",
                        challenger={"house": "random", "seed": 1, "delay": 0.01})
    for n in (1, 2, 3):
        c.move(gid, n)
    g = server.game(gid)
    assert sorted(g["move_strings"]) == sorted(["gc", "cg", "gg"]) and g["to_move"] == "white"


# --- undo, chat ----------------------------------------------------------------------------------------------
def test_undo_requested_by_house_accept_and_decline(server: SandboxServer, bot: dict[str, Any],
                                                    clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, challenger_color="black",
                        challenger={"house": "scripted", "moves": ["cc", "gg", "cg"], "delay": 0.01})
    c.move(gid, 1)
    control(server, "POST", f"/sandbox/games/{gid}/undo", json={})
    assert c.event(f"game/{gid}/undo_requested") == 1
    c.send("game/undo/accept", {"game_id": gid, "move_number": 1})
    assert c.event(f"game/{gid}/undo_accepted") == 1
    gd = c.event(f"game/{gid}/gamedata")
    assert gd["moves"] == [] and gd["clock"]["current_player"] != bot["id"]
    # the house replays its first move; a second request is declined by simply playing on
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 1)
    control(server, "POST", f"/sandbox/games/{gid}/undo", json={})
    assert c.event(f"game/{gid}/undo_requested") == 1
    c.send("game/move", {"game_id": gid, "move": "ee"})
    assert c.event(f"game/{gid}/undo_canceled") == 1
    g = wait_game(server, gid, lambda g: len(g["move_strings"]) >= 3)
    assert [u["state"] for u in g["undo_requests"]] == ["accepted", "declined"]
    assert g["undo_requests"][0]["requested_by"] == "house-scripted"
    assert g["move_strings"][:3] == ["cc", "ee", "gg"]


def test_game_chat_round_trip(server: SandboxServer, bot: dict[str, Any], clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, challenger_color="black",
                        challenger={"house": "scripted", "moves": [], "delay": 5})
    c.send("game/chat", {"game_id": gid, "type": "main", "move_number": 0, "body": "hello from the bot"})
    line = c.event(f"game/{gid}/chat")
    assert line["channel"] == "main" and line["line"]["body"] == "hello from the bot"
    assert line["line"]["username"] == "bot" and line["line"]["player_id"] == bot["id"]
    c.send("game/chat", {"game_id": gid, "type": "malkovich", "move_number": 0,
                         "body": {"type": "analysis", "name": "pv", "from": 0, "moves": "ddpp"}})
    assert c.event(f"game/{gid}/chat")["line"]["body"]["type"] == "analysis"
    control(server, "POST", f"/sandbox/games/{gid}/chat", json={"body": "hi from the house"})
    assert c.event(f"game/{gid}/chat")["line"]["username"] == "house-scripted"
    assert [x["body"] for x in server.game(gid)["chat"]][::2] == ["hello from the bot", "hi from the house"]


def test_analysis_chat_bodies_are_kept_and_malformed_ones_refused(
        server: SandboxServer, bot: dict[str, Any], clients: Callable[[], WsClient]) -> None:
    """goban's GameChatAnalysisMessage: the sandbox keeps a well-formed analysis body in its chat log (as OGS
    shows it) and refuses one whose shape is wrong, naming what is wrong."""
    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, challenger_color="black",
                        challenger={"house": "scripted", "moves": [], "delay": 5})
    good = analysis_body(EngineAnalysis(((2, 2), None, (6, 6)), 55.25, 1.5, 120), 0)
    c.send("game/chat", {"game_id": gid, "type": "malkovich", "move_number": 0, "body": good})
    line = c.event(f"game/{gid}/chat")["line"]
    assert line["body"] == good and line["channel"] == "malkovich"
    assert good["moves"] == "cc..gg" and good["marks"] == {"circle": "cc"}
    assert good["engine_analysis"] == {"win_rate": 55.25, "score": 1.5, "visits": 120}
    bads: list[tuple[dict[str, Any], str]] = [
        ({"from": 5}, "not a move number"), ({"moves": "ddp"}, "two-letter"),
        ({"engine_analysis": {"score": 1}}, "needs a win_rate"), ({"marks": ["dd"]}, "marks")]
    for bad, why in bads:
        c.send("game/chat", {"game_id": gid, "type": "main", "move_number": 0, "body": good | bad})
        assert why in c.event(f"game/{gid}/error")
    assert [x["body"] for x in server.game(gid)["chat"]] == [good]


# --- reconnects ----------------------------------------------------------------------------------------------
def test_drop_reconnect_replays_active_game_and_gamedata(server: SandboxServer, bot: dict[str, Any],
                                                         clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, challenger_color="white",
                        challenger={"house": "scripted", "moves": ["ee"], "delay": 0.01})
    c.send("game/move", {"game_id": gid, "move": "cc"})
    c.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 2)
    pending = challenge(server)  # a second challenge, not answered
    c.event("notification", where=lambda n: n.get("challenge_id") == pending["challenge_id"])
    assert control(server, "POST", "/sandbox/drop", json={"username": "bot"})["dropped"] == 1
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        for _ in range(50):
            c.ws.settimeout(2)
            c.ws.recv()
    c2 = clients()
    c2.auth()
    assert c2.event("active_game")["id"] == gid
    # the unanswered challenge is sent again, as OGS re-sends pending notifications
    assert c2.event("notification", where=lambda n: n.get("type") == "challenge")["challenge_id"] == \
        pending["challenge_id"]
    c2.send("game/connect", {"game_id": gid})
    gd = c2.event(f"game/{gid}/gamedata")
    assert [m[:2] for m in gd["moves"]] == [[2, 2], [4, 4]] and gd["clock"]["current_player"] == bot["id"]
    c2.send("game/move", {"game_id": gid, "move": "gg"})
    assert c2.event(f"game/{gid}/move", where=lambda d: d["move_number"] == 3)["move"][:2] == [6, 6]


def test_challenge_waits_for_the_bot_to_connect(server: SandboxServer, bot: dict[str, Any],
                                                clients: Callable[[], WsClient]) -> None:
    ch = challenge(server)
    assert server.game(ch["game_id"])["phase"] == "challenge"  # reserved, not started
    c = clients()
    c.auth()
    note = c.event("notification")
    assert note["challenge_id"] == ch["challenge_id"]
    c.send("notification/delete", {"notification_id": note["id"]})
    c.request("hostinfo", {})  # the delete is processed before this reply
    c2 = clients()
    c2.auth()
    c2.request("hostinfo", {})
    time.sleep(0.1)
    assert "notification" not in c2.names()


# --- the legacy transport and the user (OAuth) flow ----------------------------------------------------------
def test_socketio_client_with_oauth_user_flow(server: SandboxServer) -> None:
    server.add_user("human-bot", "pa55word")
    tok = requests.post(f"{server.url}/oauth2/token/", data={
        "grant_type": "password", "username": "human-bot", "password": "pa55word", "client_id": "cid",
        "client_secret": "csecret"}, timeout=5)
    assert tok.status_code == 200, tok.text
    access = tok.json()["access_token"]
    assert tok.json()["refresh_token"]
    bad = requests.post(f"{server.url}/oauth2/token/", data={
        "grant_type": "password", "username": "human-bot", "password": "nope", "client_id": "cid"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    headers = {"Authorization": f"Bearer {access}"}
    cfg = requests.get(f"{server.url}/api/v1/ui/config", headers=headers, timeout=5).json()
    assert cfg["user"]["username"] == "human-bot" and cfg["chat_auth"] and cfg["user_jwt"]
    me = requests.get(f"{server.url}/api/v1/me", headers=headers, timeout=5).json()
    assert me["id"] == cfg["user"]["id"]

    events: dict[str, list[Any]] = {}
    lock = threading.Lock()
    sio = socketio.Client(reconnection=False)

    @sio.on("*")
    def any_event(event: str, data: Any = None) -> None:
        with lock:
            events.setdefault(event, []).append(data)

    def wait_event(name: str, timeout: float = 5) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with lock:
                if events.get(name):
                    return events[name].pop(0)
            time.sleep(0.02)
        raise AssertionError(f"no socket.io event {name}; got {list(events)}")

    sio.connect(server.url, transports=["websocket"], wait_timeout=5)
    try:
        bad_auth = sio.call("authenticate", {"auth": "wrong", "player_id": me["id"], "username": "human-bot"},
                            timeout=5)
        assert isinstance(bad_auth, tuple) and bad_auth[0] is None
        assert bad_auth[1]["code"] == "authentication_failed" and "chat_auth" in bad_auth[1]["message"]
        reply = sio.call("authenticate", {"auth": cfg["chat_auth"], "player_id": me["id"],
                                          "username": "human-bot", "jwt": cfg["user_jwt"]}, timeout=5)
        assert reply == {"id": me["id"], "username": "human-bot"}
        sio.emit("net/ping", {"client": 77, "drift": 0, "latency": 0})
        assert wait_event("net/pong")["client"] == 77
        ch = challenge(server, target="human-bot", challenger_color="black",
                       challenger={"house": "scripted", "moves": ["cc"], "delay": 0.01})
        note = wait_event("notification")
        assert note["challenge_id"] == ch["challenge_id"]
        r = requests.post(f"{server.url}/api/v1/me/challenges/{ch['challenge_id']}/accept", headers=headers,
                          timeout=5)
        assert r.status_code == 200, r.text
        assert wait_event("active_game")["id"] == ch["game_id"]
        gid = ch["game_id"]
        sio.emit("game/connect", {"game_id": gid, "chat": True})
        gd = wait_event(f"game/{gid}/gamedata")
        assert gd["game_id"] == gid
        first = gd["moves"][0] if gd["moves"] else wait_event(f"game/{gid}/move")["move"]
        assert first[:2] == [2, 2]
        sio.emit("game/move", {"game_id": gid, "move": "cc"})
        assert "occupied" in wait_event(f"game/{gid}/error")
        sio.emit("game/move", {"game_id": gid, "move": "dd"})
        assert wait_event(f"game/{gid}/move")["move_number"] == 2
        assert sio.call("game/resign", {"game_id": gid}, timeout=5) is None
        assert wait_event(f"game/{gid}/phase") == "finished"
    finally:
        sio.disconnect()
    assert server.game(ch["game_id"])["outcome"] == "Resignation"


def test_socketio_drop_makes_the_client_reconnect(server: SandboxServer, bot: dict[str, Any]) -> None:
    sio = socketio.Client(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.2)
    connects: list[float] = []
    sio.on("connect", lambda: connects.append(time.monotonic()))
    sio.connect(server.url, transports=["websocket"], wait_timeout=5)
    try:
        assert sio.call("authenticate", {"jwt": "", "bot_username": "bot", "bot_apikey": KEY}, timeout=5)["id"]
        assert control(server, "POST", "/sandbox/drop", json={})["dropped"] == 1
        deadline = time.monotonic() + 5
        while len(connects) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(connects) == 2, "the socket.io client did not reconnect after an abrupt drop"
    finally:
        sio.disconnect()


# --- bot vs bot, house GTP engine, random house -------------------------------------------------------------
def test_user_challenger_gets_active_game_too(server: SandboxServer, bot: dict[str, Any],
                                              clients: Callable[[], WsClient]) -> None:
    server.add_bot("other", "other-key-1")
    a, b = clients(), clients()
    a.auth()
    b.auth("other", "other-key-1")
    ch = challenge(server, challenger={"user": "other"}, challenger_color="black")
    a.event("notification")
    accept(server, bot, ch["challenge_id"])
    assert a.event("active_game")["id"] == ch["game_id"] == b.event("active_game")["id"]
    for c in (a, b):
        c.send("game/connect", {"game_id": ch["game_id"]})
        c.event(f"game/{ch['game_id']}/gamedata")
    b.send("game/move", {"game_id": ch["game_id"], "move": "ee"})
    assert a.event(f"game/{ch['game_id']}/move")["move"][:2] == [4, 4]


@pytest.mark.e2e
@pytest.mark.skipif(not os.access("/usr/games/gnugo", os.X_OK), reason="GNU Go is not installed")
def test_gtp_house_with_gnu_go_plays_until_two_passes(server: SandboxServer, bot: dict[str, Any],
                                                      clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, width=7, height=7, challenger_color="black",
                        challenger={"house": "gtp", "delay": 0.0,
                                    "command": ["/usr/games/gnugo", "--mode", "gtp", "--level", "1"]})
    # the bot passes every time; GNU Go plays until it passes too, then accepts the (empty) removal
    n = 1
    while n < 99:
        mv = c.move(gid, n, timeout=20)
        if mv[0] == -1:
            break
        c.send("game/move", {"game_id": gid, "move": ".."})
        n += 2
    assert c.event(f"game/{gid}/phase", timeout=5) in ("stone removal",)
    c.event(f"game/{gid}/removed_stones_accepted", timeout=5)
    c.send("game/removed_stones/accept", {"game_id": gid, "stones": "", "strict_seki_mode": False})
    final = c.event(f"game/{gid}/gamedata", timeout=5)
    assert final["outcome"].endswith(" points") and final["winner"] != bot["id"]
    g = server.game(gid)
    assert n >= 5 and g["move_strings"].count("..") >= 2 and all(m == ".." for m in g["move_strings"][1::2])


def test_random_house_moves_are_legal_and_it_passes_after_a_pass(server: SandboxServer, bot: dict[str, Any],
                                                                clients: Callable[[], WsClient]) -> None:
    import random

    from bridge.adapters.ogs.codec import encode_point

    c = clients()
    c.auth()
    gid, _ = start_game(server, bot, c, width=7, height=7, challenger_color="black",
                        challenger={"house": "random", "seed": 3, "delay": 0.0})
    board = GoBoard(7, 7)
    rng = random.Random(5)
    n = 1
    for _ in range(6):  # both sides random: every house move must be legal for our own referee
        mv = c.move(gid, n)
        assert mv[0] >= 0, "the random house passed on a board with room to play"
        board.play("black", (mv[0], mv[1]))
        reply = board.random_move("white", rng)
        assert reply is not None
        board.play("white", reply)
        c.send("game/move", {"game_id": gid, "move": encode_point(reply)})
        c.move(gid, n + 1)
        n += 2
    # the bot passes: the random house answers with a pass, which ends play
    board.play("black", tuple(c.move(gid, n)[:2]))  # type: ignore[arg-type]
    c.send("game/move", {"game_id": gid, "move": ".."})
    assert c.move(gid, n + 1)[0] == -1 and c.move(gid, n + 2)[0] == -1
    assert c.event(f"game/{gid}/phase") == "stone removal"
    assert server.game(gid)["move_strings"][:-2] == [encode_point(p) for _, p in board.moves]


# --- control API ---------------------------------------------------------------------------------------------
def test_control_api_validation_and_unknown_routes(server: SandboxServer, bot: dict[str, Any]) -> None:
    missing = control(server, "GET", "/api/v1/nothing/here", expect=404)
    assert "no route GET /api/v1/nothing/here" in missing["error"]
    assert "target" in control(server, "POST", "/sandbox/challenges", json={"target": "ghost"}, expect=404)["error"]
    err = control(server, "POST", "/sandbox/challenges", json={"target": "bot", "width": 30}, expect=400)["error"]
    assert "width" in err and "1 to 25" in err
    err = control(server, "POST", "/sandbox/challenges",
                  json={"target": "bot", "time_control": {"system": "byoyomi", "main_time": 1}}, expect=400)["error"]
    assert "period_time" in err
    err = control(server, "POST", "/sandbox/challenges",
                  json={"target": "bot", "challenger": {"house": "scripted", "moves": ["zz9"]}}, expect=400)["error"]
    assert "moves[0]" in err
    err = control(server, "POST", "/sandbox/challenges",
                  json={"target": "bot", "challenger": {"house": "gtp"}}, expect=400)["error"]
    assert "command" in err
    assert "handicap" in control(server, "POST", "/sandbox/challenges",
                                 json={"target": "bot", "handicap": 40}, expect=400)["error"]
    generated = control(server, "POST", "/sandbox/bots", json={"username": "keyless"})
    assert len(generated["apikey"]) >= 20
    assert control(server, "GET", "/sandbox/games/424242", expect=404)["error"]
    assert control(server, "GET", "/api/v1/me", expect=401)["detail"]
    me = control(server, "GET", f"/api/v1/me?apikey={KEY}&bot_id={bot['id']}")
    assert me["username"] == "bot" and me["is_bot"] is True


def test_v0_login_cookie_needs_csrf_for_posts_and_refresh_token(server: SandboxServer,
                                                                clients: Callable[[], WsClient]) -> None:
    server.add_user("cookie-user", "s3cret-pw")
    s = requests.Session()
    assert s.post(f"{server.url}/api/v0/login", json={"username": "cookie-user", "password": "bad"},
                  timeout=5).status_code == 401
    r = s.post(f"{server.url}/api/v0/login", json={"username": "cookie-user", "password": "s3cret-pw"}, timeout=5)
    assert r.status_code == 200 and s.cookies.get("csrftoken")
    cfg = s.get(f"{server.url}/api/v1/ui/config", timeout=5).json()
    assert cfg["user"]["username"] == "cookie-user"
    c = clients()
    reply = c.request("authenticate", {"auth": cfg["chat_auth"], "player_id": cfg["user"]["id"],
                                       "username": "cookie-user"})
    assert reply[1]["username"] == "cookie-user"
    ch = challenge(server, target="cookie-user")
    url = f"{server.url}/api/v1/me/challenges/{ch['challenge_id']}/accept"
    refused = s.post(url, timeout=5)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    ok = s.post(url, headers={"X-CSRFToken": s.cookies["csrftoken"], "Referer": server.url + "/"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["game_id"] == ch["game_id"]
    # OAuth refresh: a refresh token works once and gives a new access token
    tok = requests.post(f"{server.url}/oauth2/token/", data={"grant_type": "password", "username": "cookie-user",
                                                            "password": "s3cret-pw", "client_id": "x"}, timeout=5)
    refresh = tok.json()["refresh_token"]
    again = requests.post(f"{server.url}/oauth2/token/", data={"grant_type": "refresh_token",
                                                              "refresh_token": refresh, "client_id": "x"}, timeout=5)
    assert again.status_code == 200 and again.json()["access_token"] != tok.json()["access_token"]
    reused = requests.post(f"{server.url}/oauth2/token/", data={"grant_type": "refresh_token",
                                                               "refresh_token": refresh, "client_id": "x"}, timeout=5)
    assert reused.status_code == 400


def test_a_held_gamedata_is_sent_when_the_hold_is_lifted(server: SandboxServer, bot: dict[str, Any],
                                                         clients: Callable[[], WsClient]) -> None:
    c = clients()
    c.auth()
    assert control(server, "POST", "/sandbox/faults", json={"hold_gamedata": True}) == \
        {"hold_gamedata": True, "held": 0}
    ch = challenge(server, challenger_color="white")
    c.event("notification", where=lambda n: n.get("type") == "challenge")
    accept(server, bot, ch["challenge_id"])
    assert c.event("active_game")["id"] == ch["game_id"]
    c.send("game/connect", {"game_id": ch["game_id"], "chat": True})
    c.request("hostinfo", {})  # game/connect is processed before this reply
    assert f"game/{ch['game_id']}/gamedata" not in c.names()
    assert control(server, "GET", "/sandbox/faults") == {"hold_gamedata": True, "held": 1}
    control(server, "POST", "/sandbox/faults", json={"hold_gamedata": False})
    assert c.event(f"game/{ch['game_id']}/gamedata")["game_id"] == ch["game_id"]
    control(server, "POST", "/sandbox/faults", json={"hold": True}, expect=400)


# --- open challenges and the seek graph ------------------------------------------------------------------------
def test_open_challenge_on_the_seek_graph_withdrawn_and_taken(server: SandboxServer, bot: dict[str, Any],
                                                               clients: Callable[[], WsClient]) -> None:
    """POST /api/v1/challenges (no opponent) and the seek graph as goban's protocol has it: a subscriber is sent the
    waiting list, then each new entry (SeekgraphChallengeMessage), a withdrawal ({challenge_id, delete}) and, when a
    house player with accept_open takes one, {challenge_id, game_started, game_id, creator, black, white} before its
    delete; the creator gets active_game. Open challenges are not in GET /api/v1/me/challenges."""
    c = clients()
    c.auth()
    watcher = clients()
    assert watcher.request("seek_graph/connect", {"channel": "local"})[2]["code"] == "invalid_channel"
    watcher.send("seek_graph/connect", {"channel": "global"})
    assert watcher.event("seekgraph/global") == []
    body = {"apikey": KEY, "bot_id": bot["id"], "min_ranking": 5, "max_ranking": 25, "challenger_color": "white",
            "game": {"name": "open", "rules": "chinese", "ranked": False, "width": 9, "height": 9, "handicap": 0,
                     "komi_auto": "automatic", "time_control": "byoyomi",
                     "time_control_parameters": {"system": "byoyomi", "speed": "live", "main_time": 60,
                                                 "period_time": 10, "periods": 3}}}
    first = control(server, "POST", "/api/v1/challenges", json=body)
    [entry] = watcher.event("seekgraph/global")
    assert {k: entry[k] for k in ("challenge_id", "game_id", "user_id", "username", "width", "height", "rules",
                                  "ranked", "min_rank", "max_rank", "challenger_color", "time_control")} == {
        "challenge_id": first["challenge"], "game_id": first["game"], "user_id": bot["id"], "username": "bot",
        "width": 9, "height": 9, "rules": "chinese", "ranked": False, "min_rank": 5, "max_rank": 25,
        "challenger_color": "white", "time_control": "byoyomi"}
    listed = control(server, "GET", "/api/v1/me/challenges", json={"apikey": KEY, "bot_id": bot["id"]})
    assert listed["results"] == []
    late = clients()
    late.send("seek_graph/connect", {"channel": "global"})
    assert [e["challenge_id"] for e in late.event("seekgraph/global")] == [first["challenge"]]
    control(server, "DELETE", f"/api/v1/challenges/{first['challenge']}", json={"apikey": KEY, "bot_id": bot["id"]})
    assert watcher.event("seekgraph/global") == [{"challenge_id": first["challenge"], "delete": True}]
    second = control(server, "POST", "/api/v1/challenges", json=body)
    watcher.event("seekgraph/global")
    taker = control(server, "POST", "/sandbox/opponents", json={"username": "taker", "house": "random",
                                                                 "accept_open": 1, "answer_delay": 0})
    started, gone = watcher.event("seekgraph/global")
    assert started["challenge_id"] == second["challenge"] and started["game_started"] is True
    assert started["game_id"] == second["game"] and started["creator"] == bot["id"]
    assert {started["black"]["id"], started["white"]["id"]} == {bot["id"], taker["id"]}
    assert started["white"]["id"] == bot["id"]  # challenger_color: white
    assert gone == {"challenge_id": second["challenge"], "delete": True}
    assert c.event("active_game")["id"] == second["game"]
    rows = {r["id"]: r for r in control(server, "GET", "/sandbox/challenges") if r.get("open")}
    assert (rows[first["challenge"]]["state"], rows[second["challenge"]]["state"]) == ("canceled", "accepted")
    assert rows[second["challenge"]]["accepted_by"] == "taker"
