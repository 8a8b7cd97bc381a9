"""The reconchess sandbox, driven by reconchess's own official client (``play_remote_game`` / ``RemoteGame``
and ``rc_connect``'s ``RBCServer``) and by raw HTTP, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import chess
import pytest
import reconchess
import requests
from helpers import wait_for
from reconchess import GameHistory, RemoteGame, WinReason, play_remote_game
from reconchess.bots.attacker_bot import AttackerBot
from reconchess.bots.random_bot import RandomBot
from reconchess.scripts.rc_connect import RBCServer

from bridge.adapters.reconchess.sandbox import ReconchessSandbox

PASSWORD = "alice-pw-1234"


@pytest.fixture
def sandbox() -> Iterator[ReconchessSandbox]:
    """A sandbox whose /api/ invitations end after 6 full turns (short games for the 0.5 s-polling client)."""
    server = ReconchessSandbox(seconds_per_player=60, seconds_increment=0, full_turn_limit=6).start()
    server.add_user("alice", PASSWORD)
    server.add_user("bob", "bob-pw-1234")
    yield server
    server.stop()


def _stockfish_children() -> list[int]:
    """Live Stockfish processes started by this process (TroutBot's engines)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if name.startswith("stockfish") and int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(int(entry))
    return found


def _final_fen(history: GameHistory) -> str:
    turns = [t for t in history.turns() if history.has_move(t)]
    return str(history.truth_fen_after_move(turns[-1]))


def test_official_client_plays_a_full_game_against_a_house_player(sandbox: ReconchessSandbox) -> None:
    """rc_connect's RBCServer sends the invitation; play_remote_game (RemoteGame: raw JSON bodies without a
    Content-Type, 0.5 s game_status polling) plays it to the end; the result and the history it receives are
    the sandbox's true game."""
    server = RBCServer(sandbox.url, ("alice", PASSWORD))
    assert server.get_reconchess_version() == reconchess.__version__
    assert {"random", "attacker", "trout"} <= set(server.get_active_users())
    game_id = server.send_invitation("random", True)
    winner, reason, history = play_remote_game(sandbox.url, game_id, ("alice", PASSWORD), RandomBot())
    truth = sandbox.game(game_id)
    assert truth["over"] and truth["white"] == "alice" and truth["black"] == "random"
    assert reason in (WinReason.KING_CAPTURE, WinReason.TURN_LIMIT)
    assert truth["win_reason"] == reason.name and truth["winner_color"] == winner
    assert isinstance(history, GameHistory) and not history.is_empty()
    assert history.get_white_player_name() == "alice" and history.get_black_player_name() == "random"
    assert _final_fen(history) == truth["fen"]
    assert [m["taken"] for m in truth["moves"]] == [
        (history.taken_move(t).uci() if history.taken_move(t) else None)
        for t in history.turns()
        if history.has_move(t)
    ]


def test_official_rc_connect_accepts_and_plays_invitations(sandbox: ReconchessSandbox) -> None:
    """reconchess's own bot runner, ``rc_connect`` (a real subprocess: version check, unranked mode, max
    games, invitation polling, one process per game, error_resign/finish), plays two invitations on the
    sandbox to the end and finishes them; SIGTERM stops it."""
    made = [
        sandbox.invite(
            "alice", opponent, color=color, seconds_per_player=60, seconds_increment=0, full_turn_limit=25
        )
        for opponent, color in (("attacker", True), ("random", False))
    ]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconchess.scripts.rc_connect",
            "reconchess.bots.random_bot",
            "--username",
            "alice",
            "--password",
            PASSWORD,
            "--server-url",
            sandbox.url,
            "--max-concurrent-games",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def finished() -> bool:
            invitations = requests.get(f"{sandbox.url}/sandbox/invitations", timeout=5).json()["invitations"]
            return all(i["finished_by"] == ["alice"] for i in invitations)

        wait_for(finished, timeout=40)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    for invitation in made:
        truth = sandbox.game(invitation["game_id"])
        assert truth["over"] and truth["win_reason"] in ("KING_CAPTURE", "TURN_LIMIT"), truth
    assert "Connected successfully to server" in output and "Finished game" in output, output
    assert "Fatal error" not in output, output
    users = {
        u["username"]: u for u in requests.get(f"{sandbox.url}/sandbox/users", timeout=5).json()["users"]
    }
    assert users["alice"]["max_games"] == 2 and users["alice"]["ranked"] is False


def test_two_official_clients_play_each_other(sandbox: ReconchessSandbox) -> None:
    """A user-to-user invitation: alice invites bob, bob sees it in GET /api/invitations/, accepts it, both
    play with RemoteGame in threads and learn the same result; both then finish the invitation."""
    alice = RBCServer(sandbox.url, ("alice", PASSWORD))
    bob = RBCServer(sandbox.url, ("bob", "bob-pw-1234"))
    game_id = alice.send_invitation("bob", False)  # alice plays black
    invitations = bob.get_invitations()
    assert len(invitations) == 1
    assert bob.accept_invitation(invitations[0]) == game_id
    assert bob.get_invitations() == []
    results: dict[str, Any] = {}

    def play(name: str, password: str, bot: Any) -> None:
        results[name] = play_remote_game(sandbox.url, game_id, (name, password), bot)

    threads = [
        threading.Thread(target=play, args=("alice", PASSWORD, AttackerBot())),
        threading.Thread(target=play, args=("bob", "bob-pw-1234", RandomBot())),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["alice"][:2] == results["bob"][:2]
    assert RemoteGame(sandbox.url, game_id, ("alice", PASSWORD)).get_player_color() is False
    bob.finish_invitation(invitations[0])
    snapshot = sandbox.game(game_id)
    assert snapshot["over"] and snapshot["white"] == "bob" and snapshot["black"] == "alice"
    inv = requests.get(f"{sandbox.url}/sandbox/invitations", timeout=5).json()["invitations"]
    assert [i["finished_by"] for i in inv if i["game_id"] == game_id] == [["bob"]]


def test_account_endpoints_as_rc_connect_and_rc_register_use_them(sandbox: ReconchessSandbox) -> None:
    server = RBCServer(sandbox.url, ("alice", PASSWORD))
    server.set_max_games(3)
    server.set_ranked(True)
    assert server.get_bot_version() == 0
    server.increment_version()
    server.increment_version()
    assert server.get_bot_version() == 2
    me = requests.post(f"{sandbox.url}/api/users/me", auth=("alice", PASSWORD), timeout=5).json()
    assert me["username"] == "alice" and me["max_games"] == 3
    users = {
        u["username"]: u for u in requests.get(f"{sandbox.url}/sandbox/users", timeout=5).json()["users"]
    }
    assert users["alice"]["ranked"] is True and users["alice"]["version"] == 2
    # registration, as rc_register posts it (no auth); a taken name is 409
    new = {"username": "carol", "email": "c@example.org", "affiliation": "x", "password": "carol-pw"}
    assert requests.post(f"{sandbox.url}/api/users/", json=new, timeout=5).json()["username"] == "carol"
    assert requests.post(f"{sandbox.url}/api/users/", json=new, timeout=5).status_code == 409
    assert requests.get(f"{sandbox.url}/api/invitations/", auth=("carol", "carol-pw"), timeout=5).json() == {
        "invitations": []
    }


def test_status_codes(sandbox: ReconchessSandbox) -> None:
    """401 bad password / not a player, 404 no such game, 400 out of order or malformed, 200 for raw JSON
    bodies without a Content-Type (as RemoteGame sends them)."""
    url = sandbox.url
    game_id = sandbox.invite("alice", "random", color=True, seconds_per_player=60)["game_id"]
    invitation = RBCServer(url, ("alice", PASSWORD)).get_invitations()[0]
    assert (
        requests.post(
            f"{url}/api/invitations/{invitation}", auth=("bob", "bob-pw-1234"), timeout=5
        ).status_code
        == 401
    )
    assert requests.post(
        f"{url}/api/invitations/{invitation}", auth=("alice", PASSWORD), timeout=5
    ).json() == {"game_id": game_id}
    game = f"{url}/api/games/{game_id}"
    assert requests.get(f"{game}/color", auth=("alice", "wrong"), timeout=5).status_code == 401
    assert requests.get(f"{game}/color", timeout=5).status_code == 401
    assert requests.get(f"{game}/color", auth=("bob", "bob-pw-1234"), timeout=5).status_code == 401
    assert requests.get(f"{url}/api/games/1/color", auth=("alice", PASSWORD), timeout=5).status_code == 404
    s = requests.Session()
    s.auth = ("alice", PASSWORD)
    assert (
        s.post(f"{game}/sense", data=json.dumps({"square": 9}), timeout=5).status_code == 400
    )  # not started
    assert s.post(f"{game}/ready", data="{}", timeout=5).status_code == 200
    wait_for(lambda: s.get(f"{game}/game_status", timeout=5).json() == {"is_my_turn": True, "is_over": False},
             timeout=20)
    move = json.dumps({"requested_move": {"type": "Move", "value": "e2e4"}})
    assert s.post(f"{game}/move", data=move, timeout=5).status_code == 400  # must sense first
    assert s.post(f"{game}/sense", data="{not json", timeout=5).status_code == 400
    assert s.post(f"{game}/sense", data=json.dumps({"square": 99}), timeout=5).status_code == 400
    sensed = s.post(f"{game}/sense", data=json.dumps({"square": 9}), timeout=5)  # no Content-Type header
    assert sensed.status_code == 200
    result = dict((sq, p) for sq, p in sensed.json()["sense_result"])
    assert (
        len(result) == 9 and result[chess.B2] == {"type": "Piece", "value": "P"} and result[chess.B3] is None
    )
    again = s.post(f"{game}/sense", data=json.dumps({"square": 9}), timeout=5)
    assert again.status_code == 400 and "already sensed" in again.text
    bad = json.dumps({"requested_move": {"type": "Move", "value": "e2e5"}})
    assert s.post(f"{game}/move", data=bad, timeout=5).status_code == 400
    assert s.post(f"{game}/end_turn", data="{}", timeout=5).status_code == 400  # must move first
    moved = s.post(f"{game}/move", data=move, timeout=5).json()["move_result"]
    assert moved == [{"type": "Move", "value": "e2e4"}, {"type": "Move", "value": "e2e4"}, None]
    assert s.post(f"{game}/move", data=move, timeout=5).text.count("already moved") == 1
    assert s.post(f"{game}/end_turn", data="{}", timeout=5).status_code == 200
    assert requests.get(f"{url}/api/nope", timeout=5).status_code == 404
    s.close()


def test_a_flag_falls_without_anybody_asking(sandbox: ReconchessSandbox) -> None:
    """Real clocks: a user who accepts, says ready and then never moves loses on time after its 1 s; the
    sandbox's clock ends the game by itself (the house player was waiting, not polling)."""
    game_id = sandbox.invite("alice", "attacker", color=True, seconds_per_player=1.0, seconds_increment=0)[
        "game_id"
    ]
    server = RBCServer(sandbox.url, ("alice", PASSWORD))
    server.accept_invitation(server.get_invitations()[0])
    game = RemoteGame(sandbox.url, game_id, ("alice", PASSWORD))
    game.start()
    wait_for(lambda: sandbox.game(game_id)["over"], timeout=5)
    truth = sandbox.game(game_id)
    assert truth["win_reason"] == "TIMEOUT" and truth["winner"] == "attacker"
    assert truth["seconds_left"]["white"] <= 0
    assert game.get_winner_color() is False and game.get_win_reason() == WinReason.TIMEOUT
    assert game.is_over()


def test_error_resign_and_resign(sandbox: ReconchessSandbox) -> None:
    first = sandbox.invite("alice", "random", color=False, seconds_per_player=60)["game_id"]
    second = sandbox.invite("alice", "random", color=True, seconds_per_player=60)["game_id"]
    server = RBCServer(sandbox.url, ("alice", PASSWORD))
    for invitation in server.get_invitations():
        server.accept_invitation(invitation)
    server.error_resign(first)  # any time, even before the game started: our clock is zeroed
    truth = sandbox.game(first)
    assert truth["over"] and truth["winner"] == "random" and truth["win_reason"] == "TIMEOUT"
    game = RemoteGame(sandbox.url, second, ("alice", PASSWORD))
    game.start()
    assert not game.is_over()  # waits for our turn
    game._post("resign", {})
    truth = sandbox.game(second)
    assert truth["winner"] == "random" and truth["win_reason"] == "RESIGN"
    history = game.get_game_history()
    assert history.get_win_reason() == WinReason.RESIGN and history.get_winner_color() is False


def test_control_api_fail_and_drop(sandbox: ReconchessSandbox) -> None:
    """POST /sandbox/fail: /api/ answers 500 for N seconds, then recovers (RemoteGame's retry rides it out).
    POST /sandbox/drop: the connection is closed instead of answering, after carrying the request out."""
    url = sandbox.url
    assert requests.post(f"{url}/sandbox/fail", json={"seconds": 0.6}, timeout=5).status_code == 200
    assert requests.get(f"{url}/api/version", timeout=5).status_code == 500
    started = time.monotonic()
    game_id = RBCServer(url, ("alice", PASSWORD)).send_invitation("random", True)  # retries 5xx every 0.5 s
    assert time.monotonic() - started >= 0.4
    assert requests.get(f"{url}/api/version", timeout=5).json() == {"version": reconchess.__version__}
    game = RemoteGame(url, game_id, ("alice", PASSWORD))
    game.start()
    assert not game.is_over()
    requests.post(f"{url}/sandbox/drop", json={"match": "/sense", "after": True}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        game.session.post(f"{game.game_url}/sense", data=json.dumps({"square": 12}), timeout=5)
    refused = game.session.post(f"{game.game_url}/sense", data=json.dumps({"square": 12}), timeout=5)
    assert refused.status_code == 400 and "already sensed" in refused.text  # it had been carried out
    snapshot = requests.get(f"{url}/sandbox/games/{game_id}", timeout=5).json()
    assert snapshot["moves"][0]["sense"] == 12 and snapshot["phase"] == "move"
    assert snapshot["fen"] == chess.STARTING_FEN and snapshot["game_history"] is None
    bad_fails: list[dict[str, object]] = [{"seconds": "x"}, {"seconds": 1, "status": True},
                                          {"seconds": 1, "status": 200}, {"seconds": 1, "match": 3},
                                          {"seconds": 1, "retry_after": -1}]
    bad_drops: list[dict[str, object]] = [{"count": 0}, {"count": True}, {"after": "yes"}, {"match": None}]
    for path, bodies in (("fail", bad_fails), ("drop", bad_drops)):
        for bad in bodies:  # each refused with what is expected (the parsers are shared with the Open Games sandbox)
            refused = requests.post(f"{url}/sandbox/{path}", json=bad, timeout=5)
            assert refused.status_code == 400 and "expected" in refused.json()["error"], (bad, refused.text)
    assert requests.get(f"{url}/api/version", timeout=5).status_code == 200  # none of them took effect
    listing = requests.get(f"{url}/sandbox/games", timeout=5).json()["games"]
    assert [g["id"] for g in listing] == [game_id]


def test_control_invitation_options_and_errors(sandbox: ReconchessSandbox) -> None:
    url = sandbox.url
    made = requests.post(
        f"{url}/sandbox/invitations",
        json={
            "user": "bob",
            "opponent": "attacker",
            "color": "black",
            "seconds_per_player": 30,
            "seconds_increment": 2,
            "full_turn_limit": 3,
        },
        timeout=5,
    ).json()
    snapshot = sandbox.game(made["game_id"])
    assert made["user_color"] == "black" and snapshot["white"] == "attacker"
    assert snapshot["clock"] == {
        "seconds_per_player": 30.0,
        "seconds_increment": 2.0,
        "reversible_moves_limit": 100,
        "full_turn_limit": 3,
    }
    assert requests.post(f"{url}/sandbox/invitations", json={"user": "nobody"}, timeout=5).status_code == 404
    assert (
        requests.post(
            f"{url}/sandbox/invitations", json={"user": "bob", "opponent": "zz"}, timeout=5
        ).status_code
        == 404
    )
    assert (
        requests.post(f"{url}/sandbox/invitations", json={"user": "bob", "color": 3}, timeout=5).status_code
        == 400
    )
    assert (
        requests.post(
            f"{url}/sandbox/users", json={"username": "bob", "password": "x"}, timeout=5
        ).status_code
        == 409
    )
    assert requests.get(f"{url}/sandbox", timeout=5).json()["house"] == ["attacker", "random", "trout"]


@pytest.mark.e2e
def test_stop_ends_threads_and_engines() -> None:
    """Stopping mid-game (a trout game with Stockfish running, an open keep-alive connection) leaves no thread
    and no Stockfish process behind."""
    before = set(threading.enumerate())
    server = ReconchessSandbox().start()
    server.add_user("alice", PASSWORD)
    session = requests.Session()
    session.auth = ("alice", PASSWORD)
    game_id = session.post(
        f"{server.url}/api/invitations/", json={"opponent": "trout", "color": False}, timeout=5
    ).json()["game_id"]
    session.post(f"{server.url}/api/games/{game_id}/ready", timeout=5)
    wait_for(lambda: server.game(game_id)["moves"], timeout=20)  # trout (white) is playing
    assert _stockfish_children()
    server.stop()
    session.close()
    wait_for(lambda: not set(threading.enumerate()) - before, 5, "the sandbox's threads to end")
    assert _stockfish_children() == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_the_house_attacker_rushes_in_every_game_of_a_process() -> None:
    """reconchess's AttackerBot takes its rush from a module-level list and pops its moves from it when it plays
    white: without a copy, every later attacker game of the same process (the sandbox's house, scripts/bench_rbc.py)
    found that rush emptied and passed every move. The house's attacker works on its own copy."""
    from reconchess.bots import attacker_bot

    from bridge.adapters.reconchess.sandbox.house import house_bots

    before = [list(seq) for seq in attacker_bot.QUICK_ATTACKS]
    for _ in range(12):  # every rush, several times over (random.choice)
        bot = house_bots()["attacker"]()
        bot.handle_game_start(chess.WHITE, chess.Board(), "bridge")
        board = chess.Board()
        moves = 0
        while (move := bot.choose_move(list(board.pseudo_legal_moves), 60.0)) is not None:
            moves += 1
            board.push(move)
            board.push(chess.Move.null())  # the opponent passes
        assert moves >= 3, "the attacker played no rush"
    assert [list(seq) for seq in attacker_bot.QUICK_ATTACKS] == before, "the module's rushes were used up"
