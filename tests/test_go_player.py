"""The Go player: time mapping, clock arithmetic, and keeping a real GNU Go in step with snapshots."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from bridge.errors import EngineError
from bridge.games.go import RESIGN, GoPlayer, clock_command, time_settings_commands
from bridge.games.gotypes import (
    ClockState,
    GoSettings,
    GoState,
    Move,
    PlayerClock,
    TimeControl,
    color_of_move,
    gtp_vertex,
    parse_gtp_vertex,
)

ALL = {"kgs-time_settings", "kata-time_settings", "time_settings"}


def supports_only(*names: str) -> Callable[[str], bool]:
    return lambda cmd: cmd in names


@pytest.mark.parametrize(("tc", "have", "expected"), [
    (TimeControl("none"), ALL, [("kgs-time_settings", "none")]),
    (TimeControl("none"), {"time_settings"}, [("time_settings", "0", "1", "0")]),
    (TimeControl("fischer", initial_time=120, time_increment=10, max_time=300), ALL,
     [("kata-time_settings", "fischer-capped", "120", "10", "300", "-1")]),
    (TimeControl("fischer", initial_time=120, time_increment=10, max_time=300), {"kgs-time_settings"},
     [("kgs-time_settings", "canadian", "110", "10", "1")]),
    (TimeControl("fischer", initial_time=120, time_increment=10), {"time_settings"},
     [("time_settings", "110", "10", "1")]),
    (TimeControl("byoyomi", main_time=600, period_time=30, periods=5), ALL,
     [("kgs-time_settings", "byoyomi", "600", "30", "5")]),
    (TimeControl("byoyomi", main_time=600, period_time=30, periods=5), {"time_settings"},
     [("time_settings", "720", "30", "1")]),
    (TimeControl("canadian", main_time=300, period_time=60, stones_per_period=10), ALL,
     [("kgs-time_settings", "canadian", "300", "60", "10")]),
    (TimeControl("canadian", main_time=300, period_time=60, stones_per_period=10), {"time_settings"},
     [("time_settings", "300", "60", "10")]),
    (TimeControl("absolute", total_time=900), ALL, [("kgs-time_settings", "absolute", "900")]),
    (TimeControl("absolute", total_time=900), {"time_settings"}, [("time_settings", "900", "0", "0")]),
    (TimeControl("simple", per_move=20), {"time_settings"}, [("time_settings", "0", "20", "1")]),
    (TimeControl("byoyomi", main_time=600, period_time=30, periods=5), set(), []),
])
def test_time_settings_commands(tc: TimeControl, have: set[str], expected: list[tuple[str, ...]]) -> None:
    assert time_settings_commands(tc, lambda c: c in have) == expected


def _clock_state(tc: TimeControl, clock: PlayerClock, received_at: float = 100.0) -> GoState:
    s = GoSettings(9, 9, 6.5, "japanese", "black", time_control=tc)
    return GoState("1", s, to_move="black", clock=ClockState("black", clock, clock, received_at=received_at))


def test_clock_byoyomi_in_main_time_and_overtime() -> None:
    tc = TimeControl("byoyomi", main_time=60, period_time=10, periods=3)
    st = _clock_state(tc, PlayerClock(50, periods=3, period_time=10))
    c = clock_command(st, "black", now=104.0)
    assert c.time_left == (46.0, 0) and c.budget == pytest.approx(76.0)
    # main time 2 s, 15 s elapsed: 13 s overflow eats one period and 3 s of the next
    st = _clock_state(tc, PlayerClock(2, periods=3, period_time=10))
    c = clock_command(st, "black", now=115.0)
    assert c.time_left is not None
    assert c.time_left[0] == pytest.approx(7.0) and c.time_left[1] == 2
    assert c.budget == pytest.approx(17.0)
    # without kgs-time_settings the periods but the last are folded into main time
    c = clock_command(st, "black", now=115.0, kgs=False)
    assert c.time_left == (pytest.approx(17.0), 0)


def test_clock_fischer_canadian_absolute_simple_none() -> None:
    f = TimeControl("fischer", initial_time=60, time_increment=5, max_time=120)
    st = _clock_state(f, PlayerClock(30))
    assert clock_command(st, "black", now=110.0, kata=True).time_left == (20.0, 0)
    assert clock_command(st, "black", now=110.0, kgs=True).time_left == (15.0, 0)
    assert clock_command(st, "black", now=127.0, kgs=True).time_left == (pytest.approx(3.0), 1)
    assert clock_command(st, "white", now=110.0, kata=True).time_left == (30.0, 0)  # not white's turn: no elapsed
    c = TimeControl("canadian", main_time=60, period_time=100, stones_per_period=5)
    st = _clock_state(c, PlayerClock(0, moves_left=3, block_time=40))
    assert clock_command(st, "black", now=110.0).time_left == (30.0, 3)
    a = TimeControl("absolute", total_time=100)
    assert clock_command(_clock_state(a, PlayerClock(50)), "black", now=200.0).time_left == (0.0, 0)
    s = TimeControl("simple", per_move=20)
    assert clock_command(_clock_state(s, PlayerClock(0)), "black", now=105.0).time_left == (15.0, 1)
    n = clock_command(_clock_state(TimeControl("none"), PlayerClock(0)), "black", now=105.0)
    assert n.time_left is None and n.budget == float("inf")


@pytest.mark.parametrize(("size", "point", "vertex"), [
    (19, (0, 18), "A1"), (19, (3, 15), "D4"), (19, (8, 0), "J19"), (9, (7, 1), "H8"), (25, (24, 0), "Z25"),
])
def test_gtp_vertex_round_trip(size: int, point: tuple[int, int], vertex: str) -> None:
    assert gtp_vertex(point, size) == vertex
    assert parse_gtp_vertex(vertex, size, size) == point
    assert parse_gtp_vertex(vertex.lower(), size, size) == point


@pytest.mark.parametrize("bad", ["I5", "A0", "T20", "", "D", "4D", "resign"])
def test_gtp_vertex_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_gtp_vertex(bad, 19, 19)


def test_color_of_move() -> None:
    free = GoSettings(19, 19, 0.5, "chinese", "white", handicap=3, free_handicap=True)
    assert [color_of_move(free, i) for i in range(6)] == ["black"] * 3 + ["white", "black", "white"]
    fixed = GoSettings(19, 19, 0.5, "japanese", "white", handicap=2, initial_player="white")
    assert [color_of_move(fixed, i) for i in range(3)] == ["white", "black", "white"]


# --- with a real GNU Go ---------------------------------------------------------------------------------------
def transcript_text(p: GoPlayer) -> str:
    """Only the commands sent to the engine (``>>`` lines), without their ids."""
    assert p.transcript.path is not None
    lines = p.transcript.path.read_text().splitlines()
    return "\n".join(re.sub(r"^.*? >> (\d+ )?", "", line) for line in lines if " >> " in line) + "\n"


def _state(moves: list[Move], **kw: object) -> GoState:
    settings = GoSettings(**{"width": 9, "height": 9, "komi": 6.5, "rules": "japanese",  # type: ignore[arg-type]
                             "my_color": "black", **kw})
    to_move = color_of_move(settings, len(moves))
    return GoState("g1", settings, tuple(moves), to_move=to_move)


def test_sync_is_incremental_and_replays_after_undo(player_factory: Callable[..., GoPlayer],
                                                    gnugo_command: list[str]) -> None:
    p = player_factory(gnugo_command)
    p.sync(_state([(2, 2), (6, 6)]))
    p.sync(_state([(2, 2), (6, 6), (2, 6)]))  # one new move: a single play, no replay
    text = transcript_text(p)
    assert text.count("clear_board\n") == 1 and text.count("play black C7") == 1 and "play black C3" in text
    p.sync(_state([(2, 2)]))  # an undo: the engine is reset and the shorter game replayed
    text = transcript_text(p)
    assert text.count("clear_board\n") == 2 and text.count("play black C7") == 2
    answer = p.genmove(_state([(2, 2)]))
    assert isinstance(answer, list) and len(answer) == 1 and answer[0] not in [(2, 2)]


def test_fixed_handicap_and_time_settings_reach_the_engine(player_factory: Callable[..., GoPlayer],
                                                           gnugo_command: list[str]) -> None:
    p = player_factory(gnugo_command)
    stones = ((3, 3), (15, 15), (3, 15), (15, 3))
    tc = TimeControl("byoyomi", main_time=600, period_time=30, periods=5)
    st = _state([], width=19, height=19, handicap=4, initial_black=stones, initial_player="white",
                my_color="white", komi=0.5, time_control=tc)
    st = st.with_(to_move="white", clock=ClockState("white", PlayerClock(600, 5, 30), PlayerClock(590, 5, 30)))
    answer = p.genmove(st)
    assert isinstance(answer, list) and answer[0] not in stones
    text = transcript_text(p)
    assert "boardsize 19" in text and "komi 0.5" in text
    assert "set_free_handicap D16 Q4 D4 Q16" in text
    # GNU Go has no kgs-time_settings: periods folded into main time, the last one a 1-stone period
    assert "time_settings 720 30 1" in text
    assert "time_left white 709 0" in text and "genmove w" in text  # 590 s + 4 folded periods


def test_free_handicap_black_places_all_stones(player_factory: Callable[..., GoPlayer],
                                               gnugo_command: list[str]) -> None:
    p = player_factory(gnugo_command)
    st = _state([], width=19, height=19, handicap=3, free_handicap=True, rules="chinese")
    answer = p.genmove(st)
    assert isinstance(answer, list) and len(answer) == 3 and len(set(answer)) == 3
    assert "place_free_handicap 3" in transcript_text(p)
    # the server echoes the three stones; white answers; nothing is replayed
    p.sync(_state([*answer, (10, 10)], width=19, height=19, handicap=3, free_handicap=True, rules="chinese"))
    assert transcript_text(p).count("clear_board\n") == 1


def test_free_handicap_white_receives_set_free_handicap(player_factory: Callable[..., GoPlayer],
                                                        gnugo_command: list[str]) -> None:
    p = player_factory(gnugo_command)
    kw = {"width": 19, "height": 19, "handicap": 2, "free_handicap": True, "my_color": "white"}
    p.sync(_state([(3, 3)], **kw))  # black still placing: nothing told yet
    assert "play black" not in transcript_text(p)
    answer = p.genmove(_state([(3, 3), (15, 15)], **kw))
    assert isinstance(answer, list)
    assert "set_free_handicap D16 Q4" in transcript_text(p)


def test_dead_stones_from_the_engine(player_factory: Callable[..., GoPlayer], gnugo_command: list[str]) -> None:
    p = player_factory(gnugo_command)
    # a lone white stone inside black's wall on 9x9 is dead
    black = [(x, 4) for x in range(9)]
    moves: list[Move] = []
    whites = [(1, 1), (7, 7), (6, 1), (2, 7), (4, 1), (1, 7), (4, 7), (7, 1), (2, 2)]
    for b, w in zip(black, whites, strict=True):
        moves += [b, w]
    dead = p.dead_stones(_state(moves))
    assert dead is not None and len(dead) > 0


def test_engine_answers_are_checked(player_factory: Callable[..., GoPlayer],
                                    fake_gtp_command: Callable[..., list[str]]) -> None:
    p = player_factory(fake_gtp_command("--moves", "Z99"))
    with pytest.raises(EngineError, match=r"(?i)z99"):
        p.genmove(_state([]))
    p2 = player_factory(fake_gtp_command("--moves", "resign"))
    assert p2.genmove(_state([])) == RESIGN


def test_rectangular_board_needs_engine_support(player_factory: Callable[..., GoPlayer],
                                                gnugo_command: list[str]) -> None:
    p = player_factory(gnugo_command)
    with pytest.raises(EngineError, match="rectangular"):
        p.sync(_state([], width=9, height=13))


KATAGO_LIKE = ",".join([
    "protocol_version", "name", "version", "known_command", "list_commands", "quit", "boardsize", "clear_board",
    "komi", "play", "genmove", "time_left", "kata-set-rules", "kata-time_settings", "rectangular_boardsize",
    "final_status_list", "set_free_handicap", "place_free_handicap",
])


def test_katago_extensions_are_used_when_listed(player_factory: Callable[..., GoPlayer],
                                                fake_gtp_command: Callable[..., list[str]]) -> None:
    """KataGo is not in Debian: a scripted engine that lists KataGo's extensions stands in for it."""
    p = player_factory(fake_gtp_command("--list", KATAGO_LIKE, "--moves", "C3"))
    tc = TimeControl("fischer", initial_time=300, time_increment=10, max_time=600)
    st = _state([], width=9, height=13, rules="chinese", komi=7.5, time_control=tc)
    st = st.with_(clock=ClockState("black", PlayerClock(280), PlayerClock(300)))
    assert p.genmove(st) == [(2, 10)]
    text = transcript_text(p)
    assert "rectangular_boardsize 9 13" in text and "boardsize" not in text.replace("rectangular_boardsize", "")
    assert "kata-set-rules chinese-ogs" in text
    assert "kata-time_settings fischer-capped 300 10 600 -1" in text
    assert re.search(r"time_left black 2[78]\d 0", text)  # fischer with kata: the whole clock, no stones


def test_japanese_rules_and_kgs_rules(player_factory: Callable[..., GoPlayer],
                                      fake_gtp_command: Callable[..., list[str]]) -> None:
    listed = KATAGO_LIKE.replace("kata-set-rules", "kgs-rules").replace("kata-time_settings", "kgs-time_settings")
    p = player_factory(fake_gtp_command("--list", listed, "--moves", "D4"))
    tc = TimeControl("canadian", main_time=600, period_time=300, stones_per_period=25)
    p.genmove(_state([], rules="japanese", time_control=tc))
    text = transcript_text(p)
    assert "kgs-rules japanese" in text and "kgs-time_settings canadian 600 300 25" in text


def test_after_a_rejected_stone_removal_the_engine_cleans_up(player_factory: Callable[..., GoPlayer],
                                                             leelaz_command: list[str],
                                                             fake_gtp_command: Callable[..., list[str]]) -> None:
    """Two passes end play and start stone removal; when a player rejects the removal, play resumes. A plain
    genmove there would pass straight back into the same disagreement, so an engine that lists
    kgs-genmove_cleanup (Leela Zero, real, 19x19) is asked that instead: play on until the stones it thinks dead
    are off the board. Before any dispute, and with an engine that lacks it, it is genmove."""
    p = player_factory(leelaz_command)
    kw = {"width": 19, "height": 19, "my_color": "white"}
    opening: list[Move] = [(3, 3), (15, 15), (3, 15)]
    assert isinstance(p.genmove(_state(opening, **kw)), list)
    text = transcript_text(p)
    assert "genmove w" in text and "kgs-genmove_cleanup" not in text
    resumed: list[Move] = [*opening, (15, 3), None, None, (9, 9)]  # passed, removal rejected, black played on
    answer = p.genmove(_state(resumed, **kw))
    assert isinstance(answer, list) and len(answer) == 1
    assert transcript_text(p).endswith("kgs-genmove_cleanup w\n")

    plain = player_factory(fake_gtp_command("--moves", "C3"))  # the fake lists no kgs-genmove_cleanup
    assert plain.genmove(_state([(2, 2), None, None, (6, 6)])) == [(2, 6)]
    assert transcript_text(plain).endswith("genmove b\n")
