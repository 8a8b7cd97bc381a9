"""engine.manager: kata_analysis with the scripted fake analysis engine (tests/fakes/fake_kata_analysis.py, a real
subprocess): many games in flight on one process, answers out of order matched by id, resign and pass, a crash
and a hang of the process."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import EngineConfig
from bridge.errors import EngineError, EngineTimeoutError
from bridge.games.go import RESIGN
from bridge.games.go_kata import KataAnalysisEngine, KataAnalysisPlayer
from bridge.games.gotypes import GoSettings, GoState, Move, parse_gtp_vertex

FAKE = Path(__file__).parent / "fakes" / "fake_kata_analysis.py"
FAKE_GTP = Path(__file__).parent / "fakes" / "fake_gtp.py"


def state(game: str, size: int = 9, moves: tuple[Move, ...] = (), color: str = "black") -> GoState:
    settings = GoSettings(width=size, height=size, komi=6.5, rules="chinese", my_color=color)  # type: ignore[arg-type]
    return GoState(game_id=game, settings=settings, moves=moves, to_move="black" if len(moves) % 2 == 0 else "white")

Players = Callable[[KataAnalysisEngine, str], KataAnalysisPlayer]  # the game_player fixture (conftest.py)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., KataAnalysisEngine]]:
    engines: list[KataAnalysisEngine] = []

    def make(*flags: str, **cfg: object) -> KataAnalysisEngine:
        command = [sys.executable, str(FAKE), "--log", str(tmp_path / "fake.log"), *flags]
        engine = KataAnalysisEngine(EngineConfig(command=command, manager="kata_analysis", **cfg))
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.close()


def events(path: Path) -> list[tuple[int, str, str]]:
    return [(int(p), e, q) for p, e, q in (line.split() for line in path.read_text().splitlines())]


def exchanges(path: Path) -> list[tuple[str, dict[str, object]]]:
    """(direction, JSON) of the katago lines in a game's transcript."""
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[1] == "katago" and parts[2] in (">>", "<<"):
            out.append((parts[2], json.loads(parts[3])))
    return out


def play_all(players: list[KataAnalysisPlayer], states: list[GoState],
             retry: bool = False) -> list[list[Move] | str]:
    answers: list[list[Move] | str] = [[] for _ in players]
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            try:
                answers[i] = players[i].genmove(states[i])
            except EngineError as exc:
                if not retry:
                    raise
                players[i].restart(str(exc))  # what the session does
                answers[i] = players[i].genmove(states[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(players))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return answers


def test_five_games_in_flight_on_one_process_answers_out_of_order_matched_by_id(
        make_engine: Callable[..., KataAnalysisEngine], game_player: Players,
        tmp_path: Path) -> None:
    engine = make_engine("--hold", "2", "--batch", "5")
    sizes = [5, 7, 9, 11, 13]  # a different board per game: an answer given to the wrong game would show
    players = [game_player(engine, f"g{n}") for n in sizes]
    states = [state(f"g{n}", n, ((0, 0),), "white") for n in sizes]
    answers = play_all(players, states)
    log = events(tmp_path / "fake.log")
    assert sum(1 for _, e, _ in log if e == "got") == 5
    assert any(e == "out-of-order" for _, e, _ in log), log  # the fake really answered out of order
    assert engine.starts == 1 and len({pid for pid, _, _ in log}) == 1
    for n, answer in zip(sizes, answers, strict=True):
        lines = exchanges(tmp_path / f"g{n}.log")
        assert [d for d, _ in lines] == [">>", "<<"]
        query, response = lines[0][1], lines[1][1]
        assert query["id"] == response["id"] and query["boardXSize"] == n
        assert query["moves"] == [["B", f"A{n}"]] and query["analyzeTurns"] == [1] and query["komi"] == 6.5
        best = response["moveInfos"][0]["move"]  # type: ignore[index]
        assert answer == [parse_gtp_vertex(best, n, n)] and answer != [(0, 0)]


def test_resigns_below_the_winrate_threshold_in_its_own_colour(
        make_engine: Callable[..., KataAnalysisEngine],
        game_player: Players) -> None:
    engine = make_engine("--winrate", "0.02", resign_winrate=0.05)  # black's view: black is lost
    assert game_player(engine, "b").genmove(state("b")) == RESIGN
    white = game_player(engine, "w").genmove(state("w", 9, ((4, 4),), "white"))
    assert isinstance(white, list) and white[0] is not None


def test_passes_when_the_best_move_is_pass_and_reads_dead_stones_from_ownership(
        make_engine: Callable[..., KataAnalysisEngine],
        game_player: Players) -> None:
    engine = make_engine()
    player = game_player(engine, "p")
    long_game = state("p", 3, (None,) * 20)  # the fake passes in a long game
    assert player.genmove(long_game) == [None]
    assert player.dead_stones(state("p", 9, ((2, 2), (6, 6)))) == frozenset()  # ownership all 0: none dead


def test_a_crash_of_the_process_restarts_it_and_every_game_goes_on(
        make_engine: Callable[..., KataAnalysisEngine], game_player: Players,
        tmp_path: Path) -> None:
    engine = make_engine("--hold", "1", "--batch", "5", "--crash-after", "3", "--once-file", str(tmp_path / "crashed"))
    players = [game_player(engine, f"c{i}") for i in range(5)]
    answers = play_all(players, [state(f"c{i}") for i in range(5)], retry=True)
    assert all(isinstance(a, list) and a[0] is not None for a in answers), answers
    assert engine.starts == 2 and engine.engines_alive() == 1
    assert (tmp_path / "crashed").exists()
    assert sum(p.restarts for p in players) >= 1


def test_a_hung_process_is_terminated_then_restarted(
        make_engine: Callable[..., KataAnalysisEngine],
        game_player: Players) -> None:
    engine = make_engine("--hang", max_move_time=0.5, move_margin=0.5)
    player = game_player(engine, "h")
    with pytest.raises(EngineTimeoutError, match="treated as hung"):
        player.genmove(state("h"))
    assert engine.engines_alive() == 1
    player.restart("hung")
    assert engine.engines_alive() == 0  # stopped; the next query starts another


def test_check_starts_the_analysis_engine_and_asks_a_move(tmp_path: Path) -> None:
    from bridge.check import check_engine
    from bridge.config import load_config_text

    config = load_config_text(f"""
server: {{kind: ogs, username: bot, api_key: {{env: HOME}}}}
engine: {{command: [{sys.executable}, {FAKE}], manager: kata_analysis}}
""")
    lines = check_engine(config)
    assert all(line.ok for line in lines), lines
    assert "analysis engine answered a test query on 9x9" in lines[-1].what
    bad = load_config_text(f"""
server: {{kind: ogs, username: bot, api_key: {{env: HOME}}}}
engine: {{command: [{sys.executable}, {FAKE_GTP}], manager: kata_analysis, startup_timeout: 0.5}}
""")  # a GTP engine, not an analysis engine
    [line] = check_engine(bad)
    assert not line.ok and "no answer to query_version within 0.5 s" in line.what, line
    hung = load_config_text(f"""
server: {{kind: ogs, username: bot, api_key: {{env: HOME}}}}
engine: {{command: [{sys.executable}, {FAKE}, --hang], manager: kata_analysis, startup_timeout: 1, move_margin: 1}}
""")
    [started, failed] = check_engine(hung)
    assert started.ok and not failed.ok and "treated as hung" in failed.what, failed


def test_abort_ends_the_games_query_at_once_and_leaves_the_shared_process_running(
        make_engine: Callable[..., KataAnalysisEngine], game_player: Players,
        tmp_path: Path) -> None:
    engine = make_engine("--delay", "30")
    player = game_player(engine, "a")
    errors: list[BaseException] = []

    def think() -> None:
        try:
            player.genmove(state("a"))
        except EngineError as exc:
            errors.append(exc)

    t = threading.Thread(target=think)
    t.start()
    deadline = threading.Event()
    for _ in range(200):  # until the query reached the fake
        if (tmp_path / "fake.log").exists() and "got" in (tmp_path / "fake.log").read_text():
            break
        deadline.wait(0.05)
    player.abort("the game is over")
    t.join(timeout=5)
    assert not t.is_alive() and errors and "the game is over" in str(errors[0])
    assert engine.engines_alive() == 1  # the other games' process goes on
    sent = [body for d, body in exchanges(tmp_path / "a.log") if d == ">>"]
    assert sent[-1]["action"] == "terminate" and sent[-1]["terminateId"] == sent[0]["id"]


@pytest.mark.parametrize("view", ["BLACK", "WHITE", "SIDETOMOVE"])
def test_dead_stones_and_resignation_read_black_s_view_whatever_the_analysis_config_says(
        make_engine: Callable[..., KataAnalysisEngine], game_player: Players,
        view: str) -> None:
    # black owns every point and white's winrate is 2 %; the engine's config reports another view unless overridden
    engine = make_engine("--ownership", "0.9", "--winrate", "0.98", "--view", view)
    player = game_player(engine, "d")
    assert player.dead_stones(state("d", 9, ((2, 2), (6, 6)))) == frozenset({(6, 6)})  # white's stone
    assert game_player(engine, "w").genmove(state("w", 9, ((4, 4),), "white")) == RESIGN
    assert game_player(engine, "b").genmove(state("b", 9, ((4, 4), (3, 3)))) != RESIGN


def test_an_abort_before_the_query_is_written_terminates_it_after_it(
        make_engine: Callable[..., KataAnalysisEngine], game_player: Players,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The abort can come between the query's registration and its line being written (seen once under load): the
    terminate must follow the query, else the shared engine computes an abandoned query to its end."""
    engine = make_engine("--delay", "30")
    player = game_player(engine, "r")
    register = player._register

    def register_then_abort(query: Any) -> None:
        register(query)
        if query is not None:
            player.abort("the game is over")  # before ask() writes the query's line

    monkeypatch.setattr(player, "_register", register_then_abort)
    with pytest.raises(EngineError, match="the game is over"):
        player.genmove(state("r"))
    sent = [body for d, body in exchanges(tmp_path / "r.log") if d == ">>"]
    assert sent[-1].get("action") == "terminate" and sent[-1]["terminateId"] == sent[-2]["id"], sent
