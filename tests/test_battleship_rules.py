"""The Battleship rules model: coordinates, fleet setup, placement, shots, ship moves, whole games."""

from __future__ import annotations

import random

import pytest

from bridge.games.battleship_rules import (
    CLASSIC,
    CLASSIC_FLEET,
    Board,
    Direction,
    Game,
    Rules,
    RulesError,
    Ship,
    ShipMove,
    ShipSpec,
    ShotResult,
    all_placements,
    cell_name,
    parse_cell,
    random_placement,
)

MOVES = Rules(moves_enabled=True)


def tr(ship: str, direction: Direction) -> ShipMove:
    return ShipMove(ship, "translate", direction)


def fleet(**where: tuple[str, str]) -> list[Ship]:
    """Ships by name -> (bow cell name, 'h' or 'v'); lengths from the classic fleet."""
    lengths = {s.name: s.length for s in CLASSIC_FLEET}
    return [Ship(n, lengths[n], parse_cell(bow), o == "v") for n, (bow, o) in where.items()]


def classic_layout() -> list[Ship]:
    # A1-A5, C1-F1, J1-J3, E5-E7, G7-H7
    return fleet(Carrier=("A1", "h"), Battleship=("C1", "v"), Cruiser=("J1", "h"), Submarine=("E5", "h"),
                 Destroyer=("G7", "v"))


# --- coordinates -----------------------------------------------------------------------------------
def test_cell_names_follow_board_ascii_row_letter_then_column_number() -> None:
    assert parse_cell("A5") == (0, 4)  # row A (top), column 5
    assert parse_cell("a5") == (0, 4)
    assert parse_cell(" J10 ") == (9, 9)
    assert parse_cell("C1") == (2, 0)
    assert cell_name((0, 4)) == "A5"
    assert cell_name((9, 9)) == "J10"
    assert cell_name((2, 0)) == "C1"


@pytest.mark.parametrize("rows,cols", [(10, 10), (26, 26), (5, 12), (1, 1)])
def test_cell_round_trip_on_every_cell(rows: int, cols: int) -> None:
    names = set()
    for r in range(rows):
        for c in range(cols):
            name = cell_name((r, c))
            assert parse_cell(name, rows, cols) == (r, c)
            assert parse_cell(name.lower(), rows, cols) == (r, c)
            names.add(name)
    assert len(names) == rows * cols


@pytest.mark.parametrize("text", ["K1", "A11", "A0", "5A", "", "AA1", "A-1", "A 5", "pass", "A1.5"])
def test_bad_cells_are_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"cell|off the 10x10 board"):
        parse_cell(text)


def test_cell_name_refuses_impossible_cells() -> None:
    for cell in [(-1, 0), (0, -1), (26, 0), (0, 26)]:
        with pytest.raises(ValueError):
            cell_name(cell)


# --- setup -----------------------------------------------------------------------------------------
def test_classic_rules() -> None:
    assert (CLASSIC.rows, CLASSIC.cols, CLASSIC.moves_enabled) == (10, 10, False)
    assert [(s.name, s.length) for s in CLASSIC.fleet] == [
        ("Carrier", 5), ("Battleship", 4), ("Cruiser", 3), ("Submarine", 3), ("Destroyer", 2)]
    assert CLASSIC.spec("carrier").name == "Carrier"  # names match ignoring case
    with pytest.raises(RulesError, match="no ship 'Zeppelin'"):
        CLASSIC.spec("Zeppelin")


@pytest.mark.parametrize("kw,match", [
    ({"rows": 0}, "1 to 26 rows"),
    ({"cols": 27}, "1 to 26 cols"),
    ({"fleet": ()}, "empty"),
    ({"fleet": (ShipSpec("A", 2), ShipSpec("a", 3))}, "twice"),
    ({"fleet": (ShipSpec("1st", 2),)}, "not allowed"),
    ({"fleet": (ShipSpec("Long", 11),)}, "does not fit"),
    ({"fleet": (ShipSpec("Zero", 0),)}, "does not fit"),
    ({"rows": 3, "cols": 3, "fleet": (ShipSpec("A", 3), ShipSpec("B", 3))}, "half"),
])
def test_bad_rules_are_refused(kw: dict[str, object], match: str) -> None:
    with pytest.raises(RulesError, match=match):
        Rules(**kw)  # type: ignore[arg-type]


def test_ship_geometry_bow_translate_rotate() -> None:
    ship = Ship("Cruiser", 3, parse_cell("C3"))
    assert [cell_name(c) for c in ship.cells] == ["C3", "C4", "C5"]
    assert ship.orientation == "horizontal"
    down = ship.rotated()  # about the bow: C3 stays, the ship now extends downwards
    assert [cell_name(c) for c in down.cells] == ["C3", "D3", "E3"]
    assert down.orientation == "vertical"
    assert down.rotated() == ship
    assert [cell_name(c) for c in ship.translated("up").cells] == ["B3", "B4", "B5"]
    assert [cell_name(c) for c in ship.translated("left").cells] == ["C2", "C3", "C4"]
    assert [cell_name(c) for c in down.translated("down").cells] == ["D3", "E3", "F3"]
    assert ship.translated("right").translated("left") == ship
    with pytest.raises(RulesError, match="direction"):
        ship.translated("north")
    assert str(down) == "Cruiser C3 v"
    assert Ship("Dinghy", 1, (4, 4)).rotated() == Ship("Dinghy", 1, (4, 4))


def test_ship_from_open_games_positions() -> None:
    # Open Games: positions [[row, col], ...] in any order
    positions = [[0, 4], [0, 0], [0, 2], [0, 1], [0, 3]]
    assert Ship.from_cells("Carrier", (tuple(p) for p in positions)) == Ship("Carrier", 5, (0, 0))  # type: ignore[misc]
    assert Ship.from_cells("Destroyer", [(5, 3), (4, 3)]) == Ship("Destroyer", 2, (4, 3), True)
    assert Ship.from_cells("Dinghy", [(1, 1)]) == Ship("Dinghy", 1, (1, 1), False)
    for bad in ([(0, 0), (0, 2)], [(0, 0), (1, 1)], [(0, 0), (0, 1), (1, 1)], []):
        with pytest.raises(RulesError, match=r"straight line|no cells"):
            Ship.from_cells("X", bad)


def test_all_placements_counts() -> None:
    assert len(all_placements(10, 10, "Carrier", 5)) == 2 * 10 * 6
    assert len(all_placements(10, 10, "Destroyer", 2)) == 2 * 10 * 9
    assert len(all_placements(10, 10, "Dinghy", 1)) == 100  # one orientation only
    assert all(all(0 <= r < 10 and 0 <= c < 10 for r, c in s.cells) for s in all_placements(10, 10, "C", 3))


def test_random_placement_is_legal_seeded_and_varied() -> None:
    layouts = []
    for seed in range(200):
        ships = random_placement(CLASSIC, random.Random(seed))
        Board(CLASSIC, ships)  # raises if anything overlaps or leaves the board
        assert [s.name for s in ships] == [s.name for s in CLASSIC_FLEET]
        layouts.append(tuple(ships))
    assert random_placement(CLASSIC, random.Random(7)) == random_placement(CLASSIC, random.Random(7))
    assert len(set(layouts)) == 200
    # every cell gets used by some ship, and both orientations occur
    every_cell = {(r, c) for r in range(10) for c in range(10)}
    assert {c for lay in layouts for s in lay for c in s.cells} == every_cell
    assert {s.vertical for lay in layouts for s in lay} == {True, False}


def test_random_placement_on_a_small_board() -> None:
    rules = Rules(rows=4, cols=5, fleet=(ShipSpec("A", 4), ShipSpec("B", 3), ShipSpec("C", 2)))
    layouts = set()
    for seed in range(50):
        ships = random_placement(rules, random.Random(seed))
        board = Board(rules, ships)  # refuses overlaps, ships off the board, missing or unknown ships
        assert sorted((s.name, len(s.cells)) for s in ships) == [("A", 4), ("B", 3), ("C", 2)]
        cells = [c for s in ships for c in s.cells]
        assert len(set(cells)) == 9 and all(rules.on_board(c) for c in cells), ships
        assert all(board.ship_at(c) == s.name for s in ships for c in s.cells)
        layouts.add(frozenset(cells))
    assert len(layouts) > 10, "the placement depends on the seed"


def test_board_refuses_bad_layouts() -> None:
    ok = classic_layout()
    with pytest.raises(RulesError, match="overlap at A1"):
        Board(CLASSIC, [*ok[:4], Ship("Destroyer", 2, (0, 0), True)])
    with pytest.raises(RulesError, match="leaves the 10x10 board"):
        Board(CLASSIC, [*ok[:4], Ship("Destroyer", 2, (9, 9))])
    with pytest.raises(RulesError, match="not placed"):
        Board(CLASSIC, ok[:4])
    with pytest.raises(RulesError, match="placed twice"):
        Board(CLASSIC, [*ok, ok[0]])
    with pytest.raises(RulesError, match="length 2, not 3"):
        Board(CLASSIC, [*ok[:4], Ship("Destroyer", 3, (8, 8))])
    with pytest.raises(RulesError, match="no ship"):
        Board(CLASSIC, [*ok, Ship("Zeppelin", 2, (8, 8))])


# --- shots -----------------------------------------------------------------------------------------
def test_shots_miss_hit_sink_and_defeat() -> None:
    board = Board(CLASSIC, classic_layout())
    assert board.shoot(parse_cell("B1")) == ShotResult("miss")
    assert board.shoot(parse_cell("G7")) == ShotResult("hit")  # the ship is not named on a plain hit
    assert board.hits_on("Destroyer") == 1 and not board.is_sunk("Destroyer")
    assert board.shoot(parse_cell("H7")) == ShotResult("sunk", "Destroyer")
    assert board.sunk == ["Destroyer"]
    assert board.shoot(parse_cell("B1")) == ShotResult("miss")  # a missed cell may be shot again
    with pytest.raises(RulesError, match="already hit"):
        board.shoot(parse_cell("G7"))
    with pytest.raises(RulesError, match="off the 10x10 board"):
        board.shoot((10, 0))
    for ship in list(board.ships.values()):
        for cell in ship.cells:
            if cell not in board.hits:
                board.shoot(cell)
    assert board.defeated
    assert len(board.shots) == 2 + 17  # B1 twice, then every ship cell once


def test_shot_result_words() -> None:
    cases: list[tuple[list[str], ShotResult]] = [
        (["miss"], ShotResult("miss")),
        (["HIT"], ShotResult("hit")),
        (["sunk", "cruiser"], ShotResult("sunk", "Cruiser")),
    ]
    for words, result in cases:
        parsed = ShotResult.parse(words, CLASSIC)
        assert parsed == result
        assert ShotResult.parse(str(parsed).split(), CLASSIC) == parsed
    assert str(ShotResult("sunk", "Cruiser")) == "sunk Cruiser"
    for bad in (["sunk"], ["hit", "Cruiser"], ["boom"], [], ["sunk", "Zeppelin"]):
        with pytest.raises(ValueError):
            ShotResult.parse(bad, CLASSIC)
    with pytest.raises(ValueError):
        ShotResult("hit", "Cruiser")
    with pytest.raises(ValueError):
        ShotResult("sunk")


# --- ship moves ------------------------------------------------------------------------------------
def test_ship_move_words() -> None:
    for text in ("translate Carrier up", "translate Destroyer right", "rotate Submarine"):
        mv = ShipMove.parse(text, CLASSIC)
        assert str(mv) == text
    assert ShipMove.parse("TRANSLATE carrier Up", CLASSIC) == tr("Carrier", "up")
    for bad in ("translate Carrier", "translate Carrier north", "rotate", "rotate Carrier left",
                "fly Carrier", "translate Zeppelin up"):
        with pytest.raises(ValueError):
            ShipMove.parse(bad, CLASSIC)
    with pytest.raises(ValueError):
        ShipMove("Carrier", "rotate", "up")
    with pytest.raises(ValueError):
        ShipMove("Carrier", "translate")


def test_valid_moves_change_the_fleet() -> None:
    board = Board(MOVES, classic_layout())
    board.apply_moves([tr("Submarine", "down")])
    assert board.ships["Submarine"] == Ship("Submarine", 3, parse_cell("F5"))
    board.apply_moves([ShipMove("Submarine", "rotate")])
    assert [cell_name(c) for c in board.ships["Submarine"].cells] == ["F5", "G5", "H5"]
    board.shoot(parse_cell("B5"))  # an opponent miss: a ship may move onto it
    board.apply_moves([tr("Carrier", "down")])
    assert parse_cell("B5") in board.ships["Carrier"].cells


@pytest.mark.parametrize("moves,match", [
    ([tr("Carrier", "up")], "leave the board"),
    ([tr("Cruiser", "down")], "leave the board"),
    ([tr("Battleship", "left")], "leave the board"),
    ([ShipMove("Carrier", "rotate")], "overlap Battleship"),  # A1 h -> A1-E1 v runs into C1
    ([ShipMove("Cruiser", "rotate")], "leave the board"),  # J1 h -> J1-L1 v
    ([tr("Destroyer", "up"), tr("Destroyer", "up")], "at most once"),
    ([], "at least one"),
    ([ShipMove("Zeppelin", "rotate")], "no ship"),
])
def test_invalid_moves_are_refused(moves: list[ShipMove], match: str) -> None:
    board = Board(MOVES, classic_layout())
    before = dict(board.ships)
    with pytest.raises(RulesError, match=match):
        board.apply_moves(moves)
    assert board.ships == before


def test_hit_ships_cannot_move_and_one_bad_move_rejects_the_action() -> None:
    board = Board(MOVES, classic_layout())
    board.shoot(parse_cell("E6"))  # hits the Submarine
    assert not board.can_move("Submarine") and board.can_move("Carrier")
    assert sorted(board.movable()) == ["Battleship", "Carrier", "Cruiser", "Destroyer"]
    assert board.legal_moves("Submarine") == []
    before = dict(board.ships)
    with pytest.raises(RulesError, match="Submarine has been hit"):
        board.apply_moves([tr("Destroyer", "right"), tr("Submarine", "up")])
    assert board.ships == before  # the valid first move did not happen either


def test_moves_apply_in_order() -> None:
    # Submarine E5-E7 down -> F5-F7; Destroyer G7-H7 up -> F7-G7: each valid alone, together they meet at F7
    board = Board(MOVES, classic_layout())
    with pytest.raises(RulesError, match="Destroyer would overlap Submarine"):
        board.after_moves([tr("Submarine", "down"), tr("Destroyer", "up")])
    with pytest.raises(RulesError, match="Submarine would overlap Destroyer"):
        board.after_moves([tr("Destroyer", "up"), tr("Submarine", "down")])
    # a ship may take a cell another ship left earlier in the same action
    layout = fleet(Carrier=("A1", "h"), Battleship=("C1", "v"), Cruiser=("J1", "h"), Submarine=("E5", "h"),
                   Destroyer=("E8", "h"))
    board = Board(MOVES, layout)
    ships = board.after_moves([tr("Destroyer", "right"),
                               tr("Submarine", "right")])
    assert [cell_name(c) for c in ships["Submarine"].cells] == ["E6", "E7", "E8"]
    with pytest.raises(RulesError, match="overlap"):
        board.after_moves([tr("Submarine", "right"), tr("Destroyer", "right")])


def test_moves_need_the_game_to_enable_them() -> None:
    board = Board(CLASSIC, classic_layout())
    assert not board.can_move("Carrier") and board.movable() == [] and board.legal_moves("Carrier") == []
    with pytest.raises(RulesError, match="not enabled"):
        board.apply_moves([tr("Submarine", "down")])


def test_legal_moves_lists_exactly_the_valid_single_moves() -> None:
    board = Board(MOVES, classic_layout())
    assert [str(m) for m in board.legal_moves("Carrier")] == [
        "translate Carrier down", "translate Carrier right"]
    assert [str(m) for m in board.legal_moves("Submarine")] == [
        "translate Submarine up", "translate Submarine down", "translate Submarine left",
        "translate Submarine right", "rotate Submarine"]


# --- games -----------------------------------------------------------------------------------------
def test_a_whole_game_alternates_and_ends() -> None:
    game = Game.new(MOVES, classic_layout(), classic_layout())
    assert game.to_move == 1 and game.turn == 1
    assert game.shoot(parse_cell("J10")) == ShotResult("miss")
    assert game.to_move == 2  # a turn is one shot, hit or miss
    moved = game.move([tr("Destroyer", "right")])
    assert moved == {"Destroyer": Ship("Destroyer", 2, parse_cell("G8"), True)}
    assert game.boards[2].ships["Destroyer"].bow == parse_cell("G8")
    targets = [c for s in game.boards[2].ships.values() for c in s.cells]
    while not game.over:
        if game.to_move == 1:
            game.shoot(targets.pop())
        else:
            game.shoot(parse_cell("J10"))  # water on board 1: shooting it again and again is allowed
    assert game.winner == 1
    assert game.boards[2].defeated
    assert [t.player for t in game.history[:4]] == [1, 2, 1, 2]
    assert game.history[1].moves == (tr("Destroyer", "right"),)
    with pytest.raises(RulesError, match="game is over"):
        game.shoot((0, 0))


def test_random_games_between_random_shooters_always_finish() -> None:
    rng = random.Random(3)
    for _ in range(20):
        game = Game.random(MOVES, rng)
        while not game.over:
            board = game.boards[game.to_move]
            movable = board.movable()
            if movable and rng.random() < 0.2:
                options = [m for n in movable for m in board.legal_moves(n)]
                if options:
                    game.move([rng.choice(options)])
                    continue
            target = game.boards[3 - game.to_move]
            free = [(r, c) for r in range(10) for c in range(10) if (r, c) not in target.hits]
            game.shoot(rng.choice(free))
        assert game.boards[3 - game.winner].defeated  # type: ignore[operator]


def test_ascii_board_matches_board_ascii_orientation() -> None:
    board = Board(CLASSIC, classic_layout())
    board.shoot(parse_cell("A2"))
    board.shoot(parse_cell("B2"))
    lines = board.ascii().split("\n")
    assert lines[0].split() == [str(c) for c in range(1, 11)]
    assert lines[1].split() == ["A", "#", "X", "#", "#", "#", ".", ".", ".", ".", "."]
    assert lines[2].split()[:3] == ["B", ".", "o"]
    assert "#" not in board.ascii(reveal=False)
