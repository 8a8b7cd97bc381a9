"""The reference Battleship engine (scripts/battleship_engine.py): protocol layer, strategy, speed.

The strategy and the command parser are exercised in-process (fast); the script itself runs once as a real
subprocess here (the line-driver tests run it many more times)."""

from __future__ import annotations

import importlib.util
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bridge.engines.line import PROTOCOL_VERSION, REQUIRED_COMMANDS
from bridge.games.battleship_rules import (
    CLASSIC,
    Board,
    Game,
    Rules,
    Ship,
    ShipMove,
    ShotResult,
    cell_name,
    parse_cell,
    random_placement,
)

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "battleship_engine.py"
MOVES = Rules(moves_enabled=True)


@pytest.fixture(scope="module")
def eng() -> ModuleType:
    spec = importlib.util.spec_from_file_location("battleship_engine_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def my_fleet() -> list[Ship]:
    # A1-A5, C1-F1, J1-J3, E5-E7, G7-H7
    return [Ship("Carrier", 5, (0, 0)), Ship("Battleship", 4, (2, 0), True), Ship("Cruiser", 3, (9, 0)),
            Ship("Submarine", 3, (4, 4)), Ship("Destroyer", 2, (6, 6), True)]


def player(eng: ModuleType, rules: Rules = CLASSIC, seed: int = 1, **kw: Any) -> Any:
    p = eng.Player(seed, **kw)
    p.new_game(rules)
    for ship in my_fleet():
        p.place(ship)
    return p


def tell(p: Any, own: str, *shots: str) -> None:
    """``tell(p, "mine", "E5 hit", "E6 miss")``: results of our shots or of the opponent's."""
    for s in shots:
        cell, *words = s.split()
        if own == "mine":
            p.shot_result(parse_cell(cell), ShotResult.parse(words, p.rules))
        else:
            p.opponent_shot(parse_cell(cell), ShotResult.parse(words, p.rules))


def neighbours(name: str) -> set[str]:
    r, c = parse_cell(name)
    return {cell_name((r + dr, c + dc)) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if 0 <= r + dr < 10 and 0 <= c + dc < 10}


# --- protocol layer ----------------------------------------------------------------------------------
def test_handshake_commands_and_ids(eng: ModuleType) -> None:
    e = eng.Engine(eng.Player(1))
    assert e.handle("protocol_version") == f"= {PROTOCOL_VERSION}"
    assert e.handle("12 name") == "=12 bridge-reference-battleship"
    assert e.handle("version") == "= 1.0"
    listed = set(e.handle("3 list_commands").removeprefix("=3 ").split("\n"))
    assert REQUIRED_COMMANDS <= listed and "showboard" in listed
    assert e.handle("4 known_command genmove") == "=4 true"
    assert e.handle("known_command fly") == "= false"
    assert e.handle("") is None and e.handle("   ") is None and e.handle("# a comment") is None
    assert e.handle("5 fly away") == "?5 unknown command"
    assert e.handle("6 new_game # comment after a command") == "=6"
    assert not e.quit
    assert e.handle("7 quit") == "=7" and e.quit


@pytest.mark.parametrize("line,match", [
    ("board ten 10", "two whole numbers"),
    ("board 10", "takes 2 argument"),
    ("board 30 10", "1 to 26 rows"),
    ("fleet Carrier5", "NAME:LENGTH"),
    ("fleet", "at least one"),
    ("fleet A:2 a:3", "twice"),
    ("ship_moves maybe", "on or off"),
    ("place Carrier A1 x", "h or v"),
    ("place Carrier A9 h", "leaves the board"),
    ("place Zeppelin A1 h", "no ship 'Zeppelin'"),
    ("place Carrier K1 h", "off the 10x10 board"),
    ("shot_result A1", "CELL miss|hit|sunk SHIP"),
    ("shot_result A1 boom", "not a shot result"),
    ("opponent_shot A11 miss", "off the 10x10 board"),
    ("opponent_moved now", "no arguments"),
    ("genmove", "not placed: Carrier, Battleship, Cruiser, Submarine, Destroyer"),
])
def test_bad_arguments_are_refused_with_a_reason(eng: ModuleType, line: str, match: str) -> None:
    e = eng.Engine(eng.Player(1))
    reply = e.handle("9 " + line)
    assert reply is not None and reply.startswith("?9 ")
    assert match in reply


def test_setup_commands_and_a_small_board(eng: ModuleType) -> None:
    e = eng.Engine(eng.Player(1))
    assert e.handle("board 3 3") == "="  # the classic fleet does not fit: wait for the fleet
    reply = e.handle("place Carrier A1 h")
    assert reply is not None and "send fleet first" in reply
    for line in ("fleet Boat:2 Raft:1", "ship_moves on", "place boat A1 h", "place Raft C3 h"):
        assert e.handle(line) == "=", line
    assert e.player.rules == Rules(3, 3, e.player.rules.fleet, True)
    shots = set()
    for _ in range(6):
        reply = e.handle("genmove")
        assert reply is not None and reply.startswith("= ")
        first = reply[2:].split("\n")[0]
        if first.startswith(("translate", "rotate")):
            continue
        cell = parse_cell(first, 3, 3)
        shots.add(cell)
        assert e.handle(f"shot_result {cell_name(cell)} miss") == "="
    assert all(0 <= r < 3 and 0 <= c < 3 for r, c in shots)
    assert e.handle("new_game") == "=" and e.player.rules == CLASSIC


def test_overlapping_placement_is_refused_at_genmove(eng: ModuleType) -> None:
    e = eng.Engine(eng.Player(1))
    for line in ("place Carrier A1 h", "place Battleship A1 v", "place Cruiser J1 h", "place Submarine E5 h",
                 "place Destroyer G7 v"):
        assert e.handle(line) == "="  # a re-sync may pass through an overlap
    reply = e.handle("genmove")
    assert reply is not None and reply.startswith("?") and "overlap" in reply
    assert e.handle("place Battleship C1 v") == "="
    reply = e.handle("genmove")
    assert reply is not None and reply.startswith("= ")


def test_genmove_answer_format(eng: ModuleType) -> None:
    e = eng.Engine(eng.Player(1, greet="Good  luck!\nhave fun"))
    for ship in my_fleet():
        assert e.handle(f"place {ship}") == "="
    reply = e.handle("8 genmove")
    assert reply is not None
    lines = reply.split("\n")
    assert lines[0].startswith("=8 ")
    parse_cell(lines[0][3:])
    assert lines[1].startswith("reasoning: Hunting")
    assert lines[2] == "message: Good luck! have fun"  # one line, white space collapsed
    assert len(lines) == 3
    reply = e.handle("genmove")
    assert reply is not None and "message:" not in reply  # the greeting comes once


def test_showboard_draws_my_fleet_and_the_opponent_shots(eng: ModuleType) -> None:
    e = eng.Engine(eng.Player(1))
    for ship in my_fleet():
        e.handle(f"place {ship}")
    e.handle("opponent_shot A2 hit")
    e.handle("opponent_shot B2 miss")
    reply = e.handle("showboard")
    assert reply is not None
    rows = reply.split("\n")
    assert rows[2].split() == ["A", "#", "X", "#", "#", "#", ".", ".", ".", ".", "."]
    assert rows[3].split()[:3] == ["B", ".", "o"]


# --- strategy ----------------------------------------------------------------------------------------
def test_a_hit_is_followed_up_next_to_it(eng: ModuleType) -> None:
    p = player(eng)
    tell(p, "mine", "E5 hit")
    assert cell_name(p.genmove().shot) in neighbours("E5")
    tell(p, "mine", "E6 hit", "E4 miss")
    turn = p.genmove()
    assert cell_name(turn.shot) == "E7"  # the line E5-E6, closed at E4, goes on at E7
    assert turn.reasoning.startswith("Targeting: 2 hits")


def test_sunk_ship_cells_are_worked_out_and_hunting_resumes(eng: ModuleType) -> None:
    p = player(eng)
    tell(p, "mine", "A1 hit", "A2 sunk Destroyer")
    assert p.targeting.open_hits == 0
    assert p.targeting.sunk_mask == (1 << 0) | (1 << 1)
    assert p.genmove().reasoning.startswith("Hunting")
    tell(p, "mine", "A2 sunk Destroyer")  # told twice: ignored
    assert p.targeting.unsunk == ["Carrier", "Battleship", "Cruiser", "Submarine"]


def test_static_games_are_won_without_repeating_a_shot(eng: ModuleType) -> None:
    rng = random.Random(5)
    counts = []
    p = eng.Player(2)
    for _ in range(25):
        target = Board(CLASSIC, random_placement(CLASSIC, rng))
        p.new_game(CLASSIC)
        for ship in my_fleet():
            p.place(ship)
        shots: list[tuple[int, int]] = []
        while not target.defeated and len(shots) < 100:
            turn = p.genmove()
            assert turn.shot is not None and not turn.moves
            shots.append(turn.shot)
            p.shot_result(turn.shot, target.shoot(turn.shot))
        assert target.defeated
        assert len(set(shots)) == len(shots)  # static fleets: never a cell twice
        counts.append(len(shots))
    assert statistics.mean(counts) < 55  # the benchmark: ~44 over 2000 games; random shooting needs ~95


def test_misses_fade_after_the_opponent_moves(eng: ModuleType) -> None:
    p = player(eng, MOVES)
    tell(p, "mine", "E5 miss", "E6 miss", "D5 miss")
    i = 4 * 10 + 4  # E5
    assert p.targeting.density()[i] == 0.0
    p.opponent_moved()
    assert p.targeting.density()[i] > 0.0  # a ship may have moved onto E5
    # and a hit ship stays put: the density next to an open hit keeps dominating
    tell(p, "mine", "H8 hit")
    p.opponent_moved()
    assert cell_name(p.genmove().shot) in neighbours("H8")


def evasion_scene(eng: ModuleType, rules: Rules = MOVES, **kw: Any) -> Any:
    """The opponent hit our Submarine at E7 and missed D7 and E8: our unhit Destroyer G7-H7 lies in line."""
    p = player(eng, rules, **kw)
    tell(p, "theirs", "E7 hit", "D7 miss", "E8 miss")
    return p


def test_an_unhit_ship_in_the_line_of_fire_moves_away(eng: ModuleType) -> None:
    p = evasion_scene(eng)
    p.set_movable(["Carrier", "Battleship", "Cruiser", "Destroyer"])
    turn = p.genmove()
    assert turn.shot is None and [m.ship for m in turn.moves] == ["Destroyer"]
    assert turn.reasoning.startswith("Evading")
    board = Board(MOVES, my_fleet())
    board.shoot(parse_cell("E7"))
    board.apply_moves(turn.moves)  # valid by the rules
    assert board.ships["Destroyer"] == p.own.ships["Destroyer"]  # the engine assumes its move was made
    assert parse_cell("G7") not in board.ships["Destroyer"].cells


def test_no_evasion_when_not_allowed_or_not_worth_it(eng: ModuleType) -> None:
    assert evasion_scene(eng, CLASSIC).genmove().shot is not None  # ship moves off
    p = evasion_scene(eng)
    p.set_movable(["Carrier"])  # the server says the Destroyer may not move now
    assert p.genmove().shot is not None
    assert evasion_scene(eng, evasion=False).genmove().shot is not None
    p = evasion_scene(eng)
    tell(p, "mine", "A1 hit", "A2 hit", "A3 hit", "A4 hit", "B6 hit", "C6 hit", "D6 hit",
         "A5 sunk Carrier", "E6 sunk Battleship", "J1 hit", "J2 hit", "J3 sunk Cruiser",
         "H1 hit", "H2 hit", "H3 sunk Submarine", "F9 hit")
    assert p.targeting.remaining_cells() == 1
    assert p.genmove().shot is not None  # one more hit wins: shoot


def test_the_same_seed_plays_the_same_game(eng: ModuleType) -> None:
    def play(seed: int) -> list[str]:
        rng = random.Random(9)
        game = Game.random(MOVES, rng)
        a, b = eng.Player(seed), eng.Player(seed + 1)
        log = []
        for who, p in ((1, a), (2, b)):
            p.new_game(MOVES)
            for ship in game.boards[who].ships.values():
                p.place(ship)
        while not game.over:
            me, them = (a, b) if game.to_move == 1 else (b, a)
            me.set_movable(game.boards[game.to_move].movable())
            turn = me.genmove()
            if turn.shot is not None:
                result = game.shoot(turn.shot)
                me.shot_result(turn.shot, result)
                them.opponent_shot(turn.shot, result)
                log.append(cell_name(turn.shot))
            else:
                game.move(turn.moves)
                them.opponent_moved()
                log.append(";".join(str(m) for m in turn.moves))
        return log

    first = play(4)
    assert first == play(4)
    assert first != play(5)


def test_genmove_is_fast_even_with_ship_moves(eng: ModuleType) -> None:
    """A generous bound (the benchmark measures ~0.3 ms a shot): no genmove of a whole game takes 0.5 s."""
    rng = random.Random(12)
    game = Game.random(MOVES, rng)
    players = {1: eng.Player(1), 2: eng.Player(2)}
    for who, p in players.items():
        p.new_game(MOVES)
        for ship in game.boards[who].ships.values():
            p.place(ship)
    times = []
    while not game.over and len(game.history) < 400:
        me, them = players[game.to_move], players[3 - game.to_move]
        me.set_movable(game.boards[game.to_move].movable())
        t0 = time.perf_counter()
        turn = me.genmove()
        times.append(time.perf_counter() - t0)
        if turn.shot is not None:
            result = game.shoot(turn.shot)
            me.shot_result(turn.shot, result)
            them.opponent_shot(turn.shot, result)
        else:
            game.move(turn.moves)
            them.opponent_moved()
    assert game.over
    assert max(times) < 0.5
    assert statistics.mean(times) < 0.05


@pytest.mark.e2e
def test_the_script_speaks_on_pipes_and_exits_at_end_of_input() -> None:
    commands = "1 protocol_version\n2 genmove\n3 fly\n"  # no quit: end of input must end it too
    done = subprocess.run([sys.executable, str(SCRIPT), "--seed", "1"], input=commands, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 0
    assert done.stdout == (f"=1 {PROTOCOL_VERSION}\n\n"
                           f"?2 my ships are not placed: Carrier, Battleship, Cruiser, Submarine, Destroyer "
                           f"(send place first)\n\n"
                           f"?3 unknown command\n\n")
    assert done.stderr == ""


def test_moves_answered_by_the_engine_are_legal_in_many_random_positions(eng: ModuleType) -> None:
    rng = random.Random(21)
    moved = 0
    for seed in range(20):
        game = Game.random(MOVES, rng)
        p = eng.Player(seed)
        p.new_game(MOVES)
        for ship in game.boards[1].ships.values():
            p.place(ship)
        board = game.boards[1]
        for _ in range(30):  # the opponent shoots at random; we answer each time
            cell = (rng.randrange(10), rng.randrange(10))
            if cell in board.hits:
                continue
            p.opponent_shot(cell, board.shoot(cell))
            if board.defeated:
                break
            p.set_movable(board.movable())
            turn = p.genmove()
            if turn.moves:
                moved += 1
                board.apply_moves(turn.moves)  # raises if the engine broke a rule
                assert all(isinstance(m, ShipMove) for m in turn.moves)
                assert board.ships == p.own.ships
    assert moved > 0
