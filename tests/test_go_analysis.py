"""The engines' analysis formats (bridge/games/go_analysis.py): the GTP analysis extensions' answers and the stderr
lines of KataGo, Leela Zero and Leela, each read into a PV with its win rate, score and visits; garbage refused."""

from __future__ import annotations

import pytest

from bridge.games.go_analysis import AnalysisError, EngineAnalysis, StderrPvParser, parse_genmove_analyze


def test_kata_genmove_analyze_best_move_and_root_visits() -> None:
    lines = [
        "info move E4 visits 487 utility -0.04 winrate 0.480018 scoreMean -0.61 scoreStdev 24.7 scoreLead -0.611848 "
        "scoreSelfplay -0.51 prior 0.22 lcb 0.47 utilityLcb -0.05 order 1 pv E4 E3 F3 "
        "info move P16 visits 470 utility -0.04 winrate 0.52 scoreMean 0.6 scoreStdev 24.7 scoreLead 0.63 "
        "prior 0.22 lcb 0.47 order 0 pv P16 P17 pass O17 rootInfo visits 1101 winrate 0.5 scoreLead 0.1",
        "play P16",
    ]
    play, analysis = parse_genmove_analyze(lines, 19, 19, scale=1.0)
    assert play == "P16"
    assert analysis == EngineAnalysis(pv=((14, 3), (14, 2), None, (13, 2)), win_rate=52.0, score=0.63, visits=1101)
    assert analysis.title() == "Win rate: 52.0%, Score: 0.6, Visits: 1101"


def test_lz_genmove_analyze_in_ten_thousandths() -> None:
    lines = ["info move D4 visits 1178 winrate 4802 prior 2211 lcb 4781 order 0 pv D4 C3 "
             "info move Q16 visits 1056 winrate 4796 prior 2206 lcb 4769 order 1 pv Q16 R17", "play D4"]
    play, analysis = parse_genmove_analyze(lines, 19, 19, scale=10000.0)
    assert play == "D4" and analysis is not None
    assert analysis.pv == ((3, 15), (2, 16)) and analysis.win_rate == pytest.approx(48.02)
    assert analysis.score is None and analysis.visits == 1178


def test_genmove_analyze_with_garbage_keeps_what_it_can_read() -> None:
    lines = ["info move Z99 visits x winrate nan order 0 pv Z99", "info move C3 visits 5 winrate 0.4 order 1 pv C3",
             "play resign"]
    play, analysis = parse_genmove_analyze(lines, 9, 9, scale=1.0)
    assert play == "resign" and analysis is not None and analysis.pv == ((2, 6),)
    assert parse_genmove_analyze(["= nothing here"], 9, 9, scale=1.0) == (None, None)


def test_katago_stderr_chat_line() -> None:
    parser = StderrPvParser(19, 19)
    assert parser.feed("KataGo v1.13.0") is None and parser.engine == "katago"
    got = parser.feed("CHAT:Visits 4005 Winrate 41.71% ScoreLead -0.9 ScoreStdev 20.6 PV C16 Q16 D4")
    assert got == EngineAnalysis(((2, 3), (15, 3), (3, 15)), 41.71, -0.9, 4005)
    got = parser.feed("MALKOVICH:Visits 10 Winrate 50.00% ScoreLead 0.0 ScoreStdev 1.0 (PDA 0.25) PV pass")
    assert got is not None and got.pv == (None,)
    with pytest.raises(AnalysisError, match="cannot be read"):
        parser.feed("CHAT:Visits 12 Winrate lots ScoreLead ? PV")


def test_leela_zero_stderr_candidate_then_summary() -> None:
    parser = StderrPvParser(19, 19)
    assert parser.feed("Playouts: 1867, Win: 57.27%, PV: D16 C17") is None  # progress lines are not the answer
    assert parser.feed("D16 ->    6703 (V: 57.50%) (LCB: 57.46%) (N: 29.75%) PV: D16 C17 C16") is None
    assert parser.engine == "leela_zero"
    assert parser.feed("D4 ->    4787 (V: 57.45%) (LCB: 57.40%) (N: 21.74%) PV: D4 C3") is None
    got = parser.feed("17937 visits, 6257774 nodes, 17936 playouts, 1037 n/s")
    assert got == EngineAnalysis(((3, 3), (2, 2), (2, 3)), 57.5, None, 17937, 17936)
    assert parser.feed("17937 visits, 6257774 nodes, 17936 playouts, 1037 n/s") is None  # no candidate since
    with pytest.raises(AnalysisError):
        parser.feed("D16 ->    67 (V: 157.50%) (N: 29.75%) PV: D16 Z40")


def test_leela_stderr_summary_line() -> None:
    parser = StderrPvParser(19, 19)
    parser.feed("MC winrate=0.484375, NN eval=0.531702, score=B+5.5")
    assert parser.engine == "leela"
    got = parser.feed("1435 visits, score 51.28% (from 51.10%) PV: F3 E3 E2 D2")
    assert got == EngineAnalysis(((5, 16), (4, 16), (4, 17), (3, 17)), 51.28, None, 1435)


def test_engines_that_print_no_pv_give_nothing() -> None:
    parser = StderrPvParser(9, 9)
    for line in ["GNU Go 3.8", "= C3", "", "White (O) has captured 0 pieces"]:
        assert parser.feed(line) is None
    assert parser.engine is None
    with pytest.raises(ValueError, match="unknown engine format"):
        StderrPvParser(9, 9, "pachi")
