"""LineEngine (the Battleship line-protocol driver) against real subprocesses: the reference engine
(scripts/battleship_engine.py), a scripted fake line engine written by these tests, and the fake GTP
engine."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.engines.line import (
    MAX_MESSAGE,
    MAX_REASONING,
    PROTOCOL_VERSION,
    REQUIRED_COMMANDS,
    EngineTurn,
    LineEngine,
    parse_turn,
)
from bridge.errors import EngineError, EngineRefusedError, EngineTerminatedError, EngineTimeoutError
from bridge.games.battleship_rules import CLASSIC, Game, Rules, Ship, ShipMove, ShotResult, parse_cell
from bridge.transcript import Transcript

ENGINE = Path(__file__).resolve().parent.parent / "scripts" / "battleship_engine.py"
MOVES = Rules(moves_enabled=True)
Starter = Callable[..., LineEngine]

FAKE_LINE_ENGINE = r'''
"""A scripted fake Battleship line engine: --genmove TEXT (\n for new lines), --protocol V, --list a,b,c,
--hang-on CMD, --exit-on CMD."""
import sys
import time

args = sys.argv[1:]
opts = dict(zip(args[::2], args[1::2]))
listed = opts.get("--list", "protocol_version,name,version,known_command,list_commands,quit,new_game,board,"
                  "fleet,ship_moves,place,movable,shot_result,opponent_shot,opponent_moved,genmove").split(",")
for raw in sys.stdin:
    words = raw.split()
    if not words:
        continue
    rid = words.pop(0) if words[0].isdigit() else ""
    cmd = words[0]
    if cmd == opts.get("--hang-on"):
        time.sleep(3600)
    if cmd == opts.get("--exit-on"):
        sys.stderr.write("fake: giving up on " + cmd + "\n")
        sys.exit(4)
    if cmd == "protocol_version":
        out = "=" + rid + " " + opts.get("--protocol", "battleship-line-protocol 1")
    elif cmd == "name":
        out = "=" + rid + " fake-line"
    elif cmd == "version":
        out = "=" + rid + " 0.1"
    elif cmd == "list_commands":
        out = "=" + rid + " " + "\n".join(listed)
    elif cmd == "genmove":
        out = ("=" + rid + " " + opts.get("--genmove", "A5").replace("\\n", "\n")).rstrip()
    elif cmd in listed:
        out = "=" + rid
    else:
        out = "?" + rid + " unknown command"
    sys.stdout.write(out + "\n\n")
    sys.stdout.flush()
    if cmd == "quit":
        break
'''


@pytest.fixture
def start() -> Iterator[Starter]:
    """LineEngine.start with teardown: every engine is closed and must be gone."""
    engines: list[LineEngine] = []

    def make(command: list[str], **kw: object) -> LineEngine:
        kw.setdefault("quit_grace", 0.5)
        kw.setdefault("startup_timeout", 10.0)
        e = LineEngine.start(command, **kw)  # type: ignore[arg-type]
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.close()
        assert not e.alive


@pytest.fixture
def fake(tmp_path: Path) -> Callable[..., list[str]]:
    """``fake("--genmove", "Z99")`` -> the command line of the scripted fake line engine."""
    script = tmp_path / "fake_line.py"
    script.write_text(FAKE_LINE_ENGINE)

    def make(*flags: str) -> list[str]:
        return [sys.executable, str(script), *flags]

    return make


def reference(seed: int = 1, *flags: str) -> list[str]:
    return [sys.executable, str(ENGINE), "--seed", str(seed), *flags]


def classic_fleet() -> list[Ship]:
    return [Ship("Carrier", 5, (0, 0)), Ship("Battleship", 4, (2, 0), True), Ship("Cruiser", 3, (9, 0)),
            Ship("Submarine", 3, (4, 4)), Ship("Destroyer", 2, (6, 6), True)]


# --- handshake -------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_handshake_with_the_reference_engine(start: Starter, tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "t.txt")
    engine = start(reference(), name="ref", transcript=transcript)
    assert engine.protocol_version == PROTOCOL_VERSION
    assert engine.engine_name == "bridge-reference-battleship"
    assert engine.engine_version == "1.0"
    assert REQUIRED_COMMANDS <= engine.commands and engine.supports("showboard")
    engine.new_game(CLASSIC)
    engine.place_fleet(classic_fleet())
    board = engine.showboard()
    assert board.split("\n")[2].split() == ["A", "#", "#", "#", "#", "#", ".", ".", ".", ".", "."]
    engine.close()
    transcript.close()
    text = (tmp_path / "t.txt").read_text()
    assert "ref >> 1 protocol_version" in text
    assert f"ref << =1 {PROTOCOL_VERSION}" in text
    assert "ref >> 9 place Carrier A1 h" in text  # new_game, board, fleet, ship_moves come first


def test_a_gtp_engine_is_refused_clearly(start: Starter, fake_gtp_command: Callable[..., list[str]]) -> None:
    with pytest.raises(EngineError) as err:
        start(fake_gtp_command(), name="go")
    msg = str(err.value)
    assert "engine go failed its Battleship line-protocol start-up handshake" in msg
    assert "speaks protocol '2' (that is a GTP engine: Go, not Battleship)" in msg
    assert PROTOCOL_VERSION in msg


def test_another_protocol_version_is_refused(start: Starter, fake: Callable[..., list[str]]) -> None:
    with pytest.raises(EngineError, match="speaks protocol 'battleship-line-protocol 2'; this bridge speaks "
                                          "'battleship-line-protocol 1'"):
        start(fake("--protocol", "battleship-line-protocol 2"))


def test_a_missing_required_command_is_refused(start: Starter, fake: Callable[..., list[str]]) -> None:
    listed = ",".join(sorted(REQUIRED_COMMANDS - {"genmove", "opponent_moved"}))
    with pytest.raises(EngineError, match=r"lacks the required command.s. genmove opponent_moved"):
        start(fake("--list", listed))


def test_a_missing_program_is_refused(start: Starter, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="not found"):
        start([str(tmp_path / "no-such-engine")])


# --- a whole game ----------------------------------------------------------------------------------
def play(engines: dict[int, LineEngine], game: Game) -> list[EngineTurn]:
    """Run ``game`` to its end between two line engines, the way a Battleship player would."""
    rules = game.rules
    for who, engine in engines.items():
        engine.new_game(rules)
        engine.place_fleet(game.boards[who].ships.values())
    turns = []
    while not game.over and len(game.history) < 500:
        me, them = engines[game.to_move], engines[3 - game.to_move]
        if rules.moves_enabled:
            me.movable(game.boards[game.to_move].movable())
        turn = me.genmove(timeout=10.0)
        turns.append(turn)
        if turn.shot is not None:
            result = game.shoot(turn.shot)
            me.shot_result(turn.shot, result)
            them.opponent_shot(turn.shot, result)
        else:
            for ship in game.move(turn.moves).values():  # raises RulesError if the engine broke a rule
                me.place(ship)
            them.opponent_moved()
    return turns


@pytest.mark.e2e
def test_self_play_game_between_two_engine_subprocesses(start: Starter, tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "game.txt")
    engines = {1: start(reference(3), name="one", transcript=transcript),
               2: start(reference(4, "--greet", "Good luck!"), name="two", transcript=transcript)}
    game = Game.random(MOVES, random.Random(8))
    turns = play(engines, game)
    assert game.over and game.winner in (1, 2)
    assert game.winner is not None and game.boards[3 - game.winner].defeated
    shots = [t for t in turns if t.shot is not None]
    assert len(shots) >= 17  # the winner needed a hit on every cell of the loser's fleet
    assert any(t.moves for t in turns)  # ship moves happened, were legal, and were re-synced with place
    assert all(t.reasoning for t in turns)  # the reference engine explains every turn
    assert turns[1].message == "Good luck!" and not any(t.message for t in turns[2:])
    for e in engines.values():
        assert e.broken is None and e.alive
    transcript.close()
    text = (tmp_path / "game.txt").read_text()
    assert "one >> " in text and "two << " in text and "genmove" in text


@pytest.mark.e2e
def test_two_static_games_in_a_row_on_one_engine(start: Starter) -> None:
    engines = {1: start(reference(5)), 2: start(reference(6))}
    rng = random.Random(2)
    for _ in range(2):
        game = Game.random(CLASSIC, rng)
        turns = play(engines, game)
        assert game.over
        assert all(t.shot is not None for t in turns)  # no ship moves in a classic game


# --- bad answers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("answer,rules,match", [
    ("Z99", CLASSIC, "the shot 'Z99' is not valid"),
    ("K1", CLASSIC, "off the 10x10 board"),
    ("", CLASSIC, "no shot and no ship move"),
    ("reasoning: just talking", CLASSIC, "no shot and no ship move"),
    ("A5\\nB6", CLASSIC, "ship moves are not enabled"),
    ("A5\\nB6", MOVES, "is not a ship move"),
    ("translate Carrier up", CLASSIC, "ship moves are not enabled"),
    ("translate Carrier sideways", MOVES, "is not a ship move"),
    ("rotate Zeppelin", MOVES, "no ship 'Zeppelin'"),
    ("rotate Carrier\\nrotate carrier", MOVES, "ship Carrier moves twice"),
    ("translate Destroyer up", MOVES, "ship Destroyer may not move this turn .movable: Carrier, Cruiser."),
    ("A5\\nreasoning: a\\nreasoning: b", CLASSIC, "the reasoning: line appears twice"),
    ("reasoning: first\\nA5", CLASSIC, "'A5' comes after the reasoning/message lines"),
])
def test_an_invalid_genmove_answer_is_a_clear_error(
    start: Starter, fake: Callable[..., list[str]], answer: str, rules: Rules, match: str
) -> None:
    engine = start(fake("--genmove", answer), name="fake")
    engine.new_game(rules)
    if rules.moves_enabled:
        engine.movable(["carrier", "Cruiser"])
    with pytest.raises(EngineError, match=match) as err:
        engine.genmove(timeout=5.0)
    assert str(err.value).startswith("engine fake answered genmove with ")
    assert "docs/battleship-protocol.md" in str(err.value)
    assert engine.broken is None  # the framing was fine: the engine can still be used
    engine.opponent_moved()


@pytest.mark.e2e
def test_refusals_and_unlisted_commands(start: Starter, tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "t.txt")
    engine = start(reference(), name="ref", transcript=transcript)
    engine.new_game(CLASSIC)
    with pytest.raises(EngineRefusedError, match="leaves the board") as err:
        engine.place(Ship("Carrier", 5, (0, 8)))
    assert err.value.command == "place Carrier A9 h"
    with pytest.raises(EngineError, match="does not support 'fly'"):
        engine.command("fly", "away")
    with pytest.raises(EngineError, match="not a Battleship line-protocol command name"):
        engine.command("two words")
    engine.place_fleet(classic_fleet())  # still usable
    engine.shot_result(parse_cell("E5"), ShotResult("hit"))
    assert engine.genmove(timeout=5.0).shot is not None
    transcript.close()
    assert "fly" not in (tmp_path / "t.txt").read_text()


def test_a_hung_engine_times_out_and_is_closed(start: Starter, fake: Callable[..., list[str]]) -> None:
    engine = start(fake("--hang-on", "genmove"), name="slow", quit_grace=0.2)
    engine.new_game(CLASSIC)
    with pytest.raises(EngineTimeoutError, match=r"did not answer '\d+ genmove' within 0\.3 s"):
        engine.genmove(timeout=0.3)
    assert engine.broken is not None
    with pytest.raises(EngineError, match="restart the engine"):
        engine.opponent_moved()
    engine.close()
    engine.close()  # idempotent, never raises
    assert not engine.alive


def test_a_dying_engine_is_reported_with_its_last_words(
    start: Starter, fake: Callable[..., list[str]]
) -> None:
    engine = start(fake("--exit-on", "genmove"), name="dying")
    engine.new_game(CLASSIC)
    with pytest.raises(EngineTerminatedError, match=r"exited with code 4.*fake: giving up on genmove"):
        engine.genmove(timeout=5.0)
    engine.close()
    assert not engine.alive


# --- parsing answers -------------------------------------------------------------------------------
def test_parse_turn_reads_shots_moves_reasoning_and_messages() -> None:
    t = parse_turn("e5\nmessage:  hi   there \nREASONING: Hunting:  the centre", CLASSIC)
    assert t == EngineTurn(shot=(4, 4), reasoning="Hunting: the centre", message="hi there")
    assert t.kind == "shoot" and str(t) == "E5"
    answer = "translate Carrier down\nrotate destroyer\n\nreasoning: evading"
    t = parse_turn(answer, MOVES, ["Carrier", "DESTROYER"])
    assert t.moves == (ShipMove("Carrier", "translate", "down"), ShipMove("Destroyer", "rotate"))
    assert t.kind == "move" and str(t) == "translate Carrier down, rotate Destroyer"
    assert t.reasoning == "evading" and t.message == ""
    t = parse_turn("A1\nreasoning: " + "x" * 5000 + "\nmessage: " + "y" * 5000, CLASSIC)
    assert len(t.reasoning) == MAX_REASONING and len(t.message) == MAX_MESSAGE  # cut, not refused
    assert parse_turn("J10", Rules(rows=12, cols=12)).shot == (9, 9)
    with pytest.raises(ValueError, match="off the 10x10 board"):
        parse_turn("L12", CLASSIC)


def test_engine_turn_is_a_shot_or_moves() -> None:
    with pytest.raises(ValueError):
        EngineTurn()
    with pytest.raises(ValueError):
        EngineTurn(shot=(0, 0), moves=(ShipMove("Carrier", "rotate"),))
