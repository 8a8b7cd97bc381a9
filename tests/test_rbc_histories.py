"""``scripts/rbc_histories.py`` on a game recorded by reconchess's own referee (``LocalGame``): the belief replayed
without sampling holds the true board on every turn (the module's promise), and the model measure is exactly 0
for a uniform model and counts every opponent move."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import chess
import pytest
from reconchess import GameHistory, LocalGame

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import rbc_histories

# white's and black's requested moves; a capture on e5 on turn 3 and some moves the true board refuses
WHITE = ["e2e4", "g1f3", "f3e5", "d2d4", "f1b5", "e1g1", "d1h5", "b5e8"]
BLACK = ["e7e5", "d7d6", "d6e5", "c8g4", "b8c6", "g8f6", "a7a6", "h7h6"]


def record(seed: int) -> GameHistory:
    """A short game under the official referee: the requested moves above, random senses."""
    rng = random.Random(seed)
    game = LocalGame(seconds_per_player=None)
    game.store_players("white-bot", "black-bot")
    game.start()
    for white, black in zip(WHITE, BLACK, strict=True):
        for uci in (white, black):
            if game.is_over():
                break
            game.opponent_move_results()
            game.sense(rng.choice(game.sense_actions()))
            move = chess.Move.from_uci(uci)
            game.move(move if move in game.move_actions() else None)
            game.end_turn()
    game.end()
    history = game.get_game_history()
    assert history is not None
    return history


@pytest.mark.parametrize("arrays", [False, True], ids=["boards", "arrays"])
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("us", [chess.WHITE, chess.BLACK])
def test_an_exact_belief_holds_the_true_board_on_every_turn(seed: int, us: chess.Color, arrays: bool) -> None:
    history = record(seed)
    result = rbc_histories.replay(history, us, cap=100_000, arrays=arrays)
    assert not result.sampled
    assert result.turns == len(list(history.turns(us))) > 5
    assert result.truth_lost_at is None and result.turns_with_truth == result.turns
    assert result.largest > 1


def test_the_model_measure_is_zero_for_a_uniform_model_and_counts_every_move() -> None:
    histories = [record(1), record(2)]
    opponents = [chess.BLACK, chess.WHITE]
    uniform = rbc_histories.fit(histories, opponents, priors=lambda board, moves: [1.0] * len(moves))
    expected = sum(len([t for t in h.turns(c) if h.has_move(t)]) for h, c in zip(histories, opponents, strict=True))
    assert uniform.moves == expected > 10
    assert uniform.nats == pytest.approx(0.0, abs=1e-12)
    assert uniform.median_rank == 0  # every move ties with the likeliest
    model = rbc_histories.fit(histories, opponents)
    assert model.moves == expected and -5.0 < model.nats < 5.0
    # a model that always backs the move that was taken beats uniform by log(n) a move
    taken = {(h.truth_fen_before_move(t), h.taken_move(t)) for h, c in zip(histories, opponents, strict=True)
             for t in h.turns(c) if h.has_move(t)}
    oracle = rbc_histories.fit(histories, opponents, priors=lambda board, moves: [
        1e9 if (board.fen(), m) in taken else 1.0 for m in moves])
    assert oracle.nats > model.nats and oracle.median_rank == 0 and oracle.top3 == 1.0


def test_a_player_named_in_neither_colour_is_refused() -> None:
    with pytest.raises(ValueError, match="neither player is named 'bridge'"):
        rbc_histories.our_color(record(1), "bridge")
    assert rbc_histories.our_color(record(1), "black-bot") == chess.BLACK
