"""The challenge policy: every rule rejects with gtp2ogs's rejection code and a reason, in gtp2ogs's order;
the allow list overrides the rules about the game and the opponent, not the operator's state."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.adapters.ogs.config import ChallengePolicy
from bridge.adapters.ogs.policy import Challenge, bot_config, decide, parse_challenge


def notification(**over: Any) -> dict[str, Any]:
    """A challenge notification as OGS sends it (goban's shapes; gtp2ogs reads these fields)."""
    data: dict[str, Any] = {
        "id": "n-1", "type": "challenge", "challenge_id": 101, "game_id": 5001,
        "user": {"id": 77, "username": "alice", "ranking": 20.5, "professional": False},
        "rules": "japanese", "ranked": False, "handicap": 0, "komi": None, "width": 19, "height": 19,
        "challenger_color": "automatic",
        "time_control": {"system": "fischer", "time_control": "fischer", "speed": "live", "initial_time": 600,
                         "time_increment": 30, "max_time": 1200, "pause_on_weekends": False},
    }
    for key, value in over.items():
        if key == "tc":
            data["time_control"] = {**data["time_control"], **value}
        elif key == "user":
            data["user"] = {**data["user"], **value}
        else:
            data[key] = value
    return data


def policy(**over: Any) -> ChallengePolicy:
    return ChallengePolicy.model_validate(over)


def run(pol: ChallengePolicy, *, can_accept: bool = True, opponent_games: int = 0, **over: Any) -> tuple[str, str]:
    decision = decide(pol, parse_challenge(notification(**over)), can_accept=can_accept, active_games=2,
                      max_games=2, games_with_opponent=opponent_games)
    return ("accept", "") if decision.accept else (decision.code, decision.reason)


def test_default_policy_accepts_a_plain_live_game() -> None:
    assert run(policy()) == ("accept", "")


# each rule alone: (policy overrides, challenge overrides, expected code)
RULES = [
    ({"block": ["alice"]}, {}, "blacklisted"),
    ({"block": ["77"]}, {}, "blacklisted"),
    ({}, {"tc": {"speed": "blitz"}}, "blitz_not_allowed"),
    ({}, {"tc": {"speed": "correspondence"}}, "correspondence_not_allowed"),
    ({"speeds": {"live": {"systems": ["byoyomi"]}}}, {}, "time_control_system_not_allowed"),
    ({"speeds": {"live": {"main_time": {"max": 300}}}}, {}, "main_time_out_of_range"),
    ({"speeds": {"live": {"main_time": {"max": 1000}}}}, {}, "max_time_out_of_range"),
    ({"speeds": {"live": {"period_time": {"max": 20}}}}, {}, "time_increment_out_of_range"),
    ({"speeds": {"live": {"period_time": {"min": 40}}}},
     {"tc": {"system": "byoyomi", "main_time": 600, "period_time": 30, "periods": 5}}, "period_time_out_of_range"),
    ({"speeds": {"live": {"periods": {"max": 3}}}},
     {"tc": {"system": "byoyomi", "main_time": 600, "period_time": 30, "periods": 5}}, "periods_out_of_range"),
    ({"speeds": {"live": {"periods": {"min": 15}}}},
     {"tc": {"system": "canadian", "main_time": 600, "period_time": 300, "stones_per_period": 10}},
     "periods_out_of_range"),
    ({"speeds": {"live": {"period_time": {"min": 20}}}}, {"tc": {"system": "simple", "per_move": 10}},
     "per_move_time_out_of_range"),
    ({"speeds": {"live": {"main_time": {"max": 100}}}}, {"tc": {"system": "absolute", "total_time": 900}},
     "main_time_out_of_range"),
    ({}, {"width": 19, "height": 13}, "board_size_not_square"),
    ({}, {"width": 7, "height": 7}, "board_size_not_allowed"),
    ({"allow_rectangular": True}, {"width": 19, "height": 7}, "board_size_not_allowed"),
    ({"handicap": {"max": 0}}, {"handicap": 2}, "handicap_not_allowed"),
    ({"handicap": {"max": 0}}, {"handicap": -1}, "handicap_not_allowed"),
    ({"handicap": {"min": 0, "max": 4}}, {"handicap": 6}, "handicap_not_allowed"),
    ({"unranked": False}, {"ranked": False}, "unranked_not_allowed"),
    ({"ranked": False}, {"ranked": True}, "ranked_not_allowed"),
    ({"rank": {"min": 25}}, {"ranked": True}, "player_rank_out_of_range"),
    ({"rank": {"max": 15}}, {"ranked": True}, "player_rank_out_of_range"),
    ({"decline_all": True}, {}, "not_accepting_new_challenges"),
    ({"komi": {"min": 5, "max": 8}}, {"komi": 0.5}, "komi_out_of_range"),
]


@pytest.mark.parametrize(("pol", "chal", "code"), RULES, ids=[f"{r[2]}-{i}" for i, r in enumerate(RULES)])
def test_each_rule_rejects_with_its_code_and_a_reason(pol: dict, chal: dict, code: str) -> None:
    got_code, reason = run(policy(**pol), **chal)
    assert got_code == code
    assert reason.endswith(".") and len(reason) > 15


def test_capacity_and_games_per_opponent() -> None:
    code, reason = run(policy(), can_accept=False)
    assert code == "too_many_live_games" and "2 of 2" in reason
    assert run(policy(), opponent_games=1)[0] == "too_many_games_for_player"
    assert run(policy(max_games_per_opponent=2), opponent_games=1) == ("accept", "")


def test_rules_that_pass() -> None:
    assert run(policy(komi={"min": 5, "max": 8}), komi=None) == ("accept", "")  # automatic komi: always fine
    assert run(policy(rank={"min": 25}), ranked=False) == ("accept", "")  # as gtp2ogs: ranked games only
    assert run(policy(allow_rectangular=True), width=19, height=13) == ("accept", "")
    assert run(policy(handicap={"max": 4}), handicap=-1) == ("accept", "")
    assert run(policy(board_sizes=[9]), width=9, height=9) == ("accept", "")


def test_the_first_failing_rule_in_gtp2ogs_order_is_reported() -> None:
    pol = policy(block=["alice"], komi={"max": 1}, unranked=False)
    assert run(pol, komi=6.5, width=7, height=7)[0] == "blacklisted"
    pol = policy(komi={"max": 1}, unranked=False)
    assert run(pol, komi=6.5, width=7, height=7)[0] == "board_size_not_allowed"
    assert run(pol, komi=6.5)[0] == "unranked_not_allowed"
    assert run(policy(decline_all=True, komi={"max": 1}), komi=6.5)[0] == "not_accepting_new_challenges"


def test_the_allow_list_overrides_rules_but_not_operator_state() -> None:
    pol = policy(allow=["Alice"], block=["alice"], board_sizes=[9], unranked=False, komi={"max": 1})
    assert run(pol, komi=6.5) == ("accept", "")
    assert run(pol, tc={"speed": "blitz"}) == ("accept", "")
    assert run(pol, opponent_games=3) == ("accept", "")
    assert run(pol, can_accept=False)[0] == "too_many_live_games"
    assert run(policy(allow=["alice"], decline_all=True))[0] == "not_accepting_new_challenges"
    assert run(policy(allow=["bob"], board_sizes=[9]))[0] == "board_size_not_allowed"


def test_rejection_details_are_what_ogs_expects() -> None:
    d = decide(policy(komi={"min": 5, "max": 8}), parse_challenge(notification(komi=0.5)), can_accept=True)
    details = d.rejection_details()
    assert details["rejection_code"] == "komi_out_of_range"
    assert details["message"] == d.reason
    assert details["details"] == {"allowed_komi_range": [5.0, 8.0]}


def test_challenge_parsing_and_description() -> None:
    c = parse_challenge(notification(komi="6.5", handicap=2, ranked=True))
    assert isinstance(c, Challenge)
    assert (c.challenge_id, c.game_id, c.user_id, c.username, c.ranking) == (101, 5001, 77, "alice", 20.5)
    assert c.komi == 6.5 and c.handicap == 2 and c.time_control.initial_time == 600
    assert c.describe() == "19x19, ranked, handicap 2, komi 6.5, fischer 600+30 max 1200 (live)"


@pytest.mark.parametrize(("over", "needle"), [
    ({"challenge_id": None}, "challenge_id"),
    ({"user": "alice"}, "user"),
    ({"width": "wide"}, "width"),
    ({"komi": [1]}, "komi"),
    ({"time_control": {"system": "sundial", "speed": "live"}}, "sundial"),
])
def test_malformed_challenges_name_the_field(over: dict, needle: str) -> None:
    data = notification()
    data.update(over)
    with pytest.raises(ValueError, match=needle):
        parse_challenge(data)


def test_bot_config_is_public_and_shaped_like_goban_v2() -> None:
    pol = policy(board_sizes=[9, 19], komi={"min": -5, "max": 10}, rank={"min": 10, "max": 35})
    out = bot_config(pol, bot_id=42, username="sandbot", max_games=3)
    assert out["_config_version"] == 2 and out["bot_id"] == 42 and out["username"] == "sandbot"
    assert out["allowed_board_sizes"] == [9, 19]
    assert out["allowed_komi_range"] == [-5, 10]
    assert out["allowed_rank_range"] == ["20k", "6d"]
    assert "allowed_live_settings" in out and "allowed_blitz_settings" not in out
    assert out["allowed_live_settings"]["concurrent_games"] == 3
    assert not any("key" in k.lower() for k in out)


def test_bot_config_advertises_ranges_for_every_system_it_lists() -> None:
    pol = policy(speeds={"live": {"systems": ["fischer", "byoyomi", "canadian", "simple", "absolute", "none"]},
                         "correspondence": {"systems": ["byoyomi", "canadian"]}})
    out = bot_config(pol, bot_id=42, username="sandbot", max_games=3)
    # goban's BotConfigV2 knows simple, byoyomi and fischer; each listed system has its ranges in each speed
    assert out["allowed_time_control_systems"] == ["byoyomi", "fischer", "simple"]
    live, corr = out["allowed_live_settings"], out["allowed_correspondence_settings"]
    assert set(live) == {"simple", "byoyomi", "fischer", "concurrent_games"}
    assert set(corr) == {"byoyomi", "concurrent_games"}
    assert set(live["fischer"]) == {"initial_time_range", "max_time_range", "time_increment_range"}
