"""The Battleship player (bridge/games/battleship.py) with real engine subprocesses: the reference engine, and
a wrapper around it that crashes, hangs or answers nonsense at a chosen genmove. The rules model
(bridge/games/battleship_rules.Game) referees; views are built from it as a server would show them."""

from __future__ import annotations

import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.games.battleship import BattleshipPlayer, BattleshipView, OwnShip, engine_label, fallback_shot
from bridge.games.battleship_rules import CLASSIC, Game, Rules, Ship, ShotResult, parse_cell
from bridge.transcript import Transcript

ROOT = Path(__file__).parent.parent
ENGINE = ROOT / "scripts" / "battleship_engine.py"
MOVES_ON = Rules(moves_enabled=True)

FLAKY = '''
"""The reference engine, misbehaving at chosen genmoves (counted across restarts in --state FILE)."""
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec); sys.modules["ref"] = ref; spec.loader.exec_module(ref)
args = sys.argv[2:]
opt = dict(zip(args[::2], args[1::2]))
state = opt["--state"]
engine = ref.Engine(ref.Player(1))
for raw in sys.stdin:
    words = raw.split()
    if opt.get("--hang-on") and opt["--hang-on"] in words[:2]:
        time.sleep(600)
    if words and words[-1] == "genmove" or words[1:2] == ["genmove"]:
        n = int(open(state).read() or 0) + 1 if os.path.exists(state) else 1
        open(state, "w").write(str(n))
        rid = words[0] if words[0].isdigit() else ""
        at = {int(x) for x in opt.get("--at", "0").split(",")}
        if n in at or opt.get("--always") == "1":
            what = opt["--do"]
            if what == "crash":
                sys.stderr.write("flaky: crashing on purpose\\n"); sys.stderr.flush(); os._exit(3)
            if what == "hang":
                time.sleep(600)
            sys.stdout.write(f"={rid} {what}\\n\\n".replace("|", "\\n")); sys.stdout.flush()
            continue
    reply = engine.handle(raw)
    if reply is None:
        continue
    sys.stdout.write(reply + "\\n\\n"); sys.stdout.flush()
    if engine.quit:
        break
'''


def reference(seed: int = 1) -> list[str]:
    return [sys.executable, str(ENGINE), "--seed", str(seed)]


@pytest.fixture
def flaky(tmp_path: Path) -> Callable[..., list[str]]:
    """``flaky("--do", "crash", "--at", "3")`` -> the command line of the misbehaving engine."""
    script = tmp_path / "flaky_engine.py"
    script.write_text(FLAKY)
    counter = iter(range(1000))

    def make(*flags: str) -> list[str]:
        state = tmp_path / f"genmoves-{next(counter)}"
        return [sys.executable, str(script), str(ENGINE), "--state", str(state), *flags]

    return make


@pytest.fixture
def players(tmp_path: Path) -> Iterator[Callable[..., BattleshipPlayer]]:
    """``make(command, **kw)`` -> a BattleshipPlayer writing its transcript under tmp_path; closed
    afterwards."""
    made: list[tuple[BattleshipPlayer, Transcript]] = []

    def make(command: list[str] | None, name: str = "p", **kw: object) -> BattleshipPlayer:
        transcript = Transcript(tmp_path / f"{name}-{len(made)}.log")
        player = BattleshipPlayer(command, transcript=transcript, name=name, quit_grace=0.3, **kw)  # type: ignore[arg-type]
        made.append((player, transcript))
        return player

    yield make
    for player, transcript in made:
        player.close()
        transcript.close()
        assert player.engine is None


def view_of(game: Game, p: int, timeout: float = 180.0) -> BattleshipView:
    """Player ``p``'s view of ``game`` as Open Games shows it (misses listed once per shot)."""
    mine, theirs = game.boards[p], game.boards[3 - p]
    ships = tuple(OwnShip(ship, frozenset(c for c in ship.cells if c in mine.hits), mine.is_sunk(n),
                          mine.can_move(n)) for n, ship in mine.ships.items())
    return BattleshipView(
        player=p, turn=game.turn, my_turn=game.to_move == p and not game.over, ships=ships,
        opponent_hits=tuple(c for c, r in mine.shots if r.hit),
        opponent_misses=tuple(c for c, r in mine.shots if not r.hit),
        my_hits=tuple(c for c, r in theirs.shots if r.hit),
        my_misses=tuple(c for c, r in theirs.shots if not r.hit),
        sunk_ships=tuple(theirs.sunk), ships_remaining=len(theirs.ships) - len(theirs.sunk),
        game_over=game.over, winner=game.winner, turn_timeout=timeout)


def play(game: Game, players: dict[int, BattleshipPlayer], budget: float = 10.0,
         max_turns: int = 400) -> list[str]:
    """Referee a whole game; returns each turn's source ("engine"/"fallback") in order."""
    sources: list[str] = []
    for p in (1, 2):
        players[p].start(view_of(game, p))
    while not game.over:
        assert len(game.history) < max_turns, "the game does not end"
        p = game.to_move
        view = view_of(game, p)
        players[p].observe(view)
        decision = players[p].decide(view, time.monotonic() + budget)
        sources.append(decision.source)
        if decision.turn.shot is not None:
            result = game.shoot(decision.turn.shot)
            players[p].own_shot(decision.turn.shot, result)
        else:
            game.move(decision.turn.moves)  # raises if the player let an illegal move through
            players[p].own_moved(decision.turn)
    return sources


@pytest.mark.e2e
def test_a_whole_game_between_two_players_with_reference_engines(
    players: Callable[..., BattleshipPlayer], tmp_path: Path
) -> None:
    """Two players, each with the reference engine in a subprocess, ship moves on: every action is the
    engine's and legal, the game ends with a winner, each engine was started once and told every shot."""
    game = Game.random(MOVES_ON, random.Random(7))
    ps = {1: players(reference(1), "one"), 2: players(reference(2), "two")}
    sources = play(game, ps)
    assert game.winner in (1, 2)
    assert set(sources) == {"engine"}
    for p in (1, 2):
        assert ps[p].starts == 1 and ps[p].restarts == 0 and not ps[p].incidents
        told = [e for e in ps[p].history if e[0] == "shot"]
        assert len(told) == sum(1 for t in game.history if t.player == p and t.shot is not None)
    log = (tmp_path / "one-0.log").read_text()
    assert ">> 1 protocol_version" in log and "genmove" in log and "fleet Carrier:5" in log


FLEET = [Ship("Carrier", 5, (0, 0)), Ship("Battleship", 4, (2, 0)), Ship("Cruiser", 3, (4, 0)),
         Ship("Submarine", 3, (6, 0)), Ship("Destroyer", 2, (8, 0))]


@pytest.mark.e2e
def test_observe_is_idempotent_and_tells_shots_and_moves(players: Callable[..., BattleshipPlayer]) -> None:
    """Views are snapshots: the opponent's new shot is told once, a turn that passed without a new shot is an
    opponent move, a repeated view tells nothing."""
    game = Game.new(MOVES_ON, FLEET, FLEET)
    player = players(reference(3), "obs")
    game.shoot(parse_cell("A1"))  # player 1 hits player 2's Carrier
    view = view_of(game, 2)
    assert player.observe(view) == ["opponent shot A1: hit"]
    assert player.observe(view) == []
    decision = player.decide(view, time.monotonic() + 10)
    assert decision.source == "engine"
    if decision.turn.shot is not None:
        player.own_shot(decision.turn.shot, game.shoot(decision.turn.shot))
    else:
        game.move(decision.turn.moves)
        player.own_moved(decision.turn)
    game.move([game.boards[1].legal_moves("Destroyer")[0]])  # player 1 moves instead of shooting
    assert player.observe(view_of(game, 2)) == ["opponent moved ships (or shot an old miss again)"]
    ours = ["shot"] if decision.turn.shot is not None else []  # (an engine's own move is not an event)
    assert [e[0] for e in player.history] == ["opponent_shot", *ours, "opponent_moved"]


@pytest.mark.e2e
def test_observe_reads_untold_own_shots_and_sinkings_from_the_state(
    players: Callable[..., BattleshipPlayer]
) -> None:
    """Our shot whose answer never reached the player is told from the state (as after a lost answer), and
    the opponent's second hit on our Destroyer is told as 'sunk Destroyer'."""
    game = Game.new(MOVES_ON, FLEET, FLEET)
    player = players(reference(4), "sink")
    game.shoot(parse_cell("I1"))  # player 1 hits our Destroyer (I1-I2)
    game.shoot(parse_cell("J10"))  # our miss, never told to the player
    game.shoot(parse_cell("I2"))  # and sinks it
    assert player.observe(view_of(game, 2)) == [
        "our shot J10: miss (from the state)", "opponent shot I1: hit", "opponent shot I2: sunk Destroyer"]
    assert player.history[-1] == ("opponent_shot", parse_cell("I2"), ShotResult("sunk", "Destroyer"))
    decision = player.decide(view_of(game, 2), time.monotonic() + 10)
    assert decision.source == "engine" and not player.incidents
    assert all(m.ship != "Destroyer" for m in decision.turn.moves)


@pytest.mark.e2e
def test_a_crashing_engine_is_restarted_and_the_game_replayed(
    players: Callable[..., BattleshipPlayer], flaky: Callable[..., list[str]], tmp_path: Path
) -> None:
    """The engine dies at its 5th and 9th genmove: each time it is restarted, told the whole game again, and
    asked again within the same turn, so every action is still the engine's; the transcript shows why."""
    game = Game.random(MOVES_ON, random.Random(11))
    crashy = players(flaky("--do", "crash", "--at", "5,9"), "crashy", max_restarts=3)
    ps = {1: crashy, 2: players(reference(5), "ref")}
    sources = play(game, ps)
    assert crashy.restarts == 2 and crashy.starts == 3 and not crashy.gave_up
    assert sources.count("fallback") == 0
    assert len(crashy.incidents) == 2 and all("exited with code 3" in i for i in crashy.incidents)
    log = (tmp_path / "crashy-0.log").read_text()
    assert "flaky: crashing on purpose" in log and "engine restarted (1 of 3 restart(s))" in log
    assert len(re.findall(r">> \d+ new_game", log)) == 3


@pytest.mark.e2e
def test_a_hung_engine_gets_the_fallback_before_the_deadline(
    players: Callable[..., BattleshipPlayer], flaky: Callable[..., list[str]]
) -> None:
    """A genmove that never answers: the player gives up at the deadline (minus nothing: the deadline is the
    margin already), sends the fallback shot, and the next turn runs on a restarted engine."""
    game = Game.random(MOVES_ON, random.Random(3))
    player = players(flaky("--do", "hang", "--at", "2"), "hang")
    player.start(view_of(game, 1))
    for turn in range(3):
        view = view_of(game, 1)
        player.observe(view)
        started = time.monotonic()
        decision = player.decide(view, started + 3.0)
        took = time.monotonic() - started
        if turn == 1:
            assert decision.source == "fallback", decision
            assert took < 3.0 + 1.5, took
        else:
            assert decision.source == "engine"
        assert decision.turn.shot is not None
        player.own_shot(decision.turn.shot, game.shoot(decision.turn.shot))
        game.shoot(next(c for c in ((r, k) for r in range(10) for k in range(10))
                        if c not in game.boards[1].hits))
    assert player.restarts == 1
    [incident] = player.incidents  # one line: why, and what was done instead
    assert "within 3.0 s" in incident and "sending the fallback shot" in incident


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("answer", "problem"),
    [("Z99", "not usable"), ("K1", "not usable"), ("translate Zeppelin up", "not usable"),
     ("A1|reasoning: shooting a hit cell again", "already hit"),
     ("translate Carrier up", "would leave the board")],
)
def test_an_invalid_answer_gives_one_clear_incident_and_the_fallback(
    players: Callable[..., BattleshipPlayer], flaky: Callable[..., list[str]], answer: str, problem: str
) -> None:
    """Nonsense, a cell already hit, a ship move off the board: the turn is played with the fallback shot, one
    incident says what was wrong, the engine keeps running (no restart), and the next turn is the engine's."""
    game = Game.new(MOVES_ON, FLEET, FLEET)
    player = players(flaky("--do", answer, "--at", "2"), "bad")
    for turn in range(2):
        view = view_of(game, 1)
        player.observe(view)
        decision = player.decide(view, time.monotonic() + 10)
        if turn == 0:
            assert decision.source == "engine"
            game.shoot(parse_cell("A1"))
            player.own_shot(parse_cell("A1"), ShotResult("hit"))
        else:
            assert decision.source == "fallback", decision
            assert problem in decision.why
            assert decision.turn.shot not in game.boards[2].hits
            assert decision.turn.reasoning.startswith("Fallback (")
        if game.to_move == 2:
            game.shoot(parse_cell("J10"))
    assert len(player.incidents) == 1 and player.restarts == 0 and player.engine is not None


@pytest.mark.e2e
def test_after_max_restarts_the_game_is_finished_with_fallback_shots(
    players: Callable[..., BattleshipPlayer], flaky: Callable[..., list[str]]
) -> None:
    """An engine that crashes at every genmove, max_restarts 1: two failures, then one line saying the rest is
    played with fallback shots; the game is still played to its end (no turn without an action)."""
    game = Game.random(MOVES_ON, random.Random(5))
    broken = players(flaky("--do", "crash", "--always", "1"), "broken", max_restarts=1)
    sources = play(game, {1: broken, 2: players(reference(6), "ref")})
    assert game.over
    assert broken.gave_up and broken.starts == 2 and broken.restarts == 1
    assert len(broken.incidents) == 2  # the first failure, then the second with the turn's fallback
    assert "no restart left" in broken.incidents[1] and "sending the fallback shot" in broken.incidents[1]
    assert sources[::2].count("fallback") == len(sources[::2])


def test_no_engine_plays_a_whole_game_with_fallback_shots(players: Callable[..., BattleshipPlayer]) -> None:
    """The fallback alone is a real player: it sinks a static fleet well within the 100 cells."""
    game = Game.random(CLASSIC, random.Random(9))
    ps = {1: players(None, "fb"), 2: players(None, "fb2")}
    play(game, ps)
    shots = sum(1 for t in game.history if t.player == game.winner)
    assert shots < 80, shots


def test_fallback_shot_targets_open_hits_and_never_a_hit_cell() -> None:
    """Next to an open hit (not past a miss), never a cell already hit or refused; in the open, a central
    cell."""
    ships = tuple(OwnShip(s) for s in FLEET)
    view = BattleshipView(player=1, turn=3, my_turn=True, ships=ships, my_hits=((4, 4),), my_misses=((4, 5),))
    cell, reason = fallback_shot(view)
    assert cell in {(3, 4), (5, 4), (4, 3)} and "targeting" in reason
    cell2, _ = fallback_shot(view, exclude={cell})
    assert cell2 != cell and cell2 != (4, 4)
    empty = BattleshipView(player=1, turn=1, my_turn=True, ships=ships)
    first, reason = fallback_shot(empty)
    assert "hunting" in reason and first not in ((0, 0), (0, 9), (9, 0), (9, 9))


def test_a_view_with_a_ship_off_the_board_is_refused() -> None:
    with pytest.raises(ValueError, match="off the 10x10 board"):
        BattleshipView(player=1, turn=1, my_turn=True, ships=(OwnShip(Ship("Carrier", 5, (0, 7))),))


def test_engine_label() -> None:
    command = [sys.executable, "scripts/battleship_engine.py", "--seed", "1"]
    assert engine_label(command) == "battleship_engine"
    assert engine_label(["/usr/local/bin/mybot", "-v"]) == "mybot"


@pytest.mark.e2e
def test_an_engine_hung_on_bookkeeping_is_given_seconds_not_the_turn(
    players: Callable[..., BattleshipPlayer], flaky: Callable[..., list[str]]
) -> None:
    """Telling the engine the opponent's shot is bookkeeping that takes milliseconds; an engine frozen there was
    given 30 s (the soak saw a 40 s turn end in a fallback shot with 0.0 s left for the engine). It is now
    declared hung after a few seconds and restarted, and the turn is still played by the engine."""
    game = Game.random(MOVES_ON, random.Random(5))
    player = players(flaky("--do", "none", "--hang-on", "opponent_shot"), "hung-bookkeeping")
    player.start(view_of(game, 1))
    view = view_of(game, 1)
    player.observe(view)
    decision = player.decide(view, time.monotonic() + 20.0)
    assert decision.turn.shot is not None
    player.own_shot(decision.turn.shot, game.shoot(decision.turn.shot))
    game.shoot((0, 0))  # the opponent's shot: telling it hangs the engine
    started = time.monotonic()
    player.observe(view_of(game, 1))
    took = time.monotonic() - started
    assert took < 10.0, f"the hung bookkeeping command held the turn for {took:.1f} s"
    assert player.engine is None  # stopped; the next decision restarts it and replays the game
