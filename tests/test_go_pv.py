"""engine.analysis, piece by piece: the config key, GoPlayer's genmove through a GTP analysis extension (a real fake
engine process), the relay that pairs an analysis with the move it led to, and the OGS chat action's dict body."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.adapters.ogs.actions import send_action
from bridge.config import EngineConfig, load_config_text
from bridge.errors import ConfigError, EngineError
from bridge.games.go import GoPlayer
from bridge.games.go_analysis import EngineAnalysis, analysis_of_move_info
from bridge.games.go_events import Chat
from bridge.games.go_pv import PvRelay
from bridge.games.gotypes import GoSettings, GoState, Move
from bridge.redact import register_secret
from bridge.transcript import Transcript

FAKE_GTP = [sys.executable, str(Path(__file__).parent / "fakes" / "fake_gtp.py")]
SETTINGS = GoSettings(9, 9, 6.5, "chinese", "black")


def state(moves: tuple[Move, ...] = ()) -> GoState:
    return GoState("1", SETTINGS, moves=moves, to_move="black" if len(moves) % 2 == 0 else "white")


# --- config ----------------------------------------------------------------------------------------------------
def config_text(analysis: str) -> str:
    return f"""
server: {{kind: ogs, url: "http://127.0.0.1:1", username: u, api_key: {{env: NOPE}}}}
engine: {{command: {FAKE_GTP!r}, analysis: {analysis}}}
"""


@pytest.mark.parametrize(("written", "value"),
                         [("off", "off"), ("main", "main"), ("chat", "main"), ("malkovich", "malkovich")])
def test_engine_analysis_values_and_yaml_off(written: str, value: str) -> None:
    # a bare YAML `off` is the boolean false: it must still read as "off"
    config: Any = load_config_text(config_text(written), "<t>")
    assert config.engine.analysis == value


def test_engine_analysis_refuses_other_values_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"engine\.analysis: Input should be 'off', 'main' or 'malkovich'"):
        load_config_text(config_text("spectator"), "<t>")


# --- the player -----------------------------------------------------------------------------------------------
@pytest.fixture
def players(tmp_path: Path) -> Iterator[list[GoPlayer]]:
    made: list[GoPlayer] = []
    yield made
    for p in made:
        p.close()
        p.transcript.close()


def player(made: list[GoPlayer], tmp_path: Path, *flags: str, analysis: str = "main") -> GoPlayer:
    p = GoPlayer(EngineConfig(command=[*FAKE_GTP, *flags], analysis=analysis),
                 name="pv", transcript=Transcript(tmp_path / f"t{len(made)}.log"))
    made.append(p)
    return p


def test_genmove_through_kata_genmove_analyze_gives_the_move_and_its_analysis(
        players: list[GoPlayer], tmp_path: Path) -> None:
    p = player(players, tmp_path, "--kata-analyze")
    assert p.genmove(state(((0, 8),))) == [(1, 8)]  # A1 taken: B1, with the PV B1 C1 D1 E1
    a = p.last_analysis
    assert a is not None and a.pv == ((1, 8), (2, 8), (3, 8), (4, 8))
    assert a.visits == 60 and a.score == 1.53 and round(a.win_rate, 1) == 53.0
    assert p.analyzes
    text = (tmp_path / "t0.log").read_text()
    assert re.search(r">> \d+ kata-genmove_analyze w 50", text) and "<< play B1" in text


def test_analysis_off_keeps_plain_genmove(players: list[GoPlayer], tmp_path: Path) -> None:
    p = player(players, tmp_path, "--kata-analyze", analysis="off")
    assert p.genmove(state()) == [(0, 8)]
    assert p.last_analysis is None and not p.analyzes
    text = (tmp_path / "t0.log").read_text()
    assert re.search(r">> \d+ genmove b", text) and not re.search(r">> \d+ kata-genmove_analyze", text)


def test_an_analyze_answer_without_play_is_an_engine_error(players: list[GoPlayer], tmp_path: Path) -> None:
    p = player(players, tmp_path, "--list", "protocol_version,name,version,known_command,list_commands,quit,"
               "boardsize,clear_board,komi,play,genmove,lz-genmove_analyze")
    with pytest.raises(EngineError, match="lz-genmove_analyze black with no 'play' line"):
        p.genmove(state())


def test_kata_analysis_move_info_in_the_view_of_the_player_to_move() -> None:
    info: dict[str, object] = {"move": "C3", "winrate": 0.8, "scoreLead": 4.0, "visits": 30, "pv": ["C3", "D4"]}
    black = analysis_of_move_info(info, 9, 9, black_view=True, to_move="black")
    white = analysis_of_move_info(info, 9, 9, black_view=True, to_move="white")
    assert black.pv == ((2, 6), (3, 5)) and round(black.win_rate, 6) == 80.0 and black.score == 4.0
    assert round(white.win_rate, 6) == 20.0 and white.score == -4.0 and white.visits == 30


# --- the relay --------------------------------------------------------------------------------------------------
LZ_LINES = ["  B1 ->     701 (V: 57.50%) (LCB: 57.46%) (N: 29.75%) PV: B1 C1 D1",
            "  C1 ->      12 (V: 41.00%) (LCB: 30.02%) (N:  3.10%) PV: C1 D1",
            "713 visits, 2860 nodes, 712 playouts, 700 n/s"]
B1: Move = (1, 8)


def relay() -> tuple[PvRelay, list[tuple[EngineAnalysis, int]], list[str]]:
    sent: list[tuple[EngineAnalysis, int]] = []
    notes: list[str] = []
    return PvRelay("g1", lambda a, n: sent.append((a, n)), notes.append), sent, notes


@pytest.mark.parametrize("stderr_first", [True, False])
def test_a_stderr_analysis_goes_with_its_move_whichever_comes_first(stderr_first: bool) -> None:
    r, sent, _ = relay()
    r.thinking()
    if stderr_first:
        for line in LZ_LINES:
            r.stderr(line, 9, 9)
        assert sent == []
        r.moved(1, B1, None)
    else:
        r.moved(1, B1, None)
        for line in LZ_LINES:
            r.stderr(line, 9, 9)
    assert [(a.pv[0], a.visits, a.playouts, n) for a, n in sent] == [(B1, 713, 712, 1)]


def test_an_analysis_of_another_move_is_not_sent_and_one_a_move_at_most() -> None:
    r, sent, _ = relay()
    r.thinking()
    for line in LZ_LINES:
        r.stderr(line, 9, 9)
    r.moved(1, (5, 5), None)  # the engine played something else: the PV is not about its move
    assert sent == []
    direct = EngineAnalysis((B1,), 50.0)
    r.thinking()
    r.moved(3, B1, direct)
    r.moved(3, B1, direct)  # the same move number again (a resend): no second message
    assert sent == [(direct, 3)]


def test_garbage_pv_lines_are_logged_once_a_game_and_noted_each(caplog: pytest.LogCaptureFixture) -> None:
    r, sent, notes = relay()
    assert sent == []
    garbage = "  B1 ->     701 (V: 5x.50%) (LCB: 57.46%) (N: 29.75%) PV: B1 C1"
    with caplog.at_level(logging.WARNING, logger="bridge.session"):
        r.stderr(LZ_LINES[1], 9, 9)  # the format is known from here on
        r.stderr(LZ_LINES[2], 9, 9)
        for _ in range(3):
            r.thinking()
            r.stderr(garbage, 9, 9)
            r.stderr("  B1 ->      1 (V: 50.00%) (LCB: 1.00%) (N: 1.00%) PV: B1 Z99", 9, 9)  # off the board
    assert len([rec for rec in caplog.records if "PV line that cannot be read" in rec.getMessage()]) == 1
    assert len(notes) == 6 and all("cannot be read is ignored" in n for n in notes)
    assert sent == []


# --- the OGS chat action ----------------------------------------------------------------------------------------
def test_a_dict_chat_body_is_sent_as_an_object_with_its_texts_redacted() -> None:
    register_secret("s3cr3t-token-xyz")
    sent: list[tuple[str, Any]] = []
    body = {"type": "analysis", "name": "leak s3cr3t-token-xyz", "from": 2, "moves": "ddpp",
            "engine_analysis": {"win_rate": 55.5, "visits": 10}}
    def send(command: str, payload: Any) -> bool:
        sent.append((command, payload))
        return True

    send_action(None, "7", Chat(body, "malkovich"), send, lambda g, m: None)
    (command, payload), = sent
    assert command == "game/chat" and payload["type"] == "malkovich"
    assert payload["body"] == {**body, "name": "leak ***"}
