"""Engine roles (go.opening_engine, go.ending_engine) and go.min_move_time, on scripted fake engines (real
subprocesses) driven through the roles object the session uses."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import EngineConfig, GoConfig, load_config_text
from bridge.errors import ConfigError, EngineError
from bridge.games.go import RESIGN, GoPlayer
from bridge.games.go_roles import GoRoles, own_moves, wrap_roles
from bridge.games.gotypes import ClockState, GoSettings, GoState, Move, PlayerClock, TimeControl
from bridge.transcript import Transcript

SETTINGS = GoSettings(width=9, height=9, komi=6.5, rules="chinese", my_color="black")
FILLER: list[Move] = [(x, y) for y in range(9) for x in range(9)]  # the fakes check no legality


def state(n: int, *, clock: ClockState | None = None, tc: TimeControl | None = None) -> GoState:
    """A game of ``n`` moves with black (the bot) to move."""
    assert n % 2 == 0
    settings = SETTINGS if tc is None else GoSettings(**{**SETTINGS.__dict__, "time_control": tc})
    return GoState("1", settings,
                   moves=tuple(FILLER[:n]), to_move="black", clock=clock)


def genmoves(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.split()[1:2] == ["genmove"]) if log.exists() else 0


@pytest.fixture
def roles(player_factory: Callable[..., GoPlayer]) -> Iterator[Callable[..., GoRoles]]:
    """GoRoles around a main GoPlayer from ``player_factory`` (which closes it and its transcript at teardown)."""
    made: list[GoRoles] = []

    def make(main: list[str], **go: Any) -> GoRoles:
        player = player_factory(main)
        wrapped = wrap_roles(player, GoConfig.model_validate(go), name="g", transcript=player.transcript,
                             on_stderr=None)
        assert isinstance(wrapped, GoRoles)
        made.append(wrapped)
        return wrapped

    yield make
    for r in made:
        r.close()  # the opening and ending engines; the main one again, harmlessly


def test_opening_engine_plays_the_first_n_moves_then_the_main_engine(
        roles: Callable[..., GoRoles], fake_gtp_command: Callable[..., list[str]], tmp_path: Path) -> None:
    main_log, open_log = tmp_path / "main.log", tmp_path / "opening.log"
    r = roles(fake_gtp_command("--moves", "J9", "--log", str(main_log)),
              opening_engine={"command": fake_gtp_command("--moves", "A1", "--log", str(open_log)), "moves": 3})
    answers = [r.genmove(state(2 * i)) for i in range(6)]
    assert answers == [[(0, 8)]] * 3 + [[(8, 0)]] * 3
    assert genmoves(open_log) == 3 and genmoves(main_log) == 3
    assert r.opening is not None and r.opening.engine is None  # stopped once its moves are played
    # the main engine was told the whole game at its first move: all 6 moves before its first genmove
    main_lines = main_log.read_text().splitlines()
    first = next(i for i, line in enumerate(main_lines) if " genmove " in f" {line} ")
    assert sum(1 for line in main_lines[:first] if line.split()[1:2] == ["play"]) == 6
    assert own_moves(state(6)) == 3


def test_ending_engine_resigns_only_after_the_configured_votes_in_a_row(
        roles: Callable[..., GoRoles], fake_gtp_command: Callable[..., list[str]], tmp_path: Path) -> None:
    end_log = tmp_path / "ending.log"
    # votes: resign, resign, a move (the count starts again), resign, resign, resign
    r = roles(fake_gtp_command("--moves", "J9"),
              ending_engine={"command": fake_gtp_command("--moves", "resign,resign,C3,resign,resign,resign",
                                                         "--log", str(end_log)),
                             "after": 0.5, "resign_votes": 3})
    assert r.genmove(state(38)) == [(8, 0)]  # 38 < ceil(81 * 0.5) = 41: not consulted yet
    assert genmoves(end_log) == 0
    answers = [r.genmove(state(n)) for n in range(42, 54, 2)]
    assert answers == [[(8, 0)]] * 5 + [RESIGN], answers
    assert genmoves(end_log) == 6


def test_ending_engine_pass_replaces_the_main_move_and_proposals_are_taken_back(
        roles: Callable[..., GoRoles], fake_gtp_command: Callable[..., list[str]], tmp_path: Path) -> None:
    main_log, end_log = tmp_path / "main.log", tmp_path / "ending.log"
    listed = "protocol_version,name,version,known_command,list_commands,quit,boardsize,clear_board,komi,play," \
             "genmove,undo"
    r = roles(fake_gtp_command("--moves", "J9", "--log", str(main_log), "--list", listed),
              ending_engine={"command": fake_gtp_command("--moves", "C3,pass", "--log", str(end_log),
                                                         "--list", listed), "after": 0.0})
    assert r.genmove(state(0)) == [(8, 0)]  # the ending engine proposed C3, which was not played: undone
    assert r.genmove(state(2)) == [None]  # it passes: the bot passes, the main engine's J9 is undone
    assert "undo" in end_log.read_text().split() and "undo" in main_log.read_text().split()


def test_a_failing_ending_engine_is_restarted_then_left_out_and_never_breaks_the_game(
        roles: Callable[..., GoRoles], fake_gtp_command: Callable[..., list[str]], tmp_path: Path) -> None:
    end_log = tmp_path / "ending.log"
    r = roles(fake_gtp_command("--moves", "J9"),
              ending_engine={"command": fake_gtp_command("--crash-on", "genmove", "--log", str(end_log), "--log-pid"),
                             "after": 0.0, "max_restarts": 1})
    answers = [r.genmove(state(2 * i)) for i in range(4)]
    assert answers == [[(8, 0)]] * 4
    # started twice (the first start and one restart), asked twice, then left out of the game
    pids = {line.split()[0] for line in end_log.read_text().splitlines()}
    assert len(pids) == 2 and genmoves_pid(end_log) == 2
    assert r.ending is not None and r.ending.engine is None


def genmoves_pid(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.split()[2:3] == ["genmove"])


def test_a_failing_opening_engine_counts_its_own_restarts_then_the_main_engine_plays(
        roles: Callable[..., GoRoles], fake_gtp_command: Callable[..., list[str]]) -> None:
    r = roles(fake_gtp_command("--moves", "J9"),
              opening_engine={"command": fake_gtp_command("--crash-on", "genmove"), "moves": 5, "max_restarts": 0})
    with pytest.raises(EngineError):
        r.genmove(state(0))
    assert r.restarts == 0  # the main engine's count: the game is not given up for a role engine
    r.restart("crashed")  # what the session does: the opening engine is out, nothing else restarted
    assert r.main.restarts == 0
    assert r.genmove(state(0)) == [(8, 0)]


def test_min_move_time_holds_the_answer_but_never_spends_the_clock(
        roles: Callable[..., GoRoles], fake_gtp_command: Callable[..., list[str]]) -> None:
    r = roles(fake_gtp_command("--moves", "J9"), min_move_time=0.6)
    began = time.monotonic()
    assert r.genmove(state(0)) == [(8, 0)]
    assert time.monotonic() - began >= 0.6
    # 3 s left on a byo-yomi clock (last period): at most (3 - 1) / 2 = 1 s is spent waiting, not 20
    r2 = roles(fake_gtp_command("--moves", "J9"), min_move_time=20)
    tc = TimeControl("byoyomi", main_time=0, period_time=3, periods=1)
    clock = ClockState("black", PlayerClock(thinking_time=0, periods=1, period_time=3),
                       PlayerClock(thinking_time=0, periods=1, period_time=3))
    began = time.monotonic()
    r2.genmove(state(0, clock=clock, tc=tc))
    assert time.monotonic() - began < 10


def test_no_roles_no_wrapper(tmp_path: Path, fake_gtp_command: Callable[..., list[str]]) -> None:
    t = Transcript(None)
    player = GoPlayer(EngineConfig(command=fake_gtp_command()), name="g", transcript=t)
    assert wrap_roles(player, GoConfig(), name="g", transcript=t, on_stderr=None) is player


def load(manager: str, go: str) -> Any:
    """A config with ``engine.manager`` and a ``go`` section; ``PY`` in ``go`` stands for an engine binary."""
    py = sys.executable
    go = go.replace("PY", py)
    return load_config_text(f"server: {{kind: ogs, username: bot, api_key: {{env: X}}}}\n"
                            f"engine: {{command: [{py}], manager: {manager}}}\ngo: {go}\n")


@pytest.mark.parametrize("manager", ["pool", "kata_analysis"])
def test_roles_need_per_game(manager: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(manager, "{ending_engine: {command: [PY]}}")
    message = str(err.value)
    assert "go.ending_engine needs engine.manager: per_game" in message and len(message.splitlines()) == 1
    assert load(manager, "{min_move_time: 1.5}").go.min_move_time == 1.5


def test_role_engine_keys_are_validated() -> None:
    with pytest.raises(ConfigError, match="a Go role engine speaks GTP"):
        load("per_game", "{opening_engine: {command: [PY], protocol: uci}}")
    with pytest.raises(ConfigError, match="resign_votes"):
        load("per_game", "{ending_engine: {command: [PY], resign_votes: 0}}")
    cfg = load("per_game", "{opening_engine: {command: [PY]}, ending_engine: {command: [PY]}}")
    assert (cfg.go.opening_engine.moves, cfg.go.ending_engine.after, cfg.go.ending_engine.resign_votes) == (8, 0.8, 3)
