"""OGS vocabulary: coordinates, JGOF time controls, clocks and their correction, results, gamedata."""

from __future__ import annotations

import pytest

from bridge.adapters.ogs.clock import ClockSync
from bridge.adapters.ogs.codec import (
    charge_clock,
    corrected_clock,
    decode_move_array,
    decode_point,
    decode_points,
    encode_point,
    encode_points,
    parse_clock,
    parse_gamedata,
    parse_player_clock,
    parse_result,
    parse_time_control,
    time_control_to_json,
)
from bridge.games.gorules import fixed_handicap_points
from bridge.games.gotypes import GoSettings, PlayerClock, TimeControl, color_of_move, gtp_vertex

# --- coordinates ------------------------------------------------------------------------------------------


def test_every_point_of_a_25x25_board_round_trips() -> None:
    for x in range(25):
        for y in range(25):
            assert decode_point(encode_point((x, y))) == (x, y)


def test_coordinates_count_from_the_top_left_and_include_i() -> None:
    assert encode_point((0, 0)) == "aa"
    assert encode_point((3, 15)) == "dp"  # D4 on 19x19
    assert gtp_vertex(decode_point("dp"), 19) == "D4"
    assert encode_point((8, 8)) == "ii"  # OGS letters do not skip i (GTP does)
    assert gtp_vertex((8, 8), 9) == "J1"


def test_pass_forms() -> None:
    assert encode_point(None) == ".."
    assert decode_point("..") is None
    assert decode_move_array([-1, -1, 1500]) is None
    assert decode_move_array([2, 3, 1500]) == (2, 3)


def test_point_lists_round_trip_sorted() -> None:
    pts = [(15, 3), (3, 15), (3, 3)]
    text = encode_points(pts)
    assert text == "dddppd"
    assert sorted(decode_points(text)) == sorted(pts)
    assert encode_points({(1, 1)}) == "bb"


@pytest.mark.parametrize("bad", ["d", "d1", "DD", "abc", "zz!"])
def test_bad_coordinates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_point(bad)


# --- time controls ----------------------------------------------------------------------------------------
TC_CASES = [
    ({"system": "fischer", "speed": "live", "initial_time": 120, "time_increment": 10, "max_time": 300,
      "pause_on_weekends": False},
     TimeControl("fischer", "live", initial_time=120, time_increment=10, max_time=300)),
    ({"system": "byoyomi", "speed": "live", "main_time": 600, "period_time": 30, "periods": 5},
     TimeControl("byoyomi", "live", main_time=600, period_time=30, periods=5)),
    ({"system": "canadian", "speed": "rapid", "main_time": 300, "period_time": 60, "stones_per_period": 10},
     TimeControl("canadian", "rapid", main_time=300, period_time=60, stones_per_period=10)),
    ({"system": "simple", "speed": "blitz", "per_move": 5}, TimeControl("simple", "blitz", per_move=5)),
    ({"system": "absolute", "speed": "correspondence", "total_time": 86400, "pause_on_weekends": True},
     TimeControl("absolute", "correspondence", total_time=86400, pause_on_weekends=True)),
    ({"system": "none", "speed": "correspondence"}, TimeControl("none", "correspondence")),
]


@pytest.mark.parametrize(("data", "expected"), TC_CASES, ids=[c[1].system for c in TC_CASES])
def test_time_control_parsing_for_every_system(data: dict, expected: TimeControl) -> None:
    assert parse_time_control(data) == expected
    assert parse_time_control(time_control_to_json(expected)) == expected


def test_time_control_accepts_the_older_time_control_key_and_missing_values() -> None:
    assert parse_time_control({"time_control": "simple", "speed": "live", "per_move": "30"}).per_move == 30
    assert parse_time_control(None) == TimeControl()
    # fischer without max_time: the cap defaults to the initial time
    assert parse_time_control({"system": "fischer", "speed": "live", "initial_time": 60,
                               "time_increment": 5}).max_time == 60


@pytest.mark.parametrize("data", [
    {"system": "hourglass", "speed": "live"},
    {"system": "fischer", "speed": "live", "initial_time": "lots", "time_increment": 1},
    {"system": "byoyomi", "speed": "live", "main_time": 10, "period_time": 5},  # periods missing
    {"system": "simple", "speed": "live", "per_move": -3},
    "fischer",
])
def test_bad_time_controls_name_the_problem(data: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_time_control(data)
    assert "time_control" in str(info.value)


# --- clocks ---------------------------------------------------------------------------------------------
T0 = 1_700_000_000_000  # ms since the epoch, as OGS sends them
BYO = TimeControl("byoyomi", "live", main_time=60, period_time=30, periods=5)
CAN = TimeControl("canadian", "live", main_time=60, period_time=120, stones_per_period=10)
FISCHER = TimeControl("fischer", "live", initial_time=120, time_increment=10, max_time=300)
SIMPLE = TimeControl("simple", "live", per_move=20)


def test_player_clock_shapes_per_system() -> None:
    assert parse_player_clock({"thinking_time": 50, "skip_bonus": False}, FISCHER) == PlayerClock(50)
    assert parse_player_clock({"thinking_time": 0, "periods": 3, "period_time": 30}, BYO) == \
        PlayerClock(0, periods=3, period_time=30)
    assert parse_player_clock({"thinking_time": 10, "moves_left": 7, "block_time": 100}, CAN) == \
        PlayerClock(10, moves_left=7, block_time=100)
    # simple: the bare number is not trusted; the budget comes from time_control.per_move
    assert parse_player_clock(T0, SIMPLE) == PlayerClock(20)
    assert parse_player_clock(None, TimeControl()) is None


def test_charging_main_time_then_byoyomi_periods() -> None:
    clock = PlayerClock(60, periods=5, period_time=30)
    assert charge_clock(clock, BYO, 10) == PlayerClock(50, periods=5, period_time=30)
    assert charge_clock(clock, BYO, 70) == PlayerClock(0, periods=5, period_time=20)
    assert charge_clock(clock, BYO, 60 + 30 * 2 + 5) == PlayerClock(0, periods=3, period_time=25)
    assert charge_clock(clock, BYO, 10_000) == PlayerClock(0, periods=0, period_time=0)


def test_charging_canadian_fischer_simple() -> None:
    assert charge_clock(PlayerClock(60, moves_left=10, block_time=120), CAN, 100) == \
        PlayerClock(0, moves_left=10, block_time=80)
    assert charge_clock(PlayerClock(50), FISCHER, 20) == PlayerClock(30)
    assert charge_clock(PlayerClock(20), SIMPLE, 25) == PlayerClock(0)


def test_clock_correction_charges_only_the_player_to_move_with_drift() -> None:
    data = {"game_id": 1, "current_player": 10, "black_player_id": 10, "white_player_id": 20,
            "last_move": T0, "expiration": 0,
            "black_time": {"thinking_time": 100, "skip_bonus": False},
            "white_time": {"thinking_time": 90, "skip_bonus": False}}
    raw = parse_clock(data, FISCHER)
    # our wall clock says T0 + 12_000 but we are 2 s ahead of the server: 10 s have been used
    state = corrected_clock(raw, FISCHER, "black", server_now_ms=T0 + 12_000 - 2_000, received_at=5.0)
    assert state.black == PlayerClock(90)
    assert state.white == PlayerClock(90)
    assert state.received_at == 5.0 and not state.paused


def test_paused_clock_stops_at_the_pause() -> None:
    data = {"current_player": 10, "black_player_id": 10, "white_player_id": 20, "last_move": T0,
            "black_time": {"thinking_time": 100}, "white_time": {"thinking_time": 100},
            "pause": {"paused": True, "paused_since": T0 + 4_000, "pause_control": {"paused": {}}}}
    raw = parse_clock(data, FISCHER)
    assert raw.paused is True
    state = corrected_clock(raw, FISCHER, "black", server_now_ms=T0 + 500_000, received_at=0.0, paused=True,
                            paused_since=raw.paused_since)
    assert state.black == PlayerClock(96) and state.paused


def test_pause_reasons_and_the_stone_removal_pause() -> None:
    base = {"current_player": 10, "black_player_id": 10, "white_player_id": 20, "last_move": T0,
            "black_time": {"thinking_time": 100}, "white_time": {"thinking_time": 100}}
    removal = parse_clock({**base, "pause": {"paused": True, "paused_since": T0,
                                             "pause_control": {"stone-removal": True}}}, FISCHER)
    assert removal.paused is False  # the players must still act in the stone-removal phase
    vacation = parse_clock({**base, "pause": {"paused": True, "paused_since": T0 // 1000,
                                              "pause_control": {"vacation-20": True, "weekend": True}}}, FISCHER)
    assert vacation.paused is True and vacation.pause_reasons == {"vacation", "weekend"}
    assert vacation.paused_since == T0  # seconds from older payloads are corrected, as goban does
    assert parse_clock(base, FISCHER).paused is None  # says nothing: keep the previous state


def test_simple_clock_budget_and_start_mode() -> None:
    data = {"current_player": 20, "black_player_id": 10, "white_player_id": 20, "last_move": T0,
            "black_time": T0, "white_time": T0}
    state = corrected_clock(parse_clock(data, SIMPLE), SIMPLE, "white", server_now_ms=T0 + 7_500,
                            received_at=0.0)
    assert state.white == PlayerClock(12.5) and state.black == PlayerClock(20)
    start = dict(data, start_mode=True)
    state = corrected_clock(parse_clock(start, SIMPLE), SIMPLE, "white", server_now_ms=T0 + 7_500,
                            received_at=0.0)
    assert state.white == PlayerClock(20)  # nobody's clock runs before the first move


def test_bad_clock_is_refused_with_its_field() -> None:
    with pytest.raises(ValueError, match="last_move"):
        parse_clock({"last_move": "yesterday"}, FISCHER)
    with pytest.raises(ValueError, match="black_time"):
        parse_clock({"black_time": "lots"}, FISCHER)


def test_clock_sync_uses_the_median_of_samples() -> None:
    sync = ClockSync()
    # server 500 ms behind us, 40 ms round trip; one outlier with a 2 s round trip
    for client, now in [(1000, 1040), (2000, 2040), (3000, 5000), (4000, 4040)]:
        sync.add(client, client + 20 - 500, now)
    assert sync.latency == pytest.approx(40)
    assert sync.drift == pytest.approx(500, abs=1)


def test_the_server_clock_is_kept_on_the_monotonic_clock_through_a_step_of_the_wall_clock() -> None:
    """Our wall clock is 500 ms ahead of the server's, then steps an hour ahead (NTP, a resumed virtual machine):
    the server's time at a monotonic instant stays right from the first pong on, and before any pong it is the
    wall clock (less a drift of 0)."""
    sync = ClockSync()
    epoch = 1.8e12  # the wall clock (ms) at monotonic 0, before the step

    def server_at(mono: float) -> float:
        return epoch + mono * 1000.0 - 500.0

    assert sync.server_now_ms(epoch + 5000.0, 5.0) == epoch + 5000.0
    for i in range(12):
        sent = 2.0 * i
        step = 3_600_000.0 if i >= 4 else 0.0
        stamp = sync.ping_stamp(epoch + sent * 1000.0 + step, sent)
        received = sent + 0.04  # a 40 ms round trip, the server answering half-way
        sync.add(stamp, server_at(sent + 0.02), epoch + received * 1000.0 + step, received)
        assert sync.latency == pytest.approx(40)
        for mono in (received, received + 0.5, received + 30.0):
            assert sync.server_now_ms(epoch + mono * 1000.0 + step, mono) == pytest.approx(server_at(mono), abs=1)
    assert sync.drift == pytest.approx(3_600_500, abs=1)  # the wall-clock drift followed the step (the pings')
    # a pong of a ping this clock did not send (an earlier connection's) measures no monotonic offset
    sync.add(12345.0, 99.0, 1e6, 60.0)
    assert sync.server_now_ms(0.0, 70.0) == pytest.approx(server_at(70.0), abs=1)


# --- results --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("outcome", "winner", "score", "won"), [
    ("3.5 points", "black", "B+3.5", "black"),
    ("12 points", "white", "W+12", "white"),
    ("Resignation", "white", "W+R", "white"),
    ("Timeout", "black", "B+T", "black"),
    ("Cancellation", None, "Void", None),
    ("Disconnection", "black", "B+F", "black"),
    ("0 points", None, "0", None),
    ("", None, "?", None),
])
def test_results_as_sgf(outcome: str, winner: str | None, score: str, won: str | None) -> None:
    result = parse_result(outcome, winner)  # type: ignore[arg-type]
    assert result.score == score and result.winner == won


# --- gamedata and handicap --------------------------------------------------------------------------------
def _gamedata(**over: object) -> dict:
    data: dict = {"game_id": 7, "width": 9, "height": 9, "komi": 0.5, "handicap": 0, "rules": "japanese",
                  "phase": "play", "initial_player": "black", "moves": [],
                  "players": {"black": {"id": 1, "username": "b"}, "white": {"id": 2, "username": "w"}},
                  "time_control": {"system": "fischer", "speed": "live", "initial_time": 60,
                                   "time_increment": 5, "max_time": 120},
                  "clock": {"current_player": 1, "black_player_id": 1, "white_player_id": 2, "last_move": 0}}
    data.update(over)
    return data


def test_fixed_handicap_from_initial_state() -> None:
    gd = parse_gamedata(_gamedata(handicap=2, free_handicap_placement=False, initial_player="white",
                                  initial_state={"black": "gccg", "white": ""}, moves=[[4, 4, 100]]))
    assert gd.initial_black == ((6, 2), (2, 6)) and gd.initial_player == "white" and not gd.free_handicap
    settings = GoSettings(9, 9, gd.komi, gd.rules, "black", handicap=2, initial_black=gd.initial_black,
                          initial_player="white")
    assert color_of_move(settings, 0) == "white" and color_of_move(settings, 1) == "black"


def test_fixed_handicap_without_initial_state_uses_goban_star_points() -> None:
    gd = parse_gamedata(_gamedata(handicap=4, free_handicap_placement=False))
    assert set(gd.initial_black) == {(2, 2), (6, 2), (2, 6), (6, 6)} and gd.initial_player == "white"
    assert set(fixed_handicap_points(19, 19, 9) or ()) == {(x, y) for x in (3, 9, 15) for y in (3, 9, 15)}
    assert fixed_handicap_points(7, 7, 2) is None


def test_free_handicap_under_chinese_rules() -> None:
    gd = parse_gamedata(_gamedata(rules="chinese", handicap=3, komi=None, moves=[[2, 2, 1], [6, 6, 1]]))
    assert gd.free_handicap and gd.initial_black == () and gd.komi == 0.5
    assert gd.moves == [(2, 2), (6, 6)]
    settings = GoSettings(9, 9, gd.komi, gd.rules, "white", handicap=3, free_handicap=True)
    assert [color_of_move(settings, i) for i in range(5)] == ["black", "black", "black", "white", "black"]


@pytest.mark.parametrize(("over", "needle"), [
    ({"width": "big"}, "width"),
    ({"moves": [[1, 2, 3], [40, 1, 0]]}, "moves[1]"),
    ({"moves": "aa"}, "moves"),
    ({"phase": "lunch"}, "phase"),
    ({"initial_state": {"black": "zzz"}}, "zzz"),
    ({"time_control": {"system": "sundial"}}, "time_control"),
])
def test_bad_gamedata_names_the_field(over: dict, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_gamedata(_gamedata(**over))
    assert needle in str(info.value)
