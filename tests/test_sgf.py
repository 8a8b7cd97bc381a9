"""SGF records of Go games: the time properties of every OGS time system."""

from __future__ import annotations

import pytest

from bridge.games.gotypes import GoSettings, GoState, TimeControl
from bridge.games.sgf import read_sgf_moves, read_sgf_property, to_sgf


@pytest.mark.parametrize(("tc", "tm", "ot"), [
    (TimeControl("fischer", initial_time=30, time_increment=5, max_time=60), "30",
     "fischer 5s increment, max 60s"),
    (TimeControl("byoyomi", main_time=600, period_time=30, periods=5), "600", "5x30 byo-yomi"),
    (TimeControl("canadian", main_time=600, period_time=300, stones_per_period=25), "600", "25/300 Canadian"),
    (TimeControl("absolute", total_time=900), "900", "none (absolute)"),
    (TimeControl("simple", per_move=30), "0", "30s per move (simple)"),
    (TimeControl("none"), "0", "no time limit"),
])
def test_every_time_system_has_tm_and_ot(tc: TimeControl, tm: str, ot: str) -> None:
    settings = GoSettings(width=9, height=9, komi=6.5, rules="japanese", my_color="black", time_control=tc)
    text = to_sgf(GoState("1", settings, moves=((2, 2), None)))
    assert read_sgf_property(text, "TM") == tm
    assert read_sgf_property(text, "OT") == ot
    assert read_sgf_moves(text) == [("B", (2, 2)), ("W", None)]
