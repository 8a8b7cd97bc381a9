"""The seek policy (bridge/seek.py) on its own: whom, how often, how many, colours, backoff, the end; and the
``seek:`` configuration's checks. Transport-free: a fake clock, no server."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.seek import MAX_BACKOFF, SeekConfig, Seeker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**kw: Any) -> tuple[Seeker, Clock]:
    clock = Clock()
    kw.setdefault("opponents", ["a", "b", "c"])
    kw.setdefault("every", 10)
    return Seeker(SeekConfig(**kw), clock=clock, rng=random.Random(1), self_name="me"), clock


def test_opponents_in_turn_with_the_rate_cap_and_one_game_each() -> None:
    seeker, clock = make(max_games=3)
    first = seeker.next()
    assert first is not None and first.opponent == "a"
    assert seeker.next() is None  # `every` seconds apart, whatever the room
    clock.now += 10
    second = seeker.next()
    assert second is not None and second.opponent == "b"
    seeker.started(first, "g1")
    seeker.started(second, "g2")
    clock.now += 10
    third = seeker.next()
    assert third is not None and third.opponent == "c"
    seeker.started(third, "g3")
    clock.now += 10
    assert seeker.next() is None  # max_games (3) outgoing games
    seeker.ended("g1")
    nxt = seeker.next()
    assert nxt is not None and nxt.opponent == "a"  # a is free again; b and c still play us


def test_never_two_pending_requests_to_one_opponent() -> None:
    seeker, clock = make(opponents=["a"], max_games=2)
    assert seeker.next() is not None
    clock.now += 100
    assert seeker.next() is None  # the request to a is still pending (neither started nor declined)
    assert seeker.outgoing() == 1


def test_declines_back_off_and_double_then_a_game_clears_it() -> None:
    seeker, clock = make(opponents=["a", "b"], decline_backoff=100, max_games=1)
    s = seeker.next()
    assert s is not None and s.opponent == "a"
    assert seeker.declined(s, "busy") == 100
    assert seeker.backoff_reason("A") == "busy"
    clock.now += 10
    s = seeker.next()
    assert s is not None and s.opponent == "b"  # a is left alone
    seeker.declined(s, "no")
    clock.now += 10
    assert seeker.next() is None  # both backed off
    clock.now += 90
    s = seeker.next()
    assert s is not None and s.opponent == "a"
    assert seeker.declined(s, "busy again") == 200  # doubled
    clock.now += 200
    s = seeker.next()
    assert s is not None and s.opponent == "b"
    seeker.started(s, "g")
    assert seeker.backoff_reason("b") is None


def test_backoff_is_capped_at_a_day() -> None:
    seeker, clock = make(opponents=["a"], decline_backoff=MAX_BACKOFF / 2, every=1)
    delays = []
    for _ in range(4):
        clock.now += MAX_BACKOFF + 1
        s = seeker.next()
        assert s is not None
        delays.append(seeker.declined(s, "x"))
    assert delays == [MAX_BACKOFF / 2, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]


def test_stop_after_pause_and_colours() -> None:
    seeker, clock = make(opponents=["a"], stop_after=2, pause=30, every=1)
    s1 = seeker.next()
    assert s1 is not None and s1.white is True  # alternate: white first
    seeker.started(s1, "g1")
    seeker.ended("g1")
    clock.now += 5
    assert seeker.next() is None  # the pause after a game
    clock.now += 30
    s2 = seeker.next()
    assert s2 is not None and s2.white is False
    seeker.started(s2, "g2")
    seeker.ended("g2")
    clock.now += 1000
    assert seeker.done and seeker.next() is None
    assert make(color="black")[0].next().white is False  # type: ignore[union-attr]
    assert make(color="white")[0].next().white is True  # type: ignore[union-attr]


def test_any_active_minus_the_block_list_and_ourselves() -> None:
    seeker, clock = make(opponents=[], any_active=True, block=["Trout"], every=1, max_games=5)
    assert seeker.wants_active_users()
    got = []
    for _ in range(4):
        s = seeker.next(["trout", "me", "random", "attacker"])
        if s is not None:
            got.append(s.opponent)
        clock.now += 1
    assert got == ["attacker", "random"]  # not trout (blocked), not me; each once while pending


@pytest.mark.parametrize("kw, message", [
    ({"opponents": []}, "needs someone to invite"),
    ({"opponents": ["a"], "block": ["A"]}, "both in seek.opponents and seek.block"),
    ({"opponents": ["a", "A"]}, "lists a name twice"),
    ({"opponents": ["a"], "every": 0.1}, "greater than or equal to 1"),
    ({"opponents": ["a"], "colour": "white"}, "Extra inputs"),
])
def test_bad_seek_configs_are_refused_at_load(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SeekConfig(**kw)
